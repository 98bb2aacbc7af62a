"""The words the notebooks use, each in one or two plain sentences (arm64 ARM, kernel
sources and the series' own wording). One table; notebooks show the terms they use
(`ui.text.glossary`). This module imports nothing from the package."""

from __future__ import annotations

__all__ = ["TERMS", "terms"]

TERMS: dict[str, str] = {
    # address space
    "VA bits": "How many bits of a virtual address the kernel uses (CONFIG_ARM64_VA_BITS): "
               "48 bits give 256TB of kernel address space, 52 bits 4PB.",
    "vabits_actual": "The VA bits the hardware really provides at boot; a 52-bit kernel on "
                     "a CPU without LPA/LPA2 runs with 48 (47 with 16K pages).",
    "LPA2": "ARMv8.7 extension that gives 4K and 16K pages 52-bit addresses (kernel v6.9+).",
    "vmalloc": "The kernel's area for virtually contiguous mappings (vmalloc(), ioremap(), "
               "percpu chunks); it runs from VMALLOC_START to VMALLOC_END.",
    "vmemmap": "The array of struct page, one per physical page, mapped at a fixed address.",
    "linear map": "All of RAM mapped once at the bottom of the kernel half (PAGE_OFFSET); "
                  "the percpu first chunk lives there.",
    "fixmap": "Addresses fixed at compile time near the top of the address space "
              "(early console, page-table updates).",
    "KASAN": "Kernel Address SANitizer; its shadow memory takes 1/8 (generic) or 1/16 "
             "(software tags) of the address space and moves the other regions.",
    "Global/Local Percpu area": "The two areas RFC patch 02/11 places below vmemmap, each "
                                "2 * PGDIR_SIZE: percpu chunks in the Global area, and the "
                                "same offset in the Local area mapped to this CPU's copy.",
    # page tables
    "PGD": "The top level of the page tables; each of its entries covers PGDIR_SIZE.",
    "PGDIR_SIZE": "The span of one top-level entry: 1 << PGDIR_SHIFT (512GB with 4K pages "
                  "and 4 levels).",
    "TTBR1": "TTBR1_EL1, the register that holds the physical address of the kernel half's "
             "root table; with per-CPU page tables (RFC 01/11) each CPU loads its own root.",
    "nG": "The not-global bit of a descriptor: the TLB entry belongs to one ASID instead of "
          "all address spaces.",
    "CnP": "Common-not-Private, a TTBR bit that lets CPUs share TLB entries for the same "
           "tables; CPUs with different tables for the same address must not set it.",
    "KPTI": "Kernel page-table isolation (Meltdown): the kernel is unmapped while user "
            "code runs, and its mappings are made non-global (nG).",
    # percpu allocator
    "first chunk": "The percpu chunk set up at boot that holds the static percpu variables "
                   "(DEFINE_PER_CPU), the reserved area and the first dynamic area.",
    "unit": "One CPU's copy inside a chunk; every CPU's unit has the same size (unit_size), "
            "and a percpu pointer is an offset valid in every unit.",
    "chunk": "A set of units, one per CPU; the allocator hands out offsets inside it.",
    "reserved chunk": "A small chunk of the first chunk kept for module static percpu data.",
    "populated": "Pages of a chunk that have physical memory behind them; later chunks are "
                 "populated page by page on demand.",
    "atom": "atom_size, the granule the first chunk's unit size is rounded to (PAGE_SIZE "
            "on arm64); inside a chunk, areas are handed out in 4-byte units "
            "(PCPU_MIN_ALLOC_SIZE).",
    # this_cpu operations
    "this_cpu_*()": "A per-CPU variable update safe against preemption and migration: the "
                    "whole sequence runs on one CPU.",
    "__this_cpu_*() / raw_cpu_*()": "The same updates for callers that have already "
                                    "disabled preemption; unguarded they can lose updates.",
    "tpidr_el1": "The register that holds this CPU's percpu offset (tpidr_el2 under VHE).",
    "VHE": "Virtualization Host Extensions: the kernel runs at EL2 and uses tpidr_el2.",
    "LSE": "Large System Extensions (ARMv8.1): single-instruction atomics such as LDADD "
           "and STADD.",
    "LL/SC": "Load-linked/store-conditional (LDXR/STXR): the pre-LSE atomic loop that "
             "retries when another CPU touched the location.",
    "preempt count": "The counter preempt_disable()/enable() change; PREEMPT_VOLUNTARY "
                     "kernels without PREEMPT_COUNT reduce both to a compiler barrier.",
    "PREEMPT_FULL / PREEMPT_LAZY": "Preemption models in which the kernel can be preempted "
                                   "almost anywhere; from v7.0 arm64 builds only these (and "
                                   "RT), all with a preempt count.",
    # figures and verdicts
    "log-size schematic": "The map's left panel: each region's bar height is log2(bytes) - "
                          "19, so an 8M region is 4 high and a 256TB one is 29; the right "
                          "panel is true to scale.",
    "holds / fails": "A verdict the kernel's own arithmetic or a real kernel decides.",
    "cannot hold": "The configuration cannot have the claimed property at all (the layout "
                   "does not fit).",
    "holds if / fails if": "A verdict that rests on an assumption about the unpublished "
                           "patches or on an estimated cost, named in the row.",
    "basis": "What a number stands on: kernel arithmetic, real kernel, measured, "
             "assumption or estimate.",
}


def terms(*names: str) -> dict[str, str]:
    """The definitions of `names` in that order; an unknown name raises ValueError."""
    unknown = [n for n in names if n not in TERMS]
    if unknown:
        raise ValueError(f"no glossary entry for {unknown}; the glossary has "
                         f"{', '.join(TERMS)}")
    return {n: TERMS[n] for n in names}
