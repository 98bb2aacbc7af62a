"""The reviewer's checklist: every checkable claim of the RFC series, evaluated by the models.

"[RFC v1 PATCH 0/11] Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)"
makes claims a reviewer wants to check (`CLAIMS`, in the series' and patch 02/11's own
words). `evaluate_claims(kernel)` answers each one for every valid configuration of that
kernel (no KASAN) where the answer depends on the configuration, and once where it does
not, by calling the models: `layout` (areas, vmalloc), `pgtable` (per-CPU roots, the sync
skip, shared TLB entries), `allocator` (offsets, capacity), `ops`/`interleave`/`cost`
(preemption safety, cost, the sys-time saving) and, where a real kernel capture exists
next to the package (`data/captures`), `captures.compare` (the Debian 6.12 4K/52 kernel).

Verdicts (`VERDICTS`):
- "holds": the models confirm the claim for this configuration;
- "holds with caveat": confirmed, with a limit the evidence names;
- "fails": the models contradict the claim;
- "cannot hold": the patched layout is broken here, so the claim cannot even be posed;
- "assumption": the answer rests on what the model assumes about the unpublished
  patches 03-11 (`rfc.DEFAULT_PLACEMENT`, `ops.DEFAULT_LOCAL_SCHEME`); the evidence shows
  the numbers under that assumption.
Rows whose answer uses an assumption name it in the `assumption` column.

CPU counts are kept small (`nr_cpus`, 4 by default) where page tables are built; the
capacity question uses `capacity_cpus` (512, arm64's default CONFIG_NR_CPUS) and is
pure arithmetic.

Modules: `common` (claims, rows, verdicts), `layout` (claims 1, 5, 6), `pgtables`
(2, 7, 8a, 8b), `allocator` (3, 4), `thiscpu` (9a, 9b, 10), `captures` (the rows of
real kernels) and `checklist` (`evaluate_claims`, `format_claims`, `claims_table`).
"""

from .allocator import HISTORY, claim_offsets, claim_same_offset
from .captures import claim_fits_capture, claim_offsets_capture, default_captures_dir
from .checklist import FORMATS, claims_table, evaluate_claims, format_claims, verdict_counts
from .common import (
    CLAIMS,
    COLUMNS,
    DEFAULT_CAPACITY_CPUS,
    NO_CAPTURE,
    VERDICTS,
    Claim,
    ClaimResult,
)
from .layout import claim_area_size, claim_fits, claim_vmalloc_lost
from .pgtables import claim_kpti, claim_pgd_sync, claim_shared_tlb, claim_skip_boundary
from .thiscpu import (
    PREEMPT_LABELS,
    claim_op_cost,
    claim_preempt_safety,
    claim_sys_saving,
    claim_sys_saving_rows,
)

__all__ = [
    "CLAIMS",
    "COLUMNS",
    "DEFAULT_CAPACITY_CPUS",
    "FORMATS",
    "HISTORY",
    "NO_CAPTURE",
    "PREEMPT_LABELS",
    "VERDICTS",
    "Claim",
    "ClaimResult",
    "claim_area_size",
    "claim_fits",
    "claim_fits_capture",
    "claim_kpti",
    "claim_offsets",
    "claim_offsets_capture",
    "claim_op_cost",
    "claim_pgd_sync",
    "claim_preempt_safety",
    "claim_same_offset",
    "claim_shared_tlb",
    "claim_skip_boundary",
    "claim_sys_saving",
    "claim_sys_saving_rows",
    "claim_vmalloc_lost",
    "claims_table",
    "default_captures_dir",
    "evaluate_claims",
    "format_claims",
    "verdict_counts",
]
