"""`ops` (this_cpu_*() instruction sequences and costs per scheme), `interleave`
(outcomes of an op at every preemption point) and `cost`, alias `replay` (what a
this_cpu workload costs under each scheme)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import pandas as pd

from ..captures import census_workload
from ..errors import InputError, one_line
from ..kernel import NR_CPUS_RANGE, check_preempt
from ..thiscpu import (
    ATOMICS,
    CORE_PROFILES,
    DEFAULT_CORE,
    DEFAULT_PREEMPT,
    DEFAULT_VHE,
    FLAVOURS,
    LSE_EXECUTION,
    NOTHING_TO_PRICE,
    OPS,
    SCHEMES,
    LocalScheme,
    SchemeVariant,
    core_profile,
    core_profile_from_dict,
    cost_to_dict,
    default_size,
    explore,
    format_cycles,
    op_cost,
    op_pair,
    op_sequence,
    ops_table,
    preemption_points,
    price_workload,
    read_workload,
    resolve_workload,
    reviewer_view,
    safety_table,
    sizes_for,
    variants_for,
)
from .census import census_cost_text
from .common import (
    PROG,
    TABLE_FORMATS,
    add_format,
    add_kernel_option,
    check_format,
    float_in,
    int_in,
    list_of,
    one_of,
)

# this_cpu op sizes in bytes (cmpxchg128: 16); the op decides which it takes.
OP_SIZE = int_in(1, 16, "bytes: 1, 2, 4, 8, or 16 for cmpxchg128")

COST_FORMATS = ("table", "json")


def _choices(value: str | None, choices: tuple[str, ...]) -> tuple[str, ...]:
    return choices if value is None else tuple(v.strip() for v in value.split(","))


def core_from_arg(value: str) -> Any:
    """--core: a named profile, or a JSON file (.json) with a user profile."""
    if value in CORE_PROFILES or not value.endswith(".json"):
        if value not in CORE_PROFILES:
            raise InputError(f"argument --core: {value!r} is unknown; choose one of "
                             f"{', '.join(CORE_PROFILES)} or a .json file of a profile")
        return core_profile(value)
    try:
        with open(value, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError, RecursionError) as exc:  # JSON and UTF-8 errors too
        raise InputError(f"argument --core: {value}: cannot read a core profile (a JSON "
                         f"object): {one_line(str(exc)) or type(exc).__name__}") from None
    try:
        return core_profile_from_dict(data)
    except ValueError as exc:
        raise InputError(f"argument --core: {value}: {exc}") from None


def add_ops_options(p: argparse.ArgumentParser) -> None:
    """Preemption model, kernel, core profile and what the local scheme is assumed to be."""
    p.add_argument("--preempt", default=DEFAULT_PREEMPT,
                   help="preemption model the kernel offers: none, voluntary, full, rt, lazy "
                        "before v7.0 (lazy from 6.16, rt from 6.12); full, lazy or rt from "
                        f"v7.0 (default {DEFAULT_PREEMPT})")
    p.add_argument("--vhe", action=argparse.BooleanOptionalAction, default=DEFAULT_VHE,
                   help="the kernel runs at EL2 with VHE, reading the CPU offset from "
                        "tpidr_el2 (a bare-metal host); --no-vhe: tpidr_el1 (a guest)")
    add_kernel_option(p)
    p.add_argument("--core", default=DEFAULT_CORE,
                   help="core profile: neoverse-n1, neoverse-v2, ampereone or a JSON file")
    p.add_argument("--lse-execution", type=one_of(LSE_EXECUTION), default="auto",
                   help="auto, near or far")
    p.add_argument("--resched-probability", type=float_in(0, 1, "a share"), default=None,
                   help="share of preempt_enable_notrace() calls that reschedule")
    p.add_argument("--local-offset", type=one_of(("variable", "constant")), default="variable",
                   help="assumed local address formation: variable or constant")
    p.add_argument("--local-bracket", action="store_true",
                   help="assume the local scheme keeps today's preemption bracket")
    p.add_argument("--local-raw-cpu", action="store_true",
                   help="assume raw_cpu_*/__this_cpu_* also use the local address")


def local_from_args(args: argparse.Namespace) -> LocalScheme:
    """The assumed local scheme of --local-offset, --local-bracket and --local-raw-cpu;
    checks first that --preempt is a model the --kernel offers (one line otherwise)."""
    check_preempt(args.preempt, args.kernel)
    return LocalScheme(offset=args.local_offset, bracket=args.local_bracket,
                       raw_cpu_local=args.local_raw_cpu)


def _whole(frame: pd.DataFrame, columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Estimated cycle columns (default: every float column) in whole cycles, the
    precision the estimates have."""
    if columns is None:
        columns = tuple(c for c in frame if pd.api.types.is_float_dtype(frame[c]))
    return frame.assign(**{c: frame[c].round(0).astype("Int64") for c in columns if c in frame})


_ESTIMATE_NOTE = ("cycles are estimates, shown in whole cycles: they rest on the estimated "
                  "costs of {classes} (see the core profile's sources)")


def cmd_ops(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    core = core_from_arg(args.core)
    local = local_from_args(args)
    schemes = _choices(args.scheme, SCHEMES)
    atomics = _choices(args.atomics, ATOMICS[:2])
    if args.op is None:
        variants = tuple(SchemeVariant(s, a) for s in schemes for a in atomics)
        frame = ops_table(flavour=args.flavour, preempt=args.preempt, kernel=args.kernel,
                          core=core, lse_execution=args.lse_execution, variants=variants,
                          local=local, resched_probability=args.resched_probability,
                          vhe=args.vhe)
        frame = _whole(frame, ("cycles", "bracket_cycles", "offset_cycles"))
        if args.format == "json":
            return frame.to_json(orient="records", indent=2)
        if args.format == "csv":
            return frame.to_csv(index=False).rstrip("\n")
        wide = frame.pivot_table(index=["op", "size"], columns="variant", values="cycles",
                                 sort=False)
        classes = sorted({c for e in frame["estimated"] for c in e.split(", ") if c})
        return (f"cycles per op, core {core.name}, {args.flavour}_*, preempt={args.preempt}, "
                f"kernel {args.kernel}, offset in {'tpidr_el2 (VHE)' if args.vhe else 'tpidr_el1'}"
                f"\n{_ESTIMATE_NOTE.format(classes=', '.join(classes) or 'no class')}"
                f"\n{local.describe()}\n\n" + wide.round(0).astype(int).to_string())
    if args.op not in OPS:
        raise ValueError(f"op {args.op!r} is unknown; choose one of {', '.join(OPS)}")
    sizes = sizes_for(args.op) if args.size is None else (args.size,)
    rows, blocks = [], [local.describe(), ""]
    for size in sizes:
        for scheme in schemes:
            for atom in atomics:
                seq = op_sequence(args.op, size, flavour=args.flavour, scheme=scheme,
                                  atomics=atom, preempt=args.preempt, kernel=args.kernel,
                                  local=local, vhe=args.vhe)
                cost = op_cost(seq, core, lse_execution=args.lse_execution,
                               resched_probability=args.resched_probability)
                rows.append({"op": args.op, "size": size, "flavour": args.flavour,
                             "scheme": scheme, "atomics": atom, "preempt": args.preempt,
                             "kernel": seq.kernel, "vhe": seq.vhe,
                             "offset_register": seq.offset_register, "core": core.name,
                             "instructions": seq.texts(),
                             "cycles": round(cost.cycles) if cost.is_estimate else cost.cycles,
                             "estimate": cost.is_estimate, "estimated": list(cost.estimated),
                             "unknown": list(seq.unknown), "notes": list(seq.notes)})
                rare = (f"; the rare preempt_schedule_notrace() path adds "
                        f"{cost.resched:.1g} on average" if cost.resched else "")
                estimated = (f" ({', '.join(cost.estimated)} estimated)"
                             if cost.is_estimate else "")
                blocks += [seq.format(), f"  cost on {core.name}: "
                           f"{format_cycles(cost.cycles, cost.is_estimate)}{estimated}{rare}",
                           ""]
    if args.format == "json":
        return json.dumps(rows, indent=2)
    if args.format == "csv":
        joined = {k: (lambda f, k=k: f[k].map("; ".join))
                  for k in ("instructions", "estimated", "unknown", "notes")}
        frame = pd.DataFrame(rows).assign(**joined)
        return frame.to_csv(index=False).rstrip("\n")
    return "\n".join(blocks).rstrip("\n")


def cmd_interleave(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    local = local_from_args(args)
    if args.all:
        table = safety_table(kernel=args.kernel, local=local)
        if args.format == "json":
            return table.to_json(orient="records", indent=2)
        if args.format == "csv":
            return table.to_csv(index=False).rstrip("\n")
        return (f"Exhaustive verdicts of an op pair on 2 CPUs (<= 1 migration per task), "
                f"kernel {args.kernel}: PREEMPT_FULL without and PREEMPT_NONE with an "
                "interrupt on CPU0.\n"
                + local.describe() + "\n\n" + table.to_string(index=False))
    size = args.size if args.size is not None else default_size(args.op)
    common = dict(flavour=args.flavour, scheme=args.scheme, atomics=args.atomics,
                  preempt=args.preempt, kernel=args.kernel, local=local, vhe=args.vhe)
    seq = op_sequence(args.op, size, **common)
    points = preemption_points(args.op, size, **common)
    result = explore(op_pair(args.op, size, irq=args.irq, **common))
    if args.format == "json":
        return json.dumps({"sequence": seq.texts(), "points": points.to_dict("records"),
                           "safe": result.safe, "verdicts": dict(result.verdicts),
                           "states": result.states,
                           "examples": {k: list(map(str, v)) for k, v in result.examples.items()},
                           "assumption": local.describe()}, indent=2)
    if args.format == "csv":
        return points.to_csv(index=False).rstrip("\n")
    lines = [seq.format(), "", local.describe() if args.scheme == "local" else "",
             "Each point: (migrate) A is preempted there, B runs the same op on CPU0, A "
             "resumes on CPU1; (irq) an interrupt on CPU0 runs this_cpu_add(v, 100) there.",
             "Copies start at v@CPU0=0x10, v@CPU1=0x20 (cmpxchg family: both = --old).", "",
             points.to_string(index=False), "",
             "Exhaustive: tasks A (CPU0) and B (CPU1), one op each, every schedule with up to "
             "one migration per task" + (" and an interrupt on CPU0" if args.irq else "") + ":",
             "  " + result.summary()]
    for verdict, path in result.examples.items():
        if verdict != "ok":
            lines += [f"  a schedule giving '{verdict}':"] + [f"    {p}" for p in path]
    return "\n".join(lines)


def cmd_cost(args: argparse.Namespace) -> str:
    check_format(args.format, COST_FORMATS)
    if args.census:
        if args.workload:
            raise InputError(f"give a workload file or --census, not both (got "
                             f"{args.workload!r} and --census {args.census!r})")
        if args.phase is None:
            return census_cost_text(args, core_from_arg(args.core))
    elif args.phase is not None:
        raise InputError(f"--phase {args.phase!r} needs --census BUNDLE (a phase of a census)")
    elif not args.workload:
        raise InputError("a workload file is required (or --census BUNDLE)")
    core = core_from_arg(args.core)
    local = local_from_args(args)
    if args.census:  # one census phase as a counted workload
        workload = census_workload(args.census, args.phase)
        label = workload.attrs["source"]
    else:
        workload = read_workload(args.workload, nr_cpus=args.nr_cpus)
        label = args.workload
    if len(workload) == 0:
        raise ValueError(f"{label}: {NOTHING_TO_PRICE}")

    def progress(done: int, total: int) -> None:
        if args.progress:
            print(f"{PROG}: replayed {done}/{total} events", file=sys.stderr)

    # Before v6.9 the patch cannot apply: only today's scheme is priced, no saving.
    variants = variants_for(args.kernel)
    result = price_workload(workload, core, preempt=args.preempt, kernel=args.kernel,
                            lse_execution=args.lse_execution, local=local,
                            resched_probability=args.resched_probability, progress=progress,
                            vhe=args.vhe, variants=variants, nr_cpus=args.nr_cpus)
    view = (reviewer_view(result, ghz=args.ghz, sys_share=args.sys_share)
            if any(v.scheme == "local" for v in variants) else None)
    semantic = ({s: resolve_workload(workload, s, local=local, progress=progress)
                 for s in ("today", "local")} if args.semantic else None)
    if args.format == "json":
        return json.dumps(cost_to_dict(result, view, semantic), indent=2, default=str)
    t = result.totals
    if result.counted:
        lines = [f"{label}: {result.events:,} this_cpu ops counted (all CPUs together, no "
                 "time span)", "", "Assumptions:"]
        lines += [f"  - {a}" for a in workload.attrs.get("assumptions", ())]
    else:
        lines = [f"{label}: {result.events} this_cpu ops on {result.nr_cpus} CPUs over "
                 f"{result.duration_ns} ns", "", "Assumptions:"]
    lines += [f"  - {a}" for a in result.settings.assumptions()]
    note = _ESTIMATE_NOTE.format(classes=", ".join(result.settings.estimated) or "no class")
    lines += ["", f"Per scheme ({note}):",
              _whole(t[["variant", "cycles", "cycles_per_op", "saving_cycles", "saving_pct"]])
              .to_string(index=False), "", "Per op:",
              _whole(result.per_op).to_string(index=False), "",
              *(() if result.counted else
                ("Per CPU:", _whole(result.per_cpu).to_string(index=False), "")),
              "Per variable:",
              _whole(result.per_variable.sort_values("ops", ascending=False)
                     if result.counted else result.per_variable).to_string(index=False), "",
              view.text() if view is not None else
              f"No local scheme priced: local percpu (RFC 02/11) needs kernel v6.9 or later "
              f"(the layout it changes), not {args.kernel}."]
    if semantic:
        lines.append("")
        for name, sem in semantic.items():
            verdict = "final per-CPU values equal the reference" if sem.ok else "PROBLEMS"
            lines.append(f"Semantic replay ({name}): {verdict}")
            lines += [f"  - {p}" for p in sem.problems[:20]]
    return "\n".join(lines)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`ops`, `interleave` and `cost` (alias `replay`)."""
    p = sub.add_parser("ops", help="this_cpu_*() instruction sequences and costs per scheme")
    p.add_argument("--op", type=one_of(OPS), default=None,
                   help="one op (default: a table of all ops)")
    p.add_argument("--size", type=OP_SIZE, default=None, help="bytes: 1, 2, 4, 8 (16: cmpxchg128)")
    p.add_argument("--flavour", type=one_of(FLAVOURS), default="this_cpu",
                   help="this_cpu, __this_cpu or raw_cpu")
    p.add_argument("--scheme", type=list_of(SCHEMES), default=None,
                   help="today, local or both (default both)")
    p.add_argument("--atomics", type=list_of(ATOMICS), default=None,
                   help="lse, llsc or plain (default lse,llsc)")
    add_ops_options(p)
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_ops)

    p = sub.add_parser("interleave", help="outcomes of an op at every preemption point")
    p.add_argument("--op", type=one_of(OPS), default="add", help="the op (default add)")
    p.add_argument("--size", type=OP_SIZE, default=None, help="bytes (default 8; 16: cmpxchg128)")
    p.add_argument("--flavour", type=one_of(FLAVOURS), default="this_cpu",
                   help="this_cpu, __this_cpu or raw_cpu")
    p.add_argument("--scheme", type=one_of(SCHEMES), default="today", help="today or local")
    p.add_argument("--atomics", type=one_of(ATOMICS), default="lse", help="lse, llsc or plain")
    p.add_argument("--irq", action="store_true",
                   help="add an interrupt on CPU0 to the exhaustive search")
    p.add_argument("--all", action="store_true",
                   help="the verdict table of every op (claim 9; a few seconds)")
    add_ops_options(p)
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_interleave)

    p = sub.add_parser("cost", aliases=["replay"],
                       help="cost of a this_cpu workload under each scheme")
    p.add_argument("workload", nargs="?", default=None,
                   help="workload file (.csv or .parquet), see data/workloads/")
    p.add_argument("--census", default=None,
                   help="price a census bundle's real op counts instead (a folder or a shipped "
                        "name in data/census/) under every scheme and preemption model")
    p.add_argument("--phase", default=None,
                   help="with --census: price one phase (a workload such as page_faults) "
                        "as a counted workload, like a workload file")
    p.add_argument("--cpi", type=float_in(0, 100, "cycles per kernel instruction",
                                          low_open=True), default=1.0,
                   help="with --census: cycles per kernel instruction (an estimate)")
    p.add_argument("--nr-cpus", type=int_in(1, NR_CPUS_RANGE[1], "CPUs of the workload"),
                   default=None, help="CPUs allowed in the file")
    p.add_argument("--semantic", action="store_true",
                   help="also replay values through the allocator and page tables")
    p.add_argument("--ghz", type=float_in(0, 100, "GHz", low_open=True), default=3.0,
                   help="clock for the reviewer's view")
    p.add_argument("--sys-share", type=float_in(0, 1, "a share", low_open=True), default=1.0,
                   help="share of the workload's CPU time spent in the kernel")
    p.add_argument("--progress", action="store_true", help="report progress on stderr")
    add_ops_options(p)
    add_format(p, COST_FORMATS)
    p.set_defaults(func=cmd_cost)
