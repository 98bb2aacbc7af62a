"""The checklist: every claim evaluated for every configuration where its answer
depends on one, once (or once per kernel world) where it does not, and against each
real-kernel capture; the checklist as text (a table, JSON or Markdown), and its
verdicts counted per claim and per evidence grade."""

from __future__ import annotations

import html
import json
import re
import textwrap
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..findings import Finding
from ..kernel import DEFAULT_KERNEL, KernelConfig, local_percpu_supported, valid_configs
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
from .census import claim_census_rows
from .common import (
    BASES,
    CLAIM_BY_ID,
    COLUMNS,
    DEFAULT_CAPACITY_CPUS,
    HARD_BASES,
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

FORMATS = ("table", "json", "markdown", "summary")


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
    ("10", claim_sys_saving_rows), ("10", claim_census_rows),
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
    `default_captures_dir()`); use_captures=False leaves the rows of real kernels
    (captures, census) out.
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
        if claim_id in wanted and (use_captures or global_func is not claim_census_rows):
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
    "measured": "counted in a real kernel run",
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


# Characters Markdown reads as markup inside a table cell (emphasis, code, links, HTML,
# cell borders, strikethrough): the claims' evidence names kernel symbols such as
# raw_cpu_*/__this_cpu_*, which would otherwise lose their underscores and stars.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def md_escape(text: Any) -> str:
    """`text` as one Markdown table cell that renders as written: every character
    Markdown reads as markup backslash-escaped, line breaks as spaces."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


_MD_COLUMNS = {"claim_id": "#", "claim": "claim", "config": "config", "basis": "basis",
               "verdict": "verdict", "evidence": "evidence", "source": "source"}


def _markdown(records: list[dict[str, Any]],
              columns: tuple[str, ...] = tuple(_MD_COLUMNS)) -> list[str]:
    lines = ["| " + " | ".join(_MD_COLUMNS[c] for c in columns) + " |",
             "| " + " | ".join("---" for _ in columns) + " |"]
    for r in records:
        cells = []
        for c in columns:
            if c == "verdict":
                cells.append(f"**{md_escape(r['verdict'])}**")
            elif c == "evidence" and r["depends_on"]:
                cells.append(f"{md_escape(r['evidence'])} "
                             f"*Depends on: {md_escape(r['depends_on'])}.*")
            else:
                cells.append(md_escape(r[c]))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


# --- the summary: one row per claim, and the checklist's answer ------------------------------

def _label(outcome: str, basis: str) -> str:
    """An outcome as a verdict word: bare on hard evidence, "<outcome> if ..." otherwise."""
    return outcome if basis in HARD_BASES else f"{outcome} if ..."


def _counts(part: pd.DataFrame) -> str:
    """"4 holds, 1 fails (kernel arithmetic); 2 cannot hold (real kernel)": the outcomes of
    a claim's rows counted per basis (hard first), the basis named when there are two."""
    groups = []
    bases = [b for b in BASES if (part["basis"] == b).any()]
    for basis in bases:
        rows = part[part["basis"] == basis]
        counts = ", ".join(f"{n} {_label(o, basis)}" for o in OUTCOMES
                           if (n := int((rows["outcome"] == o).sum())))
        groups.append(counts + (f" ({basis})" if len(bases) > 1 else ""))
    return "; ".join(groups)


def _where(config: str) -> str:
    """A row's configuration as a place in a sentence: "16K/36", "a real 6.12.117 kernel"."""
    head, sep, _ = config.partition(" (capture ")
    return f"a real {head} kernel" if sep else config


def _short_config(config: str) -> str:
    """A row's configuration without the capture's folder name."""
    head, sep, _ = config.partition(" (capture ")
    return f"{head} (real kernel)" if sep else config


SUMMARY_COLUMNS = ["#", "claim", "basis", "verdicts", "fails in"]


def claims_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per claim, in the checklist's order: its bases (hard evidence first), its
    verdicts counted over the configurations (per basis when it has several; "fails if
    ..." where the verdict rests on an assumption or an estimate) and the configurations
    where it fails ("none" when it fails nowhere)."""
    rows = []
    for claim_id, part in frame.groupby("claim_id", sort=False):
        fails = part[part["outcome"] == "fails"]
        rows.append({
            "#": claim_id,
            "claim": part["claim"].iloc[0],
            "basis": ", ".join(b for b in BASES if (part["basis"] == b).any()),
            "verdicts": _counts(part),
            "fails in": ", ".join(_short_config(c) for c in fails["config"]) or "none",
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


CHECKLIST_QUESTION = ("Which claims of the RFC series \"Optimize this_cpu_*() ops for non-x86\" "
                      "hold, in which arm64 configurations of kernel {kernel}, and on what "
                      "evidence?")


def _claim_names(ids: list[str], frame: pd.DataFrame) -> str:
    """"claims 7 (sync skip boundary), 8b (KPTI) and 8c (software PAN)"."""
    names = [f"{i} ({frame.loc[frame['claim_id'] == i, 'claim'].iloc[0]})" for i in ids]
    if len(names) == 1:
        return f"claim {names[0]}"
    return f"claims {', '.join(names[:-1])} and {names[-1]}"


def _series(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def checklist_finding(frame: pd.DataFrame, kernel: str = DEFAULT_KERNEL) -> Finding:
    """The checklist's answer in two sentences: on hard evidence, the configurations of
    `kernel` that cannot hold the two areas at all and the claims that fail; then the
    claims that fail (or cannot hold) if the assumptions about the unpublished patches,
    or the estimated costs, that their rows name are right. `frame` is
    `evaluate_claims(kernel)`."""
    labels = [c.label() for c in valid_configs(kernel, kasan=("none",))]
    per_config = frame[frame["config"].isin(labels)]
    configs = [c for c in labels if (per_config["config"] == c).any()]
    # a "cannot hold" on kernel arithmetic: the patched layout is broken (or absent)
    arithmetic = per_config[per_config["basis"] == "kernel arithmetic"]
    cannot = [c for c in configs
              if (arithmetic.loc[arithmetic["config"] == c, "outcome"] == "cannot hold").any()]
    hard = frame[frame["basis"].isin(HARD_BASES)]
    real = hard[(hard["basis"] == "real kernel") & (hard["outcome"] == "cannot hold")]
    real_kernels = sorted({str(c).partition(" (capture ")[2] for c in real["config"]
                           if str(c).partition(" (capture ")[0] in cannot} - {""})
    hard_fails: dict[str, list[str]] = {}
    for r in hard[hard["outcome"] == "fails"].itertuples():
        hard_fails.setdefault(str(r.claim_id), []).append(_where(str(r.config)))
    fit = len(configs) - len(cannot)

    if local_percpu_supported(kernel):
        first = (f"On the kernel's own arithmetic the two percpu areas cannot fit in "
                 f"{len(cannot)} of the {len(configs)} configurations of v{kernel}"
                 + (f" ({', '.join(cannot)})" if cannot else ""))
    else:
        first = (f"Patch 02/11 does not apply to v{kernel} (it is written for the v6.9+ "
                 f"layout), so none of its {len(configs)} configurations has the two "
                 "percpu areas")
    if real_kernels:
        first += (f", as the captures of {len(real_kernels)} real kernel"
                  f"{'s' if len(real_kernels) > 1 else ''} in those configurations confirm")
    if hard_fails:
        first += "; " + _series([f"{_claim_names([i], frame)} fails in "
                                 f"{_series(where)}" for i, where in hard_fails.items()])
    else:
        first += "; no claim fails on hard evidence"
    first += "."

    soft = frame[~frame["basis"].isin(HARD_BASES)
                 & frame["outcome"].isin(["fails", "cannot hold"])]
    soft_counts: dict[str, dict[str, int]] = {}
    parts = []
    for basis in (b for b in BASES if b not in HARD_BASES):
        rows = soft[soft["basis"] == basis]
        if rows.empty:
            continue
        by_claim: dict[tuple[str, int, int], list[str]] = {}
        for claim_id, part in rows.groupby("claim_id", sort=False):
            total = int(((frame["claim_id"] == claim_id) & (frame["basis"] == basis)).sum())
            soft_counts[str(claim_id)] = {"rows": total, "negative": len(part)}
            outcome = " or ".join(dict.fromkeys(part["outcome"]))
            by_claim.setdefault((outcome, len(part), total), []).append(str(claim_id))
        phrases = []
        for (outcome, n, total), ids in by_claim.items():
            verb = outcome if len(ids) == 1 else outcome.replace("fails", "fail")
            their = "their" if len(ids) > 1 else "its"
            where = (f"all {fit} configurations that fit" if basis == "assumption"
                     and n == total == fit else f"all {total} of {their} rows" if n == total
                     else f"{n} of {their} {total} rows")
            phrases.append(f"{_claim_names(ids, frame)} {verb} in {where}")
        lead = ("if the unpublished patches do what the model assumes"
                if basis == "assumption" else "on estimated instruction costs")
        parts.append(f"{lead}, {_series(phrases)}")
    second = ""
    if parts:
        text = "; ".join(parts)
        second = " " + text[0].upper() + text[1:] + " (each row names what it rests on)."
    numbers = {"claims": int(frame["claim_id"].nunique()), "rows": len(frame),
               "configurations": len(configs), "cannot_fit": len(cannot),
               "cannot_fit_configs": cannot, "real_kernels_cannot_fit": len(real_kernels),
               "hard_fails": hard_fails, "soft_negative": soft_counts,
               "hard_rows": len(hard)}
    return Finding(CHECKLIST_QUESTION.format(kernel=kernel), first + second,
                   "kernel arithmetic",
                   numbers=numbers,
                   detail="with real-kernel captures, for the first sentence; the "
                          "second rests on the assumptions and estimated costs each row "
                          "names")


# --- printing the checklist -------------------------------------------------------------------

def _folded_markdown(frame: pd.DataFrame) -> str:
    """One folded <details> block per claim: its verdict counts as the summary line, the
    patch's words and the claim's rows inside."""
    blocks = []
    for claim_id, part in frame.groupby("claim_id", sort=False):
        head = html.escape(f"{claim_id} {part['claim'].iloc[0]}: {_counts(part)}")
        blocks += [f"<details><summary><b>{head}</b></summary>", "",
                   f"*{md_escape(part['words'].iloc[0])}*", "",
                   *_markdown(part.to_dict("records"),
                              ("config", "basis", "verdict", "evidence", "source")),
                   "", "</details>", ""]
    return "\n".join(blocks).rstrip()


def _summary_text(frame: pd.DataFrame, width: int) -> str:
    summary = claims_summary(frame)
    id_width = max(len("#"), *(len(str(i)) for i in summary["#"]))
    name_width = max(len(str(n)) for n in summary["claim"])
    indent = " " * (id_width + 2)
    lines = []
    for r in summary.to_dict("records"):
        lines.append(f"{str(r['#']).ljust(id_width)}  {str(r['claim']).ljust(name_width)}  "
                     f"[{r['basis']}]")
        lines += textwrap.wrap(f"verdicts: {r['verdicts']}", width, initial_indent=indent,
                               subsequent_indent=indent + "  ")
        if r["fails in"] != "none":
            lines += textwrap.wrap(f"fails in: {r['fails in']}", width, initial_indent=indent,
                                   subsequent_indent=indent + "  ")
    return "\n".join(lines)


def format_claims(frame: pd.DataFrame, fmt: str = "table", *, width: int = 100,
                  group_by_basis: bool = False, fold_claims: bool = False) -> str:
    """The checklist as text: "table" (aligned columns, the conditional verdict and the
    evidence wrapped below each row), "json" (a list of records, raw numbers included),
    "markdown" (a table to paste into a review mail, every cell escaped so that kernel
    symbols such as raw_cpu_*/__this_cpu_* render as written; with group_by_basis one
    table per evidence grade under a heading, hard findings first; with fold_claims one
    folded <details> block per claim) or "summary" (one entry per claim: its bases,
    verdict counts and where it fails; `claims_summary`)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    records = frame.to_dict("records")
    if fmt == "json":
        return json.dumps(_json_ready(records), indent=2)
    if fmt == "summary":
        return _summary_text(frame, width)
    if fmt == "markdown":
        if fold_claims:
            return _folded_markdown(frame)
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
    """`format_claims(evaluate_claims(kernel, **kwargs), fmt)`: the text the CLI prints;
    "summary" leads with the checklist's answer (`checklist_finding`)."""
    frame = evaluate_claims(kernel, **kwargs)
    text = format_claims(frame, fmt)
    if fmt == "summary":
        answer = textwrap.fill(checklist_finding(frame, str(kernel)).text(), 100)
        text = f"{answer}\n\n{text}"
    return text
