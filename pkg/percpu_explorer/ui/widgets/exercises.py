"""`ExerciseSheet`: a class's exercises as a dashboard a student can work without code.

A seed field (the teacher gives the class one seed) and how many questions; for each
question the question itself, an answer field and a "Check" button that accepts the
right answer (hex with or without 0x, any case, spaces; whole numbers), rejects a wrong
one saying what a tempting wrong answer misses, and then shows the worked solution. The
answer stays folded until the student checks a right answer or opens it.
"""

from __future__ import annotations

import html
from collections.abc import Collection
from typing import Any

import ipywidgets as W
from ipywidgets.widgets.widget_string import HTMLStyle, TextStyle

from ...errors import InputError
from ...exercises import (
    MAX_COUNT,
    AnswerCheck,
    Exercise,
    check_seed,
    exercise_set,
    exercises_finding,
)
from ..text import show_finding

DEFAULT_SEED = 2026
COUNTS = tuple(n for n in (3, 6, 9, 12) if n <= MAX_COUNT)

_STYLE = {"right": "color:#2ca02c", "wrong": "color:#d62728", "unreadable": "color:#b35900"}
_MARK = {"right": "&#10004; ", "wrong": "&#10008; ", "unreadable": ""}


class CardLooks:
    """The layouts and styles every card of a sheet shares, never changed after: each is
    one widget model in the front end, and a card with its own took 13 of them beside
    its 8 widgets (9 new cards made 189 models; sharing these six, 72)."""

    def __init__(self) -> None:
        self.plain = W.Layout()
        self.answer = W.Layout(width="28em")
        self.card = W.Layout(border="1px solid #ddd", padding="4px 8px", margin="0 0 8px 0")
        self.html = HTMLStyle()
        self.text = TextStyle()
        self.button = W.ButtonStyle()

    def models(self) -> set[W.Widget]:
        return {self.plain, self.answer, self.card, self.html, self.text, self.button}


class QuestionCard:
    """One exercise: the question, an answer field, "Check", the verdict and the answer
    folded until asked."""

    def __init__(self, exercise: Exercise, number: int, looks: CardLooks | None = None
                 ) -> None:
        self.exercise = exercise
        self.number = number
        self.last: AnswerCheck | None = None
        self._setting = False
        self._own_looks = looks is None
        self.looks = looks = CardLooks() if looks is None else looks
        self.question = W.HTML(exercise.question_html().replace(
            "<p><b>", f"<p><b>{number}. ", 1), layout=looks.plain, style=looks.html)
        self.answer = W.Text(description="answer", placeholder=exercise.hint,
                             continuous_update=False, layout=looks.answer, style=looks.text)
        self.check_button = W.Button(description="Check", button_style="primary",
                                     tooltip="check your answer", layout=looks.plain,
                                     style=looks.button)
        self.result = W.HTML("", layout=looks.plain, style=looks.html)
        self.solution = W.Accordion(
            children=(W.HTML(exercise.answer_html(), layout=looks.plain, style=looks.html),),
            titles=("Show the answer",), selected_index=None, layout=looks.plain)
        self.check_button.on_click(lambda _button: self._check_now())
        self.answer.observe(self._on_answer, names="value")
        self.widget = W.VBox([self.question,
                              W.HBox([self.answer, self.check_button], layout=looks.plain),
                              self.result, self.solution], layout=looks.card)

    def close(self) -> None:
        """Close the card's widgets in the front end, with their layouts and styles
        unless the sheet's other cards share them."""
        _close_tree(self.widget, keep=set() if self._own_looks else self.looks.models())

    def _on_answer(self, change: dict[str, Any]) -> None:
        if not self._setting and str(change["new"]).strip():
            self._check_now()  # Enter in the field checks, like the button

    def check(self, text: str | None = None) -> AnswerCheck:
        """Check `text` (default: what the answer field holds) and show the verdict; a
        right answer opens the worked solution."""
        if text is not None:
            self._setting = True
            try:
                self.answer.value = text
            finally:
                self._setting = False
        return self._check_now()

    def _check_now(self) -> AnswerCheck:
        result = self.exercise.check(self.answer.value)
        self.last = result
        self.result.value = (f"<span class='pe-check pe-{result.status}' "
                             f"style='{_STYLE[result.status]}'>{_MARK[result.status]}"
                             f"{html.escape(result.message)}</span>")
        if result.right:
            self.solution.selected_index = 0
        return result

    @property
    def answer_shown(self) -> bool:
        return self.solution.selected_index == 0


class ExerciseSheet:
    """The exercises of one seed: change the seed (type it, press Enter) or the number of
    questions for another set; each question has its answer field and Check button.
    `summary` is what the set asks (`exercises.exercises_finding`), kept in step with the
    seed: show it above the sheet."""

    def __init__(self, seed: int = DEFAULT_SEED, count: int = 3) -> None:
        self.seed = check_seed(seed)
        if count not in COUNTS:
            raise InputError(f"count {count!r} is not offered; choose one of "
                             f"{', '.join(map(str, COUNTS))}", field="count")
        self.count = count
        self.error: str | None = None
        self.seed_field = W.Text(description="seed", value=str(self.seed),
                                 continuous_update=False, layout=W.Layout(width="16em"))
        self.count_field = W.Dropdown(description="questions", options=COUNTS, value=count,
                                      layout=W.Layout(width="12em"))
        self.message = W.HTML("")
        self.header = W.HTML("")
        self.summary = W.HTML("")
        self.cards: list[QuestionCard] = []
        self._made: list[QuestionCard] = []  # every card of _made_seed made so far
        self._made_seed: int | None = None
        self.looks = CardLooks()
        self._drawn: tuple[int, list[Exercise]] | None = None
        self.box = W.VBox([])
        self.seed_field.observe(self._on_seed, names="value")
        self.count_field.observe(self._on_count, names="value")
        self.widget = W.VBox([W.HBox([self.seed_field, self.count_field]), self.message,
                              self.header, self.box])
        self._draw()

    @property
    def exercises(self) -> list[Exercise]:
        return [card.exercise for card in self.cards]

    def _draw(self) -> None:
        """The seed's first `count` questions. A set of a seed begins with the questions
        of every smaller set of it (`exercise_set`), so the sheet keeps every card of
        the seed it has made, shown or not: another count shows the first `count` of
        them (one message to the page; a card made anew is 8 widget models), with what
        the student typed in them. Another seed closes the old seed's cards."""
        exercises = self._exercises(self.seed, self.count)
        made = self._made
        if self._made_seed != self.seed:
            for card in made:
                card.close()
            made.clear()
            self._made_seed = self.seed
        kept = 0
        while kept < min(len(made), len(exercises)) and made[kept].exercise == exercises[kept]:
            kept += 1
        if kept < min(len(made), len(exercises)):  # not this set's: made again
            for card in made[kept:]:
                card.close()
            del made[kept:]
        made += [QuestionCard(ex, i, self.looks)
                 for i, ex in enumerate(exercises[len(made):], len(made) + 1)]
        self.cards = made[:len(exercises)]
        self.box.children = tuple(card.widget for card in self.cards)
        self.finding = exercises_finding(self.exercises)
        self.summary.value = show_finding(self.finding, question=True).data
        self.header.value = (f"<p><b>{self.count} questions for seed {self.seed}.</b> Type "
                             "your answer and press Check (or Enter); the worked answer "
                             "opens when you are right, or when you ask for it.</p>")

    def _exercises(self, seed: int, count: int) -> list[Exercise]:
        """`exercise_set(seed, count)`, cut from the longest set of this seed drawn so far."""
        have = self._drawn if self._drawn and self._drawn[0] == seed else None
        if have is None or len(have[1]) < count:
            have = self._drawn = (seed, exercise_set(seed, count))
        return have[1][:count]

    def _on_seed(self, change: dict[str, Any]) -> None:
        self.set_seed(change["new"])

    def _on_count(self, change: dict[str, Any]) -> None:
        self.count = int(change["new"])
        self._draw()

    def set_seed(self, seed: object) -> bool:
        """Draw the set of `seed` (a number or the text typed); False, with the reason
        shown and the questions kept, when it is no valid seed."""
        try:
            value = check_seed(seed)
        except InputError as exc:
            self.error = str(exc)
            self.message.value = (f"<span style='{_STYLE['unreadable']}'>"
                                  f"{html.escape(self.error)}; the questions of seed "
                                  f"{self.seed} stay.</span>")
            return False
        self.error = None
        self.message.value = ""
        if value != self.seed or not self.cards:
            self.seed = value
            self._draw()
        if self.seed_field.value != str(value):
            self.seed_field.value = str(value)  # a typed " 2,026" shows as 2026
        return True

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)


def _close_tree(widget: W.Widget, keep: Collection[W.Widget] = ()) -> None:
    """Close a widget, its children (boxes, accordions), layout and style, but none of
    the models in `keep`."""
    for child in getattr(widget, "children", ()):
        _close_tree(child, keep)
    for part in ("layout", "style"):
        sub = getattr(widget, part, None)
        if isinstance(sub, W.Widget) and sub not in keep:
            sub.close()
    widget.close()
