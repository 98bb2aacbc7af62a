"""The address-space explorer (`LayoutExplorer`)."""

from __future__ import annotations

import html
from collections import Counter
from typing import Any

import ipywidgets as W
import plotly.graph_objects as go
from IPython.display import HTML

from ...kernel import (
    KernelConfig,
    Layout,
    compute_layout,
)
from .. import plots
from .panel import ControlPanel, Explorer


def problems_line(layouts: list[tuple[str, Layout]]) -> str | None:
    """One line for the panel: how many problems, their codes with counts; None if none."""
    parts = []
    for label, lay in layouts:
        if lay.problems:
            counts = Counter(f.code for f in lay.problems)
            codes = ", ".join(c + (f" ×{n}" if n > 1 else "") for c, n in counts.items())
            parts.append(f"{len(lay.problems)} problem{'s' if len(lay.problems) > 1 else ''} "
                         f"in the {label} layout ({codes})")
    if not parts:
        return None
    return "; ".join(parts) + ": red in the map, listed under it."


def problems_html(layouts: list[tuple[str, Layout]]) -> str:
    """The problems as a folded HTML list, each with the kernel's numbers ("" if none)."""
    items = [f"<li><b>{html.escape(f.code)}</b> ({html.escape(', '.join(f.regions))}): "
             f"{html.escape(f.message)}</li>"
             for _, lay in layouts for f in lay.problems]
    if not items:
        return ""
    return (f"<details class='pe-problems'><summary style='color:{plots.PROBLEM_COLOR}'>"
            f"{len(items)} problem{'s' if len(items) > 1 else ''} in this layout, in the "
            f"kernel's numbers</summary><ul>{''.join(items)}</ul></details>")


def problems_details(*layouts: Layout) -> HTML:
    """The problems of `layouts` as a folded list for a notebook cell."""
    return HTML(problems_html([(lay.config.label(), lay) for lay in layouts]))


class LayoutExplorer(Explorer):
    """The address-space map; with local percpu, mainline and patched side by side.
    Every panel control changes the map or its title (CPUs size the fixmap from v6.16).
    A broken patched layout is drawn red, counted in the panel and listed, folded, under
    the map."""

    name = "address space"

    def __init__(self, panel: ControlPanel | None = None, **values: Any) -> None:
        self.details = W.HTML("")
        super().__init__(panel, **values)

    def _build(self, cfg: KernelConfig) -> go.Figure:
        if cfg.local_percpu:
            mainline = compute_layout(cfg.replace(local_percpu=False))
            patched = compute_layout(cfg)
            layouts = [("mainline", mainline), ("patched", patched)]
            fig = plots.address_space_map(mainline, patched)
        else:
            layout = compute_layout(cfg)
            layouts = [("mainline", layout)]
            fig = plots.address_space_map(layout)
        self.notice = problems_line(layouts)
        self.details.value = problems_html(layouts)
        return fig

    @property
    def widget(self) -> W.VBox:
        """The explorer's widget with the folded problem list under the map."""
        box = super().widget
        if self.details not in box.children:
            box.children = (*box.children, self.details)
        return box
