"""this_cpu_*() figures: a priced workload (`thiscpu.WorkloadCost`) per scheme variant,
instruction class, CPU and op; and where a preemption or an interrupt makes an update go
to the wrong CPU (`thiscpu.preemption_points()`, `thiscpu.explore()`).
"""

from __future__ import annotations

import functools
import json

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ...thiscpu import LOCAL_NEEDS, Exploration, WorkloadCost, cost_by_class
from .common import NA_COLOR, OK_COLOR, PROBLEM_COLOR, TOP_LEGEND, wrap

MAX_CPU_BARS = 64  # more CPUs than this: the per-CPU panel draws lines, not bars
TOP_VARIABLES = 12  # a counted workload's variables shown in its per-variable panel
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#c5b0d5", "#c49c94",
            "#f7b6d2", "#dbdb8d", "#9edae5")
# One colour per instruction class (ops.Insn cost classes, "resched" for the rare path),
# the same in every figure whatever the workload.
CLASS_COLORS = dict(zip(("load", "lse_atomic", "alu", "stx", "branch", "ldx", "mrs_tpidr",
                         "store", "mrs_sp_el0", "lse_casp", "lse_cas", "nop", "stxp", "ldxp",
                         "resched", "prfm", "call"), _PALETTE, strict=True))


def _short(label: str, width: int = 22) -> str:
    """A variable's name for a tick label: at most `width` characters."""
    return label if len(label) <= width else label[:width - 1] + "…"


@functools.lru_cache(maxsize=4)
def _cost_layout(by_variable: bool) -> str:
    """The cost figure's three panels (plotly's make_subplots), as JSON: built once per
    kind of workload, not on every redraw."""
    fig = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]],
                        vertical_spacing=0.18, horizontal_spacing=0.1,
                        subplot_titles=("total, by instruction class",
                                        f"per variable (top {TOP_VARIABLES} by ops)"
                                        if by_variable else "per CPU",
                                        "per op (flavour, op, size)"))
    fig.update_xaxes(title_text="scheme variant", row=1, col=1)
    fig.update_xaxes(title_text=None if by_variable else "CPU", row=1, col=2)
    fig.update_xaxes(title_text="op", row=2, col=1)
    for row, col in ((1, 1), (1, 2), (2, 1)):
        fig.update_yaxes(title_text="cycles (estimate)", row=row, col=col)
    return json.dumps(fig.to_plotly_json()["layout"])


# The panels' axes: (1, 1) total by class, (1, 2) per CPU or per variable, (2, 1) per op.
_TOTAL, _SPLIT, _PER_OP = ({"xaxis": "x", "yaxis": "y"}, {"xaxis": "x2", "yaxis": "y2"},
                           {"xaxis": "x3", "yaxis": "y3"})


def workload_cost_figure(cost: WorkloadCost) -> go.Figure:
    """A cost replay: total cycles per scheme variant stacked by instruction class,
    cycles per CPU and per op (flavour, op, size) for each variant.

    The title names what the replay was priced for: the ops, the CPUs the workload runs
    on (`cost.nr_cpus`, idle ones included), the kernel, core and preemption model; a
    kernel before v6.9 has no local variants and the title says why.

    The explorer redraws it on every change, so it is built as plotly JSON without
    plotly's per-property checks (tests/ui/test_plots.py validates it)."""
    classes = cost_by_class(cost)
    labels = list(cost.totals["variant"])
    # A counted workload (a census) has every CPU's ops together: per variable instead.
    by_variable = cost.counted
    traces: list[dict] = []
    # Bars of one offsetgroup stack, different offsetgroups stand side by side: the
    # classes stack into one bar per variant, the per-CPU and per-op bars are grouped.
    order = classes.groupby("class", sort=False)["cycles"].sum().sort_values(ascending=False)
    by_class: dict[str, dict[str, float]] = {}
    for variant, cls, cycles in zip(classes["variant"], classes["class"], classes["cycles"],
                                    strict=True):
        by_class.setdefault(cls, {})[variant] = float(cycles)
    for i, cls in enumerate(order.index):
        part = by_class[cls]
        traces.append(dict(
            type="bar", x=labels, y=[part.get(lab, 0.0) for lab in labels], name=cls,
            legendgroup="class", legendgrouptitle={"text": "instruction class"},
            offsetgroup="total",
            marker={"color": CLASS_COLORS.get(cls, _PALETTE[i % len(_PALETTE)])},
            hovertemplate=f"{cls}: %{{y:,.0f}} cycles<extra>%{{x}}</extra>", **_TOTAL))
    variant_colors = dict(zip(labels, ("#08519c", "#6baed6", "#a50f15", "#fb6a4a",
                                       "#54278f", "#9e9ac8"), strict=False))
    per_op = cost.per_op
    op_labels = [f"{f} {o} {s}B" for f, o, s in
                 zip(per_op["flavour"], per_op["op"], per_op["size"], strict=True)]
    many = cost.nr_cpus > MAX_CPU_BARS
    top_vars = cost.per_variable.nlargest(TOP_VARIABLES, "ops")
    for lab in labels:
        color = variant_colors.get(lab, "#444")
        if by_variable:
            traces.append(dict(
                type="bar", x=[_short(str(v)) for v in top_vars["variable"]],
                y=top_vars[lab].to_numpy(), name=lab, legendgroup="variant",
                legendgrouptitle={"text": "variant"}, marker={"color": color},
                offsetgroup=lab, customdata=top_vars["ops"].to_numpy(),
                hovertemplate=(f"{lab}: %{{y:,.0f}} cycles over %{{customdata:,}} ops"
                               "<extra>%{x}</extra>"), **_SPLIT))
        elif many:  # thousands of bars would be unreadable and slow to draw
            traces.append(dict(
                type="scatter", x=cost.per_cpu["cpu"].to_numpy(),
                y=cost.per_cpu[lab].to_numpy(), name=lab, mode="lines",
                legendgroup="variant", legendgrouptitle={"text": "variant"},
                line={"color": color, "width": 1},
                hovertemplate=f"{lab}: %{{y:,.0f}} cycles<extra>CPU %{{x}}</extra>", **_SPLIT))
        else:
            traces.append(dict(
                type="bar", x=[f"CPU {c}" for c in cost.per_cpu["cpu"]],
                y=cost.per_cpu[lab].to_numpy(), name=lab, legendgroup="variant",
                legendgrouptitle={"text": "variant"}, marker={"color": color},
                offsetgroup=lab,
                hovertemplate=f"{lab}: %{{y:,.0f}} cycles<extra>%{{x}}</extra>", **_SPLIT))
        traces.append(dict(
            type="bar", x=op_labels, y=per_op[lab].to_numpy(), name=lab,
            legendgroup="variant", showlegend=False, marker={"color": color},
            offsetgroup=lab, customdata=per_op["ops"].to_numpy(),
            hovertemplate=(f"{lab}: %{{y:,.0f}} cycles over %{{customdata:,}} ops"
                           "<extra>%{x}</extra>"), **_PER_OP))
    s = cost.settings
    busy = int((cost.per_cpu["ops"] > 0).sum())
    cpus = f"{cost.nr_cpus} CPUs" + (f" ({busy} with ops)" if busy < cost.nr_cpus else "")
    what = (f"{cost.events:,} this_cpu ops counted ({cost.source or 'a counted workload'}, "
            "all CPUs together)" if cost.counted else
            f"{cost.events:,} this_cpu ops on {cpus}")
    per_op_text = ", ".join(f"{r.variant} ~{r.cycles_per_op:.0f}"
                            for r in cost.totals.itertuples()) + " cycles/op (estimates)"
    sub = wrap(f"core {s.core.name}, preempt={s.preempt}: {per_op_text}", 100)
    if not any(v.scheme == "local" for v in s.variants):
        sub += f"<br>{LOCAL_NEEDS}: only today's scheme is priced for kernel {s.kernel}"
    layout = json.loads(_cost_layout(by_variable))
    layout.update(barmode="relative", hovermode="closest", height=780, margin={"t": 130},
                  title={"text": f"Cost replay: {what}, kernel {s.kernel}<br><sup>{sub}</sup>"})
    return go.Figure(data=traces, layout=layout, _validate=False)


def interleaving_figure(data: pd.DataFrame | Exploration, verdict: str | None = None, *,
                        name: str = "one this_cpu op") -> go.Figure:
    """Where a preemption makes an update go to the wrong CPU (`name`: the op, for the
    title).

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
        colors = [NA_COLOR if pd.isna(v) else OK_COLOR if v == "ok" else PROBLEM_COLOR
                  for v in points[f"{column}_verdict"]]
        fig.add_trace(go.Scatter(
            x=list(points["point"]), y=[lane] * n, mode="markers",
            marker={"size": 13, "color": colors, "line": {"color": "#333", "width": 1}},
            hovertext=[f"point {p} (after {a}):<br>"
                       + ("cannot happen here (preemption disabled)" if o == "-" else o)
                       for p, a, o in zip(points["point"], points["after"], outcomes,
                                          strict=True)],
            hoverinfo="text", name=lane, showlegend=False))
    # The lanes mix colours: the legend explains the colours instead.
    grey = sum(pd.isna(v) for col, _ in lanes for v in points[f"{col}_verdict"])
    for color, meaning in ((PROBLEM_COLOR, "lost, misplaced or torn update"),
                           (OK_COLOR, "every copy right"),
                           (NA_COLOR, "cannot happen (preempt count raised)")):
        if color == NA_COLOR and not grey:
            continue
        fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=meaning,
                                 marker={"size": 13, "color": color,
                                         "line": {"color": "#333", "width": 1}}))
    bad = sum(not pd.isna(v) and v != "ok"
              for col, _ in lanes for v in points[f"{col}_verdict"])
    fig.update_layout(
        title={"text": f"Preemption and interrupt points of {name}"
               f"<br><sup>{bad} point(s) in red lose or misplace an update"
               + ("; grey: cannot happen (preempt count raised)" if grey else "")
               + "</sup>"},
        hovermode="closest", height=560, margin={"b": 200},
        legend=TOP_LEGEND)
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
        if move.kind == "migrate":
            mx += [step, step, None]
            my += [f"CPU{move.cpu}", f"CPU{move.to_cpu}", None]
            mh += [str(move), str(move), None]
        else:
            xs.append(step)
            ys.append(f"CPU{move.cpu}")
            texts.append(f"{move.task}: {move.text}")
            who.append(move.task)
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
        title={"text": f"Schedule reaching “{verdict}”<br><sup>{wrap(result.summary(), 120)}"
               "</sup>"},
        hovermode="closest", height=360 + 60 * len(cpus), margin={"b": 220},
        legend=TOP_LEGEND)
    steps = sorted(xs + [x for x in mx if x is not None])
    labels = {x: f"{x}: {t}" for x, t in zip(xs, texts, strict=True)}
    labels.update({x: f"{x}: {h}" for x, h in zip(mx, mh, strict=True) if x is not None})
    fig.update_xaxes(title_text="step of the schedule", tickvals=steps,
                     ticktext=[labels[x] for x in steps], tickangle=-50)
    fig.update_yaxes(title_text="CPU", categoryorder="array", categoryarray=cpus)
    return fig
