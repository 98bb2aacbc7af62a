"""Claims about this_cpu ops: safety without the preemption bracket (exhaustive
interleavings), what each op costs before and after patch 11/11, and what op rate the
reported 13-18% sys-time saving would need."""

from __future__ import annotations

import functools
from typing import Any

import pandas as pd

from ..thiscpu import (
    DEFAULT_CORE,
    default_size,
    explore,
    op_pair,
    op_sequence,
    ops_table,
    reviewer_view,
    safety_table,
)
from .common import CLAIM_BY_ID, SCHEME, ClaimResult, Context, cycle_span

# Claims 9b and 10 under each preemption model: with and without a preempt count.
PREEMPT_LABELS = {"full": "PREEMPT_FULL", "none": "no preempt count (NONE/VOLUNTARY)"}


# --- claim 9: preemption safety and cost ---------------------------------------------------

@functools.lru_cache(maxsize=4)
def _safety_table(kernel: str) -> pd.DataFrame:
    """interleave.safety_table (a few seconds of exhaustive search), once per kernel."""
    return safety_table(kernel=kernel)


def claim_preempt_safety(ctx: Context) -> ClaimResult:
    """`interleave.safety_table`: exhaustive interleavings of an op pair on 2 CPUs, for
    every op, LSE and LL/SC, today and with the local scheme; plus a plain body."""
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
        verdict = "holds"
    elif hypothetical:
        verdict = "holds with caveat"
    else:
        verdict = "fails"
    if not plain_verdicts:
        verdict = "fails"  # the claim says a plain body is NOT safe
    return ClaimResult(claim, "all", verdict, text,
                       "interleave.safety_table; interleave.explore(op_pair(atomics='plain'))",
                       SCHEME,
                       {"cases": n_ops, "unsafe_local": unsafe_names,
                        "plain_verdicts": plain_verdicts})


def claim_op_cost(ctx: Context) -> ClaimResult:
    """`ops.ops_table` at 8 bytes (cmpxchg128 at 16), LSE, under PREEMPT_FULL and without a
    preempt count (Debian's PREEMPT_VOLUNTARY): cycles before and after."""
    claim = CLAIM_BY_ID["9b"]
    numbers: dict[str, Any] = {}
    parts = []
    for preempt, label in PREEMPT_LABELS.items():
        t = ops_table(preempt=preempt, kernel=ctx.kernel)
        t = t[(t["atomics"] == "lse") & (t["size"] == t["op"].map(default_size))]
        piv = t.pivot_table(index="op", columns="scheme", values="cycles", sort=False)
        saving = piv["today"] - piv["local"]
        numbers[preempt] = {op: {"today": round(float(row["today"]), 2),
                                 "local": round(float(row["local"]), 2)}
                            for op, row in piv.iterrows()}
        parts.append(f"{label}: today {cycle_span(piv['today'])} cycles, local "
                     f"{cycle_span(piv['local'])}, saving {cycle_span(saving)} per op")
    text = (f"LSE, {DEFAULT_CORE} costs, {len(numbers['full'])} ops: " + "; ".join(parts)
            + ". The 'after' sequence is the model's reading of the unpublished patch 11/11.")
    return ClaimResult(claim, "all", "assumption", text, "ops.ops_table(op_sequence, op_cost)",
                       SCHEME, numbers)


# --- claim 10: the 13-18% sys-time saving --------------------------------------------------

def claim_sys_saving(ctx: Context, *, preempt: str = "full",
                     ghz: float = 3.0) -> ClaimResult:
    """r = S * f / d ops per sys-second for a saving share S (replay.reviewer_view), and
    the share of today's sys time this_cpu ops must take for it, S * c_today / d: above
    100% no op rate explains S, and a saving d <= 0 explains nothing."""
    claim = CLAIM_BY_ID["10"]
    t = ops_table(sizes=(8,), kernel=ctx.kernel, preempt=preempt)
    t = t[t["atomics"] == "lse"]
    today = float(t[t["scheme"] == "today"]["cycles"].mean())
    local = float(t[t["scheme"] == "local"]["cycles"].mean())
    saving = today - local
    view = reviewer_view(saving_cycles=saving, ghz=ghz)
    lo, hi = view.targets[0], view.targets[-1]
    label = PREEMPT_LABELS.get(preempt, preempt)
    text = (f"Mean over the 8-byte LSE ops, {label}: {today:.1f} -> {local:.1f} cycles, "
            f"{saving:.1f} saved per op.")
    numbers: dict[str, Any] = {"today_cycles": today, "local_cycles": local,
                               "saving_cycles": saving}
    if saving <= 0:
        verdict = "cannot hold"
        text += (" The local scheme saves nothing per op here, so no this_cpu op rate "
                 f"explains {lo:.0%}-{hi:.0%} less sys time.")
        if ctx.preempt_note:
            text += f" {ctx.preempt_note}"
    else:
        req = view.table()
        shares = [s * today / saving for s in (lo, hi)]
        verdict = "cannot hold" if shares[0] > 1 else "assumption"
        text += (f" At {ghz:g} GHz, {lo:.0%}-{hi:.0%} less sys time needs "
                 f"{req['ops_per_sys_second'].iloc[0] / 1e6:.0f}-"
                 f"{req['ops_per_sys_second'].iloc[-1] / 1e6:.0f} M this_cpu ops per "
                 f"sys-second per CPU (one every {req['ns_between_ops'].iloc[0]:.1f}-"
                 f"{req['ns_between_ops'].iloc[-1]:.1f} ns): today's this_cpu ops would have to "
                 f"take {shares[0]:.0%}-{shares[1]:.0%} of sys time. The workloads are not "
                 "stated; an upper bound (every saved cycle saved time).")
        numbers.update(ops_per_sys_second=[float(x) for x in req["ops_per_sys_second"]],
                       this_cpu_share_of_sys_needed=shares)
    return ClaimResult(claim, f"4K, {label}", verdict, text,
                       "ops.ops_table; replay.reviewer_view", f"{SCHEME}; clock {ghz:g} GHz",
                       numbers)


def claim_sys_saving_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 10 under PREEMPT_FULL and without a preempt count."""
    return [claim_sys_saving(ctx, preempt=p) for p in PREEMPT_LABELS]
