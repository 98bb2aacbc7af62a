"""mm/percpu.c and mm/percpu-vm.c: the first chunk, chunks with their bitmaps and
block hints, the allocator, percpu_stats, request histories, kernel trace replay and
capacity.

Modules, bottom up: errors; bitmap (find_*_bit on ints); chunk (struct pcpu_chunk,
block hints, area search); first_chunk (pcpu_build_alloc_info, boot lines, unit
geometry); slots (the chunk lists); vm (mm/percpu-vm.c: chunk placement, pages,
mappings); stats (percpu_stats and frames); pool (creating, populating and destroying
chunks); allocator (pcpu_alloc, free_percpu, balance work); history (request CSVs);
trace (kernel trace replay); space (offsets and capacity); steps (a history request
by request); findings (offsets and capacity in sentences).
"""

from .allocator import PercpuAllocator, boot_percpu
from .chunk import PCPU_MIN_ALLOC_SIZE
from .errors import AreaExhausted, PercpuError
from .findings import capacity_finding, offsets_finding, offsets_table
from .first_chunk import DEFAULT_STATIC_SIZE, PercpuBuild, boot_lines, build_alloc_info
from .history import read_requests, run_history, synthetic_history, validate_requests
from .space import capacity, capacity_table, offset_extremes
from .stats import chunk_row
from .steps import RequestStep, SteppedHistory, step_history
from .trace import TraceReplay, replay_trace

__all__ = [
    "DEFAULT_STATIC_SIZE",
    "PCPU_MIN_ALLOC_SIZE",
    "AreaExhausted",
    "PercpuAllocator",
    "PercpuBuild",
    "PercpuError",
    "RequestStep",
    "SteppedHistory",
    "TraceReplay",
    "boot_lines",
    "boot_percpu",
    "build_alloc_info",
    "capacity",
    "capacity_finding",
    "capacity_table",
    "chunk_row",
    "offset_extremes",
    "offsets_finding",
    "offsets_table",
    "read_requests",
    "replay_trace",
    "run_history",
    "step_history",
    "synthetic_history",
    "validate_requests",
]
