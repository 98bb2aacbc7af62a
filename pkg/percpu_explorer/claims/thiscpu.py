"""Claims about this_cpu ops: safety without the preemption bracket (exhaustive
interleavings), whether the bracket is work at all, what each op costs before and after
patch 11/11, and what op rate the reported 13-18% sys-time saving would need.

Two worlds exist today and each row says which it is about:
- the series' base (v7.x): from v7.0 (commit 7dadeaa6e851) arm64 builds only
  PREEMPT_FULL, PREEMPT_LAZY or PREEMPT_RT, all with a preempt count: the bracket is
  real work (the cost model's "full" bracket);
- distribution kernels: Debian's 6.12 is PREEMPT_VOLUNTARY without a preempt count
  (seen in the captures' config facts): the bracket is barrier(), so the patch can only
  save the offset computation.
Costs are the cost model's (`thiscpu.ops`), whose cycle numbers for system-register
reads, LSE atomics and the reschedule path are estimates: the cost rows are graded
"estimate" and give the cost at which their verdict flips.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ..captures import load_bundle, preemption_model
from ..kernel import has_preempt_count, preempt_choices, preempt_from_kconfig
from ..thiscpu import (
    DEFAULT_CORE,
    SchemeVariant,
    core_profile,
    default_size,
    explore,
    op_pair,
    op_sequence,
    ops_table,
    reviewer_view,
    safety_table,
)
from .common import (
    CLAIM_BY_ID,
    SCHEME,
    ClaimResult,
    Context,
    conditional,
    cycle_span,
    cycles,
)

# Today's distribution kernel when no capture says otherwise: Debian's arm64 6.12.
DISTRO_KERNEL = "6.12"
DISTRO_PREEMPT = "voluntary"
LSE_VARIANTS = (SchemeVariant("today", "lse"), SchemeVariant("local", "lse"))
SYS_SAVING = (0.13, 0.18)  # the reported share of sys time saved


@dataclass(frozen=True)
class World:
    """A kernel the cost rows are about: its version and preemption model."""

    label: str
    kernel: str
    preempt: str


def worlds(ctx: Context) -> tuple[World, World]:
    """The series' base (ctx.kernel, PREEMPT_FULL) and today's distribution kernel (the
    first capture's version and preemption model, else Debian 6.12, PREEMPT_VOLUNTARY)."""
    kernel, preempt = DISTRO_KERNEL, DISTRO_PREEMPT
    for path in ctx.bundles:
        meta = load_bundle(path).meta
        model = preempt_from_kconfig(meta.get("config") or {})
        if model is not None and meta.get("kernel_version"):
            kernel, preempt = meta["kernel_version"], model
            break
    count = "preempt count" if has_preempt_count(preempt) else "no preempt count"
    return (World(f"{ctx.kernel}, PREEMPT_FULL (preempt count)", ctx.kernel, "full"),
            World(f"{kernel}, PREEMPT_{preempt.upper()} ({count})", kernel, preempt))


def capture_preempt_facts(bundles: tuple[Path, ...]) -> list[tuple[Path, str, dict[str, Any]]]:
    """(bundle, what its config says about preemption, the config facts), one per distinct
    kernel series (6.12 for 6.12.117 and 6.12.118: Debian's config of the series) and
    preemption model."""
    seen: dict[tuple[str, str], tuple[Path, str, dict[str, Any]]] = {}
    for path in bundles:
        meta = load_bundle(path).meta
        facts = meta.get("config") or {}
        model = preemption_model(facts)
        series = ".".join(str(meta.get("kernel_version")).split(".")[:2])
        if model:
            seen.setdefault((series, model), (path, model, facts))
    return list(seen.values())


# --- claim 9a: preemption safety -------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _safety_table(kernel: str) -> pd.DataFrame:
    """interleave.safety_table (a few seconds of exhaustive search), once per kernel."""
    return safety_table(kernel=kernel)


def claim_preempt_safety(ctx: Context) -> ClaimResult:
    """`interleave.safety_table`: exhaustive interleavings of an op pair on 2 CPUs, for
    every op, LSE and LL/SC, today and with the assumed local scheme; plus a plain body."""
    claim = CLAIM_BY_ID["9a"]
    table = _safety_table(ctx.kernel).copy()
    col = "local this_cpu"
    unsafe = table[~table[col].str.startswith("safe")]
    unsafe_names = sorted({f"{r.op}/{r.size}" for r in unsafe.itertuples()})
    hypothetical = all(
        any(n.startswith("hypothetical") for n in op_sequence(r.op, r.size, scheme="local",
                                                             kernel=ctx.kernel).notes)
        for r in unsafe.itertuples())
    plain = explore(op_pair("add", 8, scheme="local", atomics="plain", operand=5,
                            kernel=ctx.kernel))
    plain_verdicts = sorted(v for v in plain.verdicts if v != "ok")
    today_unsafe = table[~table["today this_cpu"].str.startswith("safe")]
    retries = int((table[col] == "safe (retries)").sum())
    n_ops = len(table)
    text = (f"{n_ops - len(unsafe)}/{n_ops} op x atomics cases are safe with the local scheme "
            f"and no bracket ({retries} LL/SC cases by retrying)"
            + (f"; unsafe: {', '.join(unsafe_names)} ({', '.join(sorted(set(unsafe[col])))})"
               + (", which the kernel does not have" if hypothetical else "")
               if len(unsafe) else "")
            + f". A plain load-add-store without the bracket: "
            f"{', '.join(plain_verdicts) or 'safe'}. Today's bracketed ops: "
            f"{n_ops - len(today_unsafe)}/{n_ops} safe.")
    if unsafe.empty:
        outcome = "holds"
    elif hypothetical:
        outcome = "holds with caveat"
    else:
        outcome = "fails"
    if not plain_verdicts:
        outcome = "fails"  # the claim says a plain body is NOT safe
    condition = ("patch 11/11 keeps each access one LSE instruction or an LL/SC loop on an "
                 "address that means the running CPU's copy on every CPU")
    return ClaimResult(claim, "all", conditional(outcome, condition), text,
                       "interleave.safety_table; interleave.explore(op_pair(atomics='plain'))",
                       "assumption", SCHEME,
                       {"cases": n_ops, "unsafe_local": unsafe_names,
                        "plain_verdicts": plain_verdicts})


# --- costs and their sensitivity ----------------------------------------------------------

def lse_costs(world: World, core: Any = DEFAULT_CORE) -> pd.DataFrame:
    """Per op (LSE, default size): cycles today and local, and today's bracket and
    offset cycles and the local offset cycles (`ops.ops_table`)."""
    t = ops_table(preempt=world.preempt, kernel=world.kernel, core=core, variants=LSE_VARIANTS)
    t = t[t["size"] == t["op"].map(default_size)]
    piv = t.pivot_table(index="op", columns="scheme",
                        values=["cycles", "bracket_cycles", "offset_cycles"], sort=False)
    return pd.DataFrame({"today": piv[("cycles", "today")], "local": piv[("cycles", "local")],
                         "bracket": piv[("bracket_cycles", "today")],
                         "offset_today": piv[("offset_cycles", "today")],
                         "offset_local": piv[("offset_cycles", "local")]})


@dataclass(frozen=True)
class Sensitivity:
    """How one world's saving moves with the estimated TPIDR read (mrs tpidr_el1).

    mrs: its estimated cycles; d_saving, d_today: cycles of saving and of today's op per
    extra cycle of the read (from the model at mrs and mrs + 1)."""

    mrs: float
    d_saving: float
    d_today: float


def tpidr_sensitivity(world: World) -> Sensitivity:
    """The cost model at the estimated mrs_tpidr and one cycle more."""
    base = core_profile(DEFAULT_CORE)
    mrs = float(base.costs["mrs_tpidr"])
    now = lse_costs(world)
    more = lse_costs(world, base.with_costs(mrs_tpidr=mrs + 1))
    d_saving = float(((more["today"] - more["local"]) - (now["today"] - now["local"])).mean())
    return Sensitivity(mrs, d_saving, float((more["today"] - now["today"]).mean()))


def estimated_classes(world: World) -> str:
    """The cost classes of the bracket and offset (where today and local differ) whose
    numbers are estimates, with their cycles."""
    profile = core_profile(DEFAULT_CORE)
    names = set()
    for scheme in ("today", "local"):
        seq = op_sequence("add", 8, scheme=scheme, preempt=world.preempt, kernel=world.kernel)
        names |= {i.cls for i in seq.insns if i.part in ("bracket", "offset")}
        if seq.resched is not None:
            names.add("resched")
    parts = [f"{c} {profile.costs[c]:g}" for c in sorted(names - {"resched"})
             if profile.sources.get(c, "").startswith("estimate")]
    if "resched" in names:
        parts.append(f"reschedule {profile.resched_cost:g} cycles x probability "
                     f"{profile.resched_probability:g}")
    return f"{DEFAULT_CORE} estimates: " + ", ".join(parts)


# --- claim 9b: op cost ---------------------------------------------------------------------

def claim_op_cost(ctx: Context, world: World) -> ClaimResult:
    """`ops.ops_table` at the default sizes, LSE, in one world: cycles before and after,
    and the cost of the TPIDR read and of the local address formation at which the
    saving changes sign."""
    claim = CLAIM_BY_ID["9b"]
    costs = lse_costs(world)
    saving = costs["today"] - costs["local"]
    sens = tpidr_sensitivity(world)
    lo, hi = float(saving.min()), float(saving.max())
    outcome = "holds" if lo > 0 else "fails" if hi <= 0 else "holds with caveat"
    flip = lo if outcome != "fails" else hi
    mrs_flip = sens.mrs - flip / sens.d_saving if sens.d_saving else float("nan")
    formation = float(costs["offset_local"].mean())
    today_part = float((costs["bracket"] + costs["offset_today"]).mean())
    bracketed = float(costs["bracket"].mean()) > 0
    text = (f"LSE, {DEFAULT_CORE} costs (estimates), {len(costs)} ops, {world.label}: today "
            f"{cycle_span(costs['today'])} cycles, local {cycle_span(costs['local'])}, saving "
            f"{cycle_span(saving)} per op. The difference is today's "
            + ("preemption bracket and " if bracketed else "")
            + f"TPIDR read (mrs + add), {cycles(today_part)} cycles, against the local "
            f"address formation (adrp + ldr of __per_cpu_local_off + add), "
            f"{cycles(formation)}.")
    if not bracketed:
        text += " Without a preempt count the bracket is barrier(): only the offset can be saved."
    if outcome == "fails":
        condition = (f"mrs tpidr_el1 costs under {cycles(mrs_flip)} cycles (estimated "
                     f"{sens.mrs:g}): only then is the TPIDR read cheaper than the load of "
                     "__per_cpu_local_off")
    elif mrs_flip < 0:
        condition = (f"the local address formation (estimated {cycles(formation)} cycles) "
                     f"costs less than today's bracket and TPIDR read (estimated "
                     f"{cycles(today_part)}); no cost of the TPIDR read alone flips it")
    else:
        condition = (f"mrs tpidr_el1 costs over {cycles(mrs_flip)} cycles (estimated "
                     f"{sens.mrs:g})")
    mrs_note = (f"the verdict flips at mrs_tpidr {cycles(mrs_flip)} cycles" if mrs_flip >= 0
                else "no mrs_tpidr cost flips the verdict (the bracket alone outweighs the "
                     "local formation)")
    depends = (f"{estimated_classes(world)}; {mrs_note}; it flips at a local address "
               f"formation of {cycles(today_part)} cycles; {SCHEME}")
    numbers = {"kernel": world.kernel, "preempt": world.preempt,
               "saving_cycles": {op: float(v) for op, v in saving.items()},
               "today_cycles": {op: float(v) for op, v in costs["today"].items()},
               "local_cycles": {op: float(v) for op, v in costs["local"].items()},
               "mrs_tpidr_estimate": sens.mrs, "mrs_tpidr_break_even": mrs_flip,
               "local_formation_cycles": formation,
               "local_formation_break_even": today_part}
    return ClaimResult(claim, world.label, conditional(outcome, condition), text,
                       "ops.ops_table(op_sequence, op_cost); ops.CoreProfile.with_costs",
                       "estimate", depends, numbers)


def claim_op_cost_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 9b at the series' base and in today's distribution kernel."""
    return [claim_op_cost(ctx, w) for w in worlds(ctx)]


# --- claim 9c: is the bracket work at all ------------------------------------------------

def bracket_instructions(kernel: str, preempt: str) -> list[str]:
    """The bracket around this_cpu_add_8 (`ops.op_sequence`): preempt_disable/enable_notrace()."""
    return op_sequence("add", 8, preempt=preempt, kernel=kernel).texts("bracket")


def claim_bracket_kconfig(ctx: Context) -> ClaimResult:
    """Which preemption models arm64 builds at ctx.kernel (`kernel.preempt_choices`, from
    kernel/Kconfig.preempt) and whether each has a preempt count: kernel arithmetic."""
    claim = CLAIM_BY_ID["9c"]
    models = preempt_choices(ctx.kernel)
    without = [m for m in models if not has_preempt_count(m)]
    with_count = [m for m in models if has_preempt_count(m)]
    insns = bracket_instructions(ctx.kernel, with_count[0]) if with_count else []
    text = (f"arm64 {ctx.kernel} builds the preemption models {', '.join(models)}"
            + (" (from v7.0, commit 7dadeaa6e851, only those: PREEMPT_NONE needs "
               "ARCH_NO_PREEMPT and PREEMPT_VOLUNTARY !ARCH_HAS_PREEMPT_LAZY)"
               if not without else "")
            + f". With a preempt count ({', '.join(with_count)}) the bracket around each "
            f"this_cpu op is {len(insns)} instructions (asm/preempt.h: the count's increment, "
            f"decrement and reschedule check): work the local scheme removes.")
    if without:
        text += (f" {', '.join(without)} build without a preempt count: there the bracket is "
                 "barrier() only (include/linux/preempt.h).")
    return ClaimResult(claim, f"arm64 {ctx.kernel} Kconfig",
                       "holds with caveat" if without else "holds", text,
                       "kernel.preempt_choices (kernel/Kconfig.preempt); ops.op_sequence "
                       "(asm/preempt.h)", "kernel arithmetic",
                       numbers={"models": list(models), "without_count": without,
                                "bracket_instructions": len(insns)})


def claim_bracket_capture(path: Path, model: str, facts: dict[str, Any]) -> ClaimResult:
    """What a captured kernel's configuration says about the bracket: real kernel."""
    claim = CLAIM_BY_ID["9c"]
    meta = load_bundle(path).meta
    counted = facts.get("CONFIG_PREEMPT_COUNT") == "y"
    kernel = str(meta.get("kernel_version"))
    name = preempt_from_kconfig(facts)
    insns = bracket_instructions(kernel, name) if name and counted else []
    text = (f"Real kernel {meta.get('kernel_release', kernel)} (capture {path.name}): "
            f"{model}, CONFIG_PREEMPT_COUNT {'=y' if counted else 'unset'}. "
            + (f"The bracket is {len(insns)} instructions." if counted else
               "preempt_disable/enable_notrace() are barrier() only: no instructions to "
               "remove, so patch 11/11 can save only the offset computation (9b)."))
    return ClaimResult(claim, f"{kernel} (capture {path.name})",
                       "holds" if counted else "fails", text,
                       f"captures: data/captures/{path.name}/meta.json config facts",
                       "real kernel", numbers={"preemption": model, "preempt_count": counted})


def claim_bracket_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 9c: the Kconfig rule at ctx.kernel and each captured kernel's configuration."""
    return [claim_bracket_kconfig(ctx)] + [claim_bracket_capture(path, model, facts)
                                           for path, model, facts
                                           in capture_preempt_facts(ctx.bundles)]


# --- claim 10: the 13-18% sys-time saving --------------------------------------------------

def claim_sys_saving(ctx: Context, world: World, *, ghz: float = 3.0) -> ClaimResult:
    """r = S * f / d ops per sys-second for a saving share S (cost.reviewer_view), and
    the share of today's sys time this_cpu ops must take for it, S * c_today / d: above
    100% no op rate explains S, and a saving d <= 0 explains nothing. The TPIDR read's
    cost at which the smaller share S needs exactly 100% is where the verdict flips."""
    claim = CLAIM_BY_ID["10"]
    t = ops_table(sizes=(8,), kernel=world.kernel, preempt=world.preempt,
                  variants=LSE_VARIANTS)
    today = float(t[t["scheme"] == "today"]["cycles"].mean())
    local = float(t[t["scheme"] == "local"]["cycles"].mean())
    saving = today - local
    lo, hi = SYS_SAVING
    sens = tpidr_sensitivity(world)
    # lo * (today + d_today * x) = saving + d_saving * x: the extra TPIDR cycles x at which
    # this_cpu ops would have to take all of sys time for the smaller share.
    denom = sens.d_saving - lo * sens.d_today
    mrs_flip = sens.mrs + (lo * today - saving) / denom if denom else float("nan")
    text = (f"Mean over the 8-byte LSE ops, {world.label}: {cycles(today)} -> "
            f"{cycles(local)} cycles, {cycles(saving)} saved per op (estimates).")
    numbers: dict[str, Any] = {"kernel": world.kernel, "preempt": world.preempt,
                               "today_cycles": today, "local_cycles": local,
                               "saving_cycles": saving, "mrs_tpidr_estimate": sens.mrs,
                               "mrs_tpidr_break_even": mrs_flip}
    if saving <= 0:
        outcome = "cannot hold"
        text += (" The local scheme saves nothing per op here, so no this_cpu op rate "
                 f"explains {lo:.0%}-{hi:.0%} less sys time.")
        condition = (f"mrs tpidr_el1 costs under {cycles(mrs_flip)} cycles (estimated "
                     f"{sens.mrs:g}): up to there even this_cpu ops taking all of sys time "
                     f"could not save {lo:.0%} of it")
    else:
        view = reviewer_view(saving_cycles=saving, ghz=ghz, targets=SYS_SAVING)
        req = view.table()
        shares = [s * today / saving for s in (lo, hi)]
        outcome = "cannot hold" if shares[0] > 1 else "holds"
        text += (f" At {ghz:g} GHz, {lo:.0%}-{hi:.0%} less sys time needs "
                 f"{req['ops_per_sys_second'].iloc[0] / 1e6:.0f}-"
                 f"{req['ops_per_sys_second'].iloc[-1] / 1e6:.0f} M this_cpu ops per "
                 f"sys-second per CPU: today's this_cpu ops would have to take "
                 f"{shares[0]:.0%}-{shares[1]:.0%} of sys time. The workloads are not "
                 "stated; an upper bound (every saved cycle saved time).")
        if outcome == "holds":
            condition = (f"today's this_cpu ops take at least {shares[0]:.0%}-{shares[1]:.0%} "
                         f"of sys time; it cannot hold if the saving per op fell below "
                         f"{lo:.0%} of today's op cost (estimated {saving / today:.0%})")
        else:
            condition = (f"the saving per op stays under {lo:.0%} of today's op cost "
                         f"(estimated {saving / today:.0%})")
        numbers.update(ops_per_sys_second=[float(x) for x in req["ops_per_sys_second"]],
                       this_cpu_share_of_sys_needed=shares)
    depends = (f"{estimated_classes(world)}; clock {ghz:g} GHz; {SCHEME}")
    return ClaimResult(claim, world.label, conditional(outcome, condition), text,
                       "ops.ops_table; cost.reviewer_view", "estimate", depends, numbers)


def claim_sys_saving_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 10 at the series' base and in today's distribution kernel."""
    return [claim_sys_saving(ctx, w) for w in worlds(ctx)]
