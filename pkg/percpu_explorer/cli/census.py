"""`census`: count every this_cpu site of Debian's arm64 kernel under real workloads
(`--qemu`), or show a census bundle; `cost --census BUNDLE` prices one (`census_cost_text`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..captures import (
    CENSUS_CPUS,
    DEFAULT_CENSUS_WORK,
    DEFAULT_KERNEL_PACKAGE,
    WORKLOADS,
    CaptureError,
    CensusPlan,
    census_check,
    census_workload,
    load_census,
    phase_summary,
    run_census,
    save_census,
    top_functions,
)
from ..claims import census_review
from ..errors import InputError
from ..thiscpu import write_workload
from .captures import DEBIAN_PACKAGE
from .common import TABLE_FORMATS, add_format, check_format, int_in, one_of, path_text


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_census(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    if args.qemu:
        if not args.out:
            raise InputError("argument --out: --qemu needs --out DIR (the bundle folder)")
        if args.bundle:
            raise InputError(f"give --qemu or a bundle, not both (got {args.bundle!r})")
        workloads = tuple(args.workload) if args.workload else tuple(WORKLOADS)
        plan = CensusPlan(cpu=args.cpu, smp=args.smp, memory_mb=args.memory, vhe=args.vhe,
                          workloads=workloads, timeout_s=args.timeout,
                          kernel_package=args.kernel_package)
        try:  # refuse an unwritable --out before minutes of emulation
            Path(args.out).mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as exc:
            raise InputError(f"argument --out: cannot create {args.out!r}: "
                             f"{getattr(exc, 'strerror', None) or exc}") from None
        try:
            bundle = run_census(plan, Path(args.work), progress=_progress)
        except CaptureError as exc:
            raise ValueError(f"census failed: {exc}") from None
        try:
            folder = save_census(bundle, args.out)
        except OSError as exc:
            raise InputError(f"argument --out: cannot write the bundle to {args.out}: "
                             f"{exc.strerror or exc}") from None
        t = bundle.meta["timings_s"]
        times = ", ".join(f"{k} {v:.1f}s" for k, v in t.items())
        return f"saved census bundle {folder} ({len(bundle.sites)} sites; {times})\n" + \
            _show(load_census(folder), "table")
    if not args.bundle:
        raise InputError("give a census bundle (a folder or a shipped name) or --qemu --out DIR")
    if args.to_workload:
        return _to_workload(args)
    return _show(load_census(args.bundle), args.format)


def _to_workload(args: argparse.Namespace) -> str:
    """`census BUNDLE --to-workload PHASE [--out FILE]`: one phase as a counted workload
    file (CSV, or Parquet by suffix), which `cost FILE` prices; CSV on stdout without
    --out."""
    frame = census_workload(args.bundle, args.to_workload)
    if not args.out:
        return frame.to_csv(index=False).rstrip("\n")
    out = Path(args.out)
    if out.suffix not in (".csv", ".parquet"):
        raise InputError(f"argument --out: {args.out!r} must end in .csv or .parquet (the "
                         "workload file to write)")
    try:
        write_workload(frame, out)
    except OSError as exc:
        raise InputError(f"argument --out: cannot write {args.out}: "
                         f"{exc.strerror or exc}") from None
    return (f"wrote {frame.attrs['source']} to {out}: {len(frame)} rows, "
            f"{int(frame['count'].sum()):,} ops counted; price it with "
            f"`percpu-explorer cost {out}`")


def _readable(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    for column in out.columns:
        if column.endswith("share"):
            out[column] = out[column].map(lambda v: f"{100 * v:.2f}%")
        elif column.endswith("seconds"):
            out[column] = out[column].map(lambda v: f"{v:.1f}")
    return out


def _show(bundle: Any, fmt: str) -> str:
    summary = phase_summary(bundle)
    checks = census_check(bundle)
    top = top_functions(bundle)
    if fmt == "json":
        return json.dumps({"name": bundle.name, "meta": bundle.meta,
                           "phases": summary.to_dict("records"),
                           "checks": checks.to_dict("records"),
                           "top_functions": top.to_dict("records")}, indent=2, default=str)
    if fmt == "csv":
        return summary.to_csv(index=False).rstrip("\n")
    m = bundle.meta
    lines = [f"census {bundle.name}: {m['kernel_release']} ({m['preemption']}), QEMU "
             f"{m['qemu_version'].split()[3] if len(m['qemu_version'].split()) > 3 else ''} "
             f"-cpu {m['cpu']}{' VHE' if m.get('vhe') else ''}, {m['smp']} CPUs; "
             f"{len(bundle.sites)} sites ran", "",
             "Per phase (measured; span = instructions from the offset read to the access):",
             _readable(summary.drop(columns=["description"])).to_string(index=False), "",
             "Held to the kernel's own counters:",
             checks.to_string(index=False), "",
             "Top functions (every workload phase):",
             _readable(top).to_string(index=False)]
    return "\n".join(lines)


def census_cost_text(args: argparse.Namespace, core: Any) -> str:
    """`cost --census BUNDLE`: the census's op counts priced under each scheme and world
    on `core` (a core profile)."""
    review = census_review(args.census, core=core, cpi=args.cpi)
    table = review.answer_table()
    if args.format == "json":
        return json.dumps({"finding": review.finding().text(),
                           "numbers": dict(review.finding().numbers),
                           "answer": table.to_dict("records"),
                           "savings": review.savings.to_dict("records")}, indent=2, default=str)
    shown = review.shown_table()
    savings = review.savings[["phase", "world", "local", "ops", "insns_today", "insns_local",
                              "insns_saved"]]
    return "\n".join([
        f"census {review.bundle.name}: " + review.finding().text(), "",
        "Per workload (shares: measured / computed from the counts; cycles: estimates, "
        f"{review.cpi:g} cycle per kernel instruction):",
        shown.to_string(index=False), "",
        "Instructions per world and local-scheme variant (variable: ops.DEFAULT_LOCAL_SCHEME; "
        "constant: its constant-offset variant):",
        savings.to_string(index=False)])


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`census`."""
    plan = CensusPlan()
    p = sub.add_parser("census", help="count every this_cpu site of a real kernel under "
                                      "workloads (QEMU plugin), or show a census bundle")
    p.add_argument("bundle", nargs="?", default=None,
                   help="census bundle to show: a folder or a shipped name (data/census/)")
    p.add_argument("--qemu", action="store_true",
                   help="boot Debian's arm64 kernel under QEMU with the census plugin")
    p.add_argument("--out", type=path_text("--out"), default=None, help="bundle folder to write")
    p.add_argument("--cpu", type=one_of(CENSUS_CPUS), default=plan.cpu,
                   help="QEMU -cpu: max (LSE atomics) or cortex-a57 (LL/SC)")
    p.add_argument("--vhe", action="store_true",
                   help="-M virt,virtualization=on: the kernel runs at EL2 (VHE, cpu max)")
    p.add_argument("--smp", type=int_in(1, 8, "QEMU -smp CPUs (1-8: one host thread runs "
                                        "them all)"), default=plan.smp, help="QEMU -smp")
    p.add_argument("--memory", type=int_in(256, 16384, "guest MiB"), default=plan.memory_mb,
                   help="guest MiB")
    p.add_argument("--workload", type=one_of(tuple(WORKLOADS)), action="append", default=None,
                   help="a workload to run (repeat; default all: " + ", ".join(WORKLOADS) + ")")
    p.add_argument("--kernel-package", type=DEBIAN_PACKAGE, default=DEFAULT_KERNEL_PACKAGE,
                   help="Debian arm64 kernel package to fetch")
    p.add_argument("--timeout", type=int_in(1, 7 * 86400, "seconds"), default=plan.timeout_s,
                   help="seconds each boot may take")
    p.add_argument("--work", type=path_text("--work"), default=str(DEFAULT_CENSUS_WORK),
                   help="scratch folder")
    p.add_argument("--to-workload", default=None, metavar="PHASE",
                   help="with a bundle: write one phase as a counted workload file (--out "
                        "FILE.csv or .parquet; CSV on stdout without) for `cost`")
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_census)
