"""A history request by request: the chunk and offset of each request, and when each chunk
is created and destroyed (mm/percpu.c's decisions, read from the allocator's events)."""

import pandas as pd
import pytest

from percpu_explorer import KernelConfig
from percpu_explorer.errors import InputError
from percpu_explorer.percpu import boot_percpu, run_history, step_history, synthetic_history

# Debian 6.12's arm64 static percpu size: the kernel logs
# "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264" (data/captures).
STATIC = 101464
UNIT = 139264


def booted(cfg=None, nr_cpus=4):
    alloc, _ = boot_percpu(cfg or KernelConfig(), STATIC, nr_cpus, page_tables=False)
    return alloc


def test_a_small_request_goes_to_the_first_chunk_after_its_static_and_reserved_areas():
    # pcpu_alloc_first_chunk(): the dynamic area starts at static + reserved = 109656,
    # the chunk's base is that aligned down to the page (106496) and start_offset is the
    # rest, 3160 (0xc58): the first 8-byte, 8-aligned area is there.
    run = step_history(booted(), [{"op": "alloc", "id": 7, "size": 8, "align": 8},
                                  {"op": "free", "id": 7}])
    alloc_step, free_step = run.steps
    assert (alloc_step.number, alloc_step.chunk_id, alloc_step.chunk_kind,
            alloc_step.off) == (1, 1, "first", (STATIC + 8192) % 4096)
    assert alloc_step.sentence() == "alloc 8 bytes at offset 0xc58 in chunk 1 (first)"
    # The free gives back the same area.
    assert (free_step.chunk_id, free_step.off, free_step.size) == (1, 0xc58, 8)
    assert free_step.sentence() == "free 8 bytes at offset 0xc58 in chunk 1 (first)"
    assert run.step(0) is None and run.step(2) is free_step
    with pytest.raises(InputError, match=r"request 3 is outside 0\.\.2"):
        run.step(3)


def test_chunks_are_created_and_destroyed_at_the_requests_that_cause_them():
    # 32K areas (PCPU_MIN_UNIT_SIZE, the largest) do not fit the first chunk's 29608
    # dynamic bytes, and a 139264-byte unit holds 139264 // 32768 = 4 of them: requests 1,
    # 5 and 9 create chunks 2, 3 and 4. Freeing them all: pcpu_balance_free() destroys
    # every empty chunk but the first of the free list, and a chunk that empties moves to
    # its front (pcpu_chunk_relocate, moving to a higher slot), so emptying chunk 3
    # (request 20) destroys chunk 2 and emptying chunk 4 (request 24) destroys chunk 3.
    rows = ([{"op": "alloc", "id": i, "size": 32768, "align": 4096} for i in range(12)]
            + [{"op": "free", "id": i} for i in range(12)])
    run = step_history(booted(), pd.DataFrame(rows))
    assert UNIT // 32768 == 4
    created = {s.number: s.chunks_created for s in run.steps if s.chunks_created}
    destroyed = {s.number: s.chunks_destroyed for s in run.steps if s.chunks_destroyed}
    assert created == {1: (2,), 5: (3,), 9: (4,)}
    assert destroyed == {20: (2,), 24: (3,)}
    lives = run.chunks.set_index("id")
    assert list(lives["kind"]) == ["reserved", "first", "dynamic", "dynamic", "dynamic"]
    assert list(lives["created_at"]) == [0, 0, 1, 5, 9]
    assert list(lives["destroyed_at"].astype(object).where(lives["destroyed_at"].notna(),
                                                            None)) == [None, None, 20, 24, None]
    assert run.steps[0].sentence().startswith(
        "alloc 32768 bytes at offset 0x0 in chunk 2 (dynamic); created chunk 2")
    assert run.steps[19].sentence().endswith("; destroyed chunk 2")
    assert run.exists_at(2, 19) and not run.exists_at(2, 20) and not run.exists_at(4, 8)
    with pytest.raises(InputError, match="chunk 9 never exists in this history; its chunks "
                                         "are 0, 1, 2, 3, 4"):
        run.chunk(9)


def test_lifetimes_agree_with_a_replay_to_each_step():
    # Whatever the history, a chunk is among the allocator's chunks exactly at the steps
    # step_history says it exists: replay to just before and at each creation/destruction.
    history = synthetic_history(300, 100, seed=1)
    run = step_history(booted(), history)
    assert len(run.steps) == len(history) == len(run.decisions)
    moments = {int(v) for v in run.chunks["created_at"]} | {
        int(v) for v in run.chunks["destroyed_at"].dropna()}
    for s in sorted(moments | {len(history)}):
        for at in {max(s - 1, 0), s}:
            alloc = booted()
            run_history(alloc, history.iloc[:at])
            ids = {c.id for c in alloc.chunks}
            assert ids == {int(i) for i in run.chunks["id"] if run.exists_at(int(i), at)}, at


def test_a_failed_request_names_its_error_and_no_area():
    rows = [{"op": "alloc", "id": 0, "size": 1 << 20, "align": 8}]
    step = step_history(booted(), rows).steps[0]
    assert step.failed and step.chunk_id is None and step.off is None
    assert step.sentence().startswith("alloc of 1048576 bytes failed: illegal size")


def test_replay_to_a_step_is_the_allocator_run_history_leaves():
    # SteppedHistory.replay runs the validated requests 1..s on a fresh allocator: the
    # same chunks, bitmaps and percpu_stats as run_history of the first s rows, and
    # step_history's decisions are run_history's.
    history = synthetic_history(300, 100, seed=1)
    run = step_history(booted(), history)
    pd.testing.assert_frame_equal(run.decisions, run_history(booted(), history))
    for s in (0, 1, 57, 210, len(history)):
        alloc = run.replay(booted(), s)
        ref = booted()
        run_history(ref, history.iloc[:s])
        assert alloc.percpu_stats_text() == ref.percpu_stats_text()
        pd.testing.assert_frame_equal(alloc.chunks_frame(), ref.chunks_frame())
        assert [(c.alloc_map, c.bound_map, c.populated) for c in alloc.chunks] == [
            (c.alloc_map, c.bound_map, c.populated) for c in ref.chunks]
    with pytest.raises(InputError, match=r"outside 0\.\.400"):
        run.replay(booted(), 401)
