"""Views: plotly figures, readable tables, ipywidgets explorers and the Voila app.
The only folder that imports plotly, ipywidgets or voila.

  plots     figures of the models (`plots.address_space_map`, `plots.walk_figure`, ...)
  tables    `readable()`: a model's DataFrame with addresses in hex and sizes in KB/MB/TB
  text      findings as sentences, captions under figures, the glossary
  widgets   the control panel and the explorers that redraw a FigureWidget
  app       the notebooks served as Voila dashboards, and its load test

Each module is imported on first use, so importing this package loads neither plotly
nor ipywidgets (and the app never imports voila: it runs it as a command).
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["app", "plots", "readable", "tables", "text", "widgets"]

_MODULES = ("app", "plots", "tables", "text", "widgets")

# plotly's notebook renderer without its MathJax script from cdnjs (`plots.set_renderer`);
# the app's kernels use it (`app.voila_env`), named in RENDERER_ENV: plotly itself rejects
# a PLOTLY_RENDERER it does not know yet.
OFFLINE_NOTEBOOK = "percpu_notebook"
RENDERER_ENV = "PERCPU_EXPLORER_RENDERER"


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "readable":
        return importlib.import_module(".tables", __name__).readable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
