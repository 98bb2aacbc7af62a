"""mm/percpu.c and mm/percpu-vm.c: the first chunk, chunks with their bitmaps and
block hints, the allocator, percpu_stats, request histories, kernel trace replay and
capacity.
"""

from .allocator import (
    DEFAULT_STATIC_SIZE,
    PCPU_MIN_ALLOC_SIZE,
    PercpuAllocator,
    PercpuBuild,
    TraceReplay,
    boot_lines,
    boot_percpu,
    build_alloc_info,
    capacity,
    offset_extremes,
    read_requests,
    replay_trace,
    run_history,
    synthetic_history,
)

__all__ = [
    "DEFAULT_STATIC_SIZE",
    "PCPU_MIN_ALLOC_SIZE",
    "PercpuAllocator",
    "PercpuBuild",
    "TraceReplay",
    "boot_lines",
    "boot_percpu",
    "build_alloc_info",
    "capacity",
    "offset_extremes",
    "read_requests",
    "replay_trace",
    "run_history",
    "synthetic_history",
]
