"""The chunk lists of mm/percpu.c (pcpu_chunk_lists) and the global count of empty
populated pages (pcpu_nr_empty_pop_pages) that isolating a chunk changes.

A chunk sits on the list of its slot: the slot of its largest free area
(pcpu_chunk_slot()), so pcpu_alloc() can start its walk at the request's size. Past
the size slots come three special ones: sidelined (chunks the reclaim work gave up
on), free (whole-unit free chunks) and to_depopulate (isolated chunks waiting for
pcpu_reclaim_populated()). The reserved chunk is on no list.
"""

from __future__ import annotations

from .chunk import PCPU_MIN_ALLOC_SIZE, Chunk

PCPU_SLOT_BASE_SHIFT = 5  # mm/percpu.c
PCPU_SLOT_FAIL_THRESHOLD = 3


def raw_slot(size: int) -> int:
    """__pcpu_size_to_slot(): max(fls(size) - PCPU_SLOT_BASE_SHIFT + 2, 1)."""
    return max(size.bit_length() - PCPU_SLOT_BASE_SHIFT + 2, 1)


class ChunkLists:
    """pcpu_chunk_lists and the slots pcpu_setup_first_chunk() numbers for a unit size."""

    def __init__(self, unit_size: int) -> None:
        self.unit_size = unit_size
        self.sidelined_slot = raw_slot(unit_size) + 1
        self.free_slot = self.sidelined_slot + 1
        self.to_depopulate_slot = self.free_slot + 1
        self.nr_slots = self.to_depopulate_slot + 1
        self.slots: list[list[Chunk]] = [[] for _ in range(self.nr_slots)]
        self.reserved: Chunk | None = None  # pcpu_reserved_chunk: never on a list
        self.nr_empty_pop_pages = 0  # pcpu_nr_empty_pop_pages

    def size_to_slot(self, size: int) -> int:
        """pcpu_size_to_slot(): the free slot for a whole unit."""
        if size == self.unit_size:
            return self.free_slot
        return raw_slot(size)

    def chunk_slot(self, chunk: Chunk) -> int:
        """pcpu_chunk_slot(): by the chunk's largest free area (contig hint)."""
        if chunk.free_bytes < PCPU_MIN_ALLOC_SIZE or chunk.chunk_md.contig_hint == 0:
            return 0
        return self.size_to_slot(chunk.chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE)

    def move(self, chunk: Chunk, slot: int, front: bool) -> None:
        """__pcpu_chunk_move(): list_move / list_move_tail (never the reserved chunk)."""
        if chunk is self.reserved:
            return
        if chunk.slot is not None:
            self.slots[chunk.slot].remove(chunk)
        if front:
            self.slots[slot].insert(0, chunk)
        else:
            self.slots[slot].append(chunk)
        chunk.slot = slot

    def relocate(self, chunk: Chunk, oslot: int) -> None:
        """pcpu_chunk_relocate(): to the slot its hints now give (-1: not on a list yet)."""
        if chunk.isolated:
            return
        nslot = self.chunk_slot(chunk)
        if oslot != nslot:
            self.move(chunk, nslot, oslot < nslot)

    def unlink(self, chunk: Chunk) -> None:
        """list_del(): off its list."""
        self.slots[chunk.slot].remove(chunk)
        chunk.slot = None

    def isolate(self, chunk: Chunk) -> None:
        """pcpu_isolate_chunk(): onto to_depopulate; its empty pages stop counting."""
        if not chunk.isolated:
            chunk.isolated = True
            self.nr_empty_pop_pages -= chunk.nr_empty_pop_pages
        self.move(chunk, self.to_depopulate_slot, True)

    def reintegrate(self, chunk: Chunk) -> None:
        """pcpu_reintegrate_chunk(): back on the slot of its hints."""
        if chunk.isolated:
            chunk.isolated = False
            self.nr_empty_pop_pages += chunk.nr_empty_pop_pages
            self.relocate(chunk, -1)

    def count_empty_pages(self, chunk: Chunk, nr: int) -> None:
        """The global half of pcpu_update_empty_pages(): the reserved chunk's and isolated
        chunks' pages do not count."""
        if chunk is not self.reserved and not chunk.isolated:
            self.nr_empty_pop_pages += nr
