"""this_cpu_*() operations: instruction sequences and costs, preemption
interleavings, workloads and their pricing.
"""

from .cost import (
    CostReplay,
    cost_replay,
    replay_to_dict,
    reviewer_view,
    semantic_replay,
)
from .interleave import (
    Exploration,
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
    "CostReplay",
    "Exploration",
    "LocalScheme",
    "SchemeVariant",
    "core_profile",
    "core_profile_from_dict",
    "cost_replay",
    "explore",
    "generate",
    "insn_cost",
    "op_cost",
    "op_pair",
    "op_sequence",
    "ops_table",
    "preemption_points",
    "read_workload",
    "replay_to_dict",
    "reviewer_view",
    "safety_table",
    "semantic_replay",
    "sizes_for",
]
