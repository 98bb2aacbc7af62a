"""The checklist's vocabulary: the claims of the series in their own words, a row
and its verdicts, the context of one evaluation, the assumptions rows name, and the
row of a claim the patched layout cannot pose."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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

VERDICTS = ("holds", "fails", "holds with caveat", "cannot hold", "assumption")
COLUMNS = ["claim_id", "claim", "words", "config", "verdict", "evidence", "source",
           "assumption", "numbers"]

# arch/arm64/Kconfig: config NR_CPUS ... default "512".
DEFAULT_CAPACITY_CPUS = 512
NO_CAPTURE = "no capture available"


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
    Claim("9a", "preempt safety", "this_cpu ops are safe without the preemption bracket "
          "(single LSE instructions and LL/SC loops; not a plain load-modify-store)"),
    Claim("9b", "op cost", "What each this_cpu op costs before and after patch 11/11"),
    Claim("10", "sys-time saving", "160-core AmpereOne, 4K pages: 13-18% less sys time "
          "(LWN report of the LSF/MM/BPF talk)"),
)
CLAIM_BY_ID = {c.id: c for c in CLAIMS}


@dataclass(frozen=True)
class ClaimResult:
    """One row of the checklist."""

    claim: Claim
    config: str
    verdict: str
    evidence: str
    source: str
    assumption: str = ""
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is unknown; use one of {VERDICTS}")

    def row(self) -> dict[str, Any]:
        return {"claim_id": self.claim.id, "claim": self.claim.name, "words": self.claim.words,
                "config": self.config, "verdict": self.verdict, "evidence": self.evidence,
                "source": self.source, "assumption": self.assumption,
                "numbers": dict(self.numbers)}


@dataclass(frozen=True)
class Context:
    """What every claim of one evaluation shares: the kernel, the CPUs of the scenarios
    and of the capacity arithmetic, the static percpu size and what a captured kernel's
    configuration says about preemption."""

    kernel: str
    nr_cpus: int
    capacity_cpus: int
    static_size: int
    preempt_note: str = ""  # what a real kernel's config says about preemption


PLACEMENT = f"rfc.DEFAULT_PLACEMENT: {DEFAULT_PLACEMENT.describe()}"
SCHEME = f"ops.DEFAULT_LOCAL_SCHEME: {DEFAULT_LOCAL_SCHEME.describe()}"
SYNC = ("patch 01/11's ARCH_PAGE_TABLE_SYNC_MASK is the root level's PGTBL_*_MODIFIED bit "
        "(see the pgtable module docstring)")


def patched_layout(cfg: KernelConfig) -> Layout | None:
    """The patched layout, or None where the patch cannot apply (kernels before 6.9)."""
    if not local_percpu_supported(cfg.kernel):
        return None
    return compute_layout(cfg.replace(local_percpu=True))


def cannot_hold(claim: Claim, cfg: KernelConfig, lay: Layout | None) -> ClaimResult:
    """The row of a claim that cannot be posed: patch 02/11 does not apply to this kernel
    (`lay` None) or its layout is broken."""
    if lay is None:
        return ClaimResult(claim, cfg.label(), "cannot hold",
                           f"{local_percpu_refusal(cfg.kernel)}.", "layout.compute_layout")
    sym = lay.symbols
    codes = ", ".join(sorted({f.code for f in lay.problems}))
    return ClaimResult(claim, cfg.label(), "cannot hold",
                       f"The patched layout is broken ({codes}): two areas of PERCPU_SIZE "
                       f"{format_size(sym['PERCPU_SIZE'])} (PGDIR_SIZE "
                       f"{format_size(sym['PGDIR_SIZE'])}) do not fit below vmemmap.",
                       "layout.compute_layout(local_percpu=True).problems",
                       numbers={"PGDIR_SIZE": sym["PGDIR_SIZE"],
                                "PERCPU_SIZE": sym["PERCPU_SIZE"]})


def cycle_span(values: pd.Series) -> str:
    """`lo..hi` of a series of cycle counts, or one number when they are all equal."""
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f} to {hi:.1f}"


def percent(part: float, whole: float) -> str:
    """`part` as a share of `whole`, one decimal."""
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def first_chunk_unit(cfg: KernelConfig) -> int:
    """The first chunk's unit of the page-table scenarios: DEFAULT_UNIT_SIZE in pages,
    as build_first_chunk() maps it."""
    return kernel_first_chunk_unit(cfg.page_size)
