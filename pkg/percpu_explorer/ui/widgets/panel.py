"""Controls: one shared `ControlPanel` and explorers that redraw a `PlotView`.

The panel offers only what arch/arm64/Kconfig allows for the chosen kernel: VA bits per
page size and era (`config.va_bits_choices`), `vabits_actual` only for 52-bit kernels,
the KASAN modes `config.kasan_choices` allows, and local percpu (RFC 02/11) only from
v6.9. When a parent control changes, its dependants get their new choices first and
the explorers are told once, so no broken intermediate configuration is ever drawn.

Each explorer (`LayoutExplorer`, `PageTableExplorer`, `AllocatorExplorer`,
`CostExplorer`) keeps one `PlotView` and sends it the whole new figure on every change
(one message; the page's plotly.js redraws only what differs). The figure always shows
what the panel shows: when an explorer cannot draw a configuration, the panel goes back
to the last one it drew and says why in plain words; `error` holds the reason for tests.
An explorer offers only the panel controls its figure depends on
(`Explorer.PANEL_FIELDS`). `set(**values)` drives an explorer from code, e.g.
``LayoutExplorer().set(page_size=16384, va_bits=48, local_percpu=True)``.
"""

from __future__ import annotations

import contextlib
import html
from collections.abc import Callable
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
import traitlets

from ...kernel import (
    CHOICE_FIELDS,
    DEFAULT_KERNEL,
    KASAN_MODES,
    KERNEL_RELEASES,
    NR_CPUS_RANGE,
    PAGE_SIZE_NAMES,
    PAGE_SIZES,
    KernelConfig,
    choices_for,
    resolve_choices,
    va_bits_choices,
)
from ...paths import WORKLOADS_DIR
from .plotview import PlotView

KERNELS: tuple[str, ...] = KERNEL_RELEASES
PANEL_KEYS: tuple[str, ...] = CHOICE_FIELDS
DEFAULT_NR_CPUS = 4
# data/workloads of the repository (an editable install); pass workload_dir otherwise.
WORKLOAD_DIR = WORKLOADS_DIR

_ERROR_STYLE = "color:#d62728"
_WARN_STYLE = "color:#b35900"


def describe(values: dict[str, Any], offered: tuple[str, ...] = PANEL_KEYS) -> str:
    """A panel's configuration in words, naming only the `offered` controls:
    "16K/48, local percpu, kernel 7.1, 4 CPUs"."""
    cfg = KernelConfig(**values)
    parts = []
    if {"page_size", "va_bits", "vabits_actual", "kasan"} & set(offered):
        parts.append(cfg.label())
    if "local_percpu" in offered and cfg.local_percpu:
        parts.append("local percpu")
    if "kernel" in offered:
        parts.append(f"kernel {cfg.kernel}")
    if "nr_cpus" in offered:
        parts.append(f"{cfg.nr_cpus} CPUs")
    return ", ".join(parts) or cfg.label()


def _plain(text: str) -> str:
    """A model's message for a person at the controls: no Python field spellings."""
    return (text.replace("local_percpu=True", "local percpu")
            .replace("local_percpu=False", "local percpu off")
            .replace("local_percpu", "local percpu"))


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
    listeners (`on_change`) are called, once per user action or `set()`. `offer` names
    the controls shown; the others stay at their values, hidden. Local percpu is kept as
    the user's wish: a kernel before v6.9 turns it off with a notice, a later kernel
    turns it back on.
    """

    def __init__(self, *, kernel: str = DEFAULT_KERNEL, page_size: int | str = 4096,
                 va_bits: int = 48, vabits_actual: int | None = None, kasan: str = "none",
                 local_percpu: bool = False, nr_cpus: int = DEFAULT_NR_CPUS,
                 offer: tuple[str, ...] = PANEL_KEYS) -> None:
        unknown = sorted(set(offer) - set(PANEL_KEYS))
        if unknown:
            raise ValueError(f"unknown control(s) {unknown} in offer; the panel has "
                             f"{', '.join(PANEL_KEYS)}")
        self.offered: tuple[str, ...] = tuple(k for k in PANEL_KEYS if k in offer)
        self._listeners: list[Callable[[], None]] = []
        self._messages: dict[str, str] = {}
        self._quiet = False
        self._wish_local = bool(local_percpu)
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
            if key not in self.offered:
                getattr(self, key).layout.display = "none"
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
        if key not in self.offered:
            return ()
        if key == "local_percpu":
            return (False, True) if not self.local_percpu.disabled else (False,)
        if key == "nr_cpus":
            return NR_CPUS_RANGE
        if key == "vabits_actual" and self.vabits_actual.layout.display == "none":
            return ()
        return tuple(o[1] if isinstance(o, tuple) else o for o in getattr(self, key).options)

    def set(self, _notify: bool = True, **values: Any) -> ControlPanel:
        """Set controls from code (parents first); an invalid value raises ValueError,
        shown in `message` too, and changes nothing."""
        try:
            new = resolve_panel(self._values, values)
            KernelConfig(**new)
        except ValueError as exc:
            self.report("panel", _plain(str(exc)))
            raise
        self.report("panel", "")
        if "local_percpu" in values:
            self._wish_local = bool(values["local_percpu"])
        elif self._wish_local and not new["local_percpu"]:
            try:  # a kernel that has the patch again: the wish comes back
                wished = resolve_panel(new, {"local_percpu": True})
                KernelConfig(**wished)
                new = wished
            except ValueError:
                pass
        if self._wish_local and not new["local_percpu"]:
            self.report("local percpu", f"local percpu (RFC 02/11) needs kernel v6.9 or "
                        f"later; it is off for {new['kernel']} and comes back when you "
                        f"choose a later kernel.", level="warning")
        else:
            self.report("local percpu", "")
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
            shown = v["va_bits"] == 52 and "vabits_actual" in self.offered
            self.vabits_actual.layout.display = "" if shown else "none"
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

# A dashboard's rows of controls, in pixels (JupyterLab's widget styles, as Chromium lays
# them out at 1280 px wide; tests/browser holds them): a row of dropdowns, text fields,
# tick boxes or sliders (--jp-widgets-inline-height 28 px and 2 px margins); a row with
# described ToggleButtons (the description goes above the buttons); the panel's empty
# message line and the output's top edge.
_ROW_PX = 32
_DESCRIBED_TOGGLES_ROW_PX = 56
_PANEL_REST_PX = 5

class Explorer:
    """A panel, the explorer's own controls and one PlotView redrawn on every change.

    Subclasses define `_build(cfg) -> go.Figure` and their `controls` (name -> widget),
    and list in `PANEL_FIELDS` the panel controls their figure depends on (a panel the
    explorer makes itself shows only those). When `_build` fails, the panel and the
    explorer's choice controls go back to what the figure was drawn from, and the panel
    says why.
    """

    name = "explorer"
    PANEL_FIELDS: tuple[str, ...] = PANEL_KEYS

    def __init__(self, panel: ControlPanel | None = None, **values: Any) -> None:
        self.panel = panel if panel is not None else ControlPanel(offer=self.PANEL_FIELDS)
        self.figure = PlotView()
        self.error: str | None = None
        self.notice: str | None = None
        self.updates = 0
        self._quiet = False
        # What the figure shows: the panel's values and the explorer's choice controls.
        self.drawn: dict[str, Any] | None = None
        self._drawn_controls: dict[str, Any] = {}
        self._reverting = False
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
        """Rebuild the figure from the current controls. If that fails, go back to the
        configuration the figure shows and say why in the panel. True if the figure was
        replaced."""
        try:
            cfg = self.panel.config
            self._quiet = True
            try:
                self._sync_controls(cfg)
            finally:
                self._quiet = False
            fig = self._build(cfg)
        except Exception as exc:  # shown in the panel, never as a traceback
            reason = _plain(str(exc)) if isinstance(exc, ValueError) \
                else f"{type(exc).__name__}: {exc}"
            self._refuse(reason)
            return False
        self.error = None
        self.figure.show(fig)
        self.updates += 1
        self.drawn = self.panel.values
        self._drawn_controls = {k: c.value for k, c in self.controls.items()
                                if not isinstance(c, W.Text)}
        if not self._reverting:
            self.panel.report(self.name, self.notice or "", level="warning")
        return True

    def _refuse(self, reason: str) -> None:
        """Back to what the figure shows, with the reason in the panel."""
        asked = describe(self.panel.values, self.panel.offered) \
            if self.drawn is None or self.panel.values != self.drawn else "this choice"
        self.error = reason
        back = ""
        if self.drawn is not None and not self._reverting:
            self._reverting = True
            try:
                own = {k: v for k, v in self._drawn_controls.items()
                       if self.controls[k].value != v}
                later = {}  # a choice the panel offers again only once it is back
                if own:
                    self._quiet = True
                    try:
                        for key, value in own.items():
                            try:
                                self.controls[key].value = value
                            except traitlets.TraitError:
                                later[key] = value
                    finally:
                        self._quiet = False
                if self.panel.values != self.drawn:
                    self.panel.set(**self.drawn)  # every explorer on the panel redraws
                    back = (f" The controls are back to "
                            f"{describe(self.panel.values, self.panel.offered)}.")
                elif own:
                    back = " The controls are back to the figure shown."
                for key, value in later.items():  # offered again: this one redraws
                    with contextlib.suppress(traitlets.TraitError):
                        self.controls[key].value = value
            finally:
                self._reverting = False
            self.error = reason
        shown = "" if back else " The figure shown is unchanged."
        self.panel.report(self.name, f"Cannot draw {asked}: {reason.rstrip('.')}.{back}"
                          f"{shown}")

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

    def controls_height(self) -> int:
        """Pixels the live widget shows above its figure in a dashboard (JupyterLab's
        widget styles, measured in Chromium: tests/browser): each row of the panel with a
        control shown and the explorer's row of controls."""
        rows = [row for row in self.panel.widget.children if isinstance(row, W.HBox)]
        shown = sum(any(c.layout.display != "none" for c in row.children) for row in rows)
        height = shown * _ROW_PX + _PANEL_REST_PX
        if self.controls:
            tall = any(isinstance(c, W.ToggleButtons) and c.description
                       for c in self.controls.values())
            height += _DESCRIBED_TOGGLES_ROW_PX if tall else _ROW_PX
        return height

    def _ipython_display_(self) -> None:
        from IPython.display import display

        # Besides the widget, the figure shown now as HTML: the app's template puts it
        # in the page itself, so a visitor sees the figure before the page's widgets are
        # live (JupyterLab shows the widget and ignores it).
        bundle = dict(self.widget._repr_mimebundle_())
        first = self.figure.first_drawing(self.controls_height())
        if first is not None:
            bundle["text/html"] = first
        display(bundle, raw=True)
