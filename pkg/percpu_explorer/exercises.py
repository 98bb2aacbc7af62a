"""Seeded exercises for a class, with answers the models compute.

Each exercise is drawn from a seed, so a teacher and every student see the same
question; the answer and its worked solution come from the layout, page-table,
allocator and interleaving models, never from a table of answers. Every question
shows all it takes to answer it (`Exercise.shown`, raw values in `Exercise.givens`),
and every answer is one number: an address or bit pattern in hex, or a whole number
(`check_answer` reads what a student types, tolerantly).

Kinds (`EXERCISES`):
- "translate": which physical address a local percpu address reaches on one CPU (the
  RFC's Local Percpu area; rests on the model's placement of the local copies);
- "next offset": the offset pcpu_alloc() returns after a short history shown in full
  (mm/percpu.c's first fit in the first chunk);
- "lost update": the end value of a per-CPU variable when __this_cpu_*() is preempted
  at a given instruction and the task migrates (asm-generic's plain load/modify/store).
"""

from __future__ import annotations

import dataclasses
import html
import random
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .errors import shown as _shown
from .findings import BASES, Finding
from .kernel import DEFAULT_KERNEL, KernelConfig, fmt_addr, patched_sane_configs
from .percpu import DEFAULT_STATIC_SIZE, PCPU_MIN_ALLOC_SIZE, boot_percpu
from .thiscpu import op_pair, preempted_at

__all__ = [
    "ANSWER_FORMATS",
    "EXERCISES",
    "MAX_COUNT",
    "MAX_SEED",
    "AnswerCheck",
    "Exercise",
    "check_answer",
    "check_seed",
    "exercise_set",
    "exercises_finding",
    "lost_update_exercise",
    "next_offset_exercise",
    "parse_answer",
    "translate_exercise",
]

# (page size, VA bits) of the configurations whose patched layout is sane (the patch
# cannot apply to the others).
_SANE_PATCHED = tuple(dict.fromkeys((c.page_size, c.va_bits)
                                    for c in patched_sane_configs(kasan=("none",))))

ANSWER_FORMATS = ("hex", "int")
MAX_SEED = 999_999_999
MAX_COUNT = 12


@dataclass(frozen=True)
class AnswerCheck:
    """What `check_answer` made of a typed answer: status "right", "wrong" or
    "unreadable", the number read (None when unreadable) and a sentence to show."""

    status: str
    value: int | None
    message: str

    @property
    def right(self) -> bool:
        return self.status == "right"


@dataclass(frozen=True)
class Exercise:
    """A question, everything it shows, the answer the models give, and why.

    question: the setting and what is asked; shown: the lines the question shows
    besides (a history, an instruction listing, the CPUs' physical bases); value: the
    answer as a number, `answer` as printed; answer_format: "hex" or "int";
    explanation: the worked solution; basis: what the answer stands on (a key of
    `findings.BASES`), basis_detail: the assumption named; givens: the raw values the
    question shows; mistakes: tempting wrong answers and what each one misses.
    """

    kind: str
    seed: int
    question: str
    shown: tuple[str, ...]
    value: int
    answer_format: str
    explanation: str
    basis: str
    basis_detail: str = ""
    givens: Mapping[str, Any] = field(default_factory=dict)
    mistakes: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.answer_format not in ANSWER_FORMATS:
            raise ValueError(f"answer_format {self.answer_format!r} is not one of "
                             f"{', '.join(ANSWER_FORMATS)}")
        if self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r} is not one of {', '.join(BASES)}")

    @property
    def title(self) -> str:
        return f"{self.kind} (seed {self.seed})"

    @property
    def answer(self) -> str:
        """The answer as the question asks for it: 0x-hex or a whole number."""
        return _format(self.value, self.answer_format)

    @property
    def hint(self) -> str:
        """How to type the answer."""
        return ("a hexadecimal number (0x optional)" if self.answer_format == "hex"
                else "a whole number")

    def text(self) -> str:
        """The whole question as plain text: the setting, the lines shown, the ask."""
        return "\n".join((self.question, *self.shown))

    def solution(self) -> str:
        """The answer, its basis and the worked solution, as plain text."""
        basis = f"{self.basis}: {self.basis_detail}" if self.basis_detail else self.basis
        return f"Answer: {self.answer}. {self.explanation} (Basis: {basis}.)"

    def check(self, text: str) -> AnswerCheck:
        """`check_answer(self, text)`."""
        return check_answer(self, text)

    def question_html(self) -> str:
        """The question and the lines it shows, one under the other."""
        lines = "".join(f"<li><code>{html.escape(line)}</code></li>" for line in self.shown)
        listing = (f"<ul class='pe-shown' style='list-style:none;padding-left:1.5em'>{lines}"
                   "</ul>" if self.shown else "")
        return (f"<p><b>{html.escape(self.title)}</b>: {html.escape(self.question)}</p>"
                f"{listing}")

    def answer_html(self) -> str:
        """The answer, the worked solution and its basis."""
        detail = f": {html.escape(self.basis_detail)}" if self.basis_detail else ""
        return (f"<p><b>Answer: {html.escape(self.answer)}</b></p>"
                f"<p>{html.escape(self.explanation)}</p>"
                f"<p style='color:#555'>[{html.escape(self.basis)}{detail}]</p>")

    def as_html(self) -> str:
        """The question with the answer folded away until the reader opens it."""
        return (f"{self.question_html()}<details><summary>Show the answer</summary>"
                f"{self.answer_html()}</details>")

    def _repr_html_(self) -> str:
        return self.as_html()


def _format(value: int, fmt: str) -> str:
    if fmt == "hex":
        return fmt_addr(value) if value >= 1 << 32 else f"{value:#x}"
    return str(value)


# --- reading an answer ------------------------------------------------------------------------

_HEX = re.compile(r"[0-9a-f]+")
_DEC = re.compile(r"[+-]?[0-9]+")


def parse_answer(text: str, fmt: str) -> int:
    """The number a student typed: for "hex" hexadecimal digits with or without 0x, in
    any case, spaces, underscores and a trailing "h" allowed; for "int" a decimal
    number (spaces, commas and underscores between digits allowed) or 0x-hex.
    InputError (one line) when it is no such number."""
    if fmt not in ANSWER_FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {', '.join(ANSWER_FORMATS)}")
    if not isinstance(text, str):
        raise InputError(f"answer {_shown(text)} is not text", field="answer")
    raw = text.strip()
    compact = re.sub(r"[\s_'`]", "", raw).lower()
    if not compact:
        raise InputError("type an answer first", field="answer")
    if fmt == "hex" or compact.startswith(("0x", "-0x")):
        negative = compact.startswith("-")
        digits = compact.lstrip("-").removeprefix("0x").removesuffix("h")
        if not _HEX.fullmatch(digits):
            raise InputError(f"{_shown(raw)} is not a hexadecimal number (digits 0-9 and a-f, "
                             "0x optional)", field="answer")
        value = int(digits, 16)
        return -value if negative else value
    digits = compact.replace(",", "")
    if not _DEC.fullmatch(digits):
        raise InputError(f"{_shown(raw)} is not a whole number (digits 0-9, or 0x and hex "
                         "digits)", field="answer")
    return int(digits)


def check_answer(exercise: Exercise, text: str) -> AnswerCheck:
    """Whether `text` is the exercise's answer: "right", "wrong" (with what a known
    wrong answer misses, when it is one) or "unreadable" (what a number looks like)."""
    try:
        value = parse_answer(text, exercise.answer_format)
    except InputError as exc:
        return AnswerCheck("unreadable", None, str(exc))
    typed = _format(value, exercise.answer_format)
    if value == exercise.value:
        return AnswerCheck("right", value, f"Right: {typed}.")
    why = exercise.mistakes.get(value)
    return AnswerCheck("wrong", value, f"Not right: {typed}"
                       + (f" is {why}." if why else " is not what the kernel gives.")
                       + " Try again, or show the answer.")


# --- translate: a local address on one CPU ----------------------------------------------------

def translate_exercise(seed: int) -> Exercise:
    """On CPU n, which physical address does a percpu variable's local address reach?"""
    rng = random.Random(seed)
    page_size, va_bits = rng.choice(_SANE_PATCHED)
    nr_cpus = rng.choice((2, 4, 8))
    cfg = KernelConfig(page_size=page_size, va_bits=va_bits, local_percpu=True)
    alloc, kpt = boot_percpu(cfg, DEFAULT_STATIC_SIZE, nr_cpus)
    assert kpt is not None
    for _ in range(rng.randrange(0, 80)):  # earlier users of the first chunk
        alloc.alloc(rng.choice((4, 8, 12, 16, 24, 40, 64, 128, 256)), rng.choice((4, 8)))
    # alloc_percpu(type): the type's size and alignment (a 24-byte struct of u64s: 8)
    size, align = rng.choice(((4, 4), (8, 8), (16, 16), (24, 8), (64, 64), (256, 64)))
    result = alloc.alloc(size, align)
    cpu = rng.randrange(nr_cpus)
    local = alloc.local_ptr(result.ptr)
    assert alloc.local_base is not None
    local_base = alloc.local_base
    # where each CPU's unit of the first chunk sits in RAM (the linear map's pages)
    unit_pa = {c: alloc.first_chunk_phys + alloc.unit_offsets[c] for c in range(nr_cpus)}
    walk = kpt.walk(cpu, local)
    if walk.pa is None:
        raise RuntimeError(f"seed {seed}: the local address {fmt_addr(local)} does not "
                           f"translate on CPU {cpu}")
    steps = ", ".join(f"{s.level}[{s.index}]" for s in walk.steps)
    offset = local - local_base
    question = (f"Kernel {cfg.kernel}, {cfg.label()}, with the RFC's Local Percpu area, "
                f"{nr_cpus} CPUs. Each CPU's page tables map that CPU's own copy of the "
                f"first chunk at the Local Percpu base. pcpu_alloc({size}) returned a "
                f"pointer whose local address is {fmt_addr(local)}. Which physical "
                f"address does CPU {cpu} reach when it reads that local address (hex)?")
    lines = (f"Local Percpu base: {fmt_addr(local_base)}",
             *(f"CPU {c}'s unit starts at physical address {fmt_addr(pa)}"
               for c, pa in unit_pa.items()))
    explanation = (
        f"The local address is {offset:#x} bytes above the Local Percpu base "
        f"({fmt_addr(local)} - {fmt_addr(local_base)}), the same offset the allocator "
        f"gives in every CPU's unit. CPU {cpu} maps its own unit there, so it reaches "
        f"{fmt_addr(unit_pa[cpu])} + {offset:#x} = {fmt_addr(walk.pa)}. The model's walk "
        f"from CPU {cpu}'s root goes {steps}; another CPU reading the same address reaches "
        f"its own copy, and per_cpu_ptr(ptr, {cpu}) = "
        f"{fmt_addr(alloc.per_cpu_ptr(result.ptr, cpu))} reaches the same byte through "
        "the shared Global Percpu mapping.")
    mistakes: dict[int, str] = {
        local: "the local (virtual) address itself, not where it leads",
        unit_pa[cpu]: f"where CPU {cpu}'s unit starts: add the variable's offset",
        offset: "the offset inside the unit: add the start of the CPU's unit",
    }
    for c, pa in unit_pa.items():
        if c != cpu:
            mistakes.setdefault(pa + offset, f"CPU {c}'s copy: the local address leads each "
                                              "CPU to its own copy")
    mistakes.pop(walk.pa, None)
    return Exercise(
        "translate", seed, question, lines, walk.pa, "hex", explanation, "assumption",
        "the model maps each CPU's unit at the Local Percpu base plus the allocator's "
        "offset (rfc.DEFAULT_PLACEMENT; patches 03-09 are not public)",
        givens={"cpu": cpu, "local_address": local, "local_base": local_base,
                "unit_pa": unit_pa, "size": size, "nr_cpus": nr_cpus},
        mistakes=mistakes)


# --- next offset: pcpu_alloc() after a short history -----------------------------------------

_SIZES = (4, 6, 8, 12, 16, 20, 24, 32, 40, 48, 64)
_ALIGNS = (4, 8, 16, 32, 64)


def _round4(size: int) -> int:
    return -(-size // PCPU_MIN_ALLOC_SIZE) * PCPU_MIN_ALLOC_SIZE


def _free_ranges(live: Mapping[str, tuple[int, int]], start: int,
                 end: int) -> list[tuple[int, int]]:
    """The free [lo, hi) ranges of [start, end) around the live (offset, bytes) areas."""
    ranges, at = [], start
    for off, size in sorted(live.values()):
        if off > at:
            ranges.append((at, off))
        at = max(at, off + size)
    if at < end:
        ranges.append((at, end))
    return ranges


def next_offset_exercise(seed: int) -> Exercise:
    """After a short history shown in full, what offset will the next pcpu_alloc() return?

    The question states the rule as a plain first fit. The kernel's block hints
    (pcpu_find_block_fit()) can pass over a range that fits in a fragmented chunk; the
    short histories here stay in the first chunk's first pages, where the model's answer
    and the plain rule agree (tests/test_exercises.py replays every shown step)."""
    rng = random.Random(seed)
    page_size = rng.choice(("4K", "16K", "64K"))
    nr_cpus = rng.choice((2, 4, 8))
    cfg = KernelConfig(page_size=page_size)
    alloc, _ = boot_percpu(cfg, DEFAULT_STATIC_SIZE, nr_cpus, page_tables=False)
    first = alloc.first_chunk
    start = first.start_offset
    end = first.start_offset + alloc.ai.first_chunk_dyn_size
    live: dict[str, tuple[int, int]] = {}
    ptrs: dict[str, int] = {}
    steps: list[str] = []
    history: list[tuple[str, str, int, int, int]] = []  # (op, name, size, align, off)
    names = iter("ABCDEFGHIJKLMNOP")
    nr_ops = rng.randrange(4, 9)
    frees = 0
    while len(history) < nr_ops:
        if len(live) >= 2 and frees < 3 and rng.random() < 0.35:
            name = rng.choice(sorted(live))
            alloc.free(ptrs.pop(name))
            off, _ = live.pop(name)
            frees += 1
            history.append(("free", name, 0, 0, off))
            steps.append(f"{len(history)}. free_percpu({name})")
            continue
        size, align = rng.choice(_SIZES), rng.choice(_ALIGNS)
        result = alloc.alloc(size, align)
        if result.chunk_id != first.id:
            raise RuntimeError(f"seed {seed}: the history left the first chunk")
        name = next(names)
        live[name], ptrs[name] = (result.off, _round4(size)), result.ptr
        history.append(("alloc", name, size, align, result.off))
        steps.append(f"{len(history)}. {name} = pcpu_alloc({size}, align {align}) "
                     f"-> offset {result.off}")
    size, align = rng.choice(_SIZES), rng.choice(_ALIGNS)
    result = alloc.alloc(size, align)
    if result.chunk_id != first.id:
        raise RuntimeError(f"seed {seed}: the request left the first chunk")
    answer = result.off
    need = _round4(size)
    ranges = _free_ranges(live, start, end)
    question = (f"Mainline kernel {cfg.kernel}, {page_size} pages, {nr_cpus} CPUs, just after "
                f"boot. The first chunk's dynamic area covers offsets {start} to {end - 1} of "
                f"the chunk, all free at boot. Below is every request made since, with what "
                f"pcpu_alloc() returned. pcpu_alloc() rounds a size up to a multiple "
                f"of {PCPU_MIN_ALLOC_SIZE} bytes and returns the lowest free offset of the "
                f"area where that many bytes fit, starting at a multiple of align. Which "
                f"offset does pcpu_alloc({size}, align {align}) return next (a whole "
                f"number)?")
    used = ", ".join(f"{n} at {o}-{o + s - 1}" for n, (o, s) in
                     sorted(live.items(), key=lambda kv: kv[1])) or "nothing"
    free = ", ".join(f"{lo}-{hi - 1} ({hi - lo} bytes)" for lo, hi in ranges)
    skipped = [f"{lo}-{hi - 1}" for lo, hi in ranges if hi <= answer]
    explanation = (
        f"pcpu_alloc({size}, align {align}) needs {need} bytes at a multiple of {align}. "
        f"After the history the area holds {used}; free: {free}. "
        + (f"The lower free range{'s' if len(skipped) > 1 else ''} {', '.join(skipped)} "
           f"{'are' if len(skipped) > 1 else 'is'} too small once aligned, so " if skipped
           else "")
        + f"{'t' if skipped else 'T'}he first fit is offset {answer}, as the allocator "
        "model returns (mm/percpu.c: "
        "pcpu_find_block_fit() and pcpu_alloc_area() take the first aligned fit the "
        "block hints lead to).")
    mistakes: dict[int, str] = {}
    top = max((o + s for o, s in live.values()), default=start)
    aligned_top = -(-top // align) * align
    mistakes[aligned_top] = ("the first aligned offset after the highest allocation: a "
                             "freed range below it comes first when the request fits there")
    for lo, hi in ranges:
        aligned = -(-lo // align) * align
        if hi <= answer:
            mistakes.setdefault(lo, f"where the free range {lo}-{hi - 1} starts, but "
                                    f"{need} bytes at a multiple of {align} do not fit there")
            mistakes.setdefault(aligned, f"the first multiple of {align} at or above the free "
                                         f"range {lo}-{hi - 1}, which is too small from there")
        elif lo < answer:
            mistakes.setdefault(lo, f"where the free range {lo}-{hi - 1} starts, which is "
                                    f"not a multiple of {align}")
    mistakes.pop(answer, None)
    return Exercise(
        "next offset", seed, question, tuple(steps), answer, "int", explanation,
        "kernel arithmetic", "mm/percpu.c's allocator as the model runs it",
        givens={"area_start": start, "area_end": end, "size": size, "align": align,
                "history": tuple(history)},
        mistakes=mistakes)


# --- lost update: __this_cpu_*() preempted and migrated ---------------------------------------

_LOST_OPS = ("add", "sub", "inc", "dec", "or", "and", "write")
_HEX_OPS = ("or", "and", "write")


def _call_text(op: str, operand: int, hexa: bool) -> str:
    if op in ("inc", "dec"):
        return f"__this_cpu_{op}(v)"
    return f"__this_cpu_{op}(v, {operand:#x})" if hexa else f"__this_cpu_{op}(v, {operand})"


def lost_update_exercise(seed: int) -> Exercise:
    """Which value does a per-CPU copy end with when __this_cpu_*() is preempted at a
    given instruction and the task migrates?"""
    rng = random.Random(seed)
    op = rng.choice(_LOST_OPS)
    size = rng.choice((1, 2, 4, 8))
    hexa = op in _HEX_OPS
    if hexa:
        bits = 8 * min(size, 2)
        start = {0: rng.randrange(1 << bits), 1: rng.randrange(1 << bits)}
        a, b = rng.randrange(1, 1 << bits), rng.randrange(1, 1 << bits)
    else:
        small = size == 1
        start = {c: rng.randrange(60, 150) if small else rng.randrange(200, 1000)
                 for c in (0, 1)}
        a, b = (rng.randrange(1, 26 if small else 100) for _ in range(2))
    if op in ("inc", "dec"):
        a = b = 1
    scen = op_pair(op, size, flavour="__this_cpu", preempt="full", kernel=DEFAULT_KERNEL,
                   operand=a)
    task_a, task_b = scen.tasks
    task_b = dataclasses.replace(task_b, cpu=0, calls=(
        dataclasses.replace(task_b.calls[0], operand=b),))
    scen = dataclasses.replace(scen, tasks=(task_a, task_b),
                               initial={("v", 0): start[0], ("v", 1): start[1]})
    insns = scen.sequence(task_a.calls[0]).insns
    point = rng.randrange(len(insns) + 1)
    outcome = preempted_at(scen, point)
    if outcome is None:
        raise RuntimeError(f"seed {seed}: __this_cpu_{op} cannot be preempted at {point}")
    asked = 0 if rng.random() < 0.7 else 1
    value = outcome.final[("v", asked)]
    fmt = "hex" if hexa else "int"
    show = (lambda v: f"{v:#x}") if hexa else str
    where = ("before its first instruction" if point == 0
             else f"right after instruction {point} ({insns[point - 1].text})")
    question = (
        f"Kernel {DEFAULT_KERNEL} built PREEMPT_FULL, arm64 with VHE. v is "
        f"{'an' if size == 8 else 'a'} {size}-byte "
        f"unsigned per-CPU variable holding {show(start[0])} on CPU 0 and {show(start[1])} "
        f"on CPU 1. Task A, on CPU 0, calls {_call_text(op, a, hexa)} without disabling "
        f"preemption; it compiles to the instructions below. A is preempted {where}; task "
        f"B then runs {_call_text(op, b, hexa)} (the same instructions) on CPU 0 from "
        f"start to end, and A resumes on CPU 1 and finishes. What does CPU {asked}'s copy "
        f"of v hold at the end ({'hex' if hexa else 'a whole number'})?")
    listing = tuple(f"{i}: {insn.text}" for i, insn in enumerate(insns, 1))
    # the model's account of each instruction A ran before and after the preemption
    ran = [insn.text for insn in insns[:point]]
    verdict = {"ok": "no update is lost or misplaced",
               "lost update": "an update is lost",
               "misplaced": "A writes CPU 0's copy while running on CPU 1 (a misplaced, "
                            "unsynchronised write)"}.get(outcome.verdict, outcome.verdict)
    if point == len(insns):
        story = ("A ran its whole op on CPU 0 before the preemption, then B's op ran on "
                 "CPU 0 after it")
    else:
        story = (f"A ran {', '.join(ran) if ran else 'nothing'} on CPU 0 before it was "
                 "preempted; B's whole op then changed CPU 0's copy; A finished on CPU 1, "
                 + ("with CPU 0's offset already in its register, so it kept working on "
                    "CPU 0's copy" if any(i.effect == "tpidr" for i in insns[:point]) else
                    "reading CPU 1's offset there, so it worked on CPU 1's copy")
                 + (" and stored the value it had computed from the load before B's update"
                    if any(i.effect == "load" for i in insns[:point]) else ""))
    explanation = (
        "__this_cpu_*() is asm-generic's raw_cpu_generic_to_op: the address is v plus "
        "the offset read from TPIDR_EL2 on the CPU running that instruction, then a plain "
        f"load, modify and store. {story}. The model ends with CPU 0 = "
        f"{show(outcome.final[('v', 0)])} and CPU 1 = "
        f"{show(outcome.final[('v', 1)])}: {verdict}. this_cpu_{op}() would have kept A on "
        "its CPU for the whole sequence.")
    mistakes: dict[int, str] = {}
    for other in range(len(insns) + 1):
        alt = preempted_at(scen, other)
        if alt is None:
            continue
        v = alt.final[("v", asked)]
        if v != value and v not in mistakes:
            mistakes[v] = ("the end value if A were preempted "
                           + ("before its first instruction" if other == 0
                              else f"after instruction {other}"))
    return Exercise(
        "lost update", seed, question, listing, value, fmt, explanation, "kernel arithmetic",
        "asm-generic's plain load/modify/store, run by the interleaving model",
        givens={"op": op, "size": size, "a": a, "b": b, "start": start, "point": point,
                "asked": asked, "listing": tuple(i.text for i in insns)},
        mistakes=mistakes)


EXERCISES: dict[str, Callable[[int], Exercise]] = {
    "translate": translate_exercise, "next offset": next_offset_exercise,
    "lost update": lost_update_exercise}


def check_seed(seed: object) -> int:
    """`seed` as a whole number 0..MAX_SEED (a digit string is read too); InputError
    naming the value otherwise."""
    value: object = seed
    if isinstance(seed, str):
        text = seed.strip().replace("_", "").replace(",", "")
        value = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
        raise InputError(f"seed {_shown(seed)} must be a whole number from 0 to {MAX_SEED}",
                         field="seed")
    return value


def exercise_set(seed: int, count: int = 3) -> list[Exercise]:
    """`count` exercises drawn from `seed`, cycling through the kinds, every question
    different from the others of the set (a repeat is drawn again)."""
    seed = check_seed(seed)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_COUNT:
        raise InputError(f"count {_shown(count)} must be 1..{MAX_COUNT}", field="count")
    kinds = list(EXERCISES)
    chosen: list[Exercise] = []
    seen: set[str] = set()
    for i in range(count):
        make = EXERCISES[kinds[i % len(kinds)]]
        for attempt in range(40):
            exercise = make(seed * 1000 + i + MAX_COUNT * attempt)
            if exercise.text() not in seen:
                break
        seen.add(exercise.text())
        chosen.append(exercise)
    return chosen


_ASKS = {
    "translate": lambda e: (f"which physical address CPU {e.givens['cpu']} reaches through a "
                            "local percpu address (hex)"),
    "next offset": lambda e: (f"which offset pcpu_alloc({e.givens['size']}, align "
                              f"{e.givens['align']}) returns after "
                              f"{len(e.givens['history'])} requests (a whole number)"),
    "lost update": lambda e: (f"what CPU {e.givens['asked']}'s copy holds after a preempted "
                              f"__this_cpu_{e.givens['op']}() "
                              f"({'hex' if e.answer_format == 'hex' else 'a whole number'})"),
}


def exercises_finding(exercises: list[Exercise]) -> Finding:
    """What a set asks, without its answers: one clause per question, each answered by one
    number the models compute."""
    if not exercises:
        raise ValueError("no exercises: draw a set with exercise_set(seed, count)")
    seeds = sorted({e.seed // 1000 for e in exercises})
    asks = [_ASKS[e.kind](e) for e in exercises]
    listed = "; ".join(f"({i}) {a}" for i, a in enumerate(asks, 1))
    assumed = [i for i, e in enumerate(exercises, 1) if e.basis == "assumption"]
    answer = (f"Seed {', '.join(map(str, seeds))} asks {len(exercises)} questions: {listed}. "
              "Each answer is one number the models compute from what the question shows; "
              "type yours below and press Check.")
    detail = ("mm/percpu.c's allocator and asm-generic's this_cpu code as modelled"
              + (f"; question{'s' if len(assumed) > 1 else ''} "
                 f"{', '.join(map(str, assumed))} rest{'' if len(assumed) > 1 else 's'} on "
                 "the model's placement of the local copies (rfc.DEFAULT_PLACEMENT, assumed)"
                 if assumed else ""))
    return Finding("Can you work out, from what each question shows, the address, offset or "
                   "value the kernel produces?", answer, "kernel arithmetic",
                   numbers={"seeds": seeds, "questions": len(exercises),
                            "kinds": [e.kind for e in exercises], "assumed": assumed},
                   detail=detail)
