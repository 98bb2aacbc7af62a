"""04_this_cpu_replay in Chromium, as a person reads it: in JupyterLab (every cell run)
and as a Voila dashboard. The answer on the page is the model's, the tables read, and
every control the cost explorer offers changes its figure; the panel offers only the
kernel and the CPUs."""

import pytest

from percpu_explorer.thiscpu import (
    op_cost,
    op_sequence,
    price_workload,
    read_workload,
    this_cpu_finding,
)

from ..conftest import DATA
from .helpers import (
    _BAD_WORDS as BAD_WORDS,
)
from .helpers import (
    assert_clean_page,
    assert_readable_tables,
    figure_state,
    figure_title,
    open_dashboard,
    open_in_lab,
    outputs_text,
    select,
    set_text,
    unreadable_cells,
    wait_figure,
    wait_figure_changed,
    wait_settled,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "04_this_cpu_replay.ipynb"


@pytest.fixture(scope="module")
def finding():
    """The notebook's answer, computed here as the notebook computes it."""
    cost = price_workload(read_workload(DATA / "workloads" / "mix.parquet"), preempt="full")
    return this_cpu_finding("add", 8, preempt="full", cost=cost, workload="mix.parquet")


def reveal(page):
    """Scroll every output into view once: Voila and JupyterLab render a widget's view
    only when its output comes near the screen. Then wait for the explorer's figure."""
    outputs = page.locator(".jp-OutputArea-output")
    for i in range(outputs.count()):
        outputs.nth(i).scroll_into_view_if_needed()
    wait_figure(page)
    wait_settled(page)


# JupyterLab keeps only the cells near the screen in the page (windowing): read every
# cell's outputs from the notebook's widgets instead, attached or not.
_LAB_OUTPUTS_JS = """() => {
  const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
  if (!w || !w.content || !w.content.widgets) return null;
  return w.content.widgets.filter(c => c.outputArea).map(c => {
    const node = c.outputArea.node.cloneNode(true);  // without plotly's script and styles
    node.querySelectorAll('script, style').forEach(e => e.remove());
    return {text: node.textContent, cells: [...node.querySelectorAll('table')].map(
      t => [...t.querySelectorAll('th, td')].map(x => x.textContent.trim()))};
  });
}"""


def page_outputs(page):
    """(text of every output, table cells of every output table) of the notebook shown."""
    lab = page.evaluate(_LAB_OUTPUTS_JS)
    if lab is None:  # Voila: every output is in the page
        return outputs_text(page), None
    return "\n".join(o["text"] for o in lab), [c for o in lab for c in o["cells"]]


def check_reading(page, console, finding):
    """The question and answer lead, with the model's numbers; the sequences are a table
    of instructions, not a repr; nothing on the page warns or fails."""
    raw, tables = page_outputs(page)
    text = " ".join(raw.split())
    assert finding.question in text and finding.answer in text
    n = finding.numbers
    assert f"~{n['today_cycles']:.0f} cycles" in text and f"~{n['local_cycles']:.0f} cycles" \
        in text
    for seq in (op_sequence("add", 8, preempt="full"),
                op_sequence("add", 8, scheme="local", preempt="full")):
        for insn in seq.texts():
            assert insn in text, insn
        assert f"~{op_cost(seq).cycles:.0f} cycles (estimate)" in text
    assert "OpSequence(" not in text and "ReviewerView(" not in text
    assert "Words used here" in text and "How to read it:" in text
    assert_clean_page(page, console)
    if tables is None:
        assert_readable_tables(page)
    else:  # the same checks on the cells JupyterLab holds off the page
        assert not BAD_WORDS.search(raw), BAD_WORDS.search(raw)
        assert len(tables) >= 5
        bad = [cell for cells in tables for cell in unreadable_cells(cells)]
        assert not bad, bad


def offered_panel(page):
    """Descriptions of the visible panel controls of the explorer."""
    return page.evaluate("""() => [...document.querySelectorAll(
        '.widget-vbox .widget-dropdown, .widget-vbox .widget-text, .widget-vbox .widget-checkbox')]
        .filter(w => w.offsetParent !== null)
        .map(w => (w.querySelector('label') || {}).innerText || '')""")


def show_explorer(page):
    """Scroll the explorer (panel, controls, figure) to the top of the screen."""
    page.evaluate("""() => document.querySelector('.widget-vbox .js-plotly-plot')
        .closest('.widget-vbox').scrollIntoView({block: 'start'})""")
    page.wait_for_timeout(300)


def change(page, shot, name, action, expect):
    """Do `action`, wait for the explorer's figure to change and its title to say
    `expect` (a text field may redraw twice: as typed and on Enter), then shoot."""
    before = figure_state(page)
    action()
    wait_figure_changed(page, before)
    try:
        page.wait_for_function(
            "(e) => { const g = document.querySelector('.widget-vbox .js-plotly-plot');"
            " return g && g.layout && g.layout.title && g.layout.title.text.includes(e); }",
            arg=expect, timeout=30_000)
    finally:
        show_explorer(page)
        shot(name)
    return figure_title(page)


def test_dashboard(page, console, shot, voila_app, finding):
    open_dashboard(page, voila_app, NOTEBOOK)
    shot("dashboard")
    reveal(page)
    show_explorer(page)
    shot("dashboard-explorer")
    check_reading(page, console, finding)
    labels = offered_panel(page)
    assert {"kernel", "CPUs", "workload", "core", "preempt"} <= set(labels)
    assert not {"page size", "VA bits", "KASAN", "local percpu (RFC 02/11)"} & set(labels)
    assert " on 4 CPUs, kernel 7.1" in figure_title(page)
    change(page, shot, "cpus-64", lambda: set_text(page, "CPUs", "64"), " on 64 CPUs,")
    change(page, shot, "kernel-6.1", lambda: select(page, "kernel", "6.1"),
           "local percpu needs v6.9+")
    change(page, shot, "kernel-7.1", lambda: select(page, "kernel", "7.1"), "kernel 7.1")
    change(page, shot, "preempt-lazy", lambda: select(page, "preempt", "lazy"),
           "preempt=lazy")
    change(page, shot, "core-v2", lambda: select(page, "core", "neoverse-v2"),
           "core neoverse-v2")
    change(page, shot, "workload-mix", lambda: select(page, "workload", "mix.parquet"),
           "2,881 this_cpu ops on 64 CPUs (8 with ops)")
    # fewer CPUs than the file uses: the panel goes back and says why
    set_text(page, "CPUs", "4")
    page.get_by_text("CPUs must be 8 or more").wait_for()
    assert " on 64 CPUs " in figure_title(page)
    assert page.locator(".widget-text:has(label:text-is('CPUs')) input").input_value() == "64"
    shot("cpus-refused")
    assert_clean_page(page, console)


def test_jupyterlab(page, console, shot, jupyterlab_server, finding):
    open_in_lab(page, jupyterlab_server, NOTEBOOK)
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget.content"
                  ".scrollToItem(0, 'start'); }")
    page.wait_for_timeout(500)
    shot("lab-top")
    reveal(page)
    show_explorer(page)
    shot("lab-explorer")
    check_reading(page, console, finding)
    change(page, shot, "lab-kernel-6.12", lambda: select(page, "kernel", "6.12"),
           "kernel 6.12")
    change(page, shot, "lab-preempt-voluntary", lambda: select(page, "preempt", "voluntary"),
           "preempt=voluntary")
    change(page, shot, "lab-cpus-16", lambda: set_text(page, "CPUs", "16"), " on 16 CPUs,")
    assert_clean_page(page, console)
