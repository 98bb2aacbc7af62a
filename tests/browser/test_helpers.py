"""The browser helpers themselves: they find the controls and the figure, see a change,
and catch what they are meant to catch, in JupyterLab and in Voila (on 01_address_space)."""

import json

import pytest

from tests.browser import helpers as h

NOTEBOOK = "01_address_space.ipynb"


def test_unreadable_cells_are_named():
    cells = ["0xffff800000000000", "128TB", "4", "NaN", "239.0", "18446603336221196288",
             "OpSequence(name='x')", "<percpu_explorer.X object at 0x7f00>", "~12MB", ""]
    bad = h.unreadable_cells(cells)
    assert [b.split(" ")[0] for b in bad] == [
        "NaN", "239.0", "18446603336221196288", "OpSequence(name='x')",
        "<percpu_explorer.X"]
    assert h.unreadable_cells(["4294967295", "1,024", "-3"]) == []  # below 4GB: a count


def test_every_console_warning_or_error_is_a_problem():
    problems = ["[error] Failed to load resource: net::ERR_NAME_NOT_RESOLVED "
                "(https://cdnjs.cloudflare.com/ajax/libs/mathjax/3.2.2/es5/tex-svg.min.js)",
                "[error] request outside loopback: GET https://cdnjs.cloudflare.com/x.js",
                "[error] Failed to load resource: the server responded with a status of 404 "
                "(http://127.0.0.1:1/voila/static/x.js)",
                "[warning] <image> width NaN", "[pageerror] TypeError: x is undefined",
                "[trace] WARN: Invalid color specifier: number 0.33333333333333337. Defaulting",
                "[warning] Unsatisfied version 4.2.5 of shared singleton module "
                "@jupyter-widgets/x"]
    assert h.console_problems([*problems, "[log] fine", "[debug] fine"]) == problems


# What webpack's module sharing prints in a dashboard (Voila 0.5.13's JupyterLab 4.2.5
# front end under widgets built against 4.5/4.6): the template's filter drops these ...
VERSION_WARNINGS = (
    "Unsatisfied version 4.2.5 from _JUPYTERLAB.CORE_OUTPUT of shared singleton module "
    "@jupyterlab/notebook (required ^4.6.2)",
    "Unsatisfied version 6.2.5 from _JUPYTERLAB.CORE_OUTPUT of shared singleton module "
    "@jupyterlab/services (required ^6.5.10)",
    "No satisfying version (^4.6.2) of shared module @jupyterlab/outputarea found in shared "
    "scope default.\nAvailable versions: 4.2.5 from _JUPYTERLAB.CORE_OUTPUT",
)
# ... and lets everything else through, near misses included.
OTHER_WARNINGS = (
    "Unsatisfied version 4.2.5 of shared singleton module @jupyter-widgets/base",
    "Unsatisfied version 3.0.5 from _JUPYTERLAB.CORE_OUTPUT of shared singleton module "
    "@jupyterlab/notebook (required ^4.6.2)",
    "No satisfying version (^4.6.2) of shared module @jupyterlab/notebook found in shared "
    "scope default.\nAvailable versions: 4.2.5 from _JUPYTERLAB.CORE_OUTPUT",
    "<image> width NaN",
)


@pytest.mark.browser
def test_dashboards_drop_only_the_module_version_warnings(page, console, voila_app):
    """The dashboards' console filter is exactly as wide as the warnings it is for; the
    widgets working in every dashboard (test_nbNN_*.py) show those warnings harmless."""
    h.open_dashboard(page, voila_app, NOTEBOOK)
    assert page.locator("#percpu-console-filter").count() == 1
    before = len(console)
    page.evaluate("(texts) => texts.forEach(t => console.warn(t))",
                  [*VERSION_WARNINGS, *OTHER_WARNINGS])
    page.evaluate("() => console.warn('two', 'arguments')")
    page.wait_for_timeout(200)
    assert console[before:] == [f"[warning] {t}" for t in OTHER_WARNINGS] + \
        ["[warning] two arguments"]


def _exercise(page, shot):
    """The figure reacts to a dropdown and a checkbox; the title follows the panel."""
    first = h.wait_figure(page)
    title = h.figure_title(page)
    assert "4K/48" in title, title
    h.set_checkbox(page, "local percpu (RFC 02/11)", False)
    mainline = h.wait_figure_changed(page, first)
    shot("local-off")
    h.select(page, "page size", "16K")
    sixteen = h.wait_figure_changed(page, mainline)
    assert "16K/" in h.figure_title(page) and sixteen != mainline
    assert json.loads(sixteen)["data"], "the figure has traces"
    shot("16K")
    assert h.figure_state(page, index=5) is None  # no sixth explorer figure


@pytest.mark.browser
def test_helpers_in_jupyterlab(page, console, shot, jupyterlab_server):
    h.open_in_lab(page, jupyterlab_server, NOTEBOOK)
    shot("ran-all-cells")
    h.assert_clean_page(page, console)
    h.assert_readable_tables(page)
    _exercise(page, shot)
    h.assert_clean_page(page, console)


@pytest.mark.browser
def test_helpers_in_voila(page, console, shot, voila_app):
    h.open_dashboard(page, voila_app, NOTEBOOK)
    shot("dashboard")
    h.assert_clean_page(page, console)
    h.assert_readable_tables(page)
    _exercise(page, shot)
    h.assert_clean_page(page, console)


@pytest.mark.browser
def test_clean_page_catches_a_warning_in_an_output(page, console, voila_app):
    h.open_dashboard(page, voila_app, NOTEBOOK)
    page.evaluate("""() => {
        const out = document.querySelector('.jp-OutputArea-output');
        out.insertAdjacentHTML('beforeend', '<pre>UserWarning: Out of range float</pre>');
    }""")
    with pytest.raises(AssertionError, match="Out of range float"):
        h.assert_clean_page(page, console)
    page.evaluate("() => document.querySelector('.jp-OutputArea-output pre:last-child')"
                  ".remove()")
    h.assert_clean_page(page, console)
    with pytest.raises(AssertionError, match="width NaN"):
        h.assert_clean_page(page, [*console, "[warning] <image> width NaN"])


@pytest.mark.browser
@pytest.mark.parametrize(("code", "shown"), [
    ("import warnings\nwarnings.warn('Out of range float values')", "Out of range float"),
    ("1 / 0", "ZeroDivisionError"),
])
def test_open_in_lab_fails_on_a_warning_or_an_error(page, jupyterlab_server, code, shown):
    name = f"helpers_{abs(hash(code))}.ipynb"
    cells = [{"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
              "source": source} for source in (code, "print('after')")]
    notebook = {"cells": cells, "metadata": {"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5}
    response = page.request.put(f"{jupyterlab_server}api/contents/{name}",
                                data={"type": "notebook", "format": "json", "content": notebook})
    assert response.ok, response.text()
    with pytest.raises(AssertionError, match=shown):
        h.open_in_lab(page, jupyterlab_server, name)
