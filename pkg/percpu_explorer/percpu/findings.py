"""The allocator's answers in sentences: how far from pcpu_base_addr percpu offsets reach,
mainline against patch 02/11 (`offsets_finding`, with `offsets_table` as the evidence),
and how much dynamic percpu memory fits (`capacity_finding` over `capacity_table`).

Mainline's numbers are kernel arithmetic (mm/percpu.c's placement: the first chunk in
the linear map, later chunks from the top of vmalloc). Where the patched kernel puts
its chunks inside the Global Percpu area is an assumption (`kernel.DEFAULT_PLACEMENT`:
patches 03-09 are not public), so a finding that uses it says so.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from ..findings import Finding
from ..kernel import format_size, u64
from .allocator import PercpuAllocator
from .space import offset_extremes

OFFSETS_QUESTION = ("How far from pcpu_base_addr do the percpu allocator's offsets reach, "
                    "in mainline and with patch 02/11's Global Percpu area?")
CAPACITY_QUESTION = ("How much dynamic percpu memory per CPU fits, mainline's vmalloc area "
                     "against patch 02/11's Global Percpu area?")


def _area(alloc: PercpuAllocator) -> tuple[str, int]:
    """Where the allocator places new chunks and that area's size."""
    sym = alloc.layout.symbols
    if alloc.local:
        return "Global Percpu area", sym["PERCPU_SIZE"]
    return "vmalloc", u64(sym["VMALLOC_END"] - sym["VMALLOC_START"])


def offsets_table(allocators: Mapping[str, PercpuAllocator]) -> pd.DataFrame:
    """One row per allocator: its configuration, CPUs, chunks, the area new chunks go to
    (area_start, area_end, area_size), pcpu_base_addr, and the lowest and highest offset
    from pcpu_base_addr of any chunk (`offset_extremes`)."""
    rows = []
    for name, alloc in allocators.items():
        area, size = _area(alloc)
        ext = offset_extremes(alloc)
        rows.append({"allocator": name, "config": alloc.cfg.label(), "nr_cpus": alloc.nr_units,
                     "chunks": len(alloc.chunks), "area": area, "area_start": alloc.vm.start,
                     "area_end": alloc.vm.end, "area_size": size,
                     "pcpu_base_addr": alloc.base_addr, "min_offset": ext["min_offset"],
                     "max_offset": ext["max_offset"]})
    return pd.DataFrame(rows)


def _served(alloc: PercpuAllocator) -> tuple[int, int]:
    """Allocations and frees the allocator has served (its alloc and free events)."""
    kinds = [e.kind for e in alloc.events]
    return kinds.count("alloc"), kinds.count("free")


def offsets_finding(mainline: PercpuAllocator, patched: PercpuAllocator) -> Finding:
    """How far offsets reach after the same history on both allocators: mainline's up
    to the top of vmalloc, the patched ones inside the Global Percpu area (or not)."""
    if mainline.local or not patched.local:
        raise ValueError("offsets_finding takes a mainline allocator and one with "
                         "local_percpu (patch 02/11), in that order")
    served = _served(mainline)
    if served != _served(patched):
        raise ValueError(f"the allocators served different histories: {served} and "
                         f"{_served(patched)} (allocations, frees)")
    main, pat = offset_extremes(mainline), offset_extremes(patched)
    _, vmalloc = _area(mainline)
    _, area = _area(patched)
    sym = patched.layout.symbols
    frame = patched.chunks_frame()
    lowest = patched.base_addr + int(frame["offset_from_base"].min())
    highest = patched.base_addr + int(frame["end_offset_from_base"].max())
    inside = sym["PERCPU_START"] <= lowest and highest <= sym["PERCPU_END"]
    cfg = mainline.cfg
    answer = (
        f"After the same synthetic history ({served[0]} allocations, {served[1]} frees) on "
        f"{cfg.label()} with {mainline.nr_units} CPUs, mainline's chunks lie from "
        f"{format_size(main['min_offset'])} to {format_size(main['max_offset'])} above "
        f"pcpu_base_addr: the first chunk sits in the linear map and later chunks at the top "
        f"of the {format_size(vmalloc)} vmalloc area. With patch 02/11 every chunk lies "
        f"between {_signed(pat['min_offset'])} and {_signed(pat['max_offset'])} "
        f"pcpu_base_addr, " + (f"inside the {format_size(area)} Global Percpu area." if inside else
                        f"and reaches outside the {format_size(area)} Global Percpu area."))
    return Finding(
        OFFSETS_QUESTION, answer, "assumption",
        {"allocations": served[0], "frees": served[1], "config": cfg.label(),
         "nr_cpus": mainline.nr_units, "mainline_min_offset": main["min_offset"],
         "mainline_max_offset": main["max_offset"], "vmalloc_size": vmalloc,
         "patched_min_offset": pat["min_offset"], "patched_max_offset": pat["max_offset"],
         "percpu_size": area, "inside": inside},
        detail=f"mainline's placement is kernel arithmetic; with the patch, "
               f"{patched.placement.describe()}")


def _signed(offset: int) -> str:
    """An offset from pcpu_base_addr in words: "~2.1MB below", "136KB above"."""
    return f"{format_size(abs(offset))} {'below' if offset < 0 else 'above'}"


def capacity_finding(table: pd.DataFrame, config: str = "4K/48") -> Finding:
    """The capacity table in a sentence: at the table's largest CPU count on `config`,
    patched against mainline, and where the patched first chunk or layout does not fit."""
    rows = table[table["config"] == config]
    if rows.empty:
        raise ValueError(f"config {config!r} is not in the table; it has "
                         f"{', '.join(dict.fromkeys(table['config']))}")
    row = rows.loc[rows["nr_cpus"].idxmax()]
    nr = int(row["nr_cpus"])
    no_fit = table[table["first_chunk_fits"].eq(False).fillna(False)]
    broken = list(dict.fromkeys(table[table["area_size"].isna()]["config"]))
    if pd.isna(row["patched_bytes_per_cpu"]):
        head = f"With {nr} CPUs on {config}, the patch leaves no room ({row['patched_layout']})."
    else:
        head = (f"With {nr} CPUs on {config}, patch 02/11's {format_size(int(row['area_size']))} "
                f"Global Percpu area holds the first chunk and {int(row['patched_chunks'])} more "
                f"chunks of {format_size(int(row['chunk_span']))}: "
                f"{format_size(int(row['patched_bytes_per_cpu']))} of dynamic percpu memory "
                f"per CPU, against {format_size(int(row['mainline_bytes_per_cpu']))} in "
                f"mainline's vmalloc area.")
    tail = []
    if len(no_fit):
        tail.append("the first chunk alone does not fit the area on "
                    + ", ".join(f"{c} with {n} CPUs"
                                for c, n in zip(no_fit["config"], no_fit["nr_cpus"], strict=True)))
    if broken:
        tail.append("the patched layout itself is broken on " + ", ".join(broken))
    rest = "; ".join(tail)
    answer = head + (f" {rest[:1].upper()}{rest[1:]}." if tail else "")
    numbers = {"config": config, "nr_cpus": nr,
               "patched_bytes_per_cpu": None if pd.isna(row["patched_bytes_per_cpu"])
               else int(row["patched_bytes_per_cpu"]),
               "mainline_bytes_per_cpu": int(row["mainline_bytes_per_cpu"]),
               "no_fit": [(c, int(n)) for c, n in zip(no_fit["config"], no_fit["nr_cpus"],
                                                      strict=True)],
               "broken": broken}
    return Finding(CAPACITY_QUESTION, answer, "assumption", numbers,
                   detail="the patched first chunk sits in the Global Percpu area (patches "
                          "03-09 are not public); mainline's vmalloc area is counted as "
                          "otherwise empty, an upper bound")
