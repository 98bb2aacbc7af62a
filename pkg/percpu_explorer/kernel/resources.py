"""How much memory this process may still take, and refusing work that would need more.

Work that grows with an input (page tables per CPU, a chunk's bitmaps, a generated
workload) estimates its memory before it starts and calls `check_memory`, which raises
an `InputError` naming the request when the estimate is beyond what the machine has
free (MemAvailable of /proc/meminfo) or what the process may still map (RLIMIT_AS).
"""

from __future__ import annotations

import os
import resource

from ..errors import InputError
from .units import format_size

__all__ = ["available_memory", "check_memory"]


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _mapped_now() -> int:
    """This process's virtual size (VmSize), what RLIMIT_AS counts."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def available_memory() -> int | None:
    """Bytes this process can still take: the smaller of the machine's available memory
    and what RLIMIT_AS leaves; None when neither is known."""
    limits = []
    free = _meminfo_available()
    if free is not None:
        limits.append(free)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(max(soft - _mapped_now(), 0))
    return min(limits) if limits else None


def check_memory(need: int, what: str, fix: str) -> None:
    """InputError when `need` bytes (an estimate of `what`) exceed `available_memory()`;
    `fix` says what to ask for instead."""
    free = available_memory()
    if free is not None and need > free:
        raise InputError(f"{what} needs about {format_size(need)} of memory, more than the "
                         f"{format_size(free)} this machine has free; {fix}")
