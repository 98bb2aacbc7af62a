"""Questions asked of the per-CPU page-table model: a booted first chunk and what it costs.

`build_first_chunk()` gives the tables of a kernel booted with the percpu first chunk
mapped, with the placement `rfc.DEFAULT_PLACEMENT` assumes (`unit_addresses()`: where
each CPU's unit lies); the functions after it
measure what RFC patches 01-02/11 cost or change: page-table memory per model
(`pgtable_cost`), arch_sync_kernel_mappings() calls for a stream of vmalloc
allocations (`vmalloc_sync_stream`), the patch 02/11 skip rule at its upper edge
(`skip_rule_boundary`) and a TLB entry shared between CPUs (`shared_tlb_finding`).
Physical memory starts at `RAM_BASE`, QEMU virt's RAM base, where the model places
the percpu units.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import InputError, shown
from .config import KernelConfig
from .pgtable import KernelPageTables
from .resources import check_memory
from .rfc import DEFAULT_PLACEMENT, RfcPlacement
from .units import MASK64, align_down, fmt_addr, format_size, roundup

RAM_BASE = 0x40000000  # QEMU virt's RAM base, where the model places percpu units
# Assumed first-chunk unit size: a 128K unit (PCPU_MIN_UNIT_SIZE is 32K); a parameter.
DEFAULT_UNIT_SIZE = 128 << 10


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


def first_chunk_unit(page_size: int, unit_size: int = DEFAULT_UNIT_SIZE) -> int:
    """The unit the scenarios give each CPU in the first chunk: unit_size rounded up to
    pages (the kernel's unit_size is a whole number of pages, pcpu_build_alloc_info())."""
    if not isinstance(unit_size, int) or isinstance(unit_size, bool) or unit_size <= 0:
        raise InputError(f"unit_size {shown(unit_size)} must be a positive number of bytes",
                         field="unit_size")
    return roundup(unit_size, page_size)


# Memory the page-table model takes per descriptor it holds (measured: about 80-100
# bytes per entry of a Python table, 512 CPUs x 64M units at 4K pages).
MODEL_BYTES_PER_ENTRY = 100


def first_chunk_model_bytes(cfg: KernelConfig, nr_cpus: int, unit: int, *,
                            map_global: bool = True) -> int:
    """Memory `build_first_chunk` would take: the linear map's block entries for the
    units, and with local_percpu one page entry per unit page in each CPU's Local
    Percpu area and (map_global) in the Global Percpu area."""
    geometry_pmd = 1 << (cfg.page_shift + (cfg.page_shift - 3))  # a level-2 block
    entries = -(-nr_cpus * unit // geometry_pmd) + 1
    if cfg.local_percpu:
        pages = -(-unit // cfg.page_size)
        entries += nr_cpus * pages * (2 if map_global else 1)
    return entries * MODEL_BYTES_PER_ENTRY


def unit_pa(cpu: int, unit: int) -> int:
    """Where the scenarios put CPU `cpu`'s unit in memory: RAM_BASE + cpu * unit (assumed,
    the units one after another as pcpu_embed_first_chunk() allocates them)."""
    return RAM_BASE + cpu * unit


@dataclass(frozen=True)
class UnitAddresses:
    """Where one CPU's first-chunk unit lies once `build_first_chunk` has mapped it:
    its memory (`pa`, RAM_BASE + cpu * unit) and that memory in the linear map; with
    local_percpu also its Local Percpu VA (the same on every CPU) and its Global
    Percpu VA (the units one after another), None otherwise."""

    cpu: int
    pa: int
    linear: int
    local: int | None
    global_: int | None


def unit_addresses(kpt: KernelPageTables, cpu: int, unit_size: int = DEFAULT_UNIT_SIZE,
                   placement: RfcPlacement = DEFAULT_PLACEMENT) -> UnitAddresses:
    """The addresses of CPU `cpu`'s first-chunk unit (unit_size rounded up to pages)."""
    if not 0 <= cpu < kpt.nr_cpus:
        raise ValueError(f"cpu {cpu} is outside 0..{kpt.nr_cpus - 1}")
    unit = first_chunk_unit(kpt.config.page_size, unit_size)
    pa = unit_pa(cpu, unit)
    if not kpt.config.local_percpu:
        return UnitAddresses(cpu, pa, phys_to_virt(kpt, pa), None, None)
    local, glob = first_chunk_va(kpt, unit, placement)
    return UnitAddresses(cpu, pa, phys_to_virt(kpt, pa), local, glob + cpu * unit)


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
    unit = first_chunk_unit(cfg.page_size, unit_size)
    check_memory(first_chunk_model_bytes(cfg, cfg.nr_cpus if nr_cpus is None else nr_cpus,
                                         unit, map_global=map_global),
                 f"mapping a first chunk of {format_size(unit)} per CPU on "
                 f"{cfg.nr_cpus if nr_cpus is None else nr_cpus} CPUs",
                 "use fewer CPUs (--nr-cpus) or a smaller unit (--unit-size)")
    kpt = KernelPageTables(cfg, nr_cpus, percpu_pgd_setup_done=False)
    pmd = next(lv.entry_span for lv in kpt.geometry.levels if lv.hw_level == 2)
    lo = align_down(RAM_BASE, pmd)
    hi = roundup(unit_pa(kpt.nr_cpus, unit), pmd)
    if cfg.local_percpu:
        sym = kpt.layout.symbols
        if kpt.nr_cpus * unit > sym["PERCPU_SIZE"]:
            raise InputError(f"{kpt.nr_cpus} units of {format_size(unit)} do not fit the "
                             f"Global Percpu area ({format_size(sym['PERCPU_SIZE'])})")
    kpt.vmap_range(phys_to_virt(kpt, lo), phys_to_virt(kpt, hi), lo, blocks=True)
    if cfg.local_percpu:
        local, glob = first_chunk_va(kpt, unit, placement)
        if map_global:
            kpt.vmap_range(glob, glob + kpt.nr_cpus * unit, RAM_BASE)
        for cpu in range(kpt.nr_cpus):
            kpt.vmap_range(local, local + unit, unit_pa(cpu, unit), cpu=cpu)
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
    size = roundup(size, page)
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
    local = kpt.in_local_area(va, va + 1)
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
