"""Tables for reading: addresses in hex and sizes in memory.rst's units, found by column
name or given, on the frames the notebooks show."""

import pandas as pd
import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel import configs_table, layout_table
from percpu_explorer.ui.tables import address_columns, readable, size_columns


def test_readable_formats_addresses_and_sizes_for_display():
    table = layout_table(compute_layout(KernelConfig()))
    shown = readable(table)
    vmalloc = shown[shown["use"] == "vmalloc"].iloc[0]
    # 4K/48 v6.16+ ptdump: vmalloc() end 0xfffffdffbf800000; memory.rst-style sizes
    assert (vmalloc["end"], vmalloc["last"]) == ("0xfffffdffbf800000", "0xfffffdffbf7fffff")
    assert shown[shown["use"] == "modules"].iloc[0]["size"] == "2GB"
    assert table["start"].dtype != object  # the model's frame keeps integers


def test_the_top_guard_ends_at_two_to_the_64_unwrapped():
    shown = readable(layout_table(compute_layout(KernelConfig())))
    top = shown.iloc[-1]
    assert (top["use"], top["end"], top["last"]) == (
        "[guard region]", "0x10000000000000000", "0xffffffffffffffff")
    assert top["size_text"] == top["size"]  # the text column is left as it is


def test_columns_are_read_by_the_naming_convention():
    frame = pd.DataFrame({
        "start": [1], "end": [2], "last": [1], "base_addr": [3], "chunk_base": [4], "ptr": [5],
        "pcpu_base_addr": [6], "table_pa": [7], "size": [4096], "PGDIR_SIZE": [1 << 39],
        "free_bytes": [8], "mainline_bytes_per_cpu": [1 << 20], "chunk_span": [1 << 30],
        "offset_from_base": [-(1 << 40)], "va_bits": [48], "nr_pages": [3], "use": ["x"],
        "problem": [False], "size_text": ["4KB"]})
    assert address_columns(frame) == ["start", "end", "last", "base_addr", "chunk_base", "ptr",
                                      "pcpu_base_addr", "table_pa"]
    assert size_columns(frame) == ["size", "PGDIR_SIZE", "free_bytes", "mainline_bytes_per_cpu",
                                   "chunk_span", "offset_from_base"]
    row = readable(frame).iloc[0]
    assert (row["ptr"], row["PGDIR_SIZE"], row["offset_from_base"]) == (
        "0x0000000000000005", "512GB", "-1TB")
    assert (row["va_bits"], row["nr_pages"], row["size_text"]) == (48, 3, "4KB")


def test_explicit_columns_replace_the_convention():
    table = configs_table("7.1", kasan=("none",))
    columns = ["config", "PGDIR_SIZE", "PERCPU_SIZE", "vmalloc_mainline", "vmalloc_lost",
               "patched_sane"]
    shown = readable(table[columns], sizes=columns[1:5]).set_index("config")
    assert list(shown.loc["4K/48", columns[1:5]]) == ["512GB", "1TB", "~126TB", "~2.5TB"]
    assert shown.loc["4K/52", "vmalloc_lost"] == ""  # the patched layout is broken: no NaN
    by_name = readable(table[columns]).set_index("config")  # vmalloc_lost: not a size by name
    assert by_name.loc["4K/48", "vmalloc_lost"] == 2747705327616
    only = readable(pd.DataFrame({"start": [16], "base": [32]}), addresses=["base"])
    assert list(only.iloc[0]) == [16, "0x0000000000000020"]
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        readable(table, sizes=["nope"])


def test_integers_stay_integers_and_missing_values_are_blank():
    frame = pd.DataFrame({"chunks": [239.0, None, 2.0], "share": [0.5, None, 1.0],
                          "fits": [True, None, False], "count": [1, 2, 3],
                          "area_size": [1 << 31, None, 1 << 30]})
    shown = readable(frame)
    assert list(shown["chunks"]) == [239, "", 2]
    assert all(type(v) is int for v in shown["chunks"] if v != "")
    assert list(shown["share"]) == [0.5, "", 1.0]
    assert list(shown["fits"]) == [True, "", False]
    assert shown["count"].dtype == "int64" and list(shown["count"]) == [1, 2, 3]
    assert list(shown["area_size"]) == ["2GB", "", "1GB"]
    whole = readable(pd.DataFrame({"cycles": [124.0, 154.0]}))
    assert whole["cycles"].dtype == "int64"


def test_capacity_table_reads_as_before():
    from percpu_explorer.percpu import capacity_table

    shown = readable(capacity_table(cpu_counts=(64,))).set_index("config")
    row = shown.loc["4K/39"]
    assert (row["unit_size"], row["chunk_span"], row["area_size"], row["patched_chunks"]) == (
        "136KB", "~8.5MB", "2GB", 239)
    assert (row["mainline_bytes_per_cpu"], row["patched_bytes_per_cpu"]) == ("~3.9GB", "~32MB")
    assert row["mainline_chunks"] == 29996 and shown["mainline_chunks"].dtype == "int64"
    broken = shown.loc["4K/52"]
    assert (broken["area_size"], broken["patched_chunks"], broken["first_chunk_fits"]) == (
        "", "", "")
