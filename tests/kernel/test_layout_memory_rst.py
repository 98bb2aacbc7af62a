"""The 5.17-6.8 layout against the two tables of Documentation/arch/arm64/memory.rst.

The tables (data/reference/memory-rst-v6.8-tables.txt, verbatim from v6.5-v6.8)
show a CONFIG_KASAN_GENERIC kernel: the shadow row sits inside the linear map.
Their "fixed mappings (top down)" row spans VMALLOC_END..FIXADDR_TOP, the whole
window between vmalloc and the PCI I/O guard, not only the slots in use.
"""

import re

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel.layout import layout_table
from percpu_explorer.kernel.units import parse_size

from ..conftest import DATA

TABLES = DATA / "reference" / "memory-rst-v6.8-tables.txt"
ROW = re.compile(r"^\s*\[?([0-9a-f]{16})\s+([0-9a-f]{16})\]?\s+(~?)(\d+)([KMGTP]B)\s+(.+?)\s*$")

# memory.rst "Use" column -> the kernel symbols at the row's start and (exclusive) end.
BOUNDS = {
    "kernel logical memory map": ("PAGE_OFFSET", "MODULES_VADDR"),
    "[kasan shadow region]": ("KASAN_SHADOW_START", "KASAN_SHADOW_END"),
    "modules": ("MODULES_VADDR", "MODULES_END"),
    "vmalloc": ("VMALLOC_START", "VMALLOC_END"),
    "fixed mappings (top down)": ("VMALLOC_END", "FIXADDR_TOP"),
    "PCI I/O space": ("PCI_IO_START", "PCI_IO_END"),
    "vmemmap": ("VMEMMAP_START", "VMEMMAP_END"),
}
# The three guard rows, in table order.
GUARDS = [("FIXADDR_TOP", "PCI_IO_START"), ("PCI_IO_END", "VMEMMAP_START"), ("VMEMMAP_END", None)]


def read_tables():
    tables, current = {}, None
    for line in TABLES.read_text().splitlines():
        if line.startswith("AArch64 Linux memory layout"):
            current = tables.setdefault(line, [])
            continue
        match = ROW.match(line)
        if match and current is not None:
            start, last, approx, number, unit, use = match.groups()
            current.append((int(start, 16), int(last, 16) + 1, approx, int(number), unit, use))
    return tables


TABLE_CONFIGS = {
    "AArch64 Linux memory layout with 4KB pages + 4 levels (48-bit)::":
        KernelConfig(page_size=4096, va_bits=48, kasan="generic", kernel="6.8"),
    "AArch64 Linux memory layout with 64KB pages + 3 levels (52-bit with HW support)::":
        KernelConfig(page_size=65536, va_bits=52, vabits_actual=52, kasan="generic", kernel="6.8"),
}


def test_reference_file_has_both_tables_with_every_row():
    tables = read_tables()
    assert set(tables) == set(TABLE_CONFIGS)
    assert [len(rows) for rows in tables.values()] == [11, 11]


@pytest.mark.parametrize("title", sorted(TABLE_CONFIGS))
def test_every_boundary_of_memory_rst(title):
    layout = compute_layout(TABLE_CONFIGS[title])
    sym = layout.symbols
    guards = iter(GUARDS)
    for start, end, _approx, _number, _unit, use in read_tables()[title]:
        if use == "user":
            # TTBR0 covers [0, 1 << VA_BITS): 256TB for 48-bit, 4PB for 52-bit.
            assert (start, end) == (0, 1 << sym["VA_BITS"])
            continue
        if use == "[guard region]":
            low, high = next(guards)
            assert start == sym[low], use
            assert end == (sym[high] if high else 1 << 64), use
            continue
        low, high = BOUNDS[use]
        assert (start, end) == (sym[low], sym[high]), use


@pytest.mark.parametrize("title", sorted(TABLE_CONFIGS))
def test_sizes_of_memory_rst(title):
    # memory.rst rounds sizes ("124TB" for 0x7bff70000000 bytes); compare at its precision.
    for start, end, _approx, number, unit, use in read_tables()[title]:
        assert round((end - start) / parse_size(f"1{unit[0]}")) == number, use


def test_model_table_reproduces_the_guard_rows_of_memory_rst():
    title = "AArch64 Linux memory layout with 4KB pages + 4 levels (48-bit)::"
    layout = compute_layout(TABLE_CONFIGS[title])
    ours = layout_table(layout)
    guards = ours[ours["use"] == "[guard region]"][["start", "end"]].values.tolist()
    doc = [[s, e] for s, e, *_rest, use in read_tables()[title] if use == "[guard region]"]
    # Our table also shows the gap between the vmalloc end and the slots in use.
    assert doc == [g for g in guards if g[0] != layout.symbols["VMALLOC_END"]]


def test_fixmap_slots_lie_inside_the_documented_window():
    for cfg in TABLE_CONFIGS.values():
        sym = compute_layout(cfg).symbols
        assert sym["VMALLOC_END"] < sym["FIXADDR_TOT_START"] < sym["FIXADDR_START"]
        assert sym["FIXADDR_START"] < sym["FIXADDR_TOP"]


def test_5_17_to_6_4_has_128m_modules():
    # v6.1 asm/memory.h: #define MODULES_VSIZE (SZ_128M); memory.rst of 6.1 shows
    # "ffff800000000000 ffff800007ffffff 128MB modules" and vmalloc from ffff800008000000.
    sym = compute_layout(KernelConfig(kernel="6.1", kasan="generic")).symbols
    assert sym["MODULES_END"] == 0xFFFF800008000000
    assert sym["VMALLOC_START"] == 0xFFFF800008000000
    assert sym["VMALLOC_END"] == 0xFFFFFBFFF0000000
