"""The exercise sheet, driven headless (ipywidgets 8 needs no kernel): a seed field that
draws another set, and per question an answer field and a Check button that accept the
right answer, reject a wrong one and keep the worked answer folded until it is earned or
asked for."""

import html

import pytest
from ipywidgets.widgets.widget import _instances  # every open widget model, by id

from percpu_explorer.errors import InputError
from percpu_explorer.exercises import exercise_set
from percpu_explorer.kernel import fmt_addr
from percpu_explorer.ui.widgets import ExerciseSheet


@pytest.fixture
def sheet():
    return ExerciseSheet(2026, 3)


def test_sheet_shows_the_set_of_its_seed_with_answers_folded(sheet):
    assert sheet.exercises == exercise_set(2026, 3)
    assert [c.exercise.kind for c in sheet.cards] == ["translate", "next offset",
                                                      "lost update"]
    for card in sheet.cards:
        assert card.solution.selected_index is None  # folded
        assert card.exercise.answer not in card.question.value
        assert card.exercise.question.split(".")[0] in card.question.value
        assert card.result.value == ""
    assert "3 questions for seed 2026" in sheet.header.value
    assert "Seed 2026 asks 3 questions" in sheet.summary.value
    assert "<b>Question.</b>" in sheet.summary.value


def test_a_right_answer_is_accepted_and_explained(sheet):
    card = sheet.cards[0]  # translate: a hex address
    typed = " " + card.exercise.answer.removeprefix("0x").upper() + " "
    card.answer.value = typed  # Enter in the field
    assert card.last is not None and card.last.right
    assert "Right" in card.result.value and card.answer_shown
    assert html.escape(card.exercise.explanation) in card.solution.children[0].value


def test_a_wrong_answer_is_rejected_and_the_answer_stays_folded(sheet):
    card = sheet.cards[1]  # next offset: a whole number
    card.answer.value = str(card.exercise.value + 4)
    card.check_button.click()
    assert card.last is not None and card.last.status == "wrong"
    assert "Not right" in card.result.value and not card.answer_shown
    assert card.check("no idea").status == "unreadable"
    assert "is not a whole number" in card.result.value
    assert card.check(str(card.exercise.value)).right and card.answer_shown


def test_a_tempting_mistake_is_named():
    sheet = ExerciseSheet(7, 3)
    card = sheet.cards[0]
    g = card.exercise.givens
    other = next(c for c in g["unit_pa"] if c != g["cpu"])
    result = card.check(fmt_addr(g["unit_pa"][other] + g["local_address"] - g["local_base"]))
    assert result.status == "wrong" and f"CPU {other}&#x27;s copy" in card.result.value


def test_changing_the_seed_draws_another_set(sheet):
    before = [c.exercise.text() for c in sheet.cards]
    sheet.seed_field.value = "2027"
    assert sheet.seed == 2027 and sheet.error is None
    after = [c.exercise.text() for c in sheet.cards]
    assert after == [e.text() for e in exercise_set(2027, 3)] and set(after).isdisjoint(before)
    assert "Seed 2027 asks 3 questions" in sheet.summary.value  # the summary follows
    assert all(c.solution.selected_index is None for c in sheet.cards)
    sheet.seed_field.value = " 2,028 "
    assert sheet.seed == 2028 and sheet.seed_field.value == "2028"


def test_a_bad_seed_is_refused_and_the_questions_stay(sheet):
    before = sheet.exercises
    sheet.seed_field.value = "-3"
    assert sheet.seed == 2026 and sheet.exercises == before
    assert "seed '-3' must be a whole number from 0 to 999999999" in sheet.error
    assert "stay" in sheet.message.value
    sheet.seed_field.value = "5"
    assert sheet.error is None and sheet.message.value == ""


def test_more_questions(sheet):
    sheet.count_field.value = 6
    kinds = [c.exercise.kind for c in sheet.cards]
    assert kinds == ["translate", "next offset", "lost update"] * 2
    assert len({c.exercise.text() for c in sheet.cards}) == 6
    with pytest.raises(InputError, match="count 4 is not offered"):
        ExerciseSheet(1, 4)


def test_another_count_shows_the_cards_already_made_and_another_seed_closes_them(sheet):
    """A set of a seed begins with every smaller set of it (exercise_set draws question i
    from the seed and the questions before it), so 3 -> 6 -> 3 -> 6 shows the same cards
    with what was typed in them, made once: the three hidden by 3 come back as they were.
    Another seed closes the old seed's cards, shown or not (a kernel serving a class for
    an hour keeps at most one seed's cards)."""

    first = list(sheet.cards)
    assert all(c.widget.comm is not None for c in first)  # open while shown
    first[0].check("0x0")
    sheet.count_field.value = 6
    assert sheet.cards[:3] == first
    assert sheet.exercises == exercise_set(2026, 6)
    assert sheet.cards[0].answer.value == "0x0" and sheet.cards[0].result.value != ""
    later = sheet.cards[3:]
    later[0].check("12")
    sheet.count_field.value = 3
    assert sheet.cards == first and sheet.exercises == exercise_set(2026, 3)
    assert sheet.box.children == tuple(c.widget for c in first)  # the others hidden
    models = len(_instances)
    sheet.count_field.value = 6  # the same three back: no widget made
    assert sheet.cards == first + later and len(_instances) == models
    assert later[0].answer.value == "12"
    # The layouts and styles every card shares stay open for the cards shown.
    assert all(model.comm is not None for model in sheet.looks.models())
    assert first[0].answer.layout is sheet.looks.answer and first[0].answer.layout.comm
    sheet.count_field.value = 3
    sheet.seed_field.value = "7"  # another seed: other questions, every old card closed
    assert sheet.exercises == exercise_set(7, 3)
    for card in first + later:
        assert card.widget.comm is None and card.question.comm is None
        assert card.solution.children[0].comm is None  # the folded answer's HTML too
    assert all(model.comm is not None for model in sheet.looks.models())


def test_cards_share_their_layouts_and_styles(sheet):
    """Each widget model is a message to the page: 9 new cards made 189 models (13
    layouts and styles per card beside its 8 widgets); with the sheet's shared looks
    they make 72, the 8 widgets each."""
    import ipywidgets as W

    before = set(_instances)
    sheet.count_field.value = 12
    new = [_instances[k] for k in _instances if k not in before]
    assert len(new) == 9 * 8
    assert not any(isinstance(w, (W.Layout, W.Style)) for w in new)
    sheet.count_field.value = 3
    sheet.count_field.value = 12  # made already: none new
    assert len(_instances) == len(before) + 9 * 8
    looks = {id(m) for m in sheet.looks.models()}
    for card in sheet.cards:
        parts = [card.question, card.answer, card.check_button, card.result, card.solution,
                 card.widget, card.widget.children[1], card.solution.children[0]]
        assert all(id(p.layout) in looks for p in parts)
