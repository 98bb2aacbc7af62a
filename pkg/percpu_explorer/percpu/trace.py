"""Replaying a real kernel's percpu trace events through the allocator and comparing
every decision (percpu_alloc_percpu, percpu_free_percpu, percpu_create_chunk,
percpu_destroy_chunk)."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from ..kernel import KernelConfig, align_down, fmt_addr, u64
from .allocator import Event, PercpuAllocator
from .chunk import PCPU_MIN_ALLOC_SIZE
from .errors import PercpuError
from .first_chunk import AllocInfo
from .history import typed_frame


@dataclass(frozen=True)
class TraceReplay:
    """How the model's decisions compare with a real kernel's percpu trace.

    rows: one per trace event (event, line, real and model chunk base and offset, match).
    pre_trace: (offset, bytes) areas of the first chunk the replay assumed taken before
        tracing started (the log begins after the earliest boot allocations).
    final_stats: the model's percpu_stats data after the replay (`PercpuAllocator.stats()`).
    chunk_event_lags: for each chunk created or destroyed, how many trace events after
        the model's balance run the kernel's worker logged it (the model runs the work
        inside the call that schedules it; the kernel's kworker runs it soon after).
    assumptions: every assumption the replay made, in words.
    reordered: (trace line, line it was replayed before) of each allocation replayed ahead
        of events of other CPUs the trace lists first (`replay_trace`).
    """

    rows: pd.DataFrame
    allocs: int
    allocs_matched: int
    frees: int
    frees_matched: int
    creates_real: tuple[int, ...]
    creates_model: tuple[int, ...]
    destroys_real: tuple[int, ...]
    destroys_model: tuple[int, ...]
    chunk_event_lags: tuple[int, ...]
    first_disagreement: dict[str, Any] | None
    pre_trace: tuple[tuple[int, int], ...]
    assumptions: tuple[str, ...]
    reordered: tuple[tuple[int, int], ...] = ()
    final_stats: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def all_matched(self) -> bool:
        return (self.allocs_matched == self.allocs and self.frees_matched == self.frees
                and self.creates_real == self.creates_model
                and self.destroys_real == self.destroys_model and self.chunk_moments_matched)

    @property
    def chunk_moments_matched(self) -> bool:
        """Every chunk event came after the call whose balance work made it, and before
        anything used or missed it (all allocations matched in between)."""
        return (len(self.chunk_event_lags) == len(self.creates_real) + len(self.destroys_real)
                and all(lag >= 0 for lag in self.chunk_event_lags)
                and self.allocs_matched == self.allocs)


# How far the replay looks for allocations the trace lists late (`replay_trace`): an
# allocation may be replayed ahead of at most REORDER_WINDOW events of other CPUs traced
# at most REORDER_SECONDS before it; REORDER_TRIALS orders are tried in all. Four shells
# making memory cgroups at once on 4 CPUs (debian-6.12.117-max-smp4-4shells, 2 host
# cores) traced allocations up to 6 events and 7.4 ms after they were made: a task can
# be preempted between releasing pcpu_alloc_mutex and its trace event.
REORDER_WINDOW = 8
REORDER_SECONDS = 0.02
REORDER_TRIALS = 64
_CHECKPOINT_EVERY = 512  # events between the saved states a trial order restarts from
_REPLAYED = ("percpu_alloc_percpu", "percpu_free_percpu", "percpu_create_chunk",
             "percpu_destroy_chunk")


def replay_trace(events: pd.DataFrame, ai: AllocInfo, cfg: KernelConfig, *,
                 max_inferred: int = 20000,
                 vm_busy: Iterable[tuple[int, int]] = (),
                 reorder_window: int = REORDER_WINDOW,
                 reorder_seconds: float = REORDER_SECONDS) -> TraceReplay:
    """Replay the percpu:* events of a kernel trace (percpu_alloc_percpu,
    percpu_free_percpu, percpu_create_chunk, percpu_destroy_chunk) and compare each
    decision: the same chunk and offset for every allocation, the same chunks created
    and destroyed, in the same order.

    pcpu_base_addr and __per_cpu_start come from the first allocation (its chunk is the
    first chunk: base_addr there is the page-aligned start of the dynamic part). The
    balance work runs wherever the kernel schedules it (pcpu_schedule_balance_work());
    in the kernel a worker runs it soon after, and leaves no event itself.
    Chunk creations match in time when, before every allocation, model and kernel
    have created the same number of chunks. `vm_busy`: ranges of vmalloc the chunk
    search must skip (PercpuAllocator's), e.g. the top of `cfg`'s vmalloc that a kernel
    with patch 02/11 alone (its vmalloc ends lower, chunks still in vmalloc) does not have.

    pcpu_alloc() emits percpu_alloc_percpu after it has released pcpu_alloc_mutex (and
    pcpu_lock), so when two CPUs allocate close together the trace can list the second
    allocation first. Where the model's decision differs from the kernel's, the replay
    tries orders in which one allocation moves ahead of up to `reorder_window` events of
    other CPUs traced within `reorder_seconds` before it, and keeps the first order in
    which every moved-over event and the one that differed match (`reordered` lists each
    move by trace line); otherwise the difference stays a mismatch.
    """
    allocs = events[events["event"] == "percpu_alloc_percpu"]
    if allocs.empty:
        raise ValueError("the trace has no percpu_alloc_percpu event to replay")
    first = allocs.iloc[0]
    first_chunk_base = int(first["base_addr"])
    # the first chunk's base_addr is pcpu_base_addr plus its page-aligned start
    pcpu_base = first_chunk_base - align_down(ai.dynamic_start, ai.page_size)
    per_cpu_start = u64(int(first["ptr"]) - (first_chunk_base + int(first["off"]) - pcpu_base))
    alloc = PercpuAllocator(ai, cfg=cfg,
                            group_bases=[pcpu_base + g.base_offset for g in ai.groups],
                            per_cpu_start=per_cpu_start, balance="immediate",
                            vm_busy=vm_busy)
    assumptions = [
        f"pcpu_base_addr {fmt_addr(pcpu_base)} and __per_cpu_start {fmt_addr(per_cpu_start)} "
        "derived from the first traced allocation",
        "the balance work runs where the kernel schedules it, before the next traced event",
    ]
    records = [ev for ev in events.to_dict("records") if ev["event"] in _REPLAYED]
    search = _Reorder(records, reorder_window, reorder_seconds)
    run = _Run(_Replay(alloc, first_chunk_base, max_inferred))
    run = search.replay(run)

    replay, model, rows = run.replay, run.model, run.rows
    model.update()
    first_bad: dict[str, Any] | None = None
    for index, row in zip(run.records, rows, strict=True):
        if row.get("match") is False:
            first_bad = dict(records[index]) | {k: v for k, v in row.items()
                                                if k.startswith("model")}
            break
    pre_trace = replay.pre_trace
    if pre_trace:
        assumptions.append(f"{len(pre_trace)} units ({len(pre_trace) * PCPU_MIN_ALLOC_SIZE} "
                           "bytes) of the first chunk taken before tracing started")
    if search.moves:
        lines = ", ".join(f"{m} before {b}" for m, b in search.moves)
        assumptions.append(
            f"{len(search.moves)} allocation(s) replayed ahead of events of other CPUs "
            f"traced just before them (trace lines {lines}): percpu_alloc_percpu is emitted "
            "after pcpu_alloc_mutex is released")
    frame = typed_frame(rows, addresses=("real_base", "model_base"),
                        integers=("line", "real_off", "model_off"))
    a_rows = frame[frame["event"] == "percpu_alloc_percpu"]
    f_rows = frame[frame["event"] == "percpu_free_percpu"]
    creates_real, destroys_real = run.creates_real, run.destroys_real
    return TraceReplay(
        rows=frame,
        allocs=len(a_rows), allocs_matched=int(a_rows["match"].fillna(False).sum()),
        frees=len(f_rows), frees_matched=int(f_rows["match"].fillna(False).sum()),
        creates_real=tuple(b for b in creates_real if b != first_chunk_base),
        creates_model=tuple(model.created[1:]),  # [0] is the first chunk
        destroys_real=tuple(destroys_real),
        destroys_model=tuple(model.destroyed),
        chunk_event_lags=_chunk_event_lags(frame),
        first_disagreement=first_bad,
        pre_trace=tuple(_merge_areas(pre_trace)),
        assumptions=tuple(assumptions),
        reordered=tuple(search.moves),
        final_stats=run.replay.alloc.stats(),
    )


class _Run:
    """One replay in progress: the model (`_Replay`), its chunk log, and per replayed
    event its row and its index in the trace's records. The lists only grow, so a saved
    state keeps their lengths and shares them."""

    def __init__(self, replay: _Replay) -> None:
        self.replay = replay
        self.model = _ModelChunks(replay.alloc)
        self.rows: list[dict[str, Any]] = []
        self.records: list[int] = []
        self.creates_real: list[int] = []
        self.destroys_real: list[int] = []

    def step(self, index: int, ev: dict[str, Any]) -> dict[str, Any]:
        """Replay one event; returns its row (with `match` for allocations and frees)."""
        kind = ev["event"]
        row: dict[str, Any] = {"event": kind, "line": ev.get("line")}
        if kind == "percpu_alloc_percpu":
            row.update(self.replay.alloc_event(ev))
        elif kind == "percpu_free_percpu":
            row.update(self.replay.free_event(ev))
        else:
            base = int(ev["base_addr"])
            (self.creates_real if kind == "percpu_create_chunk"
             else self.destroys_real).append(base)
            row.update(real_base=base)
        # chunks created and destroyed so far, by the kernel (its events come before the
        # allocation that needed them) and by the model; equal after every allocation
        # and free means the same moments
        self.model.update()
        row["chunks_real"] = (len(self.creates_real), len(self.destroys_real))
        row["chunks_model"] = (len(self.model.created) - 1, len(self.model.destroyed))
        self.rows.append(row)
        self.records.append(index)
        return row

    def save(self) -> _Saved:
        """This state, to restart from (the allocator's event log and the rows shared)."""
        alloc = self.replay.alloc
        log, seq = alloc.events, alloc._seq
        lists = (self.rows, self.records, self.creates_real, self.destroys_real)
        alloc.events, alloc._seq = [], None
        self.rows = self.records = self.creates_real = self.destroys_real = []
        try:
            # Allocations are immutable: shared, not copied.
            memo = {id(a): a for a in alloc.live.values()}
            state = copy.deepcopy(self, memo)
        finally:
            alloc.events, alloc._seq = log, seq
            self.rows, self.records, self.creates_real, self.destroys_real = lists
        return _Saved(state, log, lists, tuple(len(x) for x in (log, *lists)))


@dataclass(frozen=True)
class _Saved:
    state: _Run
    log: list[Event]
    lists: tuple[list[Any], ...]
    lengths: tuple[int, ...]

    def restore(self) -> _Run:
        """A new run in this state."""
        memo = {id(a): a for a in self.state.replay.alloc.live.values()}
        run = copy.deepcopy(self.state, memo)
        alloc = run.replay.alloc
        alloc.events = self.log[:self.lengths[0]]
        alloc._seq = itertools.count(self.lengths[0])  # Event.seq counts the log
        run.rows, run.records, run.creates_real, run.destroys_real = (
            x[:n] for x, n in zip(self.lists, self.lengths[1:], strict=True))
        return run


def _in_interrupt(record: dict[str, Any]) -> bool:
    """The event was traced in hardirq, softirq or NMI context: the third character of
    ftrace's latency flags ("d.s.." in softirq), '.' in a task."""
    flags = record.get("flags")
    return isinstance(flags, str) and len(flags) >= 3 and flags[2] not in ".-"


class _Reorder:
    """The order the trace's events are replayed in, and the allocations moved ahead of
    events other CPUs traced just before them (see `replay_trace`)."""

    def __init__(self, records: list[dict[str, Any]], window: int, seconds: float) -> None:
        self.records = records
        self.window = window
        self.seconds = seconds
        self.trials = REORDER_TRIALS
        self.moves: list[tuple[int, int]] = []  # (line moved, line it now precedes)

    def replay(self, run: _Run) -> _Run:
        order = list(range(len(self.records)))
        saved = {0: run.save()}
        pos = 0
        while pos < len(order):
            if pos % _CHECKPOINT_EVERY == 0 and pos not in saved:
                saved[pos] = run.save()
            row = run.step(order[pos], self.records[order[pos]])
            if row.get("match") is False and self.window > 0 and self.trials > 0:
                found = self._reordered(order, pos, saved)
                if found is not None:
                    run, order, pos, moved_to = found
                    for key in [k for k in saved if k > moved_to]:
                        del saved[key]
                    continue
            pos += 1
        return run

    def _movable(self, order: list[int], q: int) -> list[int]:
        """Positions p < q the allocation at q may move to: the events at p..q-1 are other
        CPUs' or an interrupt's on its CPU (an RCU callback freeing in softirq context
        runs between the allocation and its trace event), traced within `seconds` before
        it, at most `window` of them."""
        ev = self.records[order[q]]
        if ev["event"] != "percpu_alloc_percpu":
            return []
        out = []
        for p in range(q - 1, max(q - self.window, 0) - 1, -1):
            other = self.records[order[p]]
            if (other["cpu"] == ev["cpu"] and not _in_interrupt(other)) or \
                    ev["timestamp"] - other["timestamp"] > self.seconds:
                break
            out.append(p)
        return out

    def _reordered(self, order: list[int], i: int, saved: dict[int, _Saved],
                   ) -> tuple[_Run, list[int], int, int] | None:
        """The first order (smallest move first) in which one allocation moved ahead makes
        every event from where it lands to position `i` (and itself) match, replayed
        from the last saved state before; (run, order, next position, where it landed)."""
        candidates = []
        for q in range(max(i - self.window, 0), min(i + self.window + 1, len(order))):
            candidates += [(q - p, abs(q - i), p, q) for p in self._movable(order, q)
                           if p <= i]
        for _distance, _near, p, q in sorted(candidates):
            if self.trials <= 0:
                return None
            self.trials -= 1
            trial = [*order[:p], order[q], *order[p:q], *order[q + 1:]]
            start = max(k for k in saved if k <= p)
            run = saved[start].restore()
            end = max(i, q)
            for k in range(start, end + 1):
                row = run.step(trial[k], self.records[trial[k]])
                if k >= p and row.get("match") is False:
                    break
            else:
                self.moves.append((int(self.records[order[q]]["line"]),
                                   int(self.records[order[p]]["line"])))
                return run, trial, end + 1, p
        return None


class _Replay:
    """The model's side of a replay: each traced allocation and free made in the model,
    with the real pointers mapped to the model's."""

    def __init__(self, alloc: PercpuAllocator, first_chunk_base: int,
                 max_inferred: int) -> None:
        self.alloc = alloc
        self.first_chunk_base = first_chunk_base
        self.max_inferred = max_inferred
        self.model_ptr: dict[int, int] = {}  # real ptr -> model ptr
        self.pre_trace: list[tuple[int, int]] = []

    def alloc_event(self, ev: dict[str, Any]) -> dict[str, Any]:
        """percpu_alloc_percpu: the same request; where the model places it lower in the
        first chunk than the kernel did, that unit was taken before tracing started."""
        alloc = self.alloc
        real = (int(ev["base_addr"]), int(ev["off"]))
        size, align = int(ev["size"]), int(ev["align"])
        reserved, atomic = bool(ev["reserved"]), bool(ev["is_atomic"])
        while True:
            counters = alloc.counters()
            try:
                got = alloc.alloc(size, align, reserved=reserved, atomic=atomic)
            except PercpuError as exc:
                return {"real_base": real[0], "real_off": real[1], "error": str(exc),
                        "match": False}
            model = (got.chunk_base, got.off)
            in_first = (got.chunk_id == alloc.first_chunk.id
                        and real[0] == self.first_chunk_base)
            if (model != real and in_first and got.off < real[1]
                    and len(self.pre_trace) < self.max_inferred):
                # Taken before tracing started: the kernel skipped it. Mark one unit;
                # the probe itself does not count in the statistics.
                alloc.retract(got, counters)
                alloc.take_first_chunk_area(got.off, PCPU_MIN_ALLOC_SIZE)
                self.pre_trace.append((got.off, PCPU_MIN_ALLOC_SIZE))
                continue
            self.model_ptr[int(ev["ptr"])] = got.ptr
            return {"real_base": real[0], "real_off": real[1], "model_base": model[0],
                    "model_off": model[1], "match": model == real}

    def free_event(self, ev: dict[str, Any]) -> dict[str, Any]:
        """percpu_free_percpu: free the model's copy of the traced allocation."""
        row: dict[str, Any] = {"real_base": int(ev["base_addr"]), "real_off": int(ev["off"])}
        mine = self.model_ptr.pop(int(ev["ptr"]), None)
        if mine is None:
            return row | {"error": "frees an allocation the trace did not show",
                          "match": False}
        a = self.alloc.live[mine]
        self.alloc.free(mine)
        return row | {"model_base": a.chunk_base, "model_off": a.off,
                      "match": (a.chunk_base, a.off) == (row["real_base"], row["real_off"])}


class _ModelChunks:
    """The bases of the chunks the model created and destroyed so far, read from its
    event log as it grows."""

    def __init__(self, alloc: PercpuAllocator) -> None:
        self.alloc = alloc
        self.seen = 0
        self.created: list[int] = []
        self.destroyed: list[int] = []

    def update(self) -> None:
        events = self.alloc.events
        for e in events[self.seen:]:
            if e.base_addr is None:
                continue
            if e.kind == "create_chunk":
                self.created.append(e.base_addr)
            elif e.kind == "destroy_chunk":
                self.destroyed.append(e.base_addr)
        self.seen = len(events)


def _chunk_event_lags(frame: pd.DataFrame) -> tuple[int, ...]:
    """Rows between the model reaching the n-th create (destroy) and the kernel's event."""
    lags = []
    for which in (0, 1):
        real = frame["chunks_real"].map(lambda c, w=which: c[w])
        model = frame["chunks_model"].map(lambda c, w=which: c[w])
        for n in range(1, int(real.max()) + 1 if len(real) else 1):
            real_rows = real.index[real >= n]
            model_rows = model.index[model >= n]
            if len(real_rows) and len(model_rows):
                lags.append(int(real_rows[0] - model_rows[0]))
    return tuple(lags)


def _merge_areas(areas: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for off, size in sorted(areas):
        if merged and merged[-1][0] + merged[-1][1] == off:
            merged[-1] = (merged[-1][0], merged[-1][1] + size)
        else:
            merged.append((off, size))
    return merged
