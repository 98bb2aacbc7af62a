"""Chunks of mm/percpu.c: the allocation and boundary bitmaps, the per-page block
metadata with its hints, and the area search and bookkeeping that work on one chunk
(pcpu_block_update*, pcpu_chunk_refresh_hint, pcpu_find_block_fit, pcpu_alloc_area,
pcpu_free_area, pcpu_alloc_first_chunk).

A chunk has an allocation bitmap at PCPU_MIN_ALLOC_SIZE (4 byte) granularity, a
boundary bitmap marking where each allocation starts and ends, and per-page block
metadata with hints (contig, scan, left/right free, first free); the chunk's own
metadata (chunk_md) summarises the blocks. The functions here change one chunk only;
moving it between the chunk lists and the global count of empty populated pages are
pool.py's (it compares the chunk's `nr_empty_pop_pages` before and after).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kernel import align_down, align_up, div_round_up, fmt_addr
from .bitmap import (
    clear_ranges,
    ffs,
    find_last_bit,
    find_next_bit,
    find_next_zero_bit,
    find_zero_area,
    mask,
)

PCPU_MIN_ALLOC_SHIFT = 2
PCPU_MIN_ALLOC_SIZE = 1 << PCPU_MIN_ALLOC_SHIFT  # include/linux/percpu.h


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
        return (self.alloc_map >> (index * self.block_bits)) & mask(self.block_bits)

    def set_populated(self, rs: int, re: int) -> None:
        """The chunk's part of pcpu_chunk_populated(): pages [rs, re) populated and empty."""
        nr = re - rs
        self.populated |= mask(nr) << rs
        self.nr_populated += nr
        self.nr_empty_pop_pages += nr

    def clear_populated(self, rs: int, re: int) -> None:
        """The chunk's part of pcpu_chunk_depopulated()."""
        nr = re - rs
        self.populated &= ~(mask(nr) << rs)
        self.nr_populated -= nr
        self.nr_empty_pop_pages -= nr


def new_chunk(chunk_id: int, kind: str, base_addr: int, nr_pages: int,
              block_bits: int) -> Chunk:
    """pcpu_alloc_chunk(): an empty, unpopulated chunk with fresh block metadata."""
    chunk = Chunk(id=chunk_id, kind=kind, base_addr=base_addr, nr_pages=nr_pages,
                  block_bits=block_bits)
    chunk.chunk_md = BlockMD(chunk.map_bits)
    chunk.md_blocks = [BlockMD(block_bits) for _ in range(nr_pages)]
    return chunk


def alloc_first_chunk(chunk_id: int, kind: str, tmp_addr: int, map_size: int,
                      page_size: int) -> Chunk:
    """pcpu_alloc_first_chunk(): a populated chunk serving [tmp_addr, tmp_addr + map_size),
    its page-aligned start and end hidden as allocated."""
    aligned = align_down(tmp_addr, page_size)
    start_offset = tmp_addr - aligned
    region_size = align_up(start_offset + map_size, page_size)
    chunk = new_chunk(chunk_id, kind, aligned, region_size // page_size,
                      page_size >> PCPU_MIN_ALLOC_SHIFT)
    chunk.start_offset = start_offset
    chunk.end_offset = region_size - start_offset - map_size
    chunk.immutable = True
    chunk.populated = mask(chunk.nr_pages)
    chunk.nr_populated = chunk.nr_pages
    chunk.nr_empty_pop_pages = chunk.nr_pages
    chunk.free_bytes = map_size
    if chunk.start_offset:
        bits = chunk.start_offset // PCPU_MIN_ALLOC_SIZE
        chunk.alloc_map |= mask(bits)
        chunk.bound_map |= 1 | (1 << bits)
        chunk.chunk_md.first_free = bits
        block_update_hint_alloc(chunk, 0, bits)
    if chunk.end_offset:
        bits = chunk.end_offset // PCPU_MIN_ALLOC_SIZE
        chunk.alloc_map |= mask(bits) << (chunk.map_bits - bits)
        chunk.bound_map |= 1 << ((start_offset + map_size) // PCPU_MIN_ALLOC_SIZE)
        chunk.bound_map |= 1 << chunk.map_bits
        block_update_hint_alloc(chunk, chunk.map_bits - bits, bits)
    return chunk


def _overlap(a: int, b: int, x: int, y: int) -> bool:
    """pcpu_region_overlap(): [a, b) and [x, y) intersect."""
    return a < y and x < b


# --- block hints (pcpu_block_update and friends) -----------------------------------------

def block_update(block: BlockMD, start: int, end: int) -> None:
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
                not start or ffs(start) > ffs(block.contig_hint_start)):
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


def _block_update_scan(chunk: Chunk, bit_off: int, bits: int) -> None:
    """pcpu_block_update_scan()."""
    bb = chunk.block_bits
    s_off = bit_off % bb
    e_off = s_off + bits
    if e_off > bb:
        return
    index = bit_off // bb
    l_bit = find_last_bit(chunk.block_map(index), s_off)
    s_off = 0 if s_off == l_bit else l_bit + 1
    block_update(chunk.md_blocks[index], s_off, e_off)


def _next_md_free_region(chunk: Chunk, bit_off: int) -> tuple[int, int]:
    """pcpu_next_md_free_region()."""
    bb = chunk.block_bits
    i, block_off = divmod(bit_off, bb)
    bits = 0
    while i < chunk.nr_pages:
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


def chunk_refresh_hint(chunk: Chunk, full_scan: bool) -> None:
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
    map_bits = chunk.map_bits
    bit_off, bits = _next_md_free_region(chunk, bit_off)
    while bit_off < map_bits:
        block_update(md, bit_off, bit_off + bits)
        bit_off, bits = _next_md_free_region(chunk, bit_off + bits + 1)


def _block_refresh_hint(chunk: Chunk, index: int) -> None:
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
    for s, e in clear_ranges(chunk.block_map(index), chunk.block_bits, start):
        block_update(block, s, e)


def block_update_hint_alloc(chunk: Chunk, bit_off: int, bits: int) -> None:
    """pcpu_block_update_hint_alloc(): the hints after [bit_off, bit_off + bits) was taken;
    the chunk's nr_empty_pop_pages drops by the blocks that stop being empty."""
    bb = chunk.block_bits
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
        _block_refresh_hint(chunk, s_index)
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
                _block_refresh_hint(chunk, e_index)
            else:
                e_block.right_free = min(e_block.right_free, bb - e_off)
        nr_empty_pages += e_index - s_index - 1
        for block in chunk.md_blocks[s_index + 1:end_index]:
            block.scan_hint = 0
            block.contig_hint = 0
            block.left_free = 0
            block.right_free = 0

    chunk.nr_empty_pop_pages -= nr_empty_pages
    if _overlap(md.scan_hint_start, md.scan_hint_start + md.scan_hint,
                bit_off, bit_off + bits):
        md.scan_hint = 0
    if _overlap(md.contig_hint_start, md.contig_hint_start + md.contig_hint,
                bit_off, bit_off + bits):
        chunk_refresh_hint(chunk, False)


def block_update_hint_free(chunk: Chunk, bit_off: int, bits: int) -> None:
    """pcpu_block_update_hint_free(): the hints after [bit_off, bit_off + bits) was freed;
    the chunk's nr_empty_pop_pages grows by the blocks that became empty."""
    bb = chunk.block_bits
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
    block_update(s_block, start, e_off)
    if s_index != e_index:
        if end == bb:
            nr_empty_pages += 1
        block_update(e_block, 0, end)
        nr_empty_pages += e_index - s_index - 1
        for block in chunk.md_blocks[s_index + 1:e_index]:
            block.first_free = 0
            block.scan_hint = 0
            block.contig_hint_start = 0
            block.contig_hint = bb
            block.left_free = bb
            block.right_free = bb
    chunk.nr_empty_pop_pages += nr_empty_pages
    if (end - start) >= bb or s_index != e_index:
        chunk_refresh_hint(chunk, True)
    else:
        # The kernel passes the block-relative end here (mm/percpu.c, v6.12).
        block_update(chunk.chunk_md, s_index * bb + start, end)


# --- finding and taking an area -----------------------------------------------------------

def _check_block_hint(block: BlockMD, bits: int, align: int) -> bool:
    """pcpu_check_block_hint()."""
    bit_off = align_up(block.contig_hint_start, align) - block.contig_hint_start
    return bit_off + bits <= block.contig_hint


def _next_hint(block: BlockMD, alloc_bits: int) -> int:
    """pcpu_next_hint(): skip past the scan hint when it cannot serve the request."""
    if (block.scan_hint and block.contig_hint_start > block.scan_hint_start
            and alloc_bits > block.scan_hint):
        return block.scan_hint_start + block.scan_hint
    return block.first_free


def _next_fit_region(chunk: Chunk, alloc_bits: int, align: int,
                     bit_off: int) -> tuple[int, int]:
    """pcpu_next_fit_region()."""
    bb = chunk.block_bits
    i, block_off = divmod(bit_off, bb)
    bits = 0
    while i < chunk.nr_pages:
        block = chunk.md_blocks[i]
        if bits:
            bits += block.left_free
            if bits >= alloc_bits:
                return bit_off, bits
            if block.left_free == bb:
                i += 1
                continue
        bits = align_up(block.contig_hint_start, align) - block.contig_hint_start
        if (block.contig_hint and block.contig_hint_start >= block_off
                and block.contig_hint >= bits + alloc_bits):
            start = _next_hint(block, alloc_bits)
            bits += alloc_bits + block.contig_hint_start - start
            return i * bb + start, bits
        block_off = 0
        off = align_up(bb - block.right_free, align)
        bits = bb - off
        bit_off = i * bb + off
        if bits >= alloc_bits:
            return bit_off, bits
        i += 1
    return chunk.map_bits, bits


def _is_populated(chunk: Chunk, bit_off: int, bits: int) -> tuple[bool, int]:
    """pcpu_is_populated(): returns (populated, next_off)."""
    # PFN_DOWN / PFN_UP of the byte offsets: a page holds block_bits bits
    start = bit_off // chunk.block_bits
    end = div_round_up(bit_off + bits, chunk.block_bits)
    start = find_next_zero_bit(chunk.populated, end, start)
    if start >= end:
        return True, 0
    end = find_next_bit(chunk.populated, end, start + 1)
    return False, end * chunk.block_bits


def find_block_fit(chunk: Chunk, alloc_bits: int, align: int, pop_only: bool) -> int:
    """pcpu_find_block_fit(): a bit offset to search from, or -1."""
    md = chunk.chunk_md
    if not _check_block_hint(md, alloc_bits, align):
        return -1
    map_bits = chunk.map_bits
    bit_off = _next_hint(md, alloc_bits)
    bit_off, bits = _next_fit_region(chunk, alloc_bits, align, bit_off)
    while bit_off < map_bits:
        if not pop_only:
            break
        populated, next_off = _is_populated(chunk, bit_off, bits)
        if populated:
            break
        bit_off, bits = _next_fit_region(chunk, alloc_bits, align, next_off)
    if bit_off == map_bits:
        return -1
    return bit_off


def alloc_area(chunk: Chunk, alloc_bits: int, align: int, start: int) -> int:
    """pcpu_alloc_area() without the relocation: take alloc_bits at or after start;
    byte offset or -1."""
    md = chunk.chunk_md
    align_mask = align - 1 if align else 0
    map_bits = chunk.map_bits
    end = min(start + alloc_bits + chunk.block_bits, map_bits)
    bit_off, area_off, area_bits = find_zero_area(chunk.alloc_map, end, start, alloc_bits,
                                                  align_mask)
    if bit_off >= end:
        return -1
    if area_bits:
        _block_update_scan(chunk, area_off, area_bits)
    chunk.alloc_map |= mask(alloc_bits) << bit_off
    chunk.bound_map &= ~(mask(alloc_bits - 1) << (bit_off + 1))
    chunk.bound_map |= (1 << bit_off) | (1 << (bit_off + alloc_bits))
    chunk.free_bytes -= alloc_bits * PCPU_MIN_ALLOC_SIZE
    if bit_off == md.first_free:
        md.first_free = find_next_zero_bit(chunk.alloc_map, map_bits, bit_off + alloc_bits)
    block_update_hint_alloc(chunk, bit_off, alloc_bits)
    return bit_off * PCPU_MIN_ALLOC_SIZE


def free_area(chunk: Chunk, off: int) -> int:
    """pcpu_free_area() without the relocation: returns the bytes freed."""
    md = chunk.chunk_md
    bit_off = off // PCPU_MIN_ALLOC_SIZE
    end = find_next_bit(chunk.bound_map, chunk.map_bits, bit_off + 1)
    bits = end - bit_off
    chunk.alloc_map &= ~(mask(bits) << bit_off)
    freed = bits * PCPU_MIN_ALLOC_SIZE
    chunk.free_bytes += freed
    md.first_free = min(md.first_free, bit_off)
    block_update_hint_free(chunk, bit_off, bits)
    return freed
