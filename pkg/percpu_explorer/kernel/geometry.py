"""arm64 page-table geometry: the levels, shifts and table sizes of a configuration.

`pgtable_geometry(cfg)` is the one place the translation levels are worked out:
CONFIG_PGTABLE_LEVELS from VA_BITS, ARM64_HW_PGTABLE_LEVEL_SHIFT for every level
(asm/pgtable-hwdef.h), the folding of unused levels by asm-generic's
pgtable-nop4d.h/-nopud.h/-nopmd.h, the LPA2 run-time folding of
arch/arm64/kernel/pi/map_kernel.c and the TTBR1_BADDR_4852_OFFSET view of a 64K/52
kernel on 48-bit hardware. `Geometry.symbols()` gives the macros the layout needs
(PGDIR_SHIFT, PGDIR_SIZE, PTRS_PER_PGD, ...); `split_va()` cuts an address into
per-level indices.

Levels are numbered as the ARM ARM numbers lookup levels: -1 (only 4K/52 with
LPA2), 0, 1, 2, 3 (the page level). Addresses are ints masked to 64 bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from .config import KernelConfig
from .units import MASK64, fmt_addr, format_size, neg, parse_addr

# include/linux/pgtable.h PGTBL_*_MODIFIED, by the lookup level whose entry changed.
PGTBL_MODIFIED = {-1: ("PGTBL_PGD_MODIFIED", 1 << 0), 0: ("PGTBL_P4D_MODIFIED", 1 << 1),
                  1: ("PGTBL_PUD_MODIFIED", 1 << 2), 2: ("PGTBL_PMD_MODIFIED", 1 << 3),
                  3: ("PGTBL_PTE_MODIFIED", 1 << 4)}
_TABLE_NAME = {-1: "PGD", 0: "P4D", 1: "PUD", 2: "PMD", 3: "PTE"}
# The generic levels, root first; the lookup level of each is its index - 1.
_GENERIC = ("pgd", "p4d", "pud", "pmd", "pte")


def pgtable_levels(page_size: int, va_bits: int) -> int:
    """CONFIG_PGTABLE_LEVELS as arch/arm64/Kconfig defaults it (2 to 5):
    ARM64_HW_PGTABLE_LEVELS(va_bits) = ((va_bits) - 4) / (PAGE_SHIFT - 3)."""
    page_shift = page_size.bit_length() - 1
    return (va_bits - 4) // (page_shift - 3)


def hw_level_shift(page_shift: int, level: int) -> int:
    """ARM64_HW_PGTABLE_LEVEL_SHIFT(n) = (PAGE_SHIFT - 3) * (4 - n) + 3."""
    return (page_shift - 3) * (4 - level) + 3


def page_offset(va_bits: int) -> int:
    """_PAGE_OFFSET(va) = -(UL(1) << (va)): the lowest address TTBR1 translates."""
    return neg(1 << va_bits)


def _build_level(name: str, nlevels: int) -> int:
    """The lookup level a generic level resolves to in the build: a folded level takes
    the table (and shift) of the level above it, up to the root 4 - CONFIG_PGTABLE_LEVELS
    (pgtable-nop4d.h P4D_SHIFT = PGDIR_SHIFT, -nopud.h PUD_SHIFT = P4D_SHIFT, ...)."""
    return max(_GENERIC.index(name) - 1, 4 - nlevels)


@dataclass(frozen=True)
class Level:
    """One lookup level the hardware walks.

    name: crash-style table name (the root is always "PGD"); kernel_names: the
    generic names (pgd/p4d/pud/pmd/pte) that resolve to this table once folding
    is applied. shift/ptrs: the kernel's index is (va >> shift) & (ptrs - 1);
    hw_ptrs: entries the hardware can index (fewer than ptrs at the root of
    64K/52 on 48-bit hardware). block_size: what one entry maps as a block when
    mmu.c may use one (level 2 always, level 1 only with 4K pages:
    pud_sect_supported()); None where only tables (or pages) are possible.
    """

    name: str
    kernel_names: tuple[str, ...]
    hw_level: int
    shift: int
    ptrs: int
    hw_ptrs: int
    block_size: int | None

    @property
    def entry_span(self) -> int:
        """Bytes of VA one entry covers (PGDIR_SIZE, PUD_SIZE, ... PAGE_SIZE)."""
        return 1 << self.shift

    @property
    def table_size(self) -> int:
        """Bytes the kernel's table holds: ptrs * sizeof(pgd_t)."""
        return self.ptrs * 8

    @property
    def index_bits(self) -> tuple[int, int]:
        """VA bits [hi:lo] the hardware index takes at this level."""
        return (self.shift + self.hw_ptrs.bit_length() - 2, self.shift)

    @property
    def mod_flag(self) -> str:
        """The pgtbl_mod_mask bit set when an entry of this level is populated."""
        return PGTBL_MODIFIED[self.hw_level][0]

    def __repr__(self) -> str:
        hi, lo = self.index_bits
        block = f", block {format_size(self.block_size)}" if self.block_size else ""
        return (f"Level({self.name} L{self.hw_level}: [{hi}:{lo}], {self.ptrs} entries, "
                f"{format_size(self.table_size)} table{block})")


@dataclass(frozen=True)
class Geometry:
    """Translation geometry of a configuration as the kernel builds it and the CPU walks it.

    pgtable_levels: CONFIG_PGTABLE_LEVELS; pgdir_shift: the build's PGDIR_SHIFT;
    levels: what runs (fewer when LPA2 folds a level because vabits_actual < VA_BITS);
    folded: the kernel's folded levels (p4d/pud/pmd by asm-generic pgtable-nop*d.h,
    then the one LPA2 folds at run time: `runtime_folded`, as
    mm_p4d_folded()/mm_pud_folded() report). pgd_size: PGD_SIZE = PTRS_PER_PGD * 8
    (smaller than a page for 4K/52, 16K/48, 16K/52, 64K/48, 64K/52). ttbr1_offset:
    TTBR1_BADDR_4852_OFFSET when a 64K/52 kernel runs on 48-bit hardware (TTBR1
    points that far into the PGD), else 0. va_start: the lowest TTBR1 address,
    _PAGE_OFFSET(vabits_actual).
    """

    config: KernelConfig
    pgtable_levels: int
    levels: tuple[Level, ...]
    folded: tuple[str, ...]
    runtime_folded: tuple[str, ...]
    pgd_size: int
    ttbr1_offset: int
    va_start: int
    pgdir_shift: int

    @property
    def page_shift(self) -> int:
        return self.config.page_shift

    @property
    def root(self) -> Level:
        return self.levels[0]

    @property
    def runtime_levels(self) -> int:
        return len(self.levels)

    @property
    def pgdir_is_page_size(self) -> bool:
        """arch/arm64/mm/pgd.c pgdir_is_page_size(): PGD_SIZE == PAGE_SIZE, or LPA2
        folds the PGD at run time; otherwise pgd_alloc() takes PGD_SIZE from a slab."""
        return self.pgd_size == self.config.page_size or bool(self.runtime_folded)

    def kernel_shift(self, name: str) -> int:
        """The build's shift of a generic level ("pgd" ... "pte"): PGDIR_SHIFT,
        P4D_SHIFT, PUD_SHIFT, PMD_SHIFT or PAGE_SHIFT, folded levels included."""
        return hw_level_shift(self.page_shift, _build_level(name, self.pgtable_levels))

    def symbols(self) -> dict[str, int]:
        """The asm/pgtable-hwdef.h macros of the build: PGDIR_SHIFT, PGDIR_SIZE,
        PTRS_PER_PGD, PTRS_PER_PTE and the P4D/PUD/PMD shifts and sizes."""
        sym = {
            "PGDIR_SHIFT": self.pgdir_shift,
            "PGDIR_SIZE": 1 << self.pgdir_shift,
            "PTRS_PER_PGD": self.pgd_size // 8,
            "PTRS_PER_PTE": 1 << (self.page_shift - 3),
        }
        for level in ("P4D", "PUD", "PMD"):
            sym[f"{level}_SHIFT"] = self.kernel_shift(level.lower())
        for level in ("P4D", "PUD", "PMD"):
            sym[f"{level}_SIZE"] = 1 << sym[f"{level}_SHIFT"]
        return sym

    def table(self) -> pd.DataFrame:
        """One row per level: name, level, index bits, entries, table and block size."""
        rows = [{"level": lv.name, "hw_level": lv.hw_level,
                 "kernel_names": "/".join(lv.kernel_names),
                 "index_hi": lv.index_bits[0], "index_lo": lv.index_bits[1],
                 "ptrs": lv.ptrs, "hw_ptrs": lv.hw_ptrs, "table_size": lv.table_size,
                 "entry_span": lv.entry_span, "block_size": lv.block_size,
                 "mod_flag": lv.mod_flag} for lv in self.levels]
        return pd.DataFrame(rows).astype({"block_size": "Int64"})

    def __repr__(self) -> str:
        fold = f", folded {'/'.join(self.folded)}" if self.folded else ""
        return (f"Geometry({self.config.label()}: {self.runtime_levels} levels at run time "
                f"(CONFIG_PGTABLE_LEVELS={self.pgtable_levels}){fold})")


def pgtable_geometry(cfg: KernelConfig) -> Geometry:
    """The levels of cfg's kernel page tables, as the kernel builds and the hardware walks them.

    CONFIG_PGTABLE_LEVELS = ARM64_HW_PGTABLE_LEVELS(VA_BITS); the root is level
    4 - CONFIG_PGTABLE_LEVELS, PGDIR_SHIFT its shift and PTRS_PER_PGD =
    1 << (VA_BITS - PGDIR_SHIFT). With LPA2 (4K or 16K pages, VA_BITS 52) on hardware
    without it, early_map_kernel() starts one level lower (root_level++) and
    pgtable_l5_enabled()/pgtable_l4_enabled() fold that level at run time: the
    PGD page is then indexed as the next level's table. A 64K/52 kernel on 48-bit
    hardware keeps its levels and points TTBR1 at entry 2**(52 - PGDIR_SHIFT) -
    2**(48 - PGDIR_SHIFT) of the PGD (TTBR1_BADDR_4852_OFFSET).
    """
    page_shift = cfg.page_shift
    nlevels = pgtable_levels(cfg.page_size, cfg.va_bits)
    build_root = 4 - nlevels
    pgdir_shift = hw_level_shift(page_shift, build_root)
    ptrs_per_pgd = 1 << (cfg.va_bits - pgdir_shift)
    ptrs_per_table = 1 << (page_shift - 3)  # PTRS_PER_PTE = PTRS_PER_PMD = PTRS_PER_PUD
    lpa2 = cfg.va_bits == 52 and cfg.page_size != 65536
    actual = cfg.vabits_actual
    assert actual is not None
    run_root = build_root + 1 if lpa2 and actual < cfg.va_bits else build_root
    ttbr1_offset = 0
    if cfg.va_bits == 52 and not lpa2 and actual < cfg.va_bits:
        # TTBR1_BADDR_4852_OFFSET = ((1 << (52 - PGDIR_SHIFT)) - (1 << (48 - PGDIR_SHIFT))) * 8
        ttbr1_offset = ((1 << (52 - pgdir_shift)) - (1 << (48 - pgdir_shift))) * 8

    # Generic name -> lookup level after build-time folding, then after run-time
    # folding (the PGD resolves to the level below it).
    run_level = {n: max(_build_level(n, nlevels), run_root) for n in _GENERIC}
    levels = []
    for hw in range(run_root, 4):
        names = tuple(n for n in _GENERIC if run_level[n] == hw)
        shift = hw_level_shift(page_shift, hw)
        ptrs = ptrs_per_pgd if hw == build_root else ptrs_per_table
        hw_ptrs = 1 << (actual - shift) if hw == run_root else ptrs
        if hw == 2 or (hw == 1 and cfg.page_size == 4096):
            block: int | None = 1 << shift
        else:
            block = None
        name = "PGD" if hw == run_root else _TABLE_NAME[hw]
        levels.append(Level(name, names, hw, shift, ptrs, hw_ptrs, block))
    # Kernel terms: asm-generic pgtable-nop4d.h/-nopud.h/-nopmd.h fold p4d, pud, pmd
    # below CONFIG_PGTABLE_LEVELS 5, 4, 3; LPA2 then folds one more at run time
    # (mm_p4d_folded() / mm_pud_folded()).
    build_folded = tuple(n for n, need in (("p4d", 5), ("pud", 4), ("pmd", 3)) if nlevels < need)
    runtime_folded: tuple[str, ...] = ()
    if run_root != build_root:
        runtime_folded = (_GENERIC[build_root + 2],)
    return Geometry(cfg, nlevels, tuple(levels), build_folded + runtime_folded, runtime_folded,
                    ptrs_per_pgd * 8, ttbr1_offset, page_offset(actual), pgdir_shift)


@dataclass(frozen=True)
class VaSplit:
    """A VA cut into per-level indices (kernel indices, root first) and page offset."""

    va: int
    levels: tuple[str, ...]
    indices: tuple[int, ...]
    hw_root_index: int
    page_offset: int

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}={i}" for n, i in zip(self.levels, self.indices, strict=True))
        return f"VaSplit({fmt_addr(self.va)}: {parts}, offset={self.page_offset:#x})"


def check_kernel_va(geo: Geometry, va: int, what: str = "address") -> int:
    """`va` if TTBR1 translates it with the configuration's vabits_actual; else ValueError."""
    if not isinstance(va, int) or not 0 <= va <= MASK64:
        raise ValueError(f"{what} {va!r} is not a 64-bit address")
    if va < geo.va_start:
        raise ValueError(
            f"{what} {fmt_addr(va)} is outside the kernel half TTBR1 translates with "
            f"vabits_actual={geo.config.vabits_actual}: valid range "
            f"{fmt_addr(geo.va_start)}..{fmt_addr(MASK64)}")
    return va


def split_va(geo: Geometry, va: int | str) -> VaSplit:
    """Per-level indices of a kernel VA, as pgd_index()/pud_index()/... compute them.

    The root's hardware index (`hw_root_index`) differs from the kernel's
    pgd_index() only under TTBR1_BADDR_4852_OFFSET.
    """
    value = check_kernel_va(geo, parse_addr(va))
    indices = tuple((value >> lv.shift) & (lv.ptrs - 1) for lv in geo.levels)
    root = geo.root
    hw_root = (value >> root.shift) & (root.hw_ptrs - 1)
    return VaSplit(value, tuple(lv.name for lv in geo.levels), indices, hw_root,
                   value & ((1 << geo.page_shift) - 1))
