"""Replaying a real kernel's percpu trace events through the allocator and comparing
every decision (percpu_alloc_percpu, percpu_free_percpu, percpu_create_chunk,
percpu_destroy_chunk)."""

from __future__ import annotations

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


def replay_trace(events: pd.DataFrame, ai: AllocInfo, cfg: KernelConfig, *,
                 max_inferred: int = 20000,
                 vm_busy: Iterable[tuple[int, int]] = ()) -> TraceReplay:
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
    replay = _Replay(alloc, first_chunk_base, max_inferred)
    model = _ModelChunks(alloc.events)
    rows: list[dict[str, Any]] = []
    creates_real: list[int] = []
    destroys_real: list[int] = []
    first_bad: dict[str, Any] | None = None

    for ev in events.to_dict("records"):
        kind = ev["event"]
        row: dict[str, Any] = {"event": kind, "line": ev.get("line")}
        if kind == "percpu_alloc_percpu":
            row.update(replay.alloc_event(ev))
        elif kind == "percpu_free_percpu":
            row.update(replay.free_event(ev))
        elif kind in ("percpu_create_chunk", "percpu_destroy_chunk"):
            base = int(ev["base_addr"])
            (creates_real if kind == "percpu_create_chunk" else destroys_real).append(base)
            row.update(real_base=base)
        else:
            continue
        # chunks created and destroyed so far, by the kernel (its events come before the
        # allocation that needed them) and by the model; equal after every allocation
        # and free means the same moments
        model.update()
        row["chunks_real"] = (len(creates_real), len(destroys_real))
        row["chunks_model"] = (len(model.created) - 1, len(model.destroyed))
        if row.get("match") is False and first_bad is None:
            first_bad = dict(ev) | {k: v for k, v in row.items() if k.startswith("model")}
        rows.append(row)

    model.update()
    pre_trace = replay.pre_trace
    if pre_trace:
        assumptions.append(f"{len(pre_trace)} units ({len(pre_trace) * PCPU_MIN_ALLOC_SIZE} "
                           "bytes) of the first chunk taken before tracing started")
    frame = typed_frame(rows, addresses=("real_base", "model_base"),
                        integers=("line", "real_off", "model_off"))
    a_rows = frame[frame["event"] == "percpu_alloc_percpu"]
    f_rows = frame[frame["event"] == "percpu_free_percpu"]
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
        final_stats=alloc.stats(),
    )


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

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.seen = 0
        self.created: list[int] = []
        self.destroyed: list[int] = []

    def update(self) -> None:
        for e in self.events[self.seen:]:
            if e.base_addr is None:
                continue
            if e.kind == "create_chunk":
                self.created.append(e.base_addr)
            elif e.kind == "destroy_chunk":
                self.destroyed.append(e.base_addr)
        self.seen = len(self.events)


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
