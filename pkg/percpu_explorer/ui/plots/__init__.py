"""Plotly figures of the models: pure functions from model data to `go.Figure`.

Nothing here computes kernel numbers; every value comes from the model objects
(`kernel.Layout`, `kernel.Walk`/`KernelPageTables`, `percpu.PercpuAllocator` and
`run_history()` output, `thiscpu.WorkloadCost`, `thiscpu.preemption_points()`/`explore()`).

  address_map   the kernel VA space, mainline and patched (`address_space_map`)
  page_tables   a walk and the table pages per level and CPU
  allocator     chunks, one chunk's allocation map, offsets of a request history
  this_cpu      a priced workload, preemption points and schedules
  common        colours, `set_renderer`, `to_png`, axis helpers

Addresses print as 0x-prefixed 16-digit hex (`kernel.fmt_addr`); an `end` is exclusive
and `last` (= end - 1) inclusive, as in `kernel.layout_table`. Sizes use memory.rst's
binary units (`kernel.format_size`). Problems are drawn in `PROBLEM_COLOR` (red).

Figures work in JupyterLab and, after `set_renderer()`, in notebooks exported with
nbconvert; `to_png()` writes a static image with kaleido and a system Chromium.
"""

from .address_map import address_space_map
from .allocator import (
    FREED_COLOR,
    MARK_COLOR,
    chunk_map_heatmap,
    chunks_figure,
    config_text,
    offsets_figure,
)
from .common import PROBLEM_COLOR, set_renderer, to_png
from .page_tables import page_tables_figure, walk_figure
from .this_cpu import interleaving_figure, workload_cost_figure

__all__ = [
    "FREED_COLOR",
    "MARK_COLOR",
    "PROBLEM_COLOR",
    "address_space_map",
    "chunk_map_heatmap",
    "chunks_figure",
    "config_text",
    "interleaving_figure",
    "offsets_figure",
    "page_tables_figure",
    "set_renderer",
    "to_png",
    "walk_figure",
    "workload_cost_figure",
]
