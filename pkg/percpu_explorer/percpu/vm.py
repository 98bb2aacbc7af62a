"""mm/percpu-vm.c for the model: where chunks go (pcpu_get_vm_areas()), the physical
pages behind them, and their mappings (pcpu_map_pages() / pcpu_unmap_pages()).

Later chunks are vmalloc areas placed by `pcpu_get_vm_areas()`: one area per group,
congruent to the first chunk's groups. With the RFC patch (series 03-09/11, not
public), chunks are placed as the `RfcPlacement` of percpu_explorer.kernel.rfc says (by
default the first chunk at the top of the Global Percpu area, later chunks below it
by the same congruent top-down search as pcpu_get_vm_areas()); each chunk is mirrored
at the same offset from the local base in the Local Percpu area, where every CPU maps
its own unit's pages: local address = local_base + (address - pcpu_base_addr).

Physical memory (a simplification): the first chunk's units sit in RAM where the linear
map puts them (RAM assumed at RAM_BASE, QEMU virt's base, and the first chunk near its
top, where memblock's top-down allocation puts it; a real machine's address comes from
a capture); pages of later chunks come from a separate pool, contiguous per chunk and
unit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol

from ..kernel import (
    RAM_BASE,
    KernelPageTables,
    RfcPlacement,
    align_down,
    align_up,
    fmt_addr,
)
from .chunk import Chunk
from .errors import AreaExhausted, PercpuError
from .first_chunk import AllocInfo, UnitMap

RAM_SIZE = 4 << 30  # where memblock's top-down allocation puts the first chunk, assumed
DYNAMIC_PAGE_POOL = RAM_BASE + (8 << 30)  # physical pages of later chunks (a counter)


class PageMapper(Protocol):
    """Where populated pages get mapped (a page-table model, or a recorder)."""

    def map_pages(self, va: int, pa: int, size: int, cpu: int | None) -> None: ...

    def unmap_pages(self, va: int, size: int, cpu: int | None) -> None: ...


class PageTableMapper:
    """Maps populated percpu pages into a `KernelPageTables`: shared mappings through
    swapper_pg_dir (cpu None), local ones into one CPU's root (patch 08/11's pgd)."""

    def __init__(self, kpt: KernelPageTables) -> None:
        self.kpt = kpt

    def map_pages(self, va: int, pa: int, size: int, cpu: int | None) -> None:
        self.kpt.vmap_range(va, va + size, pa, cpu=cpu)

    def unmap_pages(self, va: int, size: int, cpu: int | None) -> None:
        self.kpt.vunmap_range(va, va + size, cpu=cpu)


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

    def find_vm_areas(self, offsets: Sequence[int], sizes: Sequence[int], align: int) -> int:
        """The base (address of offset 0) pcpu_get_vm_areas() would pick for congruent
        areas, without reserving them; AreaExhausted when none fits."""
        last = max(range(len(offsets)), key=lambda i: offsets[i])
        last_end = offsets[last] + sizes[last]
        lo = align_up(self.start, align)
        hi = align_down(self.end, align)
        if hi - lo < last_end:
            raise AreaExhausted(self._exhausted(last_end))
        free = self.free_ranges()
        candidates = self._bases(free, offsets, sizes, align, lo, hi)
        for base in candidates:
            if all(self._is_free(free, base + o, s) for o, s in zip(offsets, sizes, strict=True)):
                return base
        raise AreaExhausted(self._exhausted(last_end))

    def get_vm_areas(self, offsets: Sequence[int], sizes: Sequence[int], align: int) -> int:
        """Reserve congruent areas; returns base (the address of offset 0)."""
        base = self.find_vm_areas(offsets, sizes, align)
        for o, s in zip(offsets, sizes, strict=True):
            self.used.append((base + o, base + o + s))
        self.used.sort()
        return base

    def _bases(self, free: list[tuple[int, int]], offsets: Sequence[int],
               sizes: Sequence[int], align: int, lo: int, hi: int) -> Iterator[int]:
        # Every base that puts some group's end at the (aligned) end of a free range, or
        # some group's start at the start of one: the extremes the kernel's walk reaches.
        bases = set()
        for s, e in free:
            for o, size in zip(offsets, sizes, strict=True):
                top = align_down(min(e, hi), align) - (o + size)
                bottom = align_up(max(s, lo), align) - o
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


# --- where the first chunk and later chunks go ---------------------------------------------

def first_chunk_phys(ai: AllocInfo) -> int:
    """The first chunk's RAM: memblock allocates top-down, so near the top of RAM."""
    if ai.span > RAM_SIZE:
        raise PercpuError(
            f"the first chunk's {ai.nr_units} units of {ai.unit_size} bytes span {ai.span} "
            f"bytes, more than the {RAM_SIZE >> 30} GiB of RAM the model assumes (QEMU virt, "
            f"at {fmt_addr(RAM_BASE)}); use fewer CPUs or smaller sizes")
    return align_down(RAM_BASE + RAM_SIZE - ai.span, ai.atom_size)


def first_chunk_start(ai: AllocInfo, symbols: dict[str, int], *, local: bool,
                      placement: RfcPlacement, phys: int, start: int | None = None) -> int:
    """pcpu_base_addr: with the patch where the placement puts the first chunk in the
    Global Percpu area, else `start` if given, else the linear-map address of `phys`."""
    if local:
        return placement.first_chunk_base(symbols, ai.span, ai.atom_size)
    if start is not None:
        return start
    return symbols["_PAGE_OFFSET(vabits_actual)"] + phys - RAM_BASE


def chunk_space(symbols: dict[str, int], units: UnitMap, *, local: bool,
                placement: RfcPlacement, busy: Iterable[tuple[int, int]] = ()) -> VmSpace:
    """Where later chunks go: the Global Percpu area around the first chunk's groups
    with the patch, vmalloc (less `busy`) without it."""
    if local:
        groups = [(units.base_addr + o, units.base_addr + o + s)
                  for o, s in zip(units.group_offsets, units.group_sizes, strict=True)]
        return VmSpace(symbols["PERCPU_START"], symbols["PERCPU_END"],
                       direction=placement.chunk_direction, busy=groups)
    return VmSpace(symbols["VMALLOC_START"], symbols["VMALLOC_END"], busy=busy)


class ChunkPages:
    """The pages of every chunk: which physical page backs a CPU's copy of a chunk page,
    and their mappings (pcpu_map_pages(), pcpu_unmap_pages()); with the patch each CPU
    also maps its own copy at the local address."""

    def __init__(self, ai: AllocInfo, units: UnitMap, mapper: PageMapper | None, *,
                 phys: int, local_base: int | None) -> None:
        self.ai = ai
        self.units = units
        self.mapper = mapper
        self.first_chunk_phys = phys
        self.local_base = local_base
        self.page_size = ai.page_size
        self.unit_pages = ai.unit_size // ai.page_size

    def unit_page_addr(self, chunk: Chunk, cpu: int, page: int) -> int:
        """pcpu_chunk_addr(chunk, cpu, page): CPU cpu's copy of a chunk page."""
        return chunk.base_addr + self.units.unit_offsets[cpu] + page * self.page_size

    def first_chunk_pa(self, cpu: int, offset: int) -> int:
        """Physical address of byte `offset` (from pcpu_base_addr) of cpu's first-chunk unit."""
        return self.first_chunk_phys + self.units.unit_offsets[cpu] + offset

    def page_pa(self, chunk: Chunk, cpu: int, page: int) -> int:
        """The physical page behind (chunk, cpu's unit, page) of a dynamic chunk: from the
        pool, contiguous per chunk and unit."""
        unit = self.units.unit_of_cpu[cpu]
        return DYNAMIC_PAGE_POOL + ((chunk.id * self.units.nr_units + unit) * self.unit_pages
                                    + page) * self.page_size

    def phys(self, chunk: Chunk, cpu: int, offset: int) -> int:
        """The physical address of byte `offset` of cpu's copy of a chunk."""
        if chunk.kind != "dynamic":
            return self.first_chunk_pa(cpu, chunk.base_addr - self.units.base_addr + offset)
        page, rest = divmod(offset, self.page_size)
        return self.page_pa(chunk, cpu, page) + rest

    def _local_addr(self, chunk: Chunk, page: int) -> int:
        return self.local_base + (chunk.base_addr - self.units.base_addr) + page * self.page_size

    def map_range(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_map_pages(): every unit's pages [rs, re); with the patch also each CPU's
        local copy."""
        if self.mapper is None:
            return
        size = (re - rs) * self.page_size
        for cpu in sorted(self.units.unit_offsets):
            pa = self.page_pa(chunk, cpu, rs)
            self.mapper.map_pages(self.unit_page_addr(chunk, cpu, rs), pa, size, None)
            if self.local_base is not None:
                self.mapper.map_pages(self._local_addr(chunk, rs), pa, size, cpu)

    def unmap_range(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_unmap_pages()."""
        if self.mapper is None:
            return
        size = (re - rs) * self.page_size
        for cpu in sorted(self.units.unit_offsets):
            self.mapper.unmap_pages(self.unit_page_addr(chunk, cpu, rs), size, None)
            if self.local_base is not None:
                self.mapper.unmap_pages(self._local_addr(chunk, rs), size, cpu)

    def map_first_chunk(self) -> None:
        """The first chunk's units (size_sum bytes each, as pcpu_embed_first_chunk()
        keeps): mainline reaches them through the linear map; patch 05/11 (assumed)
        maps them at their Global Percpu address and each CPU's own unit at the local
        base."""
        if self.mapper is None:
            return
        size = self.ai.size_sum
        for cpu in sorted(self.units.unit_offsets):
            pa = self.first_chunk_pa(cpu, 0)
            self.mapper.map_pages(self.units.base_addr + self.units.unit_offsets[cpu], pa,
                                  size, None)
            if self.local_base is not None:
                self.mapper.map_pages(self.local_base, pa, size, cpu)
