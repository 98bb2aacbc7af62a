"""Seeded exercises for a class, with answers the models compute.

Each exercise is drawn from a seed, so a teacher and every student see the same
question; the answer and its explanation come from the layout, page-table,
allocator and interleaving models, never from a table of answers.
"""

from __future__ import annotations

import copy
import html
import random
from dataclasses import dataclass

from .kernel import KernelConfig, fmt_addr, patched_sane_configs
from .percpu import DEFAULT_STATIC_SIZE, boot_percpu, run_history, synthetic_history
from .thiscpu import preemption_points

# (page size, VA bits) of the configurations whose patched layout is sane (the patch
# cannot apply to the others).
_SANE_PATCHED = tuple(dict.fromkeys((c.page_size, c.va_bits)
                                    for c in patched_sane_configs(kasan=("none",))))


@dataclass(frozen=True)
class Exercise:
    """A question, the answer the models give, and why."""

    kind: str
    seed: int
    question: str
    answer: str
    explanation: str

    def as_html(self) -> str:
        """The question with the answer folded away until the reader opens it."""
        return (f"<p><b>{html.escape(self.kind)} (seed {self.seed})</b>: "
                f"{html.escape(self.question)}</p>"
                f"<details><summary>Show the answer</summary><p><b>"
                f"{html.escape(self.answer)}</b></p><p>{html.escape(self.explanation)}</p>"
                "</details>")

    def _repr_html_(self) -> str:
        return self.as_html()


def translate_exercise(seed: int) -> Exercise:
    """On CPU n, which physical address does a percpu variable's local address reach?"""
    rng = random.Random(seed)
    page_size, va_bits = rng.choice(_SANE_PATCHED)
    nr_cpus = rng.choice((2, 4, 8))
    cfg = KernelConfig(page_size=page_size, va_bits=va_bits, local_percpu=True)
    alloc, kpt = boot_percpu(cfg, DEFAULT_STATIC_SIZE, nr_cpus)
    assert kpt is not None
    size = rng.choice((8, 16, 64, 256))
    result = alloc.alloc(size, min(size, 64))
    cpu = rng.randrange(nr_cpus)
    local = alloc.local_ptr(result.ptr)
    walk = kpt.walk(cpu, local)
    steps = ", ".join(f"{s.level}[{s.index}]" for s in walk.steps)
    return Exercise(
        "translate", seed,
        f"Kernel {cfg.kernel}, {cfg.label()} with the local percpu area, {nr_cpus} CPUs. "
        f"pcpu_alloc({size}) returned the percpu pointer {fmt_addr(result.ptr)}; its local "
        f"address is {fmt_addr(local)}. Which physical address does CPU {cpu} reach there?",
        fmt_addr(walk.pa) if walk.pa is not None else "it faults",
        f"The walk from CPU {cpu}'s root goes {steps}: the local area's tables are private "
        f"to each CPU, so the same address reaches CPU {cpu}'s own unit "
        f"(per_cpu_ptr(ptr, {cpu}) = {fmt_addr(alloc.per_cpu_ptr(result.ptr, cpu))} "
        "reaches the same byte through the shared Global Percpu mapping).",
    )


def next_offset_exercise(seed: int) -> Exercise:
    """After a short history, what offset will the next pcpu_alloc() return?"""
    rng = random.Random(seed)
    alloc, _ = boot_percpu(KernelConfig(), DEFAULT_STATIC_SIZE, 4, page_tables=False)
    history = synthetic_history(rng.randrange(10, 40), rng.randrange(0, 8), seed=seed)
    done = run_history(alloc, history)
    size = rng.choice((4, 8, 16, 24, 64, 128))
    align = rng.choice((4, 8, 64))
    probe = copy.deepcopy(alloc)
    result = probe.alloc(size, align)
    kind = next(c.kind for c in probe.chunks if c.id == result.chunk_id)
    last = done[done["op"] == "alloc"].tail(3)
    recent = ", ".join(f"{int(r.size)} bytes at offset {int(r.off)}" for r in last.itertuples())
    return Exercise(
        "next offset", seed,
        f"Mainline kernel, 4 CPUs, first chunk's dynamic part starting at offset "
        f"{alloc.first_chunk.start_offset} of its page. After {len(done)} requests (the last "
        f"allocations: {recent}), what offset in which chunk does pcpu_alloc({size}, "
        f"align={align}) return?",
        f"offset {result.off} in chunk {result.chunk_id} ({kind})",
        "pcpu_alloc() searches the chunk lists from the request's slot up and takes the "
        "first fit the block hints lead to, aligned; freed holes before the last "
        "allocation are reused first.",
    )


def lost_update_exercise(seed: int) -> Exercise:
    """Where must a task be preempted and migrated for __this_cpu_add() to lose an update?"""
    rng = random.Random(seed)
    op = rng.choice(("add", "inc", "or"))
    size = rng.choice((4, 8))
    # arm64 defines only this_cpu_*_N: __this_cpu_* is asm-generic's plain C, with or
    # without LSE atomics
    points = preemption_points(op, size, flavour="__this_cpu", preempt="full")
    bad = points[~points["migrate"].str.startswith("ok")]
    where = ", ".join(f"after '{a}'" for a in bad["after"]) or "nowhere"
    return Exercise(
        "lost update", seed,
        f"__this_cpu_{op}() on a {size}-byte variable, called "
        "without disabling preemption on a PREEMPT_FULL kernel: at which instruction "
        "boundaries does a preemption and migration to another CPU lose or misplace an update?",
        where,
        "arm64 compiles __this_cpu_*() to a plain load/modify/store (asm-generic's "
        "raw_cpu_generic_to_op). The address is the CPU offset read from TPIDR_EL2 (TPIDR_EL1 "
        "without VHE) of the CPU the task runs on, plus the variable; moved after that read, "
        "the task updates the old CPU's copy; moved between the "
        "load and the store, it overwrites an update made meanwhile. this_cpu_*() brackets "
        "the sequence with "
        "preempt_disable()/enable(); the RFC's local mapping removes the address "
        "computation instead.",
    )


EXERCISES = {"translate": translate_exercise, "next offset": next_offset_exercise,
             "lost update": lost_update_exercise}


def exercise_set(seed: int, count: int = 3) -> list[Exercise]:
    """`count` exercises drawn from `seed`, cycling through the kinds."""
    if count < 1:
        raise ValueError(f"count {count} must be at least 1")
    kinds = list(EXERCISES)
    return [EXERCISES[kinds[i % len(kinds)]](seed * 1000 + i) for i in range(count)]

