"""The allocator's findings: their sentences carry the numbers the model computes, and the
numbers follow from the layout (patch 02/11 and arm64's memory.rst)."""

import pandas as pd
import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import format_size
from percpu_explorer.percpu import (
    PercpuAllocator,
    build_alloc_info,
    capacity_finding,
    capacity_table,
    offset_extremes,
    offsets_finding,
    offsets_table,
    run_history,
    synthetic_history,
)


@pytest.fixture(scope="module")
def pair():
    ai = build_alloc_info(101464, nr_cpus=4)
    history = synthetic_history(600, 120, seed=1)
    mainline = PercpuAllocator(ai, cfg=KernelConfig())
    patched = PercpuAllocator(ai, cfg=KernelConfig(local_percpu=True))
    run_history(mainline, history)
    run_history(patched, history)
    return mainline, patched


def test_offsets_finding_holds_the_model_numbers(pair):
    mainline, patched = pair
    f = offsets_finding(mainline, patched)
    n = f.numbers
    main, pat = offset_extremes(mainline), offset_extremes(patched)
    assert (n["mainline_max_offset"], n["patched_min_offset"], n["patched_max_offset"]) == (
        main["max_offset"], pat["min_offset"], pat["max_offset"])
    assert (n["allocations"], n["frees"]) == (600, 120)
    # memory.rst (4K/48): vmalloc is ~126TB; the patch's Global Percpu area is
    # 2 * PGDIR_SIZE = 1TB.
    sym = compute_layout(KernelConfig()).symbols
    assert n["vmalloc_size"] == sym["VMALLOC_END"] - sym["VMALLOC_START"]
    assert n["percpu_size"] == 2 * (1 << 39) and n["inside"] is True
    # Mainline: the first chunk in the linear map, chunks at the top of vmalloc: its
    # offsets span more than vmalloc itself.
    assert n["mainline_max_offset"] > n["vmalloc_size"]
    for value in (format_size(n["mainline_max_offset"]), format_size(n["vmalloc_size"]),
                  format_size(abs(n["patched_min_offset"])), "1TB Global Percpu area",
                  "600 allocations, 120 frees", "4K/48 with 4 CPUs"):
        assert value in f.answer, value
    assert f.basis == "assumption" and "patches 03-09 are not public" in f.detail
    with pytest.raises(ValueError, match="a mainline allocator and one with local_percpu"):
        offsets_finding(patched, mainline)


def test_offsets_table_is_one_row_per_allocator(pair):
    mainline, patched = pair
    table = offsets_table({"mainline": mainline, "patched": patched}).set_index("allocator")
    psym = compute_layout(KernelConfig(local_percpu=True)).symbols
    assert (table.loc["patched", "area_start"], table.loc["patched", "area_end"]) == (
        psym["PERCPU_START"], psym["PERCPU_END"])
    assert table.loc["mainline", "area"] == "vmalloc"
    assert table.loc["patched", "min_offset"] == offset_extremes(patched)["min_offset"]
    assert list(table["chunks"]) == [len(mainline.chunks), len(patched.chunks)]


def test_capacity_finding_reads_the_table():
    table = capacity_table(cpu_counts=(64, 4096))
    f = capacity_finding(table)
    # 4K/48, 4096 CPUs: chunks of 4096 * 136K = 544MB; the 1TB area holds the first
    # chunk and (1TB - 544MB) // 544MB = 1926 more; each adds one 136K unit per CPU.
    span = 4096 * 139264
    chunks = ((1 << 40) - span) // span
    assert chunks == 1926 and "1926 more chunks of 544MB" in f.answer
    per_cpu = f.numbers["patched_bytes_per_cpu"]
    assert per_cpu == 29608 + chunks * 139264  # d29608: the first chunk's dynamic part
    assert format_size(per_cpu) in f.answer
    assert format_size(f.numbers["mainline_bytes_per_cpu"]) in f.answer
    assert f.numbers["no_fit"] == [("16K/36", 4096)]
    assert f.numbers["broken"] == ["4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52",
                                   "16K/52 (47-bit hw)"]
    assert "16K/36 with 4096 CPUs" in f.answer and "nan" not in f.answer.lower()
    none = capacity_finding(table, "16K/36")
    assert none.numbers["patched_bytes_per_cpu"] is None
    assert "the first chunk does not fit" in none.answer
    with pytest.raises(ValueError, match="config '8K/48' is not in the table"):
        capacity_finding(table, "8K/48")
    assert isinstance(table, pd.DataFrame)
