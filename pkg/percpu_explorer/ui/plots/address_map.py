"""The kernel half of the VA space as a figure: a log-size schematic beside a true-scale
bar, one column per layout (`kernel.Layout`), mainline and patched side by side.

Regions come from `kernel.layout_table` (an `end` exclusive, `last` = end - 1
inclusive), problems and warnings from the layout's findings. Many rectangles go into one
bar trace (bars with `base`), never into layout shapes (plotly's shape updates grow
quadratically), so the figure stays a handful of traces whatever the number of regions.
The schematic's labels are text traces beside the bars, spread at least `_LABEL_GAP`
pixels apart so that a 4M fixmap stays as readable as a 128TB linear map.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
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


# Geometry of the figure in pixels: the schematic's labels are spread so that no two are
# closer than _LABEL_GAP, which needs the plot's height.
_HEIGHT = 720
_MARGIN = {"l": 30, "r": 40, "t": 125, "b": 70}
_NOTE_LINE = 17  # px per line of the problem note under the plot
_LABEL_GAP = 15
_LABEL_FONT = 11
_BAR_WIDTH = 0.5


def _spread(wanted: list[float], gap: float, top: float) -> list[float]:
    """Label positions as close to `wanted` (ascending) as possible, at least `gap` apart
    and inside [gap / 2, top - gap / 2]."""
    placed: list[float] = []
    for y in wanted:
        placed.append(max(y, gap / 2, placed[-1] + gap if placed else y))
    for i in range(len(placed) - 1, -1, -1):
        ceiling = top - gap / 2 if i == len(placed) - 1 else placed[i + 1] - gap
        placed[i] = min(placed[i], ceiling)
    return placed


def _label_traces(rows: list[dict[str, Any]], bases: list[float], heights: list[float],
                  x: int, side: int, gap: float, top: float, name: str
                  ) -> list[dict[str, Any]]:
    """One label per named region beside its schematic bar (left if side < 0, right
    otherwise), spread to stay readable, with a thin line to the bar's middle: a line
    trace and a text trace (plotly.js redraws traces far faster than arrow annotations).
    """
    named = [(r, b + h / 2) for r, b, h in zip(rows, bases, heights, strict=True)
             if not r["guard"]]
    ys = _spread([y for _, y in named], gap, top)
    edge = x + side * _BAR_WIDTH / 2
    tail = edge + side * 0.08
    line_x: list[float | None] = []
    line_y: list[float | None] = []
    texts, colors = [], []
    for (row, middle), y in zip(named, ys, strict=True):
        size = format_size(row["magnitude"])
        texts.append(f"{row['name']} {size}" + ("<br>(negative)" if row["negative"] else ""))
        colors.append(PROBLEM_COLOR if row["problems"] else "#333")
        line_x += [edge, tail, None]
        line_y += [middle, y, None]
    common = {"showlegend": False, "hoverinfo": "skip", "xaxis": "x", "yaxis": "y"}
    return [
        {"type": "scatter", "mode": "lines", "x": line_x, "y": line_y,
         "line": {"color": "#888", "width": 0.8}, "name": f"{name} (label lines)", **common},
        {"type": "scatter", "mode": "text", "x": [tail] * len(texts), "y": ys,
         "text": texts, "textposition": "middle left" if side < 0 else "middle right",
         "textfont": {"size": _LABEL_FONT, "color": colors}, "name": f"{name} (labels)",
         "cliponaxis": False, **common},
    ]


def _problem_note(columns: list[tuple[str, Layout]]) -> list[str]:
    """One line per layout with problems: how many, their codes (with counts)."""
    lines = []
    for label, lay in columns:
        if not lay.problems:
            continue
        counts = Counter(f.code for f in lay.problems)
        codes = ", ".join(code + (f" ×{n}" if n > 1 else "") for code, n in counts.items())
        lines.append(f"<b style='color:{PROBLEM_COLOR}'>{label}: {len(lay.problems)} "
                     f"problem{'s' if len(lay.problems) > 1 else ''}</b> ({codes});<br>each "
                     "red region's hover gives the kernel's numbers")
    return lines


def address_space_map(layout: Layout, patched: Layout | None = None) -> go.Figure:
    """The kernel half of the VA space: a log-size schematic (every region readable,
    from 8M to petabytes) beside a true-scale bar, one column per layout.

    With `patched`, mainline and patched stand side by side: regions keep their colour
    in both columns and dashed connectors link the boundaries of each region that moved
    or changed size. Each region of the schematic is labelled beside its bar (labels
    spread apart so small regions stay readable). Regions named by a problem are red,
    with the problem in the hover; a one-line note per layout under the plot counts the
    problems. Two bar traces per layout and a connector trace per panel.
    """
    cfg = layout.config
    columns = [("mainline" if patched is not None else cfg.label(), layout)]
    if patched is not None:
        columns.append(("patched (RFC 02/11)", patched))
    col_rows = [_layout_rows(lay) for _, lay in columns]
    low = min([r["lo"] for rows in col_rows for r in rows]
              + [lay.symbols["_PAGE_OFFSET(vabits_actual)"] for _, lay in columns])
    notes = _problem_note(columns)
    note_px = _NOTE_LINE * sum(n.count("<br>") + 1 for n in notes)
    plot_px = _HEIGHT - _MARGIN["t"] - _MARGIN["b"]
    # Built as plain dicts and validated once by go.Figure: make_subplots and
    # add_trace would validate the figure again on every call.
    data: list[dict[str, Any]] = []
    tops: list[dict[str, tuple[float, float]]] = []  # schematic bounds by region
    spans: list[dict[str, tuple[float, float]]] = []  # true-scale bounds by region
    col_heights = [[_schematic_height(r["magnitude"]) for r in rows] for rows in col_rows]
    top = max(sum(h) for h in col_heights)
    gap = _LABEL_GAP * top / plot_px
    labels: list[dict[str, Any]] = []
    for x, ((label, _), rows, heights) in enumerate(zip(columns, col_rows, col_heights,
                                                        strict=True)):
        bases = [0.0, *itertools.accumulate(heights)][:-1]
        hover = [_region_hover(r, label) for r in rows]
        colors = [_region_color(r) for r in rows]
        # white edges keep neighbouring red regions apart
        marker = {"color": colors, "line": {"color": "white", "width": 1}}
        data.append({
            "type": "bar", "x": [x] * len(rows), "y": heights, "base": bases,
            "width": _BAR_WIDTH, "name": f"{label} (schematic)", "marker": marker,
            "hovertext": hover, "hoverinfo": "text", "showlegend": False, "xaxis": "x",
            "yaxis": "y"})
        side = -1 if len(columns) == 2 and x == 0 else 1
        labels += _label_traces(rows, bases, heights, x, side, gap, top, label)
        tops.append({r["name"]: (b, b + h) for r, b, h in zip(rows, bases, heights, strict=True)
                     if not r["guard"]})
        spans.append({r["name"]: (float(r["lo"] - low), float(r["hi"] - low)) for r in rows
                      if not r["guard"]})
        data.append({
            "type": "bar", "x": [x] * len(rows), "y": [float(r["magnitude"]) for r in rows],
            "base": [float(r["lo"] - low) for r in rows], "width": _BAR_WIDTH,
            "name": f"{label} (true scale)", "marker": marker, "opacity": 0.85,
            "hovertext": hover, "hoverinfo": "text", "showlegend": False,
            "xaxis": "x2", "yaxis": "y2"})
    data += labels
    if patched is not None:
        data.append(_connectors(col_rows, tops, "x", "y", "moved or resized"))
        data.append(_connectors(col_rows, spans, "x2", "y2", "moved or resized (true scale)"))

    names = ["mainline", "patched"] if patched is not None else [cfg.label()]
    # the schematic leaves room beside each bar for its labels
    room = 1.45 if len(columns) == 2 else 1.1
    xaxis = {"tickvals": list(range(len(columns))), "ticktext": names,
             "title": {"text": "layout"}, "fixedrange": True}
    tickvals, ticktext = hex_ticks(low, TOP_OF_VA, low)
    if ticktext and int(ticktext[-1], 16) == TOP_OF_VA:  # the last byte, not 2**64
        tickvals[-1], ticktext[-1] = float(TOP_OF_VA - 1 - low), fmt_addr(TOP_OF_VA - 1)
    # Short lines: a figure drawn before its cell is on screen is 700px wide.
    title = f"Kernel address space, {cfg.label()}, kernel {cfg.kernel}, {cfg.nr_cpus} CPUs"
    how = ("mainline vs patched (RFC 02/11); dashed lines: regions that moved or changed "
           "size;<br>" if patched is not None else "")
    how += "red: a problem. Hover a region for its bounds and symbols."
    annotations = [
        {"text": "log-size schematic (height: log₂ bytes − 19),<br>lowest address at the "
                 "bottom", "x": 0.25, "y": 1.0,
         "xref": "paper", "yref": "paper", "xanchor": "center", "yanchor": "bottom",
         "showarrow": False, "font": {"size": 14}},
        {"text": "true scale", "x": 0.71, "y": 1.0, "xref": "paper", "yref": "paper",
         "xanchor": "center", "yanchor": "bottom", "showarrow": False, "font": {"size": 14}},
    ]
    if notes:
        annotations.append({
            "text": "<br>".join(notes), "xref": "paper", "yref": "paper", "x": 0, "y": 0,
            "yshift": -55, "xanchor": "left", "yanchor": "top", "showarrow": False,
            "align": "left", "font": {"size": 12}})
    fig_layout = {
        "title": {"text": f"{title}<br><sup>{how}</sup>", "yref": "container",
                  "y": 1 - 30 / (_HEIGHT + note_px), "yanchor": "top"},
        "barmode": "overlay", "bargap": 0,
        "hovermode": "closest", "showlegend": False, "height": _HEIGHT + note_px,
        "margin": {**_MARGIN, "b": _MARGIN["b"] + note_px},
        "xaxis": {**xaxis, "domain": [0.0, 0.5], "anchor": "y",
                  "range": [-room, len(columns) - 1 + room]},
        "yaxis": {"domain": [0.0, 1.0], "anchor": "x", "showticklabels": False,
                  "showgrid": False, "range": [0, top], "fixedrange": True},
        "xaxis2": {**xaxis, "domain": [0.6, 0.82], "anchor": "y2",
                   "range": [-0.5, len(columns) - 0.5]},
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
            "name": name, "showlegend": False,
            "xaxis": xaxis, "yaxis": yaxis}
