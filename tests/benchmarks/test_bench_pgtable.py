"""Speed and memory targets of issue 3: 4096 CPUs with the first chunk mapped
locally in under 200 MB of Python memory and a few seconds; one walk in microseconds."""

import tracemalloc

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import build_first_chunk

CFG = KernelConfig(page_size=4096, va_bits=48, local_percpu=True, nr_cpus=4096)
UNIT = 128 << 10


def test_build_4096_cpus_with_first_chunk(benchmark):
    kpt = benchmark(build_first_chunk, CFG, 4096, unit_size=UNIT)
    assert kpt.nr_cpus == 4096 and kpt.check_invariants() == ()
    if not benchmark.disabled:  # --benchmark-disable runs the body once, untimed
        assert benchmark.stats.stats.median < 3.0  # "a few seconds"


def test_build_4096_cpus_memory_under_200mb():
    tracemalloc.start()
    try:
        kpt = build_first_chunk(CFG, 4096, unit_size=UNIT)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # swapper + 4095 roots + 3 local tables x 4096 + linear map (PUD, PMD)
    # + Global Percpu (PUD, PMD, 512M / 2M = 256 PTE pages)
    assert kpt.total_pages == 1 + 4095 + 3 * 4096 + 2 + 258
    assert peak < 200 << 20


def test_one_walk_takes_microseconds(benchmark):
    kpt = build_first_chunk(CFG, 4096, unit_size=UNIT)
    va = compute_layout(CFG).symbols["LOCAL_PERCPU_END"] - UNIT + 0x40
    walk = benchmark(kpt.walk, 4000, va)
    assert walk.pa is not None
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 100e-6
