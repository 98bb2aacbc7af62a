"""arm64 kernel page tables: geometry, a sparse multi-level model, one root per CPU.

Everything starts from a `KernelConfig`. `pgtable_geometry(cfg)` gives the
translation levels the hardware walks at run time (asm/pgtable-hwdef.h
ARM64_HW_PGTABLE_LEVEL_SHIFT, with the LPA2 run-time folding of
arch/arm64/kernel/pi/map_kernel.c and the TTBR1_BADDR_4852_OFFSET view of a 64K/52
kernel on 48-bit hardware). `KernelPageTables` holds sparse tables, created on
first use, for `swapper_pg_dir` and, with `local_percpu`, one root per CPU as
RFC patch 01/11 describes; mappings follow mm/vmalloc.c vmap_range_noflush()
and vunmap_range_noflush(), including the pgtbl_mod_mask bookkeeping that
decides when `arch_sync_kernel_mappings()` runs.

Levels are numbered as the ARM ARM numbers lookup levels: -1 (only 4K/52 with
LPA2), 0, 1, 2, 3 (the page level). Addresses are ints masked to 64 bits.

Assumptions about the non-public patches (patch 01/11 and 05-09), made once here:

- Patch 01/11's ARCH_PAGE_TABLE_SYNC_MASK is the PGTBL_*_MODIFIED bit of the
  level TTBR1 points at (the root, after folding), as x86 names it: i386's 2-level
  build uses PGTBL_PMD_MODIFIED, x86-64 (2025) PGTBL_PGD_MODIFIED or
  PGTBL_P4D_MODIFIED by pgtable_l5_enabled(). Only a changed root entry syncs.
- Its arch_sync_kernel_mappings(start, end) copies swapper's root entries covering
  [start, end) (at least one, as the kernel's do/while over pgd_addr_end()) into
  the root of every other CPU, after the patch 02/11 local-area skip, and does
  nothing before `percpu_pgd_setup_done`.
- Each CPU's root takes a whole page ("one PGD page per CPU"); CPU 0 uses
  swapper_pg_dir. Setting up the per-CPU roots copies swapper's entries outside
  the Local Percpu area.
- The first chunk is placed as `percpu_explorer.rfc.DEFAULT_PLACEMENT` says (by
  default at the top of both areas) and mapped while `percpu_pgd_setup_done` is
  still false (patch 05/11 runs from setup_per_cpu_areas()).
- Physical addresses are below 2**48 (no 52-bit PA descriptor encoding);
  descriptors carry only the type bits and the output address; the contiguous
  bit and attributes are not modelled. As in the kernel, unmapping clears leaf
  entries but never frees intermediate tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from .config import KernelConfig
from .layout import Layout, compute_layout, hw_level_shift, pgtable_levels
from .rfc import DEFAULT_PLACEMENT, RfcPlacement
from .units import MASK64, fmt_addr, format_size, parse_addr

# asm/pgtable-hwdef.h descriptor types.
PMD_TYPE_TABLE = 3  # table descriptor at levels -1..2
PMD_TYPE_SECT = 1  # block descriptor
PTE_TYPE_PAGE = 3  # page descriptor at level 3
PHYS_LIMIT = 1 << 48  # model restriction: no 52-bit PA encoding
_ADDR_MASK = (PHYS_LIMIT - 1) & ~0xFFF

# include/linux/pgtable.h PGTBL_*_MODIFIED, by the lookup level whose entry changed.
PGTBL_MODIFIED = {-1: ("PGTBL_PGD_MODIFIED", 1 << 0), 0: ("PGTBL_P4D_MODIFIED", 1 << 1),
                  1: ("PGTBL_PUD_MODIFIED", 1 << 2), 2: ("PGTBL_PMD_MODIFIED", 1 << 3),
                  3: ("PGTBL_PTE_MODIFIED", 1 << 4)}
_TABLE_NAME = {-1: "PGD", 0: "P4D", 1: "PUD", 2: "PMD", 3: "PTE"}
_GENERIC = ("pgd", "p4d", "pud", "pmd", "pte")
SHARED = -1  # owner of tables reached by every CPU

# Page-table pages come from a fake pool far above the data pages tests use.
PT_POOL_BASE = 0xF0_0000_0000
RAM_BASE = 0x40000000  # QEMU virt's RAM base, where the model places percpu units
# Assumed first-chunk unit size: a 128K unit (PCPU_MIN_UNIT_SIZE is 32K); a parameter.
DEFAULT_UNIT_SIZE = 128 << 10


# --- geometry --------------------------------------------------------------------------

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
    """Translation geometry of a configuration as the CPU walks it.

    pgtable_levels: CONFIG_PGTABLE_LEVELS; levels: what runs (fewer when LPA2
    folds a level because vabits_actual < VA_BITS); folded: the kernel's folded
    levels (p4d/pud/pmd by asm-generic pgtable-nop*d.h, then the one LPA2 folds at
    run time: `runtime_folded`, as mm_p4d_folded()/mm_pud_folded() report). pgd_size: PGD_SIZE =
    PTRS_PER_PGD * 8 (smaller than a page for 4K/52, 16K/48, 16K/52, 64K/48,
    64K/52). ttbr1_offset: TTBR1_BADDR_4852_OFFSET when a 64K/52 kernel runs on
    48-bit hardware (TTBR1 points that far into the PGD), else 0. va_start: the
    lowest TTBR1 address, _PAGE_OFFSET(vabits_actual).
    """

    config: KernelConfig
    pgtable_levels: int
    levels: tuple[Level, ...]
    folded: tuple[str, ...]
    runtime_folded: tuple[str, ...]
    pgd_size: int
    ttbr1_offset: int
    va_start: int

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
    """The levels of cfg's kernel page tables, as the hardware walks them.

    CONFIG_PGTABLE_LEVELS = ARM64_HW_PGTABLE_LEVELS(VA_BITS); the root is level
    4 - CONFIG_PGTABLE_LEVELS. With LPA2 (4K or 16K pages, VA_BITS 52) on hardware
    without it, early_map_kernel() starts one level lower (root_level++) and
    pgtable_l5_enabled()/pgtable_l4_enabled() fold that level at run time: the
    PGD page is then indexed as the next level's table. A 64K/52 kernel on 48-bit
    hardware keeps its levels and points TTBR1 at entry 2**(52 - PGDIR_SHIFT) -
    2**(48 - PGDIR_SHIFT) of the PGD (TTBR1_BADDR_4852_OFFSET).
    """
    page_shift = cfg.page_shift
    bits = page_shift - 3  # PTRS_PER_PTE = 1 << (PAGE_SHIFT - 3)
    nlevels = pgtable_levels(cfg.page_size, cfg.va_bits)
    build_root = 4 - nlevels
    pgdir_shift = hw_level_shift(page_shift, build_root)
    ptrs_per_pgd = 1 << (cfg.va_bits - pgdir_shift)
    lpa2 = cfg.va_bits == 52 and cfg.page_size != 65536
    actual = cfg.vabits_actual
    assert actual is not None
    run_root = build_root + 1 if lpa2 and actual < cfg.va_bits else build_root
    ttbr1_offset = 0
    if cfg.va_bits == 52 and not lpa2 and actual < cfg.va_bits:
        # TTBR1_BADDR_4852_OFFSET = ((1 << (52 - PGDIR_SHIFT)) - (1 << (48 - PGDIR_SHIFT))) * 8
        ttbr1_offset = ((1 << (52 - pgdir_shift)) - (1 << (48 - pgdir_shift))) * 8

    # Generic name -> lookup level after build-time folding (a folded level
    # resolves to its parent's table), then after run-time folding (the PGD
    # resolves to the level below it).
    build_level: dict[str, int] = {}
    for i, name in enumerate(_GENERIC):
        hw = i - 1
        build_level[name] = hw if hw >= build_root else build_root
    run_level = {n: max(lv, run_root) for n, lv in build_level.items()}
    levels = []
    for hw in range(run_root, 4):
        names = tuple(n for n in _GENERIC if run_level[n] == hw)
        shift = hw_level_shift(page_shift, hw)
        if hw == build_root:
            ptrs = ptrs_per_pgd
        else:
            ptrs = 1 << bits
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
    runtime_folded = ()
    if run_root != build_root:
        runtime_folded = (_GENERIC[build_root + 2],)
    folded = build_folded + runtime_folded
    return Geometry(cfg, nlevels, tuple(levels), folded, runtime_folded,
                    ptrs_per_pgd * 8, ttbr1_offset, (-(1 << actual)) & MASK64)


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


def _check_kernel_va(geo: Geometry, va: int, what: str = "address") -> int:
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
    value = _check_kernel_va(geo, parse_addr(va))
    indices = tuple((value >> lv.shift) & (lv.ptrs - 1) for lv in geo.levels)
    root = geo.root
    hw_root = (value >> root.shift) & (root.hw_ptrs - 1)
    return VaSplit(value, tuple(lv.name for lv in geo.levels), indices, hw_root,
                   value & ((1 << geo.page_shift) - 1))


# --- the sparse tables -----------------------------------------------------------------

def _fmt_end(end: int) -> str:
    """An exclusive end; 2**64 (the end of the address space) is not wrapped."""
    return "0x10000000000000000" if end == 1 << 64 else fmt_addr(end)


class _Table:
    """One page-table page: sparse entries {index: descriptor}."""

    __slots__ = ("entries", "level", "owner", "pa")

    def __init__(self, pa: int, level: int, owner: int) -> None:
        self.pa = pa
        self.level = level  # index into Geometry.levels, 0 = root
        self.owner = owner  # SHARED or a CPU number
        self.entries: dict[int, int] = {}


@dataclass(frozen=True)
class MapResult:
    """What one vmap/vunmap call did: pgtbl_mod_mask, tables allocated, the sync."""

    start: int
    end: int
    cpu: int | None
    mask: int
    tables_allocated: int
    sync: SyncResult | None

    @property
    def mask_names(self) -> tuple[str, ...]:
        return tuple(name for name, bit in PGTBL_MODIFIED.values() if self.mask & bit)

    def __repr__(self) -> str:
        who = "shared" if self.cpu is None else f"cpu {self.cpu}"
        return (f"MapResult({fmt_addr(self.start)}-{_fmt_end(self.end)} {who}: "
                f"{'|'.join(self.mask_names) or '0'}, {self.tables_allocated} tables, "
                f"sync {self.sync!r})")


@dataclass(frozen=True)
class SyncResult:
    """One arch_sync_kernel_mappings(start, end) call: skipped by the local-area
    rule, or the root indices copied and the entries written (indices x CPUs)."""

    start: int
    end: int
    skipped: bool
    indices: tuple[int, ...]
    entries_copied: int
    reason: str = "copied"  # or "local-area skip", "before percpu_pgd_setup_done"

    def __repr__(self) -> str:
        what = self.reason if self.skipped else (
            f"copied indices {list(self.indices)}, {self.entries_copied} entries")
        return f"SyncResult({fmt_addr(self.start)}-{_fmt_end(self.end)}: {what})"


@dataclass(frozen=True)
class WalkStep:
    """One level of a walk: the table, the entry read and what it leads to."""

    level: str
    hw_level: int
    index: int
    hw_index: int
    table_pa: int
    entry_pa: int
    descriptor: int
    kind: str  # "table", "block", "page" or "invalid"
    next_pa: int | None  # next table, or the output address of a block/page
    owner: str  # "shared" or "cpu N"

    def __repr__(self) -> str:
        nxt = "" if self.next_pa is None else f" -> {fmt_addr(self.next_pa)}"
        return (f"WalkStep({self.level}[{self.index}] @ {fmt_addr(self.entry_pa)} = "
                f"{self.descriptor:#x} {self.kind}{nxt}, {self.owner})")


@dataclass(frozen=True)
class Walk:
    """A translation of `va` from `cpu`'s root: the steps and the PA, or the fault."""

    cpu: int
    va: int
    root_pa: int
    ttbr1: int
    steps: tuple[WalkStep, ...]
    pa: int | None
    fault_level: str | None
    mapping_size: int | None

    @property
    def ok(self) -> bool:
        return self.pa is not None

    def to_frame(self) -> pd.DataFrame:
        """The steps as a DataFrame (one row per level)."""
        return pd.DataFrame([s.__dict__ for s in self.steps])

    def __repr__(self) -> str:
        out = fmt_addr(self.pa) if self.pa is not None else f"fault at {self.fault_level}"
        return f"Walk(cpu {self.cpu}, {fmt_addr(self.va)} -> {out})"


def format_walk(walk: Walk) -> str:
    """The walk printed like the crash utility's `vtop`."""
    lines = ["VIRTUAL           PHYSICAL",
             f"{walk.va:016x}  " + (f"{walk.pa:x}" if walk.pa is not None else "(not mapped)"),
             "",
             f"CPU {walk.cpu} PAGE DIRECTORY: {walk.root_pa:x}"
             + (f"  (TTBR1 {walk.ttbr1:x})" if walk.ttbr1 != walk.root_pa else "")]
    for s in walk.steps:
        idx = f"[{s.index}]" if s.index == s.hw_index else f"[{s.index}, hw {s.hw_index}]"
        lines.append(f"  {s.level:>4}: {s.entry_pa:x} => {s.descriptor:x}"
                     f"  {idx} {s.kind}, {s.owner}")
    if walk.pa is not None:
        lines.append(f"  PAGE: {walk.pa & ~((walk.mapping_size or 1) - 1):x}  "
                     f"({format_size(walk.mapping_size or 0)})")
    else:
        lines.append(f"  fault: no valid entry at {walk.fault_level}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Violation:
    """A broken per-CPU invariant: kind is "stale-shared" (a CPU's root entry
    outside the local area differs from swapper's), "foreign-table" or
    "foreign-page" (a CPU's local area reaches another CPU's table or page)."""

    kind: str
    cpu: int
    va_start: int
    va_end: int
    message: str


class KernelPageTables:
    """swapper_pg_dir plus one root per CPU (RFC patch 01/11), as sparse tables.

    With `local_percpu=False` every CPU uses swapper_pg_dir (mainline; arm64
    defines no ARCH_PAGE_TABLE_SYNC_MASK, so nothing is ever synced). With it,
    CPU 0 uses swapper_pg_dir and CPUs 1.. get their own root; the Local Percpu
    entries of each root point at tables private to that CPU. Shared mappings go
    through swapper and reach other roots only through arch_sync_kernel_mappings().
    See the module docstring for what is assumed about the unpublished patches.
    """

    def __init__(self, cfg: KernelConfig, nr_cpus: int | None = None, *,
                 percpu_pgd_setup_done: bool = True) -> None:
        nr = cfg.nr_cpus if nr_cpus is None else nr_cpus
        if not isinstance(nr, int) or not 1 <= nr <= cfg.nr_cpus:
            raise ValueError(f"nr_cpus {nr} is outside 1..{cfg.nr_cpus} (CONFIG_NR_CPUS)")
        self.config = cfg
        self.nr_cpus = nr
        self.geometry = pgtable_geometry(cfg)
        self.layout: Layout = compute_layout(cfg)
        if cfg.local_percpu and self.layout.problems:
            codes = ", ".join(sorted({f.code for f in self.layout.problems}))
            raise ValueError(
                f"the patched layout of {cfg.label()} is broken ({codes}): 2 * PGDIR_SIZE "
                f"areas do not fit; use local_percpu=False or a configuration whose "
                f"layout is sane (4K/39, 4K/48, 16K/36, 16K/47, 64K/*)")
        self.percpu_pgd_setup_done = percpu_pgd_setup_done
        self._levels = self.geometry.levels
        self._page_size = cfg.page_size
        self._tables: dict[int, _Table] = {}
        self._counts: dict[tuple[int, int], int] = {}
        self._next_pa = PT_POOL_BASE
        self.sync_calls = 0
        self.sync_skipped = 0
        self.entries_copied = 0
        self._local_pages: dict[int, list[tuple[int, int]]] = {}
        sym = self.layout.symbols
        self.local_start: int | None = sym.get("LOCAL_PERCPU_START")
        self.local_end: int | None = sym.get("LOCAL_PERCPU_END")
        self.swapper = self._alloc(0, SHARED)
        if cfg.local_percpu:
            self.roots = [self.swapper] + [self._alloc(0, cpu) for cpu in range(1, nr)]
        else:
            self.roots = [self.swapper] * nr

    # -- bookkeeping --
    def _alloc(self, level: int, owner: int) -> _Table:
        table = _Table(self._next_pa, level, owner)
        self._next_pa += self._page_size
        self._tables[table.pa] = table
        key = (owner, level)
        self._counts[key] = self._counts.get(key, 0) + 1
        return table

    def root_index(self, va: int) -> int:
        """pgd_index(va) of the run-time root."""
        root = self._levels[0]
        return (va >> root.shift) & (root.ptrs - 1)

    def _check_cpu(self, cpu: int) -> None:
        if not isinstance(cpu, int) or not 0 <= cpu < self.nr_cpus:
            raise ValueError(f"cpu {cpu!r} is outside 0..{self.nr_cpus - 1} "
                             f"(nr_cpus {self.nr_cpus})")

    def _in_local(self, start: int, end: int) -> bool:
        return (self.local_start is not None and self.local_end is not None
                and start < self.local_end and end > self.local_start)

    def _check_range(self, start: int, end: int, cpu: int | None) -> None:
        geo = self.geometry
        for what, value in (("start", start), ("end", end)):
            if not isinstance(value, int) or value % self._page_size:
                raise ValueError(f"{what} {value!r} is not a multiple of PAGE_SIZE "
                                 f"({format_size(self._page_size)})")
        _check_kernel_va(geo, start, "start")
        if not start < end <= 1 << 64:
            raise ValueError(f"range {fmt_addr(start)}..{end:#x} is empty or runs past "
                             f"2**64; end must be above start and at most 2**64")
        if cpu is None:
            if self._in_local(start, end):
                raise ValueError(
                    f"shared range [{fmt_addr(start)}, {fmt_addr(end)}) enters the Local "
                    f"Percpu area [{fmt_addr(self.local_start or 0)}, "
                    f"{fmt_addr(self.local_end or 0)}); pass cpu=N to map it for one CPU")
            return
        self._check_cpu(cpu)
        if self.local_start is None or self.local_end is None:
            raise ValueError("cpu-local mappings need local_percpu=True (RFC patch 02/11); "
                             "this is a mainline configuration")
        if start < self.local_start or end > self.local_end:
            raise ValueError(
                f"local range [{fmt_addr(start)}, {fmt_addr(end)}) is outside the Local "
                f"Percpu area [{fmt_addr(self.local_start)}, {fmt_addr(self.local_end)})")

    # -- the walk of existing entries --
    def _first_mapped(self, table: _Table, li: int, start: int, end: int) -> int | None:
        """Lowest VA in [start, end) with a valid leaf below `table`, or None."""
        entries = table.entries
        if not entries:
            return None
        lv = self._levels[li]
        shift = lv.shift
        mask = lv.ptrs - 1
        base = start & ~((lv.ptrs << shift) - 1)
        i_lo = (start >> shift) & mask
        i_hi = ((end - 1) >> shift) & mask
        if i_hi - i_lo + 1 <= len(entries):
            keys: Iterator[int] = (i for i in range(i_lo, i_hi + 1) if i in entries)
        else:
            keys = iter(sorted(i for i in entries if i_lo <= i <= i_hi))
        last = li == len(self._levels) - 1
        for i in keys:
            lo = max(start, base | (i << shift))
            hi = min(end, (base | (i << shift)) + (1 << shift))
            desc = entries[i]
            if last or (desc & 3) == PMD_TYPE_SECT:
                return lo
            found = self._first_mapped(self._tables[desc & _ADDR_MASK], li + 1, lo, hi)
            if found is not None:
                return found
        return None

    def _map(self, table: _Table, li: int, start: int, end: int, pa: int,
             owner: int, blocks: bool) -> tuple[int, int]:
        lv = self._levels[li]
        bit = PGTBL_MODIFIED[lv.hw_level][1]
        shift, mask = lv.shift, lv.ptrs - 1
        entries = table.entries
        mod = allocated = 0
        addr = start
        if li == len(self._levels) - 1:
            step = 1 << shift
            while addr != end:
                entries[(addr >> shift) & mask] = pa | PTE_TYPE_PAGE
                addr += step
                pa += step
            return bit, 0
        span = 1 << shift
        while addr != end:
            nxt = min(((addr >> shift) + 1) << shift, end)
            idx = (addr >> shift) & mask
            desc = entries.get(idx)
            if (desc is None and blocks and lv.block_size and nxt - addr == span
                    and not pa & (span - 1)):
                entries[idx] = pa | PMD_TYPE_SECT
                mod |= bit
            else:
                if desc is None:
                    child = self._alloc(li + 1, owner)
                    allocated += 1
                    entries[idx] = child.pa | PMD_TYPE_TABLE
                    mod |= bit
                else:
                    child = self._tables[desc & _ADDR_MASK]
                m, a = self._map(child, li + 1, addr, nxt, pa, owner, blocks)
                mod |= m
                allocated += a
            pa += nxt - addr
            addr = nxt
        return mod, allocated

    def _unmap(self, table: _Table, li: int, start: int, end: int) -> int:
        lv = self._levels[li]
        bit = PGTBL_MODIFIED[lv.hw_level][1]
        entries = table.entries
        shift, mask = lv.shift, lv.ptrs - 1
        base = start & ~((lv.ptrs << shift) - 1)
        i_lo, i_hi = (start >> shift) & mask, ((end - 1) >> shift) & mask
        last = li == len(self._levels) - 1
        mod = bit if last else 0  # vunmap_pte_range() always sets PGTBL_PTE_MODIFIED
        for i in sorted(i for i in entries if i_lo <= i <= i_hi):
            desc = entries[i]
            if last or (desc & 3) == PMD_TYPE_SECT:
                del entries[i]  # p?d_clear_huge() / ptep_get_and_clear()
                mod |= bit
                continue
            lo = max(start, base | (i << shift))
            hi = min(end, (base | (i << shift)) + (1 << shift))
            mod |= self._unmap(self._tables[desc & _ADDR_MASK], li + 1, lo, hi)
        return mod

    def _partial_block(self, table: _Table, li: int, start: int, end: int) -> int | None:
        """A block that [start, end) covers only in part, or None."""
        lv = self._levels[li]
        if li == len(self._levels) - 1:
            return None
        shift, mask = lv.shift, lv.ptrs - 1
        base = start & ~((lv.ptrs << shift) - 1)
        i_lo, i_hi = (start >> shift) & mask, ((end - 1) >> shift) & mask
        for i in (i_lo, i_hi):
            desc = table.entries.get(i)
            if desc is None:
                continue
            lo = base | (i << shift)
            if (desc & 3) == PMD_TYPE_SECT:
                if start > lo or end < lo + (1 << shift):
                    return lo
            else:
                found = self._partial_block(self._tables[desc & _ADDR_MASK], li + 1,
                                            max(start, lo), min(end, lo + (1 << shift)))
                if found is not None:
                    return found
        return None

    # -- the public operations --
    def vmap_range(self, start: int, end: int, pa: int, *, cpu: int | None = None,
                   blocks: bool = False) -> MapResult:
        """Map [start, end) to pa.., as vmap_range_noflush() (page granular) or, with
        blocks=True, with block entries where VA, PA and size align (the linear map's
        alloc_init_pud()/alloc_init_cont_pmd() rule). cpu=None maps through swapper
        (shared); cpu=N maps into CPU N's root (patch 08/11 passes that pgd), which
        must be inside the Local Percpu area. Afterwards arch_sync_kernel_mappings()
        runs if the pgtbl_mod_mask has the root level's bit.
        """
        self._check_range(start, end, cpu)
        if not isinstance(pa, int) or pa < 0 or pa % self._page_size:
            raise ValueError(f"physical address {pa!r} is not a non-negative multiple of "
                             f"PAGE_SIZE ({format_size(self._page_size)})")
        if pa + (end - start) > PHYS_LIMIT:
            raise ValueError(f"physical range {pa:#x}+{end - start:#x} is above 2**48, "
                             f"the PA range the model supports (0..{PHYS_LIMIT - 1:#x})")
        root = self.swapper if cpu is None else self.roots[cpu]
        clash = self._first_mapped(root, 0, start, end)
        if clash is not None:
            who = "swapper_pg_dir" if cpu is None else f"CPU {cpu}'s root"
            raise ValueError(f"range [{fmt_addr(start)}, {fmt_addr(end)}) overlaps an "
                             f"existing mapping at {fmt_addr(clash)} in {who}; unmap it first")
        owner = SHARED if cpu is None else cpu
        mod, allocated = self._map(root, 0, start, end, pa, owner, blocks)
        if cpu is not None:
            self._local_pages.setdefault(cpu, []).append((pa, pa + end - start))
        return MapResult(start, end, cpu, mod, allocated, self._maybe_sync(mod, start, end))

    def vunmap_range(self, start: int, end: int, *, cpu: int | None = None) -> MapResult:
        """Clear the leaf entries of [start, end), as vunmap_range_noflush(); tables
        stay (the kernel never frees vmalloc page tables). A block the range covers
        only in part is refused (the kernel would clear all of it)."""
        self._check_range(start, end, cpu)
        root = self.swapper if cpu is None else self.roots[cpu]
        partial = self._partial_block(root, 0, start, end)
        if partial is not None:
            raise ValueError(f"range [{fmt_addr(start)}, {fmt_addr(end)}) covers only part of "
                             f"the block at {fmt_addr(partial)}; unmap whole blocks")
        mod = self._unmap(root, 0, start, end)
        return MapResult(start, end, cpu, mod, 0, self._maybe_sync(mod, start, end))

    def _maybe_sync(self, mod: int, start: int, end: int) -> SyncResult | None:
        if not self.config.local_percpu:
            return None  # mainline arm64: ARCH_PAGE_TABLE_SYNC_MASK is 0
        if mod & PGTBL_MODIFIED[self._levels[0].hw_level][1]:
            return self.arch_sync_kernel_mappings(start, end)
        return None

    def arch_sync_kernel_mappings(self, start: int, end: int) -> SyncResult:
        """Copy swapper's root entries for [start, end) to every other CPU's root.

        Patch 02/11's skip runs first, exactly as written:
        `if (start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END) return;`
        so a range whose exclusive end equals LOCAL_PERCPU_END is copied.
        The walk follows pgd_addr_end() in a do/while: start == end copies one entry.
        """
        start, end = start & MASK64, end & MASK64 if end != 1 << 64 else end
        if not self.config.local_percpu:
            return SyncResult(start, end, True, (), 0, "mainline: one shared root")
        if not self.percpu_pgd_setup_done:
            return SyncResult(start, end, True, (), 0, "before percpu_pgd_setup_done")
        self.sync_calls += 1
        assert self.local_start is not None and self.local_end is not None
        if start >= self.local_start and end < self.local_end:
            self.sync_skipped += 1
            return SyncResult(start, end, True, (), 0, "local-area skip")
        span = self._levels[0].entry_span
        indices = []
        addr = start
        while True:
            idx = self.root_index(addr)
            indices.append(idx)
            desc = self.swapper.entries.get(idx)
            for root in self.roots[1:]:
                if desc is None:
                    root.entries.pop(idx, None)
                else:
                    root.entries[idx] = desc
            boundary = (addr + span) & ~(span - 1) & MASK64  # pgd_addr_end()
            nxt = boundary if (boundary - 1) & MASK64 < (end - 1) & MASK64 else end
            addr = nxt
            if addr == end:
                break
        copied = len(indices) * (len(self.roots) - 1)
        self.entries_copied += copied
        return SyncResult(start, end, False, tuple(indices), copied)

    def setup_percpu_pgd(self) -> int:
        """Give every CPU's root swapper's entries outside the Local Percpu area and
        turn syncing on (patch 01/11's percpu_pgd_setup_done). Returns entries copied."""
        copied = 0
        if self.config.local_percpu:
            local = set()
            if self.local_start is not None and self.local_end is not None:
                local = {self.root_index(self.local_start), self.root_index(self.local_end - 1)}
            shared = {i: d for i, d in self.swapper.entries.items() if i not in local}
            for root in self.roots[1:]:
                for i in [i for i in root.entries if i not in local and i not in shared]:
                    del root.entries[i]
                root.entries.update(shared)
                copied += len(shared)
        self.percpu_pgd_setup_done = True
        return copied

    def walk(self, cpu: int, va: int | str) -> Walk:
        """The hardware walk of va from cpu's root: every level's table, entry and
        descriptor, ending in the output address or the level that faults."""
        self._check_cpu(cpu)
        va = _check_kernel_va(self.geometry, parse_addr(va))
        table = self.roots[cpu]
        ttbr1 = table.pa + self.geometry.ttbr1_offset
        steps = []
        levels = self._levels
        last = len(levels) - 1
        pa = fault = size = None
        for li, lv in enumerate(levels):
            idx = (va >> lv.shift) & (lv.ptrs - 1)
            hw_idx = (va >> lv.shift) & (lv.hw_ptrs - 1)
            desc = table.entries.get(idx, 0)
            owner = "shared" if table.owner == SHARED else f"cpu {table.owner}"
            entry_pa = table.pa + 8 * idx
            if (desc & 1) == 0:
                steps.append(WalkStep(lv.name, lv.hw_level, idx, hw_idx, table.pa, entry_pa,
                                      desc, "invalid", None, owner))
                fault = lv.name
                break
            out = desc & _ADDR_MASK
            if li == last or (desc & 3) == PMD_TYPE_SECT:
                kind = "page" if li == last else "block"
                steps.append(WalkStep(lv.name, lv.hw_level, idx, hw_idx, table.pa, entry_pa,
                                      desc, kind, out, owner))
                size = 1 << lv.shift
                pa = out | (va & (size - 1))
                break
            steps.append(WalkStep(lv.name, lv.hw_level, idx, hw_idx, table.pa, entry_pa,
                                  desc, "table", out, owner))
            table = self._tables[out]
        return Walk(cpu, va, self.roots[cpu].pa, ttbr1, tuple(steps), pa, fault, size)

    def translate(self, cpu: int, va: int) -> int | None:
        """The PA cpu reaches for va, or None (a fast walk without the steps)."""
        table = self.roots[cpu]
        last = len(self._levels) - 1
        for li, lv in enumerate(self._levels):
            desc = table.entries.get((va >> lv.shift) & (lv.ptrs - 1), 0)
            if not desc & 1:
                return None
            if li == last or (desc & 3) == PMD_TYPE_SECT:
                return (desc & _ADDR_MASK) | (va & ((1 << lv.shift) - 1))
            table = self._tables[desc & _ADDR_MASK]
        return None

    def owner_of_pa(self, pa: int) -> int | None:
        """The CPU whose local pages hold pa (per the local mappings made), or None."""
        for cpu, ranges in self._local_pages.items():
            if any(lo <= pa < hi for lo, hi in ranges):
                return cpu
        return None

    # -- counters --
    def table_counts(self) -> pd.DataFrame:
        """Page-table pages per level: shared, private (all CPUs), per CPU, bytes.

        Every table is a page (pagetable_alloc() hands out pages; each root is "one
        PGD page per CPU"). `bytes_if_pgd_alloc` counts the roots as pgd_alloc()
        would allocate them: PGD_SIZE from a slab unless pgdir_is_page_size().
        """
        rows = []
        cpus = max(self.nr_cpus, 1)
        geo = self.geometry
        root_alloc = self._page_size if geo.pgdir_is_page_size else geo.pgd_size
        for li, lv in enumerate(self._levels):
            shared = self._counts.get((SHARED, li), 0)
            private = sum(n for (owner, lvl), n in self._counts.items()
                          if lvl == li and owner != SHARED)
            pages = shared + private
            rows.append({"level": lv.name, "hw_level": lv.hw_level, "shared_pages": shared,
                         "private_pages": private, "private_per_cpu": private / cpus,
                         "pages": pages, "bytes": pages * self._page_size,
                         "bytes_if_pgd_alloc": pages * (root_alloc if li == 0
                                                        else self._page_size)})
        return pd.DataFrame(rows)

    def cpu_table_counts(self) -> pd.DataFrame:
        """Page-table pages private to each CPU (its root and local tables) and bytes."""
        pages = [0] * self.nr_cpus
        for (owner, _), n in self._counts.items():
            if owner != SHARED:
                pages[owner] += n
        return pd.DataFrame({"cpu": range(self.nr_cpus), "pages": pages,
                             "bytes": [p * self._page_size for p in pages]})

    @property
    def total_pages(self) -> int:
        return sum(self._counts.values())

    def pages_of_cpu(self, cpu: int) -> int:
        """Page-table pages private to one CPU (its root and local tables)."""
        self._check_cpu(cpu)
        return sum(n for (owner, _), n in self._counts.items() if owner == cpu)

    # -- invariants --
    def check_invariants(self) -> tuple[Violation, ...]:
        """Outside the Local Percpu area every CPU's root entry equals swapper's (the
        tables below are shared, so every VA translates to the same PA); inside it
        every table and page a CPU reaches is its own. Returns the violations."""
        out: list[Violation] = []
        span = self._levels[0].entry_span
        local: set[int] = set()
        if self.local_start is not None and self.local_end is not None:
            local = {self.root_index(a) for a in range(self.local_start, self.local_end, span)}
        sw = self.swapper.entries
        base = self.geometry.va_start & ~((self._levels[0].ptrs * span) - 1)
        for cpu, root in enumerate(self.roots):
            if cpu and root is not self.swapper:
                for i in set(sw) | set(root.entries):
                    if i in local or sw.get(i) == root.entries.get(i):
                        continue
                    lo = (base | (i * span)) & MASK64
                    out.append(Violation(
                        "stale-shared", cpu, lo, lo + span,
                        f"CPU {cpu}'s root entry {i} ({fmt_addr(lo)}) is "
                        f"{root.entries.get(i, 0):#x}, swapper's is {sw.get(i, 0):#x}"))
            if not self.config.local_percpu:
                continue
            for i in sorted(local):
                desc = root.entries.get(i)
                if desc is None:
                    continue
                lo = (base | (i * span)) & MASK64
                out.extend(self._check_private(cpu, desc, 1, lo, span))
        return tuple(out)

    def _check_private(self, cpu: int, desc: int, li: int, va: int,
                       span: int) -> Iterator[Violation]:
        if li == len(self._levels) or (desc & 3) == PMD_TYPE_SECT:
            pa = desc & _ADDR_MASK
            if not any(lo <= pa < hi for lo, hi in self._local_pages.get(cpu, ())):
                other = self.owner_of_pa(pa)
                whose = f"CPU {other}'s" if other is not None else "no CPU's"
                yield Violation("foreign-page", cpu, va, va + span,
                                f"CPU {cpu}'s local {fmt_addr(va)} maps PA {pa:#x}, "
                                f"which is {whose} local page")
            return
        table = self._tables[desc & _ADDR_MASK]
        if table.owner != cpu:
            owner = "shared" if table.owner == SHARED else f"CPU {table.owner}"
            yield Violation("foreign-table", cpu, va, va + span,
                            f"CPU {cpu}'s local {fmt_addr(va)} leads to a table of {owner}")
            return
        child_span = self._levels[li].entry_span
        for i, d in table.entries.items():
            yield from self._check_private(cpu, d, li + 1, va + i * child_span, child_span)

    def __repr__(self) -> str:
        mode = "per-CPU roots" if self.config.local_percpu else "one shared root"
        return (f"KernelPageTables({self.config.label()}, {self.nr_cpus} CPUs, {mode}, "
                f"{self.total_pages} table pages, {self.entries_copied} PGD entries copied)")


# --- scenarios -------------------------------------------------------------------------

def first_chunk_va(kpt: KernelPageTables, unit_size: int,
                   placement: RfcPlacement = DEFAULT_PLACEMENT) -> tuple[int, int]:
    """(local VA, global VA of CPU 0's unit) of the first chunk, as `placement` assumes
    (by default the local copy ends at LOCAL_PERCPU_END, the units at PERCPU_END)."""
    sym = kpt.layout.symbols
    return (placement.local_base(sym, unit_size),
            placement.first_chunk_base(sym, kpt.nr_cpus * unit_size, kpt.config.page_size))


def phys_to_virt(kpt: KernelPageTables, pa: int) -> int:
    """Linear-map VA of pa, as __phys_to_virt(): (pa - memstart_addr) | PAGE_OFFSET,
    with memstart_addr = RAM_BASE (assumed) and, for a 52-bit kernel on smaller
    hardware, the linear map starting at _PAGE_OFFSET(vabits_actual)
    (arm64_memblock_init() moves memstart_addr down by the difference)."""
    if pa < RAM_BASE:
        raise ValueError(f"physical address {pa:#x} is below the model's memstart_addr "
                         f"{RAM_BASE:#x}; use {RAM_BASE:#x} or above")
    return (kpt.geometry.va_start + pa - RAM_BASE) & MASK64


def build_first_chunk(cfg: KernelConfig, nr_cpus: int | None = None, *,
                      unit_size: int = DEFAULT_UNIT_SIZE,
                      map_global: bool = True,
                      placement: RfcPlacement = DEFAULT_PLACEMENT) -> KernelPageTables:
    """Tables of a booted kernel with the percpu first chunk mapped.

    Every model maps the units' memory (RAM_BASE + cpu * unit, unit_size rounded up
    to pages) in the linear map with PMD-or-larger blocks, where mainline's embedded
    first chunk lives (pcpu_embed_first_chunk()). With local_percpu each CPU's unit
    is also mapped at the top of its Local Percpu area and, if map_global, at the top
    of the Global Percpu area (shared), before percpu_pgd_setup_done; then the
    per-CPU roots are set up.
    """
    if not isinstance(unit_size, int) or unit_size <= 0:
        raise ValueError(f"unit_size {unit_size!r} must be a positive number of bytes")
    kpt = KernelPageTables(cfg, nr_cpus, percpu_pgd_setup_done=False)
    unit = -(-unit_size // cfg.page_size) * cfg.page_size
    pmd = next(lv.entry_span for lv in kpt.geometry.levels if lv.hw_level == 2)
    lo = RAM_BASE & ~(pmd - 1)
    hi = -(-(RAM_BASE + kpt.nr_cpus * unit) // pmd) * pmd
    if cfg.local_percpu:
        sym = kpt.layout.symbols
        if kpt.nr_cpus * unit > sym["PERCPU_SIZE"]:
            raise ValueError(f"{kpt.nr_cpus} units of {format_size(unit)} do not fit the "
                             f"Global Percpu area ({format_size(sym['PERCPU_SIZE'])})")
    kpt.vmap_range(phys_to_virt(kpt, lo), phys_to_virt(kpt, hi), lo, blocks=True)
    if cfg.local_percpu:
        local, glob = first_chunk_va(kpt, unit, placement)
        if map_global:
            kpt.vmap_range(glob, glob + kpt.nr_cpus * unit, RAM_BASE)
        for cpu in range(kpt.nr_cpus):
            kpt.vmap_range(local, local + unit, RAM_BASE + cpu * unit, cpu=cpu)
    kpt.setup_percpu_pgd()
    return kpt


def pgtable_cost(cfg: KernelConfig, nr_cpus: int | None = None, *,
                 unit_size: int = DEFAULT_UNIT_SIZE) -> pd.DataFrame:
    """Page-table memory of the percpu first chunk, mainline vs RFC patches.

    One row per (model, level): shared and private pages and bytes. Both models map
    the units' memory in the linear map (mainline's embedded first chunk lives
    there); the patched model adds a root page per CPU, each CPU's Local Percpu
    tables and the shared Global Percpu tables.
    """
    rows = []
    for model, local in (("mainline", False), ("patched", True)):
        kpt = build_first_chunk(cfg.replace(local_percpu=local), nr_cpus, unit_size=unit_size)
        frame = kpt.table_counts()
        frame.insert(0, "model", model)
        rows.append(frame)
    return pd.concat(rows, ignore_index=True)


@dataclass(frozen=True)
class CostSummary:
    """Totals of a pgtable_cost() frame: pages and bytes of each model, the extra
    bytes the patches cost and the pages private to CPUs."""

    mainline_pages: int
    patched_pages: int
    mainline_bytes: int
    patched_bytes: int
    extra_bytes: int
    private_pages: int

    def __repr__(self) -> str:
        return (f"CostSummary(mainline {self.mainline_pages} pages "
                f"({format_size(self.mainline_bytes)}), patched {self.patched_pages} pages "
                f"({format_size(self.patched_bytes)}), extra {format_size(self.extra_bytes)})")


def pgtable_cost_summary(cost: pd.DataFrame) -> CostSummary:
    """Sum a pgtable_cost() frame per model."""
    totals = cost.groupby("model")[["pages", "bytes", "private_pages"]].sum()
    main, patched = totals.loc["mainline"], totals.loc["patched"]
    return CostSummary(int(main["pages"]), int(patched["pages"]), int(main["bytes"]),
                       int(patched["bytes"]), int(patched["bytes"] - main["bytes"]),
                       int(patched["private_pages"]))


@dataclass(frozen=True)
class SyncStream:
    """What a stream of vmalloc allocations costs in PGD-level syncs."""

    config: str
    nr_cpus: int
    allocations: int
    size: int
    bytes_mapped: int
    pgdir_size: int
    syncs: int
    entries_copied: int
    first_va: int
    last_end: int

    def __repr__(self) -> str:
        return (f"SyncStream({self.config}, {self.nr_cpus} CPUs: {self.allocations} x "
                f"{format_size(self.size)} from {fmt_addr(self.first_va)}, PGD entry "
                f"{format_size(self.pgdir_size)}: {self.syncs} syncs, "
                f"{self.entries_copied} entries copied)")


def vmalloc_sync_stream(cfg: KernelConfig, nr_cpus: int, count: int, size: int, *,
                        start: int | None = None) -> SyncStream:
    """Map `count` vmalloc areas of `size` bytes, lowest address first with one
    guard page after each (alloc_vmap_area() first fit; __get_vm_area_node() adds
    the guard), page by page as vmalloc does; count arch_sync_kernel_mappings()
    copies. Starts from empty tables at VMALLOC_START (or `start`): in a real
    kernel the image already populates the first root entry there.
    """
    if count < 1 or size < 1:
        raise ValueError(f"count {count} and size {size} must be at least 1")
    cfg = cfg.replace(local_percpu=True) if not cfg.local_percpu else cfg
    kpt = KernelPageTables(cfg, nr_cpus)
    page = cfg.page_size
    size = -(-size // page) * page
    sym = kpt.layout.symbols
    addr = sym["VMALLOC_START"] if start is None else start
    need = count * (size + page)
    if addr + need > sym["VMALLOC_END"]:
        raise ValueError(f"{count} areas of {format_size(size)} (+guard pages) need "
                         f"{format_size(need)}, more than the vmalloc space from "
                         f"{fmt_addr(addr)} to VMALLOC_END {fmt_addr(sym['VMALLOC_END'])}")
    first, pa = addr, RAM_BASE
    syncs = 0
    for _ in range(count):
        result = kpt.vmap_range(addr, addr + size, pa)
        if result.sync is not None and not result.sync.skipped:
            syncs += 1
        addr += size + page
        pa += size
    return SyncStream(cfg.label(), nr_cpus, count, size, count * size,
                      kpt.geometry.root.entry_span, syncs, kpt.entries_copied, first, addr)


def sync_stream_table(configs: list[KernelConfig], nr_cpus: int, count: int,
                      size: int) -> pd.DataFrame:
    """vmalloc_sync_stream() for several configurations, one row each."""
    return pd.DataFrame([vmalloc_sync_stream(c, nr_cpus, count, size).__dict__
                         for c in configs])


def skip_rule_boundary(cfg: KernelConfig, nr_cpus: int = 4) -> pd.DataFrame:
    """The patch 02/11 skip rule at its upper edge, shown on fresh tables.

    For CPU 1 and CPU 0 (whose root is swapper_pg_dir), map two pages of the Local
    Percpu area ending one page below LOCAL_PERCPU_END and ending exactly at it,
    after percpu_pgd_setup_done. One row per case: whether the sync was skipped,
    the entries copied, what the mapping CPU and another CPU then reach at the
    top page, and the invariant violations left behind.
    """
    if not cfg.local_percpu:
        cfg = cfg.replace(local_percpu=True)
    page = cfg.page_size
    rows = []
    for cpu in (1, 0):
        for gap in (page, 0):
            kpt = KernelPageTables(cfg, nr_cpus)
            assert kpt.local_end is not None
            end = kpt.local_end - gap
            probe = end - page
            result = kpt.vmap_range(end - 2 * page, end, RAM_BASE, cpu=cpu)
            other = 2 if cpu != 2 else 3
            sync = result.sync
            rows.append({
                "cpu": cpu, "start": end - 2 * page, "end": end,
                "end_is_LOCAL_PERCPU_END": gap == 0,
                "sync": "none" if sync is None else sync.reason,
                "entries_copied": 0 if sync is None else sync.entries_copied,
                "expected_pa": RAM_BASE + page, "own_pa": kpt.translate(cpu, probe),
                "other_cpu": other, "other_pa": kpt.translate(other, probe),
                "violations": len(kpt.check_invariants()),
            })
    frame = pd.DataFrame(rows)
    for column in ("own_pa", "other_pa"):  # keep None (a fault) rather than NaN
        frame[column] = pd.Series([r[column] for r in rows], dtype=object)
    return frame


@dataclass(frozen=True)
class SharedTlbFinding:
    """What a this_cpu access by `reader` to `va` touches if it hits a TLB entry
    that `filler` created (SMT threads sharing a TLB, or CnP)."""

    va: int
    filler: int
    reader: int
    reader_pa: int | None
    cached_pa: int | None
    data_owner: int | None
    wrong_cpu: bool
    explanation: str


def shared_tlb_finding(kpt: KernelPageTables, va: int, *, filler: int,
                       reader: int) -> SharedTlbFinding:
    """The SMT/CnP finding: kernel mappings are global (nG clear), so a TLB entry
    for a Local Percpu VA carries no CPU tag. If `filler`'s walk fills an entry a
    sibling `reader` can hit, the reader's this_cpu access uses the filler's PA:
    it reads and writes the filler's copy of the variable, not its own.
    """
    own = kpt.walk(reader, va).pa
    cached = kpt.walk(filler, va).pa
    owner = kpt.owner_of_pa(cached) if cached is not None else None
    wrong = own != cached
    local = kpt._in_local(va, va + 1)
    if not local:
        text = (f"{fmt_addr(va)} is outside the Local Percpu area: every CPU translates it "
                f"alike, so a shared TLB entry is harmless.")
    elif wrong:
        text = (f"CPU {reader}'s own walk gives PA {own:#x}" if own is not None else
                f"CPU {reader} has no mapping of its own") + (
            f", but a TLB entry filled by CPU {filler} gives {cached:#x}: a this_cpu "
            f"access on CPU {reader} would read and write CPU {owner}'s copy, silently, "
            "with no fault. Kernel mappings are global (nG clear), so their TLB entries "
            "carry no ASID that tells the CPUs apart: this is why patch 01/11 clears "
            "CnP, and why the cover letter warns about SMT cores whose threads share "
            "a TLB.")
    else:
        text = f"Both CPUs reach PA {own!r} for {fmt_addr(va)}: nothing to confuse."
    return SharedTlbFinding(va, filler, reader, own, cached, owner, wrong and local, text)
