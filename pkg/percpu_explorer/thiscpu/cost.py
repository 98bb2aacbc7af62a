"""Replay a workload of this_cpu ops: what it costs under each scheme, where the values
end up, and what share of kernel time the series' saving could explain.

Pricing (`price_workload`, vectorised): each event costs `ops.op_cost()` of its (flavour, op, size)
under each scheme variant. Events are counted per (CPU, op/size key) and per (variable,
key) with two bincounts, and the counts are multiplied by the cost table, so the run time
does not grow with the number of variants. `cost_by_class` splits a priced workload's
cycles by instruction class.

Resolution (`resolve_workload`): each variable gets a real percpu allocation
(`percpu.boot_percpu`);
each access's address is formed as the scheme does (per_cpu_ptr(ptr, cpu) through the
TPIDR offset today, the local address with the patch) and translated through that CPU's
page tables (`pgtable.KernelPageTables.translate`); the value is kept per physical
address. The final copies are checked against a reference kept per (CPU, variable) with
no addresses at all, and each translation against `allocator.phys_of(ptr, cpu)`.

Reviewer's view: with f the clock (Hz), r this_cpu ops per second of kernel (sys) time
and d the cycles saved per op, the share of sys time saved is r * d / f; the op rate a
share S needs is r = S * f / d. It assumes every saved cycle is saved time (no overlap
with other work), so it is an upper bound on what the saving explains.
"""

from __future__ import annotations

import functools
import time as _time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InputError
from ..kernel import DEFAULT_KERNEL, KernelConfig, check_preempt, local_percpu_supported
from ..percpu import boot_percpu
from .interleave import OpCall, apply_op
from .ops import (
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    DEFAULT_PREEMPT,
    DEFAULT_VARIANTS,
    DEFAULT_VHE,
    FLAVOURS,
    OPS,
    PREEMPTIBLE_MODELS,
    CoreProfile,
    LocalScheme,
    OpSequence,
    SchemeVariant,
    core_profile,
    insn_cost,
    is_estimate_source,
    op_cost,
    op_sequence,
    sizes_for,
)
from .workloads import check_nr_cpus

Progress = Callable[[int, int], None]
_NSIZE = 17  # sizes 0..16 in the key


def _key(flavour: np.ndarray, op: np.ndarray, size: np.ndarray) -> np.ndarray:
    return (flavour.astype(np.int64) * len(OPS) + op) * _NSIZE + size


@dataclass(frozen=True)
class CostSettings:
    """Everything a workload's pricing assumes (shown with every result)."""

    core: CoreProfile
    preempt: str = DEFAULT_PREEMPT
    kernel: str = DEFAULT_KERNEL
    lse_execution: str = "auto"
    variants: tuple[SchemeVariant, ...] = DEFAULT_VARIANTS
    local: LocalScheme = DEFAULT_LOCAL_SCHEME
    resched_probability: float | None = None
    vhe: bool = DEFAULT_VHE

    def __post_init__(self) -> None:
        check_preempt(self.preempt, self.kernel)

    @property
    def estimated(self) -> tuple[str, ...]:
        """The core profile's cost classes marked as estimates."""
        return tuple(k for k, src in self.core.sources.items() if is_estimate_source(src))

    def assumptions(self) -> list[str]:
        p = (self.core.resched_probability if self.resched_probability is None
             else self.resched_probability)
        estimated = ", ".join(self.estimated) or "none"
        return [
            f"core profile {self.core.name} ({self.core.description}); costs are a latency "
            f"sum over each sequence, estimates where the profile has no published number "
            f"(estimated classes: {estimated}): cycles are shown in whole cycles",
            f"preemption model {self.preempt}; kernel {self.kernel}; LSE execution "
            f"{self.lse_execution}; offset read from "
            f"{'tpidr_el2 (VHE)' if self.vhe else 'tpidr_el1 (no VHE)'}",
            (f"preempt_schedule_notrace() taken with probability {p:g} at "
             f"{self.core.resched_cost:g} cycles" if self.preempt in PREEMPTIBLE_MODELS
             else "no preempt_schedule_notrace() path: the model has no CONFIG_PREEMPTION"),
            self.local.describe(),
        ]


_COST_TABLES: dict[tuple[Any, ...], np.ndarray] = {}
_COST_TABLES_KEPT = 64


def _settings_key(settings: CostSettings) -> tuple[Any, ...]:
    """Everything a cost table depends on (a core profile's repr names only the core)."""
    core = settings.core
    return (core.name, tuple(sorted(core.costs.items())), core.resched_cost,
            core.resched_probability, settings.preempt, str(settings.kernel),
            settings.lse_execution, settings.variants, settings.local,
            settings.resched_probability, settings.vhe)


def cost_table(settings: CostSettings) -> np.ndarray:
    """Cycles per key (flavour, op, size) and variant: shape (n_keys, n_variants);
    NaN for keys that do not exist. Read-only: the last 64 settings' tables are kept,
    since an explorer prices the same settings again for another workload or CPU count."""
    key = _settings_key(settings)
    table = _COST_TABLES.pop(key, None)
    if table is None:
        table = _cost_table(settings)
        table.setflags(write=False)
        while len(_COST_TABLES) >= _COST_TABLES_KEPT:
            _COST_TABLES.pop(next(iter(_COST_TABLES)))
    _COST_TABLES[key] = table  # most recently used last
    return table


@functools.lru_cache(maxsize=4096)
def _sequence(op: str, size: int, flavour: str, scheme: str, atomics: str, preempt: str,
              kernel: str, local: LocalScheme, vhe: bool) -> OpSequence:
    """`op_sequence` kept for the next table: a sequence does not depend on the core
    profile, which a visitor changes most (a table has about 300 sequences per variant)."""
    return op_sequence(op, size, flavour=flavour, scheme=scheme, atomics=atomics,
                       preempt=preempt, kernel=kernel, local=local, vhe=vhe)


def _cost_table(settings: CostSettings) -> np.ndarray:
    n_keys = len(FLAVOURS) * len(OPS) * _NSIZE
    table = np.full((n_keys, len(settings.variants)), np.nan)
    for fi, flavour in enumerate(FLAVOURS):
        for oi, op in enumerate(OPS):
            for size in sizes_for(op):
                key = (fi * len(OPS) + oi) * _NSIZE + size
                for vi, v in enumerate(settings.variants):
                    seq = _sequence(op, size, flavour, v.scheme, v.atomics, settings.preempt,
                                    str(settings.kernel), settings.local, settings.vhe)
                    table[key, vi] = op_cost(
                        seq, settings.core, lse_execution=settings.lse_execution,
                        resched_probability=settings.resched_probability).cycles
    return table


@dataclass(frozen=True)
class WorkloadCost:
    """A workload priced under every scheme. totals: one row per variant (cycles, ops,
    cycles per op,
    saving against today's scheme with the same atomics). per_cpu, per_op, per_variable:
    cycles per variant. duration_ns: time span of the workload. counted: the workload
    has a count column (e.g. a census: all CPUs together, no times); source: where it
    came from (the frame's attrs["source"], if any)."""

    settings: CostSettings
    totals: pd.DataFrame
    per_cpu: pd.DataFrame
    per_op: pd.DataFrame
    per_variable: pd.DataFrame
    events: int
    duration_ns: int
    nr_cpus: int
    seconds: float = 0.0
    counted: bool = False
    source: str = ""

    def __repr__(self) -> str:
        per_op = {k: f"~{v:.0f}" for k, v in
                  self.totals.set_index("variant")["cycles_per_op"].items()}
        return (f"WorkloadCost({self.events} events, {self.settings.core.name}, estimated "
                f"cycles/op {per_op})")

    def saving_per_op(self, atomics: str = "lse") -> float:
        """Cycles saved per op (today - local) with the given atomics."""
        t = self.totals.set_index("variant")
        return float(t.loc[f"today-{atomics}", "cycles"] - t.loc[f"local-{atomics}", "cycles"]
                     ) / max(self.events, 1)

    def op_rate_per_cpu(self) -> float:
        """this_cpu ops per second per CPU over the workload's time span."""
        if self.duration_ns <= 0:
            return float("nan")
        return self.events / self.nr_cpus / (self.duration_ns * 1e-9)


def _codes(series: pd.Series, categories: tuple[str, ...]) -> np.ndarray:
    if isinstance(series.dtype, pd.CategoricalDtype) and tuple(series.cat.categories) == \
            categories:
        return series.cat.codes.to_numpy()
    return pd.Index(categories).get_indexer(series.astype(str))


NOTHING_TO_PRICE = "the workload has no this_cpu ops: nothing to price"


def variants_for(kernel: str = DEFAULT_KERNEL,
                 variants: tuple[SchemeVariant, ...] = DEFAULT_VARIANTS
                 ) -> tuple[SchemeVariant, ...]:
    """The variants a kernel can have: the local scheme rests on RFC patch 02/11's local
    percpu area, which needs the v6.9+ layout (`kernel.local_percpu_supported`); before
    v6.9 only today's scheme is left."""
    if local_percpu_supported(kernel):
        return variants
    return tuple(v for v in variants if v.scheme != "local")


def price_workload(workload: pd.DataFrame, core: str | CoreProfile = DEFAULT_CORE, *,
                   preempt: str = DEFAULT_PREEMPT, kernel: str = DEFAULT_KERNEL,
                   lse_execution: str = "auto",
                   variants: tuple[SchemeVariant, ...] = DEFAULT_VARIANTS,
                   local: LocalScheme = DEFAULT_LOCAL_SCHEME,
                   resched_probability: float | None = None, progress: Progress | None = None,
                   chunk: int = 2_000_000, vhe: bool = DEFAULT_VHE,
                   nr_cpus: int | None = None) -> WorkloadCost:
    """Cost of every event of a validated workload under each variant (vectorised).

    nr_cpus: the CPUs the workload runs on (CPUs without ops count, with 0 cycles, in
    `per_cpu` and the op rate per CPU); default: up to the highest CPU with an op. Fewer
    CPUs than the workload uses is an InputError.
    progress(done, total) is called after each chunk of `chunk` events. A workload with
    no events is a ValueError (`NOTHING_TO_PRICE`): there is no saving to conclude on."""
    started = _time.perf_counter()
    settings = CostSettings(core_profile(core), preempt, kernel, lse_execution, variants,
                            local, resched_probability, vhe)
    if len(workload) == 0:
        raise ValueError(NOTHING_TO_PRICE)
    table = cost_table(settings)
    rows_n = len(workload)
    weights = (workload["count"].to_numpy(dtype=np.int64) if "count" in workload
               else None)
    n = int(weights.sum()) if weights is not None else rows_n
    n_keys = table.shape[0]
    cpu_all = workload["cpu"].to_numpy()
    used_cpus = int(cpu_all.max()) + 1
    check_nr_cpus(nr_cpus)
    if nr_cpus is None:
        nr_cpus = used_cpus
    elif nr_cpus < used_cpus:
        raise InputError(f"nr_cpus {nr_cpus} is fewer than the workload's CPUs: it has ops "
                         f"on CPUs 0..{used_cpus - 1}; choose {used_cpus} or more",
                         field="nr_cpus")
    var_series = workload["variable"]
    if not isinstance(var_series.dtype, pd.CategoricalDtype):
        var_series = var_series.astype("category")
    var_names = list(var_series.cat.categories)
    var_all = var_series.cat.codes.to_numpy()
    flavour_all = (_codes(workload["flavour"], FLAVOURS) if "flavour" in workload
                   else np.zeros(n, dtype=np.int8))
    op_all = _codes(workload["op"], OPS)
    size_all = workload["size"].to_numpy()
    # Each row's key, then counts per (CPU, key) and (variable, key) over only the keys
    # the workload has: a few of the table's keys, whatever the CPUs (4096 CPUs by every
    # key would be millions of counters).
    keys = np.empty(rows_n, dtype=np.int32)
    for start in range(0, rows_n, chunk):
        stop = min(start + chunk, rows_n)
        keys[start:stop] = _key(flavour_all[start:stop], op_all[start:stop],
                                size_all[start:stop])
    present = np.flatnonzero(np.bincount(keys, minlength=n_keys))
    compact = np.zeros(n_keys, dtype=np.int64)
    compact[present] = np.arange(len(present))
    n_present = len(present)
    by_cpu = np.zeros(nr_cpus * n_present, dtype=np.int64)
    by_var = np.zeros(max(len(var_names), 1) * n_present, dtype=np.int64)
    for start in range(0, rows_n, chunk):
        stop = min(start + chunk, rows_n)
        key = compact[keys[start:stop]]
        cpu_key = cpu_all[start:stop].astype(np.int64) * n_present + key
        var_key = var_all[start:stop].astype(np.int64) * n_present + key
        if weights is None:
            by_cpu += np.bincount(cpu_key, minlength=by_cpu.size)
            by_var += np.bincount(var_key, minlength=by_var.size)
        else:  # counted rows: exact integer sums (bincount's weights are floats)
            np.add.at(by_cpu, cpu_key, weights[start:stop])
            np.add.at(by_var, var_key, weights[start:stop])
        if progress is not None:
            progress(stop, rows_n)
    by_cpu = by_cpu.reshape(nr_cpus, n_present)
    by_var = by_var.reshape(-1, n_present)
    counted = by_cpu.sum(axis=0)
    used = present[np.flatnonzero(counted)]
    if np.isnan(table[used]).any():
        bad = used[np.isnan(table[used]).any(axis=1)][0]
        raise ValueError(f"no cost for key {bad}: validate the workload first")
    per_key = np.zeros(n_keys, dtype=np.int64)
    per_key[present] = counted
    t_all = np.nan_to_num(table)
    t = t_all[present]  # cycles per present key and variant
    labels = [v.label for v in variants]
    cpu_cycles = by_cpu @ t
    totals = pd.DataFrame({"variant": labels, "scheme": [v.scheme for v in variants],
                           "atomics": [v.atomics for v in variants],
                           "cycles": cpu_cycles.sum(axis=0), "ops": n})
    totals["cycles_per_op"] = totals["cycles"] / max(n, 1)
    today = {v.atomics: totals.loc[i, "cycles"] for i, v in enumerate(variants)
             if v.scheme == "today"}
    totals["saving_cycles"] = [today.get(v.atomics, np.nan) - totals.loc[i, "cycles"]
                               for i, v in enumerate(variants)]
    totals["saving_pct"] = 100 * totals["saving_cycles"] / totals["atomics"].map(today)
    per_cpu = pd.DataFrame(cpu_cycles, columns=labels).rename_axis("cpu").reset_index()
    per_cpu.insert(1, "ops", by_cpu.sum(axis=1))
    rows = []
    for key in used:
        fi, rest = divmod(int(key), len(OPS) * _NSIZE)
        oi, size = divmod(rest, _NSIZE)
        rows.append({"flavour": FLAVOURS[fi], "op": OPS[oi], "size": size,
                     "ops": int(per_key[key]), **dict(zip(labels, per_key[key] * t_all[key],
                                                          strict=True))})
    per_op = pd.DataFrame(rows)
    per_variable = pd.DataFrame(by_var @ t, columns=labels)
    per_variable.insert(0, "variable", var_names or [""])
    per_variable.insert(1, "ops", by_var.sum(axis=1))
    times = workload["time"].to_numpy()
    duration = int(times.max() - times.min()) if rows_n else 0
    return WorkloadCost(settings, totals, per_cpu, per_op, per_variable, n, duration, nr_cpus,
                        _time.perf_counter() - started, counted=weights is not None,
                        source=str(workload.attrs.get("source", "")))


# --- resolution: each access through the allocator and page tables -------------------

@dataclass(frozen=True)
class WorkloadResolution:
    """Final per-CPU values of a workload resolved under one scheme.

    values: one row per (variable, cpu): the address used, the physical address it
    translated to, the value kept at that physical address and the reference value.
    problems: every mismatch (empty when every access resolved correctly)."""

    scheme: str
    values: pd.DataFrame
    problems: tuple[str, ...]
    events: int

    @property
    def ok(self) -> bool:
        return not self.problems

    def __repr__(self) -> str:
        state = "ok" if self.ok else f"{len(self.problems)} problems"
        return f"WorkloadResolution({self.scheme}, {self.events} events, {state})"


def _apply_event(op: str, size: int, current: int, value: int, old: object) -> int:
    """The new value of a copy: ops.interleave.apply_op, where an empty `old` of a cmpxchg
    means the op succeeds (the workload format's uncontended fast path)."""
    if op in ("cmpxchg", "try_cmpxchg", "cmpxchg128"):
        expected = current if old is None or old is pd.NA else int(old)
        return apply_op(OpCall(op, size, operand=value, old=expected), current)[0]
    return apply_op(OpCall(op, size, operand=value), current)[0]


def resolve_workload(workload: pd.DataFrame, scheme: str = "today", *,
                    cfg: KernelConfig | None = None, static_size: int = 64 << 10,
                    local: LocalScheme = DEFAULT_LOCAL_SCHEME,
                    tlb_shared_with: Mapping[int, int] | None = None,
                    progress: Progress | None = None, every: int = 100_000) -> WorkloadResolution:
    """Replay `workload` through the allocator and page-table models under `scheme`
    ("today": global per_cpu_ptr addresses; "local": the local address for this_cpu ops,
    and for raw_cpu/__this_cpu ops only if local.raw_cpu_local). Translations are cached
    per (CPU, address), as a TLB would.

    tlb_shared_with: {cpu: other}: cpu uses the translations `other`'s page tables gave
    (SMT threads sharing a TLB, or CnP; the series' cover letter warns about both)."""
    if scheme not in ("today", "local"):
        raise ValueError(f"scheme {scheme!r} is unknown; choose one of today, local")
    n = len(workload)
    if n == 0:
        raise ValueError("the workload has no this_cpu ops: nothing to replay")
    if "count" in workload and (workload["count"] > 1).any():
        raise InputError("a counted workload (rows with count > 1, e.g. a census) has no "
                         "per-op values to resolve; price it instead (without --semantic)",
                         field="semantic")
    nr_cpus = max(int(workload["cpu"].max()) + 1 if n else 1, 2)
    if cfg is None:  # the default NR_CPUS, raised to the workload's CPUs if it has more
        cfg = KernelConfig(local_percpu=scheme == "local",
                           nr_cpus=max(KernelConfig().nr_cpus, nr_cpus))
    if scheme == "local" and not cfg.local_percpu:
        raise ValueError("the local scheme needs a configuration with local_percpu=True")
    alloc, kpt = boot_percpu(cfg, static_size, nr_cpus)
    assert kpt is not None
    sizes = workload.groupby("variable", observed=True)["size"].max()
    ptrs = {str(v): alloc.alloc(int(s), min(int(s), 16)).ptr for v, s in sizes.items()}
    memory: dict[int, int] = {}
    reference: dict[tuple[int, str], int] = {}
    used: dict[tuple[int, str], tuple[int, int]] = {}
    tlb: dict[tuple[int, int], int] = {}
    shared = dict(tlb_shared_with or {})
    checked: set[tuple[int, int]] = set()
    problems: list[str] = []
    olds = workload["old"] if "old" in workload else pd.Series([None] * n)
    flavours = workload["flavour"] if "flavour" in workload else pd.Series(["this_cpu"] * n)
    columns = zip(workload["cpu"].to_numpy(), workload["op"].astype(str).to_numpy(),
                  workload["size"].to_numpy(), workload["variable"].astype(str).to_numpy(),
                  workload["value"].to_numpy(), olds.to_numpy(), flavours.astype(str).to_numpy(),
                  strict=True)
    for i, (cpu, op, size, var, value, old, flavour) in enumerate(columns):
        cpu, size, value = int(cpu), int(size), int(value)
        ptr = ptrs[var]
        use_local = scheme == "local" and (flavour == "this_cpu" or local.raw_cpu_local)
        va = alloc.local_ptr(ptr) if use_local else alloc.per_cpu_ptr(ptr, cpu)
        walker = shared.get(cpu, cpu)
        pa = tlb.get((walker, va))
        if pa is None:
            pa = kpt.translate(walker, va)
            if pa is None:
                problems.append(f"event {i}: {var} at {va:#x} is not mapped on CPU {cpu}")
                continue
            tlb[(walker, va)] = pa
        if (cpu, va) not in checked:
            checked.add((cpu, va))
            if pa != alloc.phys_of(ptr, cpu):
                problems.append(f"event {i}: {var} at {va:#x} on CPU {cpu} reaches {pa:#x}, "
                                f"not CPU {cpu}'s copy {alloc.phys_of(ptr, cpu):#x}")
        old_v = None if old is None or old is pd.NA or (isinstance(old, float) and
                                                         np.isnan(old)) else int(old)
        memory[pa] = _apply_event(op, size, memory.get(pa, 0), value, old_v)
        reference[(cpu, var)] = _apply_event(op, size, reference.get((cpu, var), 0), value,
                                             old_v)
        used[(cpu, var)] = (va, pa)
        if progress is not None and (i + 1) % every == 0:
            progress(i + 1, n)
    if progress is not None:
        progress(n, n)
    rows = []
    for (cpu, var), (va, pa) in sorted(used.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        got, want = memory.get(pa, 0), reference[(cpu, var)]
        rows.append({"variable": var, "cpu": cpu, "address": va, "phys": pa, "value": got,
                     "reference": want, "match": got == want})
        if got != want:
            problems.append(f"{var} on CPU {cpu}: resolved {got} != reference {want}")
    return WorkloadResolution(scheme, pd.DataFrame(rows), tuple(problems), n)


# --- reviewer's view ----------------------------------------------------------------------------

@dataclass(frozen=True)
class ReviewerView:
    """What share of sys time a per-op saving explains, and the op rate a target needs.

    saving_cycles: cycles saved per this_cpu op (today - local); ghz: clock;
    op_rate: this_cpu ops per second of sys time (per CPU), if known;
    targets: reported sys-time savings (0.13 and 0.18 for the series on AmpereOne).
    """

    saving_cycles: float
    ghz: float
    op_rate: float | None = None
    targets: tuple[float, ...] = (0.13, 0.18)
    assumptions: tuple[str, ...] = field(default_factory=tuple)

    def explained_share(self) -> float | None:
        """r * d / f: share of sys time the saving explains at `op_rate`."""
        if self.op_rate is None:
            return None
        return self.op_rate * self.saving_cycles / (self.ghz * 1e9)

    def required_rate(self, share: float) -> float:
        """S * f / d: this_cpu ops per sys-second that a saving share S needs."""
        if self.saving_cycles <= 0:
            return float("inf")
        return share * self.ghz * 1e9 / self.saving_cycles

    def table(self) -> pd.DataFrame:
        rows = []
        for s in self.targets:
            r = self.required_rate(s)
            rows.append({"target_sys_saving": s, "ops_per_sys_second": r,
                         "sys_cycles_between_ops": self.ghz * 1e9 / r if r else float("inf"),
                         "ns_between_ops": 1e9 / r if r else float("inf")})
        return pd.DataFrame(rows)

    def text(self) -> str:
        """The view in words; numbers resting on estimated costs carry two significant
        figures at most and say so."""
        lines = [f"Reviewer's view: ~{self.saving_cycles:.0f} cycles saved per this_cpu op "
                 f"(an estimate: it rests on estimated instruction costs) at {self.ghz:g} GHz"]
        if self.saving_cycles <= 0:
            lines.append("  the local scheme saves nothing per op under these assumptions: no "
                         "op rate explains a sys-time saving")
        for row in self.table().itertuples() if self.saving_cycles > 0 else ():
            lines.append(f"  {row.target_sys_saving:.0%} less sys time needs ~"
                         f"{_sig2(row.ops_per_sys_second / 1e6)} M this_cpu ops per sys-second "
                         f"per CPU: one every ~{_sig2(row.sys_cycles_between_ops)} kernel cycles "
                         f"(~{_sig2(row.ns_between_ops)} ns) (estimates)")
        share = self.explained_share()
        if share is not None:
            lines.append(f"  at this workload's {self.op_rate / 1e6:.3f} M ops per sys-second "
                         f"the saving explains ~{_sig2(100 * share)}% of sys time (estimate)")
        lines += ["  assumptions:"] + [f"    - {a}" for a in self.assumptions]
        return "\n".join(lines)


def reviewer_view(cost: WorkloadCost | None = None, *, saving_cycles: float | None = None,
                  ghz: float = 3.0, sys_share: float = 1.0, atomics: str = "lse",
                  targets: tuple[float, ...] = (0.13, 0.18)) -> ReviewerView:
    """The reviewer's view from a priced workload (saving per op and op rate from the
    workload) or from a given saving_cycles.

    sys_share: the share of each CPU's time the workload spends in the kernel, to turn
    the workload's op rate per CPU-second into a rate per sys-second."""
    if not 0 < sys_share <= 1:
        raise InputError(f"sys_share {sys_share} must be in (0, 1]", field="sys_share")
    if not 0 < ghz < float("inf"):  # NaN fails too
        raise InputError(f"ghz {ghz} must be a positive, finite clock", field="ghz")
    assumptions = [f"clock {ghz:g} GHz (AmpereOne runs up to 3.0 GHz; set yours)",
                   "every saved cycle is saved time: no overlap with other work "
                   "(an upper bound on what the saving explains)",
                   "the op mix of the workload is the op mix of the measured sys time"]
    rate = None
    if cost is not None:
        saving = cost.saving_per_op(atomics)
        assumptions += [f"saving per op ~{saving:.0f} cycles (estimate) = mean of "
                        f"today-{atomics} minus local-{atomics} over the workload's ops",
                        *cost.settings.assumptions()]
        if cost.duration_ns > 0:
            rate = cost.op_rate_per_cpu() / sys_share
            assumptions.append(f"op rate: {cost.events} ops over {cost.duration_ns} ns on "
                               f"{cost.nr_cpus} CPUs, of which a share {sys_share:g} is "
                               "sys time")
        else:
            assumptions.append(f"op rate: unknown ({cost.events} ops with no time span, "
                               "e.g. counted ops): no share of sys time is explained")
    elif saving_cycles is None:
        raise ValueError("give a priced workload (cost) or saving_cycles")
    else:
        saving = saving_cycles
        assumptions.append(f"saving per op {saving:g} cycles (given)")
    return ReviewerView(saving, ghz, rate, targets, tuple(assumptions))


def _sig2(value: float) -> str:
    """Two significant figures, for numbers derived from estimated costs."""
    return f"{float(f'{value:.2g}'):g}" if np.isfinite(value) else str(value)


def summary_table(result: WorkloadCost) -> pd.DataFrame:
    """The per-scheme summary a user sees first, in whole cycles (the costs are estimates:
    see `CostSettings.assumptions`)."""
    out = result.totals[["variant", "cycles", "cycles_per_op", "saving_cycles",
                         "saving_pct"]].copy()
    return out.round({"cycles": 0, "cycles_per_op": 0, "saving_cycles": 0, "saving_pct": 0})


def cost_to_dict(result: WorkloadCost, view: ReviewerView | None = None,
                   semantic: Mapping[str, WorkloadResolution] | None = None) -> dict:
    """JSON-ready summary."""
    whole = _whole_cycles
    data: dict = {"events": result.events, "nr_cpus": result.nr_cpus,
                  "duration_ns": result.duration_ns,
                  "cycles": "estimates, in whole cycles: they rest on the estimated costs of "
                            + (", ".join(result.settings.estimated) or "no class"),
                  "estimated_classes": list(result.settings.estimated),
                  "assumptions": result.settings.assumptions(),
                  "totals": whole(result.totals).to_dict("records"),
                  "per_op": whole(result.per_op).to_dict("records"),
                  "per_cpu": whole(result.per_cpu).to_dict("records"),
                  "per_variable": whole(result.per_variable).to_dict("records")}
    if view is not None:
        data["reviewer"] = {"saving_cycles": round(view.saving_cycles), "ghz": view.ghz,
                            "op_rate": view.op_rate,
                            "explained_share": (None if view.explained_share() is None
                                                else float(_sig2(view.explained_share()))),
                            "required": [{k: float(_sig2(v)) for k, v in row.items()}
                                         for row in view.table().to_dict("records")],
                            "basis": "estimate", "assumptions": list(view.assumptions)}
    if semantic:
        data["semantic"] = {k: {"ok": v.ok, "problems": list(v.problems),
                                "values": v.values.to_dict("records")}
                            for k, v in semantic.items()}
    return data


def _whole_cycles(frame: pd.DataFrame) -> pd.DataFrame:
    """Cycle columns rounded to whole cycles (every column but the keys and op counts)."""
    keys = {"variant", "scheme", "atomics", "flavour", "op", "size", "ops", "cpu", "variable"}
    return frame.round({c: 0 for c in frame.columns
                        if c not in keys and pd.api.types.is_float_dtype(frame[c])})


def cost_by_class(cost: WorkloadCost) -> pd.DataFrame:
    """Cycles of a priced workload per variant and instruction class (the ops.Insn cost
    classes, plus "resched" for the preempt_schedule_notrace() path): each (flavour, op,
    size) count of `cost.per_op` times the class costs of its sequence under the variant.
    The cycles of a variant sum to its `cost.totals["cycles"]`."""
    s = cost.settings
    rows = []
    for v in s.variants:
        acc: dict[str, float] = {}
        for r in cost.per_op.itertuples():
            seq = op_sequence(r.op, int(r.size), flavour=r.flavour, scheme=v.scheme,
                              atomics=v.atomics, preempt=s.preempt, kernel=s.kernel,
                              local=s.local, vhe=s.vhe)
            for insn in seq.insns:
                acc[insn.cls] = acc.get(insn.cls, 0.0) + r.ops * insn_cost(
                    insn, s.core, s.lse_execution)
            resched = op_cost(seq, s.core, lse_execution=s.lse_execution,
                              resched_probability=s.resched_probability).resched
            if resched:
                acc["resched"] = acc.get("resched", 0.0) + r.ops * resched
        rows += [{"variant": v.label, "class": c, "cycles": n} for c, n in acc.items()]
    return pd.DataFrame(rows, columns=["variant", "class", "cycles"])
