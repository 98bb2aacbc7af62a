"""The percpu allocator model against mm/percpu.c's arithmetic and invariants."""

import itertools
import random
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu_explorer import KernelConfig
from percpu_explorer.percpu.allocator import PercpuAllocator
from percpu_explorer.percpu.bitmap import clear_ranges
from percpu_explorer.percpu.chunk import PCPU_MIN_ALLOC_SIZE
from percpu_explorer.percpu.errors import PercpuError
from percpu_explorer.percpu.first_chunk import build_alloc_info

# --- slow recount: an independent reference for the bitmaps and hints ---------------------


def free_runs(bits, nbits):
    """Free runs of bits [0, nbits) as (start, length), from the binary string."""
    text = format(bits, f"0{nbits}b")[::-1][:nbits]  # bit i at text[i]
    return [(m.start(), m.end() - m.start()) for m in re.finditer("0+", text)]


def check_invariants(alloc):
    bb = alloc.block_bits
    live_by_chunk = {}
    for a in alloc.live.values():
        live_by_chunk.setdefault(a.chunk_id, []).append((a.off, a.size))
    empty_total = 0
    for chunk in alloc.chunks:
        expected = 0
        if chunk.start_offset:
            expected |= (1 << (chunk.start_offset // 4)) - 1
        if chunk.end_offset:
            n = chunk.end_offset // 4
            expected |= ((1 << n) - 1) << (chunk.map_bits - n)
        spans = sorted(live_by_chunk.get(chunk.id, []))
        for (o1, s1), (o2, _s2) in itertools.pairwise(spans):
            assert o1 + s1 <= o2, "live allocations overlap"
        for off, size in spans:
            expected |= ((1 << (size // 4)) - 1) << (off // 4)
            assert (chunk.bound_map >> (off // 4)) & 1
            assert (chunk.bound_map >> ((off + size) // 4)) & 1
        assert chunk.alloc_map == expected
        hidden = (chunk.start_offset + chunk.end_offset)
        assert chunk.free_bytes == chunk.map_bits * 4 - hidden - sum(s for _o, s in spans)
        empty = 0
        for i, block in enumerate(chunk.md_blocks):
            block_bits = (chunk.alloc_map >> (i * bb)) & ((1 << bb) - 1)
            runs = free_runs(block_bits, bb)
            largest = max((n for _s, n in runs), default=0)
            # The kernel's block hints name free areas and never exceed the largest run;
            # they may lag it (test_scan_hint_can_hide_a_larger_hole), but a free block
            # is always known as one (nr_empty_pop_pages depends on it).
            assert block.contig_hint <= largest, (chunk.id, i)
            assert (block.contig_hint == bb) == (largest == bb), (chunk.id, i)
            if block.contig_hint:
                s = block.contig_hint_start
                assert not (block_bits >> s) & ((1 << block.contig_hint) - 1)
            if block.scan_hint:
                s = block.scan_hint_start
                assert not (block_bits >> s) & ((1 << block.scan_hint) - 1)
            assert block.left_free == (runs[0][1] if runs and runs[0][0] == 0 else 0)
            # right_free is a lower bound: pcpu_block_refresh_hint() zeroes it and scans
            # only after a promoted scan hint, which may be the tail run itself.
            assert block.right_free <= (runs[-1][1] if runs and sum(runs[-1]) == bb else 0)
            # first_free is a lower bound: pcpu_block_update_hint_alloc() leaves it alone
            # in blocks an allocation covers completely.
            if runs:
                assert block.first_free <= runs[0][0], (chunk.id, i)
            if largest == bb and (chunk.populated >> i) & 1:
                empty += 1
        assert chunk.nr_empty_pop_pages == empty
        md = chunk.chunk_md
        if md.contig_hint:  # the chunk hint names a free area (it may lag the largest)
            assert not (chunk.alloc_map >> md.contig_hint_start) & ((1 << md.contig_hint) - 1)
        if chunk is not alloc.reserved_chunk and not chunk.isolated:
            empty_total += chunk.nr_empty_pop_pages
    assert alloc.nr_empty_pop_pages == empty_total


def chunk_state(chunk):
    """What freeing everything must restore: the allocation bitmap, free bytes, and the
    block hints the kernel keeps exact (contig, left/right free). The chunk-level hint
    may stay conservative (test_chunk_hint_ignores_frees_inside_later_blocks)."""
    return (chunk.alloc_map, chunk.free_bytes, chunk.nr_empty_pop_pages,
            [(b.contig_hint, b.contig_hint_start, b.left_free, b.right_free)
             for b in chunk.md_blocks])


SIZES = [4, 8, 8, 16, 24, 32, 40, 64, 128, 192, 256, 1024, 4096, 8192, 20000]
ALIGNS = [4, 8, 16, 64, 256, 4096]


@settings(max_examples=40)
@given(st.integers(0, 2**32), st.sampled_from([4096, 16384, 65536]), st.integers(1, 8))
def test_random_histories_keep_every_invariant(seed, page_size, nr_cpus):
    check_random_history(seed, page_size, nr_cpus)


def check_random_history(seed, page_size, nr_cpus):
    rng = random.Random(seed)
    cfg = KernelConfig(page_size=page_size, va_bits=48)
    alloc = PercpuAllocator(build_alloc_info(60000, nr_cpus=nr_cpus, page_size=page_size),
                            cfg=cfg)
    first = chunk_state(alloc.first_chunk)
    live = []
    for _ in range(120):
        if live and rng.random() < 0.4:
            alloc.free(live.pop(rng.randrange(len(live))))
        else:
            reserved = rng.random() < 0.05
            try:
                live.append(alloc.alloc(rng.choice(SIZES), rng.choice(ALIGNS),
                                        reserved=reserved).ptr)
            except PercpuError:
                assert reserved  # only the small reserved chunk may run out
        check_invariants(alloc)
    for ptr in live:
        alloc.free(ptr)
        check_invariants(alloc)
    assert chunk_state(alloc.first_chunk) == first
    assert all(c.free_bytes == alloc.unit_size for c in alloc.chunks if c.kind == "dynamic")
    assert alloc.stats()["global"]["nr_cur_alloc"] == 0
    # A balance run frees every spare chunk but the first, then pcpu_balance_populated()
    # tops the empty populated pages up to PCPU_EMPTY_POP_PAGES_HIGH (4), creating chunks
    # again if the first chunk and one spare cannot hold them (2-page chunks at 64K).
    alloc.balance()
    dynamic = [c for c in alloc.chunks if c.kind == "dynamic"]
    assert alloc.nr_empty_pop_pages >= 4
    assert len(dynamic) <= 1 + -(-4 // alloc.unit_pages)


def test_chunk_hint_ignores_frees_inside_later_blocks():
    # mm/percpu.c (v6.12) pcpu_block_update_hint_free() ends with
    #   pcpu_block_update(&chunk->chunk_md, pcpu_block_off_to_off(s_index, start), end);
    # where end is block-relative: in any block but the first, a free that neither spans
    # blocks nor empties its block gives a negative length and the chunk hint does not grow.
    alloc = PercpuAllocator(build_alloc_info(8192, nr_cpus=1, reserved_size=8192,
                                             dyn_size=28672))
    chunk = alloc.first_chunk
    pages = [alloc.alloc(4096, 4096) for _ in range(7)]  # fill the 7 blocks
    assert [p.off for p in pages] == [i * 4096 for i in range(7)]
    alloc.free(pages[1].ptr)  # block 1 empty again: a full-block free refreshes the chunk
    assert (chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start) == (1024, 1024)
    small = [alloc.alloc(8) for _ in range(3)]  # bits [1024, 1030)
    assert [x.off for x in small] == [4096, 4104, 4112]
    assert (chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start) == (1018, 1030)
    alloc.free(small[1].ptr)
    alloc.free(small[2].ptr)  # block 1 now has [1026, 2048) free: 1022 bits
    assert (chunk.md_blocks[1].contig_hint, chunk.md_blocks[1].contig_hint_start) == (1022, 2)
    # pcpu_block_update(chunk_md, 1026, 1024): length -2, so the chunk keeps 1018 bits.
    assert (chunk.chunk_md.contig_hint, chunk.chunk_md.contig_hint_start) == (1018, 1030)
    # The chunk's slot follows the stale hint: 1018 * 4 bytes, not 1022 * 4.
    assert alloc.chunk_slot(chunk) == alloc.size_to_slot(1018 * 4)


def test_scan_hint_can_hide_a_larger_hole():
    # mm/percpu.c pcpu_block_update(): a free smaller than contig_hint becomes the scan
    # hint if it is larger than the current one, even when an older, larger hole lies
    # before it that the hints forgot; pcpu_block_refresh_hint() then trusts the scan hint
    # and scans only after it. So a request can skip a hole it fits in.
    # static 8K + reserved 8K + dyn 28K: the first chunk's dynamic part is 7 whole pages.
    alloc = PercpuAllocator(build_alloc_info(8192, nr_cpus=1, reserved_size=8192,
                                             dyn_size=28672))
    block = alloc.first_chunk.md_blocks[0]
    assert (alloc.first_chunk.start_offset, alloc.first_chunk.end_offset) == (0, 0)
    sizes = [400, 1200, 400, 800, 64]  # bits [0,100) [100,400) [400,500) [500,700) [700,716)
    a = [alloc.alloc(s) for s in sizes]
    assert [x.off for x in a] == [0, 400, 1600, 2000, 2800]
    alloc.free(a[1].ptr)  # hole [100, 400): scan hint 300 bits at 100
    assert (block.scan_hint, block.scan_hint_start) == (300, 100)
    assert alloc.alloc(4).off == 400  # first fit takes bit 100: the scan hint is dropped
    assert block.scan_hint == 0  # the 299-bit hole [101, 400) is now unknown to the hints
    alloc.free(a[3].ptr)  # hole [500, 700): becomes the scan hint, past the larger hole
    assert (block.scan_hint, block.scan_hint_start) == (200, 500)
    assert alloc.alloc(1232).off == 2864  # 308 bits fit only the tail [716, 1024)
    assert (block.contig_hint, block.contig_hint_start) == (200, 500)  # not 299
    # 299 bits fit exactly in [101, 400), but block 0 now claims 200 at most:
    assert alloc.alloc(1196).off == 4096  # placed in block 1 instead of at byte 404


def test_first_fit_order_and_alignment():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4))
    first = alloc.first_chunk
    a = alloc.alloc(8)
    b = alloc.alloc(8)
    # The dynamic part starts after the static and reserved parts: 101464 + 8192 bytes
    # from pcpu_base_addr, i.e. byte 3160 + 8192 of the page-aligned chunk; first fit.
    assert (a.chunk_id, a.off) == (first.id, (101464 + 8192) % 4096)
    assert b.off == a.off + 8
    c = alloc.alloc(64, 64)
    assert c.off % 64 == 0 and c.off >= b.off + 8
    alloc.free(a.ptr)
    assert alloc.alloc(4).off == a.off  # the freed hole is reused first


def test_illegal_requests_carry_the_kernel_warning():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2))
    before = alloc.percpu_stats_text()
    for size, align in [(0, 4), (32768 + 4, 4), (8, 8192), (8, 12)]:
        with pytest.raises(PercpuError, match=r"illegal size \(\d+\) or align \(\d+\) for "
                                              r"percpu allocation"):
            alloc.alloc(size, align)
    with pytest.raises(PercpuError, match="not a live percpu allocation"):
        alloc.free(0xDEAD0000)
    ptr = alloc.alloc(16).ptr
    alloc.free(ptr)
    after_free = alloc.percpu_stats_text()
    with pytest.raises(PercpuError, match="already freed"):
        alloc.free(ptr)
    assert alloc.percpu_stats_text() == after_free != before


def test_atomic_allocations_only_use_populated_pages():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2), balance="manual")
    # Fill the first chunk, forcing a new, unpopulated chunk.
    while alloc.alloc(4096, 4096).chunk_id == alloc.first_chunk.id:
        pass
    chunk = next(c for c in alloc.chunks if c.kind == "dynamic")
    assert bin(chunk.populated).count("1") == 1
    # An atomic request needing an unpopulated page fails and asks the balance work
    # to populate PCPU_EMPTY_POP_PAGES_HIGH pages.
    with pytest.raises(PercpuError, match="atomic alloc failed"):
        alloc.alloc(8192, 4096, atomic=True)
    assert alloc.atomic_alloc_failed and alloc.balance_pending
    alloc.balance()
    assert alloc.alloc(8192, 4096, atomic=True).chunk_id == chunk.id


def test_chunks_are_destroyed_when_empty_but_one_spare_stays():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2))
    ptrs = [alloc.alloc(16384, 4096).ptr for _ in range(12)]
    created = [e for e in alloc.events if e.kind == "create_chunk"]
    assert len(created) >= 3
    for ptr in ptrs:
        alloc.free(ptr)
    destroyed = [e for e in alloc.events if e.kind == "destroy_chunk"]
    assert len(destroyed) == len(created) - 2  # the first chunk and one spare remain
    assert list(clear_ranges(0b1011, 4)) == [(2, 3)]
    assert PCPU_MIN_ALLOC_SIZE == 4


def test_chunks_frame_spans_every_unit_and_counts_allocated_bytes():
    from percpu_explorer.percpu import boot_percpu, run_history, synthetic_history

    cfg = KernelConfig(local_percpu=True, nr_cpus=4)
    alloc, _ = boot_percpu(cfg, 101464, 4)
    run_history(alloc, synthetic_history(300, 100, seed=1))
    frame = alloc.chunks_frame().set_index("id")
    assert len(frame) > 1
    for chunk in alloc.chunks:
        row = frame.loc[chunk.id]
        assert row["unit_size"] == chunk.nr_pages * cfg.page_size
        assert row["alloc_bytes"] == sum(chunk.allocs.values())
        # pcpu_chunk_addr() of the highest unit's end, from pcpu_base_addr
        end = chunk.base_addr + max(alloc.unit_offsets.values()) + chunk.nr_pages * cfg.page_size
        assert row["end_offset_from_base"] == end - alloc.base_addr


def test_a_retracted_probe_leaves_the_statistics_and_a_taken_unit_is_skipped():
    # What replay_trace() does when the kernel placed an allocation higher than the model:
    # take the probe back uncounted, then mark its first unit as taken before the trace.
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2))
    before = alloc.stats()["global"]
    counters = alloc.counters()
    probe = alloc.alloc(8)
    assert alloc.stats()["global"] != before
    alloc.retract(probe, counters)
    assert alloc.stats()["global"] == before and probe.ptr not in alloc.live
    assert alloc.take_first_chunk_area(probe.off, PCPU_MIN_ALLOC_SIZE) == probe.off
    assert alloc.stats()["global"] == before  # no statistics for the taken unit
    assert alloc.alloc(8).off == probe.off + 4
