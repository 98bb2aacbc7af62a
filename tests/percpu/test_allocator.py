"""The percpu allocator model against mm/percpu.c's arithmetic and invariants."""

import itertools
import random
import re

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.percpu.allocator import (
    PCPU_MIN_ALLOC_SIZE,
    AreaExhausted,
    PercpuAllocator,
    PercpuBuild,
    PercpuError,
    boot_lines,
    boot_percpu,
    build_alloc_info,
    capacity,
    capacity_table,
    clear_ranges,
    offset_extremes,
    read_requests,
    run_history,
    synthetic_history,
    validate_requests,
)

# --- first chunk ------------------------------------------------------------------------


def test_boot_lines_of_a_4_cpu_v6_12_kernel():
    # Issue 4: with 4K pages, 4 CPUs and a static size of 101464 bytes a v6.12 kernel
    # prints "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264".
    # PFN_ALIGN(101464 + 8192 + 28672) = 139264 = 34 pages; d = 139264 - 101464 - 8192.
    ai = build_alloc_info(101464, nr_cpus=4, page_size=4096)
    assert boot_lines(ai) == [
        "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264",
        "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096",
        "pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ",
    ]


def test_boot_lines_with_a_2m_atom_pack_eight_units_per_allocation():
    # An x86-64 dmesg (atom PMD_SIZE): "percpu: Embedded 52 pages/cpu s173272 r8192 d31528
    # u262144" and "pcpu-alloc: s173272 r8192 d31528 u262144 alloc=1*2097152" with
    # "[0] 0 1 2 3 4 5 6 7": 2M / 212992 -> 9 units, not a divisor; 8 units of 256K.
    ai = build_alloc_info(173272, nr_cpus=8, atom_size=2 << 20)
    assert boot_lines(ai) == [
        "percpu: Embedded 52 pages/cpu s173272 r8192 d31528 u262144",
        "pcpu-alloc: s173272 r8192 d31528 u262144 alloc=1*2097152",
        "pcpu-alloc: [0] 0 1 2 3 4 5 6 7 ",
    ]


def test_numa_groups_and_line_wrapping():
    # Two nodes of 16 CPUs: group width 1, cpu width 2, upa 1 -> width 1*3 + 1 + 3 = 7,
    # allocations per line = rounddown_pow_of_two(60 / 7 = 8) = 8 (pcpu_dump_alloc_info).
    ai = build_alloc_info(101464, nr_cpus=32, cpu_to_node=[c // 16 for c in range(32)])
    assert [g.cpu_map for g in ai.groups] == [tuple(range(16)), tuple(range(16, 32))]
    assert ai.groups[1].base_offset == 16 * ai.unit_size
    lines = boot_lines(ai)
    assert lines[2] == "pcpu-alloc: " + "".join(f"[0] {c:02d} " for c in range(8))
    assert lines[4] == "pcpu-alloc: " + "".join(f"[1] {c:02d} " for c in range(16, 24))
    assert len(lines) == 6


def test_debian_like_build_options_change_the_reserves():
    # include/linux/percpu.h: CONFIG_RANDOM_KMALLOC_CACHES makes PERCPU_DYNAMIC_SIZE_SHIFT 12
    # (reserve 28 << 12), CONFIG_MEM_ALLOC_PROFILING makes PERCPU_MODULE_RESERVE 8 << 13.
    build = PercpuBuild(random_kmalloc_caches=True, mem_alloc_profiling=True)
    ai = build_alloc_info(101464, nr_cpus=4, build=build)
    assert ai.reserved_size == 65536
    assert ai.size_sum == -(-(101464 + 65536 + (28 << 12)) // 4096) * 4096


def test_small_static_size_gets_the_minimum_unit():
    # PCPU_MIN_UNIT_SIZE = PFN_ALIGN(32K); dyn grows to PERCPU_DYNAMIC_EARLY_SIZE at least.
    ai = build_alloc_info(1000, nr_cpus=2, dyn_size=0)
    assert ai.dyn_size == -(-(1000 + 8192 + (20 << 10)) // 4096) * 4096 - 1000 - 8192
    assert ai.unit_size == 32768


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


def test_percpu_stats_text_layout():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4))
    alloc.alloc(40)
    lines = alloc.percpu_stats_text().splitlines()
    # mm/percpu-stats.c: headers, "  %-20s: %12lld" rows, reserved chunk first.
    assert lines[:3] == ["Percpu Memory Statistics", "Allocation Info:", "-" * 40]
    assert lines[3] == "  unit_size           :       139264"
    assert "Chunk: <- Reserved Chunk" in lines and "Chunk: <- First Chunk" in lines
    i = lines.index("Chunk: <- First Chunk")
    assert lines[i + 1] == "  nr_alloc            :            1"
    assert lines[i + 5] == f"  free_bytes          : {29608 - 40:12d}"


# --- placement and offsets: the patch's claims ---------------------------------------------


def test_mainline_offsets_span_the_vmalloc_space():
    # Patch 02/11: "percpu variables are typically allocated from the high address of
    # vmalloc space. So the offset could be quite big. It may be the whole size of vmalloc".
    cfg = KernelConfig()
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4), cfg=cfg)
    while alloc.alloc(4096, 4096).chunk_id == alloc.first_chunk.id:
        pass
    dynamic = next(c for c in alloc.chunks if c.kind == "dynamic")
    sym = compute_layout(cfg).symbols
    # pcpu_get_vm_areas() searches top-down from VMALLOC_END (aligned to the atom).
    assert dynamic.base_addr + alloc.nr_units * alloc.unit_size == sym["VMALLOC_END"]
    assert dynamic.base_addr - alloc.base_addr > 250 << 40  # ~254TB above the first chunk


def test_patched_offsets_stay_inside_the_area_and_work_in_both():
    cfg = KernelConfig(local_percpu=True)
    sym = compute_layout(cfg).symbols
    mapper = DictMapper(4096)
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4), cfg=cfg, mapper=mapper)
    # rfc.DEFAULT_PLACEMENT: the first chunk's 4 units end at PERCPU_END.
    assert alloc.base_addr == sym["PERCPU_END"] - 4 * 139264
    results = [alloc.alloc(4096, 4096) for _ in range(40)] + [alloc.alloc(8, reserved=True)]
    kinds = {next(c.kind for c in alloc.chunks if c.id == r.chunk_id) for r in results}
    assert kinds == {"first", "reserved", "dynamic"}
    for r in results:
        offset = alloc.offset_from_base(r.ptr)  # later chunks lie below the first one
        assert -sym["PERCPU_SIZE"] < offset < sym["PERCPU_SIZE"]
        local = alloc.local_ptr(r.ptr)
        assert sym["LOCAL_PERCPU_START"] <= local < sym["LOCAL_PERCPU_END"]
        for cpu in range(4):
            # The local address on CPU n reaches the same physical byte as per_cpu_ptr(n).
            assert mapper.translate(local, cpu) == mapper.translate(alloc.per_cpu_ptr(r.ptr, cpu))


@pytest.mark.parametrize("local_percpu", [False, True], ids=["mainline", "patched"])
def test_walks_through_the_page_table_model_reach_each_units_page(local_percpu):
    # Issue 4: populating maps pages through the page-table model, so a walk of any
    # returned address on any CPU resolves to the right unit's page.
    cfg = KernelConfig(local_percpu=local_percpu)
    alloc, kpt = boot_percpu(cfg, 101464, 4)
    results = [alloc.alloc(4096, 4096) for _ in range(20)] + [alloc.alloc(8, reserved=True),
                                                              alloc.alloc(24, 8)]
    assert {r.chunk_id for r in results} >= {alloc.first_chunk.id, alloc.reserved_chunk.id}
    assert len({r.chunk_id for r in results}) >= 3  # dynamic chunks too
    for r in results:
        for cpu in range(4):
            want = alloc.phys_of(r.ptr, cpu)
            assert kpt.translate(cpu, alloc.per_cpu_ptr(r.ptr, cpu)) == want
            if local_percpu:
                assert kpt.translate(cpu, alloc.local_ptr(r.ptr)) == want
    assert kpt.check_invariants() == ()


def test_area_exhaustion_is_a_distinct_error():
    # 16K/36: PGDIR_SIZE 32M, so the Global Percpu area is 64M; 64 CPUs x 64K units take
    # 4M per chunk (unit PFN_ALIGN(20000 + 8192 + 28672) = 64K); the first chunk takes
    # the bottom 4M, so 15 more chunks fit.
    cfg = KernelConfig(page_size=16384, va_bits=36, local_percpu=True)
    alloc = PercpuAllocator(build_alloc_info(20000, nr_cpus=64, page_size=16384), cfg=cfg)
    assert alloc.unit_size == 65536
    with pytest.raises(AreaExhausted, match="no room for a new chunk"):
        for _ in range(10000):
            alloc.alloc(32768, 16384)
    assert len([c for c in alloc.chunks if c.kind == "dynamic"]) == 15


class DictMapper:
    """A page-granular VA -> PA map, shared or per CPU, for checking translations."""

    def __init__(self, page_size):
        self.page = page_size
        self.shared, self.local = {}, {}

    def map_pages(self, va, pa, size, cpu):
        table = self.shared if cpu is None else self.local.setdefault(cpu, {})
        for i in range(0, size, self.page):
            assert va + i not in table
            table[va + i] = pa + i

    def unmap_pages(self, va, size, cpu):
        table = self.shared if cpu is None else self.local[cpu]
        for i in range(0, size, self.page):
            del table[va + i]

    def translate(self, va, cpu=None):
        table = self.shared if cpu is None else self.local[cpu]
        page = va & ~(self.page - 1)
        return table[page] + (va - page)


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


# --- histories, capacity, offsets -----------------------------------------------------------


def test_request_files_are_validated_line_by_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("op,id,size,align,reserved,atomic\n"
                    "alloc,1,8,8,0,0\n"
                    "alloc,2,eight,8,0,0\n"
                    "grab,3,8,8,0,0\n"
                    "alloc,4,8,8,maybe,0\n"
                    "free,1,,,,\n")
    with pytest.raises(ValueError) as exc:
        read_requests(str(path))
    lines = str(exc.value).splitlines()
    assert lines == [
        f"{path}:3: size 'eight' is not a number",
        f"{path}:4: op 'grab' is not alloc or free",
        f"{path}:5: reserved 'maybe' is not 0/1/true/false",
    ]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['id'\]"):
        validate_requests(pd.DataFrame({"op": ["alloc"]}))


def test_replay_records_every_decision():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2))
    out = run_history(alloc, [
        {"op": "alloc", "id": 1, "size": 8, "align": 8},
        {"op": "alloc", "id": 2, "size": 30000, "align": 4096},  # does not fit: new chunk
        {"op": "free", "id": 1},
        {"op": "free", "id": 7},
    ])
    assert list(out["op"]) == ["alloc", "alloc", "free", "free"]
    assert out.loc[0, "chunk_id"] == alloc.first_chunk.id
    assert out.loc[1, "chunks_created"] >= 1 and out.loc[1, "pages_populated"] >= 8
    assert out.loc[2, "size"] == 8
    assert out.loc[3, "error"] == "free of id 7, which is not allocated"


def test_largest_offset_mainline_vs_patched():
    # Patch 02/11: mainline's offset "may be the whole size of vmalloc space"; with the
    # dedicated areas it stays within the 1TB Global Percpu area (4K/48).
    history = synthetic_history(3000, 600, seed=3)
    mainline = PercpuAllocator(build_alloc_info(101464, nr_cpus=64), cfg=KernelConfig())
    run_history(mainline, history)
    sym = compute_layout(KernelConfig()).symbols
    far = offset_extremes(mainline)["max_offset"]
    # Chunks sit at the top of vmalloc; the first chunk in the linear map below vmalloc.
    assert far > sym["VMALLOC_END"] - sym["VMALLOC_START"]
    assert mainline.base_addr + far <= sym["VMALLOC_END"]
    patched_cfg = KernelConfig(local_percpu=True)
    patched = PercpuAllocator(build_alloc_info(101464, nr_cpus=64), cfg=patched_cfg)
    run_history(patched, history)
    ext = offset_extremes(patched)
    psym = compute_layout(patched_cfg).symbols
    assert -psym["PERCPU_SIZE"] < ext["min_offset"] and ext["max_offset"] <= psym["PERCPU_SIZE"]


def test_capacity_matches_what_the_allocator_reaches():
    # 16K/36 patched, 64 CPUs, 64K units: a 4M span per chunk in a 64M area holds the
    # first chunk and 15 more (see test_area_exhaustion_is_a_distinct_error).
    cfg = KernelConfig(page_size=16384, va_bits=36, local_percpu=True)
    ai = build_alloc_info(20000, nr_cpus=64, page_size=16384)
    cap = capacity(cfg, ai)
    assert (cap["chunk_span"], cap["dynamic_chunks"]) == (64 * 65536, 15)
    assert cap["bytes_per_cpu"] == ai.dyn_size + 15 * 65536


def test_capacity_table_covers_every_config_and_cpu_count():
    table = capacity_table(cpu_counts=(64, 4096))
    assert len(table) == 13 * 2
    row = table[(table.config == "4K/48") & (table.nr_cpus == 4096)].iloc[0]
    # 4096 units of 139264 bytes: 570425344 bytes per chunk; (1TB - span) // span chunks.
    assert row.chunk_span == 4096 * 139264
    assert row.patched_chunks == ((1 << 40) - 4096 * 139264) // (4096 * 139264)
    broken = table[table.config.isin(["4K/52", "16K/48", "16K/52"])]
    assert broken["patched_chunks"].isna().all()
    # 16K/36 with 4096 CPUs: 4096 * 144K does not fit a 64M area at all.
    tiny = table[(table.config == "16K/36") & (table.nr_cpus == 4096)].iloc[0]
    assert not tiny.first_chunk_fits and tiny.patched_bytes_per_cpu == 0
