"""The figures layer: each figure built from real model objects, checked on its data."""

import itertools
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio
import pytest

from percpu_explorer import KernelConfig, compute_layout, valid_configs
from percpu_explorer.kernel import build_first_chunk, first_chunk_va, format_size
from percpu_explorer.percpu import (
    PCPU_MIN_ALLOC_SIZE,
    boot_percpu,
    run_history,
    synthetic_history,
)
from percpu_explorer.thiscpu import (
    explore,
    op_pair,
    preemption_points,
    price_workload,
    variants_for,
)
from percpu_explorer.thiscpu.workloads import synthetic
from percpu_explorer.ui import app, plotlyjs, plots

CFG = KernelConfig(page_size="4K", va_bits=48)
LOCAL = CFG.replace(local_percpu=True, nr_cpus=4)
BROKEN = KernelConfig(page_size="16K", va_bits=48, local_percpu=True)


def trace(fig, name):
    return next(t for t in fig.data if t.name == name)


def row_of(bar, name):
    """Index of the region `name` in an address-space bar trace (by its hover title)."""
    return next(i for i, h in enumerate(bar.hovertext) if h.startswith(f"<b>{name}</b>"))


@pytest.fixture(scope="module")
def booted():
    """An allocator of 4K/48 with the patch, 4 CPUs, after a replayed history."""
    alloc, _ = boot_percpu(LOCAL, 101464, 4)
    decisions = run_history(alloc, synthetic_history(300, 100, seed=1))
    return alloc, decisions


@pytest.fixture(scope="module")
def costs():
    return price_workload(synthetic(4000, nr_cpus=3, seed=2))


# --- address-space map ----------------------------------------------------------------------

def test_map_is_a_handful_of_traces_whatever_the_region_count():
    plain = plots.address_space_map(compute_layout(CFG))
    kasan = compute_layout(CFG.replace(kasan="generic"))
    both = plots.address_space_map(kasan, compute_layout(LOCAL.replace(kasan="generic")))
    assert len(plain.data) == 4  # schematic, true scale, label lines, labels
    assert len(both.data) == 10  # four per layout + the connectors of each panel
    assert len(trace(both, "patched (RFC 02/11) (schematic)").x) > 10  # regions and guards
    assert not both.layout.shapes


def test_vmalloc_hover_carries_the_exact_bounds_of_4k_48():
    # ptdump of a v6.16+ kernel, 4K/48: "---[ vmalloc() end ]---" at 0xfffffdffbf800000.
    # The hover gives VMALLOC_END as the exclusive end and end - 1 as the inclusive last.
    fig = plots.address_space_map(compute_layout(CFG))
    for bar in (b for b in fig.data if b.type == "bar"):
        hover = bar.hovertext[row_of(bar, "vmalloc")]
        assert "start 0xffff800080000000 (VMALLOC_START)" in hover
        assert "end 0xfffffdffbf800000 (VMALLOC_END), exclusive" in hover
        assert "last 0xfffffdffbf7fffff, inclusive" in hover
        assert "size ~126TB" in hover


def test_true_scale_places_regions_at_their_addresses():
    layout = compute_layout(CFG)
    fig = plots.address_space_map(layout)
    bar = trace(fig, "4K/48 (true scale)")
    axis = fig.layout.yaxis2
    low = layout.symbols["PAGE_OFFSET"]  # the lowest address drawn
    for value, text in zip(axis.tickvals, axis.ticktext, strict=True):
        assert int(value) + low == int(text, 16)
    i = row_of(bar, "vmalloc")
    assert math.isclose(bar.base[i] + low, layout.symbols["VMALLOC_START"], rel_tol=1e-15)
    assert math.isclose(bar.y[i], layout.region("vmalloc").size, rel_tol=1e-15)
    # the schematic keeps an 8M guard region readable next to ~126TB of vmalloc
    schematic = trace(fig, "4K/48 (schematic)")
    assert min(schematic.y) >= 1 and max(schematic.y) / min(schematic.y) < 20


def test_broken_patched_layout_is_drawn_red_with_its_explanations():
    mainline = compute_layout(BROKEN.replace(local_percpu=False))
    patched = compute_layout(BROKEN)
    assert patched.problems
    fig = plots.address_space_map(mainline, patched)
    flagged = {name for f in patched.problems for name in f.regions}
    for bar in (trace(fig, "patched (RFC 02/11) (schematic)"),
                trace(fig, "patched (RFC 02/11) (true scale)")):
        for i, hover in enumerate(bar.hovertext):
            name = hover.split("</b>")[0].removeprefix("<b>")
            red = bar.marker.color[i] == plots.PROBLEM_COLOR
            assert red == (name in flagged), name
            for f in patched.problems:
                if name in f.regions:
                    assert f.code in hover
                    assert f.message.split(":")[0] in hover.replace("<br>", " ")
    assert plots.PROBLEM_COLOR not in trace(fig, "mainline (schematic)").marker.color
    notes = fig.layout.annotations[-1].text.replace("<br>", " ")
    assert f"{len(patched.problems)} problems" in notes  # one compact line, not the list
    for f in patched.problems:
        assert f.code in notes
    assert notes.count("<b") == 1
    labels = trace(fig, "patched (RFC 02/11) (labels)").text
    assert any(t.startswith("vmalloc ") and "(negative)" in t for t in labels)


def test_every_region_is_labelled_beside_its_bar_and_no_two_labels_touch():
    # The schematic's 8M guard, 16M PCI I/O and ~4M fixmap bars are a few pixels high;
    # their labels sit beside the bars, spread at least _LABEL_GAP pixels apart.
    from percpu_explorer.ui.plots import address_map

    mainline, patched = compute_layout(LOCAL.replace(local_percpu=False)), compute_layout(LOCAL)
    fig = plots.address_space_map(mainline, patched)
    top = fig.layout.yaxis.range[1]
    plot_px = fig.layout.height - fig.layout.margin.t - fig.layout.margin.b
    for x, (name, lay) in enumerate((("mainline", mainline), ("patched (RFC 02/11)", patched))):
        labels = trace(fig, f"{name} (labels)")
        lines = trace(fig, f"{name} (label lines)")
        named = [r.name for r in lay.regions]
        assert [s.split(" ")[0] for s in labels.text] == [n.split(" ")[0] for n in named]
        fixmap = next(s for s in labels.text if s.startswith("fixmap"))
        assert fixmap == f"fixmap {format_size(lay.region('fixmap').size)}"
        ys = sorted(labels.y)
        gaps = [(b - a) * plot_px / top for a, b in itertools.pairwise(ys)]
        assert min(gaps) >= address_map._LABEL_GAP - 1e-6
        # mainline's labels to the left of its bar, the patched ones to the right; each
        # leader line runs from the bar's edge to its label
        edge, tail = lines.x[0], lines.x[1]
        assert (tail < edge) == (x == 0) and all(v == tail for v in labels.x)
        assert list(lines.y[1::3]) == list(labels.y)


def test_map_title_names_what_the_panel_shows():
    cfg = KernelConfig(page_size="64K", va_bits=52, vabits_actual=48, kasan="sw-tags",
                       nr_cpus=64, kernel="6.16")
    title = plots.address_space_map(compute_layout(cfg)).layout.title.text
    assert title.startswith("Kernel address space, 64K/52 (48-bit hw) KASAN sw-tags, "
                            "kernel 6.16, 64 CPUs<br>")
    both = plots.address_space_map(compute_layout(CFG), compute_layout(LOCAL))
    assert "mainline vs patched (RFC 02/11)" in both.layout.title.text
    # the top tick is the last byte of the address space, not 2**64 (which has 17 digits)
    assert plots.address_space_map(compute_layout(CFG)).layout.yaxis2.ticktext[-1] == \
        "0xffffffffffffffff"


def test_connectors_link_the_shrunk_vmalloc_area():
    # same nr_cpus: it sizes the fixmap (FIX_VNCR slots), which would move too
    mainline, patched = compute_layout(CFG), compute_layout(CFG.replace(local_percpu=True))
    fig = plots.address_space_map(mainline, patched)
    lines = trace(fig, "moved or resized")
    linked = {h.split("</b>")[0].removeprefix("<b>") for h in lines.hovertext if h}
    assert linked == {"vmalloc"}  # the only region that moved or changed size
    true_scale = trace(fig, "moved or resized (true scale)")
    low = mainline.symbols["PAGE_OFFSET"]
    ends = [y for y in true_scale.y if y is not None][2:]  # the end: mainline, patched
    assert [e + low for e in ends] == [float(mainline.symbols["VMALLOC_END"]),
                                       float(patched.symbols["VMALLOC_END"])]
    lost = mainline.symbols["VMALLOC_END"] - patched.symbols["VMALLOC_END"]
    assert f"shrank by {format_size(lost)}" in lines.hovertext[0]
    # the same region has the same colour in both columns
    old, new = trace(fig, "mainline (schematic)"), trace(fig, "patched (RFC 02/11) (schematic)")
    assert old.marker.color[row_of(old, "vmalloc")] == new.marker.color[row_of(new, "vmalloc")]


def test_every_valid_configuration_draws_mainline_and_patched():
    count = 0
    for cfg in valid_configs("7.1"):
        fig = plots.address_space_map(compute_layout(cfg),
                                      compute_layout(cfg.replace(local_percpu=True)))
        assert len(fig.data) == 10
        for bar in fig.data[:4]:
            assert all(b >= 0 for b in bar.base)
        count += 1
    assert count > 30
    for kernel in ("5.17", "6.5", "6.9"):  # the older eras, mainline only
        for cfg in valid_configs(kernel):
            assert len(plots.address_space_map(compute_layout(cfg)).data) == 4


# --- page tables ------------------------------------------------------------------------------

@pytest.mark.parametrize("page_size, va_bits", [("4K", 48), ("4K", 39), ("64K", 42)])
def test_walk_has_one_step_per_level(page_size, va_bits):
    cfg = KernelConfig(page_size=page_size, va_bits=va_bits, local_percpu=True, nr_cpus=2)
    kpt = build_first_chunk(cfg, 2)
    local, _ = first_chunk_va(kpt, 128 << 10)
    walk = kpt.walk(1, local)
    fig = plots.walk_figure(walk, kpt.geometry)
    steps = trace(fig, "entry read")
    assert len(steps.x) == len(kpt.geometry.levels) == len(walk.steps)
    assert list(steps.x) == [s.index for s in walk.steps]
    for hover, step in zip(steps.hovertext, walk.steps, strict=True):
        assert f"table PA {step.table_pa:#x}" in hover
        assert f"descriptor {step.descriptor:#018x}" in hover
    assert f"output address {walk.steps[-1].next_pa:#x}" in steps.hovertext[-1]
    assert f"PA {walk.pa:#x}" in fig.layout.title.text
    tables = trace(fig, "table (entries)")
    assert list(tables.x) == [lv.ptrs for lv in kpt.geometry.levels]


def test_walk_labels_stay_inside_the_plot_and_the_title_names_the_configuration():
    # The linear map of the first chunk starts at PAGE_OFFSET, index 0 at every level:
    # a label centred there was cut at the left edge ("able", "lock").
    kpt = build_first_chunk(LOCAL, 4)
    walk = kpt.walk(0, 0xFFFF000000000000)
    assert [s.index for s in walk.steps] == [0, 0, 0]
    fig = plots.walk_figure(walk, kpt.geometry, nr_cpus=4, address="percpu unit (linear map)")
    steps = trace(fig, "entry read")
    assert list(steps.textposition) == ["top right"] * 3
    assert steps.cliponaxis is False and fig.layout.xaxis.range[0] < 0
    title = fig.layout.title.text
    assert title.startswith("Page-table walk on CPU 0 of 4: PA 0x40000000 (2MB block)<br>"
                            "<sup>the percpu unit (linear map) address 0xffff000000000000<br>"
                            "4K/48, kernel 7.1, one root per CPU (RFC 01/11)<br>")
    local, _ = first_chunk_va(kpt, 128 << 10)  # index 506, 511, 511, 480 of 512
    high = trace(plots.walk_figure(kpt.walk(2, local), kpt.geometry), "entry read")
    assert list(high.textposition) == ["top left"] * 4


def test_walk_that_faults_ends_in_red():
    kpt = build_first_chunk(CFG.replace(nr_cpus=2), 2)
    walk = kpt.walk(0, compute_layout(CFG).symbols["VMALLOC_START"])
    assert not walk.ok
    fig = plots.walk_figure(walk)
    steps = trace(fig, "entry read")
    assert steps.marker.color[-1] == plots.PROBLEM_COLOR
    assert f"fault: no valid entry at {walk.fault_level}" in fig.layout.title.text


def test_page_tables_figure_counts_shared_and_private_pages():
    kpt = build_first_chunk(LOCAL, 4)
    counts, per_cpu = kpt.table_counts(), kpt.cpu_table_counts()
    fig = plots.page_tables_figure(kpt)
    shared = [t for t in fig.data if t.name == "shared"]
    private = [t for t in fig.data if t.name == "private"]
    assert list(shared[0].y) == list(counts["shared_pages"])
    assert list(private[0].y) == list(counts["private_pages"])
    assert list(private[1].y) == list(per_cpu["pages"])
    # CPU 0 walks from swapper_pg_dir; CPUs 1.. from their own root, below which
    # they reach every shared table (swapper_pg_dir itself excepted)
    everything = counts["shared_pages"].sum()
    assert list(shared[1].y) == [everything] + [everything - 1] * 3
    mainline = plots.page_tables_figure(build_first_chunk(CFG.replace(nr_cpus=2), 2))
    assert list(mainline.data[-1].y) == [0, 0]  # one shared root, nothing private
    assert sum(shared[0].y) + sum(private[0].y) == kpt.total_pages
    assert fig.layout.title.text.startswith(
        "Kernel page tables, 4K/48, kernel 7.1, 4 CPUs: one root per CPU (RFC 01/11)")
    two = plots.page_tables_figure(kpt, cpus=[1, 3])
    assert list(two.data[-1].x) == ["CPU 1", "CPU 3"]
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        plots.page_tables_figure(kpt, cpus=[4])


# --- allocator ------------------------------------------------------------------------------

def test_chunks_figure_places_each_chunk_at_its_offset(booted):
    alloc, _ = booted
    fig = plots.chunks_figure(alloc)
    frame = alloc.chunks_frame()
    bars = trace(fig, "chunk (all units)")
    assert len(bars.y) == len(frame) == len(alloc.chunks)
    unit = 1 << {"KB": 10, "MB": 20, "GB": 30, "TB": 40}[
        fig.layout.xaxis.title.text.rsplit("(", 1)[1].rstrip(")")]
    for base, off in zip(bars.base, frame["offset_from_base"], strict=True):
        assert math.isclose(base * unit, off)
    for base, width, end in zip(bars.base, bars.x, frame["end_offset_from_base"], strict=True):
        assert math.isclose((base + width) * unit, end)  # the bar spans every unit


def test_heatmap_allocated_cells_match_the_allocator(booted):
    alloc, _ = booted
    for chunk in alloc.chunks:
        fig = plots.chunk_map_heatmap(alloc, chunk.id, granularity=4)
        z = np.array(trace(fig, "allocation map").z, dtype=float)
        assert z.shape == (chunk.nr_pages, alloc.page_size // 4)
        allocated = sum(chunk.allocs.values())
        assert allocated == (chunk.map_bits * 4 - chunk.free_bytes
                             - chunk.start_offset - chunk.end_offset)
        assert np.isfinite(z).all()  # no NaN: a browser cannot be sent one
        assert (z == 1).sum() == allocated // PCPU_MIN_ALLOC_SIZE
        # The bytes outside the map (static or reserved area) are a grey outline over
        # cells holding 0: start_offset bytes at the start, end_offset at the end.
        outside = [t for t in fig.data if t.name.startswith("outside the chunk's map")]
        if chunk.start_offset or chunk.end_offset:
            xs = list(outside[0].x)
            widths = [xs[i + 1] - xs[i] for i in range(0, len(xs), 6)]
            assert sum(widths) == chunk.start_offset + chunk.end_offset
            assert z.reshape(-1)[: chunk.start_offset // 4].sum() == 0
        else:
            assert not outside
        populated = np.array(trace(fig, "populated").z, dtype=float)
        assert populated.sum() == chunk.nr_populated
        hinted = sum(1 for md in chunk.md_blocks if md.contig_hint)
        assert list(trace(fig, "block contig hint").x).count(None) == hinted


def test_heatmap_downsamples_large_pages():
    cfg = KernelConfig(page_size="64K", va_bits=48, local_percpu=True, nr_cpus=2)
    alloc, _ = boot_percpu(cfg, 101464, 2)
    chunk = alloc.first_chunk
    z = np.array(trace(plots.chunk_map_heatmap(alloc, chunk.id), "allocation map").z,
                 dtype=float)
    assert z.shape == (chunk.nr_pages, 1024)  # 64-byte cells
    assert np.nanmin(z) >= 0 and np.nanmax(z) <= 1
    with pytest.raises(ValueError, match="granularity 6"):
        plots.chunk_map_heatmap(alloc, chunk.id, granularity=6)
    with pytest.raises(ValueError, match="no chunk 99"):
        plots.chunk_map_heatmap(alloc, 99)


def test_offsets_figure_plots_every_decision(booted):
    _, decisions = booted
    fig = plots.offsets_figure(decisions)
    allocs = decisions[(decisions["op"] == "alloc") & decisions["error"].isna()] \
        if "error" in decisions else decisions[decisions["op"] == "alloc"]
    points = trace(fig, "alloc")
    assert list(points.x) == list(allocs.index)
    unit = 1 << {"KB": 10, "MB": 20, "GB": 30, "TB": 40}[
        fig.layout.yaxis.title.text.rsplit("(", 1)[1].rstrip(")")]
    assert [round(y * unit) for y in points.y] == [int(v) for v in allocs["offset_from_base"]]
    assert len(trace(fig, "free").x) == (decisions["op"] == "free").sum()
    assert len(fig.layout.sliders[0].steps) == len(decisions)


def test_offsets_figure_shows_failed_requests_in_red():
    alloc, _ = boot_percpu(LOCAL, 101464, 4)
    decisions = run_history(alloc, pd.DataFrame([
        {"op": "alloc", "id": 0, "size": 8, "align": 8},
        {"op": "alloc", "id": 1, "size": 1 << 20, "align": 8},
        {"op": "free", "id": 0}]))
    fig = plots.offsets_figure(decisions)
    failed = trace(fig, "failed")
    assert list(failed.x) == [1] and failed.marker.color == plots.PROBLEM_COLOR
    assert "illegal size" in failed.hovertext[0]


# --- replay ------------------------------------------------------------------------------------

def test_cost_figure_stacks_to_the_replay_totals(costs):
    fig = plots.workload_cost_figure(costs)
    classes = [t for t in fig.data if t.legendgroup == "class"]
    labels = list(costs.totals["variant"])
    stacked = np.sum([np.array(t.y, dtype=float) for t in classes], axis=0)
    assert np.allclose(stacked, costs.totals["cycles"], rtol=1e-9)
    assert all(list(t.x) == labels for t in classes)
    for lab in labels:
        per_cpu, per_op = [t for t in fig.data if t.name == lab]
        assert np.allclose(per_cpu.y, costs.per_cpu[lab])
        assert np.allclose(per_op.y, costs.per_op[lab])
    assert {t.name for t in classes} >= {"lse_atomic", "mrs_tpidr"}


def test_cost_figure_title_names_what_was_priced():
    frame = synthetic(500, nr_cpus=3, seed=2)
    title = plots.workload_cost_figure(price_workload(frame, nr_cpus=6)).layout.title.text
    assert "500 this_cpu ops on 6 CPUs (3 with ops), kernel 7.1" in title
    # before v6.9 there is no Local Percpu area (RFC 02/11): today's scheme only
    old = price_workload(frame, kernel="6.1", variants=variants_for("6.1"))
    fig = plots.workload_cost_figure(old)
    assert "local percpu needs v6.9+" in fig.layout.title.text
    assert {t.name for t in fig.data if t.legendgroup == "variant"} == {"today-lse",
                                                                       "today-llsc"}


def test_cost_figure_draws_many_cpus_as_lines():
    cost = price_workload(synthetic(2000, nr_cpus=100, seed=2), nr_cpus=128)
    per_cpu = [t for t in plots.workload_cost_figure(cost).data
               if t.legendgroup == "variant" and t.showlegend is not False]
    assert all(t.type == "scatter" and len(t.x) == 128 for t in per_cpu)


@pytest.mark.parametrize("nr_cpus", [6, 128])
def test_cost_figure_passes_plotly_validation(nr_cpus):
    """The cost figure is built without plotly's per-property checks (it is redrawn on
    every change of the explorer): plotly's validating constructor accepts all of it, and
    reads back the same figure."""
    cost = price_workload(synthetic(500, nr_cpus=3, seed=2), nr_cpus=nr_cpus)
    fig = plots.workload_cost_figure(cost)
    checked = go.Figure(fig.to_dict())  # raises on any invalid property
    assert json.loads(checked.to_json()) == json.loads(fig.to_json())
    assert len(checked.data) == len(fig.data) and fig.layout.xaxis3.title.text == "op"


def test_preemption_points_timeline_marks_wrong_cpu_updates_red():
    points = preemption_points("add", 8, flavour="__this_cpu")
    fig = plots.interleaving_figure(points)
    lane = trace(fig, "preempted, resumes on CPU1")
    wrong = [not o.startswith(("ok", "-")) for o in points["migrate"]]
    assert any(wrong)
    assert [c == plots.PROBLEM_COLOR for c in lane.marker.color] == wrong
    assert len(trace(fig, "instruction").x) == len(points) - 1
    # today's this_cpu_add under PREEMPT_FULL is safe: no red point at all
    safe = plots.interleaving_figure(preemption_points("add", 8))
    assert plots.PROBLEM_COLOR not in trace(safe, "preempted, resumes on CPU1").marker.color


def test_schedule_timeline_of_an_exploration():
    result = explore(op_pair("add", 8, flavour="__this_cpu"))
    fig = plots.interleaving_figure(result, "lost update")
    moves = result.examples["lost update"]
    drawn = sum(len(t.x) for t in fig.data if t.name.startswith("task "))
    migrations = sum(m.kind == "migrate" for m in moves)
    assert drawn + migrations == len(moves)
    assert list(trace(fig, "migration").x).count(None) == migrations
    assert "lost update" in fig.layout.title.text
    with pytest.raises(ValueError, match="verdicts seen"):
        plots.interleaving_figure(result, "torn")


def test_allocator_figures_pass_plotly_validation(booted):
    """The chunk map and chunks figures are built without plotly's per-property checks
    (the allocator explorer redraws one on every change): plotly's validating
    constructor accepts all of them, and reads back the same figure."""
    alloc, _ = booted
    figures = [plots.chunks_figure(alloc), plots.chunks_figure(alloc, mark=alloc.chunks[-1].id)]
    for chunk in alloc.chunks:
        figures.append(plots.chunk_map_heatmap(alloc, chunk.id))
        figures.append(plots.chunk_map_heatmap(alloc, chunk.id, granularity=8,
                                               mark=(chunk.start_offset, 5000), heading="h"))
    for fig in figures:
        checked = go.Figure(fig.to_dict())  # raises on any invalid property
        assert json.loads(checked.to_json()) == json.loads(fig.to_json())
        assert len(checked.data) == len(fig.data) and fig.layout.title.text


# --- every figure ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def all_figures(booted, costs):
    alloc, decisions = booted
    kpt = build_first_chunk(LOCAL, 4)
    local, _ = first_chunk_va(kpt, 128 << 10)
    return {
        "address_space_map": plots.address_space_map(compute_layout(CFG),
                                                     compute_layout(LOCAL)),
        "walk_figure": plots.walk_figure(kpt.walk(2, local), kpt.geometry),
        "page_tables_figure": plots.page_tables_figure(kpt),
        "chunks_figure": plots.chunks_figure(alloc),
        "chunk_map_heatmap": plots.chunk_map_heatmap(alloc, alloc.first_chunk.id),
        "offsets_figure": plots.offsets_figure(decisions),
        "workload_cost_figure": plots.workload_cost_figure(costs),
        "interleaving_figure": plots.interleaving_figure(preemption_points()),
    }


def test_every_figure_has_a_title_axis_labels_and_exports_to_html(all_figures):
    for name, fig in all_figures.items():
        assert fig.layout.title.text, name
        axes = [k for k in fig.layout.to_plotly_json() if k.startswith(("xaxis", "yaxis"))]
        assert axes, name
        for key in axes:
            axis = fig.layout[key]
            if axis.showticklabels is not False:  # an axis that shows values names them
                assert axis.title.text, (name, key)
        html = fig.to_html(full_html=False, include_plotlyjs=False)
        assert "Plotly.newPlot" in html, name


def test_set_renderer_keeps_figures_in_exported_notebooks(monkeypatch):
    before = pio.renderers.default
    try:
        monkeypatch.delenv("PLOTLY_RENDERER", raising=False)
        monkeypatch.delenv("PERCPU_EXPLORER_RENDERER", raising=False)
        assert plots.set_renderer() == "plotly_mimetype+percpu_notebook"
        assert pio.renderers.default == "plotly_mimetype+percpu_notebook"
        monkeypatch.setenv("PLOTLY_RENDERER", "notebook")
        assert plots.set_renderer() == "notebook"
        monkeypatch.setenv("PERCPU_EXPLORER_RENDERER", "percpu_notebook")
        assert plots.set_renderer() == "percpu_notebook"
        # the app's kernels (app.voila_env)
        monkeypatch.setenv("PERCPU_EXPLORER_RENDERER",
                           app.voila_env(base={})["PERCPU_EXPLORER_RENDERER"])
        assert plots.set_renderer() == "percpu_page"
    finally:
        pio.renderers.default = before


def test_the_shipped_cartesian_plotly_js_is_the_one_plotly_py_writes_for():
    # plotly.py writes figure JSON for the plotly.js it bundles (plotly/package_data);
    # the app's pages draw with the shipped cartesian bundle only while the versions are
    # equal (else they fall back to plotly.py's full bundle, 3x larger): update
    # ui/jupyter/voila/templates/percpu-explorer/static/ with plotly.py.
    assert plotlyjs.bundle_version(plotlyjs.CARTESIAN) == plotlyjs.plotly_py_version()
    assert plotlyjs.cartesian_matches() and plotlyjs.page_bundle() == plotlyjs.CARTESIAN
    assert "cartesian" in plotlyjs.CARTESIAN.read_text(encoding="utf-8")[:100]
    # every trace type the figures use is one the cartesian bundle draws
    used = set(re.findall(r"go\.(Scatter|Bar|Heatmap|\w+)\(", "".join(
        p.read_text() for p in Path(plots.__file__).parent.glob("*.py"))))
    assert {t.lower() for t in used} - {"figure"} <= plotlyjs.CARTESIAN_TRACES


def test_another_plotly_py_falls_back_to_its_own_full_plotly_js(monkeypatch):
    monkeypatch.setattr(plotlyjs, "plotly_py_version", lambda: "9.9.9")
    plotlyjs.cartesian_matches.cache_clear()
    try:
        assert not plotlyjs.cartesian_matches()
        assert plotlyjs.page_bundle().name == "plotly.min.js"
        fig = plots.address_space_map(compute_layout(CFG))
        renderer = pio.renderers["percpu_page"]
        renderer.inlined = False  # a new kernel
        html = renderer.to_mimebundle(fig.to_dict())["text/html"]
        assert "plotly.js v" in html  # the full plotly.js, with the first figure only
        again = renderer.to_mimebundle(fig.to_dict())["text/html"]
        assert "plotly.js v" not in again and "Plotly.newPlot" in again
    finally:
        plotlyjs.cartesian_matches.cache_clear()


def test_the_app_page_renderer_draws_with_the_page_s_plotly_js():
    """The app's static figures hold only their JSON and draw with the template's
    plotly.js (<script id="percpu-plotly">); a trace the cartesian bundle does not draw
    falls back to the renderer that inlines the full plotly.js."""
    plots.set_renderer()
    fig = plots.address_space_map(compute_layout(CFG))
    html = pio.renderers["percpu_page"].to_mimebundle(fig.to_dict())["text/html"]
    assert "plotly.js v" not in html and len(html) < 100_000
    assert 'getElementById("percpu-plotly")' in html and "Plotly.newPlot" in html
    assert plotlyjs.STATIC_PATH in html and plotlyjs.CARTESIAN.as_posix().endswith(
        plotlyjs.STATIC_PATH.removeprefix("voila/"))  # where a page without the template looks
    assert f'"{plotlyjs.plotly_py_version()}"' in html
    data = json.loads(re.search(r"fig = (\{.*?\}), config =", html, re.S).group(1))
    assert data["layout"]["title"]["text"] == fig.layout.title.text
    assert "</script>" not in html[:-len("</script>")]  # the JSON cannot end the script
    sankey = go.Figure(go.Sankey(node={"label": ["a", "b"]}, link={
        "source": [0], "target": [1], "value": [1]}))
    pio.renderers["percpu_page"].inlined = False  # a new kernel
    other = pio.renderers["percpu_page"].to_mimebundle(sankey.to_dict())["text/html"]
    assert "plotly.js v" in other


def test_the_notebook_renderer_fetches_nothing_from_outside():
    """plotly's own notebook renderer loads MathJax from cdnjs; ours draws the same figure
    (plotly.js is inlined when the renderer activates) with no address outside the page."""
    plots.set_renderer()
    fig = plots.address_space_map(compute_layout(CFG))
    plotly_html = pio.renderers["notebook"].to_mimebundle(fig.to_dict())["text/html"]
    assert "https://cdnjs.cloudflare.com/ajax/libs/mathjax/" in plotly_html
    html = pio.renderers["percpu_notebook"].to_mimebundle(fig.to_dict())["text/html"]
    assert "Plotly.newPlot" in html
    assert not re.findall(r"""\bsrc=["']?https?://""", html)
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    assert uuid.sub("", html) == uuid.sub("", plots.common._MATHJAX_CDN.sub("", plotly_html))


def test_to_png_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    with pytest.raises(RuntimeError, match=r"kaleido|BROWSER_PATH"):
        plots.to_png(plots.address_space_map(compute_layout(CFG)), tmp_path / "x.png")


def test_to_png_writes_an_image(tmp_path):
    fig = plots.address_space_map(compute_layout(CFG))
    try:
        out = plots.to_png(fig, tmp_path / "map.png", scale=1)
    except RuntimeError as exc:
        pytest.skip(str(exc))
    header = out.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", header[16:24])
    assert width > 0 and height > 0
