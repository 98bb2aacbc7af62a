"""06_exercises in Chromium, as a class works it: in JupyterLab (every cell run) and as a
Voila dashboard, where no code shows. The sheet says what its seed asks; a right answer
typed as a student would (no 0x, capitals, spaces) is accepted and opens the worked answer,
a wrong one is rejected and the answer stays folded; another seed draws other questions."""

import pytest

from percpu_explorer.exercises import exercise_set, exercises_finding
from percpu_explorer.ui import app

from .helpers import (
    WAIT,
    assert_clean_page,
    notebook_root,
    open_dashboard,
    open_in_lab,
    outputs_text,
    set_text,
    wait_settled,
)

pytestmark = pytest.mark.browser

NOTEBOOK = "06_exercises.ipynb"
SEED = 2026


def cards(page):
    """The question cards of the sheet, in order."""
    return notebook_root(page).locator(".widget-vbox:has(> .widget-hbox button:text-is('Check'))")


def words(text):
    return " ".join(text.split())


def wait_text(page, locator, text):
    """Wait until `locator`'s text holds `text` (whitespace-insensitive)."""
    locator.filter(has_text=text).first.wait_for(timeout=WAIT)


def check_sheet(page, console, shot, where):
    exercises = exercise_set(SEED, 3)
    finding = exercises_finding(exercises)
    text = words(outputs_text(page))
    # the question and what this seed asks lead, from the model
    assert finding.question in text and words(finding.answer) in text
    assert "Words used here" in text
    sheet = cards(page)
    assert sheet.count() == 3
    for i, ex in enumerate(exercises):
        card_text = words(sheet.nth(i).inner_text())
        assert words(ex.question) in card_text
        for line in ex.shown:
            assert line in card_text, line
        assert f"Answer: {ex.answer}" not in card_text  # folded
    shot(f"{where}-questions")

    # 1. a right address, typed without 0x, in capitals, with spaces: accepted, explained
    first = exercises[0]
    digits = first.answer.removeprefix("0x").upper()
    typed = " ".join(digits[i:i + 4] for i in range(0, len(digits), 4))
    set_text(page, "answer", typed, index=0)
    wait_text(page, sheet.nth(0).locator(".widget-html"), "Right:")
    solution = sheet.nth(0).locator(".widget-html", has_text=f"Answer: {first.answer}")
    solution.wait_for(state="visible", timeout=WAIT)
    assert words(first.explanation) in words(solution.inner_text())
    sheet.nth(0).scroll_into_view_if_needed()
    shot(f"{where}-right-answer")

    # 2. a wrong offset, entered with the Check button: rejected, the answer stays folded
    second = exercises[1]
    field = sheet.nth(1).locator(".widget-text input")
    field.fill(str(second.value + 4))
    sheet.nth(1).locator("button:text-is('Check')").click()
    wait_text(page, sheet.nth(1).locator(".widget-html"), "Not right:")
    assert not sheet.nth(1).locator(".widget-html", has_text="Answer:").is_visible()
    sheet.nth(1).scroll_into_view_if_needed()
    shot(f"{where}-wrong-answer")

    # 3. something that is no number: said so, nothing judged
    set_text(page, "answer", "no idea", index=2)
    wait_text(page, sheet.nth(2).locator(".widget-html"), "is not a")
    shot(f"{where}-unreadable-answer")
    assert_clean_page(page, console)

    # 4. another seed: other questions, and the summary follows
    set_text(page, "seed", str(SEED + 1))
    others = exercise_set(SEED + 1, 3)
    wait_text(page, cards(page).nth(0), others[0].question[:60])
    text = words(outputs_text(page))
    for ex in others:
        assert words(ex.question) in text
    for ex in exercises:
        assert words(ex.question) not in text
    assert words(exercises_finding(others).answer) in text
    notebook_root(page).locator(".widget-text input").first.scroll_into_view_if_needed()
    shot(f"{where}-seed-{SEED + 1}")

    # 5. a bad seed: refused in plain words, the questions stay
    set_text(page, "seed", "-1")
    wait_text(page, notebook_root(page).locator(".widget-html"), "must be a whole number")
    assert words(others[0].question) in words(outputs_text(page))
    shot(f"{where}-bad-seed")
    assert_clean_page(page, console)


def test_dashboard(page, console, shot, voila_app):
    open_dashboard(page, voila_app, NOTEBOOK)
    wait_settled(page)
    assert "ExerciseSheet(" not in page.content()  # no code cells
    shot("dashboard")
    check_sheet(page, console, shot, "dashboard")


def test_jupyterlab(page, console, shot, jupyterlab_server):
    open_in_lab(page, jupyterlab_server, NOTEBOOK)
    shot("lab")
    check_sheet(page, console, shot, "lab")


def test_the_class_load_calls_the_page_live_only_once_its_widgets_are(page, voila_app):
    """`classload.LIVE_JS` (the class load's "live" time): this Voila leaves a widget's
    output as the text "Loading widget..." until its model arrives, with no mime-type
    attribute to look for; the check read such a page, 06 still loading, as live."""
    from percpu_explorer.ui import classload

    page.goto(app.dashboard_url(voila_app, NOTEBOOK), timeout=WAIT)
    page.wait_for_function(classload.LIVE_JS, arg=0, timeout=WAIT, polling=20)
    assert "Loading widget" not in outputs_text(page)
    assert notebook_root(page).locator("select").count() == 1  # the questions dropdown
    assert cards(page).count() == 3
