"""arm64 kernel page tables: a sparse multi-level model, one root per CPU.

Everything starts from a `KernelConfig`: the levels are those of
`geometry.pgtable_geometry(cfg)`, the tables and their walks those of `walk`.
`KernelPageTables` holds sparse tables, created on first use, for `swapper_pg_dir`
and, with `local_percpu`, one root per CPU as RFC patch 01/11 describes; mappings
follow mm/vmalloc.c vmap_range_noflush() and vunmap_range_noflush(), including the
pgtbl_mod_mask bookkeeping that decides when `arch_sync_kernel_mappings()` runs.
Addresses are ints masked to 64 bits; `scenarios` asks the model its questions.

Assumptions where the patches' public text stops (patch 01/11's code, whose description
alone is public, and 05-09), made once here:

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
- The first chunk (`scenarios.build_first_chunk`) is placed as
  `rfc.DEFAULT_PLACEMENT` says (by default at the top of both areas) and mapped
  while `percpu_pgd_setup_done` is still false (patch 05/11 runs from
  setup_per_cpu_areas()).
- Physical addresses are below 2**48 (no 52-bit PA descriptor encoding);
  descriptors carry only the type bits and the output address; the contiguous
  bit and attributes are not modelled. As in the kernel, unmapping clears leaf
  entries but never frees intermediate tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pandas as pd

from ..errors import InputError, shown
from .config import KernelConfig
from .geometry import PGTBL_MODIFIED, check_kernel_va, pgtable_geometry
from .layout import Layout, compute_layout, patched_sane_configs
from .units import MASK64, TOP_OF_VA, align_down, fmt_addr, fmt_end, format_size, parse_addr
from .walk import (
    ADDR_MASK,
    PHYS_LIMIT,
    PMD_TYPE_SECT,
    PMD_TYPE_TABLE,
    PTE_TYPE_PAGE,
    SHARED,
    Table,
    Walk,
    entry_range,
    first_mapped,
    is_leaf,
    partial_block,
    translate_va,
    walk_tables,
)

# Page-table pages come from a fake pool far above the data pages tests use.
PT_POOL_BASE = 0xF0_0000_0000


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
        return (f"MapResult({fmt_addr(self.start)}-{fmt_end(self.end)} {who}: "
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
        return f"SyncResult({fmt_addr(self.start)}-{fmt_end(self.end)}: {what})"


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
            sane = dict.fromkeys(f"{c.page_size_name}/{c.va_bits}"
                                 for c in patched_sane_configs(cfg.kernel, kasan=("none",)))
            raise ValueError(
                f"the patched layout of {cfg.label()} is broken ({codes}): 2 * PGDIR_SIZE "
                f"areas do not fit; use local_percpu=False or a configuration whose "
                f"layout is sane ({', '.join(sane)})")
        self.percpu_pgd_setup_done = percpu_pgd_setup_done
        self._levels = self.geometry.levels
        self._page_size = cfg.page_size
        self._tables: dict[int, Table] = {}
        self._counts: dict[tuple[int, int], int] = {}
        self._next_pa = PT_POOL_BASE
        self.sync_calls = 0
        self.sync_skipped = 0
        self.entries_copied = 0
        # Calls of the public operations that change tables or counters: a reader that
        # keeps these tables can tell whether they are still as it left them.
        self.changes = 0
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
    def _alloc(self, level: int, owner: int) -> Table:
        table = Table(self._next_pa, level, owner)
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
            raise InputError(f"cpu {shown(cpu)} is outside 0..{self.nr_cpus - 1} "
                             f"(nr_cpus {self.nr_cpus})", field="cpu")

    def in_local_area(self, start: int, end: int) -> bool:
        """Whether [start, end) meets the Local Percpu area (RFC patch 02/11)."""
        return (self.local_start is not None and self.local_end is not None
                and start < self.local_end and end > self.local_start)

    def _check_range(self, start: int, end: int, cpu: int | None) -> None:
        geo = self.geometry
        for what, value in (("start", start), ("end", end)):
            if not isinstance(value, int) or value % self._page_size:
                raise ValueError(f"{what} {value!r} is not a multiple of PAGE_SIZE "
                                 f"({format_size(self._page_size)})")
        check_kernel_va(geo, start, "start")
        if not start < end <= TOP_OF_VA:
            raise ValueError(f"range {fmt_addr(start)}..{end:#x} is empty or runs past "
                             f"2**64; end must be above start and at most 2**64")
        if cpu is None:
            if self.in_local_area(start, end):
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

    # -- changing entries --
    def _map(self, table: Table, li: int, start: int, end: int, pa: int,
             owner: int, blocks: bool) -> tuple[int, int]:
        lv = self._levels[li]
        bit = PGTBL_MODIFIED[lv.hw_level][1]
        shift, mask = lv.shift, lv.ptrs - 1
        entries = table.entries
        mod = allocated = 0
        addr = start
        if li == len(self._levels) - 1:
            # One PTE per page, pa | PTE_TYPE_PAGE with pa page aligned: the caller
            # keeps [start, end) inside this table, so the indices run without wrapping.
            step = 1 << shift
            first = (start >> shift) & mask
            count = (end - start) >> shift
            entries.update(zip(range(first, first + count),
                               range(pa + PTE_TYPE_PAGE, pa + count * step, step), strict=True))
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
                    child = self._tables[desc & ADDR_MASK]
                m, a = self._map(child, li + 1, addr, nxt, pa, owner, blocks)
                mod |= m
                allocated += a
            pa += nxt - addr
            addr = nxt
        return mod, allocated

    def _unmap(self, table: Table, li: int, start: int, end: int) -> int:
        lv = self._levels[li]
        bit = PGTBL_MODIFIED[lv.hw_level][1]
        entries = table.entries
        shift = lv.shift
        base, i_lo, i_hi = entry_range(lv, start, end)
        last = li == len(self._levels) - 1
        mod = bit if last else 0  # vunmap_pte_range() always sets PGTBL_PTE_MODIFIED
        for i in sorted(i for i in entries if i_lo <= i <= i_hi):
            desc = entries[i]
            if is_leaf(desc, li, self._levels):
                del entries[i]  # p?d_clear_huge() / ptep_get_and_clear()
                mod |= bit
                continue
            lo = max(start, base | (i << shift))
            hi = min(end, (base | (i << shift)) + (1 << shift))
            mod |= self._unmap(self._tables[desc & ADDR_MASK], li + 1, lo, hi)
        return mod

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
        self.changes += 1
        self._check_range(start, end, cpu)
        if not isinstance(pa, int) or pa < 0 or pa % self._page_size:
            raise ValueError(f"physical address {pa!r} is not a non-negative multiple of "
                             f"PAGE_SIZE ({format_size(self._page_size)})")
        if pa + (end - start) > PHYS_LIMIT:
            raise ValueError(f"physical range {pa:#x}+{end - start:#x} is above 2**48, "
                             f"the PA range the model supports (0..{PHYS_LIMIT - 1:#x})")
        root = self.swapper if cpu is None else self.roots[cpu]
        clash = first_mapped(self._levels, self._tables, root, 0, start, end)
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
        self.changes += 1
        self._check_range(start, end, cpu)
        root = self.swapper if cpu is None else self.roots[cpu]
        partial = partial_block(self._levels, self._tables, root, 0, start, end)
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
        start, end = start & MASK64, end & MASK64 if end != TOP_OF_VA else end
        self.changes += 1
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
        self.changes += 1
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
        va = check_kernel_va(self.geometry, parse_addr(va))
        root = self.roots[cpu]
        return walk_tables(self._levels, self._tables, root, cpu, va,
                           root.pa + self.geometry.ttbr1_offset)

    def translate(self, cpu: int, va: int) -> int | None:
        """The PA cpu reaches for va, or None (a fast walk without the steps)."""
        return translate_va(self._levels, self._tables, self.roots[cpu], va)

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
        """Page-table pages private to each CPU (its root and local tables) and bytes;
        `own_root` when the CPU walks from a root of its own, and `shared_reached`, the
        shared pages its walks reach: every shared table, swapper_pg_dir itself only
        for a CPU that walks from it."""
        pages = [0] * self.nr_cpus
        for (owner, _), n in self._counts.items():
            if owner != SHARED:
                pages[owner] += n
        shared = sum(n for (owner, _), n in self._counts.items() if owner == SHARED)
        shared_roots = self._counts.get((SHARED, 0), 0)
        own = [root is not self.swapper for root in self.roots]
        return pd.DataFrame({"cpu": range(self.nr_cpus), "pages": pages,
                             "bytes": [p * self._page_size for p in pages], "own_root": own,
                             "shared_reached": [shared - shared_roots if o else shared
                                                for o in own]})

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
        base = align_down(self.geometry.va_start, self._levels[0].ptrs * span)
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
            pa = desc & ADDR_MASK
            if not any(lo <= pa < hi for lo, hi in self._local_pages.get(cpu, ())):
                other = self.owner_of_pa(pa)
                whose = f"CPU {other}'s" if other is not None else "no CPU's"
                yield Violation("foreign-page", cpu, va, va + span,
                                f"CPU {cpu}'s local {fmt_addr(va)} maps PA {pa:#x}, "
                                f"which is {whose} local page")
            return
        table = self._tables[desc & ADDR_MASK]
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


