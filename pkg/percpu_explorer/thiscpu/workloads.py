"""Workloads: streams of this_cpu_*() operations, from files or from seeded generators.

File format (CSV with a header line, or Parquet with the same column names), one row
per operation:

| column   | required | meaning                                                          |
| -------- | -------- | ---------------------------------------------------------------- |
| time     | yes      | nanoseconds since the start (integer >= 0, non-decreasing per CPU) |
| cpu      | yes      | CPU running the op, 0 .. nr_cpus-1                                |
| task     | yes      | task (thread) id, integer >= 0                                    |
| op       | yes      | one of percpu_explorer.ops.OPS                                    |
| size     | yes      | bytes: 1, 2, 4, 8 (16 for cmpxchg128)                             |
| variable | yes      | name of the per-CPU variable (any text without commas)           |
| value    | yes      | the operand: added, and'ed, or'ed, written, swapped, or the new  |
|          |          | value of a cmpxchg; ignored by read                               |
| flavour  | no       | this_cpu (default), __this_cpu or raw_cpu                         |
| old      | no       | expected value of a cmpxchg/try_cmpxchg/cmpxchg128; empty: the op |
|          |          | succeeds (the uncontended fast path)                              |
| count    | no       | executions the row stands for (integer >= 1, default 1): a counted |
|          |          | workload, e.g. a census (`captures.census_workload`), is priced   |
|          |          | but has no per-op values to resolve                               |

A 16-byte op (cmpxchg128) takes its value and old as integers (up to 2**63 - 1 in
Parquet's int64: the high half is then 0).

Lines are numbered as in the file (the header is line 1); Parquet rows as line = row + 2
so that messages read the same. Validation reports every problem, one message each:
"FILE:LINE:COLUMN: column 'NAME': what is wrong (valid: ...)".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InputError, ProblemsError, one_line, shown
from ..kernel import NR_CPUS_RANGE, check_memory
from .ops import FLAVOURS, OPS, sizes_for

REQUIRED_COLUMNS = ("time", "cpu", "task", "op", "size", "variable", "value")
OPTIONAL_COLUMNS = ("flavour", "old", "count")
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS


class WorkloadError(ProblemsError):
    """A workload file failed validation; `problems` holds one message per problem, the
    message is the first of them (one line) and how many follow."""

    def __init__(self, source: str, problems: list[str]) -> None:
        super().__init__(source, problems, consequence="nothing was replayed")


# Integer columns and their valid ranges (the CPU column's upper end is NR_CPUS - 1, or
# nr_cpus - 1 when given); value and old are the op's 64-bit operands.
_INT64 = (-(1 << 63), (1 << 63) - 1)
_RANGES: dict[str, tuple[int, int]] = {
    "time": (0, _INT64[1]), "cpu": (0, NR_CPUS_RANGE[1] - 1), "task": (0, _INT64[1]),
    "size": (0, 16), "value": _INT64, "old": _INT64, "count": (1, _INT64[1])}
_INT_TEXT = re.compile(r"^[+-]?\d+$")
_HEX_TEXT = re.compile(r"^-?0[xX][0-9a-fA-F]+$")


def _exact_int(text: object) -> int | float | None:
    """One cell as a number: an exact int for integer or hex text, else a float; None
    when it is not a number."""
    t = str(text).strip()
    try:
        if _INT_TEXT.match(t) and len(t) <= 40:
            return int(t)
        if _HEX_TEXT.match(t) and len(t) <= 40:
            return int(t, 16)
        return float(t)
    except ValueError:
        return None


def _cell_text(value: object) -> str:
    text = str(value).strip()
    return text if len(text) <= 40 else text[:40] + "..."


def _as_int(series: pd.Series, low: int, high: int) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """(integers as Int64, mask of cells that are not whole numbers, mask of whole
    numbers outside low..high); both masked cells are NA in the integers."""
    index = series.index
    if pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series):
        num = series.astype("float64") if pd.api.types.is_float_dtype(series) else series
        bad = pd.Series(False, index=index)
        if pd.api.types.is_float_dtype(series):
            bad = num.notna() & (np.isinf(num) | (num != np.floor(num)))
        out = num.notna() & ~bad & ((num < low) | (num > high))
        return (num.where(~bad & ~out).astype("Int64"), bad.to_numpy(dtype=bool),
                out.to_numpy(dtype=bool))
    text = series.astype("string").str.strip()
    num = pd.to_numeric(text, errors="coerce")
    if num.dtype in (np.dtype("int64"), pd.Int64Dtype()) and not text.str.match(
            _HEX_TEXT.pattern, na=False).any():
        # Decimal text within int64 (the usual file): numpy masks, one pass each.
        empty = text.isna().to_numpy() | (text == "").to_numpy(dtype=bool, na_value=False)
        missing = num.isna().to_numpy()
        v = num.to_numpy(dtype="int64", na_value=0)
        out = ~missing & ((v < low) | (v > high))
        values = pd.arrays.IntegerArray(v, missing | out)
        return pd.Series(values, index=index), missing & ~empty, out
    # Mixed, hex, float or very large: exact per cell.
    cells = [None if v is pd.NA or v == "" else _exact_int(v) for v in text]
    empty = text.isna() | (text == "")
    bad = np.array([not e and (c is None or (isinstance(c, float) and not c.is_integer()))
                    for c, e in zip(cells, empty, strict=True)], dtype=bool)
    out = np.array([not b and c is not None and not low <= c <= high
                    for c, b in zip(cells, bad, strict=True)], dtype=bool)
    keep = [int(c) if c is not None and not b and not o else None
            for c, b, o in zip(cells, bad, out, strict=True)]
    return pd.Series(pd.array(keep, dtype="Int64"), index=index), bad, out


def validate_workload(frame: pd.DataFrame, source: str = "<workload>", *,
                      nr_cpus: int | None = None,
                      lines: np.ndarray | None = None) -> pd.DataFrame:
    """Check a workload and return it typed (time/cpu/task/size/value int64, op,
    variable and flavour categorical, old Int64). Raises WorkloadError listing every
    problem with its file, line and column (`lines`: each row's line in the file, by
    default row + 2). CPUs are 0..nr_cpus-1, at most NR_CPUS - 1."""
    try:
        return _validate_workload(frame, source, nr_cpus, lines)
    except UnicodeError as exc:  # a cell of a frame built in Python may hold any str
        raise InputError(f"{source}: a cell holds text that is not valid Unicode "
                         f"({exc.reason}); nothing was replayed") from None


def _validate_workload(frame: pd.DataFrame, source: str, nr_cpus: int | None,
                       lines: np.ndarray | None) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"{source}: a workload is a table (DataFrame) with columns "
                         f"{', '.join(REQUIRED_COLUMNS)}, not {type(frame).__name__}")
    check_nr_cpus(nr_cpus)
    problems: list[str] = []
    cols = [str(c) for c in frame.columns]
    frame = frame.set_axis(cols, axis=1)
    for name in REQUIRED_COLUMNS:
        if name not in cols:
            problems.append(f"{source}:1: missing column '{name}' (required: "
                            f"{', '.join(REQUIRED_COLUMNS)})")
    unknown = [c for c in cols if c not in COLUMNS]
    for c in unknown:
        problems.append(f"{source}:1:{cols.index(c) + 1}: unknown column {shown(c)} (valid: "
                        f"{', '.join(COLUMNS)})")
    duplicated = sorted({c for c in cols if cols.count(c) > 1})
    for c in duplicated:
        problems.append(f"{source}:1: column '{c}' appears {cols.count(c)} times")
    if problems:
        raise WorkloadError(source, problems)
    frame = frame.reset_index(drop=True)
    line = np.arange(len(frame)) + 2 if lines is None else np.asarray(lines)
    bad_rows: list[tuple[int, int, str]] = []  # (row, column number, message)

    def report(mask: np.ndarray, column: str, message: Callable[[int], str]) -> None:
        idx = np.flatnonzero(mask)
        colno = cols.index(column) + 1
        bad_rows.extend((int(i), colno, message(int(i))) for i in idx)

    def blank(text: pd.Series) -> np.ndarray:
        return text.isna().to_numpy() | (text == "").to_numpy(dtype=bool, na_value=False)

    ints: dict[str, pd.Series] = {}
    high_cpu = _RANGES["cpu"][1] if nr_cpus is None else nr_cpus - 1
    optional = tuple(c for c in ("old", "count") if c in cols)
    for name in ("time", "cpu", "task", "size", "value", *optional):
        low, high = _RANGES[name] if name != "cpu" else (0, high_cpu)
        values, bad, out = _as_int(frame[name], low, high)
        report(bad, name, lambda i, n=name: f"column '{n}': {shown(frame[n].iloc[i])} is not "
               "an integer")
        report(out, name, lambda i, n=name, lo=low, hi=high: f"column '{n}': "
               f"{'CPU ' if n == 'cpu' else ''}{_cell_text(frame[n].iloc[i])} is out of range "
               f"(valid: {lo}..{hi})")
        if name not in ("old", "count"):  # empty old: succeeds; empty count: 1
            missing = values.isna().to_numpy() & ~bad & ~out
            report(missing, name, lambda i, n=name: f"column '{n}': empty (an integer is "
                   "required)")
        ints[name] = values
    op = frame["op"].astype("string").str.strip()
    op_code = pd.Index(OPS).get_indexer(op)  # -1: not an op
    report(op_code < 0, "op", lambda i: f"column 'op': unknown op {shown(frame['op'].iloc[i])} "
           f"(valid: {', '.join(OPS)})")
    sizes = ints["size"]
    size_known = sizes.notna().to_numpy() & (op_code >= 0)
    size_at = sizes.to_numpy(dtype="int64", na_value=0)
    size_ok = ~size_known | _SIZE_ALLOWED[op_code, size_at]
    report(~size_ok, "size", lambda i: f"column 'size': size {sizes[i]} is not allowed for op "
           f"{op[i]!r} (valid: {', '.join(map(str, _file_sizes(op[i])))})")
    var = frame["variable"].astype("string").str.strip()
    report(blank(var), "variable", lambda i: "column 'variable': empty")
    if "flavour" in cols:
        fl = frame["flavour"].astype("string").str.strip()
        fl = fl.mask(pd.Series(blank(fl), index=fl.index), "this_cpu")
        report(pd.Index(FLAVOURS).get_indexer(fl) < 0, "flavour",
               lambda i: f"column 'flavour': unknown flavour "
               f"{shown(frame['flavour'].iloc[i])} (valid: {', '.join(FLAVOURS)})")
    else:
        fl = pd.Series("this_cpu", index=frame.index)
    if not bad_rows and len(frame):
        # Each CPU's rows in file order (a stable sort by CPU): a row whose time is below
        # the previous row's on the same CPU goes back in time.
        cpu = ints["cpu"].to_numpy(dtype="int64")
        when = ints["time"].to_numpy(dtype="int64")
        order = np.argsort(cpu, kind="stable")
        same = cpu[order][1:] == cpu[order][:-1]
        back = np.zeros(len(frame), dtype=bool)
        back[order[1:][same & (when[order][1:] < when[order][:-1])]] = True
        report(back, "time", lambda i: f"column 'time': {ints['time'][i]} goes "
               f"back in time on CPU {ints['cpu'][i]}")
    if bad_rows:
        bad_rows.sort()
        raise WorkloadError(source, [f"{source}:{line[r]}:{c}: {m}" for r, c, m in bad_rows])
    out = pd.DataFrame({
        "time": ints["time"].astype("int64"), "cpu": ints["cpu"].astype("int32"),
        "task": ints["task"].astype("int64"),
        "op": pd.Categorical(op, categories=OPS),
        "size": sizes.astype("int16"),
        "variable": pd.Categorical(var),
        "value": ints["value"].astype("int64") if ints["value"].max() is pd.NA or
        len(frame) == 0 or ints["value"].max() < 2**63 else ints["value"],
        "flavour": pd.Categorical(fl, categories=FLAVOURS),
    })
    if "old" in cols:
        out["old"] = ints["old"]
    if "count" in cols:
        out["count"] = ints["count"].fillna(1).astype("int64")
    return out


def _file_sizes(op: str) -> tuple[int, ...]:
    """Sizes a workload file may use for `op` (no hypothetical 16-byte read)."""
    return tuple(s for s in sizes_for(op) if not (op == "read" and s == 16))


# _SIZE_ALLOWED[op index in OPS, size]: whether a file may use that size for that op.
_SIZE_ALLOWED = np.array([[size in _file_sizes(op) for size in range(_RANGES["size"][1] + 1)]
                          for op in OPS], dtype=bool)


def read_workload(path: str | Path, *, nr_cpus: int | None = None) -> pd.DataFrame:
    """A validated workload from CSV (any suffix but .parquet) or Parquet. Blank CSV lines
    are skipped but counted, so that every problem names its line."""
    path = Path(path)
    check_nr_cpus(nr_cpus)
    try:
        size = path.stat().st_size if path.is_file() else 0
    except (OSError, ValueError):
        size = 0
    check_memory(size * (80 if path.suffix == ".parquet" else 40), f"reading {path}",
                 "split the workload into smaller files")
    lines = None
    try:
        if path.suffix == ".parquet":
            frame = pd.read_parquet(path)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True,
                                skip_blank_lines=False, encoding="utf-8-sig")
            blank = np.ones(len(frame), dtype=bool)
            for column in frame.columns:
                blank &= (frame[column].str.strip() == "").to_numpy(dtype=bool,
                                                                   na_value=False)
            lines = np.flatnonzero(~blank) + 2
            frame = frame[~blank]
    except FileNotFoundError:
        raise InputError(f"{path}: no such workload file") from None
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, ValueError,
            TypeError) as exc:
        reason = one_line(str(exc)) or type(exc).__name__
        raise InputError(f"{path}: cannot read a workload (CSV or Parquet with columns "
                         f"{', '.join(REQUIRED_COLUMNS)}): {reason}") from None
    return validate_workload(frame, str(path), nr_cpus=nr_cpus, lines=lines)


def check_nr_cpus(nr_cpus: object) -> None:
    """InputError unless `nr_cpus` is None or 1..NR_CPUS."""
    high = NR_CPUS_RANGE[1]
    if nr_cpus is not None and (isinstance(nr_cpus, bool) or not isinstance(nr_cpus, int)
                                or not 1 <= nr_cpus <= high):
        raise InputError(f"nr_cpus {shown(nr_cpus)} is outside 1..{high} (CPUs of the "
                         "workload, at most NR_CPUS)", field="nr_cpus")


def write_workload(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a workload as CSV or Parquet (by suffix)."""
    path = Path(path)
    cols = [c for c in COLUMNS if c in frame.columns]
    out = frame[cols]
    if path.suffix == ".parquet":
        out.to_parquet(path, index=False)
    else:
        out.to_csv(path, index=False)
    return path


# --- generators -------------------------------------------------------------------------------

@dataclass(frozen=True)
class PatternOp:
    """One op of a pattern's unit of work: `flavour`_`op`(`variable`, value) of `size` bytes.

    every, phase: the op happens in the units whose index j on their CPU has
    j % every == phase (every=1: always). counter_mod: for the cmpxchg family, the
    copy is a counter that the unit moves from old = j % counter_mod to old + value."""

    op: str
    size: int
    variable: str
    value: int = 1
    flavour: str = "this_cpu"
    every: int = 1
    phase: int = 0
    counter_mod: int | None = None


@dataclass(frozen=True)
class Pattern:
    """A typical kernel use of this_cpu ops: the ops one unit of work makes and where
    that comes from (v6.12 source). gap_ns: mean time between units on one CPU."""

    name: str
    description: str
    source: str
    unit: tuple[PatternOp, ...]
    gap_ns: int = 1000


PATTERNS: dict[str, Pattern] = {
    "vm-events": Pattern(
        "vm-events", "page faults: count_vm_event(PGFAULT) and the memcg event per fault",
        "mm/memory.c handle_mm_fault(): count_vm_event(PGFAULT) -> this_cpu_inc("
        "vm_event_states.event[PGFAULT]) (include/linux/vmstat.h); count_memcg_event_mm() "
        "modelled as one this_cpu_add on a memcg counter; __count_vm_event uses raw_cpu_inc "
        "(modelled: PGALLOC one fault in 4)",
        (PatternOp("inc", 8, "vm_event_states.PGFAULT"),
         PatternOp("add", 8, "memcg.events.PGFAULT"),
         PatternOp("inc", 8, "vm_event_states.PGALLOC", flavour="raw_cpu", every=4)),
        gap_ns=2000),
    "percpu-counter": Pattern(
        "percpu-counter", "percpu_counter_add_batch() with the default batch of 32",
        "lib/percpu_counter.c (CONFIG_HAVE_CMPXCHG_LOCAL, selected by arm64): "
        "this_cpu_read(*fbc->counters) then this_cpu_try_cmpxchg(); every `batch` adds the "
        "slow path __this_cpu_read + __this_cpu_sub under the spinlock (lock not modelled)",
        (PatternOp("read", 4, "fbc.counters", 0),
         PatternOp("try_cmpxchg", 4, "fbc.counters", 1, counter_mod=32),
         PatternOp("read", 4, "fbc.counters", 0, flavour="__this_cpu", every=32, phase=31),
         PatternOp("sub", 4, "fbc.counters", 32, flavour="__this_cpu", every=32, phase=31)),
        gap_ns=500),
    "percpu-ref": Pattern(
        "percpu-ref", "percpu_ref_get()/percpu_ref_put() in percpu mode",
        "include/linux/percpu-refcount.h percpu_ref_get_many(): this_cpu_add(*percpu_count, "
        "nr); percpu_ref_put_many(): this_cpu_sub(*percpu_count, nr)",
        (PatternOp("add", 8, "ref.percpu_count", 1), PatternOp("sub", 8, "ref.percpu_count", 1)),
        gap_ns=300),
    "slub-fastpath": Pattern(
        "slub-fastpath", "SLUB allocation fast path: freelist/tid cmpxchg128",
        "mm/slub.c slab_alloc_node(): c = raw_cpu_ptr(s->cpu_slab); READ_ONCE(c->tid); "
        "c->freelist (modelled as two raw_cpu reads); __update_cpu_freelist_fast() -> "
        "this_cpu_try_cmpxchg_freelist -> this_cpu_try_cmpxchg128 (modelled as cmpxchg128)",
        (PatternOp("read", 8, "cpu_slab.tid", 0, flavour="raw_cpu"),
         PatternOp("read", 8, "cpu_slab.freelist", 0, flavour="raw_cpu"),
         PatternOp("cmpxchg128", 16, "cpu_slab.freelist_tid", 1)),
        gap_ns=400),
    "net-stats": Pattern(
        "net-stats", "per-packet SNMP MIB and device counters on receive",
        "include/net/snmp.h SNMP_INC_STATS -> this_cpu_inc, SNMP_ADD_STATS -> this_cpu_add "
        "(two counters and one byte count per packet, modelled)",
        (PatternOp("inc", 8, "ipstats.InReceives"), PatternOp("inc", 8, "ipstats.InDelivers"),
         PatternOp("add", 8, "ipstats.InOctets", 1500)),
        gap_ns=800),
}


def generate(pattern: str | Pattern, units: int, *, nr_cpus: int = 4, seed: int = 0,
             tasks_per_cpu: int = 4) -> pd.DataFrame:
    """A seeded workload of `units` units of `pattern`, spread uniformly over CPUs, with
    exponential gaps of mean gap_ns between units on each CPU. Returns a validated frame."""
    if isinstance(pattern, str):
        if pattern not in PATTERNS:
            raise InputError(f"pattern {shown(pattern)} is unknown; choose one of "
                             f"{', '.join(PATTERNS)}")
        pattern = PATTERNS[pattern]
    if isinstance(units, bool) or not isinstance(units, int) or units < 0:
        raise InputError(f"units {shown(units)} must be a whole number >= 0", field="units")
    check_nr_cpus(nr_cpus)
    # Each unit makes a few rows of ~100 bytes in the frames built on the way.
    check_memory(units * len(pattern.unit) * 400, f"generating {units} units of "
                 f"{pattern.name}", "ask for fewer units")
    rng = np.random.default_rng(seed)
    cpu = rng.integers(0, nr_cpus, units).astype(np.int32)
    gaps = len(pattern.unit) + rng.exponential(pattern.gap_ns, units)
    order = np.argsort(cpu, kind="stable")
    t = np.empty(units)
    t[order] = _cumsum_per_group(gaps[order], cpu[order])
    j = np.empty(units, dtype=np.int64)  # index of each unit on its CPU
    j[order] = _cumsum_per_group(np.ones(units), cpu[order]) - 1
    task = cpu.astype(np.int64) * tasks_per_cpu + rng.integers(0, tasks_per_cpu, units)
    # Every op of every unit at once, as columns; rows sorted by time, then unit, then
    # the op's place in the unit (each row has its own (unit, k): the order is total).
    keeps = [j % pop.every == pop.phase for pop in pattern.unit]
    counts = [int(keep.sum()) for keep in keeps]
    k_all = np.repeat(np.arange(len(pattern.unit)), counts)
    unit_all = np.concatenate([np.flatnonzero(keep) for keep in keeps])
    time_all = np.floor(t[unit_all]).astype(np.int64) + k_all
    order = np.lexsort((k_all, unit_all, time_all))
    unit_all, k_all, time_all = unit_all[order], k_all[order], time_all[order]
    ops = pattern.unit
    j_all = j[unit_all]
    mod = np.array([pop.counter_mod or 1 for pop in ops], dtype=np.int64)[k_all]
    counted = np.array([pop.counter_mod is not None for pop in ops])[k_all]
    base = np.array([pop.value for pop in ops], dtype=np.int64)[k_all]
    old = np.where(counted, j_all % mod, 0)
    # the variables named by ops that happen at all, sorted (as pd.Categorical orders them)
    names = sorted({pop.variable for pop, n in zip(ops, counts, strict=True) if n})
    var_code = np.array([names.index(pop.variable) if pop.variable in names else -1
                         for pop in ops], dtype=np.int16)[k_all]
    return pd.DataFrame({
        "time": time_all, "cpu": cpu[unit_all], "task": task[unit_all],
        "op": pd.Categorical.from_codes(
            np.array([OPS.index(pop.op) for pop in ops], dtype=np.int8)[k_all],
            categories=OPS),
        "size": np.array([pop.size for pop in ops], dtype=np.int16)[k_all],
        "variable": pd.Categorical.from_codes(var_code, categories=pd.Index(names, dtype="str")),
        "value": np.where(counted, old + base, base),
        "flavour": pd.Categorical.from_codes(
            np.array([FLAVOURS.index(pop.flavour) for pop in ops], dtype=np.int8)[k_all],
            categories=FLAVOURS),
        "old": pd.arrays.IntegerArray(old, ~counted),
    })


def _cumsum_per_group(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each new group (groups sorted)."""
    total = np.cumsum(values)
    starts = np.r_[0, np.flatnonzero(np.diff(groups)) + 1]
    offsets = np.zeros_like(total)
    if len(total):
        base = np.r_[0, total[starts[1:] - 1]]
        offsets = np.repeat(base, np.diff(np.r_[starts, len(total)]))
    return total - offsets


def mix(patterns: dict[str, int], *, nr_cpus: int = 4, seed: int = 0) -> pd.DataFrame:
    """Several patterns merged in time: {pattern name: units}."""
    frames = [generate(p, n, nr_cpus=nr_cpus, seed=seed + i)
              for i, (p, n) in enumerate(patterns.items())]
    frame = pd.concat(frames, ignore_index=True).sort_values("time", kind="stable")
    for col, cats in (("op", OPS), ("flavour", FLAVOURS)):
        frame[col] = pd.Categorical(frame[col].astype(str), categories=cats)
    frame["variable"] = pd.Categorical(frame["variable"].astype(str))
    return frame.reset_index(drop=True)


def synthetic(n_events: int, *, nr_cpus: int = 160, seed: int = 0,
              n_variables: int = 64) -> pd.DataFrame:
    """`n_events` random this_cpu ops (uniform over ops and their sizes) for speed tests."""
    rng = np.random.default_rng(seed)
    keys = [(op, size) for op in OPS for size in sizes_for(op) if not (op == "read" and
                                                                     size == 16)]
    pick = rng.integers(0, len(keys), n_events)
    ops = np.array([OPS.index(k[0]) for k in keys])[pick]
    sizes = np.array([k[1] for k in keys], dtype=np.int16)[pick]
    return pd.DataFrame({
        "time": np.arange(n_events, dtype=np.int64),
        "cpu": rng.integers(0, nr_cpus, n_events).astype(np.int32),
        "task": rng.integers(0, nr_cpus * 4, n_events),
        "op": pd.Categorical.from_codes(ops, categories=OPS),
        "size": sizes,
        "variable": pd.Categorical.from_codes(rng.integers(0, n_variables, n_events),
                                              categories=[f"var{i}" for i in
                                                          range(n_variables)]),
        "value": np.ones(n_events, dtype=np.int64),
        "flavour": pd.Categorical.from_codes(np.zeros(n_events, dtype=np.int8),
                                             categories=FLAVOURS),
    })
