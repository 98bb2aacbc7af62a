"""The checklist's vocabulary: the claims of the series in their own words, a row
with its verdict and the evidence grade it stands on, the context of one evaluation,
the assumptions rows name, and the row of a claim the patched layout cannot pose.

Evidence grades (`BASES`), hard findings first:
- "kernel arithmetic": computed with the kernel's own formulas for the configuration;
- "real kernel": seen in a capture of a booted kernel;
- "measured": counted in a real kernel run (a census: `captures.census`);
- "assumption": rests on what the unpublished patches (01, 03-11) are assumed to do;
- "estimate": rests on estimated instruction costs.
A bare outcome (`OUTCOMES`) is a verdict only on the first three. On the others the
verdict is conditional ("fails if ...") and `depends_on` names the assumption or the
estimated costs with the value at which the verdict flips; `ClaimResult` refuses
anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ..kernel import (
    DEFAULT_PLACEMENT,
    KernelConfig,
    Layout,
    compute_layout,
    format_size,
    local_percpu_refusal,
    local_percpu_supported,
)
from ..kernel import (
    first_chunk_unit as kernel_first_chunk_unit,
)
from ..thiscpu import DEFAULT_LOCAL_SCHEME

BASES = ("kernel arithmetic", "real kernel", "measured", "assumption", "estimate")
HARD_BASES = BASES[:3]
OUTCOMES = ("holds", "holds with caveat", "fails", "cannot hold", "not checked")
COLUMNS = ["claim_id", "claim", "words", "config", "basis", "verdict", "outcome", "evidence",
           "source", "depends_on", "numbers"]

# arch/arm64/Kconfig: config NR_CPUS ... default "512".
DEFAULT_CAPACITY_CPUS = 512
NO_CAPTURE = "no capture available"

_CONDITIONAL = re.compile(
    r"^(?P<outcome>holds with caveat|holds|fails|cannot hold) (?:if|unless) \S")


@dataclass(frozen=True)
class Claim:
    """One claim of the series: a short id, a name and the patch's own words."""

    id: str
    name: str
    words: str


CLAIMS: tuple[Claim, ...] = (
    Claim("1", "area size", "Each area is 2 * PGDIR_SIZE: \"1TB with 4K page size, should be "
          "big enough for percpu\" (patch 02/11)"),
    Claim("2", "PGD-only sync", "The areas are PGDIR_SIZE aligned, so only the PGD level needs "
          "syncing between CPUs (patches 01-02/11)"),
    Claim("3", "offset size", "Mainline's percpu offsets \"could be quite big ... the whole size "
          "of vmalloc space\" (patch 02/11)"),
    Claim("4", "same offset", "\"the offset returned by percpu allocator must be used to access "
          "both global percpu and local percpu\": first, reserved and dynamic chunks"),
    Claim("5", "vmalloc lost", "How much vmalloc space the two areas take away: their own "
          "2 * PERCPU_SIZE, or more"),
    Claim("6", "fitting configs", "This configuration can hold the two areas at all (the "
          "series: 4K/52, 16K/48 and 16K/52 cannot)"),
    Claim("7", "sync skip boundary", "arch_sync_kernel_mappings(): \"start >= "
          "LOCAL_PERCPU_START && end < LOCAL_PERCPU_END\" skips the local area"),
    Claim("8a", "SMT/CnP TLB", "A local-area this_cpu access reaches the CPU's own copy even "
          "when SMT threads share a TLB or CnP is on (the cover letter warns it may not; "
          "patch 01/11 clears CnP)"),
    Claim("8b", "KPTI", "A local-area this_cpu access reaches the CPU's own copy with KPTI "
          "(the cover letter: KPTI \"may not work\")"),
    Claim("8c", "software PAN", "User memory stays unreachable from the kernel with software "
          "PAN (CONFIG_ARM64_SW_TTBR0_PAN), which finds reserved_pg_dir as TTBR1 - "
          "RESERVED_SWAPPER_OFFSET (a risk the series does not mention)"),
    Claim("9a", "preempt safety", "this_cpu ops are safe without the preemption bracket "
          "(single LSE instructions and LL/SC loops; not a plain load-modify-store)"),
    Claim("9b", "op cost", "Each this_cpu op is cheaper after patch 11/11 (no preemption "
          "bracket, no TPIDR read)"),
    Claim("9c", "bracket work", "Today every this_cpu op pays for a preemption bracket "
          "(preempt_disable/enable_notrace()), the work the local mapping removes"),
    Claim("10", "sys-time saving", "160-core AmpereOne, 4K pages: 13-18% less sys time "
          "(LWN report of the LSF/MM/BPF talk)"),
)
CLAIM_BY_ID = {c.id: c for c in CLAIMS}


def conditional(outcome: str, condition: str) -> str:
    """A verdict that says what it depends on: "<outcome> if <condition>"."""
    return f"{outcome} if {condition}"


def outcome_of(verdict: str) -> str:
    """The outcome a verdict states: the verdict itself when bare, else the word before
    "if"/"unless"."""
    match = _CONDITIONAL.match(verdict)
    return match["outcome"] if match else verdict


@dataclass(frozen=True)
class ClaimResult:
    """One row of the checklist.

    basis: the evidence grade (`BASES`). verdict: a bare outcome (`OUTCOMES`) on a
    "kernel arithmetic" or "real kernel" row; on an "assumption" or "estimate" row a
    conditional verdict ("holds if ...", "fails if ...") with `depends_on` naming the
    assumption, or the estimated costs and how far they must move to flip it.
    """

    claim: Claim
    config: str
    verdict: str
    evidence: str
    source: str
    basis: str
    depends_on: str = ""
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.basis not in BASES:
            raise ValueError(f"basis {self.basis!r} is unknown; choose one of "
                             f"{', '.join(BASES)}")
        if self.basis in HARD_BASES:
            if self.verdict not in OUTCOMES:
                raise ValueError(f"verdict {self.verdict!r} on a {self.basis!r} row must be "
                                 f"one of {', '.join(OUTCOMES)}")
            if self.depends_on:
                raise ValueError(f"a {self.basis!r} row depends on no assumption or estimate; "
                                 f"grade it 'assumption' or 'estimate' ({self.depends_on!r})")
            return
        if not _CONDITIONAL.match(self.verdict):
            raise ValueError(f"verdict {self.verdict!r} is bare but the row rests on an "
                             f"{self.basis}: say what it depends on (\"holds if ...\", "
                             f"\"fails if ...\")")
        if not self.depends_on:
            raise ValueError(f"an {self.basis!r} row must name what it depends on "
                             "(depends_on)")

    @property
    def outcome(self) -> str:
        return outcome_of(self.verdict)

    def row(self) -> dict[str, Any]:
        return {"claim_id": self.claim.id, "claim": self.claim.name, "words": self.claim.words,
                "config": self.config, "basis": self.basis, "verdict": self.verdict,
                "outcome": self.outcome, "evidence": self.evidence, "source": self.source,
                "depends_on": self.depends_on, "numbers": dict(self.numbers)}


@dataclass(frozen=True)
class Context:
    """What every claim of one evaluation shares: the kernel, the CPUs of the scenarios
    and of the capacity arithmetic (CONFIG_NR_CPUS, the worst case of possible CPUs),
    the static percpu size and the capture bundles of real kernels."""

    kernel: str
    nr_cpus: int
    capacity_cpus: int
    static_size: int
    bundles: tuple[Path, ...] = ()  # capture bundles, one per configuration


PLACEMENT = f"rfc.DEFAULT_PLACEMENT: {DEFAULT_PLACEMENT.describe()}"
SCHEME = f"ops.DEFAULT_LOCAL_SCHEME: {DEFAULT_LOCAL_SCHEME.describe()}"
SYNC = ("patch 01/11's ARCH_PAGE_TABLE_SYNC_MASK is the root level's PGTBL_*_MODIFIED bit "
        "and its arch_sync_kernel_mappings() copies swapper's root entries to every other "
        "CPU's root (kernel.pgtable module docstring)")


def patched_layout(cfg: KernelConfig) -> Layout | None:
    """The patched layout, or None where the patch cannot apply (kernels before 6.9)."""
    if not local_percpu_supported(cfg.kernel):
        return None
    return compute_layout(cfg.replace(local_percpu=True))


def cannot_hold(claim: Claim, cfg: KernelConfig, lay: Layout | None) -> ClaimResult:
    """The row of a claim that cannot be posed: patch 02/11 does not apply to this kernel
    (`lay` None) or its layout is broken (kernel arithmetic: patch 02/11's formulas)."""
    if lay is None:
        return ClaimResult(claim, cfg.label(), "cannot hold",
                           f"{local_percpu_refusal(cfg.kernel)}.", "layout.compute_layout",
                           "kernel arithmetic")
    sym = lay.symbols
    codes = ", ".join(sorted({f.code for f in lay.problems}))
    return ClaimResult(claim, cfg.label(), "cannot hold",
                       f"The patched layout is broken ({codes}): two areas of PERCPU_SIZE "
                       f"{format_size(sym['PERCPU_SIZE'])} (PGDIR_SIZE "
                       f"{format_size(sym['PGDIR_SIZE'])}) do not fit below vmemmap.",
                       "layout.compute_layout(local_percpu=True).problems",
                       "kernel arithmetic",
                       numbers={"PGDIR_SIZE": sym["PGDIR_SIZE"],
                                "PERCPU_SIZE": sym["PERCPU_SIZE"]})


def cycles(value: float) -> str:
    """An estimated cycle count as precise as the estimates behind it: whole cycles."""
    return f"~{value:.0f}"


def cycle_span(values: pd.Series) -> str:
    """`lo..hi` of estimated cycle counts in whole cycles, one number when they agree."""
    lo, hi = round(float(values.min())), round(float(values.max()))
    return f"~{lo}" if lo == hi else f"~{lo} to {hi}"


def percent(part: float, whole: float) -> str:
    """`part` as a share of `whole`, one decimal."""
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def first_chunk_unit(cfg: KernelConfig) -> int:
    """The first chunk's unit of the page-table scenarios: DEFAULT_UNIT_SIZE in pages,
    as build_first_chunk() maps it."""
    return kernel_first_chunk_unit(cfg.page_size)
