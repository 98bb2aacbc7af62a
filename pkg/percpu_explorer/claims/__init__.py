"""The reviewer's checklist: every checkable claim of the RFC series, evaluated by the
models and graded by the evidence it stands on.

"[RFC v1 PATCH 0/11] Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)"
makes claims a reviewer wants to check (`CLAIMS`, in the series' and patch 02/11's own
words, plus risks it does not mention). `evaluate_claims(kernel)` answers each one for
every valid configuration of that kernel (no KASAN) where the answer depends on the
configuration, once or once per kernel world where it does not, by calling the models:
`layout` (areas, vmalloc), `pgtable` (per-CPU roots, the sync skip, shared TLB entries,
KPTI, software PAN), `allocator` (offsets, capacity), `ops`/`interleave`/`cost`
(preemption safety, the bracket, cost, the sys-time saving) and, where real kernel
captures exist next to the package (`data/captures`), `captures.compare` (the Debian
6.12 4K/52 kernel).

Every row carries a `basis` (`BASES`): "kernel arithmetic" (the kernel's own formulas
for the configuration), "real kernel" (seen in a capture), "assumption" (rests on what
the unpublished patches are assumed to do: `rfc.DEFAULT_PLACEMENT`, patch 01/11's sync
mask, `ops.DEFAULT_LOCAL_SCHEME`, ...) or "estimate" (rests on estimated instruction
costs). A bare outcome (`OUTCOMES`: holds, holds with caveat, fails, cannot hold, not
checked) is a verdict only on the first two; on the others the verdict is conditional
("fails if ...") and `depends_on` names the assumption or the estimated costs with the
value at which the verdict flips. `ClaimResult` refuses anything else.

CPU counts are kept small (`nr_cpus`, 4 by default) where page tables are built; the
area-size question uses `capacity_cpus` (512, arm64's default CONFIG_NR_CPUS, the
worst case of possible CPUs) and is pure arithmetic.

Modules: `common` (claims, rows, grades), `layout` (claims 1, 5, 6), `pgtables`
(2, 7, 8a, 8b, 8c), `allocator` (3, 4), `thiscpu` (9a, 9b, 9c, 10), `captures` (the rows
of real kernels) and `checklist` (`evaluate_claims`, `format_claims`, `claims_table`,
`verdict_counts`, `basis_counts`, `by_basis`, the one-row-per-claim `claims_summary` and
the checklist's answer `checklist_finding`).
"""

from .allocator import HISTORY, claim_offsets, claim_same_offset
from .captures import (
    claim_area_size_capture,
    claim_fits_capture,
    claim_offsets_capture,
    default_captures_dir,
)
from .census import CENSUS_QUESTION, DEFAULT_CENSUS, CensusReview, census_review, claim_census_rows
from .checklist import (
    FORMATS,
    SUMMARY_COLUMNS,
    basis_counts,
    by_basis,
    checklist_finding,
    claims_summary,
    claims_table,
    evaluate_claims,
    format_claims,
    md_escape,
    verdict_counts,
)
from .common import (
    BASES,
    CLAIMS,
    COLUMNS,
    DEFAULT_CAPACITY_CPUS,
    HARD_BASES,
    NO_CAPTURE,
    OUTCOMES,
    Claim,
    ClaimResult,
    conditional,
)
from .layout import claim_area_size, claim_fits, claim_vmalloc_lost, max_possible_cpus
from .pgtables import (
    claim_kpti,
    claim_pgd_sync,
    claim_shared_tlb,
    claim_skip_boundary,
    claim_sw_pan,
    local_mappings_at_end,
)
from .thiscpu import (
    World,
    claim_bracket_rows,
    claim_op_cost,
    claim_op_cost_rows,
    claim_preempt_safety,
    claim_sys_saving,
    claim_sys_saving_rows,
    worlds,
)

__all__ = [
    "BASES",
    "CENSUS_QUESTION",
    "CLAIMS",
    "COLUMNS",
    "DEFAULT_CAPACITY_CPUS",
    "DEFAULT_CENSUS",
    "FORMATS",
    "HARD_BASES",
    "HISTORY",
    "NO_CAPTURE",
    "OUTCOMES",
    "SUMMARY_COLUMNS",
    "CensusReview",
    "Claim",
    "ClaimResult",
    "World",
    "basis_counts",
    "by_basis",
    "census_review",
    "checklist_finding",
    "claim_area_size",
    "claim_area_size_capture",
    "claim_bracket_rows",
    "claim_census_rows",
    "claim_fits",
    "claim_fits_capture",
    "claim_kpti",
    "claim_offsets",
    "claim_offsets_capture",
    "claim_op_cost",
    "claim_op_cost_rows",
    "claim_pgd_sync",
    "claim_preempt_safety",
    "claim_same_offset",
    "claim_shared_tlb",
    "claim_skip_boundary",
    "claim_sw_pan",
    "claim_sys_saving",
    "claim_sys_saving_rows",
    "claim_vmalloc_lost",
    "claims_summary",
    "claims_table",
    "conditional",
    "default_captures_dir",
    "evaluate_claims",
    "format_claims",
    "local_mappings_at_end",
    "max_possible_cpus",
    "md_escape",
    "verdict_counts",
    "worlds",
]
