"""The v6.9+ layout (the series' base, v7.1-rc1) and the fixmap's history."""

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel.fixmap import fixmap_slots

# A real ptdump (/sys/kernel/debug/kernel_page_tables) of a v6.16+ kernel, 4K pages,
# VA_BITS=48, no KASAN, NR_CPUS=512 with KVM, KPTI, GHES, SDEI (shared/reference/
# kernel-facts.md). It predates "arm64: fixmap: Allow 256K early_ioremap() at any offset".
REAL_PTDUMP_4K_48 = {
    "Modules start": 0xFFFF800000000000,
    "Modules end": 0xFFFF800080000000,
    "vmalloc() end": 0xFFFFFDFFBF800000,
    "vmemmap start": 0xFFFFFDFFC0000000,
    "PCI I/O start": 0xFFFFFFFFC0800000,
    "Fixmap start": 0xFFFFFFFFFF22D000,
}


def markers(cfg):
    return {m.label: m.address for m in compute_layout(cfg).markers}


@pytest.mark.parametrize("kernel", ["6.16", "7.0", "7.1", "7.1-rc1"])
def test_4k_48_matches_real_ptdump(kernel):
    got = markers(KernelConfig(page_size=4096, va_bits=48, kernel=kernel, nr_cpus=512))
    assert {k: got[k] for k in REAL_PTDUMP_4K_48} == REAL_PTDUMP_4K_48


def test_default_config_is_the_series_base_and_matches_real_ptdump():
    cfg = KernelConfig()
    assert (cfg.page_size, cfg.va_bits, cfg.kernel, cfg.nr_cpus) == (4096, 48, "7.1", 512)
    got = markers(cfg)
    assert {k: got[k] for k in REAL_PTDUMP_4K_48} == REAL_PTDUMP_4K_48


def test_ptdump_marker_labels_and_order_v6_9_plus():
    # arch/arm64/mm/ptdump.c (v6.12) ptdump_init(): the address_markers in this order.
    labels = [m.label for m in compute_layout(KernelConfig(kasan="generic")).markers]
    assert labels == [
        "Linear Mapping start", "Linear Mapping end", "Kasan shadow start", "Kasan shadow end",
        "Modules start", "Modules end", "vmalloc() area", "vmalloc() end",
        "vmemmap start", "vmemmap end", "PCI I/O start", "PCI I/O end",
        "Fixmap start", "Fixmap end",
    ]


def test_ptdump_marker_order_before_6_9():
    # arch/arm64/mm/ptdump.c (v6.1): fixmap, then PCI I/O, then vmemmap.
    labels = [m.label for m in compute_layout(KernelConfig(kernel="6.1")).markers]
    assert labels[-6:] == ["Fixmap start", "Fixmap end", "PCI I/O start", "PCI I/O end",
                           "vmemmap start", "vmemmap end"]


# Fixmap slot counts walked by hand through enum fixed_addresses (asm/fixmap.h) for
# 4K pages with KVM, KPTI, RELOCATABLE, GHES, SDEI and NR_CPUS=512:
#   FIX_HOLE 1 + FDT window + EARLYCON + TEXT_POKE0 [+ VNCR_END..VNCR 513] + GHES 4 + tramp 4
#   = permanent; + 7 * NR_FIX_BTMAPS + PTE, PMD, PUD, [P4D,] PGD = total.
#   FDT window: (MAX_FDT_SIZE + SZ_2M) / PAGE_SIZE = 1024 before v6.4 (v6.1 fixmap.h),
#   DIV_ROUND_UP(MAX_FDT_SIZE, PAGE_SIZE) + 2 = 514 from v6.4 (v6.12 fixmap.h).
@pytest.mark.parametrize(
    ("kernel", "permanent", "total"),
    [
        ("6.1", 1 + 1024 + 2 + 4 + 4, 1035 + 64 * 7 + 4),  # v6.1.0: 1035, 1487
        ("6.1.189", 1035, 1035 + 65 * 7 + 4),  # stable backport of NR_FIX_BTMAPS + 1
        ("6.1.192", 1035, 1494),  # Debian's linux-source-6.1 (6.1.192) fixmap.h
        ("6.8", 1 + 514 + 2 + 4 + 4, 525 + 64 * 7 + 4),  # 525, 977
        ("6.6.158", 525, 525 + 65 * 7 + 4),  # 984
        ("6.12", 525, 525 + 64 * 7 + 5),  # FIX_P4D since v6.9: 978
        ("6.12.117", 525, 525 + 65 * 7 + 5),  # Debian's linux-source-6.12 fixmap.h: 985
        ("7.1", 1 + 514 + 2 + 513 + 4 + 4, 1038 + 64 * 7 + 5),  # FIX_VNCR: 1038, 1491
    ],
)
def test_fixmap_slot_counts(kernel, permanent, total):
    slots = fixmap_slots(KernelConfig(kernel=kernel))
    assert (slots.permanent, slots.total) == (permanent, total)


def test_fixmap_start_per_era():
    # FIXADDR_TOP - slots * 4K. Before v6.9 FIXADDR_TOP = VMEMMAP_START - SZ_32M =
    # 0xfffffbfffe000000 (4K/48); from v6.9 FIXADDR_TOP = -SZ_8M = 0xffffffffff800000.
    # ptdump's "Fixmap start" is FIXADDR_START before v6.4, FIXADDR_TOT_START after.
    assert markers(KernelConfig(kernel="6.1"))["Fixmap start"] == 0xFFFFFBFFFE000000 - 1035 * 4096
    assert markers(KernelConfig(kernel="6.8"))["Fixmap start"] == 0xFFFFFBFFFE000000 - 977 * 4096
    assert markers(KernelConfig(kernel="6.12"))["Fixmap start"] == 0xFFFFFFFFFF800000 - 978 * 4096
    assert markers(KernelConfig(kernel="6.12.117"))["Fixmap start"] == 0xFFFFFFFFFF427000


def test_btmap_extra_page_can_be_forced():
    # A v7.1 kernel carrying the backport: 1038 + 65 * 7 + 5 = 1498 slots.
    sym = compute_layout(KernelConfig(kernel="7.1", btmap_extra_page=True)).symbols
    assert sym["FIXADDR_TOT_START"] == 0xFFFFFFFFFF800000 - 1498 * 4096 == 0xFFFFFFFFFF226000


def test_vncr_slots_follow_nr_cpus_only_with_kvm():
    # FIX_VNCR = FIX_VNCR_END + NR_CPUS under CONFIG_KVM (v6.16+).
    with_kvm = fixmap_slots(KernelConfig(nr_cpus=4096))
    without = fixmap_slots(KernelConfig(nr_cpus=4096, kvm=False))
    assert with_kvm.permanent - without.permanent == 4097
    assert fixmap_slots(KernelConfig(kernel="6.15", nr_cpus=4096)).vncr == 0


def test_52_bit_kernel_on_48_bit_hardware_keeps_the_48_bit_vmalloc_end():
    # pgtable.h: VMALLOC_END = VMEMMAP_START + VMEMMAP_UNUSED_NPAGES * sizeof(struct page) - 8M.
    # 4K/52: VMEMMAP_RANGE = _PAGE_END(48) - _PAGE_OFFSET(52) = 0x000f800000000000,
    # VMEMMAP_SIZE = (range >> 12) * 64 = 0x3e0000000000, VMEMMAP_START = -1G - size
    # = 0xffffc1ffc0000000; unused = (_PAGE_OFFSET(48) - _PAGE_OFFSET(52)) >> 12 pages
    # = 0xf000000000, * 64 = 0x3c0000000000.
    on_48 = compute_layout(KernelConfig(va_bits=52, vabits_actual=48)).symbols
    assert on_48["VMEMMAP_START"] == 0xFFFFC1FFC0000000
    assert on_48["VMALLOC_END"] == 0xFFFFC1FFC0000000 + 0x3C0000000000 - (8 << 20)
    assert on_48["VMALLOC_END"] == 0xFFFFFDFFBF800000
    # ptdump's vmemmap_start = virt_to_page(_PAGE_OFFSET(vabits_actual)).
    assert on_48["vmemmap_start"] == 0xFFFFFDFFC0000000
    on_52 = compute_layout(KernelConfig(va_bits=52, vabits_actual=52)).symbols
    assert on_52["VMALLOC_END"] == 0xFFFFC1FFC0000000 - (8 << 20)
    assert on_52["PAGE_OFFSET"] == on_48["PAGE_OFFSET"] == 0xFFF0000000000000


def test_linear_map_region_starts_where_the_hardware_can_translate():
    # arch/arm64/mm/init.c: linear_region_size = PAGE_END - _PAGE_OFFSET(vabits_actual).
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=48))
    assert layout.region("linear map").start == 0xFFFF000000000000
    assert layout.sane


def test_kasan_shadow_v6_9_52_bit_16k():
    # Kconfig (v6.12): KASAN_SHADOW_OFFSET 0xdfffc00000000000 for 16K with 47 or 52 bits;
    # KASAN_SHADOW_END = (1 << 61) + offset = 0xffffc00000000000 = _PAGE_END(47);
    # KASAN_SHADOW_START = END - (1 << (52 - 3)) = 0xfffdc00000000000.
    sym = compute_layout(KernelConfig(page_size=16384, va_bits=52, kasan="generic")).symbols
    assert sym["KASAN_SHADOW_END"] == 0xFFFFC00000000000 == sym["MODULES_VADDR"]
    assert sym["KASAN_SHADOW_START"] == 0xFFFDC00000000000 == sym["PAGE_END"]


def test_kasan_sw_tags_uses_scale_shift_4():
    # arch/arm64/Makefile: KASAN_SHADOW_SCALE_SHIFT := 4 for SW_TAGS; Kconfig offset
    # 0xefff800000000000 for 48-bit: END = (1 << 60) + offset = 0xffff800000000000,
    # START = END - (1 << 44) = 0xffff700000000000.
    sym = compute_layout(KernelConfig(kasan="sw-tags")).symbols
    assert (sym["KASAN_SHADOW_START"], sym["KASAN_SHADOW_END"]) == (
        0xFFFF700000000000, 0xFFFF800000000000)


@pytest.mark.parametrize(
    ("page_size", "va_bits", "levels", "pgdir_shift", "ptrs_per_pgd"),
    [
        # Kconfig PGTABLE_LEVELS defaults; pgtable-hwdef.h PGDIR_SHIFT =
        # (PAGE_SHIFT - 3) * CONFIG_PGTABLE_LEVELS + 3, PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT).
        (4096, 39, 3, 30, 512),
        (4096, 48, 4, 39, 512),
        (4096, 52, 5, 48, 16),
        (16384, 36, 2, 25, 2048),
        (16384, 47, 3, 36, 2048),
        (16384, 48, 4, 47, 2),
        (16384, 52, 4, 47, 32),
        (65536, 42, 2, 29, 8192),
        (65536, 48, 3, 42, 64),
        (65536, 52, 3, 42, 1024),
    ],
)
def test_page_table_geometry(page_size, va_bits, levels, pgdir_shift, ptrs_per_pgd):
    sym = compute_layout(KernelConfig(page_size=page_size, va_bits=va_bits)).symbols
    assert sym["CONFIG_PGTABLE_LEVELS"] == levels
    assert sym["PGDIR_SHIFT"] == pgdir_shift
    assert sym["PTRS_PER_PGD"] == ptrs_per_pgd


def test_folded_levels_take_the_shift_above():
    # 64K/42: two levels, PMD and PUD folded into the PGD (asm-generic pgtable-nopmd.h).
    sym = compute_layout(KernelConfig(page_size=65536, va_bits=42)).symbols
    assert sym["PMD_SHIFT"] == sym["PUD_SHIFT"] == sym["PGDIR_SHIFT"] == 29
    # 4K/48: PUD_SHIFT 30, PMD_SHIFT 21 (memory.rst: L1 index [38:30], L2 index [29:21]).
    sym = compute_layout(KernelConfig()).symbols
    assert (sym["PUD_SHIFT"], sym["PMD_SHIFT"]) == (30, 21)
