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
    "swapper_pg_dir": "The kernel's root page table, the one TTBR1 holds in mainline on "
                      "every CPU; with per-CPU page tables CPU 0 keeps it and the others "
                      "get a root page of their own.",
    "arch_sync_kernel_mappings()": "The hook mm/vmalloc.c calls after a mapping changed a "
                                   "page-table level the architecture asked to hear about; "
                                   "with per-CPU roots it copies swapper_pg_dir's changed "
                                   "root entries into every CPU's root.",
    "LOCAL_PERCPU_END": "The top of the Local Percpu area: the start of vmemmap aligned "
                        "down to PGDIR_SIZE (patch 02/11); the sync skip tests "
                        "end < LOCAL_PERCPU_END.",
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
    "pcpu_base_addr": "The address of the first chunk's first unit; a percpu pointer is an "
                      "offset from it, and CPU n's copy lies at that offset plus "
                      "__per_cpu_offset[n].",
    "block hints": "Per-page summaries of a chunk's allocation bitmap (contig hint: the "
                   "largest free run; scan hint: a run the search may skip) that let "
                   "pcpu_alloc() pass over pages that cannot fit a request.",
    "balance work": "pcpu_balance_workfn(): after allocations and frees it keeps a few "
                    "empty populated pages ready (creating a chunk if needed) and destroys "
                    "all but one empty chunk.",
    "slot": "The chunk list a chunk sits on, by its largest free run; pcpu_alloc() searches "
            "from the request's slot upwards. The reserved chunk is on none.",
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
    "PREEMPT_NONE / PREEMPT_VOLUNTARY": "Preemption models in which kernel code is "
                                        "preempted only where it allows it; modelled "
                                        "without a preempt count, as Debian's 6.12 builds "
                                        "them. arm64 offers them only before v7.0.",
    "preemption bracket": "preempt_disable_notrace() before and preempt_enable_notrace() "
                          "after a this_cpu op's access, so the task cannot move to another "
                          "CPU in between; with a preempt count it is ten instructions.",
    "local percpu": "The RFC series' scheme: one address (in the Local Percpu area) that "
                    "every CPU maps to its own copy, so a this_cpu op needs neither "
                    "tpidr_el1 nor the preemption bracket.",
    "core profile": "The cycles each instruction class costs on a core (Neoverse N1, V2, "
                    "AmpereOne), from Arm's optimization guides where they give one and "
                    "estimates (named) elsewhere.",
    "sys time": "The share of CPU time spent in the kernel; the series reports 13-18% "
                "less of it on a 160-core AmpereOne.",
    "census": "An exact count of how often every this_cpu site of a real kernel ran, per "
              "workload, made by a QEMU plugin while the kernel runs (`make census`).",
    "this_cpu site": "A kernel instruction that reads the CPU's per-CPU offset (mrs of "
                     "tpidr_el1, or tpidr_el2 on a VHE kernel), or a call into a copy of "
                     "that read: each this_cpu op, this_cpu_ptr() or smp_processor_id() "
                     "starts with one.",
    "measured": "Counted in a real kernel run (a census): no model, no estimate.",
    # figures and verdicts
    "log-size schematic": "The map's left panel: each region's bar height is log2(bytes) - "
                          "19, so an 8M region is 4 high and a 256TB one is 29; the right "
                          "panel is true to scale.",
    "holds / fails": "A verdict the kernel's own arithmetic or a real kernel decides.",
    "cannot hold": "The configuration cannot have the claimed property at all (the layout "
                   "does not fit).",
    "holds if / fails if": "A verdict that rests on an assumption about the unpublished "
                           "patches or on an estimated cost, named in the row.",
    "holds with caveat": "The kernel's arithmetic or a real kernel shows the claim true, "
                         "with a limit the row names (e.g. only for some CPU counts).",
    "not checked": "No evidence for this row here (e.g. no capture of a real kernel); "
                   "the row says what is missing.",
    "capture": "What a booted real kernel printed and dumped (its percpu boot lines, "
               "page-table dump, percpu trace), which the models are checked against.",
    "software PAN": "CONFIG_ARM64_SW_TTBR0_PAN: on CPUs without hardware PAN the kernel "
                    "keeps user memory out of reach by pointing TTBR0 at an empty table "
                    "(reserved_pg_dir, found one page below the root TTBR1 holds).",
    # exercises
    "seed": "The number that picks a set of exercises: the same seed gives every student "
            "the same questions, another seed other questions.",
    "first fit": "pcpu_alloc() rounds the size up to 4 bytes and takes the lowest free "
                 "offset of a chunk where that many bytes fit at a multiple of the "
                 "requested alignment.",
    "lost update / misplaced": "A lost update: another update of the same copy is "
                               "overwritten (a load and a store separated by a "
                               "preemption). Misplaced: a task writes another CPU's copy "
                               "after it moved, racing with that CPU.",
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
