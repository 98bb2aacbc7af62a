"""Claims about the layout: the size of each area (2 * PGDIR_SIZE, "1TB with 4K",
big enough for the chunks of `capacity_cpus` CPUs), the vmalloc space the areas take,
and which configurations can hold them at all."""

from __future__ import annotations

from ..kernel import KernelConfig, fmt_addr, format_size, vmalloc_cost
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

def claim_area_size(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """PERCPU_SIZE = 2 * PGDIR_SIZE, and how many chunks it holds at `capacity_cpus`."""
    claim = CLAIM_BY_ID["1"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    sym = lay.symbols
    size, pgdir = sym["PERCPU_SIZE"], sym["PGDIR_SIZE"]
    ai = build_alloc_info(ctx.static_size, nr_cpus=ctx.capacity_cpus, page_size=cfg.page_size)
    cap = capacity(cfg.replace(local_percpu=True), ai)
    main = capacity(cfg, ai)
    numbers = {"PGDIR_SHIFT": sym["PGDIR_SHIFT"], "PGDIR_SIZE": pgdir, "PERCPU_SIZE": size,
               "nr_cpus": ctx.capacity_cpus, "unit_size": ai.unit_size,
               "chunk_span": cap["chunk_span"], "patched_chunks": cap["dynamic_chunks"],
               "mainline_chunks": main["dynamic_chunks"]}
    text = (f"PERCPU_SIZE = 2 * PGDIR_SIZE = 2 * {format_size(pgdir)} (PGDIR_SHIFT "
            f"{sym['PGDIR_SHIFT']}) = {format_size(size)}.")
    if size != 2 * pgdir:
        verdict = "fails"
    elif not cap["first_chunk_fits"]:
        verdict = "fails"
        text += (f" With {ctx.capacity_cpus} CPUs the first chunk alone spans "
                 f"{format_size(cap['chunk_span'])} ({ctx.capacity_cpus} units of "
                 f"{format_size(ai.unit_size)}): it does not fit; not big enough.")
    else:
        text += (f" With {ctx.capacity_cpus} CPUs a chunk spans {format_size(cap['chunk_span'])}"
                 f" (units of {format_size(ai.unit_size)}): the area holds the first chunk and "
                 f"{cap['dynamic_chunks']:,} more (mainline vmalloc: "
                 f"{main['dynamic_chunks']:,}).")
        if size == 1 << 40:
            verdict = "holds"
        elif size < 1 << 40:
            verdict = "holds with caveat"
            text += " The patch's 1TB holds only for 4K/48; here the area is smaller."
        else:
            verdict = "holds"
    return ClaimResult(claim, cfg.label(), verdict, text,
                       "layout.compute_layout; percpu.capacity", numbers=numbers)


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
                           "layout.vmalloc_cost", numbers=broken.numbers)
    lost, size, before = cost["vmalloc_lost"], cost["PERCPU_SIZE"], cost["vmalloc_mainline"]
    extra = lost - 2 * size
    text = (f"vmalloc {format_size(before)} -> {format_size(cost['vmalloc_patched'])}: "
            f"{format_size(lost)} lost ({percent(lost, before)}), the two areas "
            f"(2 * {format_size(size)})"
            + (f" plus {format_size(extra)} below vmemmap skipped to align LOCAL_PERCPU_END "
               f"down to PGDIR_SIZE." if extra else "; nothing lost to alignment."))
    return ClaimResult(claim, cfg.label(), "holds with caveat" if extra else "holds", text,
                       "layout.vmalloc_cost",
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
                       "layout.compute_layout(local_percpu=True)",
                       numbers={"PGDIR_SIZE": pgdir, "needed": need, "room": room})
