"""`PlotView`: the widget an explorer draws its figure in.

plotly's FigureWidget carries its own full plotly.js as its front-end module (5 MB sent
over the kernel's websocket and evaluated in every page, besides the page's own copy) and
sends every trace and layout edit as a message of its own. A PlotView holds a built
`go.Figure`, sends it whole as plotly JSON (numpy arrays as base64 typed arrays) in one
state update, and the page redraws it with `Plotly.react`, which changes only what
differs. plotly.js comes from the page (`ui.plotlyjs`), loaded once for all figures.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import anywidget
import plotly.graph_objects as go
import traitlets
from plotly.io.json import to_json_plotly

from .. import plotlyjs


class PlotView(anywidget.AnyWidget):
    """One plotly figure in the page, replaced as a whole by `show(fig)`.

    `data`, `layout` and `to_plotly_json()` read the figure shown, as on a go.Figure."""

    _esm = Path(__file__).with_name("plotview.js")
    # The figure as plotly JSON ("" before the first one).
    spec = traitlets.Unicode("").tag(sync=True)
    # The plotly.js version the JSON is written for; the page loads that one.
    plotly_version = traitlets.Unicode("").tag(sync=True)
    # plotly.js's config, and the id of the template's <script> that loads plotly.js.
    config = traitlets.Dict(plotlyjs.CONFIG).tag(sync=True)
    script_id = traitlets.Unicode(plotlyjs.SCRIPT_ID).tag(sync=True)
    # Marks the drawings of this view's figure that the page's HTML carries (the app's
    # template draws them before the page's widgets are live); removed once this draws.
    placeholder = traitlets.Unicode("").tag(sync=True)

    def __init__(self, fig: go.Figure | None = None, **kwargs: Any) -> None:
        super().__init__(plotly_version=plotlyjs.plotly_py_version(), **kwargs)
        self._figure = go.Figure()
        self.on_msg(self._on_page_message)
        if fig is not None:
            self.show(fig)

    @property
    def data(self) -> tuple[Any, ...]:
        return tuple(self._figure.data)

    @property
    def layout(self) -> go.Layout:
        return self._figure.layout

    def to_plotly_json(self) -> dict[str, Any]:
        return dict(self._figure.to_plotly_json())

    def show(self, fig: go.Figure) -> None:
        """Show `fig`: one state update carrying the whole figure."""
        self._figure = fig
        self.spec = str(to_json_plotly(fig.to_plotly_json()))

    def first_drawing(self, above_px: int = 0) -> str | None:
        """HTML that draws the figure shown now with the page's plotly.js, marked for
        this view to remove once it draws (None when that plotly.js cannot draw it).
        `above_px` keeps the room of what the live widget shows above its figure (an
        explorer's controls), so the figure does not move when the widget replaces it."""
        from ..plots.common import page_figure_html

        if not self.spec:
            return None
        if not self.placeholder:
            self.placeholder = f"percpu-first-{uuid.uuid4()}"
        html = page_figure_html(self._figure.to_plotly_json())
        if html is None:
            return None
        room = ""
        if above_px > 0:
            room = (f'<div class="percpu-controls-room" style="height:{int(above_px)}px;'
                    'color:#888;font-size:12px">The controls come when the page is live.'
                    '</div>')
        return (f'<div class="percpu-first-draw" data-percpu-first="{self.placeholder}">'
                f'{room}{html}</div>')

    def _on_page_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # A page without the app's template (JupyterLab) asks once for plotly.js.
        if isinstance(content, dict) and content.get("need") == "plotly.js":
            self.send({"plotly_js": plotlyjs.page_source()})
