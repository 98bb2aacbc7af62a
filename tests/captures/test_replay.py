"""The allocator replay of each shipped capture in words: the sentence's counts are the
trace's own (counted here from the parsed events), and the table is readable."""

import dataclasses

import pytest

from percpu_explorer.captures import (
    REPLAY_COLUMNS,
    compare,
    kernel_name,
    load_bundle,
    replay_finding,
    replay_table,
)
from percpu_explorer.ui.tables import readable

from .conftest import PTDUMP_A72


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
    # The captures are Debian's 6.12.117 arm64 kernel (meta.json: kernel_release
    # 6.12.117+deb12-arm64...).
    assert f.answer.startswith("Replaying the percpu trace of Debian 6.12.117 (6.12.117+deb12")
    assert kernel_name(compared, bundle) == "Debian 6.12.117"
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
