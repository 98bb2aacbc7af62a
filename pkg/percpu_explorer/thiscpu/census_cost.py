"""Price op counts from a real kernel (a census: `captures.census_counts`) under each
scheme and preemption model, and say what the series' 13-18% claim would need.

Input: a DataFrame of aggregated counts, one row per (phase, function, op, size,
flavour, atomics) with `count` (`COUNT_COLUMNS`). `op` is one of `ops.OPS` or
"pointer" (the offset only formed an address: this_cpu_ptr(), per_cpu_ptr(): not an
op the local scheme changes, priced at 0 in both schemes). `flavour` "any" is a plain
read or write whose code cannot tell this_cpu_*() from __this_cpu_*(); it is priced as
this_cpu_*() (the upper bound: every such op pays the preemption bracket where the
model has one, and the local scheme takes it).

Worlds (`WORLDS`): the counted kernel, Debian's 6.12 (PREEMPT_VOLUNTARY, no preempt
count: the bracket is a compiler barrier), and the series' base v7.1 under PREEMPT_FULL
and PREEMPT_LAZY (every this_cpu op pays preempt_disable/enable_notrace()). The counts
are the 6.12 kernel's; using them for v7.1 assumes the same code runs as often.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..errors import InputError
from .ops import (
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    FLAVOURS,
    OPS,
    CoreProfile,
    LocalScheme,
    core_profile,
    op_cost,
    op_sequence,
)

COUNT_COLUMNS = ("phase", "function", "op", "size", "flavour", "atomics", "count")
CENSUS_OPS = (*OPS, "pointer")
CENSUS_FLAVOURS = (*FLAVOURS, "any")


@dataclass(frozen=True)
class World:
    """A kernel and preemption model the counts are priced in."""

    kernel: str
    preempt: str
    note: str

    @property
    def label(self) -> str:
        return f"{self.kernel} {self.preempt.upper()}"


WORLDS: tuple[World, ...] = (
    World("6.12.117", "voluntary", "the counted kernel: no preempt count, the bracket is "
          "barrier() only"),
    World("7.1", "full", "the series' base, PREEMPT_FULL: every this_cpu op pays the bracket"),
    World("7.1", "lazy", "the series' base, PREEMPT_LAZY: every this_cpu op pays the bracket"),
)
TARGETS = (0.13, 0.18)  # the reported sys-time savings on a 160-core AmpereOne


def check_counts(counts: pd.DataFrame) -> None:
    """InputError naming the first bad column or value."""
    missing = [c for c in COUNT_COLUMNS if c not in counts.columns]
    if missing:
        raise InputError(f"census counts lack column(s) {', '.join(missing)}; they need "
                         f"{', '.join(COUNT_COLUMNS)}", field="counts")
    for column, valid in (("op", CENSUS_OPS), ("flavour", CENSUS_FLAVOURS),
                          ("atomics", ("lse", "llsc", "plain"))):
        bad = sorted(set(counts[column].astype(str)) - set(valid))
        if bad:
            raise InputError(f"census counts: {column} {bad[0]!r} is unknown; choose one of "
                             f"{', '.join(valid)}", field=column)
    if (counts["count"] < 0).any():
        raise InputError("census counts: a count is negative", field="count")


_PRICES: dict[tuple[object, ...], tuple[int, float]] = {}


def _op_price(op: str, size: int, flavour: str, atomics: str, scheme: str, world: World,
              core: CoreProfile, vhe: bool, local: LocalScheme) -> tuple[int, float]:
    """(instructions, cycles) of one op; a pointer costs 0 here (unchanged by the scheme)."""
    if op == "pointer":
        return 0, 0.0
    key = (op, size, flavour, atomics, scheme, world, core.name,
           tuple(sorted(core.costs.items())), vhe, local)
    if key not in _PRICES:
        _PRICES[key] = _price(op, size, flavour, atomics, scheme, world, core, vhe, local)
    return _PRICES[key]


def _price(op: str, size: int, flavour: str, atomics: str, scheme: str, world: World,
           core: CoreProfile, vhe: bool, local: LocalScheme) -> tuple[int, float]:
    flav = "this_cpu" if flavour == "any" else flavour
    seq = op_sequence(op, size, flavour=flav, scheme=scheme,
                      atomics="lse" if atomics == "plain" else atomics,
                      preempt=world.preempt, kernel=world.kernel, local=local, vhe=vhe)
    return len(seq.insns), op_cost(seq, core).cycles


def price_counts(counts: pd.DataFrame, *, worlds: tuple[World, ...] = WORLDS,
                 core: str | CoreProfile = DEFAULT_CORE, vhe: bool = False,
                 local: LocalScheme = DEFAULT_LOCAL_SCHEME) -> pd.DataFrame:
    """Instructions and cycles of the counted ops, per phase, world and scheme.

    Columns: phase, world, kernel, preempt, scheme, ops (ops the schemes differ on:
    every op but pointers), insns, cycles (estimates: they rest on the core profile's
    estimated instruction costs). vhe: the offset register (the census's `vhe`)."""
    check_counts(counts)
    profile = core_profile(core)
    rows = []
    keys = list(zip(counts["op"].astype(str), counts["size"].astype(int),
                    counts["flavour"].astype(str), counts["atomics"].astype(str), strict=True))
    for world in worlds:
        for scheme in ("today", "local"):
            price = {k: _op_price(*k, scheme, world, profile, vhe, local) for k in set(keys)}
            insns = [price[k][0] * int(n) for k, n in zip(keys, counts["count"], strict=True)]
            cycles = [price[k][1] * int(n) for k, n in zip(keys, counts["count"], strict=True)]
            part = counts.assign(insns=insns, cycles=cycles,
                                 ops=counts["count"].where(counts["op"] != "pointer", 0))
            g = part.groupby("phase", as_index=False, sort=False)[["ops", "insns", "cycles"]
                                                                  ].sum()
            g.insert(1, "world", world.label)
            g.insert(2, "kernel", world.kernel)
            g.insert(3, "preempt", world.preempt)
            g.insert(4, "scheme", scheme)
            rows.append(g)
    return pd.concat(rows, ignore_index=True)


def census_savings(counts: pd.DataFrame, kernel_insns: dict[str, int], *,
                   worlds: tuple[World, ...] = WORLDS, core: str | CoreProfile = DEFAULT_CORE,
                   vhe: bool = False, local: LocalScheme = DEFAULT_LOCAL_SCHEME,
                   cpi: float = 1.0, targets: tuple[float, ...] = TARGETS) -> pd.DataFrame:
    """Per phase and world: what the local scheme saves on the counted ops, and the
    per-op saving the reported sys-time savings would need.

    insns_saved = instructions today - local (computed from the counts and the modelled
    sequences; an upper bound, see the module docstring); insns_saved_share = that over
    the phase's kernel instructions (measured). cycles_saved_per_op: the model's mean
    saving per op (estimate). needed_cycles_per_op_<S>: S x kernel cycles / ops, with
    kernel cycles = kernel instructions x `cpi` (an estimate: cycles per kernel
    instruction), the saving each op would need for a share S of kernel time."""
    if not 0 < cpi < 100:
        raise InputError(f"cpi {cpi} must be a plausible cycles-per-instruction in (0, 100)",
                         field="cpi")
    priced = price_counts(counts, worlds=worlds, core=core, vhe=vhe, local=local)
    rows = []
    for (phase, world), g in priced.groupby(["phase", "world"], sort=False):
        today = g[g["scheme"] == "today"].iloc[0]
        local_row = g[g["scheme"] == "local"].iloc[0]
        if phase not in kernel_insns:
            raise InputError(f"no kernel instruction total for phase {phase!r}",
                             field="kernel_insns")
        k = int(kernel_insns[phase])
        ops = int(today["ops"])
        saved = int(today["insns"] - local_row["insns"])
        row = {"phase": phase, "world": world, "preempt": today["preempt"], "ops": ops,
               "kernel_insns": k, "insns_today": int(today["insns"]),
               "insns_local": int(local_row["insns"]), "insns_saved": saved,
               "insns_saved_share": saved / k if k else 0.0,
               "cycles_saved_per_op": (today["cycles"] - local_row["cycles"]) / ops
               if ops else 0.0}
        for s in targets:
            row[f"needed_cycles_per_op_{round(100 * s)}"] = s * k * cpi / ops if ops else \
                float("inf")
        rows.append(row)
    return pd.DataFrame(rows)
