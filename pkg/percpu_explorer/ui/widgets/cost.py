"""The this_cpu workload cost explorer (`CostExplorer`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ...captures import (
    DEFAULT_CENSUS,
    CensusBundle,
    census_phases,
    census_workload,
    load_census,
)
from ...errors import InputError
from ...kernel import (
    KernelConfig,
    preempt_choices,
)
from ...paths import WORKLOADS_DIR
from ...thiscpu import (
    CORE_PROFILES,
    DEFAULT_CORE,
    DEFAULT_PREEMPT,
    PATTERNS,
    WorkloadCost,
    generate,
    price_workload,
    read_workload,
    variants_for,
)
from .. import plots
from .panel import ControlPanel, Explorer

PREHEAT_ENV = "VOILA_PREHEAT"  # "True" in a kernel Voila starts for its pool


class CostExplorer(Explorer):
    """Cost of a this_cpu workload per scheme variant, on a core profile and preemption
    model. The panel's kernel decides the preemption models offered, the percpu.h code
    and whether the local scheme exists (v6.9+); its CPUs are the machine the workload
    runs on: a generated pattern puts `units_per_cpu` units of work on each, a file keeps
    its own CPUs (the others stay idle) and needs at least as many.

    Page size, VA bits, KASAN and the local percpu tick change no instruction of an op,
    so the panel does not offer them (`PANEL_FIELDS`); both schemes are always priced.
    Nor is VHE offered: tpidr_el1 and tpidr_el2 are read at the same cost (the price is
    `thiscpu.DEFAULT_VHE`'s).
    """

    name = "cost"
    PANEL_FIELDS = ("kernel", "nr_cpus")

    def __init__(self, panel: ControlPanel | None = None, *,
                 workload_dir: str | Path = WORKLOADS_DIR, units_per_cpu: int = 25,
                 warm: bool | None = None, **values: Any) -> None:
        self.workload_dir = Path(workload_dir)
        self.units_per_cpu = units_per_cpu
        self._cache: dict[tuple[Any, ...], pd.DataFrame] = {}
        self._censuses: dict[str, CensusBundle] = {}  # loaded once: their site tables
        self._raised: str | None = None
        self.cost: WorkloadCost | None = None
        super().__init__(panel, **values)
        if warm is None:  # Voila's pre-started kernels run the notebook before a visitor
            warm = os.environ.get(PREHEAT_ENV) == "True"
        if warm:
            self.warm()

    def warm(self) -> None:
        """Read now every workload of the menu that is read from disk (the files, read
        and checked; the census's phases, counted from its site table), and draw a
        counted workload's figure once: a visitor's first pick of each then costs what
        later picks cost. In a class, a visitor's first census pick took 130-200 ms on
        an idle core and the other picks 40-80 ms; a pre-started kernel does this while
        nobody waits."""
        census = None
        for _, key in self.workload_choices():
            if key.startswith("generate:"):
                continue  # made for the panel's CPUs, in a few ms
            try:
                frame = self._frame(key, 0)
            except (InputError, ValueError, OSError):
                continue  # _build reports it when picked
            if census is None and "counted_in" in frame.attrs:
                census = frame
        if census is not None:
            plots.workload_cost_figure(self._price(census, self.panel.config))

    def _price(self, frame: pd.DataFrame, cfg: KernelConfig) -> WorkloadCost:
        """`frame` priced on the chosen core and preemption model, for the panel's kernel
        (its scheme variants) and CPUs."""
        return price_workload(frame, self.controls["core"].value,
                              preempt=self.controls["preempt"].value, kernel=cfg.kernel,
                              variants=variants_for(cfg.kernel), nr_cpus=cfg.nr_cpus)

    def workload_choices(self) -> list[tuple[str, str]]:
        """(label, key) of every workload: generator patterns first (they run on the
        panel's CPUs), then the files of `workload_dir`, then the workloads of the
        shipped census (ops counted in a real kernel: `captures.census_workload`)."""
        files = sorted(p for p in self.workload_dir.glob("*")
                       if p.suffix in (".csv", ".parquet"))
        try:
            phases = [p for p in census_phases(DEFAULT_CENSUS) if p != "boot"]
        except InputError:  # no census shipped with this installation
            phases = []
        return ([(f"generate {name}", f"generate:{name}") for name in PATTERNS]
                + [(p.name, f"file:{p.name}") for p in files]
                + [(f"census {p} (counted in 6.12)", f"census:{DEFAULT_CENSUS}/{p}")
                   for p in phases])

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        choices = self.workload_choices()
        return {
            "workload": W.Dropdown(options=choices, value=choices[0][1], description="workload"),
            "core": W.Dropdown(options=tuple(CORE_PROFILES), value=DEFAULT_CORE,
                               description="core"),
            "preempt": W.Dropdown(options=preempt_choices(self.panel.config.kernel),
                                  value=DEFAULT_PREEMPT, description="preempt"),
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

    def _frame(self, key: str, nr_cpus: int) -> pd.DataFrame:
        kind, name = key.split(":", 1)
        cache_key = (key, nr_cpus if kind == "generate" else None)
        if cache_key not in self._cache:
            if kind == "file":
                frame = read_workload(self.workload_dir / name)
            elif kind == "census":
                bundle, phase = name.rsplit("/", 1)
                if bundle not in self._censuses:
                    self._censuses[bundle] = load_census(bundle)
                frame = census_workload(self._censuses[bundle], phase)
            else:
                frame = generate(name, self.units_per_cpu * nr_cpus, nr_cpus=nr_cpus, seed=1)
            self._cache[cache_key] = frame
        return self._cache[cache_key]

    def workload(self, cfg: KernelConfig) -> pd.DataFrame:
        """The chosen workload frame (cached): a generated pattern on the panel's CPUs, or
        a file."""
        return self._frame(self.controls["workload"].value, cfg.nr_cpus)

    def cpus_needed(self, key: str | None = None) -> int:
        """CPUs the workload `key` (default: the chosen one) has ops on; a generated
        pattern runs on any number."""
        key = self.controls["workload"].value if key is None else key
        if not key.startswith("file:"):
            return 1
        return int(self._frame(key, 0)["cpu"].max()) + 1

    def set(self, **values: Any) -> CostExplorer:
        """As `Explorer.set`; a workload file given without `nr_cpus` raises the panel's
        CPUs to the file's if it has more."""
        key = values.get("workload")
        if isinstance(key, str) and key.startswith("file:") and "nr_cpus" not in values \
                and (self.workload_dir / key[5:]).is_file():
            need = self.cpus_needed(key)
            if need > self.panel.config.nr_cpus:
                values["nr_cpus"] = need
                self._raised = f"{key[5:]} has ops on {need} CPUs: CPUs set to {need}."
        super().set(**values)
        return self

    def _on_control(self, change: dict[str, Any]) -> None:
        """A workload file with ops on more CPUs than the panel has raises the panel's
        CPUs (every explorer on the panel redraws); other changes redraw this one."""
        if self._quiet:
            return
        if change["owner"] is self.controls["workload"] and not self._reverting:
            key = change["new"]
            try:
                need = self.cpus_needed(key)
            except ValueError:
                need = 1  # _build reports the unreadable file
            have = self.panel.config.nr_cpus
            if need > have:
                self._raised = f"{key[5:]} has ops on {need} CPUs: CPUs set from {have} to {need}."
                self.panel.set(nr_cpus=need)
                return
        self.update()

    def _build(self, cfg: KernelConfig) -> go.Figure:
        self.notice, self._raised = self._raised, None
        key = self.controls["workload"].value
        frame = self.workload(cfg)
        if "counted_in" in frame.attrs:
            self.notice = (f"Ops counted in {frame.attrs['counted_in']}, under QEMU, all "
                           f"CPUs together; priced for kernel {cfg.kernel} with "
                           f"{self.controls['preempt'].value} preemption, which assumes its "
                           "code runs as often.")
        need = int(frame["cpu"].max()) + 1
        if need > cfg.nr_cpus:
            raise InputError(f"workload {key.split(':', 1)[1]} has ops on CPUs 0..{need - 1}: "
                             f"CPUs must be {need} or more for it", field="nr_cpus")
        cost = self._price(frame, cfg)
        fig = plots.workload_cost_figure(cost)
        self.cost = cost  # only once the figure is drawn
        return fig
