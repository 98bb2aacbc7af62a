"""Controls: one shared `ControlPanel` and explorers that redraw a plotly `FigureWidget`.

The panel offers only what arch/arm64/Kconfig allows for the chosen kernel: VA bits per
page size and era (`config.va_bits_choices`), `vabits_actual` only for 52-bit kernels,
the KASAN modes `config.kasan_choices` allows, and local percpu (RFC 02/11) only from
v6.9. When a parent control changes, its dependants get their new choices first and
the explorers are told once, so no broken intermediate configuration is ever drawn.

Each explorer (`LayoutExplorer`, `PageTableExplorer`, `AllocatorExplorer`,
`CostExplorer`) keeps one `FigureWidget` and replaces its data and layout inside
`batch_update()` on every change. A failing update leaves the previous figure in place
and shows a readable message in the panel; `error` holds it for tests. `set(**values)`
drives an explorer from code, e.g. ``LayoutExplorer().set(page_size=16384, va_bits=48,
local_percpu=True)``.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ..kernel import (
    CHOICE_FIELDS,
    DEFAULT_KERNEL,
    KASAN_MODES,
    KERNEL_RELEASES,
    NR_CPUS_RANGE,
    PAGE_SIZE_NAMES,
    PAGE_SIZES,
    KernelConfig,
    KernelPageTables,
    Walk,
    build_first_chunk,
    choices_for,
    compute_layout,
    parse_addr,
    preempt_choices,
    resolve_choices,
    unit_addresses,
    va_bits_choices,
)
from ..paths import WORKLOADS_DIR
from ..percpu import (
    DEFAULT_STATIC_SIZE,
    PercpuAllocator,
    boot_percpu,
    run_history,
    synthetic_history,
)
from ..thiscpu import (
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
from . import plots

KERNELS: tuple[str, ...] = KERNEL_RELEASES
PANEL_KEYS: tuple[str, ...] = CHOICE_FIELDS
DEFAULT_NR_CPUS = 4
# data/workloads of the repository (an editable install); pass workload_dir otherwise.
WORKLOAD_DIR = WORKLOADS_DIR

_ERROR_STYLE = "color:#d62728"
_WARN_STYLE = "color:#b35900"


def _choose(name: str, value: Any, choices: tuple[Any, ...], why: str) -> Any:
    if value not in choices:
        raise ValueError(f"{name} {value!r} is not offered {why}; choose one of "
                         f"{', '.join(str(c) for c in choices)}")
    return value


def resolve_panel(current: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """Panel values after `changes`, as `kernel.resolve_choices` applies the Kconfig
    rules parents first: an explicit value must pass them (ValueError naming the
    choices otherwise); a dependant not given keeps its value if still offered, else
    moves to the nearest offered one (48 bits, no KASAN, mainline)."""
    return resolve_choices(current, changes)


class ControlPanel:
    """The shared controls: kernel era, page size, VA bits, vabits_actual, KASAN, local
    percpu and number of CPUs, plus a `message` line where explorers report failures.

    Only valid combinations can be selected: dependants change their choices before
    listeners (`on_change`) are called, once per user action or `set()`.
    """

    def __init__(self, *, kernel: str = DEFAULT_KERNEL, page_size: int | str = 4096,
                 va_bits: int = 48, vabits_actual: int | None = None, kasan: str = "none",
                 local_percpu: bool = False, nr_cpus: int = DEFAULT_NR_CPUS) -> None:
        self._listeners: list[Callable[[], None]] = []
        self._messages: dict[str, str] = {}
        self._quiet = False
        style = {"description_width": "110px"}
        self.kernel = W.Dropdown(options=KERNELS, value=DEFAULT_KERNEL, description="kernel",
                                 style=style)
        self.page_size = W.Dropdown(options=[(PAGE_SIZE_NAMES[p], p) for p in PAGE_SIZES],
                                    value=4096, description="page size", style=style)
        self.va_bits = W.Dropdown(options=va_bits_choices(4096), value=48,
                                  description="VA bits", style=style)
        self.vabits_actual = W.Dropdown(options=(48,), value=48, description="hardware VA bits",
                                        style=style)
        self.kasan = W.Dropdown(options=KASAN_MODES, value="none", description="KASAN",
                                style=style)
        self.local_percpu = W.Checkbox(value=False, description="local percpu (RFC 02/11)",
                                       indent=False)
        low, high = NR_CPUS_RANGE
        self.nr_cpus = W.BoundedIntText(value=DEFAULT_NR_CPUS, min=low, max=high,
                                        description="CPUs", style=style)
        self.message = W.HTML("")
        self._values = {"kernel": DEFAULT_KERNEL, "page_size": 4096, "va_bits": 48,
                        "vabits_actual": 48, "kasan": "none", "local_percpu": False,
                        "nr_cpus": DEFAULT_NR_CPUS}
        self.set(kernel=kernel, page_size=page_size, va_bits=va_bits,
                 vabits_actual=vabits_actual, kasan=kasan, local_percpu=local_percpu,
                 nr_cpus=nr_cpus)
        for key in PANEL_KEYS:
            getattr(self, key).observe(self._on_widget, names="value")
        self.widget = W.VBox([
            W.HBox([self.kernel, self.page_size, self.va_bits]),
            W.HBox([self.vabits_actual, self.kasan, self.nr_cpus, self.local_percpu]),
            self.message,
        ])

    # --- values ------------------------------------------------------------------------

    @property
    def values(self) -> dict[str, Any]:
        """The panel's values by KernelConfig field name."""
        return dict(self._values)

    @property
    def config(self) -> KernelConfig:
        """The `KernelConfig` the panel shows."""
        return KernelConfig(**self._values)

    def choices(self, key: str) -> tuple[Any, ...]:
        """Values a control currently offers (for local_percpu: (False,) before v6.9)."""
        if key == "local_percpu":
            return (False, True) if not self.local_percpu.disabled else (False,)
        if key == "nr_cpus":
            return NR_CPUS_RANGE
        if key == "vabits_actual" and self.vabits_actual.layout.display == "none":
            return ()
        return tuple(v for _, v in getattr(self, key).options)

    def set(self, _notify: bool = True, **values: Any) -> ControlPanel:
        """Set controls from code (parents first); an invalid value raises ValueError,
        shown in `message` too, and changes nothing."""
        try:
            new = resolve_panel(self._values, values)
            KernelConfig(**new)
        except ValueError as exc:
            self.report("panel", str(exc))
            raise
        self.report("panel", "")
        changed = new != self._values
        self._values = new
        self._sync_widgets()
        if changed and _notify:
            self._notify()
        return self

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback()` after every change of the configuration."""
        self._listeners.append(callback)

    # --- messages ----------------------------------------------------------------------

    def report(self, source: str, text: str, *, level: str = "error") -> None:
        """Show (or with "" clear) `source`'s message in the panel; HTML-escaped."""
        if text:
            style = _ERROR_STYLE if level == "error" else _WARN_STYLE
            body = html.escape(text).replace("\n", "<br>")
            name = html.escape(source)
            self._messages[source] = f"<div style='{style}'><b>{name}:</b> {body}</div>"
        else:
            self._messages.pop(source, None)
        self.message.value = "".join(self._messages.values())

    # --- internals ---------------------------------------------------------------------

    def _on_widget(self, change: dict[str, Any]) -> None:
        if self._quiet:
            return
        key = next(k for k in PANEL_KEYS if getattr(self, k) is change["owner"])
        try:
            self.set(**{key: change["new"]})
        except ValueError:
            self._sync_widgets()  # back to the last valid values; the message says why

    def _sync_widgets(self) -> None:
        """Push `_values` and their choices into the widgets without firing listeners."""
        v = self._values
        offered = choices_for(v)
        self._quiet = True
        try:
            self.kernel.value = v["kernel"]
            self.page_size.value = v["page_size"]
            self._set_dropdown(self.va_bits, offered["va_bits"], v["va_bits"])
            self._set_dropdown(self.vabits_actual, offered["vabits_actual"], v["vabits_actual"])
            self.vabits_actual.layout.display = "" if v["va_bits"] == 52 else "none"
            self.vabits_actual.disabled = len(offered["vabits_actual"]) == 1
            self._set_dropdown(self.kasan, offered["kasan"], v["kasan"])
            self.local_percpu.disabled = offered["local_percpu"] == (False,)
            self.local_percpu.value = v["local_percpu"]
            self.nr_cpus.value = v["nr_cpus"]
        finally:
            self._quiet = False

    @staticmethod
    def _set_dropdown(widget: W.Dropdown, choices: tuple[Any, ...], value: Any) -> None:
        options = [(str(c), c) for c in choices]
        if list(widget.options) != options:
            widget.options = options
        widget.value = value

    def _notify(self) -> None:
        for callback in list(self._listeners):
            callback()

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)


# --- explorers -----------------------------------------------------------------------------

class Explorer:
    """A panel, the explorer's own controls and one FigureWidget redrawn on every change.

    Subclasses define `_build(cfg) -> go.Figure` and their `controls` (name -> widget).
    """

    name = "explorer"

    def __init__(self, panel: ControlPanel | None = None, **values: Any) -> None:
        self.panel = panel if panel is not None else ControlPanel()
        self.figure = go.FigureWidget()
        self.error: str | None = None
        self.notice: str | None = None
        self.updates = 0
        self._quiet = False
        self._widget: W.VBox | None = None
        self.controls: dict[str, W.ValueWidget] = self._make_controls()
        for control in self.controls.values():
            control.observe(self._on_control, names="value")
        self.panel.on_change(self.update)
        if values:
            self.set(**values)
        else:
            self.update()

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        return {}

    def _build(self, cfg: KernelConfig) -> go.Figure:
        raise NotImplementedError

    def _sync_controls(self, cfg: KernelConfig) -> None:
        """Adjust the explorer's own controls' choices to the configuration."""

    @property
    def config(self) -> KernelConfig:
        return self.panel.config

    def set(self, **values: Any) -> Explorer:
        """Set panel controls and the explorer's own controls from code, then redraw once.
        Invalid values raise ValueError (and show in the panel) without changing anything."""
        own = {k: values.pop(k) for k in list(values) if k in self.controls}
        unknown = sorted(set(values) - set(PANEL_KEYS))
        if unknown:
            message = (f"unknown control(s) {unknown}; {self.name} has "
                       f"{list(PANEL_KEYS) + list(self.controls)}")
            self.panel.report(self.name, message)
            raise ValueError(message)
        before = self.panel.values
        if values:
            self.panel.set(_notify=False, **values)
        self._quiet = True
        try:
            self._sync_controls(self.panel.config)
            for key, value in own.items():  # all checked before any is set
                options = getattr(self.controls[key], "options", None)
                if options is not None:
                    offered = [o[1] if isinstance(o, tuple) else o for o in options]
                    _choose(key, value, tuple(offered), f"by {self.name}")
            for key, value in own.items():
                self.controls[key].value = value
        except ValueError as exc:
            if self.panel.values != before:  # undo the panel part, silently
                self.panel.set(_notify=False, **before)
                self._sync_controls(self.panel.config)
            self.panel.report(self.name, str(exc))
            raise
        finally:
            self._quiet = False
        if self.panel.values != before:
            self.panel._notify()  # every explorer on the panel, this one included
        else:
            self.update()
        return self

    def update(self) -> bool:
        """Rebuild the figure from the current controls; on failure keep the previous
        figure and show the error in the panel. True if the figure was replaced."""
        try:
            cfg = self.panel.config
            self._quiet = True
            try:
                self._sync_controls(cfg)
            finally:
                self._quiet = False
            fig = self._build(cfg)
        except Exception as exc:  # shown in the panel, never as a traceback
            self.error = f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError) \
                else str(exc)
            self.panel.report(self.name, f"cannot draw this configuration: "
                              f"{self.error.rstrip('.')}. The previous figure stays.")
            return False
        self.error = None
        with self.figure.batch_update():
            self.figure.data = ()
            self.figure.add_traces(list(fig.data))
            self.figure.layout = fig.layout
        self.updates += 1
        self.panel.report(self.name, self.notice or "", level="warning")
        return True

    def _on_control(self, change: dict[str, Any]) -> None:
        if not self._quiet:
            self.update()

    @property
    def widget(self) -> W.VBox:
        """The panel, the explorer's controls and the figure, ready to display."""
        if self._widget is None:
            rows: list[W.Widget] = [self.panel.widget]
            if self.controls:
                rows.append(W.HBox(list(self.controls.values())))
            rows.append(self.figure)
            self._widget = W.VBox(rows)
        return self._widget

    def _ipython_display_(self) -> None:
        from copy import deepcopy

        from IPython.display import display

        # plotly copies a FigureWidget's traces into its synced state only in its own
        # _repr_mimebundle_, never called for a figure inside a box: without this copy a
        # browser's new view (Voila, JupyterLab) starts empty until the next update.
        self.figure._widget_data = deepcopy(self.figure._data)
        self.figure._widget_layout = deepcopy(self.figure._layout_obj._props)
        display(self.widget)


class LayoutExplorer(Explorer):
    """The address-space map; with local percpu, mainline and patched side by side.
    Problems of a broken patched layout are drawn red and listed in the panel."""

    name = "address space"

    def _build(self, cfg: KernelConfig) -> go.Figure:
        if cfg.local_percpu:
            mainline = compute_layout(cfg.replace(local_percpu=False))
            patched = compute_layout(cfg)
            layouts = [mainline, patched]
            fig = plots.address_space_map(mainline, patched)
        else:
            layouts = [compute_layout(cfg)]
            fig = plots.address_space_map(layouts[0])
        problems = [f"{f.code}: {f.message}" for lay in layouts for f in lay.problems]
        self.notice = (f"{len(problems)} problem(s) in this layout (red in the map):\n"
                       + "\n".join(problems)) if problems else None
        return fig


class PageTableExplorer(Explorer):
    """A page-table walk of a chosen address on a chosen CPU, over the tables of a kernel
    booted with the percpu first chunk mapped (`kernel.build_first_chunk`)."""

    name = "page tables"
    ADDRESSES = ("percpu unit (linear map)", "Local Percpu (first chunk)",
                 "Global Percpu (first chunk)", "VMALLOC_START (unmapped)", "custom")

    def __init__(self, panel: ControlPanel | None = None, **values: Any) -> None:
        self.kpt: KernelPageTables | None = None
        self.walk: Walk | None = None
        super().__init__(panel, **values)

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        return {
            "cpu": W.Dropdown(options=[0, 1], value=0, description="CPU"),
            "address": W.Dropdown(options=self.ADDRESSES, value=self.ADDRESSES[0],
                                  description="address"),
            "custom": W.Text(value="", description="custom VA", placeholder="0xffff..."),
        }

    def _sync_controls(self, cfg: KernelConfig) -> None:
        cpu = self.controls["cpu"]
        options = list(range(cfg.nr_cpus))
        if list(cpu.options) != options:
            value = min(cpu.value, cfg.nr_cpus - 1)
            cpu.options = options
            cpu.value = value
        address = self.controls["address"]
        offered = tuple(a for a in self.ADDRESSES if cfg.local_percpu or "first chunk" not in a)
        if tuple(address.options) != offered:
            value = address.value if address.value in offered else offered[0]
            address.options = offered
            address.value = value

    def address_of(self, kpt: KernelPageTables, cpu: int) -> int:
        """The VA the `address` control names for `cpu`."""
        choice = self.controls["address"].value
        if choice == "custom":
            return parse_addr(self.controls["custom"].value, name="custom VA")
        if choice.startswith("VMALLOC_START"):
            return kpt.layout.symbols["VMALLOC_START"]
        unit = unit_addresses(kpt, cpu)
        if choice.startswith("percpu unit"):
            return unit.linear
        va = unit.local if choice.startswith("Local") else unit.global_
        if va is None:
            raise ValueError(f"the {choice} exists only with local percpu (RFC 02/11)")
        return va

    def _build(self, cfg: KernelConfig) -> go.Figure:
        kpt = build_first_chunk(cfg)
        cpu = self.controls["cpu"].value
        walk = kpt.walk(cpu, self.address_of(kpt, cpu))
        fig = plots.walk_figure(walk, kpt.geometry)
        self.kpt, self.walk = kpt, walk  # only once the figure is drawn
        return fig


class AllocatorExplorer(Explorer):
    """The percpu allocator stepped through a synthetic history (`synthetic_history`):
    the chosen chunk's allocation map, or all chunks in the VA space."""

    name = "allocator"
    VIEWS = ("chunk map", "chunks")

    def __init__(self, panel: ControlPanel | None = None, *, n_alloc: int = 300,
                 n_free: int = 100, seed: int = 1, static_size: int = DEFAULT_STATIC_SIZE,
                 **values: Any) -> None:
        self.history = synthetic_history(n_alloc, n_free, seed=seed)
        self.static_size = static_size
        self.alloc: PercpuAllocator | None = None
        self.decisions: pd.DataFrame | None = None
        super().__init__(panel, **values)

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        n = len(self.history)
        return {
            "step": W.IntSlider(value=n, min=0, max=n, description="request",
                                continuous_update=False),
            "chunk": W.Dropdown(options=[0], value=0, description="chunk"),
            "view": W.ToggleButtons(options=self.VIEWS, value=self.VIEWS[0],
                                    description="view"),
        }

    def _build(self, cfg: KernelConfig) -> go.Figure:
        alloc, _ = boot_percpu(cfg, self.static_size, cfg.nr_cpus)
        decisions = run_history(alloc, self.history.iloc[: self.controls["step"].value])
        ids = [c.id for c in alloc.chunks]
        chunk = self.controls["chunk"]
        self._quiet = True
        try:
            if list(chunk.options) != ids:
                value = chunk.value if chunk.value in ids else ids[0]
                chunk.options = ids
                chunk.value = value
        finally:
            self._quiet = False
        if self.controls["view"].value == "chunks":
            fig = plots.chunks_figure(alloc)
        else:
            fig = plots.chunk_map_heatmap(alloc, chunk.value)
        self.alloc, self.decisions = alloc, decisions  # only once the figure is drawn
        return fig

    def set(self, **values: Any) -> Explorer:
        # A chunk only exists after the history has been replayed far enough.
        chunk = values.pop("chunk", None)
        super().set(**values)
        if chunk is not None:
            options = tuple(self.controls["chunk"].options)
            try:
                _choose("chunk", chunk, options, "at this step")
            except ValueError as exc:
                self.panel.report(self.name, str(exc))
                raise
            self.controls["chunk"].value = chunk
        return self


class CostExplorer(Explorer):
    """Cost of a this_cpu workload per scheme variant: a file of data/workloads or a
    generated pattern (on the panel's CPUs), on a core profile and preemption model;
    the kernel is the panel's."""

    name = "cost"

    def __init__(self, panel: ControlPanel | None = None, *,
                 workload_dir: str | Path = WORKLOAD_DIR, units: int = 100,
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


EXPLORERS: tuple[type[Explorer], ...] = (LayoutExplorer, PageTableExplorer, AllocatorExplorer,
                                         CostExplorer)
