"""The percpu allocator explorer (`AllocatorExplorer`)."""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ...kernel import (
    KernelConfig,
)
from ...percpu import (
    DEFAULT_STATIC_SIZE,
    PercpuAllocator,
    boot_percpu,
    run_history,
    synthetic_history,
)
from .. import plots
from .panel import ControlPanel, Explorer, _choose


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
