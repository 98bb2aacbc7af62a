"""The this_cpu workload cost explorer (`CostExplorer`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ...kernel import (
    KernelConfig,
    preempt_choices,
)
from ...paths import WORKLOADS_DIR
from ...thiscpu import (
    CORE_PROFILES,
    DEFAULT_CORE,
    DEFAULT_PREEMPT,
    DEFAULT_VHE,
    PATTERNS,
    WorkloadCost,
    generate,
    price_workload,
    read_workload,
)
from .. import plots
from .panel import ControlPanel, Explorer


class CostExplorer(Explorer):
    """Cost of a this_cpu workload per scheme variant: a file of data/workloads or a
    generated pattern (on the panel's CPUs), on a core profile and preemption model;
    the kernel is the panel's."""

    name = "cost"

    def __init__(self, panel: ControlPanel | None = None, *,
                 workload_dir: str | Path = WORKLOADS_DIR, units: int = 100,
                 **values: Any) -> None:
        self.workload_dir = Path(workload_dir)
        self.units = units
        self._cache: dict[tuple[Any, ...], pd.DataFrame] = {}
        self.cost: WorkloadCost | None = None
        super().__init__(panel, **values)

    def workload_choices(self) -> list[tuple[str, str]]:
        """(label, key) of every workload: files first, then generator patterns."""
        files = sorted(p for p in self.workload_dir.glob("*")
                       if p.suffix in (".csv", ".parquet"))
        return ([(p.name, f"file:{p.name}") for p in files]
                + [(f"generate {name}", f"generate:{name}") for name in PATTERNS])

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        choices = self.workload_choices()
        return {
            "workload": W.Dropdown(options=choices, value=choices[0][1], description="workload"),
            "core": W.Dropdown(options=tuple(CORE_PROFILES), value=DEFAULT_CORE,
                               description="core"),
            "preempt": W.Dropdown(options=preempt_choices(self.panel.config.kernel),
                                  value=DEFAULT_PREEMPT, description="preempt"),
            "vhe": W.Checkbox(value=DEFAULT_VHE, description="VHE (offset in tpidr_el2)",
                              indent=False),
        }

    def _sync_controls(self, cfg: KernelConfig) -> None:
        """Offer only the preemption models arm64 builds in the panel's kernel
        (`kernel.preempt_choices`); keep the choice if still offered, else full."""
        preempt = self.controls["preempt"]
        offered = preempt_choices(cfg.kernel)
        if tuple(preempt.options) != offered:
            value = preempt.value if preempt.value in offered else DEFAULT_PREEMPT
            preempt.options = offered
            preempt.value = value

    def workload(self, cfg: KernelConfig) -> pd.DataFrame:
        """The chosen workload frame (cached)."""
        key = self.controls["workload"].value
        kind, name = key.split(":", 1)
        cache_key = (key, cfg.nr_cpus if kind == "generate" else None)
        if cache_key not in self._cache:
            if kind == "file":
                frame = read_workload(self.workload_dir / name)
            else:
                frame = generate(name, self.units, nr_cpus=cfg.nr_cpus, seed=1)
            self._cache[cache_key] = frame
        return self._cache[cache_key]

    def _build(self, cfg: KernelConfig) -> go.Figure:
        cost = price_workload(self.workload(cfg), self.controls["core"].value,
                              preempt=self.controls["preempt"].value, kernel=cfg.kernel,
                              vhe=self.controls["vhe"].value)
        fig = plots.workload_cost_figure(cost)
        self.cost = cost  # only once the figure is drawn
        return fig
