"""Claims about the layout, all kernel arithmetic: the size of each area (2 *
PGDIR_SIZE, "1TB with 4K", big enough for the chunks of the possible CPUs, CONFIG_NR_CPUS
the worst case), the vmalloc space the areas take, and which configurations can hold
them at all."""

from __future__ import annotations

from ..kernel import NR_CPUS_RANGE, KernelConfig, fmt_addr, format_size, vmalloc_cost
from ..percpu import build_alloc_info, capacity
from .common import (
    CLAIM_BY_ID,
    ClaimResult,
    Context,
    cannot_hold,
    patched_layout,
    percent,
)

# --- claim 1: 2 * PGDIR_SIZE, "1TB with 4K", big enough ---------------------------------

# Possible-CPU counts the area size is shown at besides CONFIG_NR_CPUS (the worst case):
# a small machine and the series' 160-core AmpereOne.
POSSIBLE_CPUS_SHOWN = (4, 160)


def max_possible_cpus(cfg: KernelConfig, static_size: int, limit: int) -> int:
    """The most possible CPUs (1..limit) whose first chunk fits the Global Percpu area.

    pcpu_build_alloc_info() (mm/percpu.c) counts units with for_each_possible_cpu(), so
    the first chunk spans one unit per possible CPU, not per CONFIG_NR_CPUS; the span
    only grows with the count, so the largest count that fits is found by bisection."""
    patched = cfg.replace(local_percpu=True)

    def fits(n: int) -> bool:
        ai = build_alloc_info(static_size, nr_cpus=n, page_size=cfg.page_size)
        return bool(capacity(patched, ai)["first_chunk_fits"])

    if not fits(1):
        return 0
    lo, hi = 1, limit
    if fits(hi):
        return hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return lo


def claim_area_size(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """PERCPU_SIZE = 2 * PGDIR_SIZE, and how many chunks it holds as a function of the
    possible CPUs (pcpu_build_alloc_info() sizes the first chunk per possible CPU);
    CONFIG_NR_CPUS (`capacity_cpus`, every CPU possible) is the worst case and decides
    the verdict."""
    claim = CLAIM_BY_ID["1"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    sym = lay.symbols
    size, pgdir = sym["PERCPU_SIZE"], sym["PGDIR_SIZE"]
    worst = ctx.capacity_cpus
    patched = cfg.replace(local_percpu=True)
    by_cpus: dict[int, int | None] = {}
    for n in sorted({*POSSIBLE_CPUS_SHOWN, worst}):
        cap_n = capacity(patched, build_alloc_info(ctx.static_size, nr_cpus=n,
                                                   page_size=cfg.page_size))
        by_cpus[n] = cap_n["dynamic_chunks"] if cap_n["first_chunk_fits"] else None
    ai = build_alloc_info(ctx.static_size, nr_cpus=worst, page_size=cfg.page_size)
    cap = capacity(patched, ai)
    main = capacity(cfg, ai)
    most = max_possible_cpus(cfg, ctx.static_size, NR_CPUS_RANGE[1])
    numbers = {"PGDIR_SHIFT": sym["PGDIR_SHIFT"], "PGDIR_SIZE": pgdir, "PERCPU_SIZE": size,
               "nr_cpus": worst, "unit_size": ai.unit_size,
               "chunk_span": cap["chunk_span"], "patched_chunks": cap["dynamic_chunks"],
               "mainline_chunks": main["dynamic_chunks"],
               "patched_chunks_by_possible_cpus": by_cpus,
               "max_possible_cpus": most}
    shown = ", ".join(f"{n} possible CPUs: "
                      + ("no room for the first chunk" if c is None else
                         f"{c:,} more chunk{'' if c == 1 else 's'}")
                      for n, c in by_cpus.items())
    text = (f"PERCPU_SIZE = 2 * PGDIR_SIZE = 2 * {format_size(pgdir)} (PGDIR_SHIFT "
            f"{sym['PGDIR_SHIFT']}) = {format_size(size)}. The kernel sizes the first chunk "
            f"per possible CPU (pcpu_build_alloc_info(): for_each_possible_cpu), so the room "
            f"left for later chunks depends on the machine: {shown}. "
            f"CONFIG_NR_CPUS={worst} with every CPU possible is the worst case")
    if size != 2 * pgdir:
        verdict = "fails"
        text += "."
    elif not cap["first_chunk_fits"]:
        verdict = "fails"
        text += (f": the first chunk alone spans {format_size(cap['chunk_span'])} ({worst} "
                 f"units of {format_size(ai.unit_size)}) and does not fit; it fits up to "
                 f"{most} possible CPUs.")
    else:
        text += (f": a chunk spans {format_size(cap['chunk_span'])} (units of "
                 f"{format_size(ai.unit_size)}) and the area holds the first chunk and "
                 f"{cap['dynamic_chunks']:,} more (mainline vmalloc: "
                 f"{main['dynamic_chunks']:,}).")
        if size < 1 << 40:
            verdict = "holds with caveat"
            text += " The patch's 1TB holds only for 4K/48; here the area is smaller."
        else:
            verdict = "holds"
    return ClaimResult(claim, cfg.label(), verdict, text,
                       "layout.compute_layout; percpu.build_alloc_info; percpu.capacity",
                       "kernel arithmetic", numbers=numbers)


# --- claim 5: vmalloc lost ------------------------------------------------------------------

def claim_vmalloc_lost(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """vmalloc before and after; what beyond the two areas is lost to PGDIR alignment."""
    claim = CLAIM_BY_ID["5"]
    cost = vmalloc_cost(cfg)
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        broken = cannot_hold(claim, cfg, lay)
        return ClaimResult(claim, broken.config, broken.verdict,
                           broken.evidence + f" VMALLOC_END - VMALLOC_START computes "
                           f"{fmt_addr(cost['vmalloc_patched'] or 0)} (wrapped).",
                           "layout.vmalloc_cost", "kernel arithmetic", numbers=broken.numbers)
    lost, size, before = cost["vmalloc_lost"], cost["PERCPU_SIZE"], cost["vmalloc_mainline"]
    extra = lost - 2 * size
    text = (f"vmalloc {format_size(before)} -> {format_size(cost['vmalloc_patched'])}: "
            f"{format_size(lost)} lost ({percent(lost, before)}), the two areas "
            f"(2 * {format_size(size)})"
            + (f" plus {format_size(extra)} below vmemmap skipped to align LOCAL_PERCPU_END "
               f"down to PGDIR_SIZE." if extra else "; nothing lost to alignment."))
    return ClaimResult(claim, cfg.label(), "holds with caveat" if extra else "holds", text,
                       "layout.vmalloc_cost", "kernel arithmetic",
                       numbers={"vmalloc_mainline": before,
                                "vmalloc_patched": cost["vmalloc_patched"],
                                "vmalloc_lost": lost, "alignment_lost": extra})


# --- claim 6: which configurations fit ---------------------------------------------------

def claim_fits(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """Whether the patched layout is sane; the room between VMALLOC_START and the
    PGDIR-aligned bottom of vmemmap against the four PGD entries the areas take."""
    claim = CLAIM_BY_ID["6"]
    lay = patched_layout(cfg)
    if lay is None:
        return cannot_hold(claim, cfg, lay)
    sym = lay.symbols
    pgdir = sym["PGDIR_SIZE"]
    room = sym["LOCAL_PERCPU_END"] - sym["VMALLOC_START"]  # Python ints: may be negative
    need = 2 * sym["PERCPU_SIZE"]
    codes = ", ".join(sorted({f.code for f in lay.problems}))
    room_text = (f"{format_size(room)}" if room >= 0 else
                 f"nothing: LOCAL_PERCPU_END lies {format_size(-room)} below VMALLOC_START")
    text = (f"One PGD entry covers {format_size(pgdir)}; the areas need "
            f"{need // pgdir} of them ({format_size(need)}) between VMALLOC_START "
            f"{fmt_addr(sym['VMALLOC_START'])} and LOCAL_PERCPU_END "
            f"{fmt_addr(sym['LOCAL_PERCPU_END'])}, which leaves {room_text}"
            + (f": the patched layout is broken ({codes})." if codes else
               f"; {format_size(room - need)} is left for vmalloc and its guard."))
    return ClaimResult(claim, cfg.label(), "holds" if lay.sane else "cannot hold", text,
                       "layout.compute_layout(local_percpu=True)", "kernel arithmetic",
                       numbers={"PGDIR_SIZE": pgdir, "needed": need, "room": room})
