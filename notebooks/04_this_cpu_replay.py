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
# # this_cpu_*() operations: sequences, safety, cost
#
# What does a `this_cpu_*()` op compile to on arm64 today and with the local mapping, when
# is it safe under preemption and migration, and what would a workload save? The local
# scheme's sequence is an assumption (patch 11/11 is not public): `ops.DEFAULT_LOCAL_SCHEME`.

# %%
from percpu_explorer.kernel import preempt_choices
from percpu_explorer.thiscpu.cost import price_workload, reviewer_view, summary_table
from percpu_explorer.thiscpu.interleave import preemption_points, safety_table
from percpu_explorer.thiscpu.ops import DEFAULT_LOCAL_SCHEME, op_cost, op_sequence
from percpu_explorer.thiscpu.workloads import read_workload
from percpu_explorer.ui.plots import interleaving_figure, set_renderer, workload_cost_figure

set_renderer()
today = op_sequence("add", 8, scheme="today", atomics="lse", preempt="full")
local = op_sequence("add", 8, scheme="local", atomics="lse", preempt="full")
print(today)
print(local)
DEFAULT_LOCAL_SCHEME

# %%
(op_cost(today).text(), op_cost(local).text())

# %% [markdown]
# Which preemption models a kernel builds decides whether there is a bracket to save: Debian's
# 6.12 is PREEMPT_VOLUNTARY without a preempt count (the bracket is a compiler barrier); from
# v7.0 (commit 7dadeaa6e851) arm64 builds only full, lazy and rt, all with a count.

# %%
{kernel: preempt_choices(kernel) for kernel in ("6.12", "7.1")}

# %% [markdown]
# Preempted and migrated at every instruction: `__this_cpu_add` without a guard loses or
# misplaces updates; `this_cpu_add` does not.

# %%
interleaving_figure(preemption_points("add", 8, flavour="__this_cpu", preempt="full"))

# %%
safety_table()

# %% [markdown]
# A workload from `data/workloads/`, priced under every scheme, and what the reported
# 13-18% sys-time saving would need.

# %%
workload = read_workload("../data/workloads/mix.parquet")
cost = price_workload(workload)
workload_cost_figure(cost)

# %%
summary_table(cost)

# %% [markdown]
# Try it: another workload, core profile or preemption model.

# %%
from percpu_explorer.ui.widgets import CostExplorer

CostExplorer()

# %%
view = reviewer_view(cost)
print(view.text())

# %%
assert op_cost(local).cycles < op_cost(today).cycles  # preemptible kernel: the saving exists
