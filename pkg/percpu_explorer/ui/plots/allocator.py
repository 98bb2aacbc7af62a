"""Percpu allocator figures: the chunks in the VA space, one chunk's allocation map
with its block hints, and the offsets a replayed request history (`percpu.run_history`)
returns, request by request. Every number comes from `percpu.PercpuAllocator`.
"""

from __future__ import annotations

import functools
import json
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from ...kernel import fmt_addr, fmt_end, format_size
from ...percpu import PCPU_MIN_ALLOC_SIZE, PercpuAllocator, chunk_row
from .common import OK_COLOR, PROBLEM_COLOR, TOP_LEGEND, axis_unit, wrap

MARK_COLOR = OK_COLOR  # what the current request allocated
OUTSIDE_COLOR = "#bdbdbd"  # bytes of a unit outside a chunk's allocation map
FREED_COLOR = "#9467bd"  # what it freed


def config_text(alloc: PercpuAllocator) -> str:
    """The configuration an allocator models, as a figure title says it: "4K/48, 4 CPUs,
    mainline v7.1" or "..., with patch 02/11 v7.1"."""
    cfg = alloc.cfg
    variant = "with patch 02/11" if alloc.local else "mainline"
    return f"{cfg.label()}, {alloc.nr_units} CPUs, {variant} v{cfg.kernel}"


def _slot(slot: Any) -> str:
    if slot is None or pd.isna(slot):
        return "on no chunk list (the reserved chunk)"
    return f"slot {int(slot)}"


def chunks_figure(alloc: PercpuAllocator, *, mark: int | None = None,
                  heading: str | None = None) -> go.Figure:
    """The allocator's chunks in the VA space, as offsets from pcpu_base_addr: one bar per
    chunk spanning all its units (marker at its start, visible at any scale), coloured by
    how full it is; hover: base address, slot, free and contiguous bytes, population.
    `mark`: a chunk to outline (e.g. the one a request touched); `heading`: the title's
    first line (default: what the figure shows)."""
    frame = alloc.chunks_frame()
    if frame.empty:
        raise ValueError("the allocator has no chunks")
    offs = [int(o) for o in frame["offset_from_base"]]
    ends = [int(e) for e in frame["end_offset_from_base"]]
    unit_name, unit = axis_unit(max(abs(v) for v in [*offs, *ends, 1]))
    labels = [f"chunk {i} ({k})" for i, k in zip(frame["id"], frame["kind"], strict=True)]
    used = [1 - f / u for f, u in zip(frame["free_bytes"], frame["unit_size"], strict=True)]
    hover = [
        "<br>".join([
            f"<b>{lab}</b>", f"base {fmt_addr(int(r.base_addr))}",
            f"offset from pcpu_base_addr {int(r.offset_from_base):+#x} "
            f"({format_size(int(r.offset_from_base))})",
            f"{int(r.nr_pages)} pages per unit, {alloc.nr_units} units, {_slot(r.slot)}",
            f"free {int(r.free_bytes)} B, largest free run {int(r.contig_bytes)} B",
            f"{int(r.nr_alloc)} allocations, {int(r.nr_populated)} pages populated, "
            f"{int(r.empty_pop_pages)} empty populated" + (", isolated" if r.isolated else "")])
        for lab, r in zip(labels, frame.itertuples(), strict=True)]
    marked = [int(i) == mark for i in frame["id"]]
    # Built as plotly JSON and taken without plotly's per-property checks: the allocator
    # explorer redraws it on every change (a test holds it valid under those checks).
    data: list[dict[str, Any]] = [
        {"type": "bar", "y": labels, "x": [(e - o) / unit for o, e in zip(offs, ends, strict=True)],
         "base": [o / unit for o in offs], "orientation": "h", "name": "chunk (all units)",
         # its colour is a scale (the colour bar), not one legend swatch
         "showlegend": False,
         # colours as strings: plotly.js warns on every bar given a number and a scale
         "marker": {"color": sample_colorscale("Blues", used),
                    "line": {"color": "#08306b", "width": 1}},  # an empty chunk stays visible
         "hovertext": hover, "hoverinfo": "text"},
        {"type": "scatter",  # carries the colour bar of the bars' scale, draws nothing
         "x": [offs[0] / unit], "y": [labels[0]], "mode": "markers", "showlegend": False,
         "hoverinfo": "skip", "name": "share used",
         "marker": {"color": [used[0]], "colorscale": _blues(), "cmin": 0, "cmax": 1,
                    "opacity": 0, "showscale": True,
                    "colorbar": {"title": {"text": "share used"}}}}]
    if any(marked):
        i = marked.index(True)
        data.append({
            "type": "bar", "y": [labels[i]], "x": [(ends[i] - offs[i]) / unit],
            "base": [offs[i] / unit], "orientation": "h", "name": f"chunk {mark}, the request's",
            "marker": {"color": "rgba(0,0,0,0)", "line": {"color": MARK_COLOR, "width": 4}},
            "hovertext": [hover[i]], "hoverinfo": "text"})
    data.append({
        "type": "scatter", "y": labels, "x": [o / unit for o in offs], "mode": "markers",
        "name": "chunk start", "marker": {"symbol": "line-ns-open", "size": 16, "color": "#333"},
        "hovertext": hover, "hoverinfo": "text"})
    area = "Global Percpu area" if alloc.local else "vmalloc"
    title, top = _title(
        heading or f"Percpu chunks of {config_text(alloc)}",
        f"{len(frame)} chunks of {alloc.nr_units} units of {format_size(alloc.unit_size)} "
        f"({config_text(alloc)})",
        f"pcpu_base_addr {fmt_addr(alloc.base_addr)}; new chunks go to {area} "
        f"[{fmt_addr(alloc.vm.start)}, {fmt_end(alloc.vm.end)})")
    height = top + 150 + 40 * len(frame)
    layout = {
        "title": _title_layout(title), "hovermode": "closest", "height": height,
        "margin": {"t": top, "b": 110}, "barmode": "overlay",
        "legend": {"orientation": "h", "yanchor": "top", "y": -60 / (height - top - 110)},
        "xaxis": {"title": {"text": f"offset from pcpu_base_addr ({unit_name})"}},
        "yaxis": {"title": {"text": "chunk"}, "autorange": "reversed"}}
    return go.Figure(data=data, layout=layout, _validate=False)


@functools.cache
def _blues_json() -> str:
    return json.dumps(go.scatter.Marker(colorscale="Blues").to_plotly_json()["colorscale"])


def _blues() -> list[list[Any]]:
    """plotly's "Blues" colour scale as its checks spell it out: [[0.0, "rgb(...)"], ...]."""
    return json.loads(_blues_json())


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
                      granularity: int | None = None, *, mark: tuple[int, int] | None = None,
                      mark_name: str = "this request", mark_color: str = MARK_COLOR,
                      heading: str | None = None) -> go.Figure:
    """One chunk's allocation map (the same in every unit) as a heatmap: a row per page,
    a cell per `granularity` bytes (default 4, the allocator's PCPU_MIN_ALLOC_SIZE, or
    coarser so a row has at most 1024 cells), coloured by the share allocated. Grey
    areas lie outside the chunk's map (start_offset/end_offset: the static or reserved
    area). A strip shows populated pages; lines mark each block's contig hint (solid),
    scan hint (dotted) and the chunk's contig hint (thick). `mark` = (offset, size): an
    area to outline (e.g. what a request allocated or freed), named `mark_name`;
    `heading`: the title's first line."""
    chunk = next((c for c in alloc.chunks if c.id == chunk_id), None)
    if chunk is None:
        raise ValueError(f"no chunk {chunk_id}; chunks are {[c.id for c in alloc.chunks]}")
    totals = chunk_row(alloc, chunk)
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
    # Cells outside the map hold 0 under a grey outline: no NaN (a browser cannot be sent
    # one) and numbers only, which plotly takes as arrays instead of checking cell by cell.
    z = (alloc_cells / np.maximum(seen_cells, 1)).reshape(chunk.nr_pages, cells_per_row)
    populated = _bits(chunk.populated, chunk.nr_pages).astype(float).reshape(-1, 1)
    x = np.arange(cells_per_row) * g + g / 2  # heatmap x is the cell's centre
    y = np.arange(chunk.nr_pages)

    # Built as plotly JSON and taken without plotly's per-property checks, on the panel
    # layout of make_subplots made once: the allocator explorer redraws it on every change
    # (a test holds it valid under those checks).
    data: list[dict[str, Any]] = [
        {"type": "heatmap", "z": populated, "x": ["populated"], "y": y, "zmin": 0, "zmax": 1,
         "showscale": False, "colorscale": [[0, "#f2f2f2"], [1, "#555555"]],
         "name": "populated", "hovertemplate": "page %{y}: populated %{z}<extra></extra>",
         **_STRIP},
        {"type": "heatmap", "z": z, "x": x, "y": y, "zmin": 0, "zmax": 1,
         "name": "allocation map", "colorscale": [[0, "#f7fbff"], [1, "#08306b"]],
         "colorbar": {"title": {"text": "share allocated"}},
         "hovertemplate": (f"page %{{y}}, the {g} B around byte %{{x}} of the page<br>"
                           "allocated %{z:.0%}<extra></extra>"), **_MAP}]
    outside = [(0, chunk.start_offset), (nbits * PCPU_MIN_ALLOC_SIZE - chunk.end_offset,
                                         chunk.end_offset)]
    ox: list[float | None] = []
    oy: list[float | None] = []
    for start, size in outside:
        if size:
            xs_, ys_ = _area_outline(start, size, page, half=0.5)
            ox += xs_
            oy += ys_
    if ox:
        data.append({
            "type": "scatter", "x": ox, "y": oy, "mode": "lines", "fill": "toself",
            "fillcolor": OUTSIDE_COLOR, "line": {"width": 0, "color": OUTSIDE_COLOR},
            "hoveron": "fills", "name": "outside the chunk's map (static or reserved area)",
            "hovertemplate": "not part of this chunk's map<extra></extra>", **_MAP})
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
        data.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines", "name": name,
                     "line": {"dash": dash, "width": width, "color": color},
                     "hoverinfo": "skip", **_MAP})
    xs, ys = [], []
    md = chunk.chunk_md
    lo, hi = md.contig_hint_start, md.contig_hint_start + md.contig_hint
    while md.contig_hint and lo < hi:
        row, col = divmod(lo, bb)
        end = min(hi, (row + 1) * bb)
        xs += [col * PCPU_MIN_ALLOC_SIZE, (col + end - lo) * PCPU_MIN_ALLOC_SIZE, None]
        ys += [row + 0.3, row + 0.3, None]
        lo = end
    data.append({"type": "scatter", "x": xs, "y": ys, "mode": "lines",
                 "name": "chunk contig hint", "line": {"width": 4, "color": "#de2d26"},
                 "hoverinfo": "skip", **_MAP})
    annotations = []
    if mark is not None:
        mx, my = _area_outline(mark[0], mark[1], page)
        data.append({"type": "scatter", "x": mx, "y": my, "mode": "lines", "fill": "toself",
                     "name": mark_name, "line": {"width": 3, "color": mark_color},
                     "opacity": 0.9, "hoverinfo": "skip", **_MAP})
        first_row, first_x = divmod(mark[0], page)
        annotations.append({"x": first_x, "y": first_row, "xref": "x2", "yref": "y2",
                            "text": mark_name, "showarrow": True, "arrowhead": 2,
                            "ax": 60 if first_x < page / 2 else -60, "ay": -24,
                            "font": {"color": mark_color}, "arrowcolor": mark_color,
                            "bgcolor": "rgba(255,255,255,0.85)"})
    title, top = _title(
        heading or (f"Allocation map of chunk {chunk.id} ({chunk.kind}), one unit: "
                    f"{chunk.nr_pages} pages of {format_size(page)}"),
        f"chunk {chunk.id} ({chunk.kind}) at {fmt_addr(chunk.base_addr)}, one unit of "
        f"{chunk.nr_pages} pages of {format_size(page)}; cell = {g} B",
        f"{totals['alloc_bytes']} B allocated, {totals['free_bytes']} B free, largest free "
        f"run {totals['contig_bytes']} B; {totals['nr_populated']} pages populated",
        config_text(alloc))
    height = top + 130 + max(14 * chunk.nr_pages, 200)
    rows = [chunk.nr_pages - 0.5, -0.5]  # page 0 on top
    layout = _map_panels()
    layout["xaxis"].update(title={"text": "populated"}, showticklabels=False)
    layout["yaxis"].update(title={"text": "page in the unit"}, autorange=False, range=rows,
                           tickmode="linear", tick0=0,
                           dtick=-(-chunk.nr_pages // 16))  # whole pages
    layout["xaxis2"].update(title={"text": "byte offset in the page (B)"}, range=[0, page])
    layout["yaxis2"].update(autorange=False, range=rows, showticklabels=False)
    layout.update(
        title=_title_layout(title), height=height, hovermode="closest",
        margin={"t": top, "b": 130},
        legend={"orientation": "h", "yanchor": "top", "y": -60 / (height - top - 130)})
    if annotations:  # plotly leaves out an empty list
        layout["annotations"] = annotations
    return go.Figure(data=data, layout=layout, _validate=False)


# The allocation map's two panels: the populated strip (x, y) and the map (x2, y2), with
# two y axes of the same fixed range rather than shared ones: plotly.js warns about a
# "matches" loop when such a figure replaces another in a figure widget.
_STRIP = {"xaxis": "x", "yaxis": "y"}
_MAP = {"xaxis": "x2", "yaxis": "y2"}


@functools.cache
def _map_panels_json() -> str:
    """The allocation map's panel layout (plotly's make_subplots), as JSON, made once."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.04, 0.96], horizontal_spacing=0.01)
    layout = fig.to_plotly_json()["layout"]
    layout.pop("template", None)  # go.Figure adds the default template
    return json.dumps(layout)


def _map_panels() -> dict[str, Any]:
    return json.loads(_map_panels_json())


def _title(heading: str, *notes: str) -> tuple[str, int]:
    """A figure title: the heading, then each note in small type, wrapped to fit a
    figure 700 pixels wide (JupyterLab's default), and the top margin it needs."""
    lines = [line for part in heading.split("<br>") for line in wrap(part, 72).split("<br>")]
    small = [line for note in notes for line in wrap(note, 100).split("<br>")]
    text = "<br>".join(lines + [f"<sup>{line}</sup>" for line in small])
    return text, 36 + 28 * len(lines) + 22 * len(small)


def _title_layout(text: str) -> dict[str, Any]:
    """The title, which plotly centres in the top margin `_title` sized for it."""
    return {"text": text}


def _area_outline(off: int, size: int, page: int, *, half: float = 0.45,
                  ) -> tuple[list[float | None], list[float | None]]:
    """Closed outlines, one per page row, of the bytes [off, off + size) of a unit drawn
    as rows of `page` bytes, `half` a row above and below the row's centre (None between
    outlines)."""
    xs: list[float | None] = []
    ys: list[float | None] = []
    lo, hi = off, off + max(size, 1)
    while lo < hi:
        row, x0 = divmod(lo, page)
        end = min(hi, (row + 1) * page)
        x1 = x0 + end - lo
        xs += [x0, x1, x1, x0, x0, None]
        ys += [row - half, row - half, row + half, row + half, row - half, None]
        lo = end
    return xs, ys


def offsets_figure(decisions: pd.DataFrame, *, label: str | None = None) -> go.Figure:
    """The offset from pcpu_base_addr of every allocation of a replayed history (the
    frame `run_history()` returns), request by request, coloured by chunk; frees
    at the offset they release, failed requests in red. A slider steps a cursor
    through the history. `label`: the configuration, for the title (`config_text`)."""
    if decisions.empty:
        raise ValueError("no decisions to draw: run_history() returned an empty frame")
    frame = decisions.reset_index(drop=True)
    errors = frame["error"].notna() if "error" in frame else pd.Series(False, index=frame.index)
    offset_of: dict[Any, int] = {}
    a_x, a_y, a_c, a_h, f_x, f_y, f_h, e_x, e_h = ([] for _ in range(9))
    for i, r in enumerate(frame.to_dict("records")):
        if errors[i]:
            e_x.append(i)
            e_h.append(f"#{i} {r['op']} id {r['id']}: <b>failed</b><br>{wrap(str(r['error']))}")
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
    unit_name, unit = axis_unit(max([abs(v) for v in a_y] + [1]))
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
        title={"text": f"Offsets from pcpu_base_addr over a replayed history ({n} requests)"
               + (f"<br><sup>{label}</sup>" if label else "")},
        hovermode="closest", margin={"t": 110},
        legend=TOP_LEGEND,
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
