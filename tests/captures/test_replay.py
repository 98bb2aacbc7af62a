"""The allocator replay of each shipped capture in words: the sentence's counts are the
trace's own (counted here from the parsed events), and the table is readable."""

import dataclasses

import pytest

from percpu_explorer.captures import (
    REPLAY_COLUMNS,
    CaptureBundle,
    ParsedCapture,
    compare,
    kernel_name,
    load_bundle,
    replay_finding,
    replay_table,
)
from percpu_explorer.percpu import build_alloc_info, replay_trace
from percpu_explorer.ui.tables import readable

from .conftest import CAPTURES, MAX4, PTDUMP_A72


@pytest.fixture(scope="module")
def compared(bundle):
    return compare(bundle)


def test_the_sentence_counts_what_the_trace_holds(bundle, compared):
    f = replay_finding(compared, bundle)
    events = compared.events["event"]
    allocs = int((events == "percpu_alloc_percpu").sum())
    frees = int((events == "percpu_free_percpu").sum())
    created = int((events == "percpu_create_chunk").sum())
    destroyed = int((events == "percpu_destroy_chunk").sum())
    n = f.numbers
    assert (n["allocs"], n["frees"], n["creates"], n["destroys"]) == (
        allocs, frees, created, destroyed)
    # Every capture's decisions are matched (test_comparison holds the replay to them).
    assert f"{allocs} of {allocs} allocations" in f.answer
    assert f"{frees} of {frees} frees" in f.answer
    assert f"created {created} of {created} and destroyed {destroyed} of {destroyed}" \
        in f.answer
    # The captures are Debian's 6.12 arm64 kernels (meta.json: kernel_release
    # 6.12.117+deb12-arm64..., or 6.12.118+deb12-arm64-... for linux-source-6.12 6.12.118).
    release = bundle.meta["kernel_release"]
    version = release.split("+")[0]
    assert version in ("6.12.117", "6.12.118") and "+deb12" in release
    assert f.answer.startswith(f"Replaying the percpu trace of Debian {version} ({release}")
    assert kernel_name(compared, bundle) == f"Debian {version}"
    assert f.basis == "real kernel" and bundle.name in f.detail
    assert "nan" not in f.answer.lower() and "(" + str(allocs) + "," not in f.answer


def test_percpu_stats_agreement_is_counted_with_the_reason_for_the_rest():
    bundle = load_bundle(PTDUMP_A72)
    compared = compare(bundle)
    stats = compared.stats_rows
    f = replay_finding(compared, bundle)
    matched, total = int(stats["match"].sum()), len(stats)
    assert f"final percpu_stats in {matched} of {total} fields" in f.answer
    assert f"the other {total - matched} counting allocations the trace does not show" \
        in f.answer
    table = replay_table(compared).set_index("check")
    row = table.loc["final percpu_stats fields"]
    assert (row["kernel_count"], row["model_matched"], row["matched"]) == (total, matched,
                                                                          matched == total)
    assert "global nr_alloc" in row["note"] and "chunk 1 (First Chunk) nr_alloc" in row["note"]


def test_the_table_is_readable(bundle, compared):
    table = replay_table(compared)
    assert list(table.columns) == REPLAY_COLUMNS
    shown = readable(table)
    text = shown.to_string()
    assert "nan" not in text.lower() and "<NA>" not in text
    created = table.set_index("check").loc["chunks created at the same base address"]
    assert created["note"].startswith("kernel: 0xffff")  # addresses in hex
    assert (table["check"] == "the replay assumes").sum() == len(compared.replay.assumptions)


def test_a_comparison_without_a_replay_says_so(compared):
    empty = dataclasses.replace(compared, replay=None)
    with pytest.raises(ValueError, match="has no percpu trace"):
        replay_finding(empty)


# --- allocations the trace lists out of order --------------------------------------------
# pcpu_alloc() emits percpu_alloc_percpu after releasing pcpu_alloc_mutex, so two CPUs
# allocating close together can reach the trace in the other order. Here two adjacent
# allocations of debian-6.12.117-max-smp4 (trace.txt lines 164 and 165: CPU 0 and CPU 3,
# both size=4 in the first chunk at base_addr fff000007f987000, off=20156 and off=20164)
# are swapped in the trace text.
SWAPPED = (164, 165)


def _with_trace(bundle, lines):
    return CaptureBundle(meta=bundle.meta, texts=dict(bundle.texts, trace="".join(lines)))


def _replay_alone(capture, **options):
    first = capture.first_chunk
    ai = build_alloc_info(first.static_size, nr_cpus=first.nr_units,
                          page_size=capture.config.page_size)
    return replay_trace(capture.events, ai, capture.config, **options)


@pytest.fixture(scope="module")
def max4_lines():
    bundle = load_bundle(MAX4)
    lines = bundle.text("trace").splitlines(keepends=True)
    a, b = (lines[n - 1] for n in SWAPPED)
    assert "[000]" in a and "off=20156 " in a and "[003]" in b and "off=20164 " in b
    return bundle, lines


def test_two_allocations_traced_in_the_other_order_replay_in_the_kernels(max4_lines):
    bundle, lines = max4_lines
    swapped = list(lines)
    first, second = SWAPPED
    swapped[first - 1], swapped[second - 1] = lines[second - 1], lines[first - 1]
    capture = ParsedCapture(_with_trace(bundle, swapped))
    # taken in trace order, the model gives CPU 3's allocation CPU 0's offset 20156 (which
    # it then takes for a unit allocated before tracing began), and CPU 0's comes out wrong
    plain = _replay_alone(capture, reorder_window=0)
    assert not plain.all_matched and plain.allocs_matched < plain.allocs
    assert plain.first_disagreement["line"] == second and plain.reordered == ()
    # replayed the kernel's way: one allocation moved back ahead, everything matches
    replay = compare(capture).replay
    assert replay.all_matched and replay.allocs_matched == replay.allocs == 3456
    assert replay.reordered == ((second, first),)
    assert any("1 allocation(s) replayed ahead" in a for a in replay.assumptions)
    finding = replay_finding(compare(capture), bundle)
    assert finding.numbers["reordered"] == 1 and "3456 of 3456 allocations" in finding.answer
    assert "1 allocation(s) were replayed ahead of events of other CPUs" in finding.answer
    # the unswapped trace needs no move
    assert compare(ParsedCapture(bundle)).replay.reordered == ()


def test_a_wrong_offset_is_never_reordered_away(max4_lines):
    bundle, lines = max4_lines
    wrong = list(lines)
    n = SWAPPED[0]
    # 8 bytes below where the kernel put it: no order of the neighbours gives that offset
    wrong[n - 1] = lines[n - 1].replace("off=20156 ", "off=20148 ")
    replay = compare(ParsedCapture(_with_trace(bundle, wrong))).replay
    assert not replay.all_matched and replay.reordered == ()
    assert replay.allocs_matched < replay.allocs
    assert replay.first_disagreement["line"] == n
    assert (replay.first_disagreement["off"], replay.first_disagreement["model_off"]) == (
        20148, 20156)


# debian-6.12.117-max-smp4-4shells: Debian's kernel under QEMU (-smp 4 on 2 host cores),
# four shells making and removing 200 memory cgroups at once (`capture --workers 4`).
FOUR_SHELLS = CAPTURES / "debian-6.12.117-max-smp4-4shells"


def test_a_racing_workload_replays_with_allocations_moved_back_ahead():
    """Allocations of four CPUs race: the trace lists some of them after events of other
    CPUs, or of an interrupt on its own CPU, that came later in the allocator (up to 6
    events and 7.4 ms late here). The replay moves 12 back ahead; 12 allocations still
    differ, the first named."""
    bundle = load_bundle(FOUR_SHELLS)
    assert bundle.meta["workload"] == "mkdir+rmdir 200 memory cgroups in 4 shells at once"
    capture = ParsedCapture(bundle)
    result = compare(capture)
    assert result.layout_rows["match"].all()  # VMCOREINFO and the first dynamic chunk
    assert result.first_chunk_rows["match"].all()
    replay = result.replay
    assert (replay.allocs, replay.frees) == (3488, 3095)
    assert (replay.allocs_matched, replay.frees_matched) == (3476, 3083)
    assert replay.creates_real == replay.creates_model and len(replay.creates_real) == 3
    assert replay.destroys_real == replay.destroys_model and len(replay.destroys_real) == 1
    assert len(replay.reordered) == 12
    # trace line 2020 (CPU 0) took the offset after its own task's allocation at line
    # 2013: it was made before the frees of lines 2014-2019 made room lower down
    assert (2020, 2014) in replay.reordered
    # line 5607 (CPU 1, flags .N...: about to be preempted) was made before CPU 3's frees
    # of lines 5602 and 5604, and before line 5605, an RCU callback's free in softirq
    # context on CPU 1 itself (flags d.s..)
    assert (5607, 5602) in replay.reordered
    d = replay.first_disagreement
    assert (d["line"], d["cpu"], d["size"], d["off"], d["model_off"]) == (
        6160, 3, 16, 16, 4416)
    # another chunk: the model took the first chunk, the kernel its third
    assert (d["base_addr"], d["model_base"]) == (0xffffc1ffbf668000, 0xffffc1ffbf778000)
    finding = replay_finding(result, bundle)
    assert finding.basis == "real kernel" and finding.numbers["all_matched"] is False
    assert "3476 of 3488 allocations" in finding.answer
    assert ("The first allocation that differs is trace line 6160 (CPU 3, 16 bytes): the "
            "kernel put it at offset 16 of chunk 0xffffc1ffbf668000, the model at "
            "offset 4416 of chunk 0xffffc1ffbf778000.") in finding.answer
    # With the search as far as two allocations traced 1 ms apart (4 events, 1 ms), the
    # replay loses its way at line 1535 (CPU 2's allocation traced 1.9 ms late).
    narrow = _replay_alone(capture, reorder_window=4, reorder_seconds=0.001)
    assert narrow.allocs_matched < 3310 and narrow.first_disagreement["line"] == 1535
