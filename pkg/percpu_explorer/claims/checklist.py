"""The checklist: every claim evaluated for every configuration where its answer
depends on one, once (or once per kernel world) where it does not, and against each
real-kernel capture; the checklist as text (a table, JSON or Markdown), and its
verdicts counted per claim and per evidence grade."""

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
    claim_area_size_capture,
    claim_fits_capture,
    claim_offsets_capture,
    default_captures_dir,
    no_capture,
    pick_captures,
)
from .common import (
    BASES,
    CLAIM_BY_ID,
    COLUMNS,
    DEFAULT_CAPACITY_CPUS,
    OUTCOMES,
    ClaimResult,
    Context,
)
from .layout import claim_area_size, claim_fits, claim_vmalloc_lost
from .pgtables import (
    claim_kpti,
    claim_pgd_sync,
    claim_shared_tlb,
    claim_skip_boundary,
    claim_sw_pan,
)
from .thiscpu import (
    claim_bracket_rows,
    claim_op_cost_rows,
    claim_preempt_safety,
    claim_sys_saving_rows,
)

FORMATS = ("table", "json", "markdown")


# --- the checklist ----------------------------------------------------------------------------

_PER_CONFIG: tuple[tuple[str, Callable[[KernelConfig, Context], ClaimResult]], ...] = (
    ("1", claim_area_size), ("2", claim_pgd_sync), ("3", claim_offsets),
    ("4", claim_same_offset), ("5", claim_vmalloc_lost), ("6", claim_fits),
    ("7", claim_skip_boundary), ("8a", claim_shared_tlb), ("8b", claim_kpti),
    ("8c", claim_sw_pan),
)


def _safety_rows(ctx: Context) -> list[ClaimResult]:
    """Claim 9a: one row."""
    return [claim_preempt_safety(ctx)]


_GLOBAL: tuple[tuple[str, Callable[[Context], list[ClaimResult]]], ...] = (
    ("9a", _safety_rows), ("9b", claim_op_cost_rows), ("9c", claim_bracket_rows),
    ("10", claim_sys_saving_rows),
)
_CAPTURE: tuple[tuple[str, Callable[[Path], ClaimResult]], ...] = (
    ("1", claim_area_size_capture), ("3", claim_offsets_capture), ("6", claim_fits_capture),
)


def evaluate_claims(kernel: str = DEFAULT_KERNEL, *, nr_cpus: int = 4,
                    capacity_cpus: int = DEFAULT_CAPACITY_CPUS,
                    static_size: int = DEFAULT_STATIC_SIZE,
                    claims: Iterable[str] | None = None,
                    captures_dir: str | Path | None = None,
                    use_captures: bool = True) -> pd.DataFrame:
    """The reviewer's checklist: one row per claim and configuration (every configuration
    of `valid_configs(kernel, kasan=("none",))` for claims 1-8), one row or one per kernel
    world for 9-10, plus one row per real-kernel capture for claims 1, 3, 6 and 9c.
    Columns: `COLUMNS`; `basis` grades each row's evidence (`BASES`).

    nr_cpus: CPUs of the page-table and allocator scenarios (2..8 keeps it fast);
    capacity_cpus: CONFIG_NR_CPUS for claim 1, the worst case of possible CPUs;
    static_size: the kernel's static percpu size; claims: a subset of claim ids ("1",
    ..., "8a", "10"); captures_dir: where the capture bundles are (default
    `default_captures_dir()`); use_captures=False leaves the capture rows out.
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
    ctx = Context(str(configs[0].kernel), nr_cpus, capacity_cpus, static_size, bundles)
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


# --- counting ---------------------------------------------------------------------------------

def verdict_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Outcomes per claim: one row per claim id, one column per outcome seen."""
    return (frame.groupby(["claim_id", "outcome"], sort=False).size()
            .unstack(fill_value=0))


def basis_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Outcomes per evidence grade: one row per basis (hard findings first), one column
    per outcome, with totals."""
    table = pd.crosstab(frame["basis"], frame["outcome"])
    table = table.reindex(index=[b for b in BASES if b in table.index],
                          columns=[o for o in OUTCOMES if o in table.columns])
    table["rows"] = table.sum(axis=1)
    return table


def by_basis(frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The rows of each evidence grade, hard findings first (grades without rows left out)."""
    return {b: frame[frame["basis"] == b] for b in BASES if (frame["basis"] == b).any()}


# --- printing ------------------------------------------------------------------------------

BASIS_NOTES = {
    "kernel arithmetic": "computed with the kernel's own formulas for the configuration",
    "real kernel": "seen in a capture of a booted kernel",
    "assumption": "rests on what the unpublished patches are assumed to do (named in "
                  "each row)",
    "estimate": "rests on estimated instruction costs (named in each row, with the cost at "
                "which the verdict flips)",
}


def _json_ready(value: Any) -> Any:
    """Mappings, sequences and numpy scalars as plain JSON values."""
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def _markdown(records: list[dict[str, Any]]) -> list[str]:
    def cell(text: Any) -> str:
        return str(text).replace("|", "\\|").replace("\n", " ")

    lines = ["| # | claim | config | basis | verdict | evidence | source |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in records:
        evidence = r["evidence"] + (f" *Depends on: {r['depends_on']}.*" if r["depends_on"]
                                    else "")
        lines.append(f"| {cell(r['claim_id'])} | {cell(r['claim'])} | {cell(r['config'])} "
                     f"| {cell(r['basis'])} | **{cell(r['verdict'])}** | {cell(evidence)} | "
                     f"{cell(r['source'])} |")
    return lines


def format_claims(frame: pd.DataFrame, fmt: str = "table", *, width: int = 100,
                  group_by_basis: bool = False) -> str:
    """The checklist as text: "table" (aligned columns, the conditional verdict and the
    evidence wrapped below each row), "json" (a list of records, raw numbers included)
    or "markdown" (a table to paste into a review mail; with group_by_basis one table per
    evidence grade under a heading, hard findings first)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    records = frame.to_dict("records")
    if fmt == "json":
        return json.dumps(_json_ready(records), indent=2)
    if fmt == "markdown":
        if not group_by_basis:
            return "\n".join(_markdown(records))
        parts = []
        for basis, part in by_basis(frame).items():
            parts += [f"### {basis} ({len(part)} rows): {BASIS_NOTES[basis]}", "",
                      *_markdown(part.to_dict("records")), ""]
        return "\n".join(parts).rstrip()
    heads = ("#", "claim", "config", "basis", "verdict")
    keys = ("claim_id", "claim", "config", "basis", "outcome")
    widths = [max([len(h)] + [len(str(r[k])) for r in records]) for h, k in zip(heads, keys,
                                                                               strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    indent = " " * 4
    for r in records:
        lines.append("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths,
                                                                  strict=True)).rstrip())
        if r["verdict"] != r["outcome"]:
            lines += textwrap.wrap(f"verdict: {r['verdict']}", width, initial_indent=indent,
                                   subsequent_indent=indent + "  ")
        lines += textwrap.wrap(r["evidence"], width, initial_indent=indent,
                               subsequent_indent=indent)
        lines += textwrap.wrap(f"source: {r['source']}", width, initial_indent=indent,
                               subsequent_indent=indent + "  ")
        if r["depends_on"]:
            lines += textwrap.wrap(f"depends on: {r['depends_on']}", width,
                                   initial_indent=indent, subsequent_indent=indent + "  ")
    return "\n".join(lines)


def claims_table(kernel: str = DEFAULT_KERNEL, fmt: str = "table", **kwargs: Any) -> str:
    """`format_claims(evaluate_claims(kernel, **kwargs), fmt)`: the text the CLI prints."""
    return format_claims(evaluate_claims(kernel, **kwargs), fmt)
