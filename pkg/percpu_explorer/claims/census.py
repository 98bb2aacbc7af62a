"""Claim 10 (13-18% less sys time) on real counts: a census of every this_cpu site of
Debian's 6.12 kernel under real workloads (`captures.census`), priced under each scheme
and preemption model (`thiscpu.census_savings`).

What each number stands on:
- measured: the op counts and instruction totals (exact: the census equals the
  kernel's own pgfault and pgreuse counters in every workload), and the share of
  kernel instructions spent from each offset read to its access;
- assumption: what the local scheme saves in instructions (the modelled sequences,
  `ops.DEFAULT_LOCAL_SCHEME` or its constant-offset variant, the most favourable), and,
  for v7.1, that its code runs as often as the counted 6.12 code;
- estimate: the cycles per op a 13-18% saving of kernel time would need (kernel cycles
  taken as kernel instructions x `cpi`), against the model's estimated saving per op.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..captures import (
    DEFAULT_CENSUS,
    CensusBundle,
    census_check,
    census_counts,
    load_census,
    phase_summary,
    shipped_census,
    top_functions,
)
from ..findings import Finding
from ..thiscpu import (
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    WORLDS,
    LocalScheme,
    census_savings,
    core_profile,
)
from .common import CLAIM_BY_ID, SCHEME, ClaimResult, Context, conditional

TARGETS = (0.13, 0.18)
CENSUS_QUESTION = ("How much kernel work do this_cpu ops do in real workloads, and what "
                   "could the local scheme save?")
MOST_FAVOURABLE = LocalScheme(offset="constant")


@dataclass(frozen=True)
class CensusReview:
    """A census priced: `summary` (phase_summary of the workload phases), `savings`
    (census_savings per phase and world, for the assumed local scheme and its
    constant-offset variant: column `local`), `top` (top functions), `checks`
    (census_check) and the cycles per kernel instruction assumed (`cpi`)."""

    bundle: CensusBundle
    summary: pd.DataFrame
    savings: pd.DataFrame
    top: pd.DataFrame
    checks: pd.DataFrame
    cpi: float
    core: str

    @property
    def workloads(self) -> list[str]:
        return list(self.summary["phase"])

    def answer_table(self) -> pd.DataFrame:
        """One row per workload: measured share of kernel instructions in this_cpu
        sequences, then per world the most the local scheme saves (share of kernel
        instructions), the model's saving per op and the saving per op 13% and 18% of
        kernel time would need."""
        out = self.summary[["phase", "kernel_insns", "offset_reads", "this_cpu_share"]].copy()
        best = self.savings[self.savings["local"] == "constant"]
        for world in dict.fromkeys(best["world"]):
            part = best[best["world"] == world].set_index("phase")
            tag = world.split()[-1].lower()
            out[f"saved_share_{tag}"] = out["phase"].map(part["insns_saved_share"])
            out[f"saving_per_op_{tag}"] = out["phase"].map(part["cycles_saved_per_op"])
        needed = best.drop_duplicates("phase").set_index("phase")
        for s in TARGETS:
            column = f"needed_cycles_per_op_{round(100 * s)}"
            out[column] = out["phase"].map(needed[column])
        return out.reset_index(drop=True)

    def shown_table(self) -> pd.DataFrame:
        """`answer_table` for reading: shares in percent, estimated cycles in whole
        cycles marked "~", column names that say what each rests on."""
        t = self.answer_table()
        out = pd.DataFrame({"workload": t["phase"], "kernel instructions": t["kernel_insns"],
                            "offset reads": t["offset_reads"],
                            "this_cpu share (measured)": t["this_cpu_share"].map(_pct)})
        for tag, label in (("voluntary", "6.12 VOLUNTARY"), ("full", "7.1 FULL/LAZY")):
            out[f"most saved, {label} (computed)"] = t[f"saved_share_{tag}"].map(_pct)
        out["model saving per op, 7.1 (estimate)"] = t["saving_per_op_full"].map(_cycles)
        for s in TARGETS:
            out[f"needed per op for {round(100 * s)}% (estimate)"] = \
                t[f"needed_cycles_per_op_{round(100 * s)}"].map(_cycles)
        return out

    def shown_top(self) -> pd.DataFrame:
        """`top` for reading: function, site executions, their share in percent, the
        sites' ops and what the function does."""
        t = self.top
        return pd.DataFrame({"function": t["function"], "site executions": t["count"],
                             "share": t["share"].map(_pct), "sites": t["sites"],
                             "ops": t["ops"], "what it does": t["role"]})

    def finding(self) -> Finding:
        """The answer in two sentences with the ranges over the workloads."""
        t = self.answer_table()
        meta = self.bundle.meta
        share = t["this_cpu_share"]
        full = t["saved_share_full"]
        vol = t["saved_share_voluntary"]
        need = t["needed_cycles_per_op_13"]
        need18 = t["needed_cycles_per_op_18"]
        model = t["saving_per_op_full"]
        exact = bool(self.checks["equal"].all())
        answer = (
            f"Counted in Debian's {meta['kernel_release']} kernel ({meta['cpu']} CPU under "
            f"QEMU, {len(t)} workloads), this_cpu sequences are {_pct(share.min())} to "
            f"{_pct(share.max())} of kernel instructions"
            + (" (the counts equal the kernel's own pgfault and pgreuse counters exactly)"
               if exact else "")
            + f". The local scheme removes at most {_pct(full.min())} to {_pct(full.max())} of "
            f"kernel instructions on v7.1 PREEMPT_FULL or LAZY and "
            + ("none" if vol.max() <= 0 else f"at most {_pct(vol.max())}")
            + f" on the counted PREEMPT_VOLUNTARY kernel; 13% less kernel time would need "
            f"~{need.min():.0f} to {need.max():.0f} cycles saved per op (18%: ~{need18.min():.0f} "
            f"to {need18.max():.0f}), against the model's ~{model.min():.0f} to "
            f"{model.max():.0f} (estimates at {self.cpi:g} cycle per kernel instruction).")
        numbers = {"workloads": len(t), "share_min": float(share.min()),
                   "share_max": float(share.max()), "saved_full_min": float(full.min()),
                   "saved_full_max": float(full.max()), "saved_voluntary_max": float(vol.max()),
                   "needed13_min": float(need.min()), "needed13_max": float(need.max()),
                   "needed18_min": float(need18.min()), "needed18_max": float(need18.max()),
                   "model_saving_min": float(model.min()),
                   "model_saving_max": float(model.max()), "exact": exact}
        return Finding(CENSUS_QUESTION, answer, "measured", numbers=numbers,
                       detail="the counts and shares; the savings rest on the assumed local "
                              "scheme (its constant-offset variant, the most favourable), the "
                              "cycles per op on estimated instruction costs "
                              f"({self.core}) and {self.cpi:g} cycle per kernel instruction")


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _cycles(value: float) -> str:
    return f"~{value:.0f}"


def census_review(name: str = DEFAULT_CENSUS, *, core: str | Any = DEFAULT_CORE,
                  cpi: float = 1.0, bundle: CensusBundle | None = None) -> CensusReview:
    """Load a census (a shipped name or a folder) and price its workloads."""
    b = bundle if bundle is not None else load_census(name)
    workloads = [p for p in b.phases if p not in ("boot", "idle")]
    counts = census_counts(b, workloads)
    k = {p["name"]: int(p["kernel_insns"]) for p in b.meta["phases"]}
    vhe = bool(b.meta.get("vhe", False))
    parts = []
    for label, local in (("variable", DEFAULT_LOCAL_SCHEME), ("constant", MOST_FAVOURABLE)):
        part = census_savings(counts, k, core=core, vhe=vhe, local=local, cpi=cpi)
        part.insert(2, "local", label)
        parts.append(part)
    summary = phase_summary(b)
    summary = summary[summary["phase"].isin(workloads)].reset_index(drop=True)
    return CensusReview(b, summary, pd.concat(parts, ignore_index=True), top_functions(b),
                        census_check(b), cpi, core_profile(core).name)


_REVIEWS: dict[str, CensusReview] = {}


def _cached_review(name: str) -> CensusReview:
    if name not in _REVIEWS:
        _REVIEWS[name] = census_review(name)
    return _REVIEWS[name]


def claim_census_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 10 on the shipped census: one measured row, one row per world on the
    assumed local scheme (instructions saved), one per world on estimates (cycles)."""
    if DEFAULT_CENSUS not in shipped_census():
        return []
    review = _cached_review(DEFAULT_CENSUS)
    claim = CLAIM_BY_ID["10"]
    t = review.answer_table()
    meta = review.bundle.meta
    where = f"census {review.bundle.name}"
    share = t["this_cpu_share"]
    checks = review.checks
    rows = [ClaimResult(
        claim, where, "not checked",
        f"Counted in {meta['kernel_release']} ({meta['cpu']}, {len(t)} workloads: "
        f"{', '.join(t['phase'])}): this_cpu sequences, offset read to access, are "
        f"{_pct(share.min())} to {_pct(share.max())} of kernel instructions; removing all of "
        f"them would save at most {_pct(share.max())} of kernel instructions. The census "
        f"passes {int(checks['equal'].sum())} of {len(checks)} exact checks (the kernel's "
        "pgfault and pgreuse counters per workload, the out-of-line offset reads per phase). "
        "Instructions are not time: the counts alone do not decide the claim.",
        "captures.census: phase_summary, census_check", "measured",
        numbers={"share_min": float(share.min()), "share_max": float(share.max()),
                 "checks_equal": int(checks["equal"].sum()), "checks": len(checks)})]
    best = review.savings[review.savings["local"] == "constant"]
    for world in WORLDS:
        part = best[best["world"] == world.label]
        hi = float(part["insns_saved_share"].max())
        base = ("" if world.kernel.startswith("6.12") else
                "; the 6.12 counts stand for v7.1 code run as often")
        depends = (f"{SCHEME} (and its constant-offset variant, the most favourable, used "
                   f"here){base}")
        if hi <= 0:
            verdict = conditional("cannot hold", "the local scheme is as assumed: it removes "
                                  "no instructions on this kernel (no preempt count, one "
                                  "TPIDR read per op today)")
        else:
            verdict = conditional("fails", f"kernel time follows instructions: the local "
                                  f"scheme removes at most {_pct(hi)} of kernel instructions")
        rows.append(ClaimResult(
            claim, f"{where}: {world.label}", verdict,
            f"{world.note}. Priced on the counted ops: the local scheme saves "
            f"{_pct(float(part['insns_saved_share'].min()))} to {_pct(hi)} of kernel "
            f"instructions per workload (every plain this_cpu read/write priced as "
            f"this_cpu_*(): an upper bound).",
            "thiscpu.census_savings on captures.census_counts", "assumption",
            depends_on=depends,
            numbers={"saved_share_min": float(part["insns_saved_share"].min()),
                     "saved_share_max": hi}))
    for world in WORLDS:
        part = best[best["world"] == world.label]
        need = part["needed_cycles_per_op_13"]
        model = part["cycles_saved_per_op"]
        rows.append(ClaimResult(
            claim, f"{where}: {world.label} cycles", conditional(
                "fails", f"a this_cpu op saves ~{model.max():.0f} cycles or less (the model's "
                f"estimate): 13% of kernel time needs ~{need.min():.0f} to {need.max():.0f}"),
            f"{world.note}. 13% (18%) of kernel time over the counted ops needs "
            f"~{need.min():.0f} to {need.max():.0f} "
            f"(~{part['needed_cycles_per_op_18'].min():.0f} to "
            f"{part['needed_cycles_per_op_18'].max():.0f}) cycles saved per op; the model "
            f"saves ~{model.min():.0f} to {model.max():.0f}.",
            "thiscpu.census_savings", "estimate",
            depends_on=(f"estimated instruction costs ({review.core}) and {review.cpi:g} "
                        f"cycle per kernel instruction; the verdict flips at "
                        f"~{need.min():.0f} cycles saved per op"),
            numbers={"needed13_min": float(need.min()), "needed13_max": float(need.max()),
                     "model_min": float(model.min()), "model_max": float(model.max())}))
    return rows


__all__ = ["CENSUS_QUESTION", "DEFAULT_CENSUS", "CensusReview", "census_review",
           "claim_census_rows"]
