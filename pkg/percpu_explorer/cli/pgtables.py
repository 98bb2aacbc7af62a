"""`walk` (one address through one CPU's page tables) and `pgtables` (page-table
memory of the percpu first chunk, mainline against per-CPU roots)."""

from __future__ import annotations

import argparse
import json

from ..kernel import (
    NR_CPUS_RANGE,
    build_first_chunk,
    first_chunk_unit,
    first_chunk_va,
    fmt_addr,
    format_size,
    format_walk,
    parse_addr,
    pgtable_cost,
    pgtable_cost_summary,
    unit_addresses,
)
from .common import (
    add_config_options,
    add_format,
    add_unit_size_option,
    check_format,
    config_from_args,
    int_in,
    unit_size,
)

PGTABLE_FORMATS = ("table", "json")


def cmd_walk(args: argparse.Namespace) -> str:
    check_format(args.format, PGTABLE_FORMATS)
    cfg = config_from_args(args)
    va = parse_addr(args.address, name="address")
    size = unit_size(args.unit_size)
    kpt = build_first_chunk(cfg, unit_size=size)
    walk = kpt.walk(args.cpu, va)
    if args.format == "json":
        steps = [{**s.__dict__, "table_pa": fmt_addr(s.table_pa), "entry_pa": fmt_addr(s.entry_pa),
                  "descriptor": fmt_addr(s.descriptor),
                  "next_pa": None if s.next_pa is None else fmt_addr(s.next_pa)}
                 for s in walk.steps]
        return json.dumps({"config": cfg.to_dict(), "cpu": walk.cpu, "va": fmt_addr(walk.va),
                           "pa": None if walk.pa is None else fmt_addr(walk.pa),
                           "fault_level": walk.fault_level, "mapping_size": walk.mapping_size,
                           "root_pa": fmt_addr(walk.root_pa), "ttbr1": fmt_addr(walk.ttbr1),
                           "steps": steps}, indent=2)
    head = [f"arm64 kernel {cfg.kernel}, {cfg.label()}, {kpt.nr_cpus} CPUs, "
            + ("per-CPU roots (RFC patches 01-02/11)" if cfg.local_percpu
               else "one shared root (mainline)")]
    unit = first_chunk_unit(cfg.page_size, size)
    head.append(f"first chunk ({format_size(unit)} per CPU): CPU N's unit in the linear "
                f"map at {fmt_addr(unit_addresses(kpt, 0, unit).linear)} + N * "
                f"{format_size(unit)}")
    if cfg.local_percpu:
        local, glob = first_chunk_va(kpt, unit)
        head.append(f"  local (this_cpu) {fmt_addr(local)}-{fmt_addr(local + unit)}; "
                    f"global {fmt_addr(glob)} + N * {format_size(unit)}")
    return "\n".join([*head, "", format_walk(walk)])


def cmd_pgtables(args: argparse.Namespace) -> str:
    check_format(args.format, PGTABLE_FORMATS)
    cfg = config_from_args(args)
    unit = unit_size(args.unit_size)
    cost = pgtable_cost(cfg, unit_size=unit)
    summary = pgtable_cost_summary(cost)
    if args.format == "json":
        return json.dumps({"config": cfg.replace(local_percpu=False).to_dict(),
                           "nr_cpus": cfg.nr_cpus, "unit_size": unit,
                           "levels": cost.to_dict(orient="records"),
                           "summary": summary.__dict__},
                          indent=2)
    lines = [f"Page-table memory of the percpu first chunk: {cfg.label()}, "
             f"{cfg.nr_cpus} CPUs, {format_size(unit)} per CPU", ""]
    header = f"{'model':<10}{'level':<7}{'shared':>8}{'private':>9}{'per CPU':>9}{'bytes':>10}"
    lines += [header, "-" * len(header)]
    for row in cost.itertuples():
        lines.append(f"{row.model:<10}{row.level:<7}{row.shared_pages:>8}{row.private_pages:>9}"
                     f"{row.private_per_cpu:>9.2f}{format_size(int(row.bytes)):>10}")
    lines += ["",
              f"mainline: {summary.mainline_pages} pages "
              f"({format_size(summary.mainline_bytes)}); patched: "
              f"{summary.patched_pages} pages ({format_size(summary.patched_bytes)}); "
              f"extra {format_size(summary.extra_bytes)}"]
    return "\n".join(lines)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`walk` and `pgtables`."""
    p = sub.add_parser("walk", help="walk one address through one CPU's page tables")
    p.add_argument("address", help="kernel virtual address, e.g. 0xfffffd7fffffe000")
    p.add_argument("--cpu", type=int_in(0, NR_CPUS_RANGE[1] - 1, "a CPU number"), default=0,
                   help="CPU whose root to walk (default 0)")
    add_unit_size_option(p)
    add_config_options(p)
    add_format(p, PGTABLE_FORMATS)
    p.set_defaults(func=cmd_walk)

    p = sub.add_parser("pgtables", help="page-table memory, mainline vs per-CPU roots")
    add_unit_size_option(p)
    add_config_options(p)
    add_format(p, PGTABLE_FORMATS)
    p.set_defaults(func=cmd_pgtables)
