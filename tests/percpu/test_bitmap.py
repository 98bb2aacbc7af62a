"""The bitmap searches against a bit-by-bit reference."""

from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer.percpu.bitmap import (
    clear_ranges,
    find_last_bit,
    find_next_bit,
    find_next_zero_bit,
    find_zero_area,
    set_ranges,
)


def bit(bits, i):
    return (bits >> i) & 1


# sizes around the 64-bit first look and a page's 1024 bits; maps wider than size too
maps = st.integers(0, 2**1100 - 1) | st.sampled_from([0, 2**1100 - 1, (2**70 - 1) << 3])
sizes = st.sampled_from([1, 63, 64, 65, 127, 1024, 1090])


@given(maps, sizes, st.integers(0, 1100))
def test_find_next_bits_match_a_linear_scan(bits, size, start):
    next_set = next((i for i in range(start, size) if bit(bits, i)), size)
    next_clear = next((i for i in range(start, size) if not bit(bits, i)), size)
    assert find_next_bit(bits, size, start) == next_set
    assert find_next_zero_bit(bits, size, start) == next_clear
    last = max((i for i in range(size) if bit(bits, i)), default=size)
    assert find_last_bit(bits, size) == last


@given(maps, sizes)
def test_ranges_cover_the_clear_and_set_runs(bits, size):
    clear = [i for s, e in clear_ranges(bits, size) for i in range(s, e)]
    ones = [i for s, e in set_ranges(bits, size) for i in range(s, e)]
    assert clear == [i for i in range(size) if not bit(bits, i)]
    assert ones == [i for i in range(size) if bit(bits, i)]


def test_zero_area_is_the_first_aligned_fit_and_names_the_largest_run_passed():
    # bits 0-3 taken, 4-6 free (3), 7 taken, 8-15 free: 4 bits aligned to 4 fit at 8;
    # the 3-bit run at 4 was passed over.
    bitmap = 0b1000_1111
    assert find_zero_area(bitmap, 16, 0, 4, 3) == (8, 4, 3)
    assert find_zero_area(bitmap, 16, 0, 2, 0) == (4, 0, 0)
    # no fit: the index returned is past size - nr
    assert find_zero_area(bitmap, 10, 0, 4, 3)[0] > 10 - 4
