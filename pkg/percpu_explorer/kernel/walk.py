"""Sparse page-table pages and the walks that read them.

A `Table` is one page-table page holding only its valid entries. The functions
here walk a tree of them, root first, along the levels of a `Geometry`: the
hardware walk of one address (`walk_tables`, printed by `format_walk` as the crash
utility's `vtop` prints it), the fast translation, and the searches that mapping
and unmapping make before they change anything (an existing mapping in the way,
a block covered only in part). Descriptors carry only the type bits and the
output address (asm/pgtable-hwdef.h), for physical addresses below 2**48.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pandas as pd

from .geometry import Level
from .units import fmt_addr, format_size

# asm/pgtable-hwdef.h descriptor types.
PMD_TYPE_TABLE = 3  # table descriptor at levels -1..2
PMD_TYPE_SECT = 1  # block descriptor
PTE_TYPE_PAGE = 3  # page descriptor at level 3
PHYS_LIMIT = 1 << 48  # model restriction: no 52-bit PA encoding
ADDR_MASK = (PHYS_LIMIT - 1) & ~0xFFF  # the output address of a descriptor
SHARED = -1  # owner of tables reached by every CPU


class Table:
    """One page-table page: sparse entries {index: descriptor}."""

    __slots__ = ("entries", "level", "owner", "pa")

    def __init__(self, pa: int, level: int, owner: int) -> None:
        self.pa = pa
        self.level = level  # index into Geometry.levels, 0 = root
        self.owner = owner  # SHARED or a CPU number
        self.entries: dict[int, int] = {}


def is_leaf(desc: int, li: int, levels: Sequence[Level]) -> bool:
    """A page (last level) or block descriptor: it maps memory, not a next table."""
    return li == len(levels) - 1 or (desc & 3) == PMD_TYPE_SECT


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


def walk_tables(levels: Sequence[Level], tables: dict[int, Table], root: Table, cpu: int,
                va: int, ttbr1: int) -> Walk:
    """The hardware walk of va from `root`: every level's table, entry and descriptor,
    ending in the output address or the level that faults."""
    table = root
    steps = []
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
        out = desc & ADDR_MASK
        if is_leaf(desc, li, levels):
            kind = "page" if li == len(levels) - 1 else "block"
            steps.append(WalkStep(lv.name, lv.hw_level, idx, hw_idx, table.pa, entry_pa,
                                  desc, kind, out, owner))
            size = 1 << lv.shift
            pa = out | (va & (size - 1))
            break
        steps.append(WalkStep(lv.name, lv.hw_level, idx, hw_idx, table.pa, entry_pa,
                              desc, "table", out, owner))
        table = tables[out]
    return Walk(cpu, va, root.pa, ttbr1, tuple(steps), pa, fault, size)


def translate_va(levels: Sequence[Level], tables: dict[int, Table], root: Table,
                 va: int) -> int | None:
    """The PA reached for va from `root`, or None (a walk without the steps)."""
    table = root
    for li, lv in enumerate(levels):
        desc = table.entries.get((va >> lv.shift) & (lv.ptrs - 1), 0)
        if not desc & 1:
            return None
        if is_leaf(desc, li, levels):
            return (desc & ADDR_MASK) | (va & ((1 << lv.shift) - 1))
        table = tables[desc & ADDR_MASK]
    return None


def entry_range(lv: Level, start: int, end: int) -> tuple[int, int, int]:
    """(base, first index, last index) of the entries of a table at `lv` that cover
    [start, end); base is the VA of the table's entry 0."""
    shift, mask = lv.shift, lv.ptrs - 1
    return (start & ~((lv.ptrs << shift) - 1), (start >> shift) & mask,
            ((end - 1) >> shift) & mask)


def first_mapped(levels: Sequence[Level], tables: dict[int, Table], table: Table, li: int,
                 start: int, end: int) -> int | None:
    """Lowest VA in [start, end) with a valid leaf below `table` (at level index li)."""
    entries = table.entries
    if not entries:
        return None
    lv = levels[li]
    shift = lv.shift
    base, i_lo, i_hi = entry_range(lv, start, end)
    if i_hi - i_lo + 1 <= len(entries):
        keys: Iterator[int] = (i for i in range(i_lo, i_hi + 1) if i in entries)
    else:
        keys = iter(sorted(i for i in entries if i_lo <= i <= i_hi))
    for i in keys:
        lo = max(start, base | (i << shift))
        hi = min(end, (base | (i << shift)) + (1 << shift))
        desc = entries[i]
        if is_leaf(desc, li, levels):
            return lo
        found = first_mapped(levels, tables, tables[desc & ADDR_MASK], li + 1, lo, hi)
        if found is not None:
            return found
    return None


def partial_block(levels: Sequence[Level], tables: dict[int, Table], table: Table, li: int,
                  start: int, end: int) -> int | None:
    """A block below `table` that [start, end) covers only in part, or None."""
    if li == len(levels) - 1:
        return None
    lv = levels[li]
    shift = lv.shift
    base, i_lo, i_hi = entry_range(lv, start, end)
    for i in (i_lo, i_hi):
        desc = table.entries.get(i)
        if desc is None:
            continue
        lo = base | (i << shift)
        if (desc & 3) == PMD_TYPE_SECT:
            if start > lo or end < lo + (1 << shift):
                return lo
        else:
            found = partial_block(levels, tables, tables[desc & ADDR_MASK], li + 1,
                                  max(start, lo), min(end, lo + (1 << shift)))
            if found is not None:
                return found
    return None
