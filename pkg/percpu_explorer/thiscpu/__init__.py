"""this_cpu_*() operations: instruction sequences and costs, preemption
interleavings, workloads and their pricing.
"""

from .cost import (
    WorkloadCost,
    cost_by_class,
    cost_to_dict,
    price_workload,
    resolve_workload,
    reviewer_view,
)
from .interleave import (
    Exploration,
    Step,
    explore,
    op_pair,
    preemption_points,
    safety_table,
)
from .ops import (
    ATOMICS,
    CORE_PROFILES,
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    OPS,
    PREEMPT_MODELS,
    SCHEMES,
    LocalScheme,
    SchemeVariant,
    core_profile,
    core_profile_from_dict,
    default_size,
    insn_cost,
    op_cost,
    op_sequence,
    ops_table,
    sizes_for,
)
from .workloads import (
    PATTERNS,
    generate,
    read_workload,
)

__all__ = [
    "ATOMICS",
    "CORE_PROFILES",
    "DEFAULT_CORE",
    "DEFAULT_LOCAL_SCHEME",
    "OPS",
    "PATTERNS",
    "PREEMPT_MODELS",
    "SCHEMES",
    "Exploration",
    "LocalScheme",
    "SchemeVariant",
    "Step",
    "WorkloadCost",
    "core_profile",
    "core_profile_from_dict",
    "cost_by_class",
    "cost_to_dict",
    "default_size",
    "explore",
    "generate",
    "insn_cost",
    "op_cost",
    "op_pair",
    "op_sequence",
    "ops_table",
    "preemption_points",
    "price_workload",
    "read_workload",
    "resolve_workload",
    "reviewer_view",
    "safety_table",
    "sizes_for",
]
