"""The percpu allocator of mm/percpu.c and mm/percpu-vm.c, decision for decision.

Units and chunks. The first chunk is set up at boot by `pcpu_build_alloc_info()`
and `pcpu_embed_first_chunk()`: every possible CPU gets a unit of `unit_size`
bytes, units are grouped by NUMA node, and the chunk is split into the static
area (the kernel's DEFINE_PER_CPU variables), the reserved chunk (module
percpu) and the dynamic part. Later chunks are vmalloc areas placed by
`pcpu_get_vm_areas()`: one area per group, congruent to the first chunk's groups.

Allocation. Each chunk has an allocation bitmap at PCPU_MIN_ALLOC_SIZE (4 byte)
granularity, a boundary bitmap, and per-page block metadata with hints
(contig, scan, left/right free, first free). `pcpu_alloc()` walks the chunk
lists from the request's slot upwards, asks each chunk for a fit through its
hints, creates a chunk when none fits, and populates the pages it touches.

What the model simplifies (said once here):
- The balance work runs synchronously (`balance="immediate"`) right after the
  call that scheduled it, or when you call `balance()` (`balance="manual"`);
  the kernel runs it from a workqueue soon after, and not at all before
  `percpu_enable_async()` (a subsys_initcall).
- Physical pages come from a simple counter; the first chunk of mainline sits in
  the linear map at `first_chunk_base` (memblock decides it on a real machine:
  take it from a capture).
- With the RFC patch (series 03-09/11, not public), chunks are placed as the
  `RfcPlacement` of percpu_explorer.rfc says (by default the first chunk at the
  top of the Global Percpu area, later chunks below it by the same congruent
  top-down search as pcpu_get_vm_areas()); each chunk is mirrored at the same
  offset from the local base in the Local Percpu area, where every CPU maps its
  own unit's pages: local address = local_base + (address - pcpu_base_addr).
- Physical memory: the first chunk's units sit in RAM where the linear map puts
  them (RAM assumed at 0x40000000, QEMU virt's base); pages of later chunks come
  from a separate pool.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn, Protocol

import pandas as pd

from ..kernel import (
    DEFAULT_KERNEL,
    DEFAULT_PLACEMENT,
    RAM_BASE,
    KernelConfig,
    KernelPageTables,
    Layout,
    RfcPlacement,
    compute_layout,
    fmt_addr,
    u64,
)

PCPU_MIN_ALLOC_SHIFT = 2
PCPU_MIN_ALLOC_SIZE = 1 << PCPU_MIN_ALLOC_SHIFT  # include/linux/percpu.h
PCPU_SLOT_BASE_SHIFT = 5  # mm/percpu.c
PCPU_SLOT_FAIL_THRESHOLD = 3
PCPU_EMPTY_POP_PAGES_LOW = 2
PCPU_EMPTY_POP_PAGES_HIGH = 4
LOCAL_DISTANCE = 10  # include/linux/numa.h
# Debian 6.12's arm64 static percpu size: its boot line "percpu: Embedded 34 pages/cpu
# s101464 ..." (data/captures; tests/test_allocator_trace.py ties the two).
DEFAULT_STATIC_SIZE = 101464
RAM_SIZE = 4 << 30  # where memblock's top-down allocation puts the first chunk, assumed
DYNAMIC_PAGE_POOL = RAM_BASE + (8 << 30)  # physical pages of later chunks (a counter)


class PercpuError(ValueError):
    """A request the kernel would refuse (it WARNs and returns NULL) or a bad free."""


class AreaExhausted(PercpuError):
    """No room left for a new chunk: pcpu_get_vm_areas() found no congruent space."""


# --- build-time sizes (include/linux/percpu.h) ------------------------------------------

@dataclass(frozen=True)
class PercpuBuild:
    """Kconfig options that size the first chunk.

    modules: CONFIG_MODULES (PERCPU_MODULE_RESERVE 8K, 0 without modules).
    mem_alloc_profiling: CONFIG_MEM_ALLOC_PROFILING makes the reserve 64K (8 << 13).
    random_kmalloc_caches: CONFIG_RANDOM_KMALLOC_CACHES sets PERCPU_DYNAMIC_SIZE_SHIFT
        to 12 (13 with LOCKDEP and pages above 4K), else 10.
    lockdep: CONFIG_LOCKDEP (only matters with random_kmalloc_caches).
    """

    modules: bool = True
    mem_alloc_profiling: bool = False
    random_kmalloc_caches: bool = False
    lockdep: bool = False

    def module_reserve(self) -> int:
        """PERCPU_MODULE_RESERVE."""
        if not self.modules:
            return 0
        return 8 << 13 if self.mem_alloc_profiling else 8 << 10

    def dynamic_size_shift(self, page_size: int) -> int:
        """PERCPU_DYNAMIC_SIZE_SHIFT."""
        if self.random_kmalloc_caches:
            return 13 if self.lockdep and page_size != 4096 else 12
        return 10

    def dynamic_reserve(self, page_size: int) -> int:
        """PERCPU_DYNAMIC_RESERVE (64-bit): 28 << PERCPU_DYNAMIC_SIZE_SHIFT."""
        return 28 << self.dynamic_size_shift(page_size)

    def dynamic_early_size(self, page_size: int) -> int:
        """PERCPU_DYNAMIC_EARLY_SIZE: 20 << PERCPU_DYNAMIC_SIZE_SHIFT."""
        return 20 << self.dynamic_size_shift(page_size)


def pfn_align(size: int, page_size: int) -> int:
    return -(-size // page_size) * page_size


def pcpu_min_unit_size(page_size: int) -> int:
    """PCPU_MIN_UNIT_SIZE = PFN_ALIGN(32 << 10): also the largest allocation."""
    return pfn_align(32 << 10, page_size)


# --- first chunk: pcpu_build_alloc_info() ---------------------------------------------

@dataclass(frozen=True)
class GroupInfo:
    """struct pcpu_group_info: the units of one group and the CPU of each (None: unused)."""

    base_offset: int
    cpu_map: tuple[int | None, ...]

    @property
    def nr_units(self) -> int:
        return len(self.cpu_map)


@dataclass(frozen=True)
class AllocInfo:
    """struct pcpu_alloc_info as pcpu_build_alloc_info() fills it."""

    static_size: int
    reserved_size: int
    dyn_size: int
    unit_size: int
    atom_size: int
    alloc_size: int
    groups: tuple[GroupInfo, ...]
    page_size: int
    nr_possible_cpus: int

    @property
    def size_sum(self) -> int:
        return self.static_size + self.reserved_size + self.dyn_size

    @property
    def nr_units(self) -> int:
        return sum(g.nr_units for g in self.groups)

    @property
    def upa(self) -> int:
        """Units per allocation."""
        return self.alloc_size // self.unit_size


def build_alloc_info(
    static_size: int,
    *,
    nr_cpus: int,
    page_size: int = 4096,
    reserved_size: int | None = None,
    dyn_size: int | None = None,
    atom_size: int | None = None,
    cpu_to_node: Sequence[int] | None = None,
    build: PercpuBuild = PercpuBuild(),
) -> AllocInfo:
    """pcpu_build_alloc_info() for arm64's pcpu_embed_first_chunk() call.

    arm64 (drivers/base/arch_numa.c) passes PERCPU_MODULE_RESERVE, PERCPU_DYNAMIC_RESERVE,
    atom PAGE_SIZE and a distance function that is LOCAL_DISTANCE within a node, so CPUs
    are grouped by node. size_sum = PFN_ALIGN(static + reserved + max(dyn, EARLY_SIZE));
    the unit is the smallest page multiple of at least max(size_sum, PCPU_MIN_UNIT_SIZE)
    dividing an atom-aligned allocation, preferring fewer allocations while no more than
    a third of the units are wasted.
    """
    if static_size <= 0:
        raise PercpuError(f"static_size {static_size} must be positive (the kernel's "
                          "__per_cpu_end - __per_cpu_start)")
    if nr_cpus < 1:
        raise PercpuError(f"nr_cpus {nr_cpus} must be at least 1")
    reserved = build.module_reserve() if reserved_size is None else reserved_size
    dyn = build.dynamic_reserve(page_size) if dyn_size is None else dyn_size
    atom = page_size if atom_size is None else atom_size
    if atom % page_size or atom & (atom - 1):
        raise PercpuError(f"atom_size {atom} must be a power-of-two multiple of {page_size}")
    nodes = list(cpu_to_node) if cpu_to_node is not None else [0] * nr_cpus
    if len(nodes) != nr_cpus:
        raise PercpuError(f"cpu_to_node has {len(nodes)} entries for {nr_cpus} CPUs")

    size_sum = pfn_align(static_size + reserved + max(dyn, build.dynamic_early_size(page_size)),
                         page_size)
    dyn = size_sum - static_size - reserved
    min_unit_size = max(size_sum, pcpu_min_unit_size(page_size))
    alloc_size = -(-min_unit_size // atom) * atom
    upa = alloc_size // min_unit_size
    while alloc_size % upa or (alloc_size // upa) % page_size:
        upa -= 1
    max_upa = upa

    # group CPUs whose distance is LOCAL_DISTANCE both ways: same node
    group_of: dict[int, int] = {}
    group_cnt: list[int] = []
    for cpu in range(nr_cpus):
        if cpu in group_of:
            continue
        group = len(group_cnt)
        group_cnt.append(0)
        for tcpu in range(cpu, nr_cpus):
            if tcpu not in group_of and nodes[tcpu] == nodes[cpu]:
                group_of[tcpu] = group
                group_cnt[group] += 1

    last_allocs, best_upa = None, 0
    for upa in range(max_upa, 0, -1):
        if alloc_size % upa or (alloc_size // upa) % page_size:
            continue
        allocs = wasted = 0
        for count in group_cnt:
            this_allocs = -(-count // upa)
            allocs += this_allocs
            wasted += this_allocs * upa - count
        if wasted > nr_cpus // 3:
            continue
        if last_allocs is not None and allocs > last_allocs:
            break
        last_allocs, best_upa = allocs, upa
    upa = best_upa
    unit_size = alloc_size // upa

    groups = []
    unit = 0
    for group, count in enumerate(group_cnt):
        cpus: list[int | None] = [c for c in range(nr_cpus) if group_of[c] == group]
        cpus += [None] * (-(-count // upa) * upa - count)
        groups.append(GroupInfo(base_offset=unit * unit_size, cpu_map=tuple(cpus)))
        unit += len(cpus)
    return AllocInfo(static_size, reserved, dyn, unit_size, atom, alloc_size, tuple(groups),
                     page_size, nr_cpus)


def boot_lines(ai: AllocInfo) -> list[str]:
    """The kernel log lines of the first chunk: pcpu_embed_first_chunk()'s pr_info and
    pcpu_dump_alloc_info()'s `pcpu-alloc:` lines (which keep pr_cont's trailing space)."""
    lines = [f"percpu: Embedded {ai.size_sum // ai.page_size} pages/cpu s{ai.static_size} "
             f"r{ai.reserved_size} d{ai.dyn_size} u{ai.unit_size}"]
    group_width = len(str(len(ai.groups)))
    cpu_width = len(str(ai.nr_possible_cpus))
    empty = "-" * min(cpu_width, 8)
    upa = ai.alloc_size // ai.unit_size
    width = upa * (cpu_width + 1) + group_width + 3
    apl = 1 << (max(60 // width, 1).bit_length() - 1)  # rounddown_pow_of_two
    text = (f"pcpu-alloc: s{ai.static_size} r{ai.reserved_size} d{ai.dyn_size} "
            f"u{ai.unit_size} alloc={ai.alloc_size // ai.atom_size}*{ai.atom_size}")
    alloc = 0
    for group, gi in enumerate(ai.groups):
        for start in range(0, gi.nr_units, upa):
            if alloc % apl == 0:
                text += "\npcpu-alloc: "
            text += f"[{group:0{group_width}d}] "
            for cpu in gi.cpu_map[start:start + upa]:
                text += f"{cpu:0{cpu_width}d} " if cpu is not None else f"{empty} "
            alloc += 1
    lines += text.split("\n")
    return lines


# --- bitmaps as Python ints --------------------------------------------------------------

@functools.lru_cache(maxsize=4096)
def _mask(nbits: int) -> int:
    return (1 << nbits) - 1


def find_next_bit(bits: int, size: int, start: int) -> int:
    """find_next_bit(): the first set bit at or after start, or size."""
    if start >= size:
        return size
    rest = (bits & _mask(size)) >> start
    if not rest:
        return size
    return start + (rest & -rest).bit_length() - 1


def find_next_zero_bit(bits: int, size: int, start: int) -> int:
    """find_next_zero_bit(): the first clear bit at or after start, or size."""
    if start >= size:
        return size
    rest = (~bits & _mask(size)) >> start
    if not rest:
        return size
    return start + (rest & -rest).bit_length() - 1


def find_last_bit(bits: int, size: int) -> int:
    """find_last_bit(): the last set bit below size, or size when there is none."""
    below = bits & _mask(size)
    return below.bit_length() - 1 if below else size


def _ffs(value: int) -> int:
    return (value & -value).bit_length() - 1


def clear_ranges(bits: int, size: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """for_each_clear_bitrange_from(): [start, end) runs of clear bits."""
    while True:
        start = find_next_zero_bit(bits, size, start)
        if start >= size:
            return
        end = find_next_bit(bits, size, start + 1)
        yield start, end
        start = end + 1


def set_ranges(bits: int, size: int) -> Iterator[tuple[int, int]]:
    """for_each_set_bitrange(): [start, end) runs of set bits (clear runs of the complement)."""
    return clear_ranges(~bits & _mask(size), size)


# --- chunks ------------------------------------------------------------------------------

class BlockMD:
    """struct pcpu_block_md: hints of one page-sized block (or of the whole chunk)."""

    __slots__ = ("contig_hint", "contig_hint_start", "first_free", "left_free", "nr_bits",
                 "right_free", "scan_hint", "scan_hint_start")

    def __init__(self, nr_bits: int) -> None:
        # pcpu_init_md_block()
        self.scan_hint = 0
        self.scan_hint_start = 0
        self.contig_hint = nr_bits
        self.contig_hint_start = 0
        self.left_free = nr_bits
        self.right_free = nr_bits
        self.first_free = 0
        self.nr_bits = nr_bits

    def as_tuple(self) -> tuple[int, ...]:
        return (self.scan_hint, self.scan_hint_start, self.contig_hint, self.contig_hint_start,
                self.left_free, self.right_free, self.first_free)


@dataclass(eq=False)
class Chunk:
    """struct pcpu_chunk (the parts the allocator's decisions depend on)."""

    id: int
    kind: str  # "first", "reserved" or "dynamic"
    base_addr: int
    nr_pages: int
    block_bits: int
    start_offset: int = 0
    end_offset: int = 0
    alloc_map: int = 0
    bound_map: int = 0
    populated: int = 0
    nr_populated: int = 0
    nr_empty_pop_pages: int = 0
    free_bytes: int = 0
    immutable: bool = False
    isolated: bool = False
    md_blocks: list[BlockMD] = field(default_factory=list)
    chunk_md: BlockMD = field(default_factory=lambda: BlockMD(0))
    allocs: dict[int, int] = field(default_factory=dict)  # byte offset -> size (stats)
    max_alloc_size: int = 0
    slot: int | None = None  # the chunk list it is on (pcpu_chunk_lists[slot])

    @property
    def map_bits(self) -> int:
        """pcpu_chunk_map_bits()."""
        return self.nr_pages * self.block_bits

    @property
    def nr_blocks(self) -> int:
        return self.nr_pages

    def __repr__(self) -> str:
        return (f"Chunk(id={self.id}, {self.kind}, base={fmt_addr(self.base_addr)}, "
                f"free={self.free_bytes}, populated={self.nr_populated}/{self.nr_pages})")

    def block_map(self, index: int) -> int:
        """pcpu_index_alloc_map(): the allocation bits of one block."""
        return (self.alloc_map >> (index * self.block_bits)) & _mask(self.block_bits)


class PageMapper(Protocol):
    """Where populated pages get mapped (a page-table model, or a recorder)."""

    def map_pages(self, va: int, pa: int, size: int, cpu: int | None) -> None: ...

    def unmap_pages(self, va: int, size: int, cpu: int | None) -> None: ...


# --- chunk placement: pcpu_get_vm_areas() -------------------------------------------------

class VmSpace:
    """Free ranges of a VA area and the congruent search of pcpu_get_vm_areas().

    The search starts at the top of the area (VMALLOC_END aligned down) and moves down
    until every group's area [base + offset, base + offset + size) lies in free space;
    `direction="bottom-up"` searches from the bottom instead (an alternative placement
    for the RFC's percpu area, whose real policy is not public).
    """

    def __init__(self, start: int, end: int, *, direction: str = "top-down",
                 busy: Iterable[tuple[int, int]] = ()) -> None:
        if direction not in ("top-down", "bottom-up"):
            raise ValueError(f"direction {direction!r} is unknown; choose top-down or bottom-up")
        self.start, self.end, self.direction = start, end, direction
        self.used: list[tuple[int, int]] = sorted(busy)

    def free_ranges(self) -> list[tuple[int, int]]:
        out, cursor = [], self.start
        for s, e in sorted(self.used):
            if s > cursor:
                out.append((cursor, min(s, self.end)))
            cursor = max(cursor, e)
        if cursor < self.end:
            out.append((cursor, self.end))
        return [(s, e) for s, e in out if s < e]

    def get_vm_areas(self, offsets: Sequence[int], sizes: Sequence[int], align: int) -> int:
        """Reserve congruent areas; returns base (the address of offset 0)."""
        last = max(range(len(offsets)), key=lambda i: offsets[i])
        last_end = offsets[last] + sizes[last]
        lo = -(-self.start // align) * align
        hi = self.end & ~(align - 1)
        if hi - lo < last_end:
            raise AreaExhausted(self._exhausted(last_end))
        free = self.free_ranges()
        candidates = self._bases(free, offsets, sizes, align, lo, hi)
        for base in candidates:
            if all(self._is_free(free, base + o, s) for o, s in zip(offsets, sizes, strict=True)):
                for o, s in zip(offsets, sizes, strict=True):
                    self.used.append((base + o, base + o + s))
                self.used.sort()
                return base
        raise AreaExhausted(self._exhausted(last_end))

    def _bases(self, free: list[tuple[int, int]], offsets: Sequence[int],
               sizes: Sequence[int], align: int, lo: int, hi: int) -> Iterator[int]:
        # Every base that puts some group's end at the (aligned) end of a free range, or
        # some group's start at the start of one: the extremes the kernel's walk reaches.
        bases = set()
        for s, e in free:
            for o, size in zip(offsets, sizes, strict=True):
                top = (min(e, hi) & ~(align - 1)) - (o + size)
                bottom = -(-max(s, lo) // align) * align - o
                bases.update((top, bottom))
        last_end = max(o + s for o, s in zip(offsets, sizes, strict=True))
        ok = [b for b in bases if b % align == 0 and b + min(offsets) >= lo and b + last_end <= hi]
        return iter(sorted(ok, reverse=self.direction == "top-down"))

    @staticmethod
    def _is_free(free: list[tuple[int, int]], start: int, size: int) -> bool:
        return any(s <= start and start + size <= e for s, e in free)

    def release(self, start: int, end: int) -> None:
        self.used.remove((start, end))

    def _exhausted(self, need: int) -> str:
        return (f"no room for a new chunk: the groups need {need:#x} bytes of congruent space "
                f"in [{fmt_addr(self.start)}, {fmt_addr(self.end)}), which is full")


# --- the allocator -------------------------------------------------------------------------

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
        self.cfg = cfg if cfg is not None else KernelConfig(page_size=ai.page_size)
        if self.cfg.page_size != ai.page_size:
            raise ValueError(f"AllocInfo page size {ai.page_size} differs from the config's "
                             f"{self.cfg.page_size}")
        self.layout: Layout = compute_layout(self.cfg)
        if not self.layout.sane:
            raise ValueError(f"the layout of {self.cfg.label()} is broken: "
                             + self.layout.problems[0].message)
        self.ai = ai
        self.page_size = ai.page_size
        self.page_shift = ai.page_size.bit_length() - 1
        self.block_bits = ai.page_size >> PCPU_MIN_ALLOC_SHIFT
        self.unit_size = ai.unit_size
        self.unit_pages = ai.unit_size // ai.page_size
        self.mapper = mapper
        self.balance_mode = balance
        self.events: list[Event] = []
        self._seq = itertools.count()
        self._chunk_ids = itertools.count()
        self._next_pfn = 0x40000  # physical pages for populated chunks (a simple counter)
        self.local = self.cfg.local_percpu
        sym = self.layout.symbols

        # group and unit offsets (pcpu_setup_first_chunk)
        unit_bytes = [g.nr_units * ai.unit_size for g in ai.groups]
        span = max(g.base_offset for g in ai.groups) + unit_bytes[-1]
        # The first chunk's RAM: memblock allocates top-down, so near the top of RAM.
        self.first_chunk_phys = (RAM_BASE + RAM_SIZE - span) & ~(ai.atom_size - 1)
        self.placement = placement
        if group_bases is None:
            if self.local:
                start = placement.first_chunk_base(sym, span, ai.atom_size)
            elif first_chunk_base is not None:
                start = first_chunk_base
            else:  # the linear-map address of that RAM
                start = sym["_PAGE_OFFSET(vabits_actual)"] + self.first_chunk_phys - RAM_BASE
            group_bases = [start + g.base_offset for g in ai.groups]
        if len(group_bases) != len(ai.groups):
            raise ValueError(f"{len(group_bases)} group bases for {len(ai.groups)} groups")
        self.base_addr = min(group_bases)  # pcpu_base_addr
        self.group_offsets = [b - self.base_addr for b in group_bases]
        self.group_sizes = unit_bytes
        self.unit_offsets: dict[int, int] = {}
        self.unit_of_cpu: dict[int, int] = {}
        unit = 0
        for gi, goff in zip(ai.groups, self.group_offsets, strict=True):
            for i, cpu in enumerate(gi.cpu_map):
                if cpu is not None:
                    self.unit_of_cpu[cpu] = unit + i
                    self.unit_offsets[cpu] = goff + i * ai.unit_size
            unit += gi.nr_units
        self.nr_units = unit
        # __per_cpu_start: the kernel image's .data..percpu; assume it starts 32M into it.
        self.per_cpu_start = (per_cpu_start if per_cpu_start is not None
                              else sym["KIMAGE_VADDR"] + (32 << 20))

        # chunk placement space
        if self.local:
            self.local_base = placement.local_base(sym, ai.unit_size)
            self.vm = VmSpace(sym["PERCPU_START"], sym["PERCPU_END"],
                              direction=placement.chunk_direction,
                              busy=[(b, b + s) for b, s in zip(group_bases, unit_bytes,
                                                                strict=True)])
        else:
            self.vm = VmSpace(sym["VMALLOC_START"], sym["VMALLOC_END"], busy=vm_busy)

        # slots (pcpu_setup_first_chunk)
        self.sidelined_slot = self._raw_slot(self.unit_size) + 1
        self.free_slot = self.sidelined_slot + 1
        self.to_depopulate_slot = self.free_slot + 1
        self.nr_slots = self.to_depopulate_slot + 1
        self.slots: list[list[Chunk]] = [[] for _ in range(self.nr_slots)]
        self.chunks: list[Chunk] = []
        self.nr_empty_pop_pages = 0
        self.nr_populated = 0
        self.atomic_alloc_failed = False
        self.balance_pending = False
        self.live: dict[int, Allocation] = {}
        # pcpu_stats (mm/percpu-internal.h); min_alloc_size starts at unit_size
        self.stats_counters = {"nr_alloc": 0, "nr_dealloc": 0, "nr_cur_alloc": 0,
                               "nr_max_alloc": 0, "nr_chunks": 0, "nr_max_chunks": 0,
                               "min_alloc_size": ai.unit_size, "max_alloc_size": 0}

        static = -(-ai.static_size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE
        dyn = ai.dyn_size - (static - ai.static_size)
        self.reserved_chunk: Chunk | None = None
        if ai.reserved_size:
            self.reserved_chunk = self._alloc_first_chunk(self.base_addr + static,
                                                          ai.reserved_size, "reserved")
        self.first_chunk = self._alloc_first_chunk(self.base_addr + static + ai.reserved_size,
                                                   dyn, "first")
        self.nr_empty_pop_pages = self.first_chunk.nr_empty_pop_pages
        self._relocate(self.first_chunk, -1)
        self.nr_populated += ai.size_sum // self.page_size
        self._count_chunk(+1)
        self._event("create_chunk", self.first_chunk, detail="first chunk")
        self._map_first_chunk()

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
        if not self.local:
            raise ValueError("__per_cpu_local_off exists only with local_percpu=True")
        return u64(self.local_base - self.per_cpu_start)

    def local_ptr(self, ptr: int) -> int:
        """The local address of ptr: the same on every CPU, mapped to that CPU's copy."""
        return u64(ptr + self.per_cpu_local_off)

    def offset_from_base(self, ptr: int) -> int:
        """The allocator's offset: address - pcpu_base_addr (what patch 02/11 calls
        "offset from percpu base address", which "could be quite big")."""
        return self.ptr_to_addr(ptr) - self.base_addr

    def _check_cpu(self, cpu: int) -> None:
        if cpu not in self.unit_offsets:
            raise ValueError(f"cpu {cpu} is not possible; valid CPUs are "
                             f"0..{self.ai.nr_possible_cpus - 1}")

    # -- slots ------------------------------------------------------------------------------

    @staticmethod
    def _raw_slot(size: int) -> int:
        """__pcpu_size_to_slot(): max(fls(size) - PCPU_SLOT_BASE_SHIFT + 2, 1)."""
        return max(size.bit_length() - PCPU_SLOT_BASE_SHIFT + 2, 1)

    def size_to_slot(self, size: int) -> int:
        """pcpu_size_to_slot(): the free slot for a whole unit."""
        if size == self.unit_size:
            return self.free_slot
        return self._raw_slot(size)

    def chunk_slot(self, chunk: Chunk) -> int:
        """pcpu_chunk_slot(): by the chunk's largest free area (contig hint)."""
        if chunk.free_bytes < PCPU_MIN_ALLOC_SIZE or chunk.chunk_md.contig_hint == 0:
            return 0
        return self.size_to_slot(chunk.chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE)

    @staticmethod
    def _slot_of(chunk: Chunk) -> int | None:
        return chunk.slot

    def _move(self, chunk: Chunk, slot: int, front: bool) -> None:
        """__pcpu_chunk_move(): list_move / list_move_tail (never the reserved chunk)."""
        if chunk is self.reserved_chunk:
            return
        if chunk.slot is not None:
            self.slots[chunk.slot].remove(chunk)
        if front:
            self.slots[slot].insert(0, chunk)
        else:
            self.slots[slot].append(chunk)
        chunk.slot = slot

    def _relocate(self, chunk: Chunk, oslot: int) -> None:
        """pcpu_chunk_relocate()."""
        if chunk.isolated:
            return
        nslot = self.chunk_slot(chunk)
        if oslot != nslot:
            self._move(chunk, nslot, oslot < nslot)

    def _isolate(self, chunk: Chunk) -> None:
        if not chunk.isolated:
            chunk.isolated = True
            self.nr_empty_pop_pages -= chunk.nr_empty_pop_pages
        self._move(chunk, self.to_depopulate_slot, True)

    def _reintegrate(self, chunk: Chunk) -> None:
        if chunk.isolated:
            chunk.isolated = False
            self.nr_empty_pop_pages += chunk.nr_empty_pop_pages
            self._relocate(chunk, -1)

    def _update_empty_pages(self, chunk: Chunk, nr: int) -> None:
        chunk.nr_empty_pop_pages += nr
        if chunk is not self.reserved_chunk and not chunk.isolated:
            self.nr_empty_pop_pages += nr

    # -- block hints (pcpu_block_update and friends) ----------------------------------------

    @staticmethod
    def _block_update(block: BlockMD, start: int, end: int) -> None:
        """pcpu_block_update(): fold the free area [start, end) into a block's hints."""
        contig = end - start
        block.first_free = min(block.first_free, start)
        if start == 0:
            block.left_free = contig
        if end == block.nr_bits:
            block.right_free = contig
        if contig > block.contig_hint:
            if start > block.contig_hint_start:
                if block.contig_hint > block.scan_hint:
                    block.scan_hint_start = block.contig_hint_start
                    block.scan_hint = block.contig_hint
                elif start < block.scan_hint_start:
                    block.scan_hint = 0
            else:
                block.scan_hint = 0
            block.contig_hint_start = start
            block.contig_hint = contig
        elif contig == block.contig_hint:
            if block.contig_hint_start and (
                    not start or _ffs(start) > _ffs(block.contig_hint_start)):
                block.contig_hint_start = start
                if start < block.scan_hint_start and block.contig_hint > block.scan_hint:
                    block.scan_hint = 0
            elif start > block.scan_hint_start or block.contig_hint > block.scan_hint:
                block.scan_hint_start = start
                block.scan_hint = contig
        else:
            if start < block.contig_hint_start and (
                    contig > block.scan_hint
                    or (contig == block.scan_hint and start > block.scan_hint_start)):
                block.scan_hint_start = start
                block.scan_hint = contig

    def _block_update_scan(self, chunk: Chunk, bit_off: int, bits: int) -> None:
        """pcpu_block_update_scan()."""
        s_off = bit_off % self.block_bits
        e_off = s_off + bits
        if e_off > self.block_bits:
            return
        index = bit_off // self.block_bits
        l_bit = find_last_bit(chunk.block_map(index), s_off)
        s_off = 0 if s_off == l_bit else l_bit + 1
        self._block_update(chunk.md_blocks[index], s_off, e_off)

    def _next_md_free_region(self, chunk: Chunk, bit_off: int) -> tuple[int, int]:
        """pcpu_next_md_free_region()."""
        bb = self.block_bits
        i, block_off = divmod(bit_off, bb)
        bits = 0
        while i < chunk.nr_blocks:
            block = chunk.md_blocks[i]
            if bits:
                bits += block.left_free
                if block.left_free == bb:
                    i += 1
                    continue
                return bit_off, bits
            bits = block.contig_hint
            if bits and block.contig_hint_start >= block_off and \
                    bits + block.contig_hint_start < bb:
                return i * bb + block.contig_hint_start, bits
            block_off = 0
            bits = block.right_free
            bit_off = (i + 1) * bb - block.right_free
            i += 1
        return bit_off, bits

    def _chunk_refresh_hint(self, chunk: Chunk, full_scan: bool) -> None:
        """pcpu_chunk_refresh_hint()."""
        md = chunk.chunk_md
        if not full_scan and md.scan_hint:
            bit_off = md.scan_hint_start + md.scan_hint
            md.contig_hint_start = md.scan_hint_start
            md.contig_hint = md.scan_hint
            md.scan_hint = 0
        else:
            bit_off = md.first_free
            md.contig_hint = 0
        bit_off, bits = self._next_md_free_region(chunk, bit_off)
        while bit_off < chunk.map_bits:
            self._block_update(md, bit_off, bit_off + bits)
            bit_off, bits = self._next_md_free_region(chunk, bit_off + bits + 1)

    def _block_refresh_hint(self, chunk: Chunk, index: int) -> None:
        """pcpu_block_refresh_hint()."""
        block = chunk.md_blocks[index]
        if block.scan_hint:
            start = block.scan_hint_start + block.scan_hint
            block.contig_hint_start = block.scan_hint_start
            block.contig_hint = block.scan_hint
            block.scan_hint = 0
        else:
            start = block.first_free
            block.contig_hint = 0
        block.right_free = 0
        for s, e in clear_ranges(chunk.block_map(index), self.block_bits, start):
            self._block_update(block, s, e)

    def _block_update_hint_alloc(self, chunk: Chunk, bit_off: int, bits: int) -> None:
        """pcpu_block_update_hint_alloc()."""
        bb = self.block_bits
        md = chunk.chunk_md
        nr_empty_pages = 0
        s_index, s_off = divmod(bit_off, bb)
        e_index = (bit_off + bits - 1) // bb
        e_off = (bit_off + bits - 1) % bb + 1
        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        if s_block.contig_hint == bb:
            nr_empty_pages += 1
        if s_off == s_block.first_free:
            s_block.first_free = find_next_zero_bit(chunk.block_map(s_index), bb, s_off + bits)
        if _overlap(s_block.scan_hint_start, s_block.scan_hint_start + s_block.scan_hint,
                    s_off, s_off + bits):
            s_block.scan_hint = 0
        if _overlap(s_block.contig_hint_start, s_block.contig_hint_start + s_block.contig_hint,
                    s_off, s_off + bits):
            if not s_off:
                s_block.left_free = 0
            self._block_refresh_hint(chunk, s_index)
        else:
            s_block.left_free = min(s_block.left_free, s_off)
            if s_index == e_index:
                s_block.right_free = min(s_block.right_free, bb - e_off)
            else:
                s_block.right_free = 0

        end_index = e_index
        if s_index != e_index:
            if e_block.contig_hint == bb:
                nr_empty_pages += 1
            e_block.first_free = find_next_zero_bit(chunk.block_map(e_index), bb, e_off)
            if e_off == bb:
                end_index = e_index + 1  # reset the block
            else:
                if e_off > e_block.scan_hint_start:
                    e_block.scan_hint = 0
                e_block.left_free = 0
                if e_off > e_block.contig_hint_start:
                    self._block_refresh_hint(chunk, e_index)
                else:
                    e_block.right_free = min(e_block.right_free, bb - e_off)
            nr_empty_pages += e_index - s_index - 1
            for block in chunk.md_blocks[s_index + 1:end_index]:
                block.scan_hint = 0
                block.contig_hint = 0
                block.left_free = 0
                block.right_free = 0

        if nr_empty_pages:
            self._update_empty_pages(chunk, -nr_empty_pages)
        if _overlap(md.scan_hint_start, md.scan_hint_start + md.scan_hint,
                    bit_off, bit_off + bits):
            md.scan_hint = 0
        if _overlap(md.contig_hint_start, md.contig_hint_start + md.contig_hint,
                    bit_off, bit_off + bits):
            self._chunk_refresh_hint(chunk, False)

    def _block_update_hint_free(self, chunk: Chunk, bit_off: int, bits: int) -> None:
        """pcpu_block_update_hint_free()."""
        bb = self.block_bits
        nr_empty_pages = 0
        s_index, s_off = divmod(bit_off, bb)
        e_index = (bit_off + bits - 1) // bb
        e_off = (bit_off + bits - 1) % bb + 1
        s_block = chunk.md_blocks[s_index]
        e_block = chunk.md_blocks[e_index]

        start = s_off
        if s_off == s_block.contig_hint + s_block.contig_hint_start:
            start = s_block.contig_hint_start
        else:
            l_bit = find_last_bit(chunk.block_map(s_index), start)
            start = 0 if start == l_bit else l_bit + 1
        end = e_off
        if e_off == e_block.contig_hint_start:
            end = e_block.contig_hint_start + e_block.contig_hint
        else:
            end = find_next_bit(chunk.block_map(e_index), bb, end)

        e_off = end if s_index == e_index else bb
        if not start and e_off == bb:
            nr_empty_pages += 1
        self._block_update(s_block, start, e_off)
        if s_index != e_index:
            if end == bb:
                nr_empty_pages += 1
            self._block_update(e_block, 0, end)
            nr_empty_pages += e_index - s_index - 1
            for block in chunk.md_blocks[s_index + 1:e_index]:
                block.first_free = 0
                block.scan_hint = 0
                block.contig_hint_start = 0
                block.contig_hint = bb
                block.left_free = bb
                block.right_free = bb
        if nr_empty_pages:
            self._update_empty_pages(chunk, nr_empty_pages)
        if (end - start) >= bb or s_index != e_index:
            self._chunk_refresh_hint(chunk, True)
        else:
            # The kernel passes the block-relative end here (mm/percpu.c, v6.12).
            self._block_update(chunk.chunk_md, s_index * bb + start, end)

    # -- finding and taking an area ------------------------------------------------------------

    @staticmethod
    def _check_block_hint(block: BlockMD, bits: int, align: int) -> bool:
        """pcpu_check_block_hint()."""
        bit_off = _align(block.contig_hint_start, align) - block.contig_hint_start
        return bit_off + bits <= block.contig_hint

    @staticmethod
    def _next_hint(block: BlockMD, alloc_bits: int) -> int:
        """pcpu_next_hint(): skip past the scan hint when it cannot serve the request."""
        if (block.scan_hint and block.contig_hint_start > block.scan_hint_start
                and alloc_bits > block.scan_hint):
            return block.scan_hint_start + block.scan_hint
        return block.first_free

    def _next_fit_region(self, chunk: Chunk, alloc_bits: int, align: int,
                         bit_off: int) -> tuple[int, int]:
        """pcpu_next_fit_region()."""
        bb = self.block_bits
        i, block_off = divmod(bit_off, bb)
        bits = 0
        while i < chunk.nr_blocks:
            block = chunk.md_blocks[i]
            if bits:
                bits += block.left_free
                if bits >= alloc_bits:
                    return bit_off, bits
                if block.left_free == bb:
                    i += 1
                    continue
            bits = _align(block.contig_hint_start, align) - block.contig_hint_start
            if (block.contig_hint and block.contig_hint_start >= block_off
                    and block.contig_hint >= bits + alloc_bits):
                start = self._next_hint(block, alloc_bits)
                bits += alloc_bits + block.contig_hint_start - start
                return i * bb + start, bits
            block_off = 0
            off = _align(bb - block.right_free, align)
            bits = bb - off
            bit_off = i * bb + off
            if bits >= alloc_bits:
                return bit_off, bits
            i += 1
        return chunk.map_bits, bits

    def _is_populated(self, chunk: Chunk, bit_off: int, bits: int) -> tuple[bool, int]:
        """pcpu_is_populated(): returns (populated, next_off)."""
        start = (bit_off * PCPU_MIN_ALLOC_SIZE) >> self.page_shift
        end = -(-((bit_off + bits) * PCPU_MIN_ALLOC_SIZE) // self.page_size)
        start = find_next_zero_bit(chunk.populated, end, start)
        if start >= end:
            return True, 0
        end = find_next_bit(chunk.populated, end, start + 1)
        return False, end * self.block_bits

    def _find_block_fit(self, chunk: Chunk, alloc_bits: int, align: int, pop_only: bool) -> int:
        """pcpu_find_block_fit(): a bit offset to search from, or -1."""
        md = chunk.chunk_md
        if not self._check_block_hint(md, alloc_bits, align):
            return -1
        bit_off = self._next_hint(md, alloc_bits)
        bit_off, bits = self._next_fit_region(chunk, alloc_bits, align, bit_off)
        while bit_off < chunk.map_bits:
            if not pop_only:
                break
            populated, next_off = self._is_populated(chunk, bit_off, bits)
            if populated:
                break
            bit_off, bits = self._next_fit_region(chunk, alloc_bits, align, next_off)
        if bit_off == chunk.map_bits:
            return -1
        return bit_off

    @staticmethod
    def _find_zero_area(bitmap: int, size: int, start: int, nr: int,
                        align_mask: int) -> tuple[int, int, int]:
        """pcpu_find_zero_area(): (index, largest_off, largest_bits) of the first fit."""
        largest_off = largest_bits = 0
        # Search a copy of the window [start, size) only; indexes stay absolute.
        origin = start
        window = (bitmap >> origin) & _mask(size - origin)
        while True:
            index = origin + find_next_zero_bit(window, size - origin, start - origin)
            index = (index + align_mask) & ~align_mask
            area_off = index
            end = index + nr
            if end > size:
                return end, largest_off, largest_bits
            i = origin + find_next_bit(window, end - origin, index - origin)
            if i < end:
                area_bits = i - area_off
                if area_bits > largest_bits or (
                        area_bits == largest_bits and largest_off
                        and (not area_off or _ffs(area_off) > _ffs(largest_off))):
                    largest_off, largest_bits = area_off, area_bits
                start = i + 1
                continue
            return index, largest_off, largest_bits

    def _alloc_area(self, chunk: Chunk, alloc_bits: int, align: int, start: int) -> int:
        """pcpu_alloc_area(): take alloc_bits at or after start; byte offset or -1."""
        md = chunk.chunk_md
        align_mask = align - 1 if align else 0
        oslot = self.chunk_slot(chunk)
        end = min(start + alloc_bits + self.block_bits, chunk.map_bits)
        bit_off, area_off, area_bits = self._find_zero_area(chunk.alloc_map, end, start,
                                                            alloc_bits, align_mask)
        if bit_off >= end:
            return -1
        if area_bits:
            self._block_update_scan(chunk, area_off, area_bits)
        chunk.alloc_map |= _mask(alloc_bits) << bit_off
        chunk.bound_map &= ~(_mask(alloc_bits - 1) << (bit_off + 1))
        chunk.bound_map |= (1 << bit_off) | (1 << (bit_off + alloc_bits))
        chunk.free_bytes -= alloc_bits * PCPU_MIN_ALLOC_SIZE
        if bit_off == md.first_free:
            md.first_free = find_next_zero_bit(chunk.alloc_map, chunk.map_bits,
                                               bit_off + alloc_bits)
        self._block_update_hint_alloc(chunk, bit_off, alloc_bits)
        self._relocate(chunk, oslot)
        return bit_off * PCPU_MIN_ALLOC_SIZE

    def _free_area(self, chunk: Chunk, off: int) -> int:
        """pcpu_free_area(): returns the bytes freed."""
        md = chunk.chunk_md
        oslot = self.chunk_slot(chunk)
        bit_off = off // PCPU_MIN_ALLOC_SIZE
        end = find_next_bit(chunk.bound_map, chunk.map_bits, bit_off + 1)
        bits = end - bit_off
        chunk.alloc_map &= ~(_mask(bits) << bit_off)
        freed = bits * PCPU_MIN_ALLOC_SIZE
        chunk.free_bytes += freed
        md.first_free = min(md.first_free, bit_off)
        self._block_update_hint_free(chunk, bit_off, bits)
        self._relocate(chunk, oslot)
        return freed

    # -- chunks --------------------------------------------------------------------------------

    def _new_chunk(self, kind: str, base_addr: int, nr_pages: int) -> Chunk:
        chunk = Chunk(id=next(self._chunk_ids), kind=kind, base_addr=base_addr,
                      nr_pages=nr_pages, block_bits=self.block_bits)
        chunk.chunk_md = BlockMD(chunk.map_bits)
        chunk.md_blocks = [BlockMD(self.block_bits) for _ in range(nr_pages)]
        self.chunks.append(chunk)
        return chunk

    def _alloc_first_chunk(self, tmp_addr: int, map_size: int, kind: str) -> Chunk:
        """pcpu_alloc_first_chunk(): hide the bytes before tmp_addr and after map_size."""
        aligned = tmp_addr & ~(self.page_size - 1)
        start_offset = tmp_addr - aligned
        region_size = -(-(start_offset + map_size) // self.page_size) * self.page_size
        chunk = self._new_chunk(kind, aligned, region_size // self.page_size)
        chunk.start_offset = start_offset
        chunk.end_offset = region_size - start_offset - map_size
        chunk.immutable = True
        chunk.populated = _mask(chunk.nr_pages)
        chunk.nr_populated = chunk.nr_pages
        chunk.nr_empty_pop_pages = chunk.nr_pages
        chunk.free_bytes = map_size
        if chunk.start_offset:
            bits = chunk.start_offset // PCPU_MIN_ALLOC_SIZE
            chunk.alloc_map |= _mask(bits)
            chunk.bound_map |= 1 | (1 << bits)
            chunk.chunk_md.first_free = bits
            self._block_update_hint_alloc(chunk, 0, bits)
        if chunk.end_offset:
            bits = chunk.end_offset // PCPU_MIN_ALLOC_SIZE
            chunk.alloc_map |= _mask(bits) << (chunk.map_bits - bits)
            chunk.bound_map |= 1 << ((start_offset + map_size) // PCPU_MIN_ALLOC_SIZE)
            chunk.bound_map |= 1 << chunk.map_bits
            self._block_update_hint_alloc(chunk, chunk.map_bits - bits, bits)
        return chunk

    def _create_chunk(self) -> Chunk:
        """pcpu_create_chunk() (mm/percpu-vm.c): a chunk at pcpu_get_vm_areas()' base."""
        base = self.vm.get_vm_areas(self.group_offsets, self.group_sizes, self.ai.atom_size)
        # chunk->base_addr = vms[0]->addr - pcpu_group_offsets[0] = base
        chunk = self._new_chunk("dynamic", base, self.unit_pages)
        chunk.free_bytes = self.unit_pages * self.page_size
        self._count_chunk(+1)
        self._event("create_chunk", chunk)
        return chunk

    def _destroy_chunk(self, chunk: Chunk) -> None:
        """pcpu_destroy_chunk(): give the vm areas back."""
        for off, size in zip(self.group_offsets, self.group_sizes, strict=True):
            self.vm.release(chunk.base_addr + off, chunk.base_addr + off + size)
        self.chunks.remove(chunk)
        self._count_chunk(-1)
        self._event("destroy_chunk", chunk)

    def _count_chunk(self, delta: int) -> None:
        s = self.stats_counters
        s["nr_chunks"] += delta
        s["nr_max_chunks"] = max(s["nr_max_chunks"], s["nr_chunks"])

    def unit_page_addr(self, chunk: Chunk, cpu: int, page: int) -> int:
        """pcpu_chunk_addr(chunk, cpu, page): CPU cpu's copy of a chunk page."""
        return chunk.base_addr + self.unit_offsets[cpu] + page * self.page_size

    def _map_range(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_map_pages(): every unit's pages; with the patch also each CPU's local copy."""
        if self.mapper is None:
            return
        size = (re - rs) * self.page_size
        for cpu in sorted(self.unit_offsets):
            va = self.unit_page_addr(chunk, cpu, rs)
            pa = self._pa_of(chunk, cpu, rs)
            self.mapper.map_pages(va, pa, size, None)
            if self.local:
                local_va = self.local_base + (chunk.base_addr - self.base_addr) \
                    + rs * self.page_size
                self.mapper.map_pages(local_va, pa, size, cpu)

    def _map_first_chunk(self) -> None:
        """The first chunk's units (size_sum bytes each, as pcpu_embed_first_chunk()
        keeps): mainline reaches them through the linear map; patch 05/11 (assumed)
        maps them at their Global Percpu address and each CPU's own unit at the local
        base."""
        if self.mapper is None:
            return
        size = self.ai.size_sum
        for cpu in sorted(self.unit_offsets):
            pa = self.first_chunk_pa(cpu, 0)
            self.mapper.map_pages(self.base_addr + self.unit_offsets[cpu], pa, size, None)
            if self.local:
                self.mapper.map_pages(self.local_base, pa, size, cpu)

    def first_chunk_pa(self, cpu: int, offset: int) -> int:
        """Physical address of byte `offset` (from pcpu_base_addr) of cpu's first-chunk unit."""
        return self.first_chunk_phys + self.unit_offsets[cpu] + offset

    def _unmap_range(self, chunk: Chunk, rs: int, re: int) -> None:
        if self.mapper is None:
            return
        size = (re - rs) * self.page_size
        for cpu in sorted(self.unit_offsets):
            self.mapper.unmap_pages(self.unit_page_addr(chunk, cpu, rs), size, None)
            if self.local:
                local_va = self.local_base + (chunk.base_addr - self.base_addr) \
                    + rs * self.page_size
                self.mapper.unmap_pages(local_va, size, cpu)

    def _pa_of(self, chunk: Chunk, cpu: int, page: int) -> int:
        """The physical page behind (chunk, cpu's unit, page): from the dynamic pool,
        contiguous per chunk and unit."""
        unit = self.unit_of_cpu[cpu]
        return DYNAMIC_PAGE_POOL + ((chunk.id * self.nr_units + unit) * self.unit_pages
                                    + page) * self.page_size

    def phys_of(self, ptr: int, cpu: int) -> int:
        """The physical address of cpu's copy of ptr (what every mapping must reach)."""
        allocation = self.live.get(ptr)
        if allocation is None:
            raise PercpuError(f"{fmt_addr(ptr)} is not a live percpu allocation")
        self._check_cpu(cpu)
        addr = self.ptr_to_addr(ptr)
        chunk = next(c for c in self.chunks if c.id == allocation.chunk_id)
        if chunk.kind != "dynamic":
            return self.first_chunk_pa(cpu, addr - self.base_addr)
        rel = addr - chunk.base_addr
        return self._pa_of(chunk, cpu, rel // self.page_size) + rel % self.page_size

    def _populate(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_populate_chunk() + pcpu_chunk_populated()."""
        self._map_range(chunk, rs, re)
        nr = re - rs
        chunk.populated |= _mask(nr) << rs
        chunk.nr_populated += nr
        self.nr_populated += nr
        self._update_empty_pages(chunk, nr)
        self._event("populate", chunk, pages=(rs, re))

    def _depopulate(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_depopulate_chunk() + pcpu_chunk_depopulated()."""
        self._unmap_range(chunk, rs, re)
        nr = re - rs
        chunk.populated &= ~(_mask(nr) << rs)
        chunk.nr_populated -= nr
        self.nr_populated -= nr
        self._update_empty_pages(chunk, -nr)
        self._event("depopulate", chunk, pages=(rs, re))

    # -- the public operations -----------------------------------------------------------------

    def alloc(self, size: int, align: int = PCPU_MIN_ALLOC_SIZE, *, reserved: bool = False,
              atomic: bool = False) -> Allocation:
        """pcpu_alloc(): a percpu area of size bytes (rounded up to 4) at align."""
        if align < PCPU_MIN_ALLOC_SIZE:
            align = PCPU_MIN_ALLOC_SIZE
        size = -(-size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE
        if (not size or size > pcpu_min_unit_size(self.page_size) or align > self.page_size
                or align & (align - 1)):
            raise PercpuError(f"illegal size ({size}) or align ({align}) for percpu allocation "
                              f"(size must be 1..{pcpu_min_unit_size(self.page_size)}, align a "
                              f"power of two up to {self.page_size})")
        bits = size >> PCPU_MIN_ALLOC_SHIFT
        bit_align = align >> PCPU_MIN_ALLOC_SHIFT

        chunk: Chunk | None = None
        off = -1
        if reserved and self.reserved_chunk is not None:
            chunk = self.reserved_chunk
            start = self._find_block_fit(chunk, bits, bit_align, atomic)
            if start >= 0:
                off = self._alloc_area(chunk, bits, bit_align, start)
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
                if not self.slots[self.free_slot]:
                    try:
                        new = self._create_chunk()
                    except AreaExhausted as exc:
                        self._event("fail", None, size=size, align=align, reserved=reserved,
                                    atomic=atomic, detail="failed to allocate new chunk")
                        raise AreaExhausted(f"pcpu_alloc({size}, {align}) failed to allocate "
                                            f"a new chunk: {exc}") from None
                    self._relocate(new, -1)
        assert chunk is not None
        if not atomic:
            page_start = off // self.page_size
            page_end = -(-(off + size) // self.page_size)
            need = _mask(page_end - page_start)
            if (chunk.populated >> page_start) & need != need:
                for rs, re in list(clear_ranges(chunk.populated, page_end, page_start)):
                    self._populate(chunk, rs, re)
        if self.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_LOW:
            self._schedule_balance()
        chunk.allocs[off] = size
        chunk.max_alloc_size = max(chunk.max_alloc_size, size)
        s = self.stats_counters
        s["nr_alloc"] += 1
        s["nr_cur_alloc"] += 1
        s["nr_max_alloc"] = max(s["nr_max_alloc"], s["nr_cur_alloc"])
        s["min_alloc_size"] = min(s["min_alloc_size"], size)
        s["max_alloc_size"] = max(s["max_alloc_size"], size)
        ptr = self.addr_to_ptr(chunk.base_addr + off)
        result = Allocation(ptr, chunk.id, chunk.base_addr, off, size, align, reserved, atomic)
        self.live[ptr] = result
        self._event("alloc", chunk, off=off, ptr=ptr, size=size, align=align,
                    reserved=reserved, atomic=atomic)
        self._maybe_run_balance()
        return result

    def _search_slots(self, size: int, bits: int, bit_align: int,
                      atomic: bool) -> tuple[Chunk | None, int]:
        for slot in range(self.size_to_slot(size), self.free_slot + 1):
            for chunk in list(self.slots[slot]):
                start = self._find_block_fit(chunk, bits, bit_align, atomic)
                if start < 0:
                    if slot < PCPU_SLOT_FAIL_THRESHOLD:
                        self._move(chunk, 0, True)
                    continue
                off = self._alloc_area(chunk, bits, bit_align, start)
                if off >= 0:
                    self._reintegrate(chunk)
                    return chunk, off
        return None, -1

    def _fail(self, size: int, align: int, reserved: bool, atomic: bool, err: str) -> NoReturn:
        self._event("fail", None, size=size, align=align, reserved=reserved, atomic=atomic,
                    detail=err)
        if atomic:
            self.atomic_alloc_failed = True
            self._schedule_balance()
            self._maybe_run_balance()
        raise PercpuError(f"allocation failed, size={size} align={align} atomic={int(atomic)}, "
                          f"{err}")

    def free(self, ptr: int) -> int:
        """free_percpu(): returns the bytes freed; an unknown pointer raises, state unchanged."""
        allocation = self.live.get(ptr)
        if allocation is None:
            raise PercpuError(f"free_percpu({fmt_addr(ptr)}): not a live percpu allocation "
                              "(never allocated or already freed)")
        chunk = next(c for c in self.chunks if c.id == allocation.chunk_id)
        off = allocation.off
        size = self._free_area(chunk, off)
        del self.live[ptr]
        del chunk.allocs[off]
        self.stats_counters["nr_dealloc"] += 1
        self.stats_counters["nr_cur_alloc"] -= 1
        need_balance = False
        if not chunk.isolated and chunk.free_bytes == self.unit_size:
            need_balance = any(c is not chunk for c in self.slots[self.free_slot])
        elif self._should_reclaim(chunk):
            self._isolate(chunk)
            need_balance = True
        self._event("free", chunk, off=off, ptr=ptr, size=size)
        if need_balance:
            self._schedule_balance()
            self._maybe_run_balance()
        return size

    def _should_reclaim(self, chunk: Chunk) -> bool:
        """pcpu_should_reclaim_chunk() (mm/percpu-vm.c)."""
        if chunk is self.first_chunk or chunk is self.reserved_chunk:
            return False
        return bool((chunk.isolated and chunk.nr_empty_pop_pages)
                    or (self.nr_empty_pop_pages
                        > PCPU_EMPTY_POP_PAGES_HIGH + chunk.nr_empty_pop_pages
                        and chunk.nr_empty_pop_pages >= chunk.nr_pages // 4))

    # -- balance work ---------------------------------------------------------------------------

    def _schedule_balance(self) -> None:
        self.balance_pending = True

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
        head = self.slots[self.free_slot]
        to_free = [c for i, c in enumerate(head)
                   if i > 0 and (not empty_only or c.nr_empty_pop_pages == 0)]
        for chunk in to_free:
            head.remove(chunk)
            chunk.slot = None
        for chunk in to_free:
            for rs, re in list(set_ranges(chunk.populated, chunk.nr_pages)):
                self._depopulate(chunk, rs, re)
            self._destroy_chunk(chunk)

    def _balance_populated(self) -> None:
        while True:
            if self.atomic_alloc_failed:
                nr_to_pop = PCPU_EMPTY_POP_PAGES_HIGH
                self.atomic_alloc_failed = False
            else:
                nr_to_pop = min(max(PCPU_EMPTY_POP_PAGES_HIGH - self.nr_empty_pop_pages, 0),
                                PCPU_EMPTY_POP_PAGES_HIGH)
            for slot in range(self.size_to_slot(self.page_size), self.free_slot + 1):
                if not nr_to_pop:
                    break
                target = next((c for c in self.slots[slot] if c.nr_pages - c.nr_populated),
                              None)
                if target is None:
                    continue
                for rs, re in list(clear_ranges(target.populated, target.nr_pages)):
                    nr = min(re - rs, nr_to_pop)
                    self._populate(target, rs, rs + nr)
                    nr_to_pop -= nr
                    if not nr_to_pop:
                        break
            if not nr_to_pop:
                return
            try:
                chunk = self._create_chunk()
            except AreaExhausted:
                return
            self._relocate(chunk, -1)

    def _reclaim_populated(self) -> None:
        bb = self.block_bits
        while self.slots[self.to_depopulate_slot]:
            chunk = self.slots[self.to_depopulate_slot][0]
            reintegrate = False
            end = -1
            i = chunk.nr_pages - 1
            while i >= 0:
                if chunk.nr_empty_pop_pages == 0:
                    break
                if self.nr_empty_pop_pages < PCPU_EMPTY_POP_PAGES_HIGH:
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
                self._depopulate(chunk, i + 1, end + 1)
                end = -1
                i -= 1
            if reintegrate or chunk.free_bytes == self.unit_size:
                self._reintegrate(chunk)
            else:
                self._move(chunk, self.sidelined_slot, False)

    # -- reports ------------------------------------------------------------------------------

    def chunk_stats(self, chunk: Chunk) -> dict[str, int]:
        """chunk_map_stats() (mm/percpu-stats.c): fragmentation up to the last allocation."""
        size = chunk.map_bits - chunk.end_offset // PCPU_MIN_ALLOC_SIZE - 1
        last = find_last_bit(chunk.alloc_map, size)
        last = last + 1 if (chunk.alloc_map >> last) & 1 else 0
        sizes: list[int] = []
        start = chunk.start_offset // PCPU_MIN_ALLOC_SIZE
        while start < last:
            if (chunk.alloc_map >> start) & 1:
                end = find_next_bit(chunk.bound_map, last, start + 1)
                sizes.append((end - start) * PCPU_MIN_ALLOC_SIZE)
            else:
                end = find_next_bit(chunk.alloc_map, last, start + 1)
                sizes.append(-(end - start) * PCPU_MIN_ALLOC_SIZE)
            start = end
        sum_frag = max_frag = cur_min = cur_med = cur_max = 0
        if sizes:
            sizes.sort()
            i = 0
            while i < len(sizes) and sizes[i] < 0:
                sum_frag -= sizes[i]
                max_frag = max(max_frag, -sizes[i])
                i += 1
            cur_min = sizes[i] if i < len(sizes) else 0
            cur_med = sizes[(i + len(sizes) - 1) // 2]
            cur_max = sizes[-1]
        return {"nr_alloc": len(chunk.allocs), "max_alloc_size": chunk.max_alloc_size,
                "empty_pop_pages": chunk.nr_empty_pop_pages,
                "first_bit": chunk.chunk_md.first_free, "free_bytes": chunk.free_bytes,
                "contig_bytes": chunk.chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE,
                "sum_frag": sum_frag, "max_frag": max_frag, "cur_min_alloc": cur_min,
                "cur_med_alloc": cur_med, "cur_max_alloc": cur_max}

    def stats(self) -> dict[str, Any]:
        """The data of debugfs percpu_stats: allocation info, global stats, and per chunk
        (reserved chunk first, then the chunks slot by slot, as the kernel walks them)."""
        ai = self.ai
        chunks = []
        if self.reserved_chunk is not None:
            chunks.append(("<- Reserved Chunk", self.reserved_chunk))
        for slot, lst in enumerate(self.slots):
            for chunk in lst:
                if chunk is self.first_chunk:
                    label = "<- First Chunk"
                elif slot == self.to_depopulate_slot:
                    label = "(to_depopulate)"
                elif slot == self.sidelined_slot:
                    label = "(sidelined):"
                else:
                    label = ""
                chunks.append((label, chunk))
        return {
            "alloc_info": {"unit_size": ai.unit_size, "static_size": ai.static_size,
                           "reserved_size": ai.reserved_size, "dyn_size": ai.dyn_size,
                           "atom_size": ai.atom_size, "alloc_size": ai.alloc_size},
            "global": dict(self.stats_counters) | {"empty_pop_pages": self.nr_empty_pop_pages},
            "chunks": [{"label": label, "id": c.id, "base_addr": c.base_addr}
                       | self.chunk_stats(c) for label, c in chunks],
        }

    def percpu_stats_text(self) -> str:
        """/sys/kernel/debug/percpu_stats, line for line."""
        data = self.stats()
        out = ["Percpu Memory Statistics", "Allocation Info:", "-" * 40]
        out += [f"  {k:<20}: {v:12d}" for k, v in data["alloc_info"].items()]
        out += ["", "Global Stats:", "-" * 40]
        out += [f"  {k:<20}: {v:12d}" for k, v in data["global"].items()]
        out += ["", "Per Chunk Stats:", "-" * 40]
        for chunk in data["chunks"]:
            label = chunk["label"]
            if label.startswith("(to_depopulate)"):
                out.append("Chunk (to_depopulate)")
            elif label.startswith("(sidelined)"):
                out.append("Chunk (sidelined):")
            else:
                out.append(f"Chunk: {label}".rstrip() if label else "Chunk:")
            out += [f"  {k:<20}: {v:12d}" for k, v in chunk.items()
                    if k not in ("label", "id", "base_addr")]
            out.append("")
        return "\n".join(out) + "\n"

    def _event(self, kind: str, chunk: Chunk | None, **fields: Any) -> None:
        self.events.append(Event(next(self._seq), kind,
                                 chunk.id if chunk else None,
                                 chunk.base_addr if chunk else None, **fields))

    def events_frame(self) -> pd.DataFrame:
        """Every decision so far, one row each."""
        return pd.DataFrame([dataclasses.asdict(e) for e in self.events])

    def chunks_frame(self) -> pd.DataFrame:
        """One row per chunk: where it is, its slot, free space and population."""
        rows = []
        for c in self.chunks:
            rows.append({
                "id": c.id, "kind": c.kind, "base_addr": c.base_addr,
                "slot": self._slot_of(c), "nr_pages": c.nr_pages,
                "free_bytes": c.free_bytes, "contig_bytes": c.chunk_md.contig_hint * 4,
                "nr_alloc": len(c.allocs), "nr_populated": c.nr_populated,
                "empty_pop_pages": c.nr_empty_pop_pages, "isolated": c.isolated,
                "offset_from_base": c.base_addr - self.base_addr,
            })
        return pd.DataFrame(rows)

    def allocations_frame(self) -> pd.DataFrame:
        """Live allocations with their pointers, offsets and chunk."""
        return pd.DataFrame([
            dataclasses.asdict(a) | {"offset_from_base": a.chunk_base + a.off - self.base_addr}
            for a in self.live.values()
        ])


class PageTableMapper:
    """Maps populated percpu pages into a `KernelPageTables`: shared mappings through
    swapper_pg_dir (cpu None), local ones into one CPU's root (patch 08/11's pgd)."""

    def __init__(self, kpt: KernelPageTables) -> None:
        self.kpt = kpt

    def map_pages(self, va: int, pa: int, size: int, cpu: int | None) -> None:
        self.kpt.vmap_range(va, va + size, pa, cpu=cpu)

    def unmap_pages(self, va: int, size: int, cpu: int | None) -> None:
        self.kpt.vunmap_range(va, va + size, cpu=cpu)


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


def _overlap(a: int, b: int, x: int, y: int) -> bool:
    """pcpu_region_overlap(): [a, b) and [x, y) intersect."""
    return a < y and x < b


def _align(value: int, align: int) -> int:
    return (value + align - 1) & ~(align - 1) if align else value


# --- replaying request histories ---------------------------------------------------------

REQUEST_COLUMNS = ("op", "id", "size", "align", "reserved", "atomic")


def read_requests(path: str) -> pd.DataFrame:
    """A request history from CSV: columns op (alloc/free), id (names an allocation so
    a free can refer to it), size, align, reserved, atomic; size/align/flags only
    for allocs. Bad rows raise ValueError naming the line and column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: cannot read a request history: {exc}") from None
    return validate_requests(frame, source=str(path))


def _cell_int(value: Any, column: str) -> int | None:
    """An integer cell: int, integral float, or text (decimal or 0x); None if empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{column} {value!r} is not a whole number")
    text = str(value).strip()
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{column} {text!r} is not a number") from None
        if not number.is_integer():
            raise ValueError(f"{column} {text!r} is not a whole number") from None
        return int(number)


def _cell_flag(value: Any, column: str) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "0", "false", "0.0"):
        return False
    if text in ("1", "true", "1.0"):
        return True
    raise ValueError(f"{column} {value!r} is not 0/1/true/false")


def validate_requests(frame: pd.DataFrame, *, source: str = "requests") -> pd.DataFrame:
    """Check and type a request history; one message per bad row (line numbers count
    the CSV header as line 1), at most 20 listed."""
    rows = _validated_rows(frame, source)
    out = pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
    return out.astype({"id": "int64", "size": "Int64", "align": "Int64",
                       "reserved": "boolean", "atomic": "boolean"})


def _validated_rows(frame: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    missing = [c for c in ("op", "id") if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected "
                         f"{list(REQUEST_COLUMNS)}")
    out, errors = [], []
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        op = str(row.get("op", "")).strip()
        try:
            if op not in ("alloc", "free"):
                raise ValueError(f"op {op!r} is not alloc or free")
            ident = _cell_int(row.get("id"), "id")
            if ident is None:
                raise ValueError("id is empty")
            item: dict[str, Any] = {"op": op, "id": ident}
            if op == "alloc":
                size = _cell_int(row.get("size"), "size")
                if size is None:
                    raise ValueError("size is empty")
                align = _cell_int(row.get("align"), "align")
                item.update(size=size, align=PCPU_MIN_ALLOC_SIZE if align is None else align,
                            reserved=_cell_flag(row.get("reserved"), "reserved"),
                            atomic=_cell_flag(row.get("atomic"), "atomic"))
        except ValueError as exc:
            errors.append(f"{source}:{line}: {exc}")
            continue
        out.append(item)
    if errors:
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ValueError("\n".join(errors[:20]) + more)
    return out


def run_history(alloc: PercpuAllocator,
           requests: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Run a request history through the allocator; one row per request with the
    decision: chunk, offset, pointer, offset from pcpu_base_addr, chunks created or
    destroyed and pages populated on the way, or the error."""
    frame = requests if isinstance(requests, pd.DataFrame) else pd.DataFrame(list(requests))
    ptr_of: dict[int, int] = {}
    rows = []
    for req in _validated_rows(frame, "requests"):
        first_event = len(alloc.events)
        row: dict[str, Any] = {"op": req["op"], "id": req["id"]}
        try:
            if req["op"] == "alloc":
                if req["id"] in ptr_of:
                    raise PercpuError(f"id {req['id']} is already allocated")
                result = alloc.alloc(req["size"], req["align"], reserved=req["reserved"],
                                     atomic=req["atomic"])
                ptr_of[req["id"]] = result.ptr
                row.update(size=result.size, align=result.align, chunk_id=result.chunk_id,
                           chunk_base=result.chunk_base, off=result.off, ptr=result.ptr,
                           offset_from_base=alloc.offset_from_base(result.ptr))
            else:
                if req["id"] not in ptr_of:
                    raise PercpuError(f"free of id {req['id']}, which is not allocated")
                row["size"] = alloc.free(ptr_of.pop(req["id"]))
        except PercpuError as exc:
            row["error"] = str(exc)
        new = alloc.events[first_event:]
        row["chunks_created"] = sum(e.kind == "create_chunk" for e in new)
        row["chunks_destroyed"] = sum(e.kind == "destroy_chunk" for e in new)
        row["pages_populated"] = sum(e.pages[1] - e.pages[0] for e in new if e.kind == "populate")
        rows.append(row)
    return _typed(rows, addresses=("chunk_base", "ptr"),
                  integers=("size", "align", "chunk_id", "off", "offset_from_base"))


def _typed(rows: list[dict[str, Any]], *, addresses: Sequence[str] = (),
           integers: Sequence[str] = ()) -> pd.DataFrame:
    """A frame with nullable 64-bit columns: built as objects first, because a missing
    value would otherwise turn a column into floats, which cannot hold 64-bit addresses."""
    frame = pd.DataFrame(rows, dtype=object)
    for col in addresses:
        if col in frame:
            frame[col] = pd.array([None if v is None or v != v else int(v) for v in frame[col]],
                                  dtype="UInt64")
    for col in integers:
        if col in frame:
            frame[col] = pd.array([None if v is None or v != v else int(v) for v in frame[col]],
                                  dtype="Int64")
    return frame.infer_objects()


def synthetic_history(n_alloc: int, n_free: int, *, seed: int = 0) -> pd.DataFrame:
    """A boot-like request history (synthetic): mostly small counters and stats
    structures (4-64 bytes), some 128 bytes-4K, a few 8-32K; frees of random live
    allocations interleaved. Real histories come from kernel traces (captures)."""
    import random

    rng = random.Random(seed)
    sizes = [4, 8, 8, 8, 16, 16, 24, 32, 40, 48, 64, 64, 128, 192, 256, 512, 1024, 4096,
             8192, 16384, 32768]
    weights = [6, 14, 10, 8, 10, 8, 6, 6, 3, 3, 5, 3, 4, 2, 3, 2, 2, 1, 0.5, 0.2, 0.05]
    aligns = {4: 4, 8: 8, 16: 8, 24: 8, 32: 8, 40: 8, 48: 8, 64: 64}
    live: list[int] = []
    rows: list[dict[str, Any]] = []
    next_id = 0
    frees_left = n_free
    while next_id < n_alloc or (frees_left and live):
        free_now = next_id >= n_alloc or rng.random() < n_free / (n_alloc + n_free)
        if live and frees_left and free_now:
            rows.append({"op": "free", "id": live.pop(rng.randrange(len(live)))})
            frees_left -= 1
            continue
        size = rng.choices(sizes, weights)[0]
        rows.append({"op": "alloc", "id": next_id, "size": size,
                     "align": aligns.get(size, 64 if size < 4096 else 4096),
                     "reserved": False, "atomic": rng.random() < 0.01})
        live.append(next_id)
        next_id += 1
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))


# --- the patch's claims about offsets and space ---------------------------------------------

def offset_extremes(alloc: PercpuAllocator) -> dict[str, int]:
    """The largest distance from pcpu_base_addr of any chunk byte in use: what patch
    02/11 calls the offset that "could be quite big"."""
    ends = [c.base_addr + c.nr_pages * alloc.page_size for c in alloc.chunks]
    starts = [c.base_addr for c in alloc.chunks]
    return {"max_offset": max(e - alloc.base_addr for e in ends),
            "min_offset": min(s - alloc.base_addr for s in starts)}


def capacity(cfg: KernelConfig, ai: AllocInfo) -> dict[str, Any]:
    """How much dynamic percpu memory per CPU fits: the first chunk's dynamic part plus
    one unit per further chunk that fits the placement area (the Global Percpu area
    with the patch, vmalloc without it, assumed otherwise empty). Each chunk needs
    nr_units * unit_size bytes of congruent space, aligned to the atom size."""
    layout = compute_layout(cfg)
    sym = layout.symbols
    span = max(g.base_offset for g in ai.groups) + ai.groups[-1].nr_units * ai.unit_size
    if cfg.local_percpu:
        area = sym["PERCPU_SIZE"]
        room = area - span if span <= area else -1
    else:
        area = u64(sym["VMALLOC_END"] - sym["VMALLOC_START"])
        room = area
    chunks = max(room, 0) // span if room >= 0 else 0
    return {
        "config": cfg.label(), "local_percpu": cfg.local_percpu, "nr_cpus": ai.nr_possible_cpus,
        "unit_size": ai.unit_size, "chunk_span": span, "area_size": area,
        "first_chunk_fits": room >= 0, "dynamic_chunks": chunks,
        "bytes_per_cpu": (ai.dyn_size + chunks * ai.unit_size) if room >= 0 else 0,
        # pcpu_embed_first_chunk() warns when the groups spread over 3/4 of vmalloc
        "embed_warns": span > u64(sym["VMALLOC_END"] - sym["VMALLOC_START"]) * 3 // 4,
    }


def capacity_table(kernel: str = DEFAULT_KERNEL, *, static_size: int = DEFAULT_STATIC_SIZE,
                   cpu_counts: Sequence[int] = (64, 256, 1024, 4096)) -> pd.DataFrame:
    """`capacity` for every valid configuration (no KASAN) and CPU count, mainline and
    patched side by side; the patched columns are empty where the layout is broken."""
    from ..kernel import valid_configs

    rows = []
    for base in valid_configs(kernel, kasan=("none",)):
        for nr in cpu_counts:
            ai = build_alloc_info(static_size, nr_cpus=nr, page_size=base.page_size)
            main = capacity(base, ai)
            row = {"config": base.label(), "nr_cpus": nr, "unit_size": ai.unit_size,
                   "chunk_span": main["chunk_span"], "mainline_chunks": main["dynamic_chunks"],
                   "mainline_bytes_per_cpu": main["bytes_per_cpu"]}
            patched_cfg = base.replace(local_percpu=True)
            if compute_layout(patched_cfg).sane:
                pat = capacity(patched_cfg, ai)
                row.update(area_size=pat["area_size"], patched_chunks=pat["dynamic_chunks"],
                           patched_bytes_per_cpu=pat["bytes_per_cpu"],
                           first_chunk_fits=pat["first_chunk_fits"])
            rows.append(row)
    return pd.DataFrame(rows)


# --- replaying a real kernel trace -------------------------------------------------------------

@dataclass(frozen=True)
class TraceReplay:
    """How the model's decisions compare with a real kernel's percpu trace.

    rows: one per trace event (event, line, real and model chunk base and offset, match).
    pre_trace: (offset, bytes) areas of the first chunk the replay assumed taken before
        tracing started (the log begins after the earliest boot allocations).
    final_stats: the model's percpu_stats data after the replay (`PercpuAllocator.stats()`).
    chunk_event_lags: for each chunk created or destroyed, how many trace events after
        the model's balance run the kernel's worker logged it (the model runs the work
        inside the call that schedules it; the kernel's kworker runs it soon after).
    assumptions: every assumption the replay made, in words.
    """

    rows: pd.DataFrame
    allocs: int
    allocs_matched: int
    frees: int
    frees_matched: int
    creates_real: tuple[int, ...]
    creates_model: tuple[int, ...]
    destroys_real: tuple[int, ...]
    destroys_model: tuple[int, ...]
    chunk_event_lags: tuple[int, ...]
    first_disagreement: dict[str, Any] | None
    pre_trace: tuple[tuple[int, int], ...]
    assumptions: tuple[str, ...]
    final_stats: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def all_matched(self) -> bool:
        return (self.allocs_matched == self.allocs and self.frees_matched == self.frees
                and self.creates_real == self.creates_model
                and self.destroys_real == self.destroys_model and self.chunk_moments_matched)

    @property
    def chunk_moments_matched(self) -> bool:
        """Every chunk event came after the call whose balance work made it, and before
        anything used or missed it (all allocations matched in between)."""
        return (len(self.chunk_event_lags) == len(self.creates_real) + len(self.destroys_real)
                and all(lag >= 0 for lag in self.chunk_event_lags)
                and self.allocs_matched == self.allocs)


def replay_trace(events: pd.DataFrame, ai: AllocInfo, cfg: KernelConfig, *,
                 max_inferred: int = 20000) -> TraceReplay:
    """Replay the percpu:* events of a kernel trace (percpu_alloc_percpu,
    percpu_free_percpu, percpu_create_chunk, percpu_destroy_chunk) and compare each
    decision: the same chunk and offset for every allocation, the same chunks created
    and destroyed, in the same order.

    pcpu_base_addr and __per_cpu_start come from the first allocation (its chunk is the
    first chunk: base_addr there is the page-aligned start of the dynamic part). The
    balance work runs wherever the kernel schedules it (pcpu_schedule_balance_work());
    in the kernel a worker runs it soon after, and leaves no event itself.
    Chunk creations match in time when, before every allocation, model and kernel
    have created the same number of chunks.
    """
    allocs = events[events["event"] == "percpu_alloc_percpu"]
    if allocs.empty:
        raise ValueError("the trace has no percpu_alloc_percpu event to replay")
    first = allocs.iloc[0]
    page = ai.page_size
    static4 = -(-ai.static_size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE
    first_chunk_base = int(first["base_addr"])
    pcpu_base = first_chunk_base - ((static4 + ai.reserved_size) & ~(page - 1))
    per_cpu_start = u64(int(first["ptr"]) - (first_chunk_base + int(first["off"]) - pcpu_base))
    alloc = PercpuAllocator(ai, cfg=cfg,
                            group_bases=[pcpu_base + g.base_offset for g in ai.groups],
                            per_cpu_start=per_cpu_start, balance="immediate")
    assumptions = [
        f"pcpu_base_addr {fmt_addr(pcpu_base)} and __per_cpu_start {fmt_addr(per_cpu_start)} "
        "derived from the first traced allocation",
        "the balance work runs where the kernel schedules it, before the next traced event",
    ]
    model_ptr: dict[int, int] = {}  # real ptr -> model ptr
    rows: list[dict[str, Any]] = []
    pre_trace: list[tuple[int, int]] = []
    creates_real: list[int] = []
    destroys_real: list[int] = []
    first_bad: dict[str, Any] | None = None
    inferred = 0

    def model_events(kind: str) -> list[int]:
        return [e.base_addr for e in alloc.events if e.kind == kind and e.base_addr is not None]

    for ev in events.to_dict("records"):
        kind = ev["event"]
        row: dict[str, Any] = {"event": kind, "line": ev.get("line")}
        if kind == "percpu_alloc_percpu":
            real = (int(ev["base_addr"]), int(ev["off"]))
            size, align = int(ev["size"]), int(ev["align"])
            reserved, atomic = bool(ev["reserved"]), bool(ev["is_atomic"])
            while True:
                counters = dict(alloc.stats_counters)
                try:
                    got = alloc.alloc(size, align, reserved=reserved, atomic=atomic)
                except PercpuError as exc:
                    row.update(real_base=real[0], real_off=real[1], error=str(exc), match=False)
                    break
                model = (got.chunk_base, got.off)
                in_first = got.chunk_id == alloc.first_chunk.id and real[0] == first_chunk_base
                if model != real and in_first and got.off < real[1] and inferred < max_inferred:
                    # Taken before tracing started: the kernel skipped it. Mark one unit;
                    # the probe itself does not count in the statistics.
                    alloc.free(got.ptr)
                    alloc.stats_counters.update(counters)
                    chunk = alloc.first_chunk
                    alloc._alloc_area(chunk, 1, 1, got.off // PCPU_MIN_ALLOC_SIZE)
                    pre_trace.append((got.off, PCPU_MIN_ALLOC_SIZE))
                    inferred += 1
                    continue
                model_ptr[int(ev["ptr"])] = got.ptr
                row.update(real_base=real[0], real_off=real[1], model_base=model[0],
                           model_off=model[1], match=model == real)
                break
        elif kind == "percpu_free_percpu":
            real_ptr = int(ev["ptr"])
            row.update(real_base=int(ev["base_addr"]), real_off=int(ev["off"]))
            mine = model_ptr.pop(real_ptr, None)
            if mine is None:
                row.update(error="frees an allocation the trace did not show", match=False)
            else:
                a = alloc.live[mine]
                alloc.free(mine)
                row.update(model_base=a.chunk_base, model_off=a.off,
                           match=(a.chunk_base, a.off) == (row["real_base"], row["real_off"]))
        elif kind in ("percpu_create_chunk", "percpu_destroy_chunk"):
            base = int(ev["base_addr"])
            (creates_real if kind == "percpu_create_chunk" else destroys_real).append(base)
            row.update(real_base=base)
        else:
            continue
        # chunks created and destroyed so far, by the kernel (its events come before the
        # allocation that needed them) and by the model; equal after every allocation
        # and free means the same moments
        row["chunks_real"] = (len(creates_real), len(destroys_real))
        row["chunks_model"] = (len(model_events("create_chunk")) - 1,
                               len(model_events("destroy_chunk")))
        if row.get("match") is False and first_bad is None:
            first_bad = dict(ev) | {k: v for k, v in row.items() if k.startswith("model")}
        rows.append(row)

    creates_model = tuple(model_events("create_chunk")[1:])  # [0] is the first chunk
    if pre_trace:
        assumptions.append(f"{len(pre_trace)} units ({len(pre_trace) * PCPU_MIN_ALLOC_SIZE} "
                           "bytes) of the first chunk taken before tracing started")
    frame = _typed(rows, addresses=("real_base", "model_base"),
                   integers=("line", "real_off", "model_off"))
    a_rows = frame[frame["event"] == "percpu_alloc_percpu"]
    f_rows = frame[frame["event"] == "percpu_free_percpu"]
    return TraceReplay(
        rows=frame,
        allocs=len(a_rows), allocs_matched=int(a_rows["match"].fillna(False).sum()),
        frees=len(f_rows), frees_matched=int(f_rows["match"].fillna(False).sum()),
        creates_real=tuple(b for b in creates_real if b != first_chunk_base),
        creates_model=creates_model,
        destroys_real=tuple(destroys_real),
        destroys_model=tuple(model_events("destroy_chunk")),
        chunk_event_lags=_chunk_event_lags(frame),
        first_disagreement=first_bad,
        pre_trace=tuple(_merge_areas(pre_trace)),
        assumptions=tuple(assumptions),
        final_stats=alloc.stats(),
    )


def _chunk_event_lags(frame: pd.DataFrame) -> tuple[int, ...]:
    """Rows between the model reaching the n-th create (destroy) and the kernel's event."""
    lags = []
    for which in (0, 1):
        real = frame["chunks_real"].map(lambda c, w=which: c[w])
        model = frame["chunks_model"].map(lambda c, w=which: c[w])
        for n in range(1, int(real.max()) + 1 if len(real) else 1):
            real_rows = real.index[real >= n]
            model_rows = model.index[model >= n]
            if len(real_rows) and len(model_rows):
                lags.append(int(real_rows[0] - model_rows[0]))
    return tuple(lags)


def _merge_areas(areas: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for off, size in sorted(areas):
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1] = (merged[-1][0], merged[-1][1] + size)
        else:
            merged.append((off, size))
    return merged
