"""RFC patch 02/11, "arm64: mm: define percpu virtual space area" (shared/seeds/).

The patch's asm/pgtable.h hunk:
  PERCPU_SIZE        = 2 * PGDIR_SIZE
  LOCAL_PERCPU_END   = ALIGN_DOWN(VMEMMAP_START [+ VMEMMAP_UNUSED_NPAGES * sizeof(struct page)],
                                  PGDIR_SIZE)
  LOCAL_PERCPU_START = LOCAL_PERCPU_END - PERCPU_SIZE;  PERCPU_END = LOCAL_PERCPU_START
  PERCPU_START       = PERCPU_END - PERCPU_SIZE;        VMALLOC_END = PERCPU_START - SZ_8M
"""

import pytest

from percpu_explorer import KernelConfig, compute_layout, valid_configs
from percpu_explorer.kernel.layout import patched_sane_configs, vmalloc_cost

SZ_1T = 1 << 40


def test_each_area_is_2_pgdir_size_1tb_with_4k_pages():
    # Patch text: "Each area size is 2 * PGDIR_SIZE. It is 1TB with 4K page size".
    # 4K/48: PGDIR_SHIFT = 39 (pgtable-hwdef.h), so 2 * 512G = 1TB.
    layout = compute_layout(KernelConfig(page_size=4096, va_bits=48, local_percpu=True))
    assert layout.symbols["PGDIR_SIZE"] == 512 << 30
    assert layout.symbols["PERCPU_SIZE"] == SZ_1T
    assert layout.region("global percpu").size == SZ_1T
    assert layout.region("local percpu").size == SZ_1T
    assert layout.sane


def test_4k_48_patched_addresses():
    # VMEMMAP_START = 0xfffffdffc0000000 (real ptdump "vmemmap start");
    # ALIGN_DOWN to 512G (0x8000000000) = 0xfffffd8000000000.
    sym = compute_layout(KernelConfig(local_percpu=True)).symbols
    assert sym["LOCAL_PERCPU_END"] == 0xFFFFFD8000000000
    assert sym["LOCAL_PERCPU_START"] == 0xFFFFFD8000000000 - SZ_1T == 0xFFFFFC8000000000
    assert sym["PERCPU_END"] == sym["LOCAL_PERCPU_START"]
    assert sym["PERCPU_START"] == 0xFFFFFB8000000000
    assert sym["VMALLOC_END"] == 0xFFFFFB8000000000 - (8 << 20) == 0xFFFFFB7FFF800000


def test_vmalloc_lost_at_4k_48():
    # Mainline VMALLOC_END 0xfffffdffbf800000 (real ptdump) minus patched 0xfffffb7fff800000:
    # two 1TB areas plus the 511GB that ALIGN_DOWN drops below vmemmap.
    row = vmalloc_cost(KernelConfig())
    assert row["vmalloc_lost"] == 0xFFFFFDFFBF800000 - 0xFFFFFB7FFF800000
    assert row["vmalloc_lost"] == 2 * SZ_1T + (511 << 30)


def test_ptdump_gains_the_patch_markers_after_vmalloc_end():
    # The patch's ptdump.c hunk inserts four markers after "vmalloc() end".
    labels = [m.label for m in compute_layout(KernelConfig(local_percpu=True)).markers]
    i = labels.index("vmalloc() end")
    assert labels[i + 1:i + 6] == ["Global percpu start", "Global percpu end",
                                   "Local percpu start", "Local percpu end", "vmemmap start"]


def test_areas_are_pgdir_aligned_where_the_layout_is_sane():
    for cfg in valid_configs("7.1"):
        layout = compute_layout(cfg.replace(local_percpu=True))
        sym = layout.symbols
        for name in ("PERCPU_START", "PERCPU_END", "LOCAL_PERCPU_START", "LOCAL_PERCPU_END"):
            assert sym[name] % sym["PGDIR_SIZE"] == 0, (cfg.label(), name)


# series.md claim 6: "4K/52, 16K/48 and 16K/52 cannot: one PGD entry there is 256T or
# 128T, and the kernel space below vmemmap has no room for four". PGDIR_SHIFT: 4K/52 five
# levels -> 48 (256T); 16K four levels -> 47 (128T).
BROKEN = {(4096, 52): 1 << 48, (16384, 48): 1 << 47, (16384, 52): 1 << 47}


@pytest.mark.parametrize("cfg", list(valid_configs("7.1")), ids=lambda c: c.label())
def test_which_configurations_can_hold_the_two_areas(cfg):
    patched = compute_layout(cfg.replace(local_percpu=True))
    key = (cfg.page_size, cfg.va_bits)
    assert compute_layout(cfg).sane  # mainline is always sane
    if key in BROKEN:
        assert patched.symbols["PGDIR_SIZE"] == BROKEN[key]
        codes = {f.code for f in patched.problems}
        assert "vmalloc-empty" in codes
        assert codes & {"overlap", "order"}
        vm = patched.region("vmalloc")
        assert vm.end < vm.start and vm.negative
    else:
        assert patched.sane, [f.message for f in patched.problems]


def test_patched_sane_configs_are_all_but_the_broken_three():
    # arch/arm64/Kconfig at 7.1 offers 4K {39, 48, 52}, 16K {36, 47, 48, 52}, 64K {42, 48, 52};
    # the two 2 * PGDIR_SIZE areas fit everywhere except in BROKEN.
    offered = {(4096, 39), (4096, 48), (4096, 52), (16384, 36), (16384, 47), (16384, 48),
               (16384, 52), (65536, 42), (65536, 48), (65536, 52)}
    sane = patched_sane_configs("7.1")
    assert {(c.page_size, c.va_bits) for c in sane} == offered - set(BROKEN) == {
        (4096, 39), (4096, 48), (16384, 36), (16384, 47), (65536, 42), (65536, 48),
        (65536, 52)}
    assert all(c.local_percpu and compute_layout(c).sane for c in sane)
    # Every KASAN mode and the 48-bit hardware fallback of 64K/52 count: 7 * 3 + 3.
    assert len(sane) == 24
    assert patched_sane_configs("6.8") == ()


def test_4k_52_wraps_like_c_and_lands_in_the_linear_map():
    # 4K/52 on 52-bit hardware: VMEMMAP_START = 0xffffc1ffc0000000 (see test_layout_v69);
    # ALIGN_DOWN to 256T gives 0xffff000000000000; each area is 2 * 256T = 512T, so they go
    # down to 0xfffb000000000000, inside the linear map [0xfff0000000000000,
    # 0xffff800000000000), and VMALLOC_END 0xfffaffffff800000 is below VMALLOC_START
    # 0xffff800080000000.
    layout = compute_layout(KernelConfig(va_bits=52, local_percpu=True))
    sym = layout.symbols
    assert sym["LOCAL_PERCPU_END"] == 0xFFFF000000000000
    assert sym["LOCAL_PERCPU_START"] == sym["PERCPU_END"] == 0xFFFD000000000000
    assert sym["PERCPU_START"] == 0xFFFB000000000000
    assert sym["VMALLOC_END"] == 0xFFFAFFFFFF800000
    # VMALLOC_END - VMALLOC_START in unsigned long wraps to almost 2**64:
    assert layout.region("vmalloc").size == (0xFFFAFFFFFF800000 - 0xFFFF800080000000) % (1 << 64)
    assert any(f.code == "overlap" and "linear map" in f.regions for f in layout.problems)


def test_52_bit_fallback_puts_the_areas_where_ttbr1_cannot_reach():
    # 4K/52 on 48-bit hardware: TTBR1 translates from _PAGE_OFFSET(48) = 0xffff000000000000;
    # LOCAL_PERCPU_END = ALIGN_DOWN(0xfffffdffc0000000, 256T) = 0xffff000000000000,
    # LOCAL_PERCPU_START = that - 512T = 0xfffd000000000000.
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=48, local_percpu=True))
    assert layout.symbols["LOCAL_PERCPU_END"] == 0xFFFF000000000000
    assert layout.symbols["LOCAL_PERCPU_START"] == 0xFFFD000000000000
    outside = {f.regions[0] for f in layout.problems if f.code == "outside-ttbr1"}
    assert outside == {"global percpu", "local percpu"}


def test_the_two_areas_touch_without_guard():
    # PERCPU_END = LOCAL_PERCPU_START: legal, but flagged as a warning.
    layout = compute_layout(KernelConfig(local_percpu=True))
    assert [f.regions for f in layout.warnings] == [("global percpu", "local percpu")]


def test_patch_rejected_for_pre_6_9_layouts():
    with pytest.raises(ValueError, match=r"kernel 6\.8 has the 6\.5-6\.8 layout"):
        KernelConfig(kernel="6.8", local_percpu=True)
