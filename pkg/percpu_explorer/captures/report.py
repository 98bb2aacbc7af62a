"""The comparison of the model with a capture as the plain text the CLI prints."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import pandas as pd

from ..kernel import fmt_addr
from ..percpu import TraceReplay
from .comparison import UNTRACED_NOTE, CaptureComparison


def format_comparison(result: CaptureComparison) -> str:
    """A plain-text report of `compare()` (the CLI prints this)."""
    cfg = result.config
    lines = [f"capture {result.bundle_name}: arm64 kernel {cfg.kernel}, {cfg.label()}, "
             f"NR_CPUS={cfg.nr_cpus}", ""]
    lines.append(f"  {'source':<12}{'item':<32}{'model':<20}{'real':<20}match")
    for row in result.layout_rows.itertuples():
        lines.append(f"  {row.source:<12}{row.item:<32}{format_value(row.model):<20}"
                     f"{format_value(row.real):<20}{'yes' if row.match else 'NO'}"
                     + (f"  ({row.note})" if row.note else ""))
    lines.append("")
    lines.append(f"{result.agreed} of {len(result.layout_rows)} values agree.")
    if result.first_chunk:
        fc = result.first_chunk
        lines.append(f"First chunk (kernel log): {fc.kind} {fc.pages_per_cpu} pages/cpu, "
                     f"static {fc.static_size}, reserved {fc.reserved_size}, dynamic "
                     f"{fc.dyn_size}, unit {fc.unit_size}, {fc.nr_cpus} CPUs in "
                     f"{len(fc.groups)} group(s).")
    rows = result.first_chunk_rows
    if rows is not None and len(rows):
        agree = int(rows["match"].sum())
        lines.append(f"Allocator model's first chunk vs the kernel log: {agree} of {len(rows)} "
                     "fields and lines agree.")
        for row in rows[~rows["match"]].itertuples():
            lines.append(f"  {row.item}: model {row.model!r}, real {row.real!r}")
    if result.events is not None:
        counts = result.events["event"].value_counts()
        lines.append("Percpu trace events: " + ", ".join(
            f"{n} {name.removeprefix('percpu_')}" for name, n in counts.items()) + ".")
    if result.replay is not None:
        r = result.replay
        lines.append(f"Allocator replay: {r.allocs_matched} of {r.allocs} allocations and "
                     f"{r.frees_matched} of {r.frees} frees at the kernel's chunk and offset; "
                     f"chunks created {len(r.creates_model)} (kernel {len(r.creates_real)}), "
                     f"destroyed {len(r.destroys_model)} (kernel {len(r.destroys_real)})"
                     + ("; every decision agrees." if r.all_matched else "."))
        if r.first_disagreement:
            lines.append(f"  first disagreement: trace line {r.first_disagreement.get('line')}")
        lines += [f"  assumed: {a}" for a in r.assumptions]
    if result.stats_rows is not None:
        s = result.stats_rows
        lines.append(f"percpu_stats after the replay: {int(s['match'].sum())} of {len(s)} "
                     "fields agree; differing:")
        for row in s[~s["match"]].itertuples():
            where = "" if row.chunk is None or pd.isna(row.chunk) else f" {row.chunk}"
            lines.append(f"  {row.section}{where} {row.key}: model {row.model}, real {row.real}")
        if (~s["match"]).any():
            lines.append(f"  (each {UNTRACED_NOTE})")
    if result.rfc_layout is not None:
        problems = result.rfc_layout.problems
        lines.append("RFC patch 02/11 on this configuration: "
                     + ("the layout is sane." if not problems else "BROKEN:"))
        lines += [f"  - [{p.code}] {p.message}" for p in problems]
    elif result.rfc_error:
        lines.append(f"RFC patch 02/11 on this configuration: not applicable: {result.rfc_error}")
    return "\n".join(lines)


def comparison_to_dict(result: CaptureComparison) -> dict[str, Any]:
    """`compare()`'s whole result as JSON-ready data (what `compare --format json` prints):
    the derived configuration; the layout rows (addresses as `format_value` text); the
    first chunk as the kernel log gives it and the allocator model's field-by-field and
    line-by-line comparison; the trace's events and their replay through the allocator
    (counts, chunks created and destroyed, every disagreeing decision, assumptions); the
    percpu_stats comparison; and RFC patch 02/11 on the same configuration. A part the
    capture has no text for is null."""
    cfg = result.config
    return {
        "bundle": result.bundle_name,
        "config": {"label": cfg.label(), **cfg.to_dict()},
        "layout": _rows(result.layout_rows, formatted=("model", "real")),
        "first_chunk": _first_chunk(result),
        "events": (None if result.events is None else
                   {str(k): int(v) for k, v in result.events["event"].value_counts().items()}),
        "replay": None if result.replay is None else _replay(result.replay),
        "stats": (None if result.stats_rows is None else
                  {**_rows(result.stats_rows), "note": f"a differing field {UNTRACED_NOTE}"}),
        "rfc": ({"error": result.rfc_error} if result.rfc_layout is None else
                {"sane": not result.rfc_layout.problems,
                 "problems": [{"code": p.code, "message": p.message}
                              for p in result.rfc_layout.problems]}),
    }


def _plain(value: Any) -> Any:
    """A JSON-ready scalar: numpy numbers as Python numbers, NaN/NA as None."""
    if value is None or (not isinstance(value, (tuple, list, dict, str)) and pd.isna(value)):
        return None
    if hasattr(value, "item"):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _rows(frame: pd.DataFrame, formatted: tuple[str, ...] = ()) -> dict[str, Any]:
    """{"agreed", "total", "rows"} of a comparison table with a `match` column."""
    rows = [{k: (None if v is None or (not isinstance(v, str) and pd.isna(v)) else
                 format_value(v)) if k in formatted else _plain(v) for k, v in row.items()}
            for row in frame.to_dict("records")]
    return {"agreed": int(frame["match"].sum()) if len(frame) else 0, "total": len(frame),
            "rows": rows}


def _first_chunk(result: CaptureComparison) -> dict[str, Any] | None:
    fc = result.first_chunk
    if fc is None:
        return None
    log = {**{k: _plain(v) for k, v in asdict(fc).items()}, "nr_cpus": fc.nr_cpus}
    rows = result.first_chunk_rows
    return {"log": log, "model": None if rows is None or not len(rows) else _rows(rows)}


def _replay(r: TraceReplay) -> dict[str, Any]:
    wrong = r.rows[r.rows["match"].eq(False)]  # chunk events (match NaN) compare as lists
    for column in ("real_base", "model_base"):
        wrong = wrong.assign(**{column: wrong[column].map(_capture_addr)})
    return {
        "allocs": r.allocs, "allocs_matched": r.allocs_matched,
        "frees": r.frees, "frees_matched": r.frees_matched,
        "chunks_created": {"model": list(r.creates_model), "kernel": list(r.creates_real)},
        "chunks_destroyed": {"model": list(r.destroys_model), "kernel": list(r.destroys_real)},
        "chunk_event_lags": list(r.chunk_event_lags),
        "all_matched": r.all_matched,
        "events": len(r.rows),
        "disagreements": [{k: _plain(v) for k, v in row.items()}
                          for row in wrong.to_dict("records")],
        "first_disagreement": (None if r.first_disagreement is None else
                               {k: _plain(v) for k, v in r.first_disagreement.items()}),
        "pre_trace": [list(area) for area in r.pre_trace],
        "reordered": [list(move) for move in r.reordered],
        "assumptions": list(r.assumptions),
    }


def _capture_addr(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else format_value(value)


def format_value(value: Any) -> str:
    """An address as 0x + 16 hex digits, a small number (bits, page size) in decimal."""
    if value is None or pd.isna(value):
        return "-"
    value = int(value)
    return fmt_addr(value) if value > 1 << 20 else str(value)
