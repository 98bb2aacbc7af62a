"""End to end in Chromium: the landing page lists the dashboards in order and opens them,
and JupyterLab runs 01_address_space from the browser to its end. Each notebook's own
checks, in JupyterLab and in Voila, are in test_nbNN_*.py."""

import pytest

from percpu_explorer.glossary import TERMS
from percpu_explorer.ui import app
from tests.browser import helpers as h

pytestmark = pytest.mark.browser

WAIT = 90_000  # ms: a dashboard's kernel runs its whole notebook before the page is whole


def test_landing_page_lists_the_dashboards_in_order(page, console, shot, voila_app):
    """Titles (each notebook's first heading) in the suggested order, a line on each, the
    glossary's terms, and links that open the dashboards."""
    page.goto(voila_app)
    expected = app.dashboards()
    titles = page.locator(".dashboard-title")
    titles.first.wait_for(timeout=30_000)
    assert titles.all_inner_texts() == [d.title for d in expected]
    assert [d.notebook for d in expected] == sorted(d.notebook for d in expected)  # 01..06
    hrefs = [titles.nth(i).get_attribute("href") for i in range(titles.count())]
    assert hrefs == [f"/voila/render/{d.notebook}" for d in expected]
    descriptions = page.locator(".dashboard-description").all_inner_texts()
    assert descriptions == [d.description for d in expected] and all(descriptions)
    shot("landing")
    page.get_by_role("link", name="Glossary").click()
    terms = page.locator("dl.glossary dt").all_inner_texts()
    assert terms == list(TERMS)
    assert page.locator("dl.glossary dd").first.inner_text() == TERMS[terms[0]]
    shot("glossary")
    h.assert_clean_page(page, console)

    for i, d in enumerate(expected[:2]):  # the links lead to the dashboards
        page.goto(voila_app)
        page.locator(".dashboard-title").nth(i).click()
        page.wait_for_url(f"**/voila/render/{d.notebook}", timeout=WAIT)
        page.locator("#rendered_cells").wait_for(state="visible", timeout=WAIT)
        assert page.locator("h1").first.inner_text().startswith(d.title)
        shot(f"opened-{d.notebook.split('_')[0]}")


# Under load the notebook's first kernel websocket can close before it connects;
# open_in_lab reloads once, and the test reruns once.
@pytest.mark.flaky(reruns=1)
def test_jupyterlab_runs_01_address_space_to_the_end(page, console, shot, jupyterlab_server):
    h.open_in_lab(page, jupyterlab_server, "01_address_space.ipynb")
    assert page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .widget-vbox select"
                        ).count() >= 4  # the explorer's panel
    h.wait_figure(page)
    shot("ran-all-cells")
    h.assert_clean_page(page, console)


def test_a_dashboard_draws_every_figure_with_one_plotly_js(page, console, shot, voila_app):
    """The page loads plotly.js once (the template's cartesian bundle, the version plotly.py
    writes for; `ui.plotlyjs`); its static figures draw with it, those on the first screen
    at once and the others once scrolled to, each at its layout's height (an undrawn or
    collapsed figure would be 0 px high)."""
    from percpu_explorer.ui import plotlyjs

    h.open_dashboard(page, voila_app, "03_percpu_allocator.ipynb")
    assert page.evaluate("() => window.Plotly.version") == plotlyjs.plotly_py_version()
    scripts = page.evaluate("""() => performance.getEntriesByType('resource')
        .map(r => r.name).filter(n => /plotly|widgetbundle/.test(n))""")
    assert len(scripts) == 1 and "plotly-cartesian.min.js" in scripts[0], scripts
    static = page.locator("#rendered_cells .plotly-graph-div:not(.widget-vbox *)")
    assert static.count() >= 4  # 03: offsets (mainline, patched), chunks, allocation map
    for i in range(static.count()):
        static.nth(i).scroll_into_view_if_needed()
        page.wait_for_function(
            "(i) => !!document.querySelectorAll("
            "'#rendered_cells .plotly-graph-div')[i]?.querySelector('.main-svg')",
            arg=i, timeout=WAIT)
    heights = page.evaluate("""() => [...document.querySelectorAll(
        '#rendered_cells .plotly-graph-div')].map(d => [d.offsetHeight,
        (d._fullLayout || {}).height])""")
    assert all(px >= 300 and px == layout for px, layout in heights), heights
    shot("figures-drawn")
    h.assert_clean_page(page, console)


def test_the_app_s_static_figures_draw_in_jupyterlab_too(page, console, jupyterlab_server):
    """Under JupyterHub a student may open a notebook in JupyterLab, whose kernels draw
    static figures as the app's do (renderer percpu_page): with no template in the page,
    the figure loads plotly.js from the server's Voila extension (`plotlyjs.STATIC_PATH`)."""
    code = ("import os\nos.environ['PERCPU_EXPLORER_RENDERER'] = 'percpu_page'\n"
            "from percpu_explorer import KernelConfig, compute_layout\n"
            "from percpu_explorer.ui import plots\n"
            "assert plots.set_renderer() == 'percpu_page'\n"
            "plots.address_space_map(compute_layout(KernelConfig()))")
    name = "static_figure_percpu_page.ipynb"
    notebook = {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                           "outputs": [], "source": code}],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    response = page.request.put(f"{jupyterlab_server}api/contents/{name}",
                                data={"type": "notebook", "format": "json",
                                      "content": notebook})
    assert response.ok, response.text()
    h.open_in_lab(page, jupyterlab_server, name)
    root = ".jp-NotebookPanel:not(.lm-mod-hidden)"
    page.wait_for_selector(f"{root} .plotly-graph-div .main-svg", timeout=WAIT)
    assert "Kernel address space" in page.locator(f"{root} .plotly-graph-div").inner_text()
    assert page.evaluate("() => document.getElementById('percpu-plotly').src").endswith(
        "voila/templates/percpu-explorer/static/plotly-cartesian.min.js")
    h.assert_clean_page(page, console)
