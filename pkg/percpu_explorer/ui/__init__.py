"""Views: plotly figures, readable tables, ipywidgets explorers and the Voila app.
The only folder that imports plotly, ipywidgets or voila.

  plots     figures of the models (`plots.address_space_map`, `plots.walk_figure`, ...)
  tables    `readable()`: a model's DataFrame with addresses in hex and sizes in KB/MB/TB
  text      findings as sentences, captions under figures, the glossary
  widgets   the control panel and the explorers that redraw a PlotView
  plotlyjs  which plotly.js a page loads, once for all its figures
  app       the notebooks served as Voila dashboards, and its load test

Each module is imported on first use, so importing this package loads neither plotly
nor ipywidgets (and the app never imports voila: it runs it as a command).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import Any

__all__ = ["app", "plotlyjs", "plots", "readable", "tables", "text", "widgets"]

_MODULES = ("app", "plotlyjs", "plots", "tables", "text", "widgets")

# plotly's notebook renderer without its MathJax script from cdnjs (`plots.set_renderer`);
# the app's kernels use it (`app.voila_env`), named in RENDERER_ENV: plotly itself rejects
# a PLOTLY_RENDERER it does not know yet.
OFFLINE_NOTEBOOK = "percpu_notebook"
# The app's static figures: drawn with the plotly.js its page loads once (`ui.plotlyjs`).
APP_PAGE = "percpu_page"
RENDERER_ENV = "PERCPU_EXPLORER_RENDERER"

# Set in the app's server and kernels (`app.voila_env`): see `lean_kernel`.
LEAN_KERNEL_ENV = "PERCPU_EXPLORER_LEAN_KERNEL"


def lean_kernel() -> bool:
    """In the app's server and kernels, leave out jsonschema's optional IRI syntax checker.

    plotly's renderers (`set_renderer`, a figure's display) import nbformat, to check its
    version before showing a figure; nbformat imports jsonschema, and jsonschema imports
    rfc3987_syntax if it is installed (it is: jupyter_server's jupyter_events asks for
    it), which compiles an Earley grammar at import: 15.6 MB and 1.5 s of CPU in every
    kernel, for the "iri" format that nothing in a dashboard validates. Marked absent
    before jsonschema loads, jsonschema skips that format as it does when the package is
    not installed. True if it is left out."""
    if os.environ.get(LEAN_KERNEL_ENV) != "1" or "jsonschema" in sys.modules:
        return False
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[assignment]
    return sys.modules["rfc3987_syntax"] is None


lean_kernel()

# Seconds without a cell after which an app kernel's notebook counts as run.
SETTLE_S = 1.0


def freeze_after_notebook() -> bool:
    """In the app's kernels: once the notebook's cells have run (no cell for SETTLE_S),
    collect garbage once and move every object left to the collector's permanent
    generation (`gc.freeze`). A dashboard's kernel holds about 250,000 objects after its
    notebook, and each full collection walked them all: 140-370 ms in the middle of a
    visitor's change, measured. Reference counting still frees them; only a cycle among
    them that becomes garbage later is kept (at most what the notebook made). True if
    the kernel will do so."""
    if os.environ.get(LEAN_KERNEL_ENV) != "1" or "IPython" not in sys.modules:
        return False
    import gc
    import threading

    from IPython import get_ipython

    shell = get_ipython()
    if shell is None or not hasattr(shell, "kernel") or getattr(shell, "_percpu_freeze", 0):
        return False
    timer: list[threading.Timer] = []

    def settle() -> None:
        gc.collect()
        gc.freeze()

    def after_cell(*_: Any) -> None:
        if timer:
            timer.pop().cancel()
        timer.append(threading.Timer(SETTLE_S, settle))
        timer[0].daemon = True
        timer[0].start()

    shell.events.register("post_run_cell", after_cell)
    shell._percpu_freeze = 1
    return True


freeze_after_notebook()


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        return importlib.import_module(f".{name}", __name__)
    if name == "readable":
        return importlib.import_module(".tables", __name__).readable
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
