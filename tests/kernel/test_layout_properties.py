"""Properties over every valid configuration of every modelled kernel release."""

import json

from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel.config import kasan_choices, va_bits_choices, vabits_actual_choices
from percpu_explorer.kernel.layout import layout_from_dict, layout_table, layout_to_dict
from percpu_explorer.kernel.versions import MAINLINE_RELEASES


@st.composite
def configs(draw, local_percpu=None):
    major, minor = draw(st.sampled_from(MAINLINE_RELEASES))
    sublevel = draw(st.one_of(st.none(), st.integers(0, 250)))
    kernel = f"{major}.{minor}" + (f".{sublevel}" if sublevel is not None else "")
    page_size = draw(st.sampled_from([4096, 16384, 65536]))
    va_bits = draw(st.sampled_from(va_bits_choices(page_size, kernel)))
    patched = draw(st.booleans()) if local_percpu is None else local_percpu
    return KernelConfig(
        page_size=page_size,
        va_bits=va_bits,
        vabits_actual=draw(st.sampled_from(vabits_actual_choices(page_size, va_bits))),
        kasan=draw(st.sampled_from(kasan_choices(page_size, va_bits, kernel))),
        nr_cpus=draw(st.integers(2, 4096)),
        kvm=draw(st.booleans()),
        kpti=draw(st.booleans()),
        ghes=draw(st.booleans()),
        sdei=draw(st.booleans()),
        relocatable=draw(st.booleans()),
        btmap_extra_page=draw(st.sampled_from([None, True, False])),
        local_percpu=patched and (major, minor) >= (6, 9),
        kernel=kernel,
    )


@given(configs())
def test_sane_layouts_are_ordered_and_disjoint(cfg):
    layout = compute_layout(cfg)
    if not layout.sane:
        assert cfg.local_percpu  # only the patch breaks layouts
        return
    for region in layout.regions:
        assert region.start < region.end, region
    for low, high in zip(layout.regions, layout.regions[1:], strict=False):
        assert low.end <= high.start, (low, high)


@given(configs(local_percpu=False))
def test_every_mainline_configuration_is_sane(cfg):
    assert compute_layout(cfg).sane


@given(configs())
def test_region_bounds_are_the_symbols_that_define_them(cfg):
    layout = compute_layout(cfg)
    for region in layout.regions:
        assert layout.symbols[region.start_symbol] == region.start
        assert layout.symbols[region.end_symbol] == region.end


@given(configs())
def test_json_round_trip(cfg):
    layout = compute_layout(cfg)
    assert layout_from_dict(json.loads(json.dumps(layout_to_dict(layout)))) == layout


@given(configs())
def test_values_are_64_bit_and_markers_are_symbols(cfg):
    layout = compute_layout(cfg)
    assert all(0 <= v < 1 << 64 for v in layout.symbols.values())
    assert {m.address for m in layout.markers} <= set(layout.symbols.values())


@given(configs())
def test_table_rows_tile_the_space_from_the_linear_map_up(cfg):
    layout = compute_layout(cfg)
    if not layout.sane:
        return
    table = layout_table(layout)
    assert list(table["start"][1:]) == list(table["end"][:-1])
    assert table["end"].iloc[-1] == 1 << 64 or layout.regions[-1].end == 0


@given(configs(local_percpu=True))
def test_patched_vmalloc_ends_8m_below_the_global_area(cfg):
    sym = compute_layout(cfg).symbols
    if cfg.local_percpu:
        assert (sym["PERCPU_START"] - sym["VMALLOC_END"]) % (1 << 64) == 8 << 20
        assert sym["PERCPU_SIZE"] == 2 * sym["PGDIR_SIZE"]
