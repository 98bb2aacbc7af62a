"""The kernel half of the VA space as a figure: a log-size schematic beside a true-scale
bar, one column per layout (`kernel.Layout`), mainline and patched side by side.

Regions come from `kernel.layout_table` (an `end` exclusive, `last` = end - 1
inclusive), problems and warnings from the layout's findings. Many rectangles go into one
bar trace (bars with `base`), never into layout shapes (plotly's shape updates grow
quadratically), so the figure stays a handful of traces whatever the number of regions.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import plotly.graph_objects as go

from ...kernel import TOP_OF_VA, Layout, fmt_addr, fmt_end, format_size, layout_table
from .common import GUARD_COLOR, PROBLEM_COLOR, hex_ticks, wrap

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


def _schematic_height(size: int) -> float:
    """Bar height of the log-size schematic: log2(bytes) - 19, at least 1 (8M -> 4,
    1TB -> 21, 128TB -> 28, 4PB -> 33)."""
    return max(1.0, math.log2(max(size, 1)) - 19)


def _layout_rows(layout: Layout) -> list[dict[str, Any]]:
    """layout_table rows with each region's symbols, problems and warnings attached;
    `lo`/`hi` are the drawn bounds (a negative region is drawn from end up to start)."""
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
            "name": name, "start": start, "end": end, "last": int(row["last"]),
            "lo": lo, "hi": hi, "magnitude": hi - lo, "size": int(row["size"]),
            "negative": negative, "guard": name == _GUARD, "region": region,
            "problems": problems, "warnings": warnings,
        })
    return rows


def _region_hover(row: dict[str, Any], label: str) -> str:
    region = row["region"]
    start_sym = f" ({region.start_symbol})" if region else ""
    end_sym = f" ({region.end_symbol})" if region else ""
    size = row["size"]
    lines = [f"<b>{row['name']}</b> — {label}",
             f"start {fmt_addr(row['start'])}{start_sym}",
             f"end {fmt_end(row['end'])}{end_sym}, exclusive",
             f"last {fmt_addr(row['last'])}, inclusive",
             f"size {format_size(size)} ({size:#x} bytes)"]
    if row["negative"]:
        lines.append(f"<b>negative</b>: end is {format_size(row['magnitude'])} below start; "
                     "the size shown is the wrapped unsigned value")
    for f in row["problems"]:
        lines.append(f"<b style='color:{PROBLEM_COLOR}'>problem {f.code}</b>: "
                     + wrap(f.message))
    for f in row["warnings"]:
        lines.append(f"warning {f.code}: " + wrap(f.message))
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
    tickvals, ticktext = hex_ticks(low, TOP_OF_VA, low)
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
            text = wrap(prefix + f.message, 110)
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
                   "ticktext": ticktext, "range": [0, float(TOP_OF_VA - low)],
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
                f"end {fmt_end(old['end'])} → {fmt_end(row['end'])}")
        for i in (0, 1):
            xs += [0.25, 0.75, None]
            ys += [tops[0][row["name"]][i], tops[1][row["name"]][i], None]
            hover += [text, text, None]
    return {"type": "scatter", "x": xs, "y": ys, "mode": "lines", "hovertext": hover,
            "hoverinfo": "text", "line": {"color": "#444", "dash": "dash", "width": 1},
            "name": name, "showlegend": bool(xs) and xaxis == "x", "legendgroup": "moved",
            "xaxis": xaxis, "yaxis": yaxis}
