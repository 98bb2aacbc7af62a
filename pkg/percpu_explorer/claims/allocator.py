"""Claims about the percpu allocator: how big mainline's offsets from pcpu_base_addr
grow (kernel arithmetic), and that one offset reaches the CPU's copy through both the
Global and the Local Percpu area, in the first, reserved and dynamic chunks (an
assumption: the model places the local copies so)."""

from __future__ import annotations

from typing import Any

from ..kernel import KernelConfig, compute_layout, fmt_addr, format_size
from ..percpu import (
    PercpuAllocator,
    boot_percpu,
    build_alloc_info,
    offset_extremes,
    run_history,
    synthetic_history,
)
from .common import (
    CLAIM_BY_ID,
    PLACEMENT,
    ClaimResult,
    Context,
    cannot_hold,
    conditional,
    patched_layout,
)

# Claim 3's synthetic boot-like history: allocations, frees (enough for dynamic chunks).
HISTORY = (600, 120)


# --- claim 3: offsets before and after ---------------------------------------------------

def _history_allocator(cfg: KernelConfig, ctx: Context) -> PercpuAllocator:
    """An allocator after HISTORY's synthetic boot-like history."""
    alloc = PercpuAllocator(build_alloc_info(ctx.static_size, nr_cpus=ctx.nr_cpus,
                                             page_size=cfg.page_size), cfg=cfg)
    run_history(alloc, synthetic_history(HISTORY[0], HISTORY[1], seed=3))
    return alloc


def claim_offsets(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """The largest offset from pcpu_base_addr after a synthetic boot-like history,
    mainline against vmalloc's size (kernel arithmetic: mm/percpu.c's placement, the
    first chunk in the linear map, later chunks from the top of vmalloc); the patched
    offsets are shown beside it, under the assumed placement."""
    claim = CLAIM_BY_ID["3"]
    sym = compute_layout(cfg).symbols
    vm = sym["VMALLOC_END"] - sym["VMALLOC_START"]
    ext = offset_extremes(_history_allocator(cfg, ctx))
    big = ext["max_offset"] >= vm
    text = (f"Mainline, {ctx.nr_cpus} CPUs, a synthetic history of {HISTORY[0]} allocations "
            f"and {HISTORY[1]} frees: the first "
            f"chunk sits in the linear map and later chunks at the top of vmalloc, so the "
            f"largest offset is {format_size(ext['max_offset'])} ({ext['max_offset']:#x}), "
            f"{'more' if big else 'less'} than the whole vmalloc space "
            f"({format_size(vm)}).")
    numbers: dict[str, Any] = {"mainline_max_offset": ext["max_offset"], "vmalloc_size": vm}
    lay = patched_layout(cfg)
    if lay is not None and lay.sane:
        pext = offset_extremes(_history_allocator(cfg.replace(local_percpu=True), ctx))
        size = lay.symbols["PERCPU_SIZE"]
        within = -size < pext["min_offset"] and pext["max_offset"] <= size
        text += (f" Patched, assuming rfc.DEFAULT_PLACEMENT (patches 03-09 are not public): "
                 f"offsets {pext['min_offset']:#x}..{pext['max_offset']:#x} stay "
                 f"{'within' if within else 'OUTSIDE'} +-PERCPU_SIZE ({format_size(size)}).")
        numbers.update(patched_min_offset=pext["min_offset"],
                       patched_max_offset=pext["max_offset"], PERCPU_SIZE=size)
    else:
        text += " Patched: the layout is broken here (no patched offsets)."
    return ClaimResult(claim, cfg.label(), "holds" if big else "holds with caveat", text,
                       "percpu.run_history(synthetic_history); percpu.offset_extremes",
                       "kernel arithmetic", numbers=numbers)


# --- claim 4: one offset, two areas ---------------------------------------------------------

def claim_same_offset(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """Boot the patched allocator with page tables; allocate in the first, reserved and
    dynamic chunks; walk global and local addresses on every CPU."""
    claim = CLAIM_BY_ID["4"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    alloc, kpt = boot_percpu(cfg.replace(local_percpu=True), ctx.static_size, ctx.nr_cpus)
    assert kpt is not None
    kinds = {c.id: c.kind for c in alloc.chunks}
    results = [alloc.alloc(24, 8), alloc.alloc(8, reserved=True)]
    for _ in range(400):
        result = alloc.alloc(4096, 4096)
        results.append(result)
        kinds.update({c.id: c.kind for c in alloc.chunks})
        if kinds[result.chunk_id] == "dynamic":
            break
    seen = sorted({kinds[r.chunk_id] for r in results})
    bad = 0
    checks = 0
    for r in results:
        offset = alloc.offset_from_base(r.ptr)
        if alloc.local_ptr(r.ptr) - alloc.local_base != offset:
            bad += 1
        for cpu in range(ctx.nr_cpus):
            want = alloc.phys_of(r.ptr, cpu)
            checks += 2
            bad += kpt.translate(cpu, alloc.per_cpu_ptr(r.ptr, cpu)) != want
            bad += kpt.translate(cpu, alloc.local_ptr(r.ptr)) != want
    violations = kpt.check_invariants()
    ok = not bad and not violations and seen == ["dynamic", "first", "reserved"]
    text = (f"{len(results)} allocations in the {', '.join(seen)} chunks on {ctx.nr_cpus} CPUs: "
            f"{checks - bad}/{checks} walks of per_cpu_ptr() and of the local address "
            f"(local base {fmt_addr(alloc.local_base)} + the same offset as from pcpu_base_addr "
            f"{fmt_addr(alloc.base_addr)}) reach the CPU's own copy; {len(violations)} "
            f"invariant violations.")
    text += (" The model maps each CPU's unit at local base + offset by construction (as "
             "patch 02/11 requires), so the walks check its tables, not the unpublished "
             "patches 03-09.")
    condition = ("patches 03-09 map every CPU's copy at the local base plus the allocator's "
                 "offset, as patch 02/11 requires and the model does by construction")
    return ClaimResult(claim, cfg.label(), conditional("holds" if ok else "fails", condition),
                       text, "percpu.boot_percpu; PercpuAllocator.per_cpu_ptr/local_ptr/"
                       "phys_of; KernelPageTables.translate", "assumption",
                       f"same offset in both areas (true by the model's construction); "
                       f"{PLACEMENT}",
                       {"allocations": len(results), "walks": checks, "mismatches": int(bad)})
