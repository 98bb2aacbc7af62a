"""Controls: one shared `ControlPanel` and explorers that redraw a `PlotView`.

  plotview   `PlotView`: a plotly figure drawn by the page's plotly.js, replaced whole
  panel      `ControlPanel` (the Kconfig-checked choices) and the `Explorer` base
  layout     `LayoutExplorer`: the address-space map
  pgtables   `PageTableExplorer`: a page-table walk on a chosen CPU
  allocator  `AllocatorExplorer`: the percpu allocator stepped through a history
  cost       `CostExplorer`: a this_cpu workload priced per scheme
  exercises  `ExerciseSheet`: seeded exercises with an answer field and a Check button
"""

from __future__ import annotations

from .allocator import AllocatorExplorer
from .cost import CostExplorer
from .exercises import ExerciseSheet
from .layout import LayoutExplorer, problems_details
from .panel import (
    DEFAULT_NR_CPUS,
    KERNELS,
    PANEL_KEYS,
    ControlPanel,
    Explorer,
    resolve_panel,
)
from .pgtables import PageTableExplorer
from .plotview import PlotView

EXPLORERS: tuple[type[Explorer], ...] = (LayoutExplorer, PageTableExplorer, AllocatorExplorer,
                                         CostExplorer)

__all__ = [
    "DEFAULT_NR_CPUS",
    "EXPLORERS",
    "KERNELS",
    "PANEL_KEYS",
    "AllocatorExplorer",
    "ControlPanel",
    "CostExplorer",
    "ExerciseSheet",
    "Explorer",
    "LayoutExplorer",
    "PageTableExplorer",
    "PlotView",
    "problems_details",
    "resolve_panel",
]
