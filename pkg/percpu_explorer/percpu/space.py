"""Space for percpu chunks, the patch's claims about it: how far from pcpu_base_addr
chunks reach (offset_extremes), and how much dynamic percpu memory fits the placement
area (capacity, capacity_table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..kernel import (
    DEFAULT_KERNEL,
    KernelConfig,
    compute_layout,
    format_size,
    u64,
    valid_configs,
)
from .allocator import PercpuAllocator
from .first_chunk import DEFAULT_STATIC_SIZE, AllocInfo, build_alloc_info


def offset_extremes(alloc: PercpuAllocator) -> dict[str, int]:
    """The largest distance from pcpu_base_addr of any chunk byte in use: what patch
    02/11 calls the offset that "could be quite big"."""
    ends = [c.base_addr + c.nr_pages * alloc.page_size for c in alloc.chunks]
    starts = [c.base_addr for c in alloc.chunks]
    return {"max_offset": max(e - alloc.base_addr for e in ends),
            "min_offset": min(s - alloc.base_addr for s in starts)}


def capacity(cfg: KernelConfig, ai: AllocInfo) -> dict[str, Any]:
    """How much dynamic percpu memory per CPU fits: the first chunk's dynamic part plus
    one unit per further chunk that fits the placement area (the Global Percpu area
    with the patch, vmalloc without it, assumed otherwise empty). Each chunk needs
    nr_units * unit_size bytes of congruent space, aligned to the atom size."""
    sym = compute_layout(cfg).symbols
    span = ai.span
    if cfg.local_percpu:
        area = sym["PERCPU_SIZE"]
        room = area - span if span <= area else -1
    else:
        area = u64(sym["VMALLOC_END"] - sym["VMALLOC_START"])
        room = area
    chunks = max(room, 0) // span if room >= 0 else 0
    return {
        "config": cfg.label(), "local_percpu": cfg.local_percpu, "nr_cpus": ai.nr_possible_cpus,
        "unit_size": ai.unit_size, "chunk_span": span, "area_size": area,
        "first_chunk_fits": room >= 0, "dynamic_chunks": chunks,
        "bytes_per_cpu": (ai.dyn_size + chunks * ai.unit_size) if room >= 0 else 0,
        # pcpu_embed_first_chunk() warns when the groups spread over 3/4 of vmalloc
        "embed_warns": span > u64(sym["VMALLOC_END"] - sym["VMALLOC_START"]) * 3 // 4,
    }


def capacity_table(kernel: str = DEFAULT_KERNEL, *, static_size: int = DEFAULT_STATIC_SIZE,
                   cpu_counts: Sequence[int] = (64, 256, 1024, 4096)) -> pd.DataFrame:
    """`capacity` for every valid configuration (no KASAN) and CPU count, mainline and
    patched side by side. Counts and sizes are integers; the patched ones are missing
    (pd.NA) where patch 02/11's layout is broken or the first chunk does not fit its
    Global Percpu area, and `patched_layout` says which, in words ("fits" otherwise)."""
    rows = []
    for base in valid_configs(kernel, kasan=("none",)):
        patched_cfg = base.replace(local_percpu=True)
        patched_layout = compute_layout(patched_cfg)
        for nr in cpu_counts:
            ai = build_alloc_info(static_size, nr_cpus=nr, page_size=base.page_size)
            main = capacity(base, ai)
            row = {"config": base.label(), "nr_cpus": nr, "unit_size": ai.unit_size,
                   "chunk_span": main["chunk_span"], "mainline_chunks": main["dynamic_chunks"],
                   "mainline_bytes_per_cpu": main["bytes_per_cpu"], "area_size": None,
                   "patched_chunks": None, "patched_bytes_per_cpu": None,
                   "first_chunk_fits": None}
            if patched_layout.sane:
                pat = capacity(patched_cfg, ai)
                row.update(area_size=pat["area_size"], first_chunk_fits=pat["first_chunk_fits"])
                if pat["first_chunk_fits"]:
                    row.update(patched_chunks=pat["dynamic_chunks"],
                               patched_bytes_per_cpu=pat["bytes_per_cpu"], patched_layout="fits")
                else:
                    row["patched_layout"] = (
                        f"the first chunk does not fit: {nr} units of "
                        f"{format_size(ai.unit_size)} take {format_size(ai.span)}, more "
                        f"than the {format_size(pat['area_size'])} Global Percpu area")
            else:
                problem = patched_layout.problems[0]
                row["patched_layout"] = (f"no patched layout: with the two 2 * PGDIR_SIZE "
                                         f"areas, {_first_clause(problem.message)}")
            rows.append(row)
    frame = pd.DataFrame(rows)
    for col in ("area_size", "patched_chunks", "patched_bytes_per_cpu"):
        frame[col] = pd.array(frame[col], dtype="Int64")
    frame["first_chunk_fits"] = pd.array(frame["first_chunk_fits"], dtype="boolean")
    return frame


def _first_clause(message: str) -> str:
    """A layout problem's first clause, lower-cased: "the vmalloc area is negative"."""
    clause = message.split(":", 1)[0].rstrip(".")
    return clause[:1].lower() + clause[1:]
