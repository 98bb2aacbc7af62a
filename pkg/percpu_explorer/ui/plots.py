"""Plotly figures of the models: pure functions from model data to `go.Figure`.

Nothing here computes kernel numbers; every value comes from the model objects
(`layout.Layout`, `pgtable.Walk`/`KernelPageTables`, `allocator.PercpuAllocator` and
`replay()` output, `replay.WorkloadCost`, `interleave.preemption_points()`/`explore()`).
Many rectangles go into one bar trace (bars with `base`), never into layout shapes
(plotly's shape updates grow quadratically), so a figure stays a handful of traces
whatever the number of regions.

Addresses print as 0x-prefixed 16-digit hex (`units.fmt_addr`); an `end` is exclusive
and `last` (= end - 1) inclusive, as in `layout.layout_table`. Sizes use memory.rst's
binary units (`units.format_size`). Problems are drawn in `PROBLEM_COLOR` (red).

Figures work in JupyterLab and, after `set_renderer()`, in notebooks exported with
nbconvert; `to_png()` writes a static image with kaleido and a system Chromium.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import textwrap
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
from plotly.subplots import make_subplots

from ..kernel import (
    MASK64,
    Geometry,
    KernelPageTables,
    Layout,
    Walk,
    fmt_addr,
    format_size,
    layout_table,
)
from ..percpu import PCPU_MIN_ALLOC_SIZE, PercpuAllocator
from ..thiscpu import Exploration, WorkloadCost, insn_cost, op_cost, op_sequence

__all__ = [
    "PROBLEM_COLOR",
    "address_space_map",
    "chunk_map_heatmap",
    "chunks_figure",
    "cost_by_class",
    "interleaving_figure",
    "offsets_figure",
    "page_tables_figure",
    "set_renderer",
    "to_png",
    "walk_figure",
    "workload_cost_figure",
]

PROBLEM_COLOR = "#d62728"  # red: a region a layout problem names, a wrong-CPU update
OK_COLOR = "#2ca02c"
GUARD_COLOR = "#e0e0e0"
NA_COLOR = "#c7c7c7"  # a case that cannot happen
SHARED_COLOR = "#1f77b4"
PRIVATE_COLOR = "#ff7f0e"
# One colour per region name, the same in every column (never red).
REGION_COLORS = {
    "linear map": "#1f77b4",
    "kasan shadow": "#9467bd",
    "modules": "#ff7f0e",
    "vmalloc": "#2ca02c",
    "global percpu": "#17becf",
    "local percpu": "#bcbd22",
    "vmemmap": "#8c564b",
    "PCI I/O": "#e377c2",
    "fixmap": "#7f7f7f",
}
_OTHER_COLOR = "#aec7e8"
_GUARD = "[guard region]"
_TOP = 1 << 64
_BINARY_UNITS = (("EB", 60), ("PB", 50), ("TB", 40), ("GB", 30), ("MB", 20), ("KB", 10))


# --- helpers -------------------------------------------------------------------------------

def _end_text(end: int) -> str:
    """An exclusive end; 2**64 (one past the last address) is not wrapped."""
    return "0x10000000000000000" if end == _TOP else fmt_addr(end)


def _wrap(text: str, width: int = 90) -> str:
    return "<br>".join(textwrap.wrap(text, width)) or text


def _unit(span: float) -> tuple[str, int]:
    """The largest binary unit not above `span` bytes (B below 1KB)."""
    for name, shift in _BINARY_UNITS:
        if span >= 1 << shift:
            return name, 1 << shift
    return "B", 1


def _hex_ticks(lo: int, hi: int, base: int, count: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions (offsets from `base`) at power-of-two aligned addresses in [lo, hi]."""
    span = max(hi - lo, 1)
    step = 1 << max((span // count).bit_length() - 1, 0)
    while span // step > count:
        step <<= 1
    first = -(-lo // step) * step
    addrs = range(first, hi + 1, step)
    return [float(a - base) for a in addrs], [_end_text(a) for a in addrs]


# Columns of the model's DataFrames that hold addresses, and those that hold sizes.
ADDRESS_COLUMNS = ("start", "end", "last", "base_addr", "chunk_base", "ptr", "real_base",
                   "model_base", "pcpu_base_addr")
SIZE_COLUMNS = ("size", "PGDIR_SIZE", "PERCPU_SIZE", "vmalloc_mainline", "vmalloc_patched",
                "vmalloc_lost", "chunk_span", "area_size", "unit_size", "free_bytes",
                "contig_bytes", "mainline_bytes_per_cpu", "patched_bytes_per_cpu",
                "offset_from_base")


def readable(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy for reading: addresses as 0x-prefixed 16-digit hex, sizes in KB/MB/GB/TB as
    memory.rst writes them (the model's frames keep exact integers)."""
    out = frame.copy()
    for col in out.columns:
        if col in ADDRESS_COLUMNS:
            out[col] = [_hex_or_blank(v, col) for v in out[col]]
        elif col in SIZE_COLUMNS:
            out[col] = [_size_or_blank(v) for v in out[col]]
    return out


def _hex_or_blank(value: Any, column: str) -> str:
    if value is None or pd.isna(value):
        return ""
    return _end_text(int(value)) if column == "end" else fmt_addr(int(value))


def _size_or_blank(value: Any) -> str:
    if value is None or pd.isna(value):
        return ""
    number = int(value)
    return ("-" if number < 0 else "") + format_size(abs(number))


def set_renderer(renderer: str | None = None) -> str:
    """Set plotly's default renderer so figures show in JupyterLab *and* survive
    `nbconvert --to html` (the plain plotly MIME type alone is dropped there).

    Default: $PLOTLY_RENDERER, else "plotly_mimetype+notebook". Returns the renderer set.
    """
    chosen = renderer or os.environ.get("PLOTLY_RENDERER") or "plotly_mimetype+notebook"
    pio.renderers.default = chosen
    return chosen


def to_png(fig: go.Figure, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write `fig` as a PNG with kaleido and the system Chromium (never a downloaded one).

    Raises RuntimeError naming what is missing: the kaleido package, or a Chromium
    executable ($BROWSER_PATH, else /usr/bin/chromium).
    """
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise RuntimeError("to_png needs the kaleido package, which is not installed "
                           "(pip install kaleido)") from None
    browser = os.environ.get("BROWSER_PATH") or "/usr/bin/chromium"
    if not Path(browser).is_file():
        raise RuntimeError(f"to_png needs a system Chromium: {browser} does not exist; set "
                           "BROWSER_PATH to a Chrome/Chromium executable (kaleido must not "
                           "download a browser)")
    os.environ["BROWSER_PATH"] = browser
    out = Path(path)
    fig.write_image(str(out), format="png", scale=scale)
    return out


# --- address-space map ---------------------------------------------------------------------

def _schematic_height(size: int) -> float:
    """Bar height of the log-size schematic: log2(bytes) - 19, at least 1 (8M -> 4,
    1TB -> 21, 128TB -> 28, 4PB -> 33)."""
    return max(1.0, math.log2(max(size, 1)) - 19)


def _layout_rows(layout: Layout) -> list[dict[str, Any]]:
    """layout_table rows with each region's symbols, problems and warnings attached."""
    regions = {r.name: r for r in layout.regions}
    rows = []
    for row in layout_table(layout).to_dict("records"):
        name = row["use"]
        start, end = int(row["start"]), int(row["end"])
        region = regions.get(name)
        negative = region is not None and region.negative
        problems = [f for f in layout.problems if name in f.regions]
        warnings = [f for f in layout.warnings if name in f.regions]
        lo, hi = (end, start) if negative else (start, end)
        rows.append({
            "name": name, "start": start, "end": end, "lo": lo, "hi": hi,
            "magnitude": hi - lo, "size": int(row["size"]), "negative": negative,
            "guard": name == _GUARD, "region": region, "problems": problems,
            "warnings": warnings,
        })
    return rows


def _region_hover(row: dict[str, Any], label: str) -> str:
    region = row["region"]
    start_sym = f" ({region.start_symbol})" if region else ""
    end_sym = f" ({region.end_symbol})" if region else ""
    size = row["size"]
    lines = [f"<b>{row['name']}</b> — {label}",
             f"start {fmt_addr(row['start'])}{start_sym}",
             f"end {_end_text(row['end'])}{end_sym}, exclusive",
             f"last {fmt_addr((row['end'] - 1) & MASK64)}, inclusive",
             f"size {format_size(size)} ({size:#x} bytes)"]
    if row["negative"]:
        lines.append(f"<b>negative</b>: end is {format_size(row['magnitude'])} below start; "
                     "the size shown is the wrapped unsigned value")
    for f in row["problems"]:
        lines.append(f"<b style='color:{PROBLEM_COLOR}'>problem {f.code}</b>: "
                     + _wrap(f.message))
    for f in row["warnings"]:
        lines.append(f"warning {f.code}: " + _wrap(f.message))
    return "<br>".join(lines)


def _region_color(row: dict[str, Any]) -> str:
    if row["problems"]:
        return PROBLEM_COLOR
    if row["guard"]:
        return GUARD_COLOR
    return REGION_COLORS.get(row["name"], _OTHER_COLOR)


def address_space_map(layout: Layout, patched: Layout | None = None) -> go.Figure:
    """The kernel half of the VA space: a log-size schematic (every region readable,
    from 8M to petabytes) beside a true-scale bar, one column per layout.

    With `patched`, mainline and patched stand side by side: regions keep their colour
    in both columns and dashed connectors link the boundaries of each region that moved
    or changed size. Regions named by a problem are red, with the problem in the hover
    and listed under the plot. Two bar traces per layout and a connector trace per panel.
    """
    columns = [("mainline" if patched is not None else layout.config.label(), layout)]
    if patched is not None:
        columns.append(("patched (RFC 02/11)", patched))
    col_rows = [_layout_rows(lay) for _, lay in columns]
    low = min([r["lo"] for rows in col_rows for r in rows]
              + [lay.symbols["_PAGE_OFFSET(vabits_actual)"] for _, lay in columns])
    # Built as plain dicts and validated once by go.Figure: make_subplots and
    # add_trace would validate the figure again on every call.
    data: list[dict[str, Any]] = []
    tops: list[dict[str, tuple[float, float]]] = []  # schematic bounds by region
    spans: list[dict[str, tuple[float, float]]] = []  # true-scale bounds by region
    for x, ((label, _), rows) in enumerate(zip(columns, col_rows, strict=True)):
        heights = [_schematic_height(r["magnitude"]) for r in rows]
        bases = [0.0, *itertools.accumulate(heights)][:-1]
        hover = [_region_hover(r, label) for r in rows]
        colors = [_region_color(r) for r in rows]
        marker = {"color": colors, "line": {"color": [PROBLEM_COLOR if r["problems"]
                                                      else "white" for r in rows],
                                            "width": 1}}
        text = ["" if r["guard"] else f"{r['name']} {format_size(r['magnitude'])}"
                + (" (negative)" if r["negative"] else "") for r in rows]
        data.append({
            "type": "bar", "x": [x] * len(rows), "y": heights, "base": bases, "width": 0.5,
            "name": f"{label} (schematic)", "marker": marker, "text": text,
            "textposition": "inside", "insidetextanchor": "middle", "textangle": 0,
            "hovertext": hover,
            "hoverinfo": "text", "showlegend": False, "xaxis": "x", "yaxis": "y"})
        tops.append({r["name"]: (b, b + h) for r, b, h in zip(rows, bases, heights, strict=True)
                     if not r["guard"]})
        spans.append({r["name"]: (float(r["lo"] - low), float(r["hi"] - low)) for r in rows
                      if not r["guard"]})
        data.append({
            "type": "bar", "x": [x] * len(rows), "y": [float(r["magnitude"]) for r in rows],
            "base": [float(r["lo"] - low) for r in rows], "width": 0.5,
            "name": f"{label} (true scale)", "marker": marker, "opacity": 0.85,
            "hovertext": hover, "hoverinfo": "text", "showlegend": False,
            "xaxis": "x2", "yaxis": "y2"})
    if patched is not None:
        data.append(_connectors(col_rows, tops, "x", "y", "moved or resized"))
        data.append(_connectors(col_rows, spans, "x2", "y2", "moved or resized (true scale)"))

    labels = [label for label, _ in columns]
    xaxis = {"tickvals": list(range(len(columns))), "ticktext": labels,
             "range": [-0.5, len(columns) - 0.5], "title": {"text": "layout"}}
    tickvals, ticktext = _hex_ticks(low, _TOP, low)
    problems = [(label, f) for label, lay in columns for f in lay.problems]
    title = f"Kernel virtual address space, {layout.config.label()} " \
            f"(kernel {layout.config.kernel})"
    if patched is not None:
        title += ": mainline vs patched"
    notes = []
    if problems:
        notes.append(f"<b style='color:{PROBLEM_COLOR}'>{len(problems)} problem(s) "
                     "(red regions):</b>")
        for label, f in problems:
            prefix = f"• {label}, {f.code}: "
            # wrap the whole line, then colour the prefix (tags must not be wrapped)
            text = _wrap(prefix + f.message, 110)
            notes.append(f"<span style='color:{PROBLEM_COLOR}'>{prefix}</span>"
                         + text[len(prefix):])
    note_lines = sum(n.count("<br>") + 1 for n in notes)
    annotations = [
        {"text": "log-size schematic (height ∝ log₂ size)", "x": 0.19, "y": 1.0,
         "xref": "paper", "yref": "paper", "xanchor": "center", "yanchor": "bottom",
         "showarrow": False, "font": {"size": 14}},
        {"text": "true scale", "x": 0.69, "y": 1.0, "xref": "paper", "yref": "paper",
         "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 14}},
    ]
    if notes:
        annotations.append({
            "text": "<br>".join(notes), "xref": "paper", "yref": "paper", "x": 0, "y": 0,
            "yshift": -70, "xanchor": "left", "yanchor": "top", "showarrow": False, "align": "left",
            "font": {"size": 11}})
    fig_layout = {
        "title": {"text": title}, "barmode": "overlay", "bargap": 0, "hovermode": "closest",
        "height": 720 + 17 * note_lines,
        "margin": {"l": 60, "r": 200, "t": 80, "b": 80 + 17 * note_lines},
        "uniformtext": {"minsize": 8, "mode": "hide"},
        "xaxis": {**xaxis, "domain": [0.0, 0.38], "anchor": "y"},
        "yaxis": {"domain": [0.0, 1.0], "anchor": "x", "showticklabels": False,
                  "title": {"text": "regions in address order, lowest first "
                                    "(height: log₂ bytes − 19)"}},
        "xaxis2": {**xaxis, "domain": [0.5, 0.88], "anchor": "y2"},
        # ticks and title on the right, clear of the schematic on the left
        "yaxis2": {"domain": [0.0, 1.0], "anchor": "x2", "side": "right", "tickvals": tickvals,
                   "ticktext": ticktext, "range": [0, float(_TOP - low)],
                   "title": {"text": "virtual address (hex, linear scale)"}},
        "annotations": annotations,
    }
    return go.Figure({"data": data, "layout": fig_layout})


def _connectors(col_rows: list[list[dict[str, Any]]], tops: list[dict[str, tuple[float, float]]],
                xaxis: str, yaxis: str, name: str) -> dict[str, Any]:
    """Dashed lines from each region's bounds in the mainline schematic to the same
    region's bounds in the patched one, for regions that moved or changed size."""
    before = {r["name"]: r for r in col_rows[0] if not r["guard"]}
    xs: list[float | None] = []
    ys: list[float | None] = []
    hover: list[str | None] = []
    for row in col_rows[1]:
        old = before.get(row["name"])
        if row["guard"] or old is None or (old["start"], old["end"]) == (row["start"],
                                                                         row["end"]):
            continue
        change = row["size"] - old["size"] if not (row["negative"] or old["negative"]) else None
        what = ("negative after the patch" if row["negative"] else
                f"{'grew' if change and change > 0 else 'shrank'} by "
                f"{format_size(abs(change or 0))}")
        text = (f"<b>{row['name']}</b> moved/resized: {what}<br>"
                f"start {fmt_addr(old['start'])} → {fmt_addr(row['start'])}<br>"
                f"end {_end_text(old['end'])} → {_end_text(row['end'])}")
        for i in (0, 1):
            xs += [0.25, 0.75, None]
            ys += [tops[0][row["name"]][i], tops[1][row["name"]][i], None]
            hover += [text, text, None]
    return {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "hovertext": hover,
            "hoverinfo": "text", "line": {"color": "#444", "dash": "dash", "width": 1},
            "name": name, "showlegend": bool(xs) and xaxis == "x", "legendgroup": "moved",
            "xaxis": xaxis, "yaxis": yaxis}


# --- page tables ---------------------------------------------------------------------------

_KIND_COLORS = {"table": SHARED_COLOR, "block": OK_COLOR, "page": OK_COLOR,
                "invalid": PROBLEM_COLOR}


def walk_figure(walk: Walk, geometry: Geometry | None = None) -> go.Figure:
    """A page-table walk level by level: the entry read at each level marked at its
    index (hover: index, table PA, entry PA, descriptor, what it leads to, owner),
    ending at the output address or the faulting level. With the `geometry` the walk
    ran on (`kpt.geometry`), each level's table is drawn as a bar of its entries."""
    steps = walk.steps
    levels = [f"{s.level} (L{s.hw_level})" for s in steps]
    table_hover = [f"<b>{s.level}</b> table at PA {s.table_pa:#x}, {s.owner}" for s in steps]
    step_hover = []
    for s in steps:
        index = f"{s.index}" if s.index == s.hw_index else f"{s.index} (hardware {s.hw_index})"
        nxt = ("-" if s.next_pa is None else
               f"{'next table' if s.kind == 'table' else 'output address'} {s.next_pa:#x}")
        step_hover.append("<br>".join([
            f"<b>{s.level}</b> (level {s.hw_level}), {s.owner}", f"index {index}",
            f"table PA {s.table_pa:#x}", f"entry PA {s.entry_pa:#x}",
            f"descriptor {s.descriptor:#018x} ({s.kind})", nxt]))
    fig = go.Figure()
    if geometry is not None:
        ptrs = {lv.hw_level: lv.ptrs for lv in geometry.levels}
        fig.add_trace(go.Bar(
            y=levels, x=[ptrs[s.hw_level] for s in steps], base=[0] * len(steps),
            orientation="h", width=0.5,
            marker={"color": [PRIVATE_COLOR if s.owner != "shared" else SHARED_COLOR
                              for s in steps]},
            opacity=0.25, hovertext=table_hover, hoverinfo="text", name="table (entries)",
        ))
    fig.add_trace(go.Scatter(
        y=levels, x=[s.index for s in steps], mode="lines+markers+text",
        text=[f"[{s.index}] {s.kind}" for s in steps], textposition="top center",
        marker={"size": 14, "color": [_KIND_COLORS[s.kind] for s in steps],
                "symbol": ["x" if s.kind == "invalid" else "circle" for s in steps]},
        line={"color": "#444", "width": 1}, hovertext=step_hover, hoverinfo="text",
        name="entry read",
    ))
    if walk.ok:
        result = (f"PA {walk.pa:#x} ({format_size(walk.mapping_size or 0)} "
                  f"{'page' if steps[-1].kind == 'page' else 'block'})")
    else:
        result = f"fault: no valid entry at {walk.fault_level}"
    fig.update_yaxes(autorange="reversed", title_text="level (root first)")
    fig.update_xaxes(title_text="entry index in the table (entries)", rangemode="tozero")
    fig.update_layout(
        title={"text": f"Page-table walk of {fmt_addr(walk.va)} on CPU {walk.cpu}: {result}"
               f"<br><sup>root (TTBR1) {walk.ttbr1:#x}; orange tables are private to a CPU, "
               "blue ones shared</sup>"},
        barmode="overlay", height=200 + 90 * max(len(steps), 1), hovermode="closest",
        margin={"t": 110},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
    )
    return fig


def page_tables_figure(kpt: KernelPageTables, cpus: Iterable[int] | None = None) -> go.Figure:
    """Page-table pages of a `KernelPageTables`: left, per level, the shared tables
    (swapper_pg_dir and what every CPU reaches) and the private ones (per-CPU roots and
    Local Percpu tables); right, for each CPU, the shared pages its walks reach plus
    its private pages."""
    counts = kpt.table_counts()
    per_cpu = kpt.cpu_table_counts()
    chosen = list(range(kpt.nr_cpus)) if cpus is None else sorted(set(cpus))
    bad = [c for c in chosen if not 0 <= c < kpt.nr_cpus]
    if bad:
        raise ValueError(f"cpus {bad} are outside 0..{kpt.nr_cpus - 1}")
    per_cpu = per_cpu[per_cpu["cpu"].isin(chosen)]
    page = kpt.config.page_size
    shared_total = int(counts["shared_pages"].sum())
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=("pages per level", "pages each CPU's walks reach"))
    levels = [f"{lv} (L{hw})" for lv, hw in zip(counts["level"], counts["hw_level"],
                                                  strict=True)]
    for column, name, color in (("shared_pages", "shared", SHARED_COLOR),
                                ("private_pages", "private", PRIVATE_COLOR)):
        fig.add_trace(go.Bar(
            x=levels, y=counts[column], name=name, marker={"color": color},
            legendgroup=name,
            hovertext=[f"{lv}: {n} {name} page(s), {format_size(int(n) * page)}"
                       for lv, n in zip(levels, counts[column], strict=True)],
            hoverinfo="text"), row=1, col=1)
    # A CPU with its own root reaches every shared table but swapper_pg_dir itself.
    own_root = [kpt.roots[c] is not kpt.swapper for c in per_cpu["cpu"]]
    shared_root = int(counts["shared_pages"].iloc[0])
    reach = [shared_total - shared_root if own else shared_total for own in own_root]
    labels = [f"CPU {c}" + ("" if own else " (swapper_pg_dir)")
              for c, own in zip(per_cpu["cpu"], own_root, strict=True)]
    fig.add_trace(go.Bar(
        x=labels, y=reach, name="shared", legendgroup="shared",
        showlegend=False, marker={"color": SHARED_COLOR},
        hovertext=[f"{lab}: {n} shared page(s) reached, {format_size(n * page)}"
                   for lab, n in zip(labels, reach, strict=True)], hoverinfo="text"),
        row=1, col=2)
    fig.add_trace(go.Bar(
        x=labels, y=per_cpu["pages"], name="private", legendgroup="private", showlegend=False,
        marker={"color": PRIVATE_COLOR},
        hovertext=[f"{lab}: root at PA {kpt.roots[c].pa:#x}; {p} private page(s) "
                   f"({'its root and ' if own else ''}Local Percpu tables), "
                   f"{format_size(int(b))}" for lab, c, own, p, b in
                   zip(labels, per_cpu["cpu"], own_root, per_cpu["pages"], per_cpu["bytes"],
                       strict=True)],
        hoverinfo="text"), row=1, col=2)
    mode = ("one root per CPU (RFC 01/11)" if kpt.config.local_percpu
            else "one shared root (mainline)")
    fig.update_layout(
        barmode="stack", hovermode="closest",
        title={"text": f"Kernel page tables, {kpt.config.label()}, {kpt.nr_cpus} CPUs: {mode}"
               f"<br><sup>{kpt.total_pages} table pages of {format_size(page)}; "
               f"{kpt.entries_copied} PGD entries copied by syncs</sup>"})
    fig.update_xaxes(title_text="level", row=1, col=1)
    fig.update_xaxes(title_text="CPU", row=1, col=2)
    fig.update_yaxes(title_text=f"table pages (× {format_size(page)})", row=1, col=1)
    fig.update_yaxes(title_text=f"table pages (× {format_size(page)})", row=1, col=2)
    return fig


# --- allocator -----------------------------------------------------------------------------

def chunks_figure(alloc: PercpuAllocator) -> go.Figure:
    """The allocator's chunks in the VA space, as offsets from pcpu_base_addr: one bar per
    chunk spanning all its units (marker at its start, visible at any scale), coloured by
    how full it is; hover: base address, slot, free and contiguous bytes, population."""
    frame = alloc.chunks_frame()
    if frame.empty:
        raise ValueError("the allocator has no chunks")
    unit_span = max(alloc.unit_offsets.values()) if alloc.unit_offsets else 0
    ends = [int(off) + unit_span + int(n) * alloc.page_size
            for off, n in zip(frame["offset_from_base"], frame["nr_pages"], strict=True)]
    offs = [int(o) for o in frame["offset_from_base"]]
    unit_name, unit = _unit(max(abs(v) for v in [*offs, *ends, 1]))
    labels = [f"chunk {i} ({k})" for i, k in zip(frame["id"], frame["kind"], strict=True)]
    used = [1 - f / (n * alloc.page_size) for f, n in
            zip(frame["free_bytes"], frame["nr_pages"], strict=True)]
    hover = [
        "<br>".join([
            f"<b>{lab}</b>", f"base {fmt_addr(int(r.base_addr))}",
            f"offset from pcpu_base_addr {int(r.offset_from_base):+#x} "
            f"({'-' if r.offset_from_base < 0 else ''}{format_size(abs(int(r.offset_from_base)))})",
            f"{int(r.nr_pages)} pages per unit, {alloc.nr_units} units, slot {r.slot}",
            f"free {int(r.free_bytes)} B, largest free run {int(r.contig_bytes)} B",
            f"{int(r.nr_alloc)} allocations, {int(r.nr_populated)} pages populated, "
            f"{int(r.empty_pop_pages)} empty populated" + (", isolated" if r.isolated else "")])
        for lab, r in zip(labels, frame.itertuples(), strict=True)]
    fig = go.Figure()
    fig.add_trace(go.Bar(
        y=labels, x=[(e - o) / unit for o, e in zip(offs, ends, strict=True)],
        base=[o / unit for o in offs], orientation="h", name="chunk (all units)",
        marker={"color": used, "colorscale": "Blues", "cmin": 0, "cmax": 1,
                "colorbar": {"title": {"text": "share used"}}},
        hovertext=hover, hoverinfo="text"))
    fig.add_trace(go.Scatter(
        y=labels, x=[o / unit for o in offs], mode="markers", name="chunk start",
        marker={"symbol": "line-ns-open", "size": 16, "color": "#333"},
        hovertext=hover, hoverinfo="text"))
    area = "Global Percpu area" if alloc.local else "vmalloc"
    fig.update_layout(
        title={"text": f"Percpu chunks of {alloc.cfg.label()}, {alloc.nr_units} units of "
               f"{format_size(alloc.unit_size)}<br><sup>pcpu_base_addr "
               f"{fmt_addr(alloc.base_addr)}; new chunks go to {area} "
               f"[{fmt_addr(alloc.vm.start)}, {_end_text(alloc.vm.end)})</sup>"},
        hovermode="closest", height=220 + 40 * len(frame),
        legend={"orientation": "h", "y": -0.3})
    fig.update_xaxes(title_text=f"offset from pcpu_base_addr ({unit_name})")
    fig.update_yaxes(title_text="chunk", autorange="reversed")
    return fig


def _bits(value: int, nbits: int) -> np.ndarray:
    """An int bitmap as a 0/1 array, bit 0 first."""
    raw = np.frombuffer(value.to_bytes((nbits + 7) // 8 or 1, "little"), dtype=np.uint8)
    return np.unpackbits(raw, bitorder="little")[:nbits]


def _default_granularity(page_size: int) -> int:
    g = PCPU_MIN_ALLOC_SIZE
    while page_size // g > 1024:
        g *= 2
    return g


def chunk_map_heatmap(alloc: PercpuAllocator, chunk_id: int,
                      granularity: int | None = None) -> go.Figure:
    """One chunk's allocation map (the same in every unit) as a heatmap: a row per page,
    a cell per `granularity` bytes (default 4, the allocator's PCPU_MIN_ALLOC_SIZE, or
    coarser so a row has at most 1024 cells), coloured by the share allocated. Blank
    cells lie outside the chunk's map (start_offset/end_offset: the static or reserved
    area). A strip shows populated pages; lines mark each block's contig hint (solid),
    scan hint (dotted) and the chunk's contig hint (thick)."""
    chunk = next((c for c in alloc.chunks if c.id == chunk_id), None)
    if chunk is None:
        raise ValueError(f"no chunk {chunk_id}; chunks are {[c.id for c in alloc.chunks]}")
    page = alloc.page_size
    g = _default_granularity(page) if granularity is None else granularity
    if g % PCPU_MIN_ALLOC_SIZE or page % g:
        raise ValueError(f"granularity {g} must be a multiple of {PCPU_MIN_ALLOC_SIZE} "
                         f"dividing the page size {page}")
    nbits = chunk.map_bits
    bits = _bits(chunk.alloc_map, nbits).astype(float)
    visible = np.ones(nbits, dtype=bool)
    visible[: chunk.start_offset // PCPU_MIN_ALLOC_SIZE] = False
    if chunk.end_offset:
        visible[nbits - chunk.end_offset // PCPU_MIN_ALLOC_SIZE:] = False
    per_cell = g // PCPU_MIN_ALLOC_SIZE
    cells_per_row = page // g
    alloc_cells = np.where(visible, bits, 0).reshape(-1, per_cell).sum(axis=1)
    seen_cells = visible.reshape(-1, per_cell).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(seen_cells > 0, alloc_cells / np.maximum(seen_cells, 1), np.nan)
    z = share.reshape(chunk.nr_pages, cells_per_row)
    populated = _bits(chunk.populated, chunk.nr_pages).astype(float).reshape(-1, 1)
    x = np.arange(cells_per_row) * g + g / 2  # heatmap x is the cell's centre
    y = np.arange(chunk.nr_pages)

    fig = make_subplots(rows=1, cols=2, column_widths=[0.04, 0.96], shared_yaxes=True,
                        horizontal_spacing=0.01)
    fig.add_trace(go.Heatmap(
        z=populated, x=["populated"], y=y, zmin=0, zmax=1, showscale=False,
        colorscale=[[0, "#f2f2f2"], [1, "#555555"]], name="populated",
        hovertemplate="page %{y}: populated %{z}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=z, x=x, y=y, zmin=0, zmax=1, name="allocation map",
        colorscale=[[0, "#f7fbff"], [1, "#08306b"]],
        colorbar={"title": {"text": "share allocated"}},
        hovertemplate=(f"page %{{y}}, the {g} B around byte %{{x}} of the page<br>"
                       "allocated %{z:.0%}<extra></extra>")), row=1, col=2)
    bb = alloc.block_bits
    for name, attr, dash, width, color in (
            ("block contig hint", "contig", "solid", 2, "#e6550d"),
            ("block scan hint", "scan", "dot", 2, "#31a354")):
        xs: list[float | None] = []
        ys: list[float | None] = []
        for i, md in enumerate(chunk.md_blocks):
            hint = getattr(md, f"{attr}_hint")
            if hint:
                start = getattr(md, f"{attr}_hint_start")
                xs += [start * PCPU_MIN_ALLOC_SIZE, (start + hint) * PCPU_MIN_ALLOC_SIZE, None]
                ys += [i, i, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name,
                                 line={"dash": dash, "width": width, "color": color},
                                 hoverinfo="skip"), row=1, col=2)
    xs, ys = [], []
    md = chunk.chunk_md
    lo, hi = md.contig_hint_start, md.contig_hint_start + md.contig_hint
    while md.contig_hint and lo < hi:
        row, col = divmod(lo, bb)
        end = min(hi, (row + 1) * bb)
        xs += [col * PCPU_MIN_ALLOC_SIZE, (col + end - lo) * PCPU_MIN_ALLOC_SIZE, None]
        ys += [row + 0.3, row + 0.3, None]
        lo = end
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="chunk contig hint",
                             line={"width": 4, "color": "#de2d26"}, hoverinfo="skip"),
                  row=1, col=2)
    used = nbits * PCPU_MIN_ALLOC_SIZE - chunk.free_bytes - chunk.start_offset - chunk.end_offset
    fig.update_layout(
        title={"text": f"Allocation map of chunk {chunk.id} ({chunk.kind}), one unit: "
               f"{chunk.nr_pages} pages of {format_size(page)}<br><sup>{used} B allocated, "
               f"{chunk.free_bytes} B free, largest free run "
               f"{md.contig_hint * PCPU_MIN_ALLOC_SIZE} B; {chunk.nr_populated} pages "
               f"populated; cell = {g} B</sup>"},
        height=220 + max(14 * chunk.nr_pages, 200), hovermode="closest",
        legend={"orientation": "h", "y": -0.15})
    fig.update_yaxes(title_text="page in the unit", autorange="reversed", row=1, col=1)
    fig.update_xaxes(title_text="page", row=1, col=1)
    fig.update_xaxes(title_text="byte offset in the page (B)", range=[0, page], row=1, col=2)
    return fig


def offsets_figure(decisions: pd.DataFrame) -> go.Figure:
    """The offset from pcpu_base_addr of every allocation of a replayed history (the
    frame `run_history()` returns), request by request, coloured by chunk; frees
    at the offset they release, failed requests in red. A slider steps a cursor
    through the history."""
    if decisions.empty:
        raise ValueError("no decisions to draw: run_history() returned an empty frame")
    frame = decisions.reset_index(drop=True)
    errors = frame["error"].notna() if "error" in frame else pd.Series(False, index=frame.index)
    offset_of: dict[Any, int] = {}
    a_x, a_y, a_c, a_h, f_x, f_y, f_h, e_x, e_h = ([] for _ in range(9))
    for i, r in enumerate(frame.to_dict("records")):
        if errors[i]:
            e_x.append(i)
            e_h.append(f"#{i} {r['op']} id {r['id']}: <b>failed</b><br>{_wrap(str(r['error']))}")
        elif r["op"] == "alloc":
            off = int(r["offset_from_base"])
            offset_of[r["id"]] = off
            a_x.append(i)
            a_y.append(off)
            a_c.append(int(r["chunk_id"]))
            a_h.append(f"#{i} alloc id {r['id']}: {r['size']} B, align {r['align']}<br>"
                       f"chunk {r['chunk_id']} (base {fmt_addr(int(r['chunk_base']))}) "
                       f"off {r['off']:#x}<br>ptr {fmt_addr(int(r['ptr']))}<br>"
                       f"offset from base {off:+#x}"
                       + (f"<br>{r['chunks_created']} chunk(s) created"
                          if r.get("chunks_created") else "")
                       + (f", {r['pages_populated']} page(s) populated"
                          if r.get("pages_populated") else ""))
        elif r["id"] in offset_of:
            off = offset_of[r["id"]]
            f_x.append(i)
            f_y.append(off)
            f_h.append(f"#{i} free id {r['id']} ({r['size']} B) at offset {off:+#x}"
                       + (f"<br>{r['chunks_destroyed']} chunk(s) destroyed"
                          if r.get("chunks_destroyed") else ""))
    unit_name, unit = _unit(max([abs(v) for v in a_y] + [1]))
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=a_x, y=[v / unit for v in a_y], mode="markers", name="alloc",
        marker={"color": a_c, "colorscale": "Viridis", "size": 7,
                "colorbar": {"title": {"text": "chunk id"}}, "showscale": True},
        hovertext=a_h, hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=f_x, y=[v / unit for v in f_y], mode="markers", name="free",
        marker={"symbol": "x-thin-open", "size": 8, "color": "#555"},
        hovertext=f_h, hoverinfo="text"))
    fig.add_trace(go.Scatter(
        x=e_x, y=[0] * len(e_x), mode="markers", name="failed",
        marker={"symbol": "x", "size": 10, "color": PROBLEM_COLOR},
        hovertext=e_h, hoverinfo="text"))
    n = len(frame)
    fig.update_layout(
        title={"text": f"Offsets from pcpu_base_addr over a replayed history ({n} requests)"},
        hovermode="closest", margin={"t": 110},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"},
        shapes=[{"type": "line", "xref": "x", "yref": "paper", "x0": n - 1, "x1": n - 1,
                 "y0": 0, "y1": 1, "line": {"color": "#888", "dash": "dot"}}],
        sliders=[_cursor_slider(frame, errors)] if n <= 2000 else [])
    fig.update_xaxes(title_text="request (replay order)", range=[-1, n])
    fig.update_yaxes(title_text=f"offset from pcpu_base_addr ({unit_name})")
    return fig


def _cursor_slider(frame: pd.DataFrame, errors: pd.Series) -> dict[str, Any]:
    """A slider moving one cursor line (relayout of shapes[0]) through the requests."""
    steps = []
    for i, r in enumerate(frame.to_dict("records")):
        what = "failed" if errors[i] else (
            f"chunk {r['chunk_id']}, offset {int(r['offset_from_base']):+#x}"
            if r["op"] == "alloc" else "freed")
        steps.append({"method": "relayout", "label": str(i),
                      "args": [{"shapes[0].x0": i, "shapes[0].x1": i,
                                "title.text": f"Request {i}: {r['op']} id {r['id']}, "
                                              f"{r.get('size')} B → {what}"}]})
    return {"active": len(steps) - 1, "steps": steps, "pad": {"t": 50},
            "currentvalue": {"prefix": "request "}}


# --- replay --------------------------------------------------------------------------------

def cost_by_class(cost: WorkloadCost) -> pd.DataFrame:
    """Cycles of a cost replay per variant and instruction class (the ops.Insn cost
    classes, plus "resched" for the rare preempt_schedule_notrace() path): each
    (flavour, op, size) count of `cost.per_op` times its sequence's class costs.
    Sums per variant equal `cost.totals["cycles"]`."""
    s = cost.settings
    rows = []
    for v in s.variants:
        acc: dict[str, float] = {}
        for r in cost.per_op.itertuples():
            seq = op_sequence(r.op, int(r.size), flavour=r.flavour, scheme=v.scheme,
                              atomics=v.atomics, preempt=s.preempt, kernel=s.kernel,
                              local=s.local)
            for insn in seq.insns:
                acc[insn.cls] = acc.get(insn.cls, 0.0) + r.ops * insn_cost(
                    insn, s.core, s.lse_execution)
            resched = op_cost(seq, s.core, lse_execution=s.lse_execution,
                              resched_probability=s.resched_probability).resched
            if resched:
                acc["resched"] = acc.get("resched", 0.0) + r.ops * resched
        rows += [{"variant": v.label, "class": c, "cycles": n} for c, n in acc.items()]
    return pd.DataFrame(rows, columns=["variant", "class", "cycles"])


def workload_cost_figure(cost: WorkloadCost) -> go.Figure:
    """A cost replay: total cycles per scheme variant stacked by instruction class,
    cycles per CPU and per op (flavour, op, size) for each variant."""
    classes = cost_by_class(cost)
    labels = list(cost.totals["variant"])
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]],
                        vertical_spacing=0.18, horizontal_spacing=0.1,
                        subplot_titles=("total, by instruction class", "per CPU",
                                        "per op (flavour, op, size)"))
    palette = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
               "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94",
               "#f7b6d2", "#dbdb8d", "#9edae5")
    order = classes.groupby("class", sort=False)["cycles"].sum().sort_values(ascending=False)
    for i, cls in enumerate(order.index):
        part = classes[classes["class"] == cls].set_index("variant")["cycles"]
        y = [float(part.get(lab, 0.0)) for lab in labels]
        fig.add_trace(go.Bar(
            x=labels, y=y, name=cls, legendgroup="class",
            legendgrouptitle={"text": "instruction class"},
            marker={"color": palette[i % len(palette)]},
            hovertemplate=f"{cls}: %{{y:,.0f}} cycles<extra>%{{x}}</extra>"), row=1, col=1)
    variant_colors = dict(zip(labels, ("#08519c", "#6baed6", "#a50f15", "#fb6a4a",
                                       "#54278f", "#9e9ac8"), strict=False))
    per_op = cost.per_op
    op_labels = [f"{f} {o} {s}B" for f, o, s in
                 zip(per_op["flavour"], per_op["op"], per_op["size"], strict=True)]
    for lab in labels:
        color = variant_colors.get(lab, "#444")
        fig.add_trace(go.Bar(
            x=[f"CPU {c}" for c in cost.per_cpu["cpu"]], y=cost.per_cpu[lab], name=lab,
            legendgroup="variant", legendgrouptitle={"text": "variant"},
            marker={"color": color}, offsetgroup=lab,
            hovertemplate=f"{lab}: %{{y:,.0f}} cycles<extra>%{{x}}</extra>"), row=1, col=2)
        fig.add_trace(go.Bar(
            x=op_labels, y=per_op[lab], name=lab, legendgroup="variant", showlegend=False,
            marker={"color": color}, offsetgroup=lab,
            customdata=per_op["ops"],
            hovertemplate=(f"{lab}: %{{y:,.0f}} cycles over %{{customdata:,}} ops"
                           "<extra>%{x}</extra>")), row=2, col=1)
    fig.update_layout(
        barmode="relative", hovermode="closest", height=760,
        title={"text": f"Cost replay: {cost.events:,} this_cpu ops on {cost.nr_cpus} CPUs, "
               f"core {cost.settings.core.name}, preempt={cost.settings.preempt}<br><sup>"
               + ", ".join(f"{r.variant} {r.cycles_per_op:.2f}" for r in
                           cost.totals.itertuples()) + " cycles/op</sup>"})
    # Bars of one offsetgroup stack, different offsetgroups stand side by side: the
    # classes stack into one bar per variant, the per-CPU and per-op bars are grouped.
    for trace in fig.data:
        if trace.legendgroup == "class":
            trace.offsetgroup = "total"
    fig.update_xaxes(title_text="scheme variant", row=1, col=1)
    fig.update_xaxes(title_text="CPU", row=1, col=2)
    fig.update_xaxes(title_text="op", row=2, col=1)
    for row, col in ((1, 1), (1, 2), (2, 1)):
        fig.update_yaxes(title_text="cycles", row=row, col=col)
    return fig


_VERDICT_OK = ("ok",)
_MOVE_RE = re.compile(r"^(?:(?P<irq>irq) on CPU(?P<icpu>\d+): (?P<iop>.*)"
                      r"|(?P<mtask>\S+) migrates CPU(?P<src>\d+) -> CPU(?P<dst>\d+)"
                      r"|(?P<task>[^@]+)@CPU(?P<cpu>\d+): (?P<insn>.*))$")


def _verdict_of(outcome: str) -> str:
    return outcome.split(" (", 1)[0]


def interleaving_figure(data: pd.DataFrame | Exploration, verdict: str | None = None
                        ) -> go.Figure:
    """Where a preemption makes an update go to the wrong CPU.

    From `interleave.preemption_points()`: task A's instructions along a timeline and,
    at each point between two of them, the outcome if A is preempted there (task B
    runs on CPU0, A resumes on CPU1) and if an interrupt runs there; red points end
    in a lost, misplaced or torn update, grey ones cannot happen.
    From `interleave.explore()`/`random_schedules()`: the example schedule reaching
    `verdict` (default: the first that is not "ok") as instructions on CPU lanes.
    """
    if isinstance(data, Exploration):
        return _schedule_figure(data, verdict)
    points = data
    n = len(points)
    insns = list(points["after"].iloc[1:])
    fig = go.Figure()
    fig.add_trace(go.Scatter(
        x=[i + 0.5 for i in range(len(insns))], y=["task A on CPU0"] * len(insns),
        mode="markers", marker={"symbol": "square", "size": 10, "color": "#6baed6"},
        hovertext=[f"instruction {i + 1}: {t}" for i, t in enumerate(insns)],
        hoverinfo="text", name="instruction"))
    lanes = (("migrate", "preempted, resumes on CPU1"), ("irq", "interrupt on CPU0"))
    for column, lane in lanes:
        outcomes = list(points[column])
        colors = [NA_COLOR if o == "-" else OK_COLOR if _verdict_of(o) in _VERDICT_OK
                  else PROBLEM_COLOR for o in outcomes]
        fig.add_trace(go.Scatter(
            x=list(points["point"]), y=[lane] * n, mode="markers",
            marker={"size": 13, "color": colors, "line": {"color": "#333", "width": 1}},
            hovertext=[f"point {p} (after {a}):<br>"
                       + ("cannot happen here (preemption disabled)" if o == "-" else o)
                       for p, a, o in zip(points["point"], points["after"], outcomes,
                                          strict=True)],
            hoverinfo="text", name=lane))
    bad = sum(_verdict_of(o) not in (*_VERDICT_OK, "-")
              for col, _ in lanes for o in points[col])
    fig.update_layout(
        title={"text": "Preemption and interrupt points of one this_cpu op"
               f"<br><sup>{bad} point(s) in red lose or misplace an update; grey: cannot "
               "happen (preempt count raised)</sup>"},
        hovermode="closest", height=560, margin={"b": 200},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    # Points sit on whole numbers (point p follows p instructions); each instruction is
    # labelled on the axis between the points around it.
    fig.update_xaxes(title_text="task A's instructions in order (points lie between them)",
                     range=[-0.5, n - 0.5], tickvals=[i + 0.5 for i in range(len(insns))],
                     ticktext=insns, tickangle=-50, showgrid=False)
    fig.update_yaxes(title_text="case", categoryorder="array",
                     categoryarray=[lane for _, lane in reversed(lanes)] + ["task A on CPU0"])
    return fig


def _schedule_figure(result: Exploration, verdict: str | None) -> go.Figure:
    examples = result.examples
    if verdict is None:
        verdict = next((v for v in sorted(examples) if v != "ok"), "ok")
    if verdict not in examples:
        raise ValueError(f"no example schedule reaches {verdict!r}; verdicts seen: "
                         f"{sorted(examples)}")
    moves = examples[verdict]
    xs, ys, texts, who = [], [], [], []
    mx: list[float | None] = []
    my: list[str | None] = []
    mh: list[str | None] = []
    for step, move in enumerate(moves):
        m = _MOVE_RE.match(move)
        if m is None:
            continue
        if m["irq"]:
            xs.append(step)
            ys.append(f"CPU{m['icpu']}")
            texts.append(f"irq: {m['iop']}")
            who.append("irq")
        elif m["mtask"]:
            mx += [step, step, None]
            my += [f"CPU{m['src']}", f"CPU{m['dst']}", None]
            mh += [move, move, None]
        else:
            xs.append(step)
            ys.append(f"CPU{m['cpu']}")
            texts.append(f"{m['task']}: {m['insn']}")
            who.append(m["task"])
    names = sorted(set(who))
    palette = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b")
    fig = go.Figure()
    for i, name in enumerate(names):
        idx = [k for k, w in enumerate(who) if w == name]
        fig.add_trace(go.Scatter(
            x=[xs[k] for k in idx], y=[ys[k] for k in idx], mode="markers",
            marker={"size": 11, "color": palette[i % len(palette)]}, name=f"task {name}",
            hovertext=[f"step {xs[k]}: {texts[k]} on {ys[k]}" for k in idx],
            hoverinfo="text"))
    fig.add_trace(go.Scatter(x=mx, y=my, mode="lines+markers", name="migration",
                             line={"color": PROBLEM_COLOR if verdict != "ok" else "#444",
                                   "dash": "dash"},
                             hovertext=mh, hoverinfo="text"))
    cpus = sorted({y for y in ys} | {y for y in my if y}, reverse=True)
    fig.update_layout(
        title={"text": f"Schedule reaching “{verdict}”<br><sup>{_wrap(result.summary(), 120)}"
               "</sup>"},
        hovermode="closest", height=360 + 60 * len(cpus), margin={"b": 220},
        legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"})
    steps = sorted(xs + [x for x in mx if x is not None])
    labels = {x: f"{x}: {t}" for x, t in zip(xs, texts, strict=True)}
    labels.update({x: f"{x}: {h}" for x, h in zip(mx, mh, strict=True) if x is not None})
    fig.update_xaxes(title_text="step of the schedule", tickvals=steps,
                     ticktext=[labels[x] for x in steps], tickangle=-50)
    fig.update_yaxes(title_text="CPU", categoryorder="array", categoryarray=cpus)
    return fig
