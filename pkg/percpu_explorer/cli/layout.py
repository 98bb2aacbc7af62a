"""`layout` (the kernel VA layout of one configuration) and `configs` (every valid
configuration, mainline vmalloc against RFC patch 02/11)."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..kernel import (
    KASAN_MODES,
    compute_layout,
    configs_table,
    fmt_addr,
    fmt_end,
    format_size,
    layout_table,
    layout_to_dict,
)
from .common import (
    TABLE_FORMATS,
    add_config_options,
    add_format,
    add_kernel_option,
    check_format,
    config_from_args,
    one_of,
)


def cmd_layout(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    layout = compute_layout(config_from_args(args))
    if args.format == "json":
        return json.dumps(layout_to_dict(layout), indent=2)
    table = layout_table(layout)
    if args.format == "csv":
        out = table.assign(
            start=table["start"].map(fmt_addr), end=table["end"].map(fmt_end),
            last=table["last"].map(fmt_addr),
        )
        return out.to_csv(index=False).rstrip("\n")
    lines = [f"arm64 kernel {layout.config.kernel}, {layout.config.label()}"
             + (", RFC local percpu (patch 02/11)" if layout.config.local_percpu else ""), ""]
    lines.append(f"  {'Start':<20}{'End':<20}{'Size':>8}\t\tUse")
    lines.append("  " + "-" * 71)
    for row in table.itertuples():
        mark = "   <- problem" if row.problem else ""
        lines.append(f"  {fmt_addr(row.start):<20}{fmt_addr(row.last):<20}"
                     f"{row.size_text:>8}\t\t{row.use}{mark}")
    lines += _findings("Problems", layout.problems) + _findings("Warnings", layout.warnings)
    if not layout.problems:
        lines += ["", "No problems: the layout is sane."]
    return "\n".join(lines)


def _findings(title: str, findings: Sequence[Any]) -> list[str]:
    if not findings:
        return []
    return ["", f"{title}:"] + [f"  - [{f.code}] {f.message}" for f in findings]


def cmd_configs(args: argparse.Namespace) -> str:
    check_format(args.format, TABLE_FORMATS)
    kasan = (args.kasan,) if args.kasan else KASAN_MODES
    frame = configs_table(args.kernel, kasan=kasan)
    if args.format == "json":
        return frame.to_json(orient="records", indent=2)
    if args.format == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    lines = [f"Every valid configuration of kernel {frame['kernel'].iloc[0]}: "
             "mainline vmalloc vs RFC patch 02/11", ""]
    header = (f"{'config':<28}{'PGDIR':>7}{'2*PGDIR':>9}{'vmalloc':>10}"
              f"{'patched':>10}{'lost':>9}  patched layout")
    lines += [header, "-" * len(header)]
    for row in frame.itertuples():
        patched = "n/a" if row.PERCPU_SIZE is None or pd.isna(row.PERCPU_SIZE) else None
        verdict = row.patched_problems if patched else (
            "sane" if row.patched_sane else f"BROKEN ({row.patched_problems})")
        lines.append(
            f"{row.config:<28}{format_size(row.PGDIR_SIZE):>7}"
            f"{patched or format_size(int(row.PERCPU_SIZE)):>9}"
            f"{format_size(row.vmalloc_mainline):>10}"
            f"{patched or _vm(row.vmalloc_patched, row.patched_problems):>10}"
            f"{patched or _lost(row.vmalloc_lost):>9}  {verdict}")
    return "\n".join(lines)


def _vm(size: Any, problems: str) -> str:
    return "negative" if "vmalloc-empty" in problems else format_size(int(size))


def _lost(lost: Any) -> str:
    return "-" if lost is None or pd.isna(lost) else format_size(int(lost))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`layout` and `configs`."""
    p = sub.add_parser("layout", help="the kernel VA layout of one configuration")
    add_config_options(p)
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_layout)

    p = sub.add_parser("configs", help="every valid configuration, mainline vs patched")
    add_kernel_option(p)
    p.add_argument("--kasan", type=one_of(KASAN_MODES), default=None,
                   help=f"only this KASAN mode: {', '.join(KASAN_MODES)} (default: all)")
    add_format(p, TABLE_FORMATS)
    p.set_defaults(func=cmd_configs)
