"""What every figure shares: the colours, plotly's renderer (`set_renderer`), static
images (`to_png`), and the axis helpers (binary-unit scale, hex address ticks).

Addresses print with `kernel.fmt_addr` (an exclusive end with `kernel.fmt_end`) and
sizes with `kernel.format_size`, in the binary units of memory.rst (`BINARY_UNITS`).
"""

from __future__ import annotations

import json
import os
import re
import textwrap
from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from ...kernel import BINARY_UNITS, fmt_end, roundup
from .. import APP_PAGE, OFFLINE_NOTEBOOK, RENDERER_ENV, plotlyjs

PROBLEM_COLOR = "#d62728"  # red: a region a layout problem names, a wrong-CPU update
OK_COLOR = "#2ca02c"
GUARD_COLOR = "#e0e0e0"
NA_COLOR = "#c7c7c7"  # a case that cannot happen
SHARED_COLOR = "#1f77b4"
PRIVATE_COLOR = "#ff7f0e"
# A horizontal legend above the plot, right-aligned.
TOP_LEGEND = {"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 1, "xanchor": "right"}


def wrap(text: str, width: int = 90) -> str:
    """`text` wrapped at `width` characters with plotly's <br> line breaks."""
    return "<br>".join(textwrap.wrap(text, width)) or text


def axis_unit(span: float) -> tuple[str, int]:
    """The largest binary unit not above `span` bytes (B below 1KB), for an axis that
    shows byte counts in one unit: (name, bytes per unit)."""
    for name, shift in BINARY_UNITS:
        if span >= 1 << shift:
            return name, 1 << shift
    return "B", 1


def hex_ticks(lo: int, hi: int, base: int, count: int = 8) -> tuple[list[float], list[str]]:
    """Tick positions (offsets from `base`) at power-of-two aligned addresses in [lo, hi],
    about `count` of them, labelled in hex (`hi` may be the exclusive end 2**64)."""
    span = max(hi - lo, 1)
    step = 1 << max((span // count).bit_length() - 1, 0)
    while span // step > count:
        step <<= 1
    addrs = range(roundup(lo, step), hi + 1, step)
    return [float(a - base) for a in addrs], [fmt_end(a) for a in addrs]


# plotly's "notebook" renderer always adds a <script> loading MathJax from cdnjs, which
# fails offline and leaves the machine on a class network; no figure here uses LaTeX.
_MATHJAX_CDN = re.compile(r'<script[^>]*\bsrc="https://cdnjs\.cloudflare\.com/ajax/libs/'
                          r'mathjax/[^"]*"[^>]*>\s*</script>')


def _offline_notebook_renderer() -> object:
    from plotly.io._base_renderers import NotebookRenderer

    class OfflineNotebookRenderer(NotebookRenderer):
        """plotly's notebook renderer (plotly.js inlined) without the MathJax CDN script."""

        def to_mimebundle(self, fig_dict: dict) -> dict:
            bundle = super().to_mimebundle(fig_dict)
            bundle["text/html"] = _MATHJAX_CDN.sub("", bundle.get("text/html", ""))
            return bundle

    base = pio.renderers["notebook"]
    return OfflineNotebookRenderer(config=base.config, connected=False)


# A static figure in the app's page: drawn by the plotly.js the template loads once
# (`ui.plotlyjs`), after that script has run; the output holds only the figure's JSON.
# A figure on the first screen is drawn at once; one further down waits until the
# explorers' figures are drawn (PlotView's "percpu-view-drawn" event, or 3 s for a page
# without one) and then until it comes within a screen of the view, so the page's first
# figures are not queued behind drawings nobody sees yet.
_PAGE_FIGURE = """<div id="{id}" class="plotly-graph-div percpu-page-figure"
  style="width:100%;height:{height}px;"></div>
<script type="text/javascript">(function () {{
  var id = "{id}", fig = {fig}, config = {config};
  var el = document.getElementById(id);
  if (!el) return;
  el.style.height = ((fig.layout || {{}}).height || 525) + "px";  // as plotly's renderers
  function draw() {{
    if (window.Plotly) window.Plotly.newPlot(el, fig.data, fig.layout, config);
    else el.textContent = "plotly.js did not load: the figure cannot be drawn.";
  }}
  // The first screen draws at once; a figure further down waits until the explorers
  // have drawn and then until it comes within a screen of the view. A page can still be
  // hidden while it loads (Voila's spinner), so the observers keep watching.
  var drawn = false;
  function once() {{ if (!drawn) {{ drawn = true; draw(); }} }}
  function when(margin, then) {{
    if (!window.IntersectionObserver) return then();
    var seen = new IntersectionObserver(function (entries) {{
      if (drawn) return seen.disconnect();
      if (!entries.some(function (e) {{ return e.isIntersecting; }})) return;
      seen.disconnect(); then();
    }}, {{rootMargin: margin}});
    seen.observe(el);
  }}
  function later() {{ when("100% 0px", once); }}
  function start() {{
    when("0px", once);
    if (window.__percpuViewDrawn) return later();
    var go = function () {{
      if (go.done) return; go.done = true;
      window.removeEventListener("percpu-view-drawn", go); later();
    }};
    window.addEventListener("percpu-view-drawn", go);
    setTimeout(go, 3000);
  }}
  var tag = document.getElementById("{script_id}");
  var ready = window.Plotly && window.Plotly.version === "{version}";
  if (!tag && !ready) {{  // a page without the template (JupyterLab beside the app's Voila)
    try {{
      var base = JSON.parse(document.getElementById("jupyter-config-data").textContent).baseUrl;
      tag = document.createElement("script");
      tag.id = "{script_id}"; tag.async = true; tag.src = (base || "/") + "{static_path}";
      tag.onload = function () {{ tag.dataset.state = "loaded"; }};
      tag.onerror = function () {{ tag.dataset.state = "failed"; }};
      document.head.appendChild(tag);
    }} catch (e) {{ tag = null; }}
  }}
  if (ready) start();
  else if (tag && !tag.dataset.state) {{
    tag.addEventListener("load", start); tag.addEventListener("error", draw);
  }} else start();
}})();</script>"""


def page_figure_html(fig_dict: dict, element_id: str | None = None) -> str | None:
    """The HTML of a figure drawn by the plotly.js the app's page loads once
    (`ui.plotlyjs`), or None when that bundle cannot draw it (a trace it lacks, or
    another plotly.py). `element_id` names the figure's element (default: a new one)."""
    if not (plotlyjs.cartesian_matches() and plotlyjs.draws(fig_dict)):
        return None
    import uuid

    from plotly.io.json import to_json_plotly

    figure = {"data": fig_dict.get("data", []), "layout": fig_dict.get("layout", {})}
    # "</" never reaches the HTML parser inside the script
    text = str(to_json_plotly(figure)).replace("</", "<\\/")
    # the figure's height kept for it before it is drawn (plotly.js draws 450 px when
    # the layout names none): the page does not jump when it draws, and what is on the
    # first screen is known from the start
    height = figure["layout"].get("height")
    height = int(height) if isinstance(height, int | float) and height > 0 else 450
    return _PAGE_FIGURE.format(
        id=element_id or f"percpu-{uuid.uuid4()}", fig=text,
        height=height,
        config=json.dumps(plotlyjs.CONFIG), script_id=plotlyjs.SCRIPT_ID,
        version=plotlyjs.plotly_py_version(), static_path=plotlyjs.STATIC_PATH)


def _page_renderer(fallback: object) -> object:
    from plotly.io._base_renderers import MimetypeRenderer

    class PageRenderer(MimetypeRenderer):
        """The app's static figures: HTML that draws with the page's own plotly.js
        (the template's cartesian bundle). A figure with a trace that bundle lacks, or
        any figure under another plotly.py, is drawn by plotly's notebook renderer,
        the first such figure of the kernel carrying the full plotly.js inline."""

        def __init__(self) -> None:
            self.inlined = False

        def to_mimebundle(self, fig_dict: dict) -> dict:
            html = page_figure_html(fig_dict)
            return {"text/html": html} if html is not None else self._fallback(fig_dict)

        def _fallback(self, fig_dict: dict) -> dict:
            bundle = dict(fallback.to_mimebundle(fig_dict))  # type: ignore[attr-defined]
            if not self.inlined:
                from plotly.offline import get_plotlyjs

                bundle["text/html"] = (f'<script type="text/javascript">{get_plotlyjs()}'
                                       f'</script>{bundle.get("text/html", "")}')
                self.inlined = True
            return bundle

    return PageRenderer()


def set_renderer(renderer: str | None = None) -> str:
    """Set plotly's default renderer so figures show in JupyterLab *and* survive
    `nbconvert --to html` and Voila (the plain plotly MIME type alone is dropped there).

    Default: $PERCPU_EXPLORER_RENDERER (the app: "percpu_page"), else
    $PLOTLY_RENDERER (plotly's own names), else "plotly_mimetype+percpu_notebook";
    percpu_notebook is plotly's notebook renderer (plotly.js inlined) with nothing fetched
    from outside the machine; percpu_page draws with the plotly.js the app's page loads
    once (`ui.plotlyjs`). Returns the renderer set.
    """
    if OFFLINE_NOTEBOOK not in pio.renderers:
        pio.renderers[OFFLINE_NOTEBOOK] = _offline_notebook_renderer()
    if APP_PAGE not in pio.renderers:
        pio.renderers[APP_PAGE] = _page_renderer(pio.renderers[OFFLINE_NOTEBOOK])
    chosen = (renderer or os.environ.get(RENDERER_ENV) or os.environ.get("PLOTLY_RENDERER")
              or f"plotly_mimetype+{OFFLINE_NOTEBOOK}")
    pio.renderers.default = chosen
    return chosen


def to_png(fig: go.Figure, path: str | os.PathLike[str], *, scale: float = 2.0) -> Path:
    """Write `fig` as a PNG with kaleido and the system Chromium (never a downloaded one).

    Raises RuntimeError naming what is missing: the kaleido package, or a Chromium
    executable ($BROWSER_PATH, else /usr/bin/chromium).
    """
    try:
        import kaleido  # noqa: F401
    except ImportError:
        raise RuntimeError("to_png needs the kaleido package, which is not installed "
                           "(pip install kaleido)") from None
    browser = os.environ.get("BROWSER_PATH") or "/usr/bin/chromium"
    if not Path(browser).is_file():
        raise RuntimeError(f"to_png needs a system Chromium: {browser} does not exist; set "
                           "BROWSER_PATH to a Chrome/Chromium executable (kaleido must not "
                           "download a browser)")
    os.environ["BROWSER_PATH"] = browser
    out = Path(path)
    fig.write_image(str(out), format="png", scale=scale)
    return out
