"""`first-chunk` (the percpu first chunk and the kernel's boot lines) and
`alloc-trace` (a percpu request history run through the allocator)."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd

from ..kernel import fmt_addr
from ..percpu import (
    DEFAULT_STATIC_SIZE,
    PercpuAllocator,
    boot_lines,
    build_alloc_info,
    read_requests,
    run_history,
)
from .common import (
    INT_MAX,
    add_config_options,
    add_format,
    check_format,
    config_from_args,
    size_in,
)

FIRST_CHUNK_FORMATS = ("text", "json")
ALLOC_TRACE_FORMATS = ("text", "csv", "json")


# pcpu_build_alloc_info()'s sizes: a unit's bytes are an int in struct pcpu_chunk.
STATIC_SIZE = size_in(1, INT_MAX, "__per_cpu_end - __per_cpu_start")
RESERVED_SIZE = size_in(0, INT_MAX, "the reserved chunk, PERCPU_MODULE_RESERVE by default")
DYN_SIZE = size_in(0, INT_MAX, "the dynamic reserve, PERCPU_DYNAMIC_RESERVE by default")


def add_percpu_options(p: argparse.ArgumentParser, *, static_required: bool) -> None:
    """The sizes pcpu_build_alloc_info() takes."""
    g = p.add_argument_group("first chunk (pcpu_build_alloc_info)")
    g.add_argument("--static-size", type=STATIC_SIZE, required=static_required,
                   default=None if static_required else DEFAULT_STATIC_SIZE,
                   help="bytes of DEFINE_PER_CPU variables (__per_cpu_end - __per_cpu_start)"
                   + ("" if static_required
                      else f"; default {DEFAULT_STATIC_SIZE}, Debian's 6.12 arm64"))
    g.add_argument("--reserved-size", type=RESERVED_SIZE, default=None,
                   help="reserved chunk bytes, e.g. 8K (default PERCPU_MODULE_RESERVE, 8K)")
    g.add_argument("--dyn-size", type=DYN_SIZE, default=None,
                   help="dynamic reserve bytes, e.g. 28K (default PERCPU_DYNAMIC_RESERVE, 28K)")


def _allocator(args: argparse.Namespace) -> PercpuAllocator:
    """An allocator booted with the first chunk the options describe."""
    cfg = config_from_args(args)
    ai = build_alloc_info(args.static_size, nr_cpus=cfg.nr_cpus, page_size=cfg.page_size,
                          reserved_size=args.reserved_size, dyn_size=args.dyn_size)
    return PercpuAllocator(ai, cfg=cfg)


def cmd_first_chunk(args: argparse.Namespace) -> str:
    check_format(args.format, FIRST_CHUNK_FORMATS)
    alloc = _allocator(args)
    ai = alloc.ai
    if args.format == "text":
        return "\n".join(boot_lines(ai))
    next_base = alloc.pool.next_base()
    data: dict[str, Any] = {
        "config": alloc.cfg.to_dict(),
        "boot_lines": boot_lines(ai),
        "static_size": ai.static_size, "reserved_size": ai.reserved_size,
        "dyn_size": ai.dyn_size, "unit_size": ai.unit_size, "atom_size": ai.atom_size,
        "alloc_size": ai.alloc_size, "nr_units": ai.nr_units,
        "groups": [{"base_offset": g.base_offset, "cpu_map": list(g.cpu_map)}
                   for g in ai.groups],
        "unit_offsets": {str(cpu): off for cpu, off in sorted(alloc.unit_offsets.items())},
        "first_chunk": {"pcpu_base_addr": fmt_addr(alloc.base_addr),
                        "span": ai.span,
                        "where": "Global Percpu area" if alloc.local else "linear map"},
        "first_dynamic_chunk": {"base_addr": fmt_addr(next_base),
                                "offset_from_base": next_base - alloc.base_addr},
    }
    if alloc.local:
        data["first_chunk"]["local_base"] = fmt_addr(alloc.local_base)
        data["first_chunk"]["placement"] = alloc.placement.describe()
    return json.dumps(data, indent=2)


def cmd_alloc_trace(args: argparse.Namespace) -> str:
    check_format(args.format, ALLOC_TRACE_FORMATS)
    requests = read_requests(args.file)
    alloc = _allocator(args)
    decisions = run_history(alloc, requests)
    if args.format == "csv":
        return decisions.to_csv(index=False).rstrip("\n")
    if args.format == "json":
        return json.dumps({"decisions": json.loads(decisions.to_json(orient="records")),
                           "percpu_stats": alloc.stats()}, indent=2)
    shown = decisions.copy()
    for col in ("chunk_base", "ptr"):
        if col in shown:
            shown[col] = shown[col].map(lambda v: fmt_addr(int(v)) if pd.notna(v) else "")
    return (shown.to_string(index=False) + "\n\n" + alloc.percpu_stats_text()).rstrip("\n")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`first-chunk` and `alloc-trace`."""
    p = sub.add_parser("first-chunk", help="the percpu first chunk: the kernel's boot lines")
    add_config_options(p)
    add_percpu_options(p, static_required=True)
    add_format(p, FIRST_CHUNK_FORMATS)
    p.set_defaults(func=cmd_first_chunk)

    p = sub.add_parser("alloc-trace", help="replay a percpu request history (CSV)")
    p.add_argument("file", help="CSV with op,id,size,align,reserved,atomic")
    add_config_options(p)
    add_percpu_options(p, static_required=False)
    add_format(p, ALLOC_TRACE_FORMATS)
    p.set_defaults(func=cmd_alloc_trace)
