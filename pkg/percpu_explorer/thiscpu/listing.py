"""this_cpu_*() sequences for reading: what each instruction does, and today's sequence
next to the local scheme's, section by section (preempt_disable_notrace(), the address
of this CPU's copy, the access, preempt_enable_notrace()).

The words follow the kernel's code the sequences are built from (`ops.op_sequence`):
arch/arm64/include/asm/percpu.h, asm/preempt.h, asm/atomic_lse.h and asm/atomic_ll_sc.h.
"""

from __future__ import annotations

import pandas as pd

from .ops import (
    DEFAULT_CORE,
    CoreProfile,
    Insn,
    OpSequence,
    _cost_key,
    core_profile,
    format_cycles,
    insn_cost,
    is_estimate_source,
    op_cost,
)

__all__ = ["SECTIONS", "explain_insn", "explain_sequence", "sequence_table"]

# The sections of a sequence, in order, and the column title each gets.
SECTIONS: dict[str, str] = {
    "disable": "preempt_disable_notrace()",
    "offset": "address of this CPU's copy",
    "op": "the access",
    "enable": "preempt_enable_notrace()",
    "after": "after the access",
}

_LSE = {"add": "atomic add to", "clr": "atomic bit clear (and) on",
        "set": "atomic bit set (or) on"}


def _mnemonic(insn: Insn) -> str:
    return insn.text.split()[0]


def _comment(insn: Insn) -> str:
    return insn.text.split("//", 1)[1].strip() if "//" in insn.text else ""


def _sized(m: str, base: str) -> bool:
    """`m` is `base` or its byte/halfword form (ldxrb, ldxrh, ldrb, ...)."""
    return m in (base, base + "b", base + "h")


def _explain_op(insn: Insn, today: bool) -> str:
    """What an instruction of the access itself does."""
    m, eff = _mnemonic(insn), insn.effect
    copy = "this CPU's copy" if today else "the local address"
    if eff == "atomic":
        if m.startswith("swp"):
            return f"atomic swap with {copy} (LSE)"
        for key, what in _LSE.items():
            if m.startswith("ld" + key):
                return f"{what} {copy} (LSE)"
            if m.startswith("st" + key):
                return f"{what} {copy} (LSE, no result)"
    if eff == "cas":
        pair = " (16 bytes)" if m == "casp" else ""
        return f"compare-and-swap of {copy}{pair} (LSE)"
    if eff == "ldx":
        return f"load-exclusive of {copy}" + (" (16 bytes)" if m == "ldxp" else "")
    if eff == "stx":
        return "store-exclusive: fails if the line was touched since"
    if eff == "retry":
        return "store failed: try again"
    if eff == "cmp_exit":
        return "not the expected value: leave without storing"
    if eff == "load":
        return f"read {copy}" + (" (both halves)" if m == "ldp" else "")
    if eff == "load_lo":
        return f"read the low 8 bytes of {copy}"
    if eff == "load_hi":
        return f"read the high 8 bytes of {copy} (a second, separate load)"
    if eff == "store":
        return f"write {copy}" + (" (both halves)" if m == "stp" else "")
    if eff == "modify":
        return "compute the new value in a register"
    comment = _comment(insn)
    if m == "nop":
        if "LSE patched in" in comment:
            return "LSE patched in: no jump to the LL/SC version"
        return "padding: the LL/SC version is longer"
    if m == "b":
        if "not patched" in comment:
            return "no LSE: jump to the LL/SC version"
        return "back to the code after the operation"
    if m == "prfm":
        return "prefetch the line for writing"
    if m in ("eor", "cmp"):
        return "compare with the expected (old) value"
    if m == "ccmp":
        return "compare the high half too"
    if m == "mov" and "#1" in insn.text.split(",", 1)[1]:
        return "the operand 1 (this_cpu_inc)"
    if m == "mov" and "casp" in comment:
        return "old value into the register casp overwrites"
    if m == "mov" and "cas overwrites" in comment:
        return "copy of the old value (cas overwrites it)"
    if m == "mov":
        return "the operand -1 (this_cpu_dec)"
    if m == "neg":
        return "negate: this_cpu_sub adds -val"
    if m == "mvn":
        return "invert: this_cpu_and clears ~val"
    if m == "and":
        return "cut the old value to the variable's size"
    if m == "add":
        return "old + val: the value returned"
    raise ValueError(f"no explanation for {insn.text!r} (part op, effect {eff})")


def explain_sequence(seq: OpSequence) -> list[tuple[str, str]]:
    """(section, what it does) for each instruction of `seq`, in order; sections are keys
    of `SECTIONS` (the bracket is split into its disable and enable halves)."""
    out: list[tuple[str, str]] = []
    raised = False  # past the store that raises the preempt count
    reloaded = False
    local_offset = any(i.effect == "local_off" for i in seq.insns)
    for insn in seq.insns:
        m = _mnemonic(insn)
        if insn.part == "bracket":
            section = "enable" if raised else "disable"
            if m == "mrs":
                what = "current task's thread_info (sp_el0)"
            elif insn.effect == "preempt_inc":
                what = "store it: preemption off from here"
                raised = True
            elif insn.effect == "preempt_dec":
                what = "store it: preemption possible again"
            elif m == "ldr" and section == "disable":
                what = "load the preempt count"
            elif m == "ldr" and not reloaded:
                what = "load count and need-resched (64 bits)"
            elif m == "ldr":
                what = "reload: an interrupt may have changed it"
            elif m == "add":
                what = "count + 1"
            elif m == "sub":
                what = "count - 1"
            elif m == "cbz" and not reloaded:
                what = "all 0 (count 0, resched due): reschedule"
                reloaded = True
            elif m == "cbz":
                what = "the same test again"
            else:
                raise ValueError(f"no explanation for {insn.text!r} (preemption bracket)")
        elif insn.part == "offset":
            section = "offset"
            if insn.effect == "tpidr":
                reg = insn.text.split(",")[1].strip()
                what = f"this CPU's percpu offset ({reg})"
            elif m == "adrp":
                what = "page of __per_cpu_local_off (patch 07/11)"
            elif m == "ldr":
                what = "load the local offset: one value for all CPUs"
            elif m == "mov":
                what = "the local offset as a link-time constant"
            elif local_offset:
                what = "pointer + it: the local address"
            else:
                what = "pointer + offset: this CPU's copy"
        elif insn.part == "after":
            section = "after"
            what = ("compare what was found with old" if m == "cmp"
                    else "true if they were equal")
        else:
            section = "op"
            what = _explain_op(insn, not local_offset)
        out.append((section, what))
    return out


def explain_insn(seq: OpSequence, index: int) -> str:
    """What instruction `index` of `seq` does, in a few words."""
    return explain_sequence(seq)[index][1]


def _cycles(insn: Insn, profile: CoreProfile, lse_execution: str) -> str:
    cycles = insn_cost(insn, profile, lse_execution)
    estimate = is_estimate_source(profile.sources.get(_cost_key(insn, lse_execution), ""))
    return f"{cycles:g}" + (" (est.)" if estimate else "")


def sequence_table(today: OpSequence, local: OpSequence | None = None, *,
                   core: str | CoreProfile = DEFAULT_CORE,
                   lse_execution: str = "auto") -> pd.DataFrame:
    """Today's sequence and (optionally) the local scheme's side by side, one row per
    instruction, aligned by section: the section, then for each scheme the instruction,
    what it does and its cycles on `core` ("(est.)" where the profile's number is an
    estimate). A section only one side has (the bracket the local scheme drops) reads
    "none" on the other. Then the rare preempt_schedule_notrace() path (its probability
    x cost) and a total row: instructions, and cycles as `ops.op_cost` adds them."""
    profile = core_profile(core)
    sides = [("today", today)] + ([("local", local)] if local is not None else [])
    by_section: list[dict[str, list[tuple[Insn, str]]]] = []
    for _, seq in sides:
        sections: dict[str, list[tuple[Insn, str]]] = {k: [] for k in SECTIONS}
        for insn, (section, what) in zip(seq.insns, explain_sequence(seq), strict=True):
            sections[section].append((insn, what))
        by_section.append(sections)
    rows = []
    for key, title in SECTIONS.items():
        depth = max(len(s[key]) for s in by_section)
        for i in range(depth):
            row = {"section": title if i == 0 else ""}
            for (name, _), sections in zip(sides, by_section, strict=True):
                items = sections[key]
                insn, what = items[i] if i < len(items) else (None, "")
                if insn is None and i == 0:
                    what = "none"
                row[name] = insn.text.split("//")[0].strip() if insn else ""
                row[f"{name}: what it does"] = what
                row[f"{name}: cycles"] = _cycles(insn, profile, lse_execution) if insn else ""
            rows.append(row)
    costs = [op_cost(seq, profile, lse_execution=lse_execution) for _, seq in sides]
    if any(c.resched for c in costs):
        row = {"section": "rare path"}
        for (name, seq), c in zip(sides, costs, strict=True):
            row[name] = seq.resched.text if seq.resched is not None else ""
            row[f"{name}: what it does"] = (
                f"a reschedule is due: p {profile.resched_probability:g} x "
                f"{profile.resched_cost + profile.costs['call']:g} cycles"
                if c.resched else "none")
            row[f"{name}: cycles"] = (f"{c.resched:.2g} (est.)" if c.resched else "")
        rows.append(row)
    row = {"section": "total"}
    for (name, seq), c in zip(sides, costs, strict=True):
        row[name] = f"{len(seq.insns)} instructions"
        row[f"{name}: what it does"] = ""
        row[f"{name}: cycles"] = format_cycles(c.cycles, c.is_estimate)
    rows.append(row)
    return pd.DataFrame(rows)
