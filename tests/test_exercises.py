"""Seeded exercises: reproducible, and answered by the models."""

import pytest

from percpu_explorer.exercises import (
    exercise_set,
    lost_update_exercise,
    next_offset_exercise,
    translate_exercise,
)
from percpu_explorer.thiscpu.interleave import preemption_points


def test_same_seed_same_exercises():
    assert exercise_set(11, 3) == exercise_set(11, 3)
    assert exercise_set(11, 3) != exercise_set(12, 3)
    with pytest.raises(ValueError, match="count 0"):
        exercise_set(1, 0)


@pytest.mark.parametrize("seed", range(4))
def test_translate_answer_is_the_cpus_own_copy(seed):
    ex = translate_exercise(seed)
    # The question names the pointer, its local address and the CPU; the answer must be
    # where per_cpu_ptr(ptr, cpu) lands, a different page on every CPU.
    assert ex.answer.startswith("0x") and "per_cpu_ptr" in ex.explanation
    assert "PGD[" in ex.explanation or "PUD[" in ex.explanation


def test_next_offset_answer_is_what_the_allocator_returns_next():
    ex = next_offset_exercise(5)
    again = next_offset_exercise(5)  # rebuilt from the seed: the same answer
    assert ex.answer == again.answer and ex.answer.startswith("offset ")


def test_lost_update_points_for_add():
    # __this_cpu_add is raw_cpu_add (include/linux/percpu-defs.h); arm64's asm/percpu.h
    # defines only this_cpu_*_N, so raw_cpu_add_8 is asm-generic's raw_cpu_generic_to_op:
    # a plain ldr/add/str even with LSE, addressed [x0, x12] (register offset). A migration
    # after the offset is read from TPIDR_EL2 (VHE) misplaces the update; one between the
    # load and the store loses one.
    points = preemption_points("add", 8, flavour="__this_cpu", atomics="lse", preempt="full")
    bad = points[~points["migrate"].str.startswith("ok")]
    assert list(bad["after"]) == ["mrs x12, tpidr_el2", "ldr x3, [x0, x12]", "add x3, x3, x1"]
    assert list(bad["migrate"].str.split().str[0]) == ["misplaced", "lost", "lost"]
    ex = next(e for e in (lost_update_exercise(s) for s in range(40))
              if "__this_cpu_add() on a 8-byte" in e.question)
    assert ex.answer == ("after 'mrs x12, tpidr_el2', after 'ldr x3, [x0, x12]', "
                         "after 'add x3, x3, x1'")


def test_answers_are_hidden_until_opened():
    html = translate_exercise(1).as_html()
    assert "<details><summary>Show the answer</summary>" in html
