# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # this_cpu_*() operations: what they cost today and with local percpu

# %%
from html import escape

from IPython.display import HTML, display

from percpu_explorer.captures import census_workload
from percpu_explorer.thiscpu import (
    op_cost_finding,
    op_sequence,
    preempt_table,
    preemption_points,
    price_workload,
    read_workload,
    reviewer_finding,
    reviewer_table,
    reviewer_view,
    safety_finding,
    safety_table,
    scheme_table,
    sequence_finding,
    sequence_table,
    this_cpu_finding,
)
from percpu_explorer.ui.plots import interleaving_figure, set_renderer, workload_cost_figure
from percpu_explorer.ui.tables import readable
from percpu_explorer.ui.text import caption, glossary, show_finding
from percpu_explorer.ui.widgets import CostExplorer


def table(frame, nowrap=()):
    """A model's table for reading: no index, text left-aligned, `nowrap` columns kept on
    one line."""
    style = readable(frame).style.hide(axis="index").set_properties(**{"text-align": "left"})
    style = style.set_table_styles([{"selector": "th", "props": [("text-align", "left")]}])
    return style.set_properties(subset=list(nowrap), **{"white-space": "nowrap"})


set_renderer()
PREEMPT = "full"  # the preemption model every modelled kernel offers
workload = read_workload("../data/workloads/mix.parquet")
cost = price_workload(workload, preempt=PREEMPT)
finding = this_cpu_finding("add", 8, preempt=PREEMPT, cost=cost, workload="mix.parquet")
show_finding(finding, question=True)

# %%
glossary("this_cpu_*()", "__this_cpu_*() / raw_cpu_*()", "tpidr_el1", "VHE", "LSE", "LL/SC",
         "preempt count", "preemption bracket", "PREEMPT_FULL / PREEMPT_LAZY",
         "PREEMPT_NONE / PREEMPT_VOLUNTARY", "local percpu", "core profile", "sys time",
         "basis")

# %% [markdown]
# ## One op, two sequences
#
# `this_cpu_add()` of an 8-byte variable as arm64 builds it today (arch/arm64/include/asm/percpu.h)
# and as the local scheme is assumed to build it: patch 11/11 of the series is not public, so
# the model assumes `ops.DEFAULT_LOCAL_SCHEME` (the local offset loaded from
# `__per_cpu_local_off`, no preemption bracket, the atomic itself unchanged).

# %%
today = op_sequence("add", 8, scheme="today", preempt=PREEMPT)
local = op_sequence("add", 8, scheme="local", preempt=PREEMPT)
display(show_finding(sequence_finding(today, local)), show_finding(op_cost_finding(today, local)))
table(sequence_table(today, local), nowrap=("today", "local"))

# %% [markdown]
# ## Which kernels have a bracket to save
#
# Only a kernel with a preempt count has a bracket worth dropping: Debian's 6.12 is
# PREEMPT_VOLUNTARY, where the bracket is a compiler barrier only; from v7.0 (commit
# 7dadeaa6e851) arm64 builds only full, lazy and rt, all with a count. The local scheme needs
# the v6.9+ address-space layout of patch 02/11.

# %%
table(preempt_table(("6.1", "6.12", "7.1")))

# %% [markdown]
# ## Preempted at every instruction
#
# Without its guard, `__this_cpu_add()` is a plain load, add and store: a task preempted
# between them and resumed on another CPU loses or misplaces an update. `this_cpu_add()` is
# one atomic instruction inside the bracket, and stays correct.

# %%
interleaving_figure(preemption_points("add", 8, flavour="__this_cpu", preempt=PREEMPT),
                    name="__this_cpu_add()")

# %%
caption("the squares are the instructions of __this_cpu_add() in task A on CPU0; the dots "
        "are the points between them, one row per case: red where A preempted there and "
        "resumed on CPU1 (or an interrupt there) ends with a lost or misplaced update, green "
        "where every copy is right. Hover for the final values.")

# %% [markdown]
# Every op, explored exhaustively on kernel 6.12, which still has PREEMPT_NONE (arm64 lost it
# in v7.0): the interrupt columns need it.

# %%
safety = safety_table(kernel="6.12")
display(show_finding(safety_finding(safety)))
HTML(f"<details><summary>Every op's verdicts ({len(safety)} cases)</summary>"
     f"{table(safety).to_html()}</details>")

# %% [markdown]
# ## A workload priced under each scheme
#
# `data/workloads/mix.parquet`: five kernel patterns (page-fault counters, percpu_ref,
# the SLUB fast path, percpu_counter, network statistics) merged in time on 8 CPUs.

# %%
workload_cost_figure(cost)

# %%
caption("left: the cycles of the whole workload per scheme and atomics, stacked by "
        "instruction class (the preempt-count loads and stores are what local percpu "
        "removes); right: the same per CPU; bottom: per kind of op. Cycles are estimates "
        "of the core profile.")

# %%
table(scheme_table(cost))

# %% [markdown]
# ## What the saving could explain
#
# The series reports 13-18% less sys time. With d cycles saved per op at f Hz, r this_cpu
# ops per sys-second save r * d / f of it: the op rate each target needs.

# %%
view = reviewer_view(cost)
display(show_finding(reviewer_finding(view)), table(reviewer_table(view)))
HTML("<details><summary>What this rests on</summary><ul>"
     + "".join(f"<li>{escape(a)}</li>" for a in view.assumptions) + "</ul></details>")

# %% [markdown]
# ## Try it
#
# Another workload (a generated pattern runs on the panel's CPUs), core profile,
# preemption model or kernel. Before v6.9 only today's scheme is priced: local percpu needs
# the v6.9+ layout.

# %%
CostExplorer()

# %%
caption("as the workload figure above, for the choices made here; the title names the "
        "kernel, CPUs, core and preemption model priced.")

# %%
assert finding.numbers["local_cycles"] < finding.numbers["today_cycles"]  # a bracket to save
assert f"~{finding.numbers['today_cycles']:.0f} cycles" in finding.answer
assert safety_finding(safety).numbers["today_unsafe"] == 0

# %% [markdown]
# ## Real workloads counted in a real kernel
#
# Everything above prices workloads the explorer generates. Here the ops are counted:
# Debian's 6.12.117 arm64 kernel (PREEMPT_VOLUNTARY) booted under QEMU with a plugin that
# counts every execution of every this_cpu site, while the guest runs fork+exec, a pipe,
# a pipe ping-pong between two tasks, memory-cgroup create/remove, tmpfs files, page
# faults and a loopback TCP transfer (`make census`). The counts are then priced under
# each scheme, on the counted kernel and on the series' base v7.1 with PREEMPT_FULL or
# LAZY, where every op pays the preemption bracket.

# %%
from percpu_explorer.claims import census_review

review = census_review()
show_finding(review.finding(), question=True)

# %%
glossary("census", "this_cpu site", "measured", "preemption bracket", "sys time")

# %% [markdown]
# **The counts are exact.** The site that increments `pgfault` (in `handle_mm_fault()`)
# and the one that increments `pgreuse` (in `wp_page_reuse()`) are found by the address
# their access reaches, decoded from the kernel's own instructions; their counts over each
# workload equal the kernel's own /proc/vmstat deltas.

# %%
checks = review.checks[review.checks["check"].str.startswith(("pgfault", "pgreuse"))]
display(readable(checks))
caption("One row per counter and workload: census = executions of the site(s) whose access "
        "reaches that vm_event_states counter, kernel = the /proc/vmstat delta over the same "
        "workload; equal is True in every row.")

# %% [markdown]
# **What the counts say about the claim.** Per workload: the share of kernel instructions
# spent from each offset read to its access (measured), the most the local scheme removes
# (computed from the counts), the model's saving per op and the saving per op that 13% or
# 18% less kernel time would need (estimates, at 1 cycle per kernel instruction).

# %%
display(review.shown_table())
caption("Shares are of the workload's kernel instructions; 'most saved' prices every plain "
        "this_cpu read or write as this_cpu_*() with the constant-offset local scheme (the "
        "most favourable reading); the cycles per op are estimates.")

# %%
display(review.shown_top())
caption("The functions whose this_cpu sites ran most over all seven workloads; share is of "
        "all site executions.")

# %% [markdown]
# **The counted ops in the cost replay.** Each workload of the census is also a workload
# the replay above takes (`census_workload`: one row per site's op kind with its exact
# count, every CPU together). The page-fault workload, priced like mix.parquet on the
# series' base with PREEMPT_FULL (the explorer above offers every census workload too):

# %%
counted = census_workload(review.bundle, "page_faults")
counted_cost = price_workload(counted, preempt=PREEMPT)
show_finding(this_cpu_finding("add", 8, preempt=PREEMPT, cost=counted_cost,
                              workload="the counted page_faults workload"))

# %%
workload_cost_figure(counted_cost)

# %%
caption("as the workload figure above, for the ops counted in the page_faults workload; the "
        "right panel shows the per-CPU variables with the most ops (the census counts all "
        "CPUs together). Plain reads and writes are priced as this_cpu_*(), the upper bound.")

# %%
assert review.checks["equal"].all()
assert review.finding().numbers["share_max"] < 0.13
assert counted_cost.counted and counted_cost.events == int(counted["count"].sum())
