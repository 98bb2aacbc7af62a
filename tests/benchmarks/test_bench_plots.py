"""Speed target (issue 7): a control change redraws the address-space map (model
computation plus figure) in well under 100 ms; the other figures under 300 ms."""

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import build_first_chunk, first_chunk_va
from percpu_explorer.percpu import boot_percpu
from percpu_explorer.ui import plots

CFG = KernelConfig(page_size="4K", va_bits=48)


def address_space_map():
    return plots.address_space_map(compute_layout(CFG),
                                   compute_layout(CFG.replace(local_percpu=True)))


def test_address_space_map_mainline_and_patched(benchmark):
    fig = benchmark(address_space_map)
    assert len(fig.data) == 10  # 4 per layout (bars, labels) + 2 connector traces
    if not benchmark.disabled:  # --benchmark-disable runs the body once, untimed
        assert benchmark.stats.stats.median < 0.050


def page_tables_and_walk():
    cfg = CFG.replace(local_percpu=True, nr_cpus=8)
    kpt = build_first_chunk(cfg, 8)
    local, _ = first_chunk_va(kpt, 128 << 10)
    return (plots.page_tables_figure(kpt),
            plots.walk_figure(kpt.walk(3, local), kpt.geometry))


def test_page_tables_and_walk(benchmark):
    benchmark(page_tables_and_walk)
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 0.300


def allocator_figures():
    alloc, _ = boot_percpu(CFG.replace(local_percpu=True, nr_cpus=8), 101464, 8)
    return (plots.chunks_figure(alloc),
            plots.chunk_map_heatmap(alloc, alloc.first_chunk.id, granularity=4))


def test_allocator_figures(benchmark):
    benchmark(allocator_figures)
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 0.300
