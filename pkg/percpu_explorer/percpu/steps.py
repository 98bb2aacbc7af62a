"""A request history step by step: what each request did (which chunk, which offset, which
chunks the allocator created or destroyed on the way) and when each chunk existed.

`step_history(alloc, requests)` runs the history like `run_history` and reads the
allocator's own events (the kernel's percpu trace events: create_chunk, destroy_chunk)
to name the chunks each request created or destroyed. A request counts from 1: after
step s the allocator has served requests 1..s; step 0 is the allocator as booted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InputError
from .allocator import PercpuAllocator
from .history import decisions_frame, replay_requests, validated_requests


@dataclass(frozen=True)
class RequestStep:
    """Request `number` (from 1) of a history and the allocator's decision.

    chunk_id/off: the chunk and the byte offset in it (the same in every unit) that an
    alloc took or a free gave back; None when the request failed. chunks_created and
    chunks_destroyed: the chunks the call (with its balance work) created or destroyed.
    """

    number: int
    op: str
    id: int
    size: int | None
    chunk_id: int | None
    chunk_kind: str | None
    off: int | None
    offset_from_base: int | None
    error: str | None
    chunks_created: tuple[int, ...] = ()
    chunks_destroyed: tuple[int, ...] = ()
    pages_populated: int = 0

    @property
    def failed(self) -> bool:
        return self.error is not None

    def sentence(self) -> str:
        """What the request did, e.g. "alloc 24 bytes at offset 0x1a8 in chunk 1 (first)"."""
        size = f"{self.size} bytes" if self.size is not None else "an unknown size"
        if self.error is not None:
            return f"{self.op} of {size} failed: {self.error}"
        where = f"at offset {self.off:#x} in chunk {self.chunk_id} ({self.chunk_kind})"
        text = f"alloc {size} {where}" if self.op == "alloc" else f"free {size} {where}"
        extra = []
        if self.chunks_created:
            extra.append("created " + _chunks(self.chunks_created))
        if self.pages_populated:
            extra.append(f"populated {self.pages_populated} page"
                         + ("s" if self.pages_populated > 1 else ""))
        if self.chunks_destroyed:
            extra.append("destroyed " + _chunks(self.chunks_destroyed))
        return text + ("; " + ", ".join(extra) if extra else "")


def _chunks(ids: Iterable[int]) -> str:
    ids = list(ids)
    return ("chunk " if len(ids) == 1 else "chunks ") + ", ".join(str(i) for i in ids)


@dataclass(frozen=True)
class SteppedHistory:
    """`step_history`'s result: `decisions` as `run_history` returns them, `steps` one
    `RequestStep` per request, and `chunks` one row per chunk that existed at any step
    (id, kind, created_at, destroyed_at: the request numbers; 0 = present at the start,
    destroyed_at empty while it lives); `requests` the validated requests."""

    decisions: pd.DataFrame
    steps: tuple[RequestStep, ...]
    chunks: pd.DataFrame
    requests: tuple[dict[str, Any], ...] = ()

    def replay(self, alloc: PercpuAllocator, number: int) -> PercpuAllocator:
        """`alloc` (booted as the history's allocator was) after requests 1..`number`:
        the allocator at step `number`."""
        if not 0 <= number <= len(self.steps):
            raise InputError(f"request {number} is outside 0..{len(self.steps)}",
                             field="step")
        replay_requests(alloc, self.requests[:number])
        return alloc

    def step(self, number: int) -> RequestStep | None:
        """Request `number` (1..len), or None for step 0 (nothing served yet)."""
        if not 0 <= number <= len(self.steps):
            raise InputError(f"request {number} is outside 0..{len(self.steps)}",
                             field="step")
        return self.steps[number - 1] if number else None

    def exists_at(self, chunk_id: int, number: int) -> bool:
        """Whether chunk `chunk_id` exists after request `number`."""
        row = self.chunk(chunk_id)
        destroyed = row["destroyed_at"]
        return row["created_at"] <= number and (pd.isna(destroyed) or number < destroyed)

    def chunk(self, chunk_id: int) -> dict[str, Any]:
        """The chunk's row of `chunks`; InputError naming the chunks there are."""
        rows = self.chunks[self.chunks["id"] == chunk_id]
        if rows.empty:
            raise InputError(f"chunk {chunk_id} never exists in this history; its chunks are "
                             f"{', '.join(str(i) for i in self.chunks['id'])}", field="chunk")
        return rows.iloc[0].to_dict()


def step_history(alloc: PercpuAllocator,
                 requests: pd.DataFrame | Iterable[dict[str, Any]]) -> SteppedHistory:
    """Run `requests` through `alloc` (`run_history`) and say request by request what
    happened: the chunk and offset of each alloc and free, and the chunks created and
    destroyed, as the allocator's create_chunk and destroy_chunk events record them."""
    frame = requests if isinstance(requests, pd.DataFrame) else pd.DataFrame(list(requests))
    asked = validated_requests(frame)  # also the sizes of failed requests, which rows lack
    kinds = {c.id: c.kind for c in alloc.chunks}
    start = len(alloc.events)
    rows = replay_requests(alloc, asked)
    events = alloc.events[start:]
    created = iter([e.chunk_id for e in events if e.kind == "create_chunk"])
    destroyed = iter([e.chunk_id for e in events if e.kind == "destroy_chunk"])
    lives: dict[int, dict[str, Any]] = {
        cid: {"id": cid, "kind": kind, "created_at": 0, "destroyed_at": None}
        for cid, kind in kinds.items()}
    where: dict[int, tuple[int, int, int]] = {}  # allocation id -> chunk id, off, offset
    steps = []
    for number, (row, request) in enumerate(zip(rows, asked, strict=True), start=1):
        new = tuple(int(next(created)) for _ in range(int(row["chunks_created"])))
        gone = tuple(int(next(destroyed)) for _ in range(int(row["chunks_destroyed"])))
        for cid in new:
            lives[cid] = {"id": cid, "kind": "dynamic", "created_at": number,
                          "destroyed_at": None}
        for cid in gone:
            lives[cid]["destroyed_at"] = number
        error = row.get("error")
        error = None if error is None or pd.isna(error) else str(error)
        chunk_id: int | None = None
        off: int | None = None
        offset: int | None = None
        if error is None and row["op"] == "alloc":
            chunk_id, off = int(row["chunk_id"]), int(row["off"])
            offset = int(row["offset_from_base"])
            where[int(row["id"])] = (chunk_id, off, offset)
        elif error is None:
            chunk_id, off, offset = where.pop(int(row["id"]))
        size = row.get("size")
        if size is None or pd.isna(size):
            size = request.get("size")
        steps.append(RequestStep(
            number, str(row["op"]), int(row["id"]),
            None if size is None or pd.isna(size) else int(size),
            chunk_id, None if chunk_id is None else lives[chunk_id]["kind"], off, offset,
            error, new, gone, int(row["pages_populated"])))
    chunks = pd.DataFrame(sorted(lives.values(), key=lambda r: r["id"]),
                          columns=["id", "kind", "created_at", "destroyed_at"])
    chunks["destroyed_at"] = pd.array(chunks["destroyed_at"], dtype="Int64")
    return SteppedHistory(decisions_frame(rows), tuple(steps), chunks, tuple(asked))

