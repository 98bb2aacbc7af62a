"""What the browser tests do in a page, in JupyterLab and in Voila alike: open a notebook
(run all its cells in JupyterLab, or render it as a dashboard), read an explorer's figure,
use its controls as a person would, and check the page for warnings, errors and
unreadable tables.

An explorer's figure is a plotly graph inside the explorer's widget box (`.widget-vbox`);
`index` counts those figures in page order. Controls are found by their description (the
label a person reads beside them); `index` picks one when several explorers offer the same.
"""

from __future__ import annotations

import json
import re
import uuid

from playwright.sync_api import Locator, Page

from percpu_explorer.ui import app

WAIT = 90_000  # ms: a kernel runs its whole notebook before the page is whole
RUN_ALL_WAIT = 240_000  # ms: every cell of a notebook, on a machine shared with other tests

# The notebook shown (JupyterLab keeps hidden panels in the page) or the Voila page.
_ROOT_JS = "(document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document)"
FIGURE = ".widget-vbox .js-plotly-plot"

_STATE_JS = f"""(index) => {{
  const g = {_ROOT_JS}.querySelectorAll('{FIGURE}')[index];
  if (!g || !g.data || !g.data.length || !g._fullLayout) return null;
  return JSON.stringify({{data: g.data, layout: g.layout}});
}}"""

# Every widget output has its view, every plotly graph is drawn, the Voila spinner is gone,
# Voila's front end has rendered every output left to it, and every explorer's drawing in
# the page's HTML has given way to its live figure.
_SETTLED_JS = f"""() => {{
  const root = {_ROOT_JS};
  const loading = document.getElementById('loading');
  if (loading && loading.style.display !== 'none' && loading.offsetParent !== null) return false;
  if (document.querySelector('script[type="application/vnd.voila.cell-output+json"]'))
    return false;
  if (document.querySelector('.percpu-first-draw')) return false;
  const views = root.querySelectorAll(
    ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.widget-view+json']");
  for (const v of views) if (!v.querySelector('.jupyter-widgets, .widget-box, .lm-Widget'))
    return false;
  for (const g of root.querySelectorAll('.js-plotly-plot'))
    if (!g._fullLayout || !g.querySelector('.main-svg')) return false;
  return true;
}}"""

# Console messages that come from the front-end stack, not from the explorer: each a
# regular expression (searched in "[type] text") and the reason it cannot be removed here.
# None today: the dashboards' template keeps Voila's module-version warnings off the
# console (its console filter, held to exactly them by test_helpers.py).
CONSOLE_ALLOWED: tuple[tuple[str, str], ...] = ()


# --- opening notebooks ---------------------------------------------------------------------

def wait_settled(page: Page, timeout: float = WAIT) -> None:
    """Wait until every widget of the page is rendered and every plotly graph drawn."""
    page.wait_for_function(_SETTLED_JS, timeout=timeout)


def open_dashboard(page: Page, voila_base: str, notebook: str) -> None:
    """Open `notebook` as a Voila dashboard; return once its widgets are rendered and its
    first figure (if it has one) is drawn."""
    page.goto(app.dashboard_url(voila_base, notebook), timeout=WAIT)
    page.locator("#rendered_cells").wait_for(state="visible", timeout=WAIT)
    wait_settled(page)
    if page.locator(".js-plotly-plot").count():
        page.wait_for_function(_STATE_JS if page.locator(FIGURE).count() else
                               "() => document.querySelector('.js-plotly-plot')._fullLayout",
                               arg=0, timeout=WAIT)
    wait_settled(page)


def _kernel_ready_js() -> str:
    return """() => {
      const app = window.jupyterapp;
      const w = app && app.shell.currentWidget;
      const ctx = w && w.sessionContext;
      const k = ctx && ctx.session && ctx.session.kernel;
      return !!(k && k.connectionStatus === 'connected' && k.status === 'idle' && w.content
                && w.content.widgets.length);
    }"""


def shutdown_kernels(page: Page, lab_base: str, notebook: str) -> None:
    """End the JupyterLab sessions (and kernels) of `notebook`, if any."""
    base = lab_base.rstrip("/")
    sessions = page.request.get(f"{base}/api/sessions").json()
    for session in sessions:
        if session.get("path") == notebook:
            page.request.delete(f"{base}/api/sessions/{session['id']}")


def open_in_lab(page: Page, lab_base: str, notebook: str) -> None:
    """Open `notebook` in JupyterLab (a fresh workspace), run all its cells, wait until
    every cell has run and every widget and figure is drawn; assert that no cell shows an
    error, a traceback or anything on stderr (warnings included)."""
    base = lab_base.rstrip("/")
    shutdown_kernels(page, base, notebook)  # a fresh kernel: nothing left of an earlier run
    workspace = f"t{uuid.uuid4().hex[:12]}"
    url = f"{base}/lab/workspaces/{workspace}/tree/{notebook}"
    for attempt in range(2):
        page.goto(url, timeout=WAIT)
        page.wait_for_function("() => !!window.jupyterapp", timeout=WAIT)
        try:
            # The kernel's websocket can close before it connects under load: reload once.
            page.wait_for_function(_kernel_ready_js(), timeout=WAIT if attempt else WAIT // 2)
            break
        except Exception:
            if attempt:
                raise
    page.evaluate("""async () => {  // stored prompts would look like a finished run
        await window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs');
        window.jupyterapp.commands.execute('notebook:run-all-cells');  // waited for below
    }""")
    # Done when every code cell has its number, or a cell wrote to stderr (JupyterLab shows
    # a traceback so too; the run stops at an error).
    page.wait_for_function("""() => {
        const w = window.jupyterapp.shell.currentWidget;
        const k = w.sessionContext.session.kernel;
        const prompts = [...w.node.querySelectorAll('.jp-CodeCell .jp-InputPrompt')];
        const failed = w.node.querySelector(
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error'], " +
            ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']");
        return k.status === 'idle' && prompts.length > 0
               && (!!failed || prompts.every(p => /\\[\\d+\\]/.test(p.textContent)));
    }""", timeout=RUN_ALL_WAIT)
    bad = page.locator(
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
        "[data-mime-type='application/vnd.jupyter.error'], "
        ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-OutputArea-output"
        "[data-mime-type='application/vnd.jupyter.stderr']")
    assert bad.count() == 0, f"{notebook}: a cell wrote an error or to stderr:\n" + \
        "\n---\n".join(bad.nth(i).inner_text()[:1500] for i in range(bad.count()))
    wait_settled(page)


# --- figures -------------------------------------------------------------------------------

def figure_state(page: Page, index: int = 0) -> str | None:
    """The index-th explorer figure's data and layout as JSON; None until it is drawn."""
    result = page.evaluate(_STATE_JS, index)
    return None if result is None else str(result)


def wait_figure(page: Page, index: int = 0, timeout: float = WAIT) -> str:
    """The index-th explorer figure's state once it is drawn."""
    page.wait_for_function(_STATE_JS, arg=index, timeout=timeout)
    return str(page.evaluate(_STATE_JS, index))


def figure_title(page: Page, index: int = 0) -> str:
    """The index-th explorer figure's title (layout.title.text), "" if it has none."""
    state = json.loads(wait_figure(page, index))
    title = state["layout"].get("title") or {}
    return str(title.get("text", "") if isinstance(title, dict) else title)


# An explorer update can reach the page as several messages (the panel's controls, then
# the PlotView's figure, redrawn by Plotly.react): the figure has changed once it differs
# from before and has stayed the same for STABLE_MS.
STABLE_MS = 400
_CHANGED_JS = f"""([b, i, quiet]) => {{
  const s = ({_STATE_JS})(i);
  const w = window.__percpuFigureWatch = window.__percpuFigureWatch || {{}};
  const now = performance.now();
  if (s === null || s === b) {{ delete w[i]; return false; }}
  if (!w[i] || w[i].s !== s) {{ w[i] = {{s, t: now}}; return false; }}
  return now - w[i].t >= quiet;
}}"""


def wait_figure_changed(page: Page, before: str | None, index: int = 0,
                        timeout: float = WAIT) -> str:
    """Wait until the index-th explorer figure differs from `before` and has settled
    (no further change for STABLE_MS); its new state."""
    page.wait_for_function(_CHANGED_JS, arg=[before, index, STABLE_MS], timeout=timeout,
                           polling=100)
    page.evaluate("(i) => { delete (window.__percpuFigureWatch || {})[i]; }", index)
    return str(page.evaluate(_STATE_JS, index))


# --- controls ------------------------------------------------------------------------------

def notebook_root(page: Page) -> Locator:
    """The notebook shown: JupyterLab's open notebook panel, or Voila's whole page."""
    panel = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    return panel if panel.count() else page.locator("body")


def _label(description: str) -> str:
    return json.dumps(description)  # a quoted CSS/Playwright string


def _control(page: Page, kinds: str, description: str, index: int) -> Locator:
    """The index-th widget of one of `kinds` (CSS classes) described as `description`."""
    label = _label(description)
    selector = ", ".join(
        f"{kind}:has(> label:text-is({label})), {kind}:has(> .widget-label:text-is({label})),"
        f" {kind}:has(label > span:text-is({label}))"
        for kind in kinds.split())
    found = notebook_root(page).locator(selector)
    found.nth(index).wait_for(state="attached", timeout=WAIT)
    return found.nth(index)


def select(page: Page, description: str, label: str, *, index: int = 0) -> None:
    """Choose `label` in the dropdown, toggle buttons or radio buttons `description`."""
    widget = _control(page, ".widget-dropdown .widget-toggle-buttons .widget-radio",
                      description, index)
    classes = widget.get_attribute("class") or ""
    if "widget-dropdown" in classes:
        widget.locator("select").select_option(label=label)
    elif "widget-toggle-buttons" in classes:
        widget.locator(f"button:text-is({_label(label)})").click()
    else:
        widget.locator(f"label:has-text({_label(label)}) input").check()


def set_checkbox(page: Page, description: str, on: bool, *, index: int = 0) -> None:
    """Tick (`on`) or untick the checkbox `description`."""
    box = _control(page, ".widget-checkbox", description, index).locator(
        "input[type=checkbox]")
    if on:
        box.check()
    else:
        box.uncheck()


def set_slider(page: Page, description: str, value: float | str, *, index: int = 0) -> None:
    """Move the slider `description` to `value` by typing it into the slider's readout."""
    readout = _control(page, ".widget-slider", description, index).locator(".widget-readout")
    readout.click()
    page.keyboard.press("Control+A")
    page.keyboard.type(str(value))
    page.keyboard.press("Enter")


def set_text(page: Page, description: str, text: str, *, index: int = 0) -> None:
    """Type `text` into the text or number field `description` and press Enter."""
    field = _control(page, ".widget-text .widget-textarea", description, index).locator(
        "input, textarea").first
    field.fill(str(text))
    field.press("Enter")


# --- what a person checks ------------------------------------------------------------------

_BAD_WORDS = re.compile(r"Traceback|Warning|Error|There was an error")


def outputs_text(page: Page) -> str:
    """The text of every cell output (widgets included) of the notebook shown."""
    return "\n".join(notebook_root(page).locator(".jp-OutputArea-output").all_inner_texts())


def console_problems(console: list[str]) -> list[str]:
    """Console errors, warnings and page errors not in CONSOLE_ALLOWED; plotly's own
    warnings ("WARN: ..." logged with console.trace) count as warnings."""
    return [m for m in console
            if m.startswith(("[error]", "[warning]", "[pageerror]", "[trace] WARN",
                             "[trace] ERROR"))
            and not any(re.search(allowed, m) for allowed, _why in CONSOLE_ALLOWED)]


def assert_clean_page(page: Page, console: list[str]) -> None:
    """No warning, error or traceback in any output of the page, and none in the console."""
    texts = notebook_root(page).locator(".jp-OutputArea-output").all_inner_texts()
    bad = [t for t in texts if _BAD_WORDS.search(t)]
    assert not bad, "warning/error text on the page:\n" + "\n---\n".join(t[:800] for t in bad)
    problems = console_problems(console)
    assert not problems, "console errors/warnings:\n" + "\n".join(p[:500] for p in problems)


_TABLE_CELLS_JS = f"""() => [...{_ROOT_JS}.querySelectorAll('.jp-OutputArea-output table')]
  .map(t => [...t.querySelectorAll('th, td')].map(c => c.innerText.trim()))"""

_DECIMAL = re.compile(r"-?\d[\d,]*")
_REPR = re.compile(r"\bobject at 0x|^[A-Z]\w+\(\w+=")


def unreadable_cells(cells: list[str]) -> list[str]:
    """The cells a reader could not use: NaN/None, integers shown as floats ("239.0"),
    addresses or byte counts in decimal (4 GB and above: a number of ten or more digits),
    object reprs."""
    bad = []
    for text in cells:
        if text in {"NaN", "nan", "None", "<NA>", "NaT", "inf", "-inf"}:
            bad.append(text)
        elif re.fullmatch(r"-?\d+\.0", text):
            bad.append(f"{text} (an integer shown as a float)")
        elif _DECIMAL.fullmatch(text) and abs(int(text.replace(",", ""))) >= 1 << 32:
            bad.append(f"{text} (an address or size in decimal: 0x... or KB/MB/GB)")
        elif _REPR.search(text):
            bad.append(f"{text[:80]} (an object repr)")
    return bad


def assert_readable_tables(page: Page) -> None:
    """Every table in the outputs reads as the notebooks promise: no NaN, no integer
    shown as a float, addresses in 0x form (no big decimal numbers), no object reprs."""
    tables = page.evaluate(_TABLE_CELLS_JS)
    bad = [f"table {i}: {cell}" for i, cells in enumerate(tables)
           for cell in unreadable_cells(cells)]
    assert not bad, "unreadable table cells:\n" + "\n".join(bad[:30])


# --- reading a whole JupyterLab notebook --------------------------------------------------

# JupyterLab draws only the cells near the viewport (its notebook windowing): to read the
# whole notebook, scroll it from top to bottom and read what each screen shows.
_SCROLLER_JS = """(y) => {
  const panel = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)');
  const el = panel ? panel.querySelector('.jp-WindowedPanel-outer') : document.scrollingElement;
  if (y !== null) el.scrollTop = y;
  return [el.scrollTop, el.scrollHeight, el.clientHeight];
}"""


def read_all(page, console):
    """Every screen of the notebook, top to bottom: the page is clean and its tables
    readable on each; returns the text of every cell output seen."""
    seen: dict[str, None] = {}
    y, (_, height, screen) = 0, page.evaluate(_SCROLLER_JS, None)
    while True:
        page.evaluate(_SCROLLER_JS, y)
        wait_settled(page)
        assert_clean_page(page, console)
        assert_readable_tables(page)
        for text in notebook_root(page).locator(".jp-OutputArea-output").all_inner_texts():
            seen[" ".join(text.split())] = None
        if y + screen >= height:
            break
        y += screen // 2
        height = page.evaluate(_SCROLLER_JS, None)[1]
    return " ".join(seen)


def scroll_to(page, locator):
    """Scroll the notebook from the top until `locator` is drawn, then show it."""
    y, (_, height, screen) = 0, page.evaluate(_SCROLLER_JS, None)
    while not locator.count():
        assert y < height, f"{locator} is nowhere in the notebook"
        page.evaluate(_SCROLLER_JS, y)
        wait_settled(page)
        y += screen // 2
        height = page.evaluate(_SCROLLER_JS, None)[1]
    locator.first.scroll_into_view_if_needed()
    wait_settled(page)
    # A cell scrolled into view is laid out a moment later (JupyterLab's content-visibility
    # mode): until then its innerText is empty.
    page.wait_for_function("e => e.innerText.trim().length > 0",
                           arg=locator.first.element_handle(), timeout=WAIT)
    return locator.first


_TITLE_JS = """([expected, index]) => {
  const root = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)') || document;
  const g = root.querySelectorAll('.widget-vbox .js-plotly-plot')[index];
  const t = g && g.layout && g.layout.title;
  const text = t && (typeof t === 'string' ? t : t.text);
  return !!text && text.includes(expected);
}"""


def wait_title(page, expected, before, index=0):
    """Wait until the explorer's figure title says `expected` (the figure redrawn for
    the choice just made, not a resize of the old one); the figure's new state."""
    page.wait_for_function(_TITLE_JS, arg=[expected, index], timeout=90_000)
    state = wait_figure(page, index)
    assert state != before
    return state
