"""Page-table figures: one walk level by level (`kernel.Walk`), and the table pages of a
`kernel.KernelPageTables` per level and per CPU, shared against private (RFC 01/11's
per-CPU roots and the Local Percpu tables).
"""

from __future__ import annotations

from collections.abc import Iterable

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...kernel import Geometry, KernelPageTables, Walk, fmt_addr, format_size
from .common import OK_COLOR, PRIVATE_COLOR, PROBLEM_COLOR, SHARED_COLOR, TOP_LEGEND

_KIND_COLORS = {"table": SHARED_COLOR, "block": OK_COLOR, "page": OK_COLOR,
                "invalid": PROBLEM_COLOR}


def _text_position(index: int, ptrs: int) -> str:
    """Where a step's label goes: right of a point near the left edge, left of one near
    the right edge (a centred label there would be cut at the plot's edge)."""
    if index < ptrs * 0.15:
        return "top right"
    if index > ptrs * 0.85:
        return "top left"
    return "top center"


def walk_figure(walk: Walk, geometry: Geometry | None = None, *, nr_cpus: int | None = None,
                address: str | None = None) -> go.Figure:
    """A page-table walk level by level: the entry read at each level marked at its
    index (hover: index, table PA, entry PA, descriptor, what it leads to, owner),
    ending at the output address or the faulting level. With the `geometry` the walk
    ran on (`kpt.geometry`), each level's table is drawn as a bar of its entries and
    the title names the configuration; `nr_cpus` (the CPUs the tables were built for)
    and `address` (what the address is, e.g. "Local Percpu (first chunk)") join it."""
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
    traces = []
    if geometry is not None:
        ptrs = {lv.hw_level: lv.ptrs for lv in geometry.levels}
        traces.append(go.Bar(
            y=levels, x=[ptrs[s.hw_level] for s in steps], base=[0] * len(steps),
            orientation="h", width=0.5,
            marker={"color": [PRIVATE_COLOR if s.owner != "shared" else SHARED_COLOR
                              for s in steps]},
            opacity=0.25, hovertext=table_hover, hoverinfo="text", name="table (entries)",
        ))
    width = max((lv.ptrs for lv in geometry.levels), default=1) if geometry is not None \
        else max([s.index for s in steps] + [1])
    traces.append(go.Scatter(
        y=levels, x=[s.index for s in steps], mode="lines+markers+text",
        text=[f"[{s.index}] {s.kind}" for s in steps], cliponaxis=False,
        textposition=[_text_position(s.index, width) for s in steps],
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
    pad = width * 0.03
    # Short lines: a figure drawn before its cell is on screen is 700px wide.
    what = f"the {address} address" if address else "address"
    cpus = f" of {nr_cpus}" if nr_cpus is not None else ""
    config = ""
    if geometry is not None:
        cfg = geometry.config
        roots = "one root per CPU (RFC 01/11)" if cfg.local_percpu else "one shared root"
        config = f"<br>{cfg.label()}, kernel {cfg.kernel}, {roots}"
    # The figure and its layout in one go: each update_*() call re-validates through
    # plotly's update machinery, several times the cost of the constructor.
    return go.Figure(data=traces, layout={
        "yaxis": {"title": {"text": "level (root first)"}, "autorange": "reversed"},
        "xaxis": {"title": {"text": "entry index in the table (entries)"},
                  "range": [-pad, width + pad]},
        "title": {"text": f"Page-table walk on CPU {walk.cpu}{cpus}: {result}<br><sup>{what} "
                  f"{fmt_addr(walk.va)}{config}<br>root (TTBR1) {walk.ttbr1:#x}; orange "
                  "tables are private to a CPU, blue ones shared</sup>", "yref": "container",
                  "y": 1 - 20 / (240 + 90 * max(len(steps), 1)), "yanchor": "top"},
        "barmode": "overlay", "height": 240 + 90 * max(len(steps), 1), "hovermode": "closest",
        "margin": {"t": 150}, "legend": TOP_LEGEND,
    })


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
    own_root = [bool(own) for own in per_cpu["own_root"]]
    reach = [int(n) for n in per_cpu["shared_reached"]]
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
        title={"text": f"Kernel page tables, {kpt.config.label()}, kernel {kpt.config.kernel}, "
               f"{kpt.nr_cpus} CPUs: {mode}"
               f"<br><sup>{kpt.total_pages} table pages of {format_size(page)}; "
               f"{kpt.entries_copied} PGD entries copied by syncs</sup>"})
    fig.update_xaxes(title_text="level", row=1, col=1)
    fig.update_xaxes(title_text="CPU", row=1, col=2)
    fig.update_yaxes(title_text=f"table pages (× {format_size(page)})", row=1, col=1)
    fig.update_yaxes(title_text=f"table pages (× {format_size(page)})", row=1, col=2)
    return fig
