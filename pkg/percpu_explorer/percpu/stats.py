"""What the allocator reports: debugfs percpu_stats (mm/percpu-stats.c) and DataFrame
views of its decisions, chunks and live allocations."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from .bitmap import find_last_bit, find_next_bit
from .chunk import PCPU_MIN_ALLOC_SIZE, Chunk

if TYPE_CHECKING:
    from .allocator import PercpuAllocator


@dataclass(slots=True)
class PercpuStats:
    """struct percpu_stats (mm/percpu-internal.h): the global counters of debugfs
    percpu_stats, in the order it prints them."""

    nr_alloc: int = 0
    nr_dealloc: int = 0
    nr_cur_alloc: int = 0
    nr_max_alloc: int = 0
    nr_chunks: int = 0
    nr_max_chunks: int = 0
    min_alloc_size: int = 0
    max_alloc_size: int = 0

    def area_alloc(self, size: int) -> None:
        """pcpu_stats_area_alloc() (the global part)."""
        self.nr_alloc += 1
        self.nr_cur_alloc += 1
        self.nr_max_alloc = max(self.nr_max_alloc, self.nr_cur_alloc)
        self.min_alloc_size = min(self.min_alloc_size, size)
        self.max_alloc_size = max(self.max_alloc_size, size)

    def area_dealloc(self) -> None:
        """pcpu_stats_area_dealloc()."""
        self.nr_dealloc += 1
        self.nr_cur_alloc -= 1

    def chunk_alloc(self) -> None:
        """pcpu_stats_chunk_alloc()."""
        self.nr_chunks += 1
        self.nr_max_chunks = max(self.nr_max_chunks, self.nr_chunks)

    def chunk_dealloc(self) -> None:
        """pcpu_stats_chunk_dealloc()."""
        self.nr_chunks -= 1

    def restore(self, saved: PercpuStats) -> None:
        """Every counter back to `saved` (a copy taken earlier)."""
        for f in dataclasses.fields(self):
            setattr(self, f.name, getattr(saved, f.name))


def chunk_stats(chunk: Chunk) -> dict[str, int]:
    """chunk_map_stats() (mm/percpu-stats.c): fragmentation up to the last allocation."""
    size = chunk.map_bits - chunk.end_offset // PCPU_MIN_ALLOC_SIZE - 1
    last = find_last_bit(chunk.alloc_map, size)
    last = last + 1 if (chunk.alloc_map >> last) & 1 else 0
    sizes: list[int] = []
    start = chunk.start_offset // PCPU_MIN_ALLOC_SIZE
    while start < last:
        if (chunk.alloc_map >> start) & 1:
            end = find_next_bit(chunk.bound_map, last, start + 1)
            sizes.append((end - start) * PCPU_MIN_ALLOC_SIZE)
        else:
            end = find_next_bit(chunk.alloc_map, last, start + 1)
            sizes.append(-(end - start) * PCPU_MIN_ALLOC_SIZE)
        start = end
    sum_frag = max_frag = cur_min = cur_med = cur_max = 0
    if sizes:
        sizes.sort()
        i = 0
        while i < len(sizes) and sizes[i] < 0:
            sum_frag -= sizes[i]
            max_frag = max(max_frag, -sizes[i])
            i += 1
        cur_min = sizes[i] if i < len(sizes) else 0
        cur_med = sizes[(i + len(sizes) - 1) // 2]
        cur_max = sizes[-1]
    return {"nr_alloc": len(chunk.allocs), "max_alloc_size": chunk.max_alloc_size,
            "empty_pop_pages": chunk.nr_empty_pop_pages,
            "first_bit": chunk.chunk_md.first_free, "free_bytes": chunk.free_bytes,
            "contig_bytes": chunk.chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE,
            "sum_frag": sum_frag, "max_frag": max_frag, "cur_min_alloc": cur_min,
            "cur_med_alloc": cur_med, "cur_max_alloc": cur_max}


def percpu_stats(alloc: PercpuAllocator) -> dict[str, Any]:
    """The data of debugfs percpu_stats: allocation info, global stats, and per chunk
    (reserved chunk first, then the chunks slot by slot, as the kernel walks them)."""
    ai = alloc.ai
    lists = alloc.lists
    chunks = []
    if alloc.reserved_chunk is not None:
        chunks.append(("<- Reserved Chunk", alloc.reserved_chunk))
    for slot, lst in enumerate(lists.slots):
        for chunk in lst:
            if chunk is alloc.first_chunk:
                label = "<- First Chunk"
            elif slot == lists.to_depopulate_slot:
                label = "(to_depopulate)"
            elif slot == lists.sidelined_slot:
                label = "(sidelined):"
            else:
                label = ""
            chunks.append((label, chunk))
    return {
        "alloc_info": {"unit_size": ai.unit_size, "static_size": ai.static_size,
                       "reserved_size": ai.reserved_size, "dyn_size": ai.dyn_size,
                       "atom_size": ai.atom_size, "alloc_size": ai.alloc_size},
        "global": dataclasses.asdict(alloc.stats_counters)
        | {"empty_pop_pages": alloc.nr_empty_pop_pages},
        "chunks": [{"label": label, "id": c.id, "base_addr": c.base_addr}
                   | chunk_stats(c) for label, c in chunks],
    }


def percpu_stats_text(alloc: PercpuAllocator) -> str:
    """/sys/kernel/debug/percpu_stats, line for line."""
    data = percpu_stats(alloc)
    out = ["Percpu Memory Statistics", "Allocation Info:", "-" * 40]
    out += [f"  {k:<20}: {v:12d}" for k, v in data["alloc_info"].items()]
    out += ["", "Global Stats:", "-" * 40]
    out += [f"  {k:<20}: {v:12d}" for k, v in data["global"].items()]
    out += ["", "Per Chunk Stats:", "-" * 40]
    for chunk in data["chunks"]:
        label = chunk["label"]
        if label.startswith("(to_depopulate)"):
            out.append("Chunk (to_depopulate)")
        elif label.startswith("(sidelined)"):
            out.append("Chunk (sidelined):")
        else:
            out.append(f"Chunk: {label}".rstrip() if label else "Chunk:")
        out += [f"  {k:<20}: {v:12d}" for k, v in chunk.items()
                if k not in ("label", "id", "base_addr")]
        out.append("")
    return "\n".join(out) + "\n"


def events_frame(alloc: PercpuAllocator) -> pd.DataFrame:
    """Every decision so far, one row each."""
    return pd.DataFrame([dataclasses.asdict(e) for e in alloc.events])


def chunks_frame(alloc: PercpuAllocator) -> pd.DataFrame:
    """One row per chunk: where it is, its slot, free space and population.

    `unit_size` is a unit of the chunk (nr_pages pages) and `alloc_bytes` what its live
    allocations take in each unit; [offset_from_base, end_offset_from_base) spans all
    its units (pcpu_chunk_addr() of the highest unit's end), from pcpu_base_addr."""
    last_unit = max(alloc.unit_offsets.values(), default=0)
    return pd.DataFrame([chunk_row(alloc, c, last_unit) for c in alloc.chunks])


def chunk_row(alloc: PercpuAllocator, c: Chunk, last_unit: int | None = None
              ) -> dict[str, Any]:
    """One chunk's row of `chunks_frame` (`last_unit`: the highest unit offset)."""
    if last_unit is None:
        last_unit = max(alloc.unit_offsets.values(), default=0)
    unit_size = c.nr_pages * alloc.page_size
    offset = c.base_addr - alloc.base_addr
    return {
        "id": c.id, "kind": c.kind, "base_addr": c.base_addr,
        "slot": c.slot, "nr_pages": c.nr_pages,
        "free_bytes": c.free_bytes,
        "contig_bytes": c.chunk_md.contig_hint * PCPU_MIN_ALLOC_SIZE,
        "nr_alloc": len(c.allocs), "nr_populated": c.nr_populated,
        "empty_pop_pages": c.nr_empty_pop_pages, "isolated": c.isolated,
        "offset_from_base": offset, "unit_size": unit_size,
        "end_offset_from_base": offset + last_unit + unit_size,
        "alloc_bytes": unit_size - c.free_bytes - c.start_offset - c.end_offset,
    }


def allocations_frame(alloc: PercpuAllocator) -> pd.DataFrame:
    """Live allocations with their pointers, offsets and chunk."""
    return pd.DataFrame([
        dataclasses.asdict(a) | {"offset_from_base": a.chunk_base + a.off - alloc.base_addr}
        for a in alloc.live.values()
    ])
