"""The comparison of the model with a capture as the plain text the CLI prints."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..kernel import fmt_addr
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


def format_value(value: Any) -> str:
    """An address as 0x + 16 hex digits, a small number (bits, page size) in decimal."""
    if value is None or pd.isna(value):
        return "-"
    value = int(value)
    return fmt_addr(value) if value > 1 << 20 else str(value)
