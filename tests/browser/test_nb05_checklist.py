"""05_reviewer_checklist in Chromium, as a reviewer reads it: in JupyterLab (every cell
run) and as a Voila dashboard. The answer leads with the model's numbers, one summary
row per claim follows, every configuration's row is folded per claim, kernel symbols
survive Markdown, and the page is a page, not 21,000 px of table."""

import pytest

from percpu_explorer.claims import CLAIMS, checklist_finding, evaluate_claims

from .helpers import (
    assert_clean_page,
    assert_readable_tables,
    notebook_root,
    open_dashboard,
    open_in_lab,
    outputs_text,
    wait_settled,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "05_reviewer_checklist.ipynb"
SYMBOL = "raw_cpu_*/__this_cpu_*"
# Everything folded: the answer, the glossary, the summary table and one line per claim.
# Before issue 14 the page was about 21,000 px tall.
MAX_HEIGHT = 6000


@pytest.fixture(scope="module")
def finding():
    """The notebook's answer, computed here as the notebook computes it."""
    return checklist_finding(evaluate_claims("7.1"), "7.1")


def outputs_height(page):
    """The height of all cell outputs together, in CSS pixels."""
    return page.evaluate("""() => {
        const root = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden)')
                     || document;
        return [...root.querySelectorAll('.jp-OutputArea-output')]
            .reduce((h, o) => h + o.getBoundingClientRect().height, 0);
    }""")


def check_reading(page, console, shot, finding, where):
    text = " ".join(outputs_text(page).split())
    assert finding.question in text and finding.answer in text
    n = finding.numbers
    assert f"cannot fit in {n['cannot_fit']} of the {n['configurations']}" in text
    assert "Words used here" in text
    # the summary table: one row per claim, what it stands on and where it fails
    summary = notebook_root(page).locator(".jp-OutputArea-output table").first
    heads = [h.strip() for h in summary.locator("thead th").all_inner_texts()]
    assert {"claim", "basis", "verdicts", "fails in"} <= set(heads), heads
    assert summary.locator("tbody tr").count() == len(CLAIMS)
    assert "16K/36" in summary.inner_text()  # claim 1 fails there (kernel arithmetic)
    # every configuration's row, folded per claim
    folds = notebook_root(page).locator(".jp-OutputArea-output details:not(.pe-glossary)")
    assert folds.count() == len(CLAIMS)
    assert outputs_height(page) < MAX_HEIGHT
    shot(f"{where}-folded")
    # open claim 9a as a reviewer would: its row names raw_cpu_*/__this_cpu_* as written
    nine = folds.filter(has_text="9a preempt safety")
    nine.locator("summary").click()
    nine.locator("table").wait_for(state="visible")
    nine.scroll_into_view_if_needed()
    body = nine.inner_text()
    assert SYMBOL in body and "raw_cpu/_this_cpu" not in body
    assert "holds with caveat if patch 11/11" in body
    shot(f"{where}-claim-9a-open")
    assert_clean_page(page, console)
    assert_readable_tables(page)


def test_dashboard(page, console, shot, voila_app, finding):
    open_dashboard(page, voila_app, NOTEBOOK)
    wait_settled(page)
    shot("dashboard")
    assert "evaluate_claims(" not in page.content()  # no code cells
    check_reading(page, console, shot, finding, "dashboard")


def test_jupyterlab(page, console, shot, jupyterlab_server, finding):
    open_in_lab(page, jupyterlab_server, NOTEBOOK)
    shot("lab")
    check_reading(page, console, shot, finding, "lab")
