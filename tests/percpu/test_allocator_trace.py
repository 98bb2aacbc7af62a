"""The allocator model against real kernels: percpu trace events of Debian 6.12.117 booted
under QEMU (data/captures/, captured with `make capture`)."""

import pytest

from percpu_explorer.captures import (
    compare,
    derive_config,
    load_bundle,
    parse_dmesg,
    parse_trace,
    percpu_events,
    percpu_first_chunk,
)
from percpu_explorer.percpu import (
    DEFAULT_STATIC_SIZE,
    boot_lines,
    build_alloc_info,
    replay_trace,
)

from ..conftest import DATA

CAPTURES = {
    # name: (chunks created, chunks destroyed, pre-trace areas of the first chunk), as
    # the kernel's percpu_create_chunk / percpu_destroy_chunk events name them
    "debian-6.12.117-a72-smp8-nokaslr": (
        (0xFFFFFDFFBF6F0000, 0xFFFFFDFFBF5E0000, 0xFFFFFDFFBF4D0000),
        (0xFFFFFDFFBF6F0000,),
        ((3160, 2320), (5488, 64)),
    ),
    "debian-6.12.117-max-smp4": (
        (0xFFFFC1FFBF778000, 0xFFFFC1FFBF6F0000, 0xFFFFC1FFBF668000),
        (0xFFFFC1FFBF6F0000,),
        ((3160, 2352), (5520, 64)),
    ),
    # Debian's 6.12.117 rebuilt with CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS, KASLR on
    "debian-6.12.117-ptdump-a72-smp4": (
        (0xFFFFFDFFBF778000, 0xFFFFFDFFBF6F0000, 0xFFFFFDFFBF668000),
        (0xFFFFFDFFBF778000, 0xFFFFFDFFBF6F0000),
        ((3160, 2320), (5488, 64)),
    ),
    "debian-6.12.117-ptdump-max-smp4": (
        (0xFFFFC1FFBF778000, 0xFFFFC1FFBF6F0000, 0xFFFFC1FFBF668000),
        (0xFFFFC1FFBF6F0000,),
        ((3160, 2352), (5520, 64)),
    ),
}

# percpu_stats after the replay: the fields that differ, (model, real), each because the
# trace does not show every allocation: the first chunk's earliest ones (before tracing
# started) and those of the processes that read the files after the capture turned
# tracing off (mm_init()'s counters of the `cat` reading percpu_stats among them).
STATS_DIFFERENCES = {
    "debian-6.12.117-ptdump-a72-smp4": {
        ("global", None, "nr_alloc"): (3460, 3571),  # 111 allocations not traced
        ("global", None, "nr_dealloc"): (3067, 3097),  # 30 frees not traced
        ("global", None, "nr_cur_alloc"): (393, 474),
        ("global", None, "nr_max_alloc"): (2597, 2676),
        ("chunk", "1 First Chunk", "nr_alloc"): (393, 474),
        ("chunk", "1 First Chunk", "free_bytes"): (4208, 4176),  # 32 bytes taken untraced
        ("chunk", "1 First Chunk", "cur_med_alloc"): (4, 16),  # the untraced sizes
    },
    "debian-6.12.117-ptdump-max-smp4": {
        ("global", None, "nr_alloc"): (3456, 3568),
        ("global", None, "nr_dealloc"): (3061, 3093),
        ("global", None, "nr_cur_alloc"): (395, 475),
        ("global", None, "nr_max_alloc"): (2597, 2677),
        ("chunk", "1 First Chunk", "nr_alloc"): (351, 431),
        ("chunk", "1 First Chunk", "cur_med_alloc"): (4, 24),
        # one 32-byte allocation at bit 1104 after tracing stopped: it fills a 32-byte hole
        ("chunk", "2", "first_bit"): (1104, 1135),
        ("chunk", "2", "sum_frag"): (36, 4),
        ("chunk", "2", "max_frag"): (32, 4),
    },
}


def replayed(name):
    bundle = load_bundle(DATA / "captures" / name)
    events = percpu_events(parse_trace(bundle.text("trace")))
    first = percpu_first_chunk(parse_dmesg(bundle.text("dmesg")))
    cfg = derive_config(bundle)
    ai = build_alloc_info(first.static_size, nr_cpus=first.nr_units, page_size=cfg.page_size)
    return bundle, first, ai, events, replay_trace(events, ai, cfg)


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_first_chunk_boot_lines_equal_the_real_dmesg(name):
    bundle, first, ai, _events, _replay = replayed(name)
    dmesg = bundle.text("dmesg")
    for line in boot_lines(ai):
        assert line.rstrip() in dmesg, line
    assert (ai.static_size, ai.reserved_size, ai.dyn_size, ai.unit_size) == (
        first.static_size, first.reserved_size, first.dyn_size, first.unit_size)
    # the explorer's default static size is this kernel's
    assert first.static_size == DEFAULT_STATIC_SIZE


@pytest.mark.parametrize("name", sorted(CAPTURES))
def test_every_allocation_free_and_chunk_event_agrees(name):
    _bundle, _first, _ai, events, result = replayed(name)
    counts = events["event"].value_counts()
    assert result.allocs == counts["percpu_alloc_percpu"]
    assert result.allocs_matched == result.allocs, result.first_disagreement
    assert result.frees_matched == result.frees == counts["percpu_free_percpu"]
    creates, destroys, pre_trace = CAPTURES[name]
    # pcpu_get_vm_areas() places each chunk top-down from VMALLOC_END: the kernel's
    # percpu_create_chunk events name these bases, and so does the model.
    assert result.creates_real == result.creates_model == creates
    assert result.destroys_real == result.destroys_model == destroys
    # The kernel's balance worker logs its chunk events a few events after the call
    # that scheduled it; nothing in between used or missed the chunk.
    assert result.chunk_moments_matched and all(0 < lag < 10 for lag in result.chunk_event_lags)
    assert result.all_matched
    # The replay says what it assumed: the first chunk space taken before tracing began.
    assert result.pre_trace == pre_trace
    assert any("taken before tracing started" in a for a in result.assumptions)


@pytest.mark.parametrize("name", sorted(STATS_DIFFERENCES))
def test_final_state_equals_the_kernels_percpu_stats_but_for_untraced_allocations(name):
    result = compare(load_bundle(DATA / "captures" / name))
    rows = result.stats_rows
    assert rows is not None and result.replay.all_matched
    differing = {
        (r.section, None if r.chunk is None or r.chunk != r.chunk else r.chunk, r.key):
        (r.model, r.real)
        for r in rows[~rows["match"]].itertuples()
    }
    assert differing == STATS_DIFFERENCES[name]
    # Everything else agrees: chunk counts, empty populated pages, and every field of the
    # reserved chunk and of each dynamic chunk the trace fully covers.
    agreed = rows[rows["match"]]
    assert {"nr_chunks", "nr_max_chunks", "empty_pop_pages", "max_alloc_size"} <= set(
        agreed[agreed["section"] == "global"]["key"])
    assert len(agreed) == len(rows) - len(STATS_DIFFERENCES[name])
