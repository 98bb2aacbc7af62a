"""The checklist: every claim evaluated for every configuration where its answer
depends on one, once where it does not, and against each real-kernel capture; and
the checklist as text (a table, JSON or Markdown)."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..kernel import DEFAULT_KERNEL, KernelConfig, valid_configs
from ..percpu import DEFAULT_STATIC_SIZE
from .allocator import claim_offsets, claim_same_offset
from .captures import (
    capture_preempt_note,
    claim_fits_capture,
    claim_offsets_capture,
    default_captures_dir,
    no_capture,
    pick_captures,
)
from .common import (
    CLAIM_BY_ID,
    COLUMNS,
    DEFAULT_CAPACITY_CPUS,
    ClaimResult,
    Context,
)
from .layout import claim_area_size, claim_fits, claim_vmalloc_lost
from .pgtables import claim_kpti, claim_pgd_sync, claim_shared_tlb, claim_skip_boundary
from .thiscpu import claim_op_cost, claim_preempt_safety, claim_sys_saving_rows

FORMATS = ("table", "json", "markdown")


# --- the checklist ----------------------------------------------------------------------------

_PER_CONFIG: tuple[tuple[str, Callable[[KernelConfig, Context], ClaimResult]], ...] = (
    ("1", claim_area_size), ("2", claim_pgd_sync), ("3", claim_offsets),
    ("4", claim_same_offset), ("5", claim_vmalloc_lost), ("6", claim_fits),
    ("7", claim_skip_boundary), ("8a", claim_shared_tlb), ("8b", claim_kpti),
)


def _safety_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 9a: one row."""
    return [claim_preempt_safety(ctx)]


def _cost_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 9b: one row."""
    return [claim_op_cost(ctx)]


_GLOBAL: tuple[tuple[str, Callable[[Context], list[ClaimResult]]], ...] = (
    ("9a", _safety_rows), ("9b", _cost_rows), ("10", claim_sys_saving_rows),
)
_CAPTURE: tuple[tuple[str, Callable[[Path], ClaimResult]], ...] = (
    ("3", claim_offsets_capture), ("6", claim_fits_capture),
)


def evaluate_claims(kernel: str = DEFAULT_KERNEL, *, nr_cpus: int = 4,
                    capacity_cpus: int = DEFAULT_CAPACITY_CPUS,
                    static_size: int = DEFAULT_STATIC_SIZE,
                    claims: Iterable[str] | None = None,
                    captures_dir: str | Path | None = None,
                    use_captures: bool = True) -> pd.DataFrame:
    """The reviewer's checklist: one row per claim and configuration (every configuration
    of `valid_configs(kernel, kasan=("none",))` for claims 1-8, one row for 9-10, plus
    one row per real-kernel capture for claims 3 and 6). Columns: `COLUMNS`.

    nr_cpus: CPUs of the page-table and allocator scenarios (2..8 keeps it fast);
    capacity_cpus: CPUs for claim 1's capacity arithmetic; static_size: the kernel's
    static percpu size; claims: a subset of claim ids ("1", ..., "8a", "10");
    captures_dir: where the capture bundles are (default `default_captures_dir()`);
    use_captures=False leaves the capture rows out.
    """
    if not isinstance(nr_cpus, int) or not 2 <= nr_cpus <= 64:
        raise ValueError(f"nr_cpus {nr_cpus!r} must be 2..64 (the scenarios use CPUs 0-2; "
                         "keep it small, e.g. 4, for speed)")
    wanted = set(CLAIM_BY_ID) if claims is None else {str(c) for c in claims}
    unknown = sorted(wanted - set(CLAIM_BY_ID))
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; choose from {list(CLAIM_BY_ID)}")
    configs = list(valid_configs(kernel, kasan=("none",)))
    folder = Path(captures_dir) if captures_dir is not None else default_captures_dir()
    bundles = pick_captures(folder) if use_captures and folder.is_dir() else ()
    ctx = Context(str(configs[0].kernel), nr_cpus, capacity_cpus, static_size,
                  capture_preempt_note(bundles))
    rows: list[ClaimResult] = []
    for claim_id, func in _PER_CONFIG:
        if claim_id not in wanted:
            continue
        rows += [func(cfg, ctx) for cfg in configs]
        for cid, capture_func in _CAPTURE:
            if cid == claim_id and use_captures:
                rows += ([capture_func(p) for p in bundles] if bundles
                         else [no_capture(cid, folder)])
    for claim_id, global_func in _GLOBAL:
        if claim_id in wanted:
            rows += global_func(ctx)
    return pd.DataFrame([r.row() for r in rows], columns=COLUMNS)


# --- printing ------------------------------------------------------------------------------

def _json_ready(value: Any) -> Any:
    """Mappings, sequences and numpy scalars as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def format_claims(frame: pd.DataFrame, fmt: str = "table", *, width: int = 100) -> str:
    """The checklist as text: "table" (aligned columns, evidence wrapped below each row),
    "json" (a list of records, raw numbers included) or "markdown" (a table to paste into
    a review mail)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    records = frame.to_dict("records")
    if fmt == "json":
        return json.dumps(_json_ready(records), indent=2)
    if fmt == "markdown":
        def cell(text: Any) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")
        lines = ["| # | claim | config | verdict | evidence | source |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in records:
            evidence = r["evidence"] + (f" *Assumes {r['assumption']}.*" if r["assumption"]
                                        else "")
            lines.append(f"| {cell(r['claim_id'])} | {cell(r['claim'])} | {cell(r['config'])} "
                         f"| **{cell(r['verdict'])}** | {cell(evidence)} | "
                         f"{cell(r['source'])} |")
        return "\n".join(lines)
    heads = ("#", "claim", "config", "verdict")
    keys = ("claim_id", "claim", "config", "verdict")
    widths = [max([len(h)] + [len(str(r[k])) for r in records]) for h, k in zip(heads, keys,
                                                                               strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    indent = " " * 4
    for r in records:
        lines.append("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths,
                                                                  strict=True)).rstrip())
        lines += textwrap.wrap(r["evidence"], width, initial_indent=indent,
                               subsequent_indent=indent)
        lines += textwrap.wrap(f"source: {r['source']}", width, initial_indent=indent,
                               subsequent_indent=indent + "  ")
        if r["assumption"]:
            lines += textwrap.wrap(f"assumes: {r['assumption']}", width,
                                   initial_indent=indent, subsequent_indent=indent + "  ")
    return "\n".join(lines)


def claims_table(kernel: str = DEFAULT_KERNEL, fmt: str = "table", **kwargs: Any) -> str:
    """`format_claims(evaluate_claims(kernel, **kwargs), fmt)`: the text the CLI prints."""
    return format_claims(evaluate_claims(kernel, **kwargs), fmt)


def verdict_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Verdicts per claim: one row per claim id, one column per verdict seen."""
    return (frame.groupby(["claim_id", "verdict"], sort=False).size()
            .unstack(fill_value=0))
