"""`capture` (a real arm64 kernel's layout, page tables and percpu trace, under QEMU
or on this machine) and `compare` (the model held against a capture bundle)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from ..captures import (
    DEFAULT_KERNEL_PACKAGE,
    DEFAULT_WORK,
    CaptureError,
    CaptureParseError,
    QemuPlan,
    capture_local,
    capture_qemu,
    capture_variant,
    compare,
    comparison_to_dict,
    failed_boot_finding,
    failed_boot_table,
    format_comparison,
    format_value,
    load_bundle,
    parse_variant,
    save_bundle,
)
from ..errors import InputError
from ..kernel import NR_CPUS_RANGE
from .common import TABLE_FORMATS, add_format, check_format, int_in, matching, path_text

# QEMU's -cpu: a model name with optional properties (max, cortex-a72, max,lpa2=off).
QEMU_CPU = matching(r"[A-Za-z0-9][A-Za-z0-9._,=+-]{0,63}", "a QEMU -cpu model, e.g. max or "
                    "cortex-a72")
# A Debian package name (Debian Policy 5.6.1): lower case, digits, + - and dots.
DEBIAN_PACKAGE = matching(r"[a-z0-9][a-z0-9.+-]{1,99}", "a Debian package name, e.g. "
                          "linux-image-6.12.117+deb12-arm64-unsigned")


def add_capture_options(parser: argparse.ArgumentParser) -> None:
    """Options of `capture`: where from (--qemu or --local), the boot, the output."""
    plan = QemuPlan()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--qemu", action="store_true",
                       help="boot Debian's arm64 kernel under qemu-system-aarch64")
    where.add_argument("--local", action="store_true",
                       help="read this machine's files (arm64, as root)")
    parser.add_argument("--out", type=path_text("--out"), required=True,
                        help="bundle folder to write")
    parser.add_argument("--cpu", type=QEMU_CPU, default=plan.cpu,
                        help="QEMU -cpu: max (52-bit VA, LPA2) or e.g. cortex-a72 (48-bit)")
    parser.add_argument("--smp", type=int_in(1, NR_CPUS_RANGE[1], "QEMU -smp CPUs, at most "
                                              "NR_CPUS"), default=plan.smp,
                        help="QEMU -smp CPU count")
    parser.add_argument("--memory", type=int_in(128, 1 << 20, "guest MiB"),
                        default=plan.memory_mb, help="guest MiB")
    parser.add_argument("--kaslr", action=argparse.BooleanOptionalAction, default=True,
                        help="boot with KASLR (--no-kaslr adds nokaslr)")
    parser.add_argument("--cgroups", type=int_in(0, 100_000, "memory cgroups"),
                        default=plan.cgroups,
                        help="memory cgroups the workload creates and removes (0: none)")
    parser.add_argument("--workers", type=int_in(1, 64, "workload shells"), default=plan.workers,
                        help="shells that make and remove the cgroups at once (allocations "
                             "of several CPUs race; default 1)")
    parser.add_argument("--kernel-package", type=DEBIAN_PACKAGE, default=DEFAULT_KERNEL_PACKAGE,
                        help="Debian arm64 kernel package to fetch")
    parser.add_argument("--kernel-image", type=path_text("--kernel-image"), default=None,
                        help="a locally built arm64 Image instead of the package")
    parser.add_argument("--kernel-config", type=path_text("--kernel-config"), default=None,
                        help=".config of --kernel-image")
    parser.add_argument("--rebuild", action="store_true",
                        help="first rebuild the package's kernel from Debian's linux-source with "
                             "CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS (about half an hour)")
    parser.add_argument("--build", type=_variant_text, default=None, metavar="VARIANT",
                        help="first build linux-source-6.12 for PAGESIZE-VABITS (e.g. 16k-47, "
                             "64k-52) from the package's config trimmed to what a capture "
                             "needs, and boot that kernel")
    parser.add_argument("--patched", action="store_true",
                        help="with --build: apply RFC patch 02/11 adapted to 6.12 "
                             "(data/patches/)")
    parser.add_argument("--timeout", type=int_in(1, 7 * 86400, "seconds"),
                        default=plan.timeout_s,
                        help="seconds the boot may take")
    parser.add_argument("--keep-failed-boot", action="store_true",
                        help="a boot that fails (a panic, a hang) still saves a bundle: how it "
                             "failed, and the console with every kernel message (loglevel=8)")
    parser.add_argument("--log-exceptions", action="store_true",
                        help="with --keep-failed-boot: QEMU logs every exception the guest "
                             "takes, and a boot faulting in a loop (before the kernel has "
                             "exception vectors or a console) stops at once; the bundle keeps "
                             "the log's first lines and CPU 0's registers")
    parser.add_argument("--work", type=path_text("--work"), default=str(DEFAULT_WORK),
                        help="scratch folder")


def _variant_text(text: str) -> str:
    try:
        parse_variant(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def _progress(message: str) -> None:
    print(message, file=sys.stderr)


def cmd_capture(args: argparse.Namespace) -> str:
    try:
        if args.local:
            bundle = capture_local(progress=_progress)
        else:
            plan = QemuPlan(
                cpu=args.cpu, smp=args.smp, memory_mb=args.memory, kaslr=args.kaslr,
                cgroups=args.cgroups, workers=args.workers, timeout_s=args.timeout,
                kernel_package=args.kernel_package,
                kernel_image=Path(args.kernel_image) if args.kernel_image else None,
                kernel_config=Path(args.kernel_config) if args.kernel_config else None,
                rebuild=args.rebuild, keep_failed=args.keep_failed_boot,
                log_exceptions=args.log_exceptions)
            if args.build:
                bundle = capture_variant(parse_variant(args.build, args.patched), plan,
                                         Path(args.work), progress=_progress)
            elif args.patched:
                raise InputError("argument --patched: needs --build VARIANT (the kernel to "
                                 "patch and build), e.g. --build 4k-48 --patched")
            else:
                bundle = capture_qemu(plan, Path(args.work), progress=_progress)
    except CaptureError as exc:
        raise ValueError(f"capture failed: {exc}") from None
    try:
        folder = save_bundle(bundle, args.out)
    except OSError as exc:
        raise InputError(f"argument --out: cannot write the bundle to {args.out}: "
                         f"{exc.strerror or exc}") from None
    absent = bundle.meta.get("absent") or []
    if bundle.meta.get("boot_failed"):
        how = bundle.meta.get("boot_failure") or {}
        line = how.get(str(how.get("how"))) if isinstance(how, dict) else None
        return (f"the boot failed ({how.get('how') if isinstance(how, dict) else '?'}"
                + (f": {line}" if line else "") + f"); saved its console in {folder}")
    return (f"saved capture bundle {folder} ({', '.join(sorted(bundle.texts))})"
            + (f"; absent: {', '.join(absent)}" if absent else ""))


def cmd_compare(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    try:
        bundle = load_bundle(args.bundle)
        if bundle.meta.get("boot_failed"):
            return _failed_boot(bundle, args.format)
        result = compare(bundle)
    except CaptureParseError as exc:  # FILE:LINE of the bundle's text
        folder = Path(args.bundle)
        name = next(iter(sorted(folder.glob(f"{exc.source}.txt*"))), folder / exc.source)
        raise InputError(f"{name}:{exc.line}: {exc.why}: {exc.text[:120]!r}") from None
    except (FileNotFoundError, InputError) as exc:
        if str(exc).startswith(str(args.bundle)):
            raise InputError(str(exc)) from None
        raise InputError(f"{args.bundle}: {exc}") from None
    if args.format == "json":
        return json.dumps(comparison_to_dict(result), indent=2)
    rows = result.layout_rows.assign(
        model=result.layout_rows["model"].map(_capture_value),
        real=result.layout_rows["real"].map(_capture_value))
    if args.format == "csv":
        return rows.to_csv(index=False).rstrip("\n")
    return format_comparison(result)


def _failed_boot(bundle: Any, fmt: str) -> str:
    """A boot that failed: the model's problem list beside what the kernel printed."""
    finding = failed_boot_finding(bundle)
    table = failed_boot_table(bundle)
    if fmt == "json":
        return json.dumps({"finding": finding.answer, "numbers": dict(finding.numbers),
                           "problems": table.to_dict("records")}, indent=2, default=str)
    if fmt == "csv":
        return table.to_csv(index=False).rstrip("\n")
    rows = "\n".join(f"  {r['problem']}: model: {r['model']}\n    real kernel: "
                     f"{r['real kernel']}" for r in table.to_dict("records"))
    return f"{finding.text()}\n{rows}"


def _capture_value(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else format_value(value)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`capture` and `compare`."""
    p = sub.add_parser("capture", help="capture a real arm64 kernel (QEMU or this machine)")
    add_capture_options(p)
    p.set_defaults(func=cmd_capture)

    p = sub.add_parser("compare", help="hold the model against a capture bundle")
    p.add_argument("bundle", help="capture bundle folder, e.g. data/captures/<name>")
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_compare)
