"""The allocator's chunks: creating and destroying them (pcpu_create_chunk(),
pcpu_destroy_chunk()), populating their pages (pcpu_populate_chunk() with
pcpu_chunk_populated()), and taking and freeing areas (pcpu_alloc_area(),
pcpu_free_area()) with the chunk lists and pcpu_nr_empty_pop_pages kept in step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from .chunk import PCPU_MIN_ALLOC_SHIFT, Chunk, alloc_area, alloc_first_chunk, free_area, new_chunk
from .first_chunk import AllocInfo
from .slots import ChunkLists
from .stats import PercpuStats
from .vm import ChunkPages, VmSpace

Record = Callable[..., None]  # record(kind, chunk, **fields): one trace-like event


class ChunkPool:
    """Every chunk of the allocator, the lists they sit on and the space they take.

    record: called as record(kind, chunk, **fields) for create_chunk, destroy_chunk,
        populate and depopulate, as the kernel's trace events.
    """

    def __init__(self, ai: AllocInfo, space: VmSpace, pages: ChunkPages, stats: PercpuStats,
                 record: Record) -> None:
        self.ai = ai
        self.space = space
        self.pages = pages
        self.stats = stats
        self.record = record
        self.lists = ChunkLists(ai.unit_size)
        self.chunks: list[Chunk] = []
        self.nr_populated = 0  # pcpu_nr_populated
        self.unit_pages = ai.unit_size // ai.page_size
        self._ids = itertools.count()

    def by_id(self, chunk_id: int) -> Chunk:
        return next(c for c in self.chunks if c.id == chunk_id)

    def first_chunk_part(self, kind: str, tmp_addr: int, map_size: int) -> Chunk:
        """pcpu_alloc_first_chunk(): the reserved chunk or the first chunk's dynamic part."""
        chunk = alloc_first_chunk(next(self._ids), kind, tmp_addr, map_size,
                                  self.ai.page_size)
        self.chunks.append(chunk)
        return chunk

    def create(self) -> Chunk:
        """pcpu_create_chunk() (mm/percpu-vm.c): a chunk at pcpu_get_vm_areas()' base, on
        no list yet; AreaExhausted when no congruent space is left."""
        units = self.pages.units
        base = self.space.get_vm_areas(units.group_offsets, units.group_sizes,
                                       self.ai.atom_size)
        # chunk->base_addr = vms[0]->addr - pcpu_group_offsets[0] = base
        chunk = new_chunk(next(self._ids), "dynamic", base, self.unit_pages,
                          self.ai.page_size >> PCPU_MIN_ALLOC_SHIFT)
        chunk.free_bytes = self.ai.unit_size
        self.chunks.append(chunk)
        self.stats.chunk_alloc()
        self.record("create_chunk", chunk)
        return chunk

    def next_base(self) -> int:
        """Where pcpu_create_chunk() would put the next chunk now (nothing reserved)."""
        units = self.pages.units
        return self.space.find_vm_areas(units.group_offsets, units.group_sizes,
                                        self.ai.atom_size)

    def destroy(self, chunk: Chunk) -> None:
        """pcpu_destroy_chunk(): give the vm areas back."""
        units = self.pages.units
        for off, size in zip(units.group_offsets, units.group_sizes, strict=True):
            self.space.release(chunk.base_addr + off, chunk.base_addr + off + size)
        self.chunks.remove(chunk)
        self.stats.chunk_dealloc()
        self.record("destroy_chunk", chunk)

    def populate(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_populate_chunk() + pcpu_chunk_populated(): pages [rs, re)."""
        self.pages.map_range(chunk, rs, re)
        chunk.set_populated(rs, re)
        self.nr_populated += re - rs
        self.lists.count_empty_pages(chunk, re - rs)
        self.record("populate", chunk, pages=(rs, re))

    def depopulate(self, chunk: Chunk, rs: int, re: int) -> None:
        """pcpu_depopulate_chunk() + pcpu_chunk_depopulated()."""
        self.pages.unmap_range(chunk, rs, re)
        chunk.clear_populated(rs, re)
        self.nr_populated -= re - rs
        self.lists.count_empty_pages(chunk, rs - re)
        self.record("depopulate", chunk, pages=(rs, re))

    def alloc_area(self, chunk: Chunk, bits: int, bit_align: int, start: int) -> int:
        """pcpu_alloc_area(): take bits at or after start (byte offset or -1), then
        pcpu_chunk_relocate() and the global empty page count."""
        oslot = self.lists.chunk_slot(chunk)
        empty = chunk.nr_empty_pop_pages
        off = alloc_area(chunk, bits, bit_align, start)
        if off >= 0:
            self.lists.count_empty_pages(chunk, chunk.nr_empty_pop_pages - empty)
            self.lists.relocate(chunk, oslot)
        return off

    def free_area(self, chunk: Chunk, off: int) -> int:
        """pcpu_free_area(): returns the bytes freed."""
        oslot = self.lists.chunk_slot(chunk)
        empty = chunk.nr_empty_pop_pages
        freed = free_area(chunk, off)
        self.lists.count_empty_pages(chunk, chunk.nr_empty_pop_pages - empty)
        self.lists.relocate(chunk, oslot)
        return freed
