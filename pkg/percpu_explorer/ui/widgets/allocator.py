"""The percpu allocator explorer (`AllocatorExplorer`): a synthetic request history
(`percpu.synthetic_history`) stepped request by request.

The "request" slider says how many requests the allocator has served; the figure shows
what the last of them did. By default it follows that request: the chunk map of the chunk
it touched, with the area it allocated or freed outlined and the title saying so
("Request 50 of 400: alloc 24 bytes at offset 0x1a8 in chunk 1 (first)"). The "chunk"
dropdown pins one chunk instead (every chunk the history ever creates is offered, with
when it lives); at a step where that chunk does not exist yet, or no longer does, the
figure shows every chunk that exists and the title and panel say why. The "chunks" view
places the chunks in the VA space, the request's chunk outlined.

Panel controls: page size (pages per chunk), VA bits and hardware VA bits (where vmalloc,
the linear map and the Global Percpu area lie), local percpu (patch 02/11's placement),
CPUs (units per chunk) and the kernel (the era's vmalloc end). KASAN moves none of these
regions in any kernel the model knows, so the panel does not offer it here.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as W
import pandas as pd
import plotly.graph_objects as go

from ...errors import InputError
from ...kernel import KernelConfig, compute_layout, format_size, valid_configs
from ...percpu import (
    DEFAULT_STATIC_SIZE,
    PercpuAllocator,
    RequestStep,
    SteppedHistory,
    boot_percpu,
    build_alloc_info,
    capacity,
    step_history,
    synthetic_history,
)
from .. import plots
from .panel import ControlPanel, Explorer

FOLLOW = "follow"  # the chunk control's value that follows the current request
_CACHED_RUNS = 8  # whole-history runs kept, one per configuration
_CACHED_STEPS = 8  # allocators at an earlier request kept, one per configuration and step


class AllocatorExplorer(Explorer):
    """The percpu allocator stepped through a synthetic history: the chunk the current
    request touched (or a chosen one) as an allocation map, or all chunks in the VA space.
    `run` holds the whole history's `SteppedHistory` for the panel's configuration,
    `alloc` the allocator after the chosen step, `decisions` its first `step` rows,
    `current` the step's `RequestStep` (None at step 0) and `shown_chunk` the chunk drawn
    (None in the chunks view or when the chosen chunk does not exist at the step)."""

    name = "allocator"
    VIEWS = ("chunk map", "chunks")
    PANEL_FIELDS = ("kernel", "page_size", "va_bits", "vabits_actual", "local_percpu",
                    "nr_cpus")

    def __init__(self, panel: ControlPanel | None = None, *, n_alloc: int = 300,
                 n_free: int = 100, seed: int = 1, static_size: int = DEFAULT_STATIC_SIZE,
                 **values: Any) -> None:
        self.history = synthetic_history(n_alloc, n_free, seed=seed)
        self.static_size = static_size
        self.alloc: PercpuAllocator | None = None
        self.decisions: pd.DataFrame | None = None
        self.run: SteppedHistory | None = None
        self.current: RequestStep | None = None
        self.shown_chunk: int | None = None
        self._runs: dict[KernelConfig, tuple[SteppedHistory, PercpuAllocator]] = {}
        self._steps: dict[tuple[KernelConfig, int], PercpuAllocator] = {}
        self._chunk_notice: str | None = None
        super().__init__(panel, **values)

    def _make_controls(self) -> dict[str, W.ValueWidget]:
        n = len(self.history)
        return {
            "step": W.IntSlider(value=n, min=0, max=n, description="request",
                                continuous_update=False),
            "chunk": W.Dropdown(options=[("the request's chunk", FOLLOW)], value=FOLLOW,
                                description="chunk"),
            "view": W.ToggleButtons(options=self.VIEWS, value=self.VIEWS[0],
                                    description="view"),
        }

    # --- the model ----------------------------------------------------------------------

    def _check(self, cfg: KernelConfig) -> None:
        """InputError in plain words for a configuration the allocator cannot boot."""
        if not cfg.local_percpu:
            return
        layout = compute_layout(cfg)
        if not layout.sane:
            fits = [c.label() for c in valid_configs(cfg.kernel, kasan=("none",))
                    if compute_layout(c.replace(local_percpu=True)).sane]
            clause = layout.problems[0].message.split(":", 1)[0].rstrip(".")
            raise InputError(
                f"local percpu does not fit {cfg.label()}: patch 02/11's two areas of "
                f"2 * PGDIR_SIZE leave no room ({clause[:1].lower()}{clause[1:]}); with local "
                f"percpu ticked, page size / VA bits can be {', '.join(fits)}",
                field="local_percpu")
        ai = build_alloc_info(self.static_size, nr_cpus=cfg.nr_cpus, page_size=cfg.page_size)
        cap = capacity(cfg, ai)
        if not cap["first_chunk_fits"]:
            most = cap["area_size"] // ai.unit_size
            while most > 1 and not capacity(cfg, build_alloc_info(
                    self.static_size, nr_cpus=most, page_size=cfg.page_size))["first_chunk_fits"]:
                most -= 1
            raise InputError(
                f"{cfg.nr_cpus} CPUs do not fit {cfg.label()} with local percpu: the first "
                f"chunk's {cfg.nr_cpus} units of {format_size(ai.unit_size)} take "
                f"{format_size(ai.span)}, more than the {format_size(cap['area_size'])} "
                f"Global Percpu area; CPUs can be at most {most} here", field="nr_cpus")

    def _boot(self, cfg: KernelConfig) -> PercpuAllocator:
        alloc, _ = boot_percpu(cfg, self.static_size, cfg.nr_cpus, page_tables=False)
        return alloc

    def _whole_run(self, cfg: KernelConfig) -> tuple[SteppedHistory, PercpuAllocator]:
        """The whole history on `cfg` (kept for the last few configurations)."""
        if cfg not in self._runs:
            self._check(cfg)
            alloc = self._boot(cfg)
            self._runs[cfg] = (step_history(alloc, self.history), alloc)
            while len(self._runs) > _CACHED_RUNS:
                self._runs.pop(next(iter(self._runs)))
        return self._runs[cfg]

    def _alloc_at(self, cfg: KernelConfig, s: int) -> PercpuAllocator:
        """The allocator after request `s` on `cfg` (kept for the last few)."""
        run, whole = self._whole_run(cfg)
        if s == len(self.history):
            return whole
        key = (cfg, s)
        if key not in self._steps:
            self._steps[key] = run.replay(self._boot(cfg), s)
            while len(self._steps) > _CACHED_STEPS:
                self._steps.pop(next(iter(self._steps)))
        return self._steps[key]

    @staticmethod
    def chunk_label(row: dict[str, Any]) -> str:
        """A chunk as the dropdown offers it: "2 (dynamic, requests 31-400)"."""
        if row["kind"] != "dynamic" and not row["created_at"]:
            return f"{row['id']} ({row['kind']})"
        end = row["destroyed_at"]
        life = (f"requests {row['created_at']}-{end}" if not pd.isna(end)
                else f"from request {row['created_at']}")
        return f"{row['id']} ({row['kind']}, {life})"

    def _sync_controls(self, cfg: KernelConfig) -> None:
        run, _ = self._whole_run(cfg)
        chunk = self.controls["chunk"]
        options = [("the request's chunk", FOLLOW)] + [
            (self.chunk_label(row), int(row["id"])) for row in run.chunks.to_dict("records")]
        self._chunk_notice = None
        if list(chunk.options) != options:
            value = chunk.value
            if value not in [v for _, v in options]:
                self._chunk_notice = (f"chunk {value} never exists in this history on "
                                      f"{cfg.label()}; the figure follows the request")
                value = FOLLOW
            chunk.options = options
            chunk.value = value

    # --- the figure ---------------------------------------------------------------------

    def _build(self, cfg: KernelConfig) -> go.Figure:
        run, _ = self._whole_run(cfg)
        n = len(self.history)
        s = self.controls["step"].value
        alloc = self._alloc_at(cfg, s)
        step = run.step(s)
        choice = self.controls["chunk"].value
        target = (step.chunk_id if step is not None and step.chunk_id is not None
                  else alloc.first_chunk.id) if choice == FOLLOW else choice
        exists = any(c.id == target for c in alloc.chunks)
        heading = self._heading(step, s, n)
        notes = [self._chunk_notice] if self._chunk_notice else []
        if step is not None and step.failed:
            notes.append(f"request {s} failed: {step.error}")
        shown: int | None = None
        if not exists:
            why = self._why_missing(run, target, s, choice == FOLLOW)
            notes.append(f"{why}; the figure shows every chunk that exists")
            fig = plots.chunks_figure(alloc, heading=f"{heading}<br>{why}")
        elif self.controls["view"].value == "chunks":
            touched = step.chunk_id if step is not None else None
            fig = plots.chunks_figure(
                alloc, mark=touched if any(c.id == touched for c in alloc.chunks) else None,
                heading=heading)
        else:
            mark = None
            if step is not None and not step.failed and step.chunk_id == target:
                assert step.off is not None and step.size is not None
                mark = (step.off, step.size)
            verb = "allocated" if step is not None and step.op == "alloc" else "freed"
            if step is not None and step.chunk_id != target:
                heading += f" (shown: chunk {target})"
            fig = plots.chunk_map_heatmap(
                alloc, target, mark=mark,
                mark_name=f"request {s}: {verb} {step.size if step else 0} bytes",
                mark_color=plots.MARK_COLOR if verb == "allocated" else plots.FREED_COLOR,
                heading=heading)
            shown = target
        # only once the figure is drawn
        self.alloc, self.run, self.current, self.shown_chunk = alloc, run, step, shown
        self.decisions = run.decisions.iloc[:s]
        self.notice = "; ".join(notes) or None
        return fig

    @staticmethod
    def _heading(step: RequestStep | None, s: int, n: int) -> str:
        if step is None:
            return f"Request 0 of {n}: the allocator as booted, before any request"
        if step.failed:
            return f"Request {s} of {n}: {step.op} of {step.size} bytes failed"
        return f"Request {s} of {n}: {step.sentence()}"

    @staticmethod
    def _why_missing(run: SteppedHistory, chunk_id: int, s: int, follow: bool) -> str:
        life = run.chunk(chunk_id)
        if life["created_at"] > s:
            return (f"chunk {chunk_id} does not exist yet at request {s}: the allocator "
                    f"creates it during request {life['created_at']}")
        when = int(life["destroyed_at"])
        if follow and when == s:
            return f"chunk {chunk_id} is gone: this request's balance work destroyed it"
        return (f"chunk {chunk_id} no longer exists at request {s}: the balance work "
                f"destroyed it during request {when}")

    def set(self, **values: Any) -> Explorer:
        """As `Explorer.set`; a request number outside the history raises InputError."""
        if "step" in values:
            s, n = values["step"], len(self.history)
            if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= n:
                message = f"request {s!r} is outside 0..{n} (the history has {n} requests)"
                self.panel.report(self.name, message)
                raise InputError(message, field="step")
        return super().set(**values)
