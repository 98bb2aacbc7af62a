"""Property tests: map-then-walk, unmap, and the per-CPU invariants, on every configuration.

The reference is the definition of a mapping (page i of [start, end) maps to
pa + i * PAGE_SIZE), checked by walking, never the model's own tables.
"""

from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer import KernelConfig, compute_layout, valid_configs
from percpu_explorer.kernel.pgtable import KernelPageTables

MAINLINE = list(valid_configs(kasan=("none",)))
PATCHED = [c for c in valid_configs(kasan=("none",), local_percpu=True)
           if compute_layout(c).sane]


def test_patched_configs_are_the_sane_ones():
    # series.md claim 6: 4K/52, 16K/48 and 16K/52 cannot hold the two areas.
    assert {c.label() for c in PATCHED} == {
        "4K/39", "4K/48", "16K/36", "16K/47", "64K/42", "64K/48", "64K/52",
        "64K/52 (48-bit hw)"}


@given(cfg=st.sampled_from(MAINLINE + PATCHED), page_off=st.integers(0, (1 << 22) - 1),
       npages=st.integers(1, 40), pa_page=st.integers(0, (1 << 20) - 1),
       probe=st.integers(0, 39), byte=st.integers(0, 65535), cpu=st.integers(0, 3))
def test_map_then_walk_returns_the_mapped_pa(cfg, page_off, npages, pa_page, probe, byte, cpu):
    page = cfg.page_size
    kpt = KernelPageTables(cfg, 4)
    s = compute_layout(cfg).symbols
    page_off %= (s["VMALLOC_END"] - s["VMALLOC_START"]) // page - 41
    start = s["VMALLOC_START"] + page_off * page
    pa = pa_page * page
    kpt.vmap_range(start, start + npages * page, pa)
    i, off = probe % npages, byte % page
    walk = kpt.walk(cpu, start + i * page + off)
    assert walk.pa == pa + i * page + off
    assert walk.mapping_size == page
    assert walk.steps[-1].kind == "page" and len(walk.steps) == kpt.geometry.runtime_levels
    assert kpt.walk(cpu, start + npages * page).pa is None
    if page_off:
        assert kpt.walk(cpu, start - page).pa is None


@given(cfg=st.sampled_from(MAINLINE), nblocks=st.integers(1, 3), slot=st.integers(0, 7),
       pa_slot=st.integers(1, 64), probe=st.integers(0, (1 << 40) - 1))
def test_block_mappings_translate_every_byte(cfg, nblocks, slot, pa_slot, probe):
    kpt = KernelPageTables(cfg, 2)
    pmd = next(lv for lv in kpt.geometry.levels if lv.hw_level == 2).entry_span
    base = compute_layout(cfg).symbols["_PAGE_OFFSET(vabits_actual)"] + slot * pmd
    pa = pa_slot * pmd
    kpt.vmap_range(base, base + nblocks * pmd, pa, blocks=True)
    off = probe % (nblocks * pmd)
    walk = kpt.walk(1, base + off)
    assert walk.pa == pa + off
    assert walk.steps[-1].kind == "block" and walk.mapping_size >= pmd


@given(cfg=st.sampled_from(MAINLINE + PATCHED), page_off=st.integers(0, (1 << 22) - 1),
       npages=st.integers(1, 40), cut=st.integers(0, 40), keep=st.integers(0, 40))
def test_unmap_leaves_no_stale_entry(cfg, page_off, npages, cut, keep):
    page = cfg.page_size
    kpt = KernelPageTables(cfg, 3)
    s = compute_layout(cfg).symbols
    page_off %= (s["VMALLOC_END"] - s["VMALLOC_START"]) // page - 41
    start = s["VMALLOC_START"] + page_off * page
    kpt.vmap_range(start, start + npages * page, 0x100000 * page // 4096)
    lo = cut % npages
    hi = lo + 1 + keep % (npages - lo)
    kpt.vunmap_range(start + lo * page, start + hi * page)
    for i in range(npages):
        mapped = {kpt.translate(c, start + i * page) is not None for c in range(3)}
        assert mapped == {not lo <= i < hi}
    # The freed range can be mapped again: nothing stale is left to overlap.
    kpt.vmap_range(start + lo * page, start + hi * page, 0)
    assert kpt.walk(2, start + lo * page).pa == 0


op = st.tuples(st.booleans(), st.integers(0, 3), st.integers(0, (1 << 16) - 1), st.integers(1, 8),
               st.booleans())


@given(cfg=st.sampled_from(PATCHED), ops=st.lists(op, min_size=1, max_size=12))
def test_per_cpu_invariants_after_random_shared_and_local_mappings(cfg, ops):
    """Shared ranges go to vmalloc and the Global Percpu area; local ranges stay
    below the top page of the Local Percpu area (the skip-rule boundary, pinned in
    test_pgtable_model)."""
    page = cfg.page_size
    s = compute_layout(cfg).symbols
    kpt = KernelPageTables(cfg, 4)
    # Spread offsets over the area: two PGD entries wide (PERCPU_SIZE).
    stride = max(page, (s["PERCPU_SIZE"] // (1 << 16)) & ~(page - 1))
    shared, local = [], []
    pa = 0
    for is_local, cpu, raw_slot, npages, in_vmalloc in ops:
        size = npages * page
        slot = raw_slot % (s["PERCPU_SIZE"] // stride)
        if is_local:
            start = s["LOCAL_PERCPU_START"] + slot * stride
            end = min(start + size, s["LOCAL_PERCPU_END"] - page)
            if end <= start:
                continue
        else:
            base = s["VMALLOC_START"] if in_vmalloc else s["PERCPU_START"]
            start = base + slot * stride
            end = start + size if in_vmalloc else min(start + size, s["PERCPU_END"])
        try:
            kpt.vmap_range(start, end, pa, cpu=cpu if is_local else None)
        except ValueError as exc:
            assert "overlaps" in str(exc)
            continue
        (local if is_local else shared).append((cpu, start, end, pa))
        pa += end - start
    assert kpt.check_invariants() == ()
    for _, start, end, base_pa in shared:
        for va in (start, end - page):
            assert {kpt.translate(c, va) for c in range(4)} == {base_pa + va - start}
    for cpu, start, end, base_pa in local:
        for va in (start, end - page):
            assert kpt.translate(cpu, va) == base_pa + va - start
            for other in set(range(4)) - {cpu}:
                assert kpt.translate(other, va) != base_pa + va - start


def test_four_levels_walk_on_a_fixed_config():
    # A fixed sanity point for the properties above: 4K/48 has four levels.
    kpt = KernelPageTables(KernelConfig(page_size=4096, va_bits=48), 1)
    assert kpt.geometry.runtime_levels == 4
