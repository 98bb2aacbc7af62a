"""The first chunk: its sizes (include/linux/percpu.h), pcpu_build_alloc_info() for
arm64's pcpu_embed_first_chunk(), the boot lines pcpu_dump_alloc_info() prints, and the
unit geometry pcpu_setup_first_chunk() records (pcpu_base_addr, group and unit offsets).

Every possible CPU gets a unit of `unit_size` bytes, units are grouped by NUMA node,
and the chunk is split into the static area (the kernel's DEFINE_PER_CPU variables),
the reserved chunk (module percpu) and the dynamic part.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import shown
from ..kernel import NR_CPUS_RANGE, PAGE_SIZE_NAMES, PAGE_SIZES, align_up, div_round_up, roundup
from .chunk import PCPU_MIN_ALLOC_SIZE
from .errors import PercpuError

LOCAL_DISTANCE = 10  # include/linux/numa.h
# Debian 6.12's arm64 static percpu size: its boot line "percpu: Embedded 34 pages/cpu
# s101464 ..." (data/captures; tests/percpu/test_allocator_trace.py ties the two).
DEFAULT_STATIC_SIZE = 101464
# struct pcpu_chunk (mm/percpu-internal.h) counts a unit's free bytes in `int free_bytes`
# and its map bits and offsets in ints: no unit, and so no part of one, exceeds INT_MAX.
INT_MAX = (1 << 31) - 1
# arm64's pcpu_embed_first_chunk() call (drivers/base/arch_numa.c) passes atom PAGE_SIZE;
# other architectures pass a block size. The model takes atoms up to 1G (a 4K PUD block).
MAX_ATOM_SIZE = 1 << 30


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
    """PFN_ALIGN(): size rounded up to whole pages."""
    return align_up(size, page_size)


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

    @property
    def span(self) -> int:
        """Bytes from the first group's start to the last group's end: the congruent
        space every chunk takes."""
        last = max(self.groups, key=lambda g: g.base_offset)
        return last.base_offset + last.nr_units * self.unit_size

    @property
    def static_end(self) -> int:
        """Where the reserved chunk starts, from pcpu_base_addr: pcpu_setup_first_chunk()
        aligns the static size to PCPU_MIN_ALLOC_SIZE."""
        return align_up(self.static_size, PCPU_MIN_ALLOC_SIZE)

    @property
    def dynamic_start(self) -> int:
        """Where the first chunk's dynamic part starts, from pcpu_base_addr."""
        return self.static_end + self.reserved_size

    @property
    def first_chunk_dyn_size(self) -> int:
        """The dynamic part's size once the static size is aligned (dyn_size shrinks)."""
        return self.dyn_size - (self.static_end - self.static_size)


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
    if isinstance(page_size, bool) or page_size not in PAGE_SIZES:
        raise PercpuError(f"page_size {shown(page_size)} is not an arm64 granule; choose one "
                          f"of {', '.join(map(str, PAGE_SIZES))}")
    _check_bytes("static_size", static_size, 1, "the kernel's __per_cpu_end - __per_cpu_start")
    _check_count("nr_cpus", nr_cpus, 1, NR_CPUS_RANGE[1], "possible CPUs, at most NR_CPUS")
    reserved = build.module_reserve() if reserved_size is None else reserved_size
    dyn = build.dynamic_reserve(page_size) if dyn_size is None else dyn_size
    atom = page_size if atom_size is None else atom_size
    _check_bytes("reserved_size", reserved, 0, "the reserved chunk for module percpu")
    _check_bytes("dyn_size", dyn, 0, "the first chunk's dynamic reserve")
    _check_count("atom_size", atom, page_size, MAX_ATOM_SIZE, "bytes")
    if atom % page_size or atom & (atom - 1):
        raise PercpuError(f"atom_size {atom} must be a power-of-two multiple of {page_size}")
    nodes = list(cpu_to_node) if cpu_to_node is not None else [0] * nr_cpus
    if len(nodes) != nr_cpus:
        raise PercpuError(f"cpu_to_node has {len(nodes)} entries for {nr_cpus} CPUs")

    size_sum = pfn_align(static_size + reserved + max(dyn, build.dynamic_early_size(page_size)),
                         page_size)
    if size_sum > INT_MAX:
        raise PercpuError(
            f"static {static_size} + reserved {reserved} + dynamic {dyn} bytes make a "
            f"{size_sum}-byte unit ({PAGE_SIZE_NAMES[page_size]} pages), above {INT_MAX}, the "
            "most struct pcpu_chunk's int free_bytes can count; use smaller sizes")
    dyn = size_sum - static_size - reserved
    min_unit_size = max(size_sum, pcpu_min_unit_size(page_size))
    alloc_size = roundup(min_unit_size, atom)
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
            this_allocs = div_round_up(count, upa)
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
        cpus += [None] * (roundup(count, upa) - count)
        groups.append(GroupInfo(base_offset=unit * unit_size, cpu_map=tuple(cpus)))
        unit += len(cpus)
    return AllocInfo(static_size, reserved, dyn, unit_size, atom, alloc_size, tuple(groups),
                     page_size, nr_cpus)


def _check_count(name: str, value: object, low: int, high: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PercpuError(f"{name} {shown(value)} is outside {low}..{high} ({what})")


def _check_bytes(name: str, value: object, low: int, what: str) -> None:
    _check_count(name, value, low, INT_MAX,
                 f"bytes: {what}; a unit's bytes are an int in struct pcpu_chunk")


def boot_lines(ai: AllocInfo) -> list[str]:
    """The kernel log lines of the first chunk: pcpu_embed_first_chunk()'s pr_info and
    pcpu_dump_alloc_info()'s `pcpu-alloc:` lines (which keep pr_cont's trailing space)."""
    lines = [f"percpu: Embedded {ai.size_sum // ai.page_size} pages/cpu s{ai.static_size} "
             f"r{ai.reserved_size} d{ai.dyn_size} u{ai.unit_size}"]
    group_width = len(str(len(ai.groups)))
    cpu_width = len(str(ai.nr_possible_cpus))
    empty = "-" * min(cpu_width, 8)
    upa = ai.upa
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


# --- pcpu_setup_first_chunk(): where the units are ----------------------------------------

@dataclass(frozen=True, eq=False)
class UnitMap:
    """pcpu_setup_first_chunk()'s record of where each CPU's unit lies.

    base_addr: pcpu_base_addr, the lowest group's start.
    group_offsets, group_sizes: pcpu_group_offsets / pcpu_group_sizes (bytes).
    unit_offsets: pcpu_unit_offsets by CPU (bytes from base_addr).
    unit_of_cpu: pcpu_unit_map, the unit number of each CPU.
    """

    base_addr: int
    group_offsets: tuple[int, ...]
    group_sizes: tuple[int, ...]
    unit_offsets: dict[int, int]
    unit_of_cpu: dict[int, int]
    nr_units: int


def unit_map(ai: AllocInfo, group_bases: Sequence[int]) -> UnitMap:
    """The unit geometry for groups starting at group_bases (one address per group)."""
    if len(group_bases) != len(ai.groups):
        raise ValueError(f"{len(group_bases)} group bases for {len(ai.groups)} groups")
    base_addr = min(group_bases)
    group_offsets = tuple(b - base_addr for b in group_bases)
    unit_offsets: dict[int, int] = {}
    unit_of_cpu: dict[int, int] = {}
    unit = 0
    for gi, goff in zip(ai.groups, group_offsets, strict=True):
        for i, cpu in enumerate(gi.cpu_map):
            if cpu is not None:
                unit_of_cpu[cpu] = unit + i
                unit_offsets[cpu] = goff + i * ai.unit_size
        unit += gi.nr_units
    return UnitMap(base_addr, group_offsets,
                   tuple(g.nr_units * ai.unit_size for g in ai.groups),
                   unit_offsets, unit_of_cpu, unit)
