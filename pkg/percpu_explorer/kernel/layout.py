"""The arm64 kernel virtual address layout, as the kernel's own macros compute it.

`compute_layout(cfg)` evaluates the macros of arch/arm64/include/asm/memory.h,
pgtable.h, pgtable-hwdef.h and fixmap.h for one `KernelConfig`, in unsigned
64-bit arithmetic, with the formulas of the configuration's kernel era:

- 5.17-6.4: 128M modules above the linear map; vmalloc ends 256M below vmemmap;
  fixmap and PCI I/O sit between them; vmemmap is at `-(1 << (VA_BITS - VMEMMAP_SHIFT))`.
- 6.5-6.8: as before with 2G for modules (the era of memory.rst's tables).
- 6.9+: vmemmap ends at -1G with PCI I/O and the fixmap above it, VMEMMAP_SIZE is
  the number of linear pages times sizeof(struct page), vmalloc ends 8M below
  vmemmap (plus the unused vmemmap of a 52-bit kernel on 48-bit hardware).

With `local_percpu` the RFC patch 02/11 is applied: Global and Local Percpu
areas of 2 * PGDIR_SIZE each below vmemmap, and VMALLOC_END 8M below them.
A broken layout is computed exactly as C would (wrapped values included) and
explained in `problems`; nothing is clamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import pandas as pd

from .config import (
    DEFAULT_KERNEL,
    LOCAL_PERCPU_LAYOUT,
    KernelConfig,
    local_percpu_supported,
    va_bits_min,
    valid_configs,
)
from .fixmap import FixmapSlots, fixmap_slots
from .geometry import page_offset, pgtable_geometry
from .units import (
    SZ_1G,
    SZ_2G,
    SZ_8M,
    SZ_16M,
    SZ_32M,
    SZ_128M,
    SZ_256M,
    TOP_OF_VA,
    align_down,
    fmt_addr,
    format_size,
    neg,
    parse_addr,
    u64,
)

PCI_IO_SIZE = SZ_16M  # asm/memory.h

# Kconfig KASAN_SHADOW_OFFSET defaults (arch/arm64/Kconfig, v6.1 and v6.12), keyed by
# VA_BITS; 52-bit kernels use the 48-bit offset, or the 47-bit one with 16K pages (v6.9+).
# Assumed unchanged up to 7.1: a posted series moving SW_TAGS to an arithmetic shift
# (offsets 0xffff8... instead of 0xefff8...) is not modelled.
_KASAN_SHADOW_OFFSET = {
    "generic": {48: 0xDFFF800000000000, 47: 0xDFFFC00000000000, 42: 0xDFFFFE0000000000,
                39: 0xDFFFFFC000000000, 36: 0xDFFFFFF800000000},
    "sw-tags": {48: 0xEFFF800000000000, 47: 0xEFFFC00000000000, 42: 0xEFFFFE0000000000,
                39: 0xEFFFFFC000000000, 36: 0xEFFFFFF800000000},
}
# KASAN_SHADOW_SCALE_SHIFT (arch/arm64/Makefile): 3 for generic, 4 for software tags.
_KASAN_SCALE_SHIFT = {"generic": 3, "sw-tags": 4}


@dataclass(frozen=True)
class Region:
    """A named part of the kernel VA space, [start, end), and the symbols bounding it."""

    name: str
    start: int
    end: int
    start_symbol: str
    end_symbol: str

    @property
    def size(self) -> int:
        """end - start as unsigned long: a negative region shows its wrapped size."""
        return u64(self.end - self.start)

    @property
    def negative(self) -> bool:
        return self.end < self.start

    def __repr__(self) -> str:
        return (f"Region({self.name!r}, {fmt_addr(self.start)}-{fmt_addr(self.end)}, "
                f"{format_size(self.size)})")


@dataclass(frozen=True)
class Marker:
    """An `address_markers[]` entry of arch/arm64/mm/ptdump.c: `---[ label ]---`."""

    address: int
    label: str

    def __repr__(self) -> str:
        return f"Marker({fmt_addr(self.address)}, {self.label!r})"


@dataclass(frozen=True)
class Finding:
    """A problem (the layout is unusable) or warning (legal but questionable)."""

    code: str
    message: str
    regions: tuple[str, ...] = ()


@dataclass(frozen=True)
class Layout:
    """The computed layout: `symbols` by kernel macro name, `regions` in address
    order as the kernel intends them, ptdump `markers`, `problems`, `warnings`."""

    config: KernelConfig
    symbols: dict[str, int]
    regions: tuple[Region, ...]
    markers: tuple[Marker, ...]
    problems: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()
    fixmap: FixmapSlots | None = field(default=None, compare=False)

    @property
    def sane(self) -> bool:
        return not self.problems

    def region(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        raise KeyError(f"no region {name!r}; regions: {[r.name for r in self.regions]}")

    def __getitem__(self, symbol: str) -> int:
        return self.symbols[symbol]


# --- the layout ------------------------------------------------------------------------

def _geometry(cfg: KernelConfig) -> dict[str, int]:
    """The page and page-table macros the layout formulas start from."""
    geo = pgtable_geometry(cfg)
    return {
        "PAGE_SHIFT": cfg.page_shift,
        "PAGE_SIZE": cfg.page_size,
        "CONFIG_PGTABLE_LEVELS": geo.pgtable_levels,
        "VA_BITS": cfg.va_bits,
        "VA_BITS_MIN": va_bits_min(cfg.page_size, cfg.va_bits),
        "vabits_actual": cfg.vabits_actual,
        **geo.symbols(),
    }


def _page_end(va: int) -> int:
    """_PAGE_END(va) = -(UL(1) << ((va) - 1))."""
    return neg(1 << (va - 1))


def _kasan(cfg: KernelConfig, sym: dict[str, int]) -> None:
    shift = _KASAN_SCALE_SHIFT[cfg.kasan]
    key = cfg.va_bits if cfg.va_bits != 52 else sym["VA_BITS_MIN"]
    offset = _KASAN_SHADOW_OFFSET[cfg.kasan][key]
    sym["KASAN_SHADOW_SCALE_SHIFT"] = shift
    sym["KASAN_SHADOW_OFFSET"] = offset
    # KASAN_SHADOW_END = (UL(1) << (64 - KASAN_SHADOW_SCALE_SHIFT)) + KASAN_SHADOW_OFFSET
    sym["KASAN_SHADOW_END"] = u64((1 << (64 - shift)) + offset)
    # KASAN_SHADOW_START = _KASAN_SHADOW_START(vabits_actual)
    sym["KASAN_SHADOW_START"] = u64(sym["KASAN_SHADOW_END"] - (1 << (cfg.vabits_actual - shift)))


def compute_layout(cfg: KernelConfig) -> Layout:
    """Evaluate the arm64 layout macros for `cfg` (see the module docstring)."""
    sym = _geometry(cfg)
    era = cfg.version.era
    page_shift = sym["PAGE_SHIFT"]
    va_min = sym["VA_BITS_MIN"]
    struct_page = cfg.struct_page_size

    sym["PAGE_OFFSET"] = page_offset(cfg.va_bits)
    sym["_PAGE_OFFSET(vabits_actual)"] = page_offset(cfg.vabits_actual)
    if cfg.kasan != "none":
        _kasan(cfg, sym)
        sym["PAGE_END"] = sym["KASAN_SHADOW_START"]
    else:
        sym["PAGE_END"] = _page_end(va_min)
    sym["MODULES_VADDR"] = _page_end(va_min)
    sym["MODULES_VSIZE"] = SZ_128M if era == "5.17-6.4" else SZ_2G
    sym["MODULES_END"] = u64(sym["MODULES_VADDR"] + sym["MODULES_VSIZE"])
    sym["KIMAGE_VADDR"] = sym["MODULES_END"]
    sym["VMALLOC_START"] = sym["MODULES_END"]
    sym["PCI_IO_SIZE"] = PCI_IO_SIZE
    slots = fixmap_slots(cfg)
    linear_range = u64(_page_end(va_min) - sym["PAGE_OFFSET"])

    if era in ("5.17-6.4", "6.5-6.8"):
        # STRUCT_PAGE_MAX_SHIFT = order_base_2(sizeof(struct page))
        struct_page_max_shift = (struct_page - 1).bit_length()
        vmemmap_shift = page_shift - struct_page_max_shift
        sym["STRUCT_PAGE_MAX_SHIFT"] = struct_page_max_shift
        sym["VMEMMAP_SHIFT"] = vmemmap_shift
        sym["VMEMMAP_SIZE"] = linear_range >> vmemmap_shift
        sym["VMEMMAP_START"] = neg(1 << (cfg.va_bits - vmemmap_shift))
        sym["VMEMMAP_END"] = u64(sym["VMEMMAP_START"] + sym["VMEMMAP_SIZE"])
        sym["PCI_IO_END"] = u64(sym["VMEMMAP_START"] - SZ_8M)
        sym["PCI_IO_START"] = u64(sym["PCI_IO_END"] - PCI_IO_SIZE)
        sym["FIXADDR_TOP"] = u64(sym["VMEMMAP_START"] - SZ_32M)
        sym["VMALLOC_END"] = u64(sym["VMEMMAP_START"] - SZ_256M)
        vmemmap_used_start = sym["VMEMMAP_START"]
    else:
        sym["VMEMMAP_RANGE"] = linear_range
        sym["VMEMMAP_SIZE"] = (linear_range >> page_shift) * struct_page
        sym["VMEMMAP_END"] = neg(SZ_1G)
        sym["VMEMMAP_START"] = u64(sym["VMEMMAP_END"] - sym["VMEMMAP_SIZE"])
        sym["PCI_IO_START"] = u64(sym["VMEMMAP_END"] + SZ_8M)
        sym["PCI_IO_END"] = u64(sym["PCI_IO_START"] + PCI_IO_SIZE)
        sym["FIXADDR_TOP"] = neg(SZ_8M)
        # Below vmalloc: VMEMMAP_START, or for a 52-bit kernel the part of vmemmap
        # that describes linear memory this hardware cannot address (pgtable.h).
        below_vmalloc = sym["VMEMMAP_START"]
        if cfg.va_bits != va_min:
            unused = u64(sym["_PAGE_OFFSET(vabits_actual)"] - sym["PAGE_OFFSET"]) >> page_shift
            sym["VMEMMAP_UNUSED_NPAGES"] = unused
            below_vmalloc = u64(sym["VMEMMAP_START"] + unused * struct_page)
        # ptdump's vmemmap_start = virt_to_page(_PAGE_OFFSET(vabits_actual))
        vmemmap_used_start = u64(
            sym["VMEMMAP_START"]
            + (u64(sym["_PAGE_OFFSET(vabits_actual)"] - sym["PAGE_OFFSET"]) >> page_shift)
            * struct_page
        )
        sym["vmemmap_start"] = vmemmap_used_start
        if cfg.local_percpu:
            _apply_local_percpu(sym, below_vmalloc)
        else:
            sym["VMALLOC_END"] = u64(below_vmalloc - SZ_8M)

    sym["FIXADDR_SIZE"] = slots.permanent << page_shift
    sym["FIXADDR_START"] = u64(sym["FIXADDR_TOP"] - sym["FIXADDR_SIZE"])
    sym["FIXADDR_TOT_SIZE"] = slots.total << page_shift
    sym["FIXADDR_TOT_START"] = u64(sym["FIXADDR_TOP"] - sym["FIXADDR_TOT_SIZE"])

    regions = _regions(cfg, sym, vmemmap_used_start)
    markers = _markers(cfg, sym)
    problems, warnings = _check(cfg, sym, regions)
    return Layout(cfg, sym, regions, markers, problems, warnings, slots)


def _apply_local_percpu(sym: dict[str, int], below: int) -> None:
    """RFC patch 02/11, asm/pgtable.h: two 2 * PGDIR_SIZE areas ending at the
    PGDIR_SIZE-aligned bottom of (used) vmemmap; vmalloc ends 8M below them."""
    size = 2 * sym["PGDIR_SIZE"]
    sym["PERCPU_SIZE"] = size
    sym["LOCAL_PERCPU_END"] = align_down(below, sym["PGDIR_SIZE"])
    sym["LOCAL_PERCPU_START"] = u64(sym["LOCAL_PERCPU_END"] - size)
    sym["PERCPU_END"] = sym["LOCAL_PERCPU_START"]
    sym["PERCPU_START"] = u64(sym["PERCPU_END"] - size)
    sym["VMALLOC_END"] = u64(sym["PERCPU_START"] - SZ_8M)


def _regions(cfg: KernelConfig, sym: dict[str, int], vmemmap_start: int) -> tuple[Region, ...]:
    """The regions in the order the kernel intends them, lowest first."""
    vmemmap_start_symbol = "vmemmap_start" if "vmemmap_start" in sym else "VMEMMAP_START"
    out = [Region("linear map", sym["_PAGE_OFFSET(vabits_actual)"], sym["PAGE_END"],
                  "_PAGE_OFFSET(vabits_actual)", "PAGE_END")]
    if cfg.kasan != "none":
        out.append(Region("kasan shadow", sym["KASAN_SHADOW_START"], sym["KASAN_SHADOW_END"],
                          "KASAN_SHADOW_START", "KASAN_SHADOW_END"))
    out.append(Region("modules", sym["MODULES_VADDR"], sym["MODULES_END"],
                      "MODULES_VADDR", "MODULES_END"))
    out.append(Region("vmalloc", sym["VMALLOC_START"], sym["VMALLOC_END"],
                      "VMALLOC_START", "VMALLOC_END"))
    fixmap = Region("fixmap", sym["FIXADDR_TOT_START"], sym["FIXADDR_TOP"],
                    "FIXADDR_TOT_START", "FIXADDR_TOP")
    pci = Region("PCI I/O", sym["PCI_IO_START"], sym["PCI_IO_END"], "PCI_IO_START", "PCI_IO_END")
    vmemmap = Region("vmemmap", vmemmap_start, sym["VMEMMAP_END"],
                     vmemmap_start_symbol, "VMEMMAP_END")
    if cfg.version.era in ("5.17-6.4", "6.5-6.8"):
        out += [fixmap, pci, vmemmap]
    else:
        if cfg.local_percpu:
            out.append(Region("global percpu", sym["PERCPU_START"], sym["PERCPU_END"],
                              "PERCPU_START", "PERCPU_END"))
            out.append(Region("local percpu", sym["LOCAL_PERCPU_START"], sym["LOCAL_PERCPU_END"],
                              "LOCAL_PERCPU_START", "LOCAL_PERCPU_END"))
        out += [vmemmap, pci, fixmap]
    return tuple(out)


def _markers(cfg: KernelConfig, sym: dict[str, int]) -> tuple[Marker, ...]:
    """arch/arm64/mm/ptdump.c address_markers[], in the kernel's order."""
    m = [Marker(sym["PAGE_OFFSET"], "Linear Mapping start"),
         Marker(sym["PAGE_END"], "Linear Mapping end")]
    if cfg.kasan != "none":
        m += [Marker(sym["KASAN_SHADOW_START"], "Kasan shadow start"),
              Marker(sym["KASAN_SHADOW_END"], "Kasan shadow end")]
    m += [Marker(sym["MODULES_VADDR"], "Modules start"),
          Marker(sym["MODULES_END"], "Modules end"),
          Marker(sym["VMALLOC_START"], "vmalloc() area"),
          Marker(sym["VMALLOC_END"], "vmalloc() end")]
    if cfg.version.era in ("5.17-6.4", "6.5-6.8"):
        # v6.4 switched "Fixmap start" from FIXADDR_START to FIXADDR_TOT_START.
        fixmap_start = "FIXADDR_TOT_START" if cfg.version.at_least(6, 4) else "FIXADDR_START"
        m += [Marker(sym[fixmap_start], "Fixmap start"),
              Marker(sym["FIXADDR_TOP"], "Fixmap end"),
              Marker(sym["PCI_IO_START"], "PCI I/O start"),
              Marker(sym["PCI_IO_END"], "PCI I/O end"),
              Marker(sym["VMEMMAP_START"], "vmemmap start"),
              Marker(sym["VMEMMAP_END"], "vmemmap end")]
        return tuple(m)
    if cfg.local_percpu:
        m += [Marker(sym["PERCPU_START"], "Global percpu start"),
              Marker(sym["PERCPU_END"], "Global percpu end"),
              Marker(sym["LOCAL_PERCPU_START"], "Local percpu start"),
              Marker(sym["LOCAL_PERCPU_END"], "Local percpu end")]
    m += [Marker(sym["vmemmap_start"], "vmemmap start"),
          Marker(sym["VMEMMAP_END"], "vmemmap end"),
          Marker(sym["PCI_IO_START"], "PCI I/O start"),
          Marker(sym["PCI_IO_END"], "PCI I/O end"),
          Marker(sym["FIXADDR_TOT_START"], "Fixmap start"),
          Marker(sym["FIXADDR_TOP"], "Fixmap end")]
    return tuple(m)


# Pairs the kernel places back to back by definition (VMALLOC_START = MODULES_END,
# PAGE_END = KASAN_SHADOW_START, the shadow ending where modules begin).
_ADJACENT_BY_DESIGN = {
    ("linear map", "kasan shadow"),
    ("kasan shadow", "modules"),
    ("linear map", "modules"),
    ("modules", "vmalloc"),
}


def _check(
    cfg: KernelConfig, sym: dict[str, int], regions: tuple[Region, ...]
) -> tuple[tuple[Finding, ...], tuple[Finding, ...]]:
    problems: list[Finding] = []
    warnings: list[Finding] = []
    ttbr1_low = page_offset(cfg.vabits_actual)

    vmalloc = next(r for r in regions if r.name == "vmalloc")
    if vmalloc.end <= vmalloc.start:
        what = "empty" if vmalloc.end == vmalloc.start else "negative"
        problems.append(Finding(
            "vmalloc-empty",
            f"The vmalloc area is {what}: VMALLOC_END {fmt_addr(vmalloc.end)} is not above "
            f"VMALLOC_START {fmt_addr(vmalloc.start)}; VMALLOC_END - VMALLOC_START computes "
            f"{fmt_addr(vmalloc.size)} in unsigned arithmetic. vmalloc(), vmap stacks and "
            "percpu chunks would have no space.",
            ("vmalloc",),
        ))
    for region in regions:
        if region.negative and region.name != "vmalloc":
            problems.append(Finding(
                "negative-region",
                f"The {region.name} region ends ({fmt_addr(region.end)}, {region.end_symbol}) "
                f"below its start ({fmt_addr(region.start)}, {region.start_symbol}).",
                (region.name,),
            ))
        if region.start < ttbr1_low:
            problems.append(Finding(
                "outside-ttbr1",
                f"The {region.name} region starts at {fmt_addr(region.start)}, below "
                f"{fmt_addr(ttbr1_low)}, the lowest address TTBR1 translates with "
                f"vabits_actual={cfg.vabits_actual}: accesses there fault.",
                (region.name,),
            ))
    for i, low in enumerate(regions):
        for high in regions[i + 1:]:
            if low.negative or high.negative:
                continue  # already reported; an inverted range has no extent to compare
            if max(low.start, high.start) < min(low.end, high.end):
                problems.append(Finding(
                    "overlap",
                    f"The {high.name} region [{fmt_addr(high.start)}, {fmt_addr(high.end)}) "
                    f"overlaps the {low.name} region [{fmt_addr(low.start)}, "
                    f"{fmt_addr(low.end)}).",
                    (low.name, high.name),
                ))
            elif high.start < low.start:
                problems.append(Finding(
                    "order",
                    f"The {high.name} region [{fmt_addr(high.start)}, {fmt_addr(high.end)}) "
                    f"lies below the {low.name} region [{fmt_addr(low.start)}, "
                    f"{fmt_addr(low.end)}), which the kernel places under it.",
                    (low.name, high.name),
                ))
    for low, high in pairwise(regions):
        if high.start == low.end and (low.name, high.name) not in _ADJACENT_BY_DESIGN:
            warnings.append(Finding(
                "no-guard",
                f"The {low.name} region ends exactly where the {high.name} region starts "
                f"({fmt_addr(high.start)}), with no guard gap between them.",
                (low.name, high.name),
            ))
    if cfg.local_percpu:
        pgdir = sym["PGDIR_SIZE"]
        for name in ("PERCPU_START", "PERCPU_END", "LOCAL_PERCPU_START", "LOCAL_PERCPU_END"):
            if sym[name] % pgdir:
                problems.append(Finding(
                    "percpu-alignment",
                    f"{name} {fmt_addr(sym[name])} is not PGDIR_SIZE ({format_size(pgdir)}) "
                    "aligned, so the per-CPU PGD entries would not cover the area alone.",
                    ("global percpu", "local percpu"),
                ))
    return tuple(problems), tuple(warnings)


# --- serialisation ---------------------------------------------------------------------

def layout_to_dict(layout: Layout) -> dict[str, Any]:
    """JSON-ready dict: addresses and sizes as 0x-prefixed 16-digit hex strings."""
    def finding(f: Finding) -> dict[str, Any]:
        return {"code": f.code, "message": f.message, "regions": list(f.regions)}

    return {
        "config": layout.config.to_dict(),
        "symbols": {name: fmt_addr(value) for name, value in layout.symbols.items()},
        "regions": [
            {"name": r.name, "start": fmt_addr(r.start), "end": fmt_addr(r.end),
             "size": fmt_addr(r.size), "size_text": format_size(r.size),
             "start_symbol": r.start_symbol, "end_symbol": r.end_symbol}
            for r in layout.regions
        ],
        "markers": [{"address": fmt_addr(m.address), "label": m.label} for m in layout.markers],
        "problems": [finding(f) for f in layout.problems],
        "warnings": [finding(f) for f in layout.warnings],
    }


def layout_from_dict(data: dict[str, Any]) -> Layout:
    """Rebuild a `Layout` from `layout_to_dict` output (e.g. JSON from the CLI)."""
    def finding(d: dict[str, Any]) -> Finding:
        return Finding(d["code"], d["message"], tuple(d["regions"]))

    cfg = KernelConfig.from_dict(data["config"])
    return Layout(
        config=cfg,
        symbols={name: parse_addr(value) for name, value in data["symbols"].items()},
        regions=tuple(
            Region(r["name"], parse_addr(r["start"]), parse_addr(r["end"]),
                   r["start_symbol"], r["end_symbol"])
            for r in data["regions"]
        ),
        markers=tuple(Marker(parse_addr(m["address"]), m["label"]) for m in data["markers"]),
        problems=tuple(finding(f) for f in data["problems"]),
        warnings=tuple(finding(f) for f in data["warnings"]),
        fixmap=fixmap_slots(cfg),
    )


# --- tables ----------------------------------------------------------------------------

def layout_table(layout: Layout, *, guards: bool = True) -> pd.DataFrame:
    """The layout as memory.rst tabulates it: one row per region, lowest first, with
    `[guard region]` rows for unused gaps. `end` is exclusive; `last` is end - 1,
    the inclusive End column of memory.rst. A broken layout keeps the kernel's
    region order (and its wrapped sizes) so the damage stays visible; `problem`
    marks the regions a problem names."""
    flagged = {name for finding in layout.problems for name in finding.regions}
    rows: list[dict[str, Any]] = []
    previous_end: int | None = None
    for region in layout.regions:
        if guards and previous_end is not None and region.start > previous_end:
            rows.append(_row("[guard region]", previous_end, region.start))
        rows.append(_row(region.name, region.start, region.end, region.name in flagged))
        previous_end = region.end if not region.negative else previous_end
    if guards and previous_end is not None and previous_end != 0:
        rows.append(_row("[guard region]", previous_end, TOP_OF_VA))
    return pd.DataFrame(
        rows, columns=["start", "end", "last", "size", "size_text", "use", "problem"]
    )


def _row(use: str, start: int, end: int, problem: bool = False) -> dict[str, Any]:
    # The top guard ends at 2**64, one past the last address, so it is not wrapped.
    size = end - start if end == TOP_OF_VA else u64(end - start)
    return {"start": start, "end": end, "last": u64(end - 1), "size": size,
            "size_text": format_size(size), "use": use, "problem": problem}


def vmalloc_cost(cfg: KernelConfig) -> dict[str, Any]:
    """What patch 02/11 does to one configuration: area size, vmalloc before and after.

    Returns PGDIR_SIZE, PERCPU_SIZE (2 * PGDIR_SIZE), the vmalloc size of mainline and
    of the patched layout (as C computes it: wrapped when negative), the bytes taken
    from vmalloc, and the patched layout's problems.
    """
    base = cfg.replace(local_percpu=False)
    mainline = compute_layout(base)
    row: dict[str, Any] = {
        "config": base.label(),
        "page_size": base.page_size_name,
        "va_bits": base.va_bits,
        "vabits_actual": base.vabits_actual,
        "kasan": base.kasan,
        "kernel": base.kernel,
        "PGDIR_SIZE": mainline.symbols["PGDIR_SIZE"],
        "vmalloc_mainline": mainline.region("vmalloc").size,
        "mainline_sane": mainline.sane,
    }
    if not local_percpu_supported(base.version):
        row.update(PERCPU_SIZE=None, vmalloc_patched=None, vmalloc_lost=None,
                   patched_sane=None, patched_problems=f"patch needs the {LOCAL_PERCPU_LAYOUT}")
        return row
    patched = compute_layout(base.replace(local_percpu=True))
    vm_patched = patched.region("vmalloc")
    row.update(
        PERCPU_SIZE=patched.symbols["PERCPU_SIZE"],
        vmalloc_patched=vm_patched.size,
        vmalloc_lost=None if vm_patched.negative else
        mainline.region("vmalloc").size - vm_patched.size,
        patched_sane=patched.sane,
        patched_problems="; ".join(sorted({f.code for f in patched.problems})),
    )
    return row


def configs_table(kernel: str = DEFAULT_KERNEL, **common: Any) -> pd.DataFrame:
    """`vmalloc_cost` for every valid configuration of a kernel (see `valid_configs`)."""
    return pd.DataFrame([vmalloc_cost(cfg) for cfg in valid_configs(kernel, **common)])


def patched_sane_configs(kernel: str = DEFAULT_KERNEL, **common: Any) -> tuple[KernelConfig, ...]:
    """The valid configurations of a kernel (see `valid_configs`) that can take RFC patch
    02/11: with local_percpu, their layout has no problems. Returned patched, in
    `valid_configs` order; empty for a kernel before the v6.9 layout."""
    if not local_percpu_supported(kernel):
        return ()
    patched = (cfg.replace(local_percpu=True) for cfg in valid_configs(kernel, **common))
    return tuple(cfg for cfg in patched if compute_layout(cfg).sane)
