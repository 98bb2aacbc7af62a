"""What the this_cpu models answer, in sentences (`findings.Finding`) and tables for
reading: an op's cost today and with the local scheme, the sequences compared, the
safety verdicts, a workload's saving and the sys-time share it could explain.

Costs rest on a core profile's instruction costs, some of them estimates (named in each
finding's detail); the local scheme's sequence rests on `ops.DEFAULT_LOCAL_SCHEME`, an
assumption (patch 11/11 is not public).
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from ..findings import Finding
from ..kernel import (
    DEFAULT_KERNEL,
    has_preempt_count,
    local_percpu_supported,
    preempt_choices,
)
from .cost import ReviewerView, WorkloadCost, reviewer_view
from .ops import (
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    DEFAULT_PREEMPT,
    DEFAULT_VHE,
    CoreProfile,
    LocalScheme,
    OpCost,
    OpSequence,
    core_profile,
    default_size,
    op_cost,
    op_sequence,
)

__all__ = [
    "LOCAL_NEEDS",
    "op_cost_finding",
    "preempt_table",
    "reviewer_finding",
    "reviewer_table",
    "safety_finding",
    "scheme_table",
    "sequence_finding",
    "sig2",
    "this_cpu_finding",
]

LOCAL_NEEDS = "local percpu needs v6.9+"


def sig2(value: float) -> str:
    """Two significant figures, the precision of numbers derived from estimated costs."""
    return f"{float(f'{value:.2g}'):g}"


def _a(percent: float) -> str:
    """ "a 13" / "an 18": the article before a whole percentage."""
    text = f"{percent:.0f}"
    return ("an " if text.startswith("8") or text in ("11", "18") or
            (text.startswith(("11", "18")) and len(text) in (2, 5))
            else "a ") + text


def _model(preempt: str) -> str:
    return f"PREEMPT_{preempt.upper()}"


def _call(seq: OpSequence) -> str:
    return f"{seq.flavour}_{seq.op}() of a{'n' if seq.size == 8 else ''} {seq.size}-byte variable"


def _estimated(*costs: OpCost) -> list[str]:
    return list(dict.fromkeys(k for c in costs for k in c.estimated))


def _cost_detail(profile: CoreProfile, costs: Iterable[OpCost], local: LocalScheme | None
                 ) -> str:
    """The basis of an estimate: the profile, its estimated classes used, and (when a
    local cost is part of it) that the local sequence is assumed."""
    estimated = ", ".join(_estimated(*costs)).replace("resched", "the rare reschedule")
    text = (f"the {profile.name} core profile, with estimated costs for "
            f"{estimated or 'no class'}")
    if local is not None:
        default = " (ops.DEFAULT_LOCAL_SCHEME)" if local == DEFAULT_LOCAL_SCHEME else ""
        text += (f"; the local sequence is an assumption{default}, patch 11/11 being not "
                 "public")
    return text


def _bracket(cost: OpCost) -> float:
    return cost.by_part.get("bracket", 0.0) + cost.resched


def _ops_on(cost: WorkloadCost) -> str:
    """The ops of a priced workload and where they ran (a counted one: all CPUs)."""
    if cost.counted:
        return f"{cost.events:,} ops counted on all CPUs together"
    return f"{cost.events:,} ops on {cost.nr_cpus} CPU{'s' if cost.nr_cpus != 1 else ''}"


def this_cpu_finding(op: str = "add", size: int | None = None, *,
                     preempt: str = DEFAULT_PREEMPT, kernel: str = DEFAULT_KERNEL,
                     core: str | CoreProfile = DEFAULT_CORE, atomics: str = "lse",
                     local: LocalScheme = DEFAULT_LOCAL_SCHEME, vhe: bool = DEFAULT_VHE,
                     cost: WorkloadCost | None = None, workload: str = "the workload",
                     ghz: float = 3.0, target: float = 0.13) -> Finding:
    """The notebook's answer: what `this_cpu_<op>()` costs today and with the local scheme
    under `preempt`, and (with a priced workload `cost`) what the workload would save per
    op and the this_cpu op rate a `target` sys-time saving would need at `ghz`. Before
    v6.9 the local scheme cannot exist: only today's cost is given."""
    size = default_size(op) if size is None else size
    profile = core_profile(core)
    common = dict(preempt=preempt, kernel=kernel, atomics=atomics, local=local, vhe=vhe)
    today = op_sequence(op, size, scheme="today", **common)
    t = op_cost(today, profile)
    has_local = local_percpu_supported(kernel)
    question = (f"What does a {today.flavour}_{op}() cost on arm64 under "
                f"{_model(preempt)} today and with local percpu, and what would a workload "
                "save?")
    numbers: dict[str, float] = {"today_cycles": t.cycles, "today_insns": len(today.insns),
                                 "bracket_cycles": _bracket(t)}
    head = (f"Under {_model(preempt)} on kernel {today.kernel} and a {profile.name} core, "
            f"{_call(today)} is {len(today.insns)} instructions and ~{t.cycles:.0f} cycles "
            "today")
    if _bracket(t):
        head += f", ~{_bracket(t):.0f} of them the preemption bracket"
    costs = [t]
    if not has_local:
        answer = (f"{head}; {LOCAL_NEEDS}, so kernel {today.kernel} has nothing to compare "
                  "it with.")
        if cost is not None:
            per_op = float(cost.totals.set_index("variant").loc[f"today-{atomics}",
                                                                  "cycles_per_op"])
            numbers |= {"events": cost.events, "nr_cpus": cost.nr_cpus,
                        "today_per_op": per_op}
            answer += (f" {workload} ({_ops_on(cost)}) costs "
                       f"~{per_op:.0f} cycles per op.")
        return Finding(question, answer, "estimate", numbers, _cost_detail(profile, costs,
                                                                            None))
    seq = op_sequence(op, size, scheme="local", **common)
    lc = op_cost(seq, profile)
    costs.append(lc)
    saving = t.cycles - lc.cycles
    numbers |= {"local_cycles": lc.cycles, "local_insns": len(seq.insns),
                "saving_cycles": saving, "saving_pct": 100 * saving / t.cycles}
    change = (f"~{saving:.0f} cycles fewer, {100 * saving / t.cycles:.0f}%" if saving > 0
              else f"~{-saving:.0f} cycles more" if saving < 0 else "the same")
    answer = (f"{head}; with local percpu it is {len(seq.insns)} instructions and "
              f"~{lc.cycles:.0f} cycles ({change}).")
    if cost is not None:
        totals = cost.totals.set_index("variant")
        before = float(totals.loc[f"today-{atomics}", "cycles_per_op"])
        after = float(totals.loc[f"local-{atomics}", "cycles_per_op"])
        share = 100 * (before - after) / before
        numbers |= {"events": cost.events, "nr_cpus": cost.nr_cpus, "today_per_op": before,
                    "local_per_op": after, "workload_saving_pct": share}
        answer += (f" Over {workload} ({_ops_on(cost)}) that is "
                   f"~{before:.0f} against ~{after:.0f} cycles per op")
        if before > after:
            view = reviewer_view(cost, ghz=ghz, atomics=atomics, targets=(target,))
            rate = view.required_rate(target)
            numbers |= {"required_rate": rate, "ghz": ghz, "target": target}
            answer += (f", {share:.0f}% fewer: {_a(100 * target)}% sys-time saving would "
                       f"need ~{sig2(rate / 1e6)} M this_cpu ops per sys-second per CPU at "
                       f"{ghz:g} GHz.")
        else:
            answer += ": the local scheme saves nothing here."
    return Finding(question, answer, "estimate", numbers, _cost_detail(profile, costs, local))


def sequence_finding(today: OpSequence, local: OpSequence,
                     scheme: LocalScheme = DEFAULT_LOCAL_SCHEME) -> Finding:
    """How the local scheme's sequence differs from today's, in words (an assumption:
    `scheme` is what patch 11/11 is assumed to emit)."""
    bracket = sum(i.part == "bracket" for i in today.insns)
    kept = sum(i.part == "bracket" for i in local.insns)
    reg = today.offset_register
    offset = ("loads the local offset from __per_cpu_local_off" if scheme.offset == "variable"
              else "adds a link-time constant local offset")
    if bracket and not kept:
        first = (f"Today's {today.flavour}_{today.op}() raises and lowers the preempt count "
                 f"around the access ({bracket} of its {len(today.insns)} instructions) and "
                 f"reads this CPU's offset from {reg}; the local scheme drops that bracket "
                 f"and {offset}, the same on every CPU")
    elif bracket:
        first = (f"Both keep the preemption bracket ({bracket} instructions); today reads "
                 f"this CPU's offset from {reg}, the local scheme {offset}")
    else:
        first = (f"Under {_model(today.preempt)} there is no preempt count, so neither "
                 f"sequence has a bracket to drop; today reads this CPU's offset from {reg}, "
                 f"the local scheme {offset}")
    access = [i.text for i in today.insns if i.part == "op"] == \
        [i.text for i in local.insns if i.part == "op"]
    answer = (f"{first}: {len(local.insns)} instructions against {len(today.insns)}"
              + (", the access itself unchanged." if access else "."))
    return Finding(f"What does the local scheme change in {today.flavour}_{today.op}()?",
                   answer, "assumption",
                   {"today_insns": len(today.insns), "local_insns": len(local.insns),
                    "bracket_insns": bracket},
                   scheme.describe())


def op_cost_finding(today: OpSequence, local: OpSequence | None = None,
                    core: str | CoreProfile = DEFAULT_CORE) -> Finding:
    """The cycles of one op today and (optionally) with the local scheme on `core`, as a
    sentence with its units and what they rest on."""
    profile = core_profile(core)
    t = op_cost(today, profile)
    name = f"{today.flavour}_{today.op}()"
    numbers: dict[str, float] = {"today_cycles": t.cycles, "bracket_cycles": _bracket(t)}
    answer = (f"On the {profile.name} core profile today's {name} costs ~{t.cycles:.0f} "
              "cycles")
    if _bracket(t):
        answer += f" (~{_bracket(t):.0f} of them the preemption bracket)"
    costs = [t]
    if local is not None:
        lc = op_cost(local, profile)
        costs.append(lc)
        saving = t.cycles - lc.cycles
        numbers |= {"local_cycles": lc.cycles, "saving_cycles": saving}
        answer += f" and the local scheme's ~{lc.cycles:.0f} cycles"
        answer += (f": ~{saving:.0f} cycles ({100 * saving / t.cycles:.0f}%) fewer per op."
                   if saving > 0 else f": ~{-saving:.0f} cycles more per op." if saving < 0
                   else ": the same.")
    else:
        answer += "."
    return Finding(f"How many cycles does one {name} take?", answer, "estimate", numbers,
                   _cost_detail(profile, costs, None))


def preempt_table(kernels: Iterable[str] = ("6.1", "6.12", "7.1")) -> pd.DataFrame:
    """Per kernel: the preemption models arm64 offers (`kernel.preempt_choices`), split
    into those with a preempt count (a bracket to save) and those without (barrier())."""
    rows = []
    for kernel in kernels:
        models = preempt_choices(kernel)
        rows.append({"kernel": kernel,
                     "with a preempt count": ", ".join(m for m in models
                                                       if has_preempt_count(m)),
                     "bracket is barrier() only": ", ".join(m for m in models
                                                            if not has_preempt_count(m))
                     or "none offered",
                     "local percpu": "possible" if local_percpu_supported(kernel)
                     else LOCAL_NEEDS})
    return pd.DataFrame(rows)


def _case(op: str, size: int) -> str:
    return "the hypothetical 16-byte read" if (op, size) == ("read", 16) else \
        f"{op} of {size} bytes"


def safety_finding(table: pd.DataFrame) -> Finding:
    """The verdicts of `interleave.safety_table()` in a sentence: how many cases of
    today's this_cpu_*, the unguarded __this_cpu_* and the local scheme's this_cpu_* end
    in a lost, misplaced or torn update; and, where the kernel has PREEMPT_NONE, how many
    an interrupt breaks."""
    def bad(column: str) -> list[int]:
        return [i for i, v in enumerate(table[column]) if not str(v).startswith("safe")]

    n = len(table)
    today, raw, local = (bad("today this_cpu"), bad("today __this_cpu (no guard)"),
                         bad("local this_cpu"))
    parts = [f"today's this_cpu_*() ops end safe in {n - len(today)} of {n} cases",
             f"__this_cpu_*() without a guard loses or misplaces updates in {len(raw)}"]
    if local:
        cases = ", ".join(sorted({_case(table["op"][i], table["size"][i]) for i in local}))
        verdicts = ", ".join(sorted({str(table["local this_cpu"][i]) for i in local}))
        parts.append(f"the local scheme's this_cpu_*() is safe in {n - len(local)}, not for "
                     f"{cases} ({verdicts})")
    else:
        parts.append(f"the local scheme's this_cpu_*() is safe in all {n}")
    numbers = {"cases": n, "today_unsafe": len(today), "unguarded_unsafe": len(raw),
               "local_unsafe": len(local)}
    answer = ("Preempted and migrated at every instruction (two tasks on two CPUs, every "
              f"schedule), {parts[0]}; {parts[1]}; {parts[2]}.")
    if not str(table["none+irq __this_cpu"].iloc[0]).startswith("n/a"):
        irq = bad("none+irq __this_cpu")
        numbers["irq_unguarded_unsafe"] = len(irq)
        answer += (f" Under PREEMPT_NONE an interrupt running this_cpu_add() between an "
                   f"unguarded op's instructions breaks it in {len(irq)} of {n} cases.")
    return Finding("Which this_cpu ops lose an update when preempted and migrated?", answer,
                   "assumption", numbers,
                   f"the local column rests on the {DEFAULT_LOCAL_SCHEME.describe()}; today's "
                   "columns explore mainline's sequences")


def scheme_table(cost: WorkloadCost) -> pd.DataFrame:
    """A priced workload per scheme variant in whole cycles (estimates): total cycles,
    cycles per op, and cycles and share saved against today's scheme."""
    t = cost.totals
    return pd.DataFrame({
        "scheme": t["scheme"], "atomics": t["atomics"],
        "cycles (estimate)": t["cycles"].round().astype("int64"),
        "cycles per op": t["cycles_per_op"].round().astype("int64"),
        "saved against today": t["saving_cycles"].round().astype("int64"),
        "saved %": t["saving_pct"].round().astype("int64"),
    })


def reviewer_finding(view: ReviewerView) -> Finding:
    """The reviewer's view in words: the op rate each target sys-time saving needs, and
    what share of sys time the workload's own rate would explain."""
    d = view.saving_cycles
    numbers: dict[str, float] = {"saving_cycles": d, "ghz": view.ghz}
    if d <= 0:
        answer = (f"At {view.ghz:g} GHz the local scheme saves nothing per op under these "
                  "assumptions: no op rate explains a sys-time saving.")
    else:
        needs = []
        for i, s in enumerate(view.targets):
            r = view.required_rate(s)
            numbers[f"rate_{round(100 * s)}"] = r
            unit = " this_cpu ops per sys-second per CPU" if i == 0 else ""
            needs.append(f"{_a(100 * s)}% sys-time cut needs ~{sig2(r / 1e6)} M{unit} (one "
                         f"every ~{sig2(view.ghz * 1e9 / r)} cycles)")
        answer = (f"Saving ~{d:.0f} cycles per op at {view.ghz:g} GHz, "
                  + ", ".join(needs) + ".")
        share = view.explained_share()
        if share is not None and view.op_rate is not None:
            numbers |= {"op_rate": view.op_rate, "explained_share": share}
            answer += (f" At this workload's own rate (~{sig2(view.op_rate / 1e6)} M per "
                       "sys-second per CPU, from its timestamps) it explains at most "
                       f"~{sig2(100 * share)}% of sys time.")
    return Finding("What share of sys time can the per-op saving explain?", answer,
                   "estimate", numbers, "; ".join(view.assumptions[:2]))


def reviewer_table(view: ReviewerView) -> pd.DataFrame:
    """The op rate each target sys-time saving needs, two significant figures (the
    saving per op is an estimate)."""
    rows = []
    for s in view.targets:
        r = view.required_rate(s)
        rows.append({"sys-time saving": f"{100 * s:.0f}%",
                     "this_cpu ops per sys-second per CPU": f"~{sig2(r / 1e6)} M"
                     if _saves(view) else "none suffices",
                     "one op every": f"~{sig2(view.ghz * 1e9 / r)} cycles (~{sig2(1e9 / r)} ns)"
                     if _saves(view) else ""})
    return pd.DataFrame(rows)


def _saves(view: ReviewerView) -> bool:
    return view.saving_cycles > 0
