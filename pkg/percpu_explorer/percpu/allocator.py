"""The percpu allocator of mm/percpu.c, decision for decision: pcpu_alloc(),
free_percpu() and the balance work, over the chunk lists.

`pcpu_alloc()` walks the chunk lists from the request's slot upwards, asks each chunk
for a fit through its hints, creates a chunk when none fits, and populates the pages
it touches. Freeing may leave a chunk empty (the balance work frees all but one
spare) or mostly empty (it is isolated and its empty pages depopulated).

What the model simplifies: the balance work runs synchronously (`balance="immediate"`)
right after the call that scheduled it, or when you call `balance()`
(`balance="manual"`); the kernel runs it from a workqueue soon after, and not at all
before `percpu_enable_async()` (a subsys_initcall). Where chunks and their pages go
is vm.py's.
"""

from __future__ import annotations

import dataclasses
import itertools
import operator
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

import pandas as pd

from ..errors import shown
from ..kernel import (
    DEFAULT_PLACEMENT,
    SIZE_MAX,
    KernelConfig,
    KernelPageTables,
    Layout,
    RfcPlacement,
    compute_layout,
    div_round_up,
    fmt_addr,
    roundup,
    u64,
)
from . import stats
from .bitmap import clear_ranges, mask, set_ranges
from .chunk import PCPU_MIN_ALLOC_SHIFT, PCPU_MIN_ALLOC_SIZE, Chunk, find_block_fit
from .errors import AreaExhausted, PercpuError
from .first_chunk import AllocInfo, build_alloc_info, pcpu_min_unit_size, unit_map
from .pool import ChunkPool
from .slots import PCPU_SLOT_FAIL_THRESHOLD
from .stats import PercpuStats
from .vm import (
    ChunkPages,
    PageMapper,
    PageTableMapper,
    chunk_space,
    first_chunk_phys,
    first_chunk_start,
)

PCPU_EMPTY_POP_PAGES_LOW = 2  # mm/percpu.c
PCPU_EMPTY_POP_PAGES_HIGH = 4


@dataclass(frozen=True, slots=True)
class Allocation:
    """What pcpu_alloc() returned and where: the percpu pointer, chunk and offset."""

    ptr: int
    chunk_id: int
    chunk_base: int
    off: int
    size: int
    align: int
    reserved: bool
    atomic: bool


@dataclass(frozen=True, slots=True)
class Event:
    """One allocator decision, shaped like the kernel's percpu trace events."""

    seq: int
    kind: str  # alloc, free, create_chunk, destroy_chunk, populate, depopulate, fail
    chunk_id: int | None = None
    base_addr: int | None = None
    off: int | None = None
    ptr: int | None = None
    size: int | None = None
    align: int | None = None
    reserved: bool | None = None
    atomic: bool | None = None
    pages: tuple[int, int] | None = None
    detail: str = ""


def _checked_layout(ai: AllocInfo, cfg: KernelConfig | None) -> tuple[KernelConfig, Layout]:
    """The configuration (by default the one of ai's page size) and its layout, which
    must be sane."""
    cfg = cfg if cfg is not None else KernelConfig(page_size=ai.page_size)
    if cfg.page_size != ai.page_size:
        raise ValueError(f"AllocInfo page size {ai.page_size} differs from the config's "
                         f"{cfg.page_size}")
    layout = compute_layout(cfg)
    if not layout.sane:
        raise ValueError(f"the layout of {cfg.label()} is broken: "
                         + layout.problems[0].message)
    return cfg, layout


class PercpuAllocator:
    """The state of the percpu allocator after pcpu_setup_first_chunk().

    `alloc(size, align, reserved=False, atomic=False)` models pcpu_alloc(),
    `free(ptr)` free_percpu(), `balance()` pcpu_balance_workfn(). Every decision is
    recorded in `events` like the kernel's percpu trace events.
    """

    def __init__(
        self,
        ai: AllocInfo,
        *,
        cfg: KernelConfig | None = None,
        first_chunk_base: int | None = None,
        group_bases: Sequence[int] | None = None,
        per_cpu_start: int | None = None,
        placement: RfcPlacement = DEFAULT_PLACEMENT,
        balance: str = "immediate",
        mapper: PageMapper | None = None,
        vm_busy: Iterable[tuple[int, int]] = (),
    ) -> None:
        if balance not in ("immediate", "manual"):
            raise ValueError(f"balance {balance!r} is unknown; choose immediate or manual")
        self.cfg, self.layout = _checked_layout(ai, cfg)
        self.ai = ai
        self.page_size = ai.page_size
        self.block_bits = ai.page_size >> PCPU_MIN_ALLOC_SHIFT
        self.unit_size = ai.unit_size
        self.unit_pages = ai.unit_size // ai.page_size
        self.balance_mode = balance
        self.events: list[Event] = []
        self._seq = itertools.count()
        self.local = self.cfg.local_percpu
        self.placement = placement
        sym = self.layout.symbols

        # where the units are (pcpu_setup_first_chunk)
        self.first_chunk_phys = first_chunk_phys(ai)
        if group_bases is None:
            start = first_chunk_start(ai, sym, local=self.local, placement=placement,
                                      phys=self.first_chunk_phys, start=first_chunk_base)
            group_bases = [start + g.base_offset for g in ai.groups]
        units = unit_map(ai, group_bases)
        self.base_addr = units.base_addr  # pcpu_base_addr
        self.group_offsets, self.group_sizes = units.group_offsets, units.group_sizes
        self.unit_offsets, self.nr_units = units.unit_offsets, units.nr_units
        # __per_cpu_start: the kernel image's .data..percpu; assume it starts 32M into it.
        self.per_cpu_start = (per_cpu_start if per_cpu_start is not None
                              else sym["KIMAGE_VADDR"] + (32 << 20))
        self.local_base = placement.local_base(sym, ai.unit_size) if self.local else None
        self.vm = chunk_space(sym, units, local=self.local, placement=placement, busy=vm_busy)
        pages = ChunkPages(ai, units, mapper, phys=self.first_chunk_phys,
                           local_base=self.local_base)
        # pcpu_stats (mm/percpu-internal.h); min_alloc_size starts at unit_size
        self.stats_counters = PercpuStats(min_alloc_size=ai.unit_size)
        self.pool = ChunkPool(ai, self.vm, pages, self.stats_counters, self._event)
        self.lists = self.pool.lists
        self.chunks = self.pool.chunks
        self.atomic_alloc_failed = False
        self.balance_pending = False
        self.live: dict[int, Allocation] = {}

        self.reserved_chunk: Chunk | None = None
        if ai.reserved_size:
            self.reserved_chunk = self.pool.first_chunk_part(
                "reserved", self.base_addr + ai.static_end, ai.reserved_size)
        self.lists.reserved = self.reserved_chunk
        self.first_chunk = self.pool.first_chunk_part(
            "first", self.base_addr + ai.dynamic_start, ai.first_chunk_dyn_size)
        self.lists.nr_empty_pop_pages = self.first_chunk.nr_empty_pop_pages
        self.lists.relocate(self.first_chunk, -1)
        self.pool.nr_populated += ai.size_sum // self.page_size
        self.stats_counters.chunk_alloc()
        self._event("create_chunk", self.first_chunk, detail="first chunk")
        pages.map_first_chunk()

    # -- addresses -------------------------------------------------------------------------

    def addr_to_ptr(self, addr: int) -> int:
        """__addr_to_pcpu_ptr(): addr - pcpu_base_addr + __per_cpu_start."""
        return u64(addr - self.base_addr + self.per_cpu_start)

    def ptr_to_addr(self, ptr: int) -> int:
        """__pcpu_ptr_to_addr()."""
        return u64(ptr + self.base_addr - self.per_cpu_start)

    def per_cpu_offset(self, cpu: int) -> int:
        """__per_cpu_offset[cpu] = pcpu_base_addr - __per_cpu_start + pcpu_unit_offsets[cpu]."""
        self._check_cpu(cpu)
        return u64(self.base_addr - self.per_cpu_start + self.unit_offsets[cpu])

    def per_cpu_ptr(self, ptr: int, cpu: int) -> int:
        """per_cpu_ptr(ptr, cpu) = ptr + __per_cpu_offset[cpu]: CPU cpu's copy."""
        return u64(ptr + self.per_cpu_offset(cpu))

    @property
    def per_cpu_local_off(self) -> int:
        """__per_cpu_local_off (patch 07/11, assumed): ptr + it is the local address,
        local_base - __per_cpu_start (the same offset from each area's base)."""
        if self.local_base is None:
            raise ValueError("__per_cpu_local_off exists only with local_percpu=True")
        return u64(self.local_base - self.per_cpu_start)

    def local_ptr(self, ptr: int) -> int:
        """The local address of ptr: the same on every CPU, mapped to that CPU's copy."""
        return u64(ptr + self.per_cpu_local_off)

    def offset_from_base(self, ptr: int) -> int:
        """The allocator's offset: address - pcpu_base_addr (what patch 02/11 calls
        "offset from percpu base address", which "could be quite big")."""
        return self.ptr_to_addr(ptr) - self.base_addr

    def phys_of(self, ptr: int, cpu: int) -> int:
        """The physical address of cpu's copy of ptr (what every mapping must reach)."""
        allocation = self.live.get(ptr)
        if allocation is None:
            raise PercpuError(f"{fmt_addr(ptr)} is not a live percpu allocation")
        self._check_cpu(cpu)
        chunk = self.pool.by_id(allocation.chunk_id)
        return self.pool.pages.phys(chunk, cpu, self.ptr_to_addr(ptr) - chunk.base_addr)

    def _check_cpu(self, cpu: int) -> None:
        if cpu not in self.unit_offsets:
            raise ValueError(f"cpu {cpu} is not possible; valid CPUs are "
                             f"0..{self.ai.nr_possible_cpus - 1}")

    # -- slots ----------------------------------------------------------------------

    @property
    def nr_empty_pop_pages(self) -> int:
        """pcpu_nr_empty_pop_pages: empty populated pages outside the reserved chunk and
        isolated chunks."""
        return self.lists.nr_empty_pop_pages

    def size_to_slot(self, size: int) -> int:
        """pcpu_size_to_slot()."""
        return self.lists.size_to_slot(size)

    def chunk_slot(self, chunk: Chunk) -> int:
        """pcpu_chunk_slot()."""
        return self.lists.chunk_slot(chunk)

    # -- the public operations -----------------------------------------------------------------

    def alloc(self, size: int, align: int = PCPU_MIN_ALLOC_SIZE, *, reserved: bool = False,
              atomic: bool = False) -> Allocation:
        """pcpu_alloc(): a percpu area of size bytes (rounded up to 4) at align."""
        size, align = _size_t("size", size), _size_t("align", align)
        if align < PCPU_MIN_ALLOC_SIZE:
            align = PCPU_MIN_ALLOC_SIZE
        size = roundup(size, PCPU_MIN_ALLOC_SIZE)
        largest = pcpu_min_unit_size(self.page_size)
        if not size or size > largest or align > self.page_size or align & (align - 1):
            raise PercpuError(f"illegal size ({size}) or align ({align}) for percpu allocation "
                              f"(size must be 1..{largest}, align a power of two up to "
                              f"{self.page_size})")
        bits = size >> PCPU_MIN_ALLOC_SHIFT
        bit_align = align >> PCPU_MIN_ALLOC_SHIFT

        chunk: Chunk | None = None
        off = -1
        if reserved and self.reserved_chunk is not None:
            chunk = self.reserved_chunk
            start = find_block_fit(chunk, bits, bit_align, atomic)
            if start >= 0:
                off = self.pool.alloc_area(chunk, bits, bit_align, start)
            if off < 0:
                return self._fail(size, align, reserved, atomic,
                                  "alloc from reserved chunk failed")
        else:
            while off < 0:
                chunk, off = self._search_slots(size, bits, bit_align, atomic)
                if off >= 0:
                    break
                if atomic:
                    return self._fail(size, align, reserved, atomic,
                                      "atomic alloc failed, no space left")
                if not self.lists.slots[self.lists.free_slot]:
                    try:
                        new = self.pool.create()
                    except AreaExhausted as exc:
                        self._event("fail", None, size=size, align=align, reserved=reserved,
                                    atomic=atomic, detail="failed to allocate new chunk")
                        raise AreaExhausted(f"pcpu_alloc({size}, {align}) failed to allocate "
                                            f"a new chunk: {exc}") from None
                    self.lists.relocate(new, -1)
        assert chunk is not None
        if not atomic:
            page_start = off // self.page_size
            page_end = div_round_up(off + size, self.page_size)
            need = mask(page_end - page_start)
            if (chunk.populated >> page_start) & need != need:
                for rs, re in list(clear_ranges(chunk.populated, page_end, page_start)):
                    self.pool.populate(chunk, rs, re)
        if self.lists.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_LOW:
            self.balance_pending = True  # pcpu_schedule_balance_work()
        chunk.allocs[off] = size
        chunk.max_alloc_size = max(chunk.max_alloc_size, size)
        self.stats_counters.area_alloc(size)
        ptr = self.addr_to_ptr(chunk.base_addr + off)
        result = Allocation(ptr, chunk.id, chunk.base_addr, off, size, align, reserved, atomic)
        self.live[ptr] = result
        self._event("alloc", chunk, off=off, ptr=ptr, size=size, align=align,
                    reserved=reserved, atomic=atomic)
        self._maybe_run_balance()
        return result

    def _search_slots(self, size: int, bits: int, bit_align: int,
                      atomic: bool) -> tuple[Chunk | None, int]:
        lists = self.lists
        for slot in range(lists.size_to_slot(size), lists.free_slot + 1):
            for chunk in list(lists.slots[slot]):
                start = find_block_fit(chunk, bits, bit_align, atomic)
                if start < 0:
                    if slot < PCPU_SLOT_FAIL_THRESHOLD:
                        lists.move(chunk, 0, True)
                    continue
                off = self.pool.alloc_area(chunk, bits, bit_align, start)
                if off >= 0:
                    lists.reintegrate(chunk)
                    return chunk, off
        return None, -1

    def _fail(self, size: int, align: int, reserved: bool, atomic: bool, err: str) -> NoReturn:
        self._event("fail", None, size=size, align=align, reserved=reserved, atomic=atomic,
                    detail=err)
        if atomic:
            self.atomic_alloc_failed = True
            self.balance_pending = True
            self._maybe_run_balance()
        raise PercpuError(f"allocation failed, size={size} align={align} atomic={int(atomic)}, "
                          f"{err}")

    def free(self, ptr: int) -> int:
        """free_percpu(): returns the bytes freed; an unknown pointer raises, state unchanged."""
        allocation = self.live.get(ptr)
        if allocation is None:
            raise PercpuError(f"free_percpu({fmt_addr(ptr)}): not a live percpu allocation "
                              "(never allocated or already freed)")
        chunk = self.pool.by_id(allocation.chunk_id)
        off = allocation.off
        size = self.pool.free_area(chunk, off)
        del self.live[ptr]
        del chunk.allocs[off]
        self.stats_counters.area_dealloc()
        need_balance = False
        if not chunk.isolated and chunk.free_bytes == self.unit_size:
            need_balance = any(c is not chunk for c in self.lists.slots[self.lists.free_slot])
        elif self._should_reclaim(chunk):
            self.lists.isolate(chunk)
            need_balance = True
        self._event("free", chunk, off=off, ptr=ptr, size=size)
        if need_balance:
            self.balance_pending = True
            self._maybe_run_balance()
        return size

    def _should_reclaim(self, chunk: Chunk) -> bool:
        """pcpu_should_reclaim_chunk() (mm/percpu-vm.c)."""
        if chunk is self.first_chunk or chunk is self.reserved_chunk:
            return False
        return bool((chunk.isolated and chunk.nr_empty_pop_pages)
                    or (self.lists.nr_empty_pop_pages
                        > PCPU_EMPTY_POP_PAGES_HIGH + chunk.nr_empty_pop_pages
                        and chunk.nr_empty_pop_pages >= chunk.nr_pages // 4))

    # -- what a trace replay needs ---------------------------------------------------------------

    def counters(self) -> PercpuStats:
        """A copy of the pcpu_stats counters."""
        return dataclasses.replace(self.stats_counters)

    def retract(self, allocation: Allocation, counters: PercpuStats) -> None:
        """free_percpu() of an allocation that is not to count: the statistics go back to
        `counters` (taken with `counters()` before it was made)."""
        self.free(allocation.ptr)
        self.stats_counters.restore(counters)

    def take_first_chunk_area(self, off: int, size: int) -> int:
        """Mark the first free `size` bytes at or after byte `off` of the first chunk
        allocated outside any request (what the kernel allocated before a trace began):
        pcpu_alloc_area() alone, with no statistics or event. Returns the offset, or -1."""
        return self.pool.alloc_area(self.first_chunk, size // PCPU_MIN_ALLOC_SIZE, 1,
                                    off // PCPU_MIN_ALLOC_SIZE)

    # -- balance work ---------------------------------------------------------------------------

    def _maybe_run_balance(self) -> None:
        if self.balance_mode == "immediate" and self.balance_pending:
            self.balance()

    def balance(self) -> None:
        """pcpu_balance_workfn(): free, reclaim, populate, free empty."""
        self.balance_pending = False
        self._balance_free(False)
        self._reclaim_populated()
        self._balance_populated()
        self._balance_free(True)

    def _balance_free(self, empty_only: bool) -> None:
        """pcpu_balance_free(): destroy every fully free chunk but the first on the list."""
        head = self.lists.slots[self.lists.free_slot]
        to_free = [c for i, c in enumerate(head)
                   if i > 0 and (not empty_only or c.nr_empty_pop_pages == 0)]
        for chunk in to_free:
            self.lists.unlink(chunk)
        for chunk in to_free:
            for rs, re in list(set_ranges(chunk.populated, chunk.nr_pages)):
                self.pool.depopulate(chunk, rs, re)
            self.pool.destroy(chunk)

    def _balance_populated(self) -> None:
        """pcpu_balance_populated(): populate up to PCPU_EMPTY_POP_PAGES_HIGH empty pages."""
        lists = self.lists
        while True:
            if self.atomic_alloc_failed:
                nr_to_pop = PCPU_EMPTY_POP_PAGES_HIGH
                self.atomic_alloc_failed = False
            else:
                nr_to_pop = min(max(PCPU_EMPTY_POP_PAGES_HIGH - lists.nr_empty_pop_pages, 0),
                                PCPU_EMPTY_POP_PAGES_HIGH)
            for slot in range(lists.size_to_slot(self.page_size), lists.free_slot + 1):
                if not nr_to_pop:
                    break
                target = next((c for c in lists.slots[slot] if c.nr_pages - c.nr_populated),
                              None)
                if target is None:
                    continue
                for rs, re in list(clear_ranges(target.populated, target.nr_pages)):
                    nr = min(re - rs, nr_to_pop)
                    self.pool.populate(target, rs, rs + nr)
                    nr_to_pop -= nr
                    if not nr_to_pop:
                        break
            if not nr_to_pop:
                return
            try:
                chunk = self.pool.create()
            except AreaExhausted:
                return
            lists.relocate(chunk, -1)

    def _reclaim_populated(self) -> None:
        """pcpu_reclaim_populated(): depopulate the empty pages of isolated chunks, from
        the end, while the global count stays at PCPU_EMPTY_POP_PAGES_HIGH or more."""
        lists = self.lists
        bb = self.block_bits
        while lists.slots[lists.to_depopulate_slot]:
            chunk = lists.slots[lists.to_depopulate_slot][0]
            reintegrate = False
            end = -1
            i = chunk.nr_pages - 1
            while i >= 0:
                if chunk.nr_empty_pop_pages == 0:
                    break
                if lists.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_HIGH:
                    reintegrate = True
                    break
                block = chunk.md_blocks[i]
                if block.contig_hint == bb and (chunk.populated >> i) & 1:
                    if end == -1:
                        end = i
                    if i > 0:
                        i -= 1
                        continue
                    i -= 1
                if end == -1:
                    i -= 1
                    continue
                self.pool.depopulate(chunk, i + 1, end + 1)
                end = -1
                i -= 1
            if reintegrate or chunk.free_bytes == self.unit_size:
                lists.reintegrate(chunk)
            else:
                lists.move(chunk, lists.sidelined_slot, False)

    # -- reports ------------------------------------------------------------------------------

    def _event(self, kind: str, chunk: Chunk | None, **fields: Any) -> None:
        self.events.append(Event(next(self._seq), kind,
                                 chunk.id if chunk else None,
                                 chunk.base_addr if chunk else None, **fields))

    def stats(self) -> dict[str, Any]:
        """The data of debugfs percpu_stats (`stats.percpu_stats`)."""
        return stats.percpu_stats(self)

    def percpu_stats_text(self) -> str:
        """/sys/kernel/debug/percpu_stats, line for line."""
        return stats.percpu_stats_text(self)

    def events_frame(self) -> pd.DataFrame:
        """Every decision so far, one row each."""
        return stats.events_frame(self)

    def chunks_frame(self) -> pd.DataFrame:
        """One row per chunk: where it is, its slot, free space and population."""
        return stats.chunks_frame(self)

    def allocations_frame(self) -> pd.DataFrame:
        """Live allocations with their pointers, offsets and chunk."""
        return stats.allocations_frame(self)


def _size_t(name: str, value: object) -> int:
    """`value` as pcpu_alloc()'s size_t arguments hold it (any integer type accepted)."""
    try:
        number = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        number = -1
    if isinstance(value, bool) or not 0 <= number <= SIZE_MAX:
        raise PercpuError(f"{name} {shown(value)} is not a size_t (a whole number from 0 to "
                          "2**64 - 1)")
    return number


def boot_percpu(
    cfg: KernelConfig,
    static_size: int,
    nr_cpus: int,
    *,
    page_tables: bool = True,
    **kwargs: Any,
) -> tuple[PercpuAllocator, KernelPageTables | None]:
    """setup_per_cpu_areas() for `cfg`: the first chunk built and mapped, then (with
    the patch) the per-CPU roots set up, as patch 01/11's percpu_pgd_setup_done.

    Keyword arguments go to `build_alloc_info` (reserved_size, dyn_size, atom_size,
    cpu_to_node, build) and `PercpuAllocator` (the rest).
    """
    info_keys = {"reserved_size", "dyn_size", "atom_size", "cpu_to_node", "build"}
    info = {k: kwargs.pop(k) for k in list(kwargs) if k in info_keys}
    ai = build_alloc_info(static_size, nr_cpus=nr_cpus, page_size=cfg.page_size, **info)
    kpt = KernelPageTables(cfg, nr_cpus, percpu_pgd_setup_done=False) if page_tables else None
    mapper = PageTableMapper(kpt) if kpt is not None else None
    alloc = PercpuAllocator(ai, cfg=cfg, mapper=mapper, **kwargs)
    if kpt is not None:
        kpt.setup_percpu_pgd()
    return alloc, kpt
