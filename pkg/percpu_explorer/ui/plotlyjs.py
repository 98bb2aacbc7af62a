"""Which plotly.js a page draws with, loaded once per page.

plotly's own front ends each bring a full plotly.js (4.8 MB, about 1 s of a core to
evaluate in Chromium): the notebook renderer inlines one into the page, the FigureWidget's
anywidget module carries another, and the jupyterlab-plotly extension a third. A dashboard
paid for two or three. Every figure here is a scatter, bar or heatmap trace, which
plotly.js's "cartesian" bundle draws (1.5 MB, about 0.45 s to evaluate). The app's
template loads it once per page from its static folder (cached by the browser), the
dashboards' static figures draw with it (`plots.set_renderer`, renderer `percpu_page`) and
so does every explorer's `ui.widgets.PlotView`.

The bundle must be the plotly.js version that the installed plotly.py writes figures for;
when it is not (another plotly.py), `page_bundle` falls back to plotly.py's own full
plotly.js and the static figures to the renderer that inlines it.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

# The app's Voila template serves this folder as static/ (`static_url` in index.html.j2).
STATIC = Path(__file__).resolve().parent / "jupyter/voila/templates/percpu-explorer/static"
CARTESIAN = STATIC / "plotly-cartesian.min.js"
# Where Voila serves it, below the server's base URL (the app, or a Jupyter server with
# Voila's extension: a static figure in JupyterLab there loads it from here).
STATIC_PATH = "voila/templates/" + CARTESIAN.relative_to(STATIC.parents[1]).as_posix()
# The id of the template's <script> element: figures wait for it, never load a second copy.
SCRIPT_ID = "percpu-plotly"
# plotly.js's config for every figure of a page, static ones and PlotViews alike.
CONFIG: dict[str, Any] = {"responsive": True, "displaylogo": False}
# Trace types the cartesian bundle draws (its README); a figure with another one
# falls back to the full plotly.js.
CARTESIAN_TRACES = frozenset({"bar", "box", "contour", "heatmap", "histogram", "histogram2d",
                              "histogram2dcontour", "image", "pie", "scatter",
                              "scatterternary", "violin"})

_VERSION = re.compile(r"plotly\.js(?: \([\w -]+\))? v(\d+\.\d+\.\d+)")


def bundle_version(path: Path) -> str:
    """The plotly.js version a bundle says in its header comment ('4.1.1')."""
    with open(path, encoding="utf-8") as f:
        head = f.read(400)
    found = _VERSION.search(head)
    if not found:
        raise ValueError(f"{path} does not start with a plotly.js header naming its version")
    return found.group(1)


@cache
def plotly_py_version() -> str:
    """The plotly.js version the installed plotly.py writes figures for (its bundled copy)."""
    from plotly.offline import get_plotlyjs_version

    return str(get_plotlyjs_version())


@cache
def cartesian_matches() -> bool:
    """True when the shipped cartesian bundle is the plotly.js plotly.py writes for."""
    return bundle_version(CARTESIAN) == plotly_py_version()


def page_bundle() -> Path:
    """The plotly.js a page should load: the cartesian bundle when its version matches
    plotly.py's, else plotly.py's own full plotly.min.js."""
    if cartesian_matches():
        return CARTESIAN
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


@cache
def page_source() -> str:
    """The text of `page_bundle()`, for a page that has no template to load it from
    (JupyterLab): `PlotView` sends it once per page when asked."""
    return page_bundle().read_text(encoding="utf-8")


def draws(fig_json: dict) -> bool:
    """True when the cartesian bundle draws every trace of a figure's JSON."""
    return all(t.get("type", "scatter") in CARTESIAN_TRACES for t in fig_json.get("data", ()))
