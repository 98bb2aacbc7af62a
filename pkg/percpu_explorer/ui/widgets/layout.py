"""The address-space explorer (`LayoutExplorer`)."""

from __future__ import annotations

import plotly.graph_objects as go

from ...kernel import (
    KernelConfig,
    compute_layout,
)
from .. import plots
from .panel import Explorer


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
