"""Translation geometry against the kernel's documentation and the ARM ARM.

Index splits: the "Translation table lookup" diagrams of
Documentation/arm64/memory.rst (v6.1) for 4K and 64K pages; 16K and the LPA2
level -1 from the ARM ARM (D8.2, "Translation table walk", VMSAv8-64 granule
tables). Sizes: asm/pgtable-hwdef.h macros evaluated by hand.
"""

import pytest

from percpu_explorer import KernelConfig
from percpu_explorer.kernel.geometry import pgtable_geometry, split_va

SZ_2M, SZ_32M, SZ_512M, SZ_1G = 2 << 20, 32 << 20, 512 << 20, 1 << 30


def bits(va, hi, lo):
    return (va >> lo) & ((1 << (hi - lo + 1)) - 1)


# (config, [(hi, lo) per level, root first], page-offset bits)
SPLITS = [
    # memory.rst "Translation table lookup with 4KB pages": L0 [47:39], L1 [38:30],
    # L2 [29:21], L3 [20:12], in-page offset [11:0].
    (KernelConfig(page_size=4096, va_bits=48), [(47, 39), (38, 30), (29, 21), (20, 12)], 12),
    # 4K/39: the same diagram without L0 (CONFIG_PGTABLE_LEVELS=3).
    (KernelConfig(page_size=4096, va_bits=39), [(38, 30), (29, 21), (20, 12)], 12),
    # ARM ARM, 4KB granule with FEAT_LPA2: level -1 resolves VA[51:48].
    (KernelConfig(page_size=4096, va_bits=52),
     [(51, 48), (47, 39), (38, 30), (29, 21), (20, 12)], 12),
    # memory.rst "... with 64KB pages": L1 [47:42] (48-bit), L2 [41:29], L3 [28:16], [15:0].
    (KernelConfig(page_size=65536, va_bits=48), [(47, 42), (41, 29), (28, 16)], 16),
    # same diagram: L1 [51:42] (52-bit).
    (KernelConfig(page_size=65536, va_bits=52), [(51, 42), (41, 29), (28, 16)], 16),
    # 64K/42: two levels, L2 [41:29] and L3 [28:16].
    (KernelConfig(page_size=65536, va_bits=42), [(41, 29), (28, 16)], 16),
    # ARM ARM, 16KB granule: L0 [47] (2 entries), L1 [46:36], L2 [35:25], L3 [24:14].
    (KernelConfig(page_size=16384, va_bits=48), [(47, 47), (46, 36), (35, 25), (24, 14)], 14),
    (KernelConfig(page_size=16384, va_bits=47), [(46, 36), (35, 25), (24, 14)], 14),
    (KernelConfig(page_size=16384, va_bits=36), [(35, 25), (24, 14)], 14),
]


@pytest.mark.parametrize(("cfg", "ranges", "offset_bits"), SPLITS, ids=lambda v: str(v)[:40])
def test_index_split_matches_documented_bit_ranges(cfg, ranges, offset_bits):
    geo = pgtable_geometry(cfg)
    assert [lv.index_bits for lv in geo.levels] == ranges
    for va in (0xFFFFFFFFFFFFFFFF, geo.va_start, 0xFFFFFD7FFFFE1234 | geo.va_start,
               geo.va_start | 0x0000_5A5A_A5A5_5A5A & ((1 << cfg.va_bits) - 1)):
        split = split_va(geo, va)
        assert split.indices == tuple(bits(va, hi, lo) for hi, lo in ranges)
        assert split.page_offset == bits(va, offset_bits - 1, 0)


def test_4k_48_split_of_a_real_address():
    # 0xffff800080000000 (MODULES_END = VMALLOC_START of a 4K/48 6.9+ kernel):
    # L0 = bits 47:39 = 0x100, L1 = bits 38:30 = 2, L2 = L3 = offset = 0.
    split = split_va(pgtable_geometry(KernelConfig(page_size=4096, va_bits=48)),
                     0xFFFF800080000000)
    assert split.indices == (256, 2, 0, 0)
    assert split.page_offset == 0


# PGD_SIZE = PTRS_PER_PGD * 8 with PTRS_PER_PGD = 1 << (VA_BITS - PGDIR_SHIFT),
# PGDIR_SHIFT = ARM64_HW_PGTABLE_LEVEL_SHIFT(4 - CONFIG_PGTABLE_LEVELS), by hand:
PGD_SIZES = [
    ((4096, 39), 512 * 8),     # shift 30: 2**9 entries, a full page
    ((4096, 48), 512 * 8),     # shift 39
    ((4096, 52), 16 * 8),      # shift 48: 2**4 entries, 128 bytes
    ((16384, 36), 2048 * 8),   # shift 25: 2**11
    ((16384, 47), 2048 * 8),   # shift 36: 2**11
    ((16384, 48), 2 * 8),      # shift 47: 2 entries, 16 bytes
    ((16384, 52), 32 * 8),     # shift 47: 2**5
    ((65536, 42), 8192 * 8),   # shift 29: 2**13, a full 64K page
    ((65536, 48), 64 * 8),     # shift 42: 2**6, 512 bytes
    ((65536, 52), 1024 * 8),   # shift 42: 2**10, 8K in a 64K page
]


@pytest.mark.parametrize(("cfg", "size"), PGD_SIZES)
def test_pgd_size(cfg, size):
    page_size, va_bits = cfg
    geo = pgtable_geometry(KernelConfig(page_size=page_size, va_bits=va_bits))
    assert geo.pgd_size == size
    assert geo.root.table_size == size
    assert (geo.pgd_size < page_size) == (size < page_size)


@pytest.mark.parametrize(("page_size", "va_bits", "blocks"), [
    # ARM ARM block sizes: 4K granule L1 1GB, L2 2MB; 16K L2 32MB; 64K L2 512MB.
    # mmu.c only uses level-1 blocks with 4K pages (pud_sect_supported()).
    (4096, 48, {1: SZ_1G, 2: SZ_2M}),
    (4096, 39, {1: SZ_1G, 2: SZ_2M}),
    (16384, 47, {2: SZ_32M}),
    (16384, 36, {2: SZ_32M}),
    (65536, 48, {2: SZ_512M}),
    (65536, 42, {2: SZ_512M}),
])
def test_block_sizes(page_size, va_bits, blocks):
    geo = pgtable_geometry(KernelConfig(page_size=page_size, va_bits=va_bits))
    got = {lv.hw_level: lv.block_size for lv in geo.levels if lv.block_size}
    assert got == blocks


@pytest.mark.parametrize(("page_size", "va_bits", "levels", "folded"), [
    # CONFIG_PGTABLE_LEVELS = (VA_BITS - 4) / (PAGE_SHIFT - 3); asm-generic folds
    # p4d below 5 levels, pud below 4, pmd below 3.
    (4096, 39, 3, ("p4d", "pud")),
    (4096, 48, 4, ("p4d",)),
    (4096, 52, 5, ()),
    (16384, 36, 2, ("p4d", "pud", "pmd")),
    (16384, 47, 3, ("p4d", "pud")),
    (16384, 48, 4, ("p4d",)),
    (65536, 42, 2, ("p4d", "pud", "pmd")),
    (65536, 52, 3, ("p4d", "pud")),
])
def test_levels_and_build_time_folding(page_size, va_bits, levels, folded):
    geo = pgtable_geometry(KernelConfig(page_size=page_size, va_bits=va_bits))
    assert geo.pgtable_levels == levels == geo.runtime_levels
    assert geo.folded == folded
    assert geo.root.hw_level == 4 - levels
    assert geo.levels[-1].hw_level == 3


def test_lpa2_4k_52_on_48_bit_hardware_runs_four_levels():
    # early_map_kernel(): no LPA2 -> va_bits = VA_BITS_MIN (48), root_level++;
    # pgtable_l5_enabled() is false, so the PGD page is indexed as the P4D
    # (pgd_to_folded_p4d(): p4d_index, 512 entries of 512GB).
    geo = pgtable_geometry(KernelConfig(page_size=4096, va_bits=52, vabits_actual=48))
    assert geo.pgtable_levels == 5
    assert geo.runtime_levels == 4
    assert geo.runtime_folded == ("p4d",)
    assert geo.root.hw_level == 0
    assert geo.root.ptrs == 512 and geo.root.entry_span == 512 << 30
    assert geo.root.kernel_names == ("pgd", "p4d")
    assert geo.root.mod_flag == "PGTBL_P4D_MODIFIED"
    assert geo.va_start == 0xFFFF000000000000
    assert geo.ttbr1_offset == 0


def test_lpa2_16k_52_on_47_bit_hardware_runs_three_levels():
    # VA_BITS_MIN is 47 with 16K pages; pgtable_l4_enabled() is false, so the PGD
    # page is indexed as the PUD (p4d_to_folded_pud(): 2048 entries of 64GB).
    geo = pgtable_geometry(KernelConfig(page_size=16384, va_bits=52, vabits_actual=47))
    assert geo.pgtable_levels == 4
    assert geo.runtime_levels == 3
    assert geo.runtime_folded == ("pud",)
    assert geo.root.hw_level == 1
    assert geo.root.ptrs == 2048 and geo.root.entry_span == 64 << 30
    assert geo.root.mod_flag == "PGTBL_PUD_MODIFIED"
    assert geo.va_start == 0xFFFF800000000000


def test_64k_52_on_48_bit_hardware_keeps_three_levels_with_a_64_entry_view():
    # TTBR1_BADDR_4852_OFFSET = ((1 << (52 - 42)) - (1 << (48 - 42))) * 8
    #                         = (1024 - 64) * 8 = 7680 = 0x1e00.
    geo = pgtable_geometry(KernelConfig(page_size=65536, va_bits=52, vabits_actual=48))
    assert geo.runtime_levels == geo.pgtable_levels == 3
    assert geo.ttbr1_offset == 0x1E00
    assert geo.root.ptrs == 1024 and geo.root.hw_ptrs == 64
    assert geo.root.index_bits == (47, 42)
    # The hardware's entry k is the kernel's pgd_index 960 + k: the same descriptor.
    split = split_va(geo, 0xFFFF000000000000)
    assert split.indices[0] == 960 and split.hw_root_index == 0
    split = split_va(geo, 0xFFFFFFFFFFFFFFFF)
    assert split.indices[0] == 1023 and split.hw_root_index == 63


def test_split_rejects_user_and_out_of_range_addresses():
    geo = pgtable_geometry(KernelConfig(page_size=4096, va_bits=48))
    with pytest.raises(ValueError, match=r"0x0000000000001000.*0xffff000000000000"):
        split_va(geo, 0x1000)
    # A 52-bit kernel on 48-bit hardware cannot translate below -(1 << 48).
    geo52 = pgtable_geometry(KernelConfig(page_size=65536, va_bits=52, vabits_actual=48))
    with pytest.raises(ValueError, match="vabits_actual=48"):
        split_va(geo52, 0xFFF0000000000000)
    with pytest.raises(ValueError, match="64 bits"):
        split_va(geo, 1 << 64)


@pytest.mark.parametrize(("page_size", "va_bits", "actual", "page_sized"), [
    # arch/arm64/mm/pgd.c pgdir_is_page_size(): PGD_SIZE == PAGE_SIZE, or (4 or 5
    # levels) the level LPA2 folds at run time; otherwise pgd_alloc() uses a slab.
    (4096, 48, 48, True),
    (4096, 52, 52, False),   # 16 entries: 128 bytes
    (4096, 52, 48, True),    # !pgtable_l5_enabled()
    (16384, 52, 47, True),   # !pgtable_l4_enabled()
    (16384, 48, 48, False),  # 2 entries
    (65536, 48, 48, False),  # 64 entries
    (65536, 52, 48, False),  # 64K/52 keeps its 1024-entry PGD (TTBR offset instead)
    (65536, 42, 42, True),
])
def test_pgdir_is_page_size(page_size, va_bits, actual, page_sized):
    cfg = KernelConfig(page_size=page_size, va_bits=va_bits, vabits_actual=actual)
    assert pgtable_geometry(cfg).pgdir_is_page_size is page_sized


def test_geometry_table_4k_48():
    # pgtable-hwdef.h for 4K/48: PGDIR_SHIFT 39, PUD_SHIFT 30, PMD_SHIFT 21, PAGE_SHIFT 12.
    table = pgtable_geometry(KernelConfig(page_size=4096, va_bits=48)).table()
    assert table["index_lo"].tolist() == [39, 30, 21, 12]
    assert table["entry_span"].tolist() == [1 << 39, SZ_1G, SZ_2M, 4096]
    assert table["block_size"].isna().tolist() == [True, False, False, True]
    assert table["mod_flag"].tolist() == ["PGTBL_P4D_MODIFIED", "PGTBL_PUD_MODIFIED",
                                          "PGTBL_PMD_MODIFIED", "PGTBL_PTE_MODIFIED"]
