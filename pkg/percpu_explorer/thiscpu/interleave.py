"""Is a this_cpu_*() op correct when the task is preempted, migrated or interrupted?

A small machine runs tasks on CPUs one instruction at a time, executing the sequences
of `percpu_explorer.ops`. Between any two instructions the scheduler may switch tasks on
a CPU or move a task to another CPU, and an interrupt handler may run a whole op on its
CPU. What the machine models:

- per-CPU copies of each variable; an address made from TPIDR (today) names the copy
  of the CPU that was read when the offset was read; a local address (the RFC) names
  the copy of the CPU running the access, as each CPU's page tables map it;
- the exclusive monitor, one per CPU: ldxr/ldxp arm it, stxr/stxp succeed only if it is
  still armed for that address; a context switch or exception return clears it, so an
  LL/SC store interrupted by preemption or an interrupt fails and the loop retries;
- the preempt count in the task (thread_info): while it is non-zero the task keeps its
  CPU (interrupts still run). Without CONFIG_PREEMPTION (preempt "none"/"voluntary", which
  arm64 offers only before v7.0) there is no involuntary preemption in kernel mode: a task
  is switched or moved only between ops;
- registers travel with the task.

Each instruction is atomic (sequential consistency); interrupt handlers run to
completion. A run is correct when its final per-CPU values equal those of some serial
execution of the whole ops, each on a CPU the task ran on during that op, and no op wrote
a copy other than its running CPU's ("misplaced": a remote, unsynchronised write) and no
16-byte read mixed two copies ("torn").
"""

from __future__ import annotations

import itertools
import random
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

from ..kernel import DEFAULT_KERNEL, check_preempt, preempt_choices
from .ops import (
    DEFAULT_LOCAL_SCHEME,
    DEFAULT_PREEMPT,
    DEFAULT_VHE,
    PREEMPTIBLE_MODELS,
    LocalScheme,
    OpSequence,
    op_sequence,
)

VERDICTS = ("ok", "lost update", "misplaced", "torn")
# Ops whose returned value is part of correctness (it must match a serial execution).
RETURNING_OPS = ("read", "add_return", "xchg", "cmpxchg", "try_cmpxchg", "cmpxchg128")


@dataclass(frozen=True)
class OpCall:
    """One call `<flavour>_<op>(var, operand[, old])` in a task or interrupt handler."""

    op: str = "add"
    size: int = 8
    flavour: str = "this_cpu"
    operand: int = 1
    old: int = 0
    var: str = "v"


@dataclass(frozen=True)
class Task:
    """A task that starts on `cpu` and makes `calls` in order."""

    name: str
    cpu: int
    calls: tuple[OpCall, ...]


@dataclass(frozen=True)
class Irq:
    """An interrupt handler that runs `call` once on `cpu` (at any instruction boundary)."""

    cpu: int
    call: OpCall


@dataclass(frozen=True)
class Scenario:
    """Tasks and interrupts on `nr_cpus` CPUs under one scheme.

    max_migrations: how many times the scheduler may move each task (bounds the search).
    initial: starting value of (var, cpu) copies (default 0).
    """

    tasks: tuple[Task, ...]
    irqs: tuple[Irq, ...] = ()
    nr_cpus: int = 2
    scheme: str = "today"
    atomics: str = "lse"
    preempt: str = DEFAULT_PREEMPT
    kernel: str = DEFAULT_KERNEL
    local: LocalScheme = DEFAULT_LOCAL_SCHEME
    max_migrations: int = 1
    initial: Mapping[tuple[str, int], int] = field(default_factory=dict)
    vhe: bool = DEFAULT_VHE

    def __post_init__(self) -> None:
        check_preempt(self.preempt, self.kernel)
        for cpu in [t.cpu for t in self.tasks] + [i.cpu for i in self.irqs]:
            if not 0 <= cpu < self.nr_cpus:
                raise ValueError(f"cpu {cpu} is out of range; valid CPUs are "
                                 f"0..{self.nr_cpus - 1}")

    def sequence(self, call: OpCall) -> OpSequence:
        return op_sequence(call.op, call.size, flavour=call.flavour, scheme=self.scheme,
                           atomics=self.atomics, preempt=self.preempt, kernel=self.kernel,
                           local=self.local, vhe=self.vhe)

    def variables(self) -> tuple[str, ...]:
        calls = [c for t in self.tasks for c in t.calls] + [i.call for i in self.irqs]
        return tuple(sorted({c.var for c in calls} | {v for v, _ in self.initial}))


# --- op semantics (the reference) ---------------------------------------------------------

def _mask(size: int) -> int:
    return (1 << (8 * size)) - 1


def apply_op(call: OpCall, current: int) -> tuple[int, int]:
    """(new value, returned value) of `call` applied atomically to `current`."""
    m = _mask(call.size)
    op, x = call.op, call.operand
    if op == "read":
        return current, current
    if op == "write":
        return x & m, 0
    if op in ("add", "inc", "add_return"):
        new = (current + (1 if op == "inc" else x)) & m
        return new, (new if op == "add_return" else 0)
    if op in ("sub", "dec"):
        return (current - (1 if op == "dec" else x)) & m, 0
    if op == "and":
        return current & x & m, 0
    if op == "or":
        return (current | x) & m, 0
    if op == "xchg":
        return x & m, current
    if op in ("cmpxchg", "try_cmpxchg", "cmpxchg128"):
        return ((x & m) if current == call.old else current), current
    raise ValueError(f"op {op!r} is unknown")


def _operand(call: OpCall) -> int:
    """The value the kernel's sequence works with: sub/dec add a negated operand
    (percpu-defs.h this_cpu_sub = this_cpu_add(pcp, -val)), and is andnot of ~val."""
    m = _mask(call.size)
    if call.op == "inc":
        return 1
    if call.op == "dec":
        return m
    if call.op == "sub":
        return (-call.operand) & m
    return call.operand & m


def _modify(call: OpCall, value: int) -> int:
    """What the sequence's ALU step (or LSE instruction) computes from the loaded value."""
    m = _mask(call.size)
    if call.op in ("and",):
        return value & call.operand & m
    if call.op == "or":
        return (value | call.operand) & m
    if call.op in ("xchg", "write", "cmpxchg", "try_cmpxchg", "cmpxchg128"):
        return call.operand & m
    return (value + _operand(call)) & m


# --- the machine ---------------------------------------------------------------------------

class TaskState(NamedTuple):
    call: int = 0
    insn: int = 0
    cpu: int = 0
    count: int = 0          # preempt count (thread_info)
    off: object = None      # offset register: a CPU number (TPIDR) or "L" (local)
    val: int = 0            # loaded / returned value
    new: int = 0            # value to store
    lo_copy: int = -1       # memory index the low half of a 16-byte read came from
    lo_seen: int = 0        # the whole 16-byte value when the low half was read
    status: int = 0         # stxr status
    ran: int = 0            # bitmask of CPUs run on during the current call
    migrations: int = 0
    ran_per_call: tuple[int, ...] = ()
    rets: tuple[int, ...] = ()  # value each finished call returned


class State(NamedTuple):
    tasks: tuple[TaskState, ...]
    mem: tuple[int, ...]               # index var * nr_cpus + cpu
    monitors: tuple[object, ...]       # per CPU: None or armed memory index
    last: tuple[int, ...]              # per CPU: last task to run there (-1: none/irq)
    fired: tuple[bool, ...]
    misplaced: int = 0
    torn: int = 0
    retries: int = 0                 # 1 once an LL/SC store failed and the loop retried
    irq_rets: tuple[int, ...] = ()     # per irq: the value its op returned


@dataclass(frozen=True)
class Outcome:
    """One end state: final copies {(var, cpu): value}, verdict, and counts."""

    final: Mapping[tuple[str, int], int]
    verdict: str
    retries: int
    misplaced: int
    torn: int


class _Compiled:
    def __init__(self, scen: Scenario) -> None:
        self.scen = scen
        self.vars = scen.variables()
        self.n = scen.nr_cpus
        self.progs = [[scen.sequence(c).insns for c in t.calls] for t in scen.tasks]
        self.labels = [[{i.label: k for k, i in enumerate(insns) if i.label} for insns in prog]
                       for prog in self.progs]
        self.op_end = [[max((k for k, i in enumerate(insns) if i.part == "op"), default=-1) + 1
                        for insns in prog] for prog in self.progs]
        self.preemptible = scen.preempt in PREEMPTIBLE_MODELS

    def index(self, var: str, cpu: int) -> int:
        return self.vars.index(var) * self.n + cpu

    def initial(self) -> State:
        scen = self.scen
        mem = [0] * (len(self.vars) * self.n)
        for (var, cpu), value in scen.initial.items():
            mem[self.index(var, cpu)] = value
        tasks = tuple(TaskState(cpu=t.cpu, ran=1 << t.cpu) for t in scen.tasks)
        return State(tasks, tuple(mem), (None,) * self.n, (-1,) * self.n,
                     (False,) * len(scen.irqs), irq_rets=(0,) * len(scen.irqs))

    def done(self, t: TaskState, k: int) -> bool:
        return t.call >= len(self.progs[k])

    def at_boundary(self, t: TaskState) -> bool:
        return t.insn == 0

    def holds_cpu(self, t: TaskState, k: int) -> bool:
        """The task may not be switched out now (count held or no kernel preemption)."""
        if self.done(t, k) or self.at_boundary(t):
            return False
        return t.count > 0 or not self.preemptible

    def can_run(self, s: State, k: int) -> bool:
        t = s.tasks[k]
        if self.done(t, k):
            return False
        return not any(j != k and u.cpu == t.cpu and self.holds_cpu(u, j)
                       for j, u in enumerate(s.tasks))

    def can_migrate(self, s: State, k: int) -> bool:
        t = s.tasks[k]
        if self.done(t, k) or t.migrations >= self.scen.max_migrations or t.count > 0:
            return False
        return self.preemptible or self.at_boundary(t)

    # -- transitions ----------------------------------------------------------------------

    def migrate(self, s: State, k: int, cpu: int) -> State:
        t = s.tasks[k]
        # if it was running on its old CPU, it is switched out there (that CPU's monitor is
        # cleared); on the new CPU the switch in happens when it next runs (see step)
        monitors, last = s.monitors, s.last
        if last[t.cpu] == k:
            monitors, last = _put(monitors, t.cpu, None), _put(last, t.cpu, -1)
        t = t._replace(cpu=cpu, migrations=t.migrations + 1, ran=t.ran | (1 << cpu))
        return s._replace(tasks=_put(s.tasks, k, t), monitors=monitors, last=last)

    def fire(self, s: State, q: int) -> State:
        irq = self.scen.irqs[q]
        i = self.index(irq.call.var, irq.cpu)
        new, ret = apply_op(irq.call, s.mem[i])
        monitors = list(s.monitors)
        monitors[irq.cpu] = None  # exception return clears the local monitor
        fired = list(s.fired)
        fired[q] = True
        rets = _put(s.irq_rets, q, ret if irq.call.op in RETURNING_OPS else 0)
        return s._replace(mem=_put(s.mem, i, new), monitors=tuple(monitors), fired=tuple(fired),
                          irq_rets=rets)

    def step(self, s: State, k: int) -> State:
        t = s.tasks[k]
        scen_call = self.scen.tasks[k].calls[t.call]
        insns = self.progs[k][t.call]
        insn = insns[t.insn]
        c = t.cpu
        monitors = list(s.monitors)
        if s.last[c] != k:  # context switch onto this CPU
            monitors[c] = None
        last = _put(s.last, c, k)
        mem, misplaced, torn, retries = s.mem, s.misplaced, s.torn, s.retries
        nxt = t.insn + 1
        e = insn.effect
        if t.insn == 0:
            t = t._replace(new=_modify(scen_call, 0), val=0, status=0)
        copy = t.off if isinstance(t.off, int) else c
        i = self.index(scen_call.var, copy)
        if e == "preempt_inc":
            t = t._replace(count=t.count + 1)
        elif e == "preempt_dec":
            t = t._replace(count=t.count - 1)
        elif e == "tpidr":
            t = t._replace(off=c)
        elif e == "local_off":
            t = t._replace(off="L")
        elif e == "load":
            t = t._replace(val=mem[i])
        elif e == "load_lo":
            t = t._replace(val=mem[i] & _mask(8), lo_copy=i, lo_seen=mem[i])
        elif e == "load_hi":  # torn: another copy, or the value changed in between
            torn += i != t.lo_copy or mem[i] != t.lo_seen
            t = t._replace(val=t.val | (mem[i] >> 64 << 64))
        elif e == "modify":
            t = t._replace(new=_modify(scen_call, t.val))
        elif e in ("store", "atomic", "cas"):
            if e == "atomic":
                t = t._replace(val=mem[i], new=_modify(scen_call, mem[i]))
            elif e == "cas":
                t = t._replace(val=mem[i])
                if mem[i] != scen_call.old:
                    i = -1
            if i >= 0:
                mem = _put(mem, i, t.new)
                misplaced += copy != c
        elif e == "ldx":
            t = t._replace(val=mem[i])
            monitors[c] = i
        elif e == "stx":
            if monitors[c] == i:
                mem = _put(mem, i, t.new)
                misplaced += copy != c
                t = t._replace(status=0)
            else:
                t = t._replace(status=1)
            monitors[c] = None
        elif e == "cmp_exit":
            if t.val != (scen_call.old & _mask(scen_call.size)):
                nxt = self.labels[k][t.call].get("2", self.op_end[k][t.call])
        elif e == "retry":
            if t.status:
                retries = 1  # saturating: a livelock (switch on every instruction) stays finite
                nxt = self.labels[k][t.call]["1"]
        if nxt >= len(insns):  # call finished
            ret = t.new if scen_call.op == "add_return" else (
                t.val if scen_call.op in RETURNING_OPS else 0)
            t = t._replace(call=t.call + 1, insn=0, off=None, rets=(*t.rets, ret),
                           ran_per_call=(*t.ran_per_call, t.ran), ran=1 << t.cpu)
        else:
            t = t._replace(insn=nxt)
        return State(_put(s.tasks, k, t), mem, tuple(monitors), last, s.fired, misplaced, torn,
                     retries, s.irq_rets)

    def moves(self, s: State) -> list[tuple[str, int, int]]:
        out: list[tuple[str, int, int]] = []
        for q, fired in enumerate(s.fired):
            if not fired:
                out.append(("irq", q, self.scen.irqs[q].cpu))
        for k, t in enumerate(s.tasks):
            if self.can_run(s, k):
                out.append(("run", k, t.cpu))
            if self.can_migrate(s, k):
                out += [("migrate", k, d) for d in range(self.n) if d != t.cpu]
        return out

    def apply(self, s: State, move: tuple[str, int, int]) -> State:
        kind, k, cpu = move
        if kind == "irq":
            return self.fire(s, k)
        if kind == "migrate":
            return self.migrate(s, k, cpu)
        return self.step(s, k)

    def finished(self, s: State) -> bool:
        return all(self.done(t, k) for k, t in enumerate(s.tasks)) and all(s.fired)

    # -- verdicts --------------------------------------------------------------------------

    def final(self, s: State) -> dict[tuple[str, int], int]:
        return {(v, c): s.mem[self.index(v, c)] for v in self.vars for c in range(self.n)}

    def reference_finals(self, s: State) -> set[tuple[tuple[int, ...], tuple]]:
        """(final memory, values returned per task) of every serial execution of whole
        ops (tasks in program order, each op on one of the CPUs its task ran on during it;
        interrupts on their CPU)."""
        items: list[list[tuple[OpCall, tuple[int, ...]]]] = []
        for k, task in enumerate(self.scen.tasks):
            masks = s.tasks[k].ran_per_call
            items.append([(c, tuple(cpu for cpu in range(self.n) if masks[j] >> cpu & 1))
                          for j, c in enumerate(task.calls)])
        items += [[(irq.call, (irq.cpu,))] for irq in self.scen.irqs]
        start = self.initial().mem
        results: set[tuple[int, ...]] = set()
        n_src = len(items)
        for order in _merges([len(x) for x in items]):
            seq = [items[src][pos] for src, pos in order]
            for cpus in itertools.product(*[c for _, c in seq]):
                mem = list(start)
                rets: list[list[int]] = [[] for _ in range(n_src)]
                for (src, _), (call, _), cpu in zip(order, seq, cpus, strict=True):
                    i = self.index(call.var, cpu)
                    mem[i], ret = apply_op(call, mem[i])
                    rets[src].append(ret if call.op in RETURNING_OPS else 0)
                results.add((tuple(mem), tuple(tuple(r) for r in rets)))
        return results

    def returned(self, s: State) -> tuple[tuple[int, ...], ...]:
        """Values returned per task, then per interrupt handler."""
        return (*(t.rets for t in s.tasks), *((r,) for r in s.irq_rets))

    def outcome(self, s: State) -> Outcome:
        if s.torn:
            verdict = "torn"
        elif (s.mem, self.returned(s)) not in self.reference_finals(s):
            verdict = "lost update"
        elif s.misplaced:
            verdict = "misplaced"
        else:
            verdict = "ok"
        return Outcome(self.final(s), verdict, s.retries, s.misplaced, s.torn)


def _put(tup: tuple, i: int, value: object) -> tuple:
    return (*tup[:i], value, *tup[i + 1:])


def _merges(lengths: list[int]) -> Iterable[list[tuple[int, int]]]:
    """Every interleaving of sources with the given lengths, keeping each source's order."""
    total = sum(lengths)
    if total == 0:
        yield []
        return
    for src, n in enumerate(lengths):
        if n:
            rest = list(lengths)
            rest[src] -= 1
            for tail in _merges(rest):
                yield [*tail, (src, n - 1)]


# --- exploration ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Step:
    """One move of a schedule: a task runs an instruction on its CPU (kind "insn"), a
    task migrates from `cpu` to `to_cpu` ("migrate"), or an interrupt runs `text` on
    `cpu` ("irq", task "irq")."""

    kind: str
    task: str
    cpu: int
    text: str = ""
    to_cpu: int | None = None

    def __str__(self) -> str:
        if self.kind == "irq":
            return f"irq on CPU{self.cpu}: {self.text}"
        if self.kind == "migrate":
            return f"{self.task} migrates CPU{self.cpu} -> CPU{self.to_cpu}"
        return f"{self.task}@CPU{self.cpu}: {self.text}"


@dataclass(frozen=True)
class Exploration:
    """What every schedule of a scenario leads to.

    verdicts: verdict -> number of distinct end states. finals: each distinct end state.
    examples: verdict -> one schedule (its `Step`s) that reaches it. states: states seen.
    """

    scenario: Scenario
    verdicts: Mapping[str, int]
    outcomes: tuple[Outcome, ...]
    examples: Mapping[str, tuple[Step, ...]]
    states: int
    exhaustive: bool

    @property
    def safe(self) -> bool:
        return set(self.verdicts) <= {"ok"}

    @property
    def retried(self) -> bool:
        return any(o.retries for o in self.outcomes)

    def __repr__(self) -> str:
        return f"Exploration({self.summary()})"

    def summary(self) -> str:
        verdicts = ", ".join(f"{v}: {n}" for v, n in sorted(self.verdicts.items()))
        kind = "every schedule" if self.exhaustive else "random schedules"
        return (f"{'SAFE' if self.safe else 'UNSAFE'} over {kind} ({self.states} states); "
                f"end states by verdict: {verdicts}"
                + ("; LL/SC retries seen" if self.retried else ""))


def _describe(comp: _Compiled, s: State, move: tuple[str, int, int]) -> Step:
    kind, k, cpu = move
    if kind == "irq":
        return Step("irq", "irq", cpu, comp.scen.irqs[k].call.op)
    t = s.tasks[k]
    name = comp.scen.tasks[k].name
    if kind == "migrate":
        return Step("migrate", name, t.cpu, to_cpu=cpu)
    return Step("insn", name, t.cpu, comp.progs[k][t.call][t.insn].text)


def explore(scen: Scenario, *, max_states: int = 2_000_000) -> Exploration:
    """Every schedule (depth-first over moves, each state visited once)."""
    comp = _Compiled(scen)
    seen: set[State] = set()
    finals: dict[tuple, Outcome] = {}
    examples: dict[str, tuple[Step, ...]] = {}
    path: list[Step] = []
    start = comp.initial()
    stack: list[tuple[State, list[tuple[str, int, int]], int]] = [(start, comp.moves(start), 0)]
    seen.add(start)
    while stack:
        s, moves, i = stack[-1]
        if comp.finished(s):
            key = (s.mem, s.misplaced > 0, s.torn > 0, s.retries,
                   tuple(t.ran_per_call for t in s.tasks), comp.returned(s))
            if key not in finals:
                out = comp.outcome(s)
                finals[key] = out
                examples.setdefault(out.verdict, tuple(path))
        if i >= len(moves):
            stack.pop()
            if path:
                path.pop()
            continue
        stack[-1] = (s, moves, i + 1)
        nxt = comp.apply(s, moves[i])
        if nxt in seen:
            continue
        if len(seen) >= max_states:
            raise ValueError(f"more than {max_states} states: make the scenario smaller or "
                             "use random_schedules()")
        seen.add(nxt)
        path.append(_describe(comp, s, moves[i]))
        stack.append((nxt, comp.moves(nxt), 0))
    return _exploration(scen, finals.values(), examples, len(seen), True)


def _exploration(scen: Scenario, outcomes: Iterable[Outcome], examples: dict,
                 states: int, exhaustive: bool) -> Exploration:
    outs = tuple(outcomes)
    uniq: dict[tuple, Outcome] = {}
    for o in outs:
        uniq.setdefault((tuple(sorted(o.final.items())), o.verdict, o.retries), o)
    verdicts = Counter(o.verdict for o in uniq.values())
    return Exploration(scen, dict(verdicts), tuple(uniq.values()), examples, states, exhaustive)


def random_schedules(scen: Scenario, runs: int = 1000, *, seed: int = 0) -> Exploration:
    """`runs` schedules with uniformly random moves (for scenarios too big to explore)."""
    comp = _Compiled(scen)
    rng = random.Random(seed)
    outcomes: list[Outcome] = []
    examples: dict[str, tuple[Step, ...]] = {}
    steps = 0
    for _ in range(runs):
        s = comp.initial()
        path: list[Step] = []
        while not comp.finished(s):
            if len(path) > 100_000:
                raise RuntimeError("a random schedule did not finish (livelock)")
            moves = comp.moves(s)
            move = rng.choice(moves)
            path.append(_describe(comp, s, move))
            s = comp.apply(s, move)
            steps += 1
        out = comp.outcome(s)
        outcomes.append(out)
        examples.setdefault(out.verdict, tuple(path))
    return _exploration(scen, outcomes, examples, steps, False)


# --- the cases the issue names ---------------------------------------------------------------

def op_pair(op: str = "add", size: int = 8, *, flavour: str = "this_cpu", scheme: str = "today",
            atomics: str = "lse", preempt: str = DEFAULT_PREEMPT, kernel: str = DEFAULT_KERNEL,
            local: LocalScheme = DEFAULT_LOCAL_SCHEME, operand: int = 1, old: int = 0,
            irq: bool = False, vhe: bool = DEFAULT_VHE) -> Scenario:
    """Two tasks, one per CPU, each making one `op` on the same variable; with irq=True
    also an interrupt handler on CPU0 doing this_cpu_add(v, 100) (the PREEMPT_NONE case)."""
    a = OpCall(op, size, flavour, operand, old)
    b = OpCall(op, size, flavour, operand << 1 if op not in _CAS_OPS else operand, old)
    initial = _initial(op, size, old)
    irqs = (Irq(0, _irq_call(size, initial)),) if irq else ()
    return Scenario((Task("A", 0, (a,)), Task("B", 1, (b,))), irqs, 2, scheme, atomics,
                    preempt, kernel, local, initial=initial, vhe=vhe)


_CAS_OPS = ("cmpxchg", "try_cmpxchg", "cmpxchg128")


def _irq_call(size: int, initial: Mapping[tuple[str, int], int]) -> OpCall:
    """The interrupt handler's op: this_cpu_add(v, 100), or for a 16-byte variable a
    this_cpu_cmpxchg128 that replaces the initial CPU0 value with 0x99:0x99."""
    if size == 16:
        return OpCall("cmpxchg128", 16, "this_cpu", 0x99 << 64 | 0x99, initial[("v", 0)])
    return OpCall("add", size, "this_cpu", 100)


def _initial(op: str, size: int, old: int) -> dict[tuple[str, int], int]:
    """Distinct starting copies, so an update written to the wrong copy shows: 0x10 on
    CPU0 and 0x20 on CPU1 (both `old` for the cmpxchg family, so the first one succeeds;
    for 16 bytes the high half repeats the low one)."""
    if op in _CAS_OPS:
        return {("v", 0): old, ("v", 1): old}
    if op == "and":  # bits to clear, so that a lost and shows
        return {("v", 0): 0xFFF, ("v", 1): 0xFF0}
    if size == 16:
        return {("v", 0): 0x10 << 64 | 0x10, ("v", 1): 0x20 << 64 | 0x20}
    return {("v", 0): 0x10, ("v", 1): 0x20}


def preemption_points(op: str = "add", size: int = 8, *, flavour: str = "this_cpu",
                      scheme: str = "today", atomics: str = "lse",
                      preempt: str = DEFAULT_PREEMPT, kernel: str = DEFAULT_KERNEL,
                      local: LocalScheme = DEFAULT_LOCAL_SCHEME, operand: int = 1, old: int = 0,
                      vhe: bool = DEFAULT_VHE) -> pd.DataFrame:
    """For each point between two instructions of task A's op (A on CPU0), what happens if
    (1) A is preempted there, task B runs the same op on CPU0, and A resumes on CPU1;
    (2) an interrupt handler on CPU0 runs this_cpu_add(v, 100) there.
    One row per point: the instruction before it, whether A may be preempted there, the
    final copies and verdict of each case ("-" when the case cannot happen there), and
    each case's verdict alone (`migrate_verdict`, `irq_verdict`; missing when it cannot)."""
    call = OpCall(op, size, flavour, operand, old)
    other = OpCall(op, size, flavour, operand << 2 if op not in _CAS_OPS else operand, old)
    base = dict(nr_cpus=2, scheme=scheme, atomics=atomics, preempt=preempt, kernel=kernel,
                local=local, initial=_initial(op, size, old), vhe=vhe)
    migrate_scen = Scenario((Task("A", 0, (call,)), Task("B", 0, (other,))), **base)
    irq_scen = Scenario((Task("A", 0, (call,)),), (Irq(0, _irq_call(size, base["initial"])),),
                        **base)
    rows = []
    insns = migrate_scen.sequence(call).insns
    for point in range(len(insns) + 1):
        row = {"point": point, "after": insns[point - 1].text if point else "(start)"}
        mig = _run_to_point(migrate_scen, point, "migrate")
        row["preemptible"] = mig is not None
        irq = _run_to_point(irq_scen, point, "irq")
        row["migrate"] = _fmt_outcome(mig)
        row["irq"] = _fmt_outcome(irq)
        row["migrate_verdict"] = None if mig is None else mig.verdict
        row["irq_verdict"] = None if irq is None else irq.verdict
        rows.append(row)
    return pd.DataFrame(rows)


def _run_to_point(scen: Scenario, point: int, case: str) -> Outcome | None:
    """Run task A `point` instructions (following its branches), then the case, then finish.
    None when the case is not allowed there."""
    comp = _Compiled(scen)
    s = comp.initial()
    executed = 0
    while executed < point and not comp.done(s.tasks[0], 0):
        s = comp.step(s, 0)
        executed += 1
    if executed < point:
        return None
    if case == "irq":
        s = comp.fire(s, 0)
    else:
        a = s.tasks[0]
        if not (comp.at_boundary(a) or comp.done(a, 0)) and comp.holds_cpu(a, 0):
            return None
        while not comp.done(s.tasks[1], 1):  # B runs its whole op on CPU0
            s = comp.step(s, 1)
        if not comp.done(s.tasks[0], 0):
            s = comp.migrate(s, 0, 1)
    guard = 0
    while not comp.done(s.tasks[0], 0):
        s = comp.step(s, 0)
        guard += 1
        if guard > 1000:
            raise RuntimeError("task A does not finish")
    return comp.outcome(s)


def preempted_at(scen: Scenario, point: int) -> Outcome | None:
    """The end state when the scenario's first task (A) runs `point` instructions of its
    op (following its branches), is preempted there while the second task (B) runs its
    whole op on A's CPU, then resumes on CPU1 and finishes: `preemption_points`' migrate
    case for any scenario. None where A cannot be preempted at that point."""
    if len(scen.tasks) != 2 or scen.nr_cpus < 2:
        raise ValueError(f"preempted_at needs two tasks on at least 2 CPUs, not "
                         f"{len(scen.tasks)} task(s) on {scen.nr_cpus}")
    if scen.tasks[0].cpu != 0 or scen.tasks[1].cpu != 0:
        raise ValueError("preempted_at starts both tasks on CPU0 (A is moved to CPU1)")
    if not isinstance(point, int) or point < 0:
        raise ValueError(f"point {point!r} must be an instruction count from 0")
    return _run_to_point(scen, point, "migrate")


def _fmt_outcome(out: Outcome | None) -> str:
    if out is None:
        return "-"
    values = " ".join(f"{var}@CPU{cpu}={value:#x}"
                      for (var, cpu), value in sorted(out.final.items()))
    extra = ", LL/SC retried" if out.retries else ""
    return f"{out.verdict} ({values}{extra})"


def _verdict(result: Exploration) -> str:
    if result.safe:
        return "safe (retries)" if result.retried else "safe"
    return ", ".join(sorted(v for v in result.verdicts if v != "ok"))


# The none+irq verdicts of a kernel without PREEMPT_NONE.
NO_PREEMPT_NONE = "n/a: no PREEMPT_NONE on arm64 since v7.0 (7dadeaa6e851)"


def safety_table(ops: tuple[tuple[str, int], ...] | None = None, *,
                 kernel: str = DEFAULT_KERNEL, local: LocalScheme = DEFAULT_LOCAL_SCHEME
                 ) -> pd.DataFrame:
    """Claim 9 as data: for each (op, size) and atomics, the exhaustive verdict of an op
    pair on 2 CPUs for today's this_cpu_* and __this_cpu_* under PREEMPT_FULL, the local
    scheme's this_cpu_*, and under PREEMPT_NONE (no preempt count) with an interrupt on
    CPU0. Default ops: every op at 8 bytes, cmpxchg128 and the hypothetical 16-byte read.
    From v7.0 arm64 has no PREEMPT_NONE (7dadeaa6e851): the none+irq columns say n/a."""
    from .ops import OPS, default_size

    if ops is None:
        ops = (*((op, default_size(op)) for op in OPS), ("read", 16))
    has_none = "none" in preempt_choices(kernel)
    rows = []
    for op, size in ops:
        kw = dict(operand=5, kernel=kernel, local=local)

        def none_irq(flavour: str, atomics: str = "lse", op: str = op, size: int = size,
                     kw: dict = kw) -> str:
            if not has_none:
                return NO_PREEMPT_NONE
            return _verdict(explore(op_pair(op, size, flavour=flavour, atomics=atomics,
                                            preempt="none", irq=True, **kw)))

        unguarded = _verdict(explore(op_pair(op, size, flavour="__this_cpu", **kw)))
        unguarded_irq = none_irq("__this_cpu")
        for atomics in ("lse", "llsc"):
            rows.append({
                "op": op, "size": size, "atomics": atomics,
                "today this_cpu": _verdict(explore(op_pair(op, size, atomics=atomics, **kw))),
                "today __this_cpu (no guard)": unguarded,
                "local this_cpu": _verdict(explore(op_pair(op, size, scheme="local",
                                                           atomics=atomics, **kw))),
                "none+irq this_cpu": none_irq("this_cpu", atomics),
                "none+irq __this_cpu": unguarded_irq,
            })
    return pd.DataFrame(rows)
