"""Request histories: the CSV format (one alloc or free per row), its validation,
running a history through the allocator, and a synthetic boot-like history."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from .allocator import PercpuAllocator
from .chunk import PCPU_MIN_ALLOC_SIZE
from .errors import PercpuError

REQUEST_COLUMNS = ("op", "id", "size", "align", "reserved", "atomic")


def read_requests(path: str) -> pd.DataFrame:
    """A request history from CSV: columns op (alloc/free), id (names an allocation so
    a free can refer to it), size, align, reserved, atomic; size/align/flags only
    for allocs. Bad rows raise ValueError naming the line and column."""
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValueError(f"{path}: cannot read a request history: {exc}") from None
    return validate_requests(frame, source=str(path))


def _cell_int(value: Any, column: str) -> int | None:
    """An integer cell: int, integral float, or text (decimal or 0x); None if empty."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        raise ValueError(f"{column} {value!r} is not a whole number")
    text = str(value).strip()
    if not text:
        return None
    try:
        return int(text, 0)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{column} {text!r} is not a number") from None
        if not number.is_integer():
            raise ValueError(f"{column} {text!r} is not a whole number") from None
        return int(number)


def _cell_flag(value: Any, column: str) -> bool:
    if value is None or (isinstance(value, float) and value != value):
        return False
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("", "0", "false", "0.0"):
        return False
    if text in ("1", "true", "1.0"):
        return True
    raise ValueError(f"{column} {value!r} is not 0/1/true/false")


def validate_requests(frame: pd.DataFrame, *, source: str = "requests") -> pd.DataFrame:
    """Check and type a request history; one message per bad row (line numbers count
    the CSV header as line 1), at most 20 listed."""
    rows = _validated_rows(frame, source)
    out = pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
    return out.astype({"id": "int64", "size": "Int64", "align": "Int64",
                       "reserved": "boolean", "atomic": "boolean"})


def _validated_rows(frame: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    missing = [c for c in ("op", "id") if c not in frame.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected "
                         f"{list(REQUEST_COLUMNS)}")
    out, errors = [], []
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        op = str(row.get("op", "")).strip()
        try:
            if op not in ("alloc", "free"):
                raise ValueError(f"op {op!r} is not alloc or free")
            ident = _cell_int(row.get("id"), "id")
            if ident is None:
                raise ValueError("id is empty")
            item: dict[str, Any] = {"op": op, "id": ident}
            if op == "alloc":
                size = _cell_int(row.get("size"), "size")
                if size is None:
                    raise ValueError("size is empty")
                align = _cell_int(row.get("align"), "align")
                item.update(size=size, align=PCPU_MIN_ALLOC_SIZE if align is None else align,
                            reserved=_cell_flag(row.get("reserved"), "reserved"),
                            atomic=_cell_flag(row.get("atomic"), "atomic"))
        except ValueError as exc:
            errors.append(f"{source}:{line}: {exc}")
            continue
        out.append(item)
    if errors:
        more = f"\n... and {len(errors) - 20} more" if len(errors) > 20 else ""
        raise ValueError("\n".join(errors[:20]) + more)
    return out


def run_history(alloc: PercpuAllocator,
                requests: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Run a request history through the allocator; one row per request with the
    decision: chunk, offset, pointer, offset from pcpu_base_addr, chunks created or
    destroyed and pages populated on the way, or the error."""
    frame = requests if isinstance(requests, pd.DataFrame) else pd.DataFrame(list(requests))
    ptr_of: dict[int, int] = {}
    rows = []
    for req in _validated_rows(frame, "requests"):
        first_event = len(alloc.events)
        row: dict[str, Any] = {"op": req["op"], "id": req["id"]}
        try:
            if req["op"] == "alloc":
                if req["id"] in ptr_of:
                    raise PercpuError(f"id {req['id']} is already allocated")
                result = alloc.alloc(req["size"], req["align"], reserved=req["reserved"],
                                     atomic=req["atomic"])
                ptr_of[req["id"]] = result.ptr
                row.update(size=result.size, align=result.align, chunk_id=result.chunk_id,
                           chunk_base=result.chunk_base, off=result.off, ptr=result.ptr,
                           offset_from_base=alloc.offset_from_base(result.ptr))
            else:
                if req["id"] not in ptr_of:
                    raise PercpuError(f"free of id {req['id']}, which is not allocated")
                row["size"] = alloc.free(ptr_of.pop(req["id"]))
        except PercpuError as exc:
            row["error"] = str(exc)
        new = alloc.events[first_event:]
        row["chunks_created"] = sum(e.kind == "create_chunk" for e in new)
        row["chunks_destroyed"] = sum(e.kind == "destroy_chunk" for e in new)
        row["pages_populated"] = sum(e.pages[1] - e.pages[0] for e in new if e.kind == "populate")
        rows.append(row)
    return typed_frame(rows, addresses=("chunk_base", "ptr"),
                  integers=("size", "align", "chunk_id", "off", "offset_from_base"))


def typed_frame(rows: list[dict[str, Any]], *, addresses: Sequence[str] = (),
           integers: Sequence[str] = ()) -> pd.DataFrame:
    """A frame with nullable 64-bit columns: built as objects first, because a missing
    value would otherwise turn a column into floats, which cannot hold 64-bit addresses."""
    frame = pd.DataFrame(rows, dtype=object)
    for col in addresses:
        if col in frame:
            frame[col] = pd.array([None if v is None or v != v else int(v) for v in frame[col]],
                                  dtype="UInt64")
    for col in integers:
        if col in frame:
            frame[col] = pd.array([None if v is None or v != v else int(v) for v in frame[col]],
                                  dtype="Int64")
    return frame.infer_objects()


def synthetic_history(n_alloc: int, n_free: int, *, seed: int = 0) -> pd.DataFrame:
    """A boot-like request history (synthetic): mostly small counters and stats
    structures (4-64 bytes), some 128 bytes-4K, a few 8-32K; frees of random live
    allocations interleaved. Real histories come from kernel traces (captures)."""
    rng = random.Random(seed)
    sizes = [4, 8, 8, 8, 16, 16, 24, 32, 40, 48, 64, 64, 128, 192, 256, 512, 1024, 4096,
             8192, 16384, 32768]
    weights = [6, 14, 10, 8, 10, 8, 6, 6, 3, 3, 5, 3, 4, 2, 3, 2, 2, 1, 0.5, 0.2, 0.05]
    aligns = {4: 4, 8: 8, 16: 8, 24: 8, 32: 8, 40: 8, 48: 8, 64: 64}
    live: list[int] = []
    rows: list[dict[str, Any]] = []
    next_id = 0
    frees_left = n_free
    while next_id < n_alloc or (frees_left and live):
        free_now = next_id >= n_alloc or rng.random() < n_free / (n_alloc + n_free)
        if live and frees_left and free_now:
            rows.append({"op": "free", "id": live.pop(rng.randrange(len(live)))})
            frees_left -= 1
            continue
        size = rng.choices(sizes, weights)[0]
        rows.append({"op": "alloc", "id": next_id, "size": size,
                     "align": aligns.get(size, 64 if size < 4096 else 4096),
                     "reserved": False, "atomic": rng.random() < 0.01})
        live.append(next_id)
        next_id += 1
    return pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
