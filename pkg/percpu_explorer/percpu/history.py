"""Request histories: the CSV format (one alloc or free per row), its validation,
running a history through the allocator, and a synthetic boot-like history."""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from ..errors import InputError, ProblemsError, one_line, shown, where
from ..kernel import SIZE_MAX, check_memory
from .allocator import PercpuAllocator
from .chunk import PCPU_MIN_ALLOC_SIZE
from .errors import PercpuError

REQUEST_COLUMNS = ("op", "id", "size", "align", "reserved", "atomic")


def read_requests(path: str) -> pd.DataFrame:
    """A request history from CSV: columns op (alloc/free), id (names an allocation so
    a free can refer to it), size, align, reserved, atomic; size/align/flags only
    for allocs. Bad rows raise ProblemsError (an InputError), each problem as
    FILE:LINE:COLUMN; blank lines are skipped but counted."""
    check_memory(_file_size(path) * 40, f"reading {path}", "split the request history")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skip_blank_lines=False,
                            encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: no such request history file") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        reason = one_line(str(exc)) or type(exc).__name__
        raise InputError(f"{path}: cannot read a request history (CSV with a header "
                         f"{','.join(REQUEST_COLUMNS)}): {reason}") from None
    return validate_requests(frame, source=str(path))


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except (OSError, ValueError):
        return 0


# Integer cells and their valid ranges: size and align are size_t; an id is a name that
# fits the int64 column it is kept in.
_INT_RANGES = {"id": (-(1 << 63), (1 << 63) - 1, "a 64-bit integer"),
               "size": (0, SIZE_MAX, "a size_t: 0 to 2**64 - 1"),
               "align": (0, SIZE_MAX, "a size_t: 0 to 2**64 - 1")}


def _cell_int(value: Any, column: str) -> int | None:
    """An integer cell: int, integral float, or text (decimal or 0x); None if empty.
    ValueError naming the cell when it is not a whole number in the column's range."""
    low, high, what = _INT_RANGES[column]
    number: int | float
    if value is None or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, bool | int):
        number = int(value)
    elif isinstance(value, float):
        number = value
    else:
        text = str(value).strip()
        if not text:
            return None
        try:
            number = int(text, 0) if len(text) <= 40 else float(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                raise ValueError(f"{column} {shown(text)} is not a number ({what})") from None
    if isinstance(number, float):
        if not number.is_integer():
            raise ValueError(f"{column} {shown(value)} is not a whole number ({what})")
        number = int(number)
    if not low <= number <= high:
        raise ValueError(f"{column} {shown(value)} is out of range ({what})")
    return number


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
    raise ValueError(f"{column} {shown(value)} is not 0/1/true/false")


def validate_requests(frame: pd.DataFrame, *, source: str = "requests") -> pd.DataFrame:
    """Check and type a request history; ProblemsError listing every bad cell as
    SOURCE:LINE:COLUMN (the CSV header is line 1)."""
    rows = _validated_rows(frame, source)
    out = pd.DataFrame(rows, columns=list(REQUEST_COLUMNS))
    return out.astype({"id": "int64", "size": "object", "align": "object",
                       "reserved": "boolean", "atomic": "boolean"})


def _validated_rows(frame: pd.DataFrame, source: str) -> list[dict[str, Any]]:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{source}: a request history is a table (DataFrame or rows of "
                         f"{', '.join(REQUEST_COLUMNS)}), not {type(frame).__name__}")
    columns = [str(c) for c in frame.columns]
    missing = [c for c in ("op", "id") if c not in columns]
    if missing:
        raise InputError(f"{where(source, 1)}: missing column(s) {missing}; expected "
                         f"{', '.join(REQUEST_COLUMNS)} (found {shown(columns)})")
    position = {c: columns.index(c) + 1 for c in REQUEST_COLUMNS if c in columns}
    frame = frame.set_axis(columns, axis=1)
    out, errors = [], []
    for i, row in enumerate(frame.to_dict("records")):
        line = i + 2
        if all(v is None or (isinstance(v, str) and not v.strip())
               or (isinstance(v, float) and v != v) for v in row.values()):
            continue  # a blank line
        column = "op"
        try:
            op = str(row.get("op", "")).strip()
            if op not in ("alloc", "free"):
                raise ValueError(f"op {shown(op)} is not alloc or free")
            column = "id"
            ident = _cell_int(row.get("id"), "id")
            if ident is None:
                raise ValueError("id is empty (each request names its allocation)")
            item: dict[str, Any] = {"op": op, "id": ident}
            if op == "alloc":
                column = "size"
                size = _cell_int(row.get("size"), "size")
                if size is None:
                    raise ValueError("size is empty (an alloc needs its size in bytes)")
                column = "align"
                align = _cell_int(row.get("align"), "align")
                item.update(size=size, align=PCPU_MIN_ALLOC_SIZE if align is None else align)
                for column in ("reserved", "atomic"):
                    item[column] = _cell_flag(row.get(column), column)
        except ValueError as exc:
            errors.append(f"{where(source, line, position.get(column))}: {exc}")
            continue
        out.append(item)
    if errors:
        raise ProblemsError(source, errors, consequence="nothing was replayed")
    return out


def run_history(alloc: PercpuAllocator,
                requests: pd.DataFrame | Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Run a request history through the allocator; one row per request with the
    decision: chunk, offset, pointer, offset from pcpu_base_addr, chunks created or
    destroyed and pages populated on the way, or the error."""
    frame = requests if isinstance(requests, pd.DataFrame) else pd.DataFrame(list(requests))
    return decisions_frame(replay_requests(alloc, _validated_rows(frame, "requests")))


def replay_requests(alloc: PercpuAllocator,
                    requests: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """`run_history` on requests already validated (`validate_requests`' rows, as
    dicts): the decision of each as a dict, the rows of `decisions_frame`."""
    ptr_of: dict[int, int] = {}
    rows = []
    for req in requests:
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
    return rows


def decisions_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """`replay_requests`' decisions as the frame `run_history` returns."""
    return typed_frame(rows, addresses=("chunk_base", "ptr"),
                       integers=("size", "align", "chunk_id", "off", "offset_from_base"))


def validated_requests(frame: pd.DataFrame, *, source: str = "requests"
                       ) -> list[dict[str, Any]]:
    """The rows of `validate_requests(frame)` as dicts, for `replay_requests`."""
    return _validated_rows(frame, source)


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
