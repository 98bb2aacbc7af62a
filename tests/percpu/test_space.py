"""Offsets from pcpu_base_addr and capacity, mainline against patched (patch 02/11)."""

import pandas as pd

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.percpu.allocator import PercpuAllocator
from percpu_explorer.percpu.first_chunk import build_alloc_info
from percpu_explorer.percpu.history import run_history, synthetic_history
from percpu_explorer.percpu.space import capacity, capacity_table, offset_extremes


def test_largest_offset_mainline_vs_patched():
    # Patch 02/11: mainline's offset "may be the whole size of vmalloc space"; with the
    # dedicated areas it stays within the 1TB Global Percpu area (4K/48).
    history = synthetic_history(3000, 600, seed=3)
    mainline = PercpuAllocator(build_alloc_info(101464, nr_cpus=64), cfg=KernelConfig())
    run_history(mainline, history)
    sym = compute_layout(KernelConfig()).symbols
    far = offset_extremes(mainline)["max_offset"]
    # Chunks sit at the top of vmalloc; the first chunk in the linear map below vmalloc.
    assert far > sym["VMALLOC_END"] - sym["VMALLOC_START"]
    assert mainline.base_addr + far <= sym["VMALLOC_END"]
    patched_cfg = KernelConfig(local_percpu=True)
    patched = PercpuAllocator(build_alloc_info(101464, nr_cpus=64), cfg=patched_cfg)
    run_history(patched, history)
    ext = offset_extremes(patched)
    psym = compute_layout(patched_cfg).symbols
    assert -psym["PERCPU_SIZE"] < ext["min_offset"] and ext["max_offset"] <= psym["PERCPU_SIZE"]


def test_capacity_matches_what_the_allocator_reaches():
    # 16K/36 patched, 64 CPUs, 64K units: a 4M span per chunk in a 64M area holds the
    # first chunk and 15 more (see test_area_exhaustion_is_a_distinct_error).
    cfg = KernelConfig(page_size=16384, va_bits=36, local_percpu=True)
    ai = build_alloc_info(20000, nr_cpus=64, page_size=16384)
    cap = capacity(cfg, ai)
    assert (cap["chunk_span"], cap["dynamic_chunks"]) == (64 * 65536, 15)
    assert cap["bytes_per_cpu"] == ai.dyn_size + 15 * 65536


def test_capacity_table_covers_every_config_and_cpu_count():
    table = capacity_table(cpu_counts=(64, 4096))
    assert len(table) == 13 * 2
    row = table[(table.config == "4K/48") & (table.nr_cpus == 4096)].iloc[0]
    # 4096 units of 139264 bytes: 570425344 bytes per chunk; (1TB - span) // span chunks.
    assert row.chunk_span == 4096 * 139264
    assert row.patched_chunks == ((1 << 40) - 4096 * 139264) // (4096 * 139264)
    broken = table[table.config.isin(["4K/52", "16K/48", "16K/52"])]
    assert broken["patched_chunks"].isna().all()
    # Patch 02/11 on 4K/52: the two 2 * PGDIR_SIZE areas (2 * 4PB) push VMALLOC_END
    # below VMALLOC_START.
    assert set(broken["patched_layout"]) == {
        "no patched layout: with the two 2 * PGDIR_SIZE areas, the vmalloc area is negative"}
    # 16K/36 with 4096 CPUs: 4096 units of 144K (576M) do not fit a 64M area at all, so
    # there is no patched count, and the row says why.
    tiny = table[(table.config == "16K/36") & (table.nr_cpus == 4096)].iloc[0]
    assert tiny.first_chunk_fits is False or not tiny.first_chunk_fits
    assert pd.isna(tiny.patched_chunks) and pd.isna(tiny.patched_bytes_per_cpu)
    assert tiny.patched_layout == ("the first chunk does not fit: 4096 units of 144KB take "
                                   "576MB, more than the 64MB Global Percpu area")
    # Counts and sizes are integers (nullable where there is no value), never floats.
    for col in ("mainline_chunks", "mainline_bytes_per_cpu", "patched_chunks",
                "patched_bytes_per_cpu", "area_size"):
        assert pd.api.types.is_integer_dtype(table[col]), col
    fits = table[table.patched_layout == "fits"]
    assert fits["patched_chunks"].notna().all() and fits["first_chunk_fits"].all()
