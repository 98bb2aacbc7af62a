"""Seeded exercises: reproducible, distinct, answerable from what each question shows, and
answered by the models.

Each kind has a solver here that works only from the values the question shows
(`Exercise.givens`, each checked to appear in the question's text) and the kernel's rules,
written independently of the models; its answer must equal the model's."""

import pytest

from percpu_explorer.errors import InputError
from percpu_explorer.exercises import (
    EXERCISES,
    MAX_SEED,
    check_answer,
    check_seed,
    exercise_set,
    exercises_finding,
    lost_update_exercise,
    next_offset_exercise,
    parse_answer,
    translate_exercise,
)
from percpu_explorer.kernel import fmt_addr
from percpu_explorer.thiscpu import preemption_points

SEEDS = range(120)


# --- independent solvers ----------------------------------------------------------------------

def solve_translate(g):
    """RFC patch 02/11: "the offset returned by percpu allocator must be used to access both
    global percpu and local percpu"; each CPU maps its own unit at the local base (patch
    01/11's per-CPU roots). So CPU n reaches its unit's physical start plus the offset."""
    return g["unit_pa"][g["cpu"]] + (g["local_address"] - g["local_base"])


def first_fit(live, start, end, size, align):
    """mm/percpu.c pcpu_alloc(): size = ALIGN(size, PCPU_MIN_ALLOC_SIZE) (4), align at least
    4; pcpu_find_block_fit() + pcpu_alloc_area() take the first aligned run of free bits
    (bitmap_find_next_zero_area), offsets counted from the chunk's base page."""
    need = -(-size // 4) * 4
    align = max(align, 4)
    off = -(-start // align) * align
    while off + need <= end:
        if all(off + need <= lo or off >= lo + n for lo, n in live.values()):
            return off
        off += align
    return None


def solve_next_offset(g):
    """Replay the shown history (checking that every shown offset is the first fit too),
    then the first fit of the asked request."""
    live = {}
    for op, name, size, align, off in g["history"]:
        if op == "free":
            del live[name]
            continue
        assert first_fit(live, g["area_start"], g["area_end"], size, align) == off
        live[name] = (off, -(-size // 4) * 4)
    return first_fit(live, g["area_start"], g["area_end"], g["size"], g["align"])


def _apply(op, value, operand, size):
    mask = (1 << (8 * size)) - 1
    new = {"add": value + operand, "sub": value - operand, "inc": value + 1,
           "dec": value - 1, "or": value | operand, "and": value & operand,
           "write": operand}[op]
    return new & mask


def solve_lost_update(g):
    """asm-generic/percpu.h raw_cpu_generic_to_op (what __this_cpu_<op> is on arm64, whose
    asm/percpu.h defines only this_cpu_*): *raw_cpu_ptr(&pcp) op= val, compiled to "mrs
    tpidr" (the CPU offset of the CPU running it), a plain load, the ALU op and a store.
    Registers travel with the task. Read off the listing: mrs sets the offset, ldr loads,
    str stores the op applied to the loaded value."""
    mem = dict(g["start"])
    listing = g["listing"]

    def run(insns, cpu, state, operand):
        for text in insns:
            mnemonic = text.split()[0]
            copy = state.get("off", cpu)
            if mnemonic == "mrs":
                state["off"] = cpu
            elif mnemonic.startswith("ldr"):
                state["val"] = mem[copy]
            elif mnemonic.startswith("str"):
                mem[copy] = _apply(g["op"], state.get("val", 0), operand, g["size"])

    a_state = {}
    run(listing[:g["point"]], 0, a_state, g["a"])
    run(listing, 0, {}, g["b"])
    run(listing[g["point"]:], 1, a_state, g["a"])
    return mem[g["asked"]]


SOLVERS = {"translate": solve_translate, "next offset": solve_next_offset,
           "lost update": solve_lost_update}


def shown_in_text(ex):
    """Every value the solver uses appears in the question as shown."""
    g, text = ex.givens, ex.text()
    if ex.kind == "translate":
        needed = [fmt_addr(g["local_address"]), fmt_addr(g["local_base"]), f"CPU {g['cpu']}",
                  *(f"CPU {c}'s unit starts at physical address {fmt_addr(pa)}"
                    for c, pa in g["unit_pa"].items())]
    elif ex.kind == "next offset":
        needed = [f"offsets {g['area_start']} to {g['area_end'] - 1}",
                  f"pcpu_alloc({g['size']}, align {g['align']})"]
        for op, name, size, align, off in g["history"]:
            needed.append(f"free_percpu({name})" if op == "free" else
                          f"{name} = pcpu_alloc({size}, align {align}) -> offset {off}")
    else:
        fmt = (lambda v: f"{v:#x}") if g["op"] in ("or", "and", "write") else str
        needed = [f"holding {fmt(g['start'][0])} on CPU 0 and {fmt(g['start'][1])} on CPU 1",
                  f"{g['size']}-byte", f"__this_cpu_{g['op']}(v",
                  f"What does CPU {g['asked']}'s copy",
                  *(f"{i}: {t}" for i, t in enumerate(g["listing"], 1))]
        if g["op"] not in ("inc", "dec"):
            needed += [f"__this_cpu_{g['op']}(v, {fmt(g['a'])})",
                       f"__this_cpu_{g['op']}(v, {fmt(g['b'])})"]
        needed.append("before its first instruction" if g["point"] == 0
                      else f"right after instruction {g['point']} ")
    return [n for n in needed if n not in text]


# --- the tests -----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(EXERCISES))
def test_every_question_is_answerable_from_what_it_shows(kind):
    make = EXERCISES[kind]
    for seed in SEEDS:
        ex = make(seed)
        assert not shown_in_text(ex), (seed, shown_in_text(ex))
        assert SOLVERS[kind](ex.givens) == ex.value, (kind, seed, ex.text())
        assert ex.check(ex.answer).right
        # the worked solution names the answer it explains
        assert ex.answer in ex.explanation or str(ex.value) in ex.explanation


def test_sets_are_distinct_within_and_across_seeds():
    sets = []
    for seed in range(2026, 2026 + 150):
        texts = [e.text() for e in exercise_set(seed, 6)]
        assert len(set(texts)) == 6, seed  # no question twice in a set
        sets.append(tuple(texts))
    assert len(set(sets)) == len(sets)  # every seed its own set
    # the set the issue saw repeat its "lost update" question (sub-seeds 2026002/2026005)
    lost = [e for e in exercise_set(2026, 6) if e.kind == "lost update"]
    assert len(lost) == 2 and lost[0].question != lost[1].question


def test_same_seed_same_exercises():
    assert exercise_set(11, 3) == exercise_set(11, 3)
    assert exercise_set(11, 3) != exercise_set(12, 3)
    assert [e.kind for e in exercise_set(7, 6)] == ["translate", "next offset", "lost update"] * 2


def test_bad_seed_and_count_name_the_value():
    with pytest.raises(InputError, match=r"count 0 must be 1\.\.12"):
        exercise_set(1, 0)
    with pytest.raises(InputError, match=r"seed -1 must be a whole number from 0 to 999999999"):
        exercise_set(-1)
    with pytest.raises(InputError, match="seed 'abc'"):
        check_seed("abc")
    assert check_seed(" 2026 ") == 2026 and check_seed(MAX_SEED) == MAX_SEED
    with pytest.raises(InputError, match="seed True"):
        check_seed(True)


def test_translate_reaches_the_cpus_own_copy():
    ex = translate_exercise(3)
    g = ex.givens
    # a wrong CPU's copy is the tempting mistake, and the checker says so
    other = next(c for c in g["unit_pa"] if c != g["cpu"])
    wrong = g["unit_pa"][other] + g["local_address"] - g["local_base"]
    result = check_answer(ex, fmt_addr(wrong))
    assert result.status == "wrong" and f"CPU {other}'s copy" in result.message
    assert ex.basis == "assumption" and "DEFAULT_PLACEMENT" in ex.basis_detail
    assert "PGD[" in ex.explanation or "PUD[" in ex.explanation


def test_next_offset_reuses_a_freed_range():
    # Some seed frees an area and the next request fits in the hole: the answer lies below
    # the highest allocation (first fit, not "after the last one").
    for seed in range(200):
        ex = next_offset_exercise(seed)
        g = ex.givens
        live = {}
        for op, name, size, _align, off in g["history"]:
            if op == "free":
                del live[name]
            else:
                live[name] = (off, size)
        if live and ex.value < max(off for off, _ in live.values()):
            top = max(o + -(-s // 4) * 4 for o, s in live.values())
            after = -(-top // g["align"]) * g["align"]
            result = check_answer(ex, str(after))
            assert result.status == "wrong" and "a freed range below it" in result.message
            assert "free:" in ex.explanation
            break
    else:
        pytest.fail("no seed reuses a freed range")


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
    ex = next(e for e in (lost_update_exercise(s) for s in range(200))
              if e.givens["op"] == "add" and e.givens["asked"] == 0
              and e.givens["point"] in (2, 3))
    g = ex.givens
    # preempted between the load and the store: B's update is overwritten
    assert ex.value == g["start"][0] + g["a"]
    assert "an update is lost" in ex.explanation
    serial = g["start"][0] + g["a"] + g["b"]
    assert "after instruction 1" in check_answer(ex, str(serial)).message


@pytest.mark.parametrize(("typed", "fmt", "value"), [
    ("0x13FFeacb8", "hex", 0x13FFEACB8),
    ("13ffeacb8", "hex", 0x13FFEACB8),
    (" 0x0000 0001 3ffe acb8 ", "hex", 0x13FFEACB8),
    ("0X1_3FFE_ACB8", "hex", 0x13FFEACB8),
    ("ff0h", "hex", 0xFF0),
    ("3296", "int", 3296),
    (" 3,296 ", "int", 3296),
    ("0xce0", "int", 3296),
])
def test_answers_are_read_tolerantly(typed, fmt, value):
    assert parse_answer(typed, fmt) == value


@pytest.mark.parametrize(("typed", "fmt", "message"), [
    ("", "hex", "type an answer first"),
    ("0xfffg", "hex", "is not a hexadecimal number"),
    ("12.5", "int", "is not a whole number"),
    ("three", "int", "is not a whole number"),
])
def test_unreadable_answers_say_what_a_number_looks_like(typed, fmt, message):
    with pytest.raises(InputError, match=message):
        parse_answer(typed, fmt)


def test_check_accepts_right_and_rejects_wrong():
    ex = next_offset_exercise(1)
    assert check_answer(ex, f" {ex.value} ").right
    assert check_answer(ex, hex(ex.value)).right
    wrong = check_answer(ex, str(ex.value + 4))
    assert wrong.status == "wrong" and "Try again" in wrong.message
    assert check_answer(ex, "x").status == "unreadable"
    tr = translate_exercise(1)
    assert check_answer(tr, tr.answer.removeprefix("0x").upper()).right


def test_answers_are_hidden_until_opened():
    html = translate_exercise(1).as_html()
    question, _, folded = html.partition("<details><summary>Show the answer</summary>")
    assert folded and translate_exercise(1).answer not in question


def test_finding_says_what_the_set_asks_without_its_answers():
    exercises = exercise_set(2026, 3)
    finding = exercises_finding(exercises)
    assert finding.numbers == {"seeds": [2026], "questions": 3,
                               "kinds": ["translate", "next offset", "lost update"],
                               "assumed": [1]}
    tr, nxt, lost = exercises
    assert f"CPU {tr.givens['cpu']} reaches" in finding.answer
    assert f"pcpu_alloc({nxt.givens['size']}, align {nxt.givens['align']})" in finding.answer
    assert f"__this_cpu_{lost.givens['op']}()" in finding.answer
    assert all(e.answer not in finding.text() for e in exercises)
    assert "rfc.DEFAULT_PLACEMENT" in finding.detail
