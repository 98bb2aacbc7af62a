"""Bitmaps as Python ints (bit i is `(bits >> i) & 1`): the lib/find_bit.c searches,
the for_each_*_bitrange() iterators and mm/percpu.c's pcpu_find_zero_area()."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from ..kernel import align_up


@functools.lru_cache(maxsize=4096)
def mask(nbits: int) -> int:
    """GENMASK(nbits - 1, 0): the low nbits bits set."""
    return (1 << nbits) - 1


def ffs(value: int) -> int:
    """__ffs(): the index of the lowest set bit (value must not be 0)."""
    return (value & -value).bit_length() - 1


_WORD = (1 << 64) - 1  # a first look at 64 bits avoids whole-map operations


def find_next_bit(bits: int, size: int, start: int) -> int:
    """find_next_bit(): the first set bit at or after start, or size."""
    if start >= size:
        return size
    rest = bits >> start
    word = rest & _WORD
    if not word:
        word = rest & mask(size - start)
        if not word:
            return size
    return min(start + (word & -word).bit_length() - 1, size)


def find_next_zero_bit(bits: int, size: int, start: int) -> int:
    """find_next_zero_bit(): the first clear bit at or after start, or size."""
    if start >= size:
        return size
    rest = bits >> start
    word = (rest & _WORD) ^ _WORD
    if not word:
        word = ~rest & mask(size - start)
        if not word:
            return size
    return min(start + (word & -word).bit_length() - 1, size)


def find_last_bit(bits: int, size: int) -> int:
    """find_last_bit(): the last set bit below size, or size when there is none."""
    below = bits & mask(size)
    return below.bit_length() - 1 if below else size


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
    return clear_ranges(~bits & mask(size), size)


def find_zero_area(bitmap: int, size: int, start: int, nr: int,
                   align_mask: int) -> tuple[int, int, int]:
    """pcpu_find_zero_area(): (index, largest_off, largest_bits) of the first run of nr
    clear bits in [start, size) whose index is aligned to align_mask + 1; index > size - nr
    when there is none. largest_off/largest_bits name the largest free run passed over
    on the way (ties go to the better aligned one), for pcpu_block_update_scan()."""
    largest_off = largest_bits = 0
    # Search a copy of the window [start, size) only; indexes stay absolute.
    origin = start
    window = (bitmap >> origin) & mask(size - origin)
    while True:
        index = origin + find_next_zero_bit(window, size - origin, start - origin)
        index = align_up(index, align_mask + 1)  # __ALIGN_MASK(index, align_mask)
        area_off = index
        end = index + nr
        if end > size:
            return end, largest_off, largest_bits
        i = origin + find_next_bit(window, end - origin, index - origin)
        if i < end:
            area_bits = i - area_off
            if area_bits > largest_bits or (
                    area_bits == largest_bits and largest_off
                    and (not area_off or ffs(area_off) > ffs(largest_off))):
                largest_off, largest_bits = area_off, area_bits
            start = i + 1
            continue
        return index, largest_off, largest_bits
