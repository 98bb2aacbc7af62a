"""How many visitors the classroom app holds, and what it does with the ones it cannot.

Every visitor of a dashboard gets a kernel of their own (a Python process running the
notebook). The app holds at most `max_kernels` of them at once (`percpu-explorer app
--max-kernels N`); by default as many as 80% of the memory available when the app starts
allows at `KERNEL_MB` each, less the pre-started kernels. Past the cap a visitor gets
`full_page()` (HTTP 503 with Retry-After) at once, never a page that hangs.

A visitor's kernel is shut down when nobody is connected to it any more (tab closed,
connection dropped) and it has been idle `CULL_IDLE_S` seconds; the server looks every
`CULL_INTERVAL_S` seconds, so a kernel left alone goes within CULL_IDLE_S + CULL_INTERVAL_S
seconds of its last message. Pre-started kernels (`--pool-size N` per dashboard) are
opt-in: a pre-started kernel handed to a visitor has been seen culled before the
visitor's websocket connected (it had waited idle longer than CULL_IDLE_S), so the default
is none.

This module computes; `ui.voila_server` applies it inside Voila's server.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

KERNEL_MB = 300          # budget per kernel: measured RSS after a dashboard, rounded up
MEMORY_SHARE = 0.8       # of the memory available when the app starts
CULL_IDLE_S = 30         # a kernel nobody is connected to goes after this long idle
CULL_INTERVAL_S = 10     # how often the server looks
RETRY_AFTER_S = 60       # what the "class is full" page asks the visitor to wait
POOL_SIZE = 0            # pre-started kernels per dashboard (0: none; see above)
MAX_KERNELS_LIMIT = 10_000


def check_max_kernels(n: int) -> int:
    if not 1 <= n <= MAX_KERNELS_LIMIT:
        raise ValueError(f"--max-kernels {n} is out of range; use 1..{MAX_KERNELS_LIMIT} "
                         f"(default: from the memory available, {KERNEL_MB} MB per kernel)")
    return n


def check_pool_size(n: int) -> int:
    if not 0 <= n <= 8:
        raise ValueError(f"--pool-size {n} is out of range; use 0 (no pre-started kernels) "
                         f"..8 per dashboard (default {POOL_SIZE})")
    return n


def available_memory() -> int:
    """Bytes of memory available for new processes now (MemAvailable)."""
    import psutil

    return int(psutil.virtual_memory().available)


def default_max_kernels(available: int | None = None, dashboards: int = 6,
                        pool_size: int = POOL_SIZE, kernel_mb: int = KERNEL_MB) -> int:
    """Visitors' kernels that fit: MEMORY_SHARE of `available` bytes at `kernel_mb` each,
    less the pre-started kernels (`pool_size` per dashboard); at least 1."""
    free = MEMORY_SHARE * (available_memory() if available is None else available)
    fits = int(free // (kernel_mb * 2**20)) - pool_size * dashboards
    return max(1, min(fits, MAX_KERNELS_LIMIT))


def visitor_kernels(kernel_ids: Iterable[str], taken: Iterable[str], arriving: int) -> int:
    """Kernels that count against the cap: the running kernels visitors have taken
    (started for them, or handed over from a pool), plus the visitors whose kernel is
    being started or handed over right now. A pre-started kernel, waiting in its pool or
    still starting, never counts; a visitor's kernel counts once, listed or not yet."""
    return len(set(kernel_ids) & set(taken)) + arriving


def pool_contents(kernel_manager: Any) -> list[dict[str, Any]]:
    """What each started pre-started kernel in Voila's pools holds (its "kernel_id", and
    the "task" running its notebook); none without pools."""
    return [task.result() for pool in getattr(kernel_manager, "_pools", {}).values()
            for task in pool
            if task.done() and not task.cancelled() and task.exception() is None]


def pooled_kernel_ids(kernel_manager: Any) -> set[str]:
    """Ids of the pre-started kernels still waiting in Voila's pools (none without)."""
    return {content["kernel_id"] for content in pool_contents(kernel_manager)}


def full_page(open_kernels: int, max_kernels: int, retry_after: int = RETRY_AFTER_S) -> str:
    """The page a visitor gets past the cap: what happened and when to try again; it
    reloads by itself after `retry_after` seconds."""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{retry_after}">
<title>The class is full</title>
<style>body {{ font-family: sans-serif; max-width: 40em; margin: 4em auto; }}</style>
</head><body>
<h1>The class is full, try again in a minute</h1>
<p>Every place is taken: this machine holds {html.escape(str(max_kernels))} open
dashboards at once, and {open_kernels} are open. Each closed tab frees its place within
a minute. This page tries again by itself in {retry_after} seconds.</p>
<p><a href="/">Back to the list of dashboards</a></p>
</body></html>
"""
