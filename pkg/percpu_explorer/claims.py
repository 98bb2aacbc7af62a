"""The reviewer's checklist: every checkable claim of the RFC series, evaluated by the models.

"[RFC v1 PATCH 0/11] Optimize this_cpu_*() ops for non-x86 (ARM64 for this series)"
makes claims a reviewer wants to check (`CLAIMS`, in the series' and patch 02/11's own
words). `evaluate_claims(kernel)` answers each one for every valid configuration of that
kernel (no KASAN) where the answer depends on the configuration, and once where it does
not, by calling the models: `layout` (areas, vmalloc), `pgtable` (per-CPU roots, the sync
skip, shared TLB entries), `allocator` (offsets, capacity), `ops`/`interleave`/`replay`
(preemption safety, cost, the sys-time saving) and, where a real kernel capture exists
next to the package (`data/captures`), `captures.compare` (the Debian 6.12 4K/52 kernel).

Verdicts (`VERDICTS`):
- "holds": the models confirm the claim for this configuration;
- "holds with caveat": confirmed, with a limit the evidence names;
- "fails": the models contradict the claim;
- "cannot hold": the patched layout is broken here, so the claim cannot even be posed;
- "assumption": the answer rests on what the model assumes about the unpublished
  patches 03-11 (`rfc.DEFAULT_PLACEMENT`, `ops.DEFAULT_LOCAL_SCHEME`); the evidence shows
  the numbers under that assumption.
Rows whose answer uses an assumption name it in the `assumption` column.

CPU counts are kept small (`nr_cpus`, 4 by default) where page tables are built; the
capacity question uses `capacity_cpus` (512, arm64's default CONFIG_NR_CPUS) and is
pure arithmetic.
"""

from __future__ import annotations

import functools
import json
import textwrap
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .kernel import (
    DEFAULT_KERNEL,
    DEFAULT_PLACEMENT,
    DEFAULT_UNIT_SIZE,
    RAM_BASE,
    KernelConfig,
    KernelPageTables,
    Layout,
    build_first_chunk,
    compute_layout,
    first_chunk_va,
    fmt_addr,
    format_size,
    shared_tlb_finding,
    skip_rule_boundary,
    valid_configs,
    vmalloc_cost,
)
from .paths import CAPTURES_DIR
from .percpu import (
    DEFAULT_STATIC_SIZE,
    PercpuAllocator,
    boot_percpu,
    build_alloc_info,
    capacity,
    offset_extremes,
    run_history,
    synthetic_history,
)
from .thiscpu import (
    DEFAULT_CORE,
    DEFAULT_LOCAL_SCHEME,
    explore,
    op_pair,
    op_sequence,
    ops_table,
    reviewer_view,
    safety_table,
)

VERDICTS = ("holds", "fails", "holds with caveat", "cannot hold", "assumption")
FORMATS = ("table", "json", "markdown")
COLUMNS = ["claim_id", "claim", "words", "config", "verdict", "evidence", "source",
           "assumption", "numbers"]

# arch/arm64/Kconfig: config NR_CPUS ... default "512".
DEFAULT_CAPACITY_CPUS = 512
NO_CAPTURE = "no capture available"
# Claim 3's synthetic boot-like history: allocations, frees (enough for dynamic chunks).
HISTORY = (600, 120)


@dataclass(frozen=True)
class Claim:
    """One claim of the series: a short id, a name and the patch's own words."""

    id: str
    name: str
    words: str


CLAIMS: tuple[Claim, ...] = (
    Claim("1", "area size", "Each area is 2 * PGDIR_SIZE: \"1TB with 4K page size, should be "
          "big enough for percpu\" (patch 02/11)"),
    Claim("2", "PGD-only sync", "The areas are PGDIR_SIZE aligned, so only the PGD level needs "
          "syncing between CPUs (patches 01-02/11)"),
    Claim("3", "offset size", "Mainline's percpu offsets \"could be quite big ... the whole size "
          "of vmalloc space\" (patch 02/11)"),
    Claim("4", "same offset", "\"the offset returned by percpu allocator must be used to access "
          "both global percpu and local percpu\": first, reserved and dynamic chunks"),
    Claim("5", "vmalloc lost", "How much vmalloc space the two areas take away: their own "
          "2 * PERCPU_SIZE, or more"),
    Claim("6", "fitting configs", "This configuration can hold the two areas at all (the "
          "series: 4K/52, 16K/48 and 16K/52 cannot)"),
    Claim("7", "sync skip boundary", "arch_sync_kernel_mappings(): \"start >= "
          "LOCAL_PERCPU_START && end < LOCAL_PERCPU_END\" skips the local area"),
    Claim("8a", "SMT/CnP TLB", "A local-area this_cpu access reaches the CPU's own copy even "
          "when SMT threads share a TLB or CnP is on (the cover letter warns it may not; "
          "patch 01/11 clears CnP)"),
    Claim("8b", "KPTI", "A local-area this_cpu access reaches the CPU's own copy with KPTI "
          "(the cover letter: KPTI \"may not work\")"),
    Claim("9a", "preempt safety", "this_cpu ops are safe without the preemption bracket "
          "(single LSE instructions and LL/SC loops; not a plain load-modify-store)"),
    Claim("9b", "op cost", "What each this_cpu op costs before and after patch 11/11"),
    Claim("10", "sys-time saving", "160-core AmpereOne, 4K pages: 13-18% less sys time "
          "(LWN report of the LSF/MM/BPF talk)"),
)
_CLAIM = {c.id: c for c in CLAIMS}


@dataclass(frozen=True)
class ClaimResult:
    """One row of the checklist."""

    claim: Claim
    config: str
    verdict: str
    evidence: str
    source: str
    assumption: str = ""
    numbers: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} is unknown; use one of {VERDICTS}")

    def row(self) -> dict[str, Any]:
        return {"claim_id": self.claim.id, "claim": self.claim.name, "words": self.claim.words,
                "config": self.config, "verdict": self.verdict, "evidence": self.evidence,
                "source": self.source, "assumption": self.assumption,
                "numbers": dict(self.numbers)}


@dataclass(frozen=True)
class _Context:
    kernel: str
    nr_cpus: int
    capacity_cpus: int
    static_size: int
    preempt_note: str = ""  # what a real kernel's config says about preemption


_PLACEMENT = f"rfc.DEFAULT_PLACEMENT: {DEFAULT_PLACEMENT.describe()}"
_SCHEME = f"ops.DEFAULT_LOCAL_SCHEME: {DEFAULT_LOCAL_SCHEME.describe()}"
_SYNC = ("patch 01/11's ARCH_PAGE_TABLE_SYNC_MASK is the root level's PGTBL_*_MODIFIED bit "
         "(see the pgtable module docstring)")


def _patched(cfg: KernelConfig) -> Layout | None:
    """The patched layout, or None where the patch cannot apply (kernels before 6.9)."""
    if not cfg.version.at_least(6, 9):
        return None
    return compute_layout(cfg.replace(local_percpu=True))


def _broken(claim: Claim, cfg: KernelConfig, lay: Layout | None) -> ClaimResult:
    if lay is None:
        return ClaimResult(claim, cfg.label(), "cannot hold",
                           f"Kernel {cfg.kernel} has the {cfg.version.era} layout; patch 02/11 "
                           "is written for the v6.9+ layout.", "layout.compute_layout")
    sym = lay.symbols
    codes = ", ".join(sorted({f.code for f in lay.problems}))
    return ClaimResult(claim, cfg.label(), "cannot hold",
                       f"The patched layout is broken ({codes}): two areas of PERCPU_SIZE "
                       f"{format_size(sym['PERCPU_SIZE'])} (PGDIR_SIZE "
                       f"{format_size(sym['PGDIR_SIZE'])}) do not fit below vmemmap.",
                       "layout.compute_layout(local_percpu=True).problems",
                       numbers={"PGDIR_SIZE": sym["PGDIR_SIZE"],
                                "PERCPU_SIZE": sym["PERCPU_SIZE"]})


def _span(values: pd.Series) -> str:
    """`lo..hi` of a series of cycle counts, or one number when they are all equal."""
    lo, hi = float(values.min()), float(values.max())
    return f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f} to {hi:.1f}"


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


# --- claim 1: 2 * PGDIR_SIZE, "1TB with 4K", big enough ---------------------------------

def claim_area_size(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """PERCPU_SIZE = 2 * PGDIR_SIZE, and how many chunks it holds at `capacity_cpus`."""
    claim = _CLAIM["1"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
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
                       "layout.compute_layout; allocator.capacity", numbers=numbers)


# --- claim 2: PGDIR alignment, PGD-only sync ---------------------------------------------

def claim_pgd_sync(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """Alignment of the four area bounds; a shared vmalloc mapping and a local one after
    boot on `nr_cpus` CPUs: what syncs, what every CPU reaches, the invariants."""
    claim = _CLAIM["2"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
    sym = lay.symbols
    pgdir = sym["PGDIR_SIZE"]
    names = ("PERCPU_START", "PERCPU_END", "LOCAL_PERCPU_START", "LOCAL_PERCPU_END")
    misaligned = [n for n in names if sym[n] % pgdir]
    kpt = build_first_chunk(cfg.replace(local_percpu=True), ctx.nr_cpus)
    page = cfg.page_size
    va, pa = sym["VMALLOC_START"], RAM_BASE + (1 << 30)
    shared = kpt.vmap_range(va, va + 4 * page, pa)
    reached = {kpt.translate(cpu, va) for cpu in range(ctx.nr_cpus)}
    walk = kpt.walk(ctx.nr_cpus - 1, va)
    below_root = {step.owner for step in walk.steps[1:]}
    local_va = sym["LOCAL_PERCPU_START"]
    local = kpt.vmap_range(local_va, local_va + page, pa + (1 << 20), cpu=1)
    leaked = [cpu for cpu in range(ctx.nr_cpus) if cpu != 1
              and kpt.translate(cpu, local_va) is not None]
    violations = kpt.check_invariants()
    skipped = local.sync is not None and local.sync.skipped
    ok = (not misaligned and reached == {pa} and below_root == {"shared"}
          and skipped and not leaked and not violations)
    copied = 0 if shared.sync is None else shared.sync.entries_copied
    text = (f"PERCPU_START..LOCAL_PERCPU_END ({fmt_addr(sym['PERCPU_START'])}.."
            f"{fmt_addr(sym['LOCAL_PERCPU_END'])}) are "
            + (f"multiples of PGDIR_SIZE {format_size(pgdir)}" if not misaligned else
               f"not all PGDIR_SIZE aligned ({', '.join(misaligned)})")
            + f". On {ctx.nr_cpus} CPUs a vmalloc mapping at {fmt_addr(va)} synced its root "
            f"entry only ({copied} entries copied) and every CPU reached PA {pa:#x} through "
            f"{'shared' if below_root == {'shared'} else 'non-shared'} lower tables; a local "
            f"mapping on CPU 1 {'skipped the sync' if skipped else 'synced'}; "
            f"{len(violations)} invariant violations.")
    return ClaimResult(claim, cfg.label(), "holds" if ok else "fails", text,
                       "pgtable.build_first_chunk; KernelPageTables.vmap_range/walk/"
                       "check_invariants", _SYNC,
                       {"PGDIR_SIZE": pgdir, "entries_copied": copied,
                        "violations": len(violations)})


# --- claim 3: offsets before and after ---------------------------------------------------

def _history_allocator(cfg: KernelConfig, ctx: _Context) -> PercpuAllocator:
    alloc = PercpuAllocator(build_alloc_info(ctx.static_size, nr_cpus=ctx.nr_cpus,
                                             page_size=cfg.page_size), cfg=cfg)
    run_history(alloc, synthetic_history(HISTORY[0], HISTORY[1], seed=3))
    return alloc


def claim_offsets(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """The largest offset from pcpu_base_addr after a synthetic boot-like history,
    mainline against vmalloc's size, patched against PERCPU_SIZE."""
    claim = _CLAIM["3"]
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
    assumption = ""
    lay = _patched(cfg)
    if lay is not None and lay.sane:
        pext = offset_extremes(_history_allocator(cfg.replace(local_percpu=True), ctx))
        size = lay.symbols["PERCPU_SIZE"]
        within = -size < pext["min_offset"] and pext["max_offset"] <= size
        text += (f" Patched: offsets {pext['min_offset']:#x}..{pext['max_offset']:#x} stay "
                 f"{'within' if within else 'OUTSIDE'} +-PERCPU_SIZE ({format_size(size)}).")
        numbers.update(patched_min_offset=pext["min_offset"],
                       patched_max_offset=pext["max_offset"], PERCPU_SIZE=size)
        assumption = _PLACEMENT
        big = big and within
    else:
        text += " Patched: the layout is broken here (no patched offsets)."
    return ClaimResult(claim, cfg.label(), "holds" if big else "holds with caveat", text,
                       "percpu.run_history(synthetic_history); allocator.offset_extremes",
                       assumption, numbers)


def claim_offsets_capture(path: Path) -> ClaimResult:
    """The offsets a real kernel handed out (its percpu trace), against its vmalloc size."""
    claim = _CLAIM["3"]
    comp = _compare(path)
    rows = comp.replay.rows if comp.replay is not None else None
    if rows is None or comp.first_chunk is None:
        return ClaimResult(claim, f"capture {path.name}", "holds with caveat",
                           f"{NO_CAPTURE}: the capture has no percpu trace", f"captures {path}")
    allocs = rows[rows["event"] == "percpu_alloc_percpu"]
    addrs = [int(b) + int(o) for b, o in zip(allocs["real_base"], allocs["real_off"],
                                             strict=True)]
    spread = max(addrs) - min(addrs)
    sym = comp.layout.symbols
    vm = sym["VMALLOC_END"] - sym["VMALLOC_START"]
    matched = comp.replay.all_matched
    text = (f"Real {comp.config.label()} kernel {comp.config.kernel}: its {len(addrs)} traced "
            f"allocations span {format_size(spread)} ({spread:#x}) from the first chunk in the "
            f"linear map to chunks at the top of vmalloc, "
            f"{'more' if spread >= vm else 'less'} than vmalloc's {format_size(vm)}; the "
            f"allocator model {'agrees on every' if matched else 'DISAGREES on some'} "
            f"allocation, free and chunk.")
    return ClaimResult(claim, f"{comp.config.label()} (capture {path.name})",
                       "holds" if spread >= vm and matched else "holds with caveat", text,
                       f"captures.compare(data/captures/{path.name}).replay",
                       numbers={"real_offset_spread": spread, "vmalloc_size": vm,
                                "allocations": len(addrs)})


# --- claim 4: one offset, two areas ---------------------------------------------------------

def claim_same_offset(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """Boot the patched allocator with page tables; allocate in the first, reserved and
    dynamic chunks; walk global and local addresses on every CPU."""
    claim = _CLAIM["4"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
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
    return ClaimResult(claim, cfg.label(), "holds" if ok else "fails", text,
                       "allocator.boot_percpu; PercpuAllocator.per_cpu_ptr/local_ptr/phys_of; "
                       "KernelPageTables.translate", _PLACEMENT,
                       {"allocations": len(results), "walks": checks, "mismatches": int(bad)})


# --- claim 5: vmalloc lost ------------------------------------------------------------------

def claim_vmalloc_lost(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """vmalloc before and after; what beyond the two areas is lost to PGDIR alignment."""
    claim = _CLAIM["5"]
    cost = vmalloc_cost(cfg)
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        broken = _broken(claim, cfg, lay)
        return ClaimResult(claim, broken.config, broken.verdict,
                           broken.evidence + f" VMALLOC_END - VMALLOC_START computes "
                           f"{fmt_addr(cost['vmalloc_patched'] or 0)} (wrapped).",
                           "layout.vmalloc_cost", numbers=broken.numbers)
    lost, size, before = cost["vmalloc_lost"], cost["PERCPU_SIZE"], cost["vmalloc_mainline"]
    extra = lost - 2 * size
    text = (f"vmalloc {format_size(before)} -> {format_size(cost['vmalloc_patched'])}: "
            f"{format_size(lost)} lost ({_pct(lost, before)}), the two areas "
            f"(2 * {format_size(size)})"
            + (f" plus {format_size(extra)} below vmemmap skipped to align LOCAL_PERCPU_END "
               f"down to PGDIR_SIZE." if extra else "; nothing lost to alignment."))
    return ClaimResult(claim, cfg.label(), "holds with caveat" if extra else "holds", text,
                       "layout.vmalloc_cost",
                       numbers={"vmalloc_mainline": before,
                                "vmalloc_patched": cost["vmalloc_patched"],
                                "vmalloc_lost": lost, "alignment_lost": extra})


# --- claim 6: which configurations fit ---------------------------------------------------

def claim_fits(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """Whether the patched layout is sane; the room between VMALLOC_START and the
    PGDIR-aligned bottom of vmemmap against the four PGD entries the areas take."""
    claim = _CLAIM["6"]
    lay = _patched(cfg)
    if lay is None:
        return _broken(claim, cfg, lay)
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


def claim_fits_capture(path: Path) -> ClaimResult:
    """A real kernel's layout (checked value by value) and what the patch makes of it."""
    claim = _CLAIM["6"]
    comp = _compare(path)
    agree = f"{comp.agreed}/{len(comp.layout_rows)}"
    if comp.rfc_layout is None:
        text = f"the patch cannot apply: {comp.rfc_error}"
        verdict = "cannot hold"
    else:
        codes = ", ".join(sorted({f.code for f in comp.rfc_layout.problems}))
        text = ("the patched layout of the same configuration is "
                + (f"broken ({codes})" if codes else "sane"))
        verdict = "cannot hold" if codes else "holds"
    evidence = (f"Real {comp.config.label()} kernel {comp.config.kernel} (Debian's arm64 "
                f"configuration): the model matches {agree} of its layout values; {text}.")
    return ClaimResult(claim, f"{comp.config.label()} (capture {path.name})", verdict, evidence,
                       f"captures.compare(data/captures/{path.name})",
                       numbers={"layout_values_agreed": comp.agreed,
                                "layout_values": len(comp.layout_rows)})


# --- claim 7: the skip boundary -------------------------------------------------------------

def claim_skip_boundary(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """`pgtable.skip_rule_boundary`: two-page local mappings ending one page below and
    exactly at LOCAL_PERCPU_END, from CPU 1 and from CPU 0 (swapper_pg_dir)."""
    claim = _CLAIM["7"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
    frame = skip_rule_boundary(cfg.replace(local_percpu=True), max(ctx.nr_cpus, 4))
    below = frame[~frame["end_is_LOCAL_PERCPU_END"]]
    at = frame[frame["end_is_LOCAL_PERCPU_END"]]
    end = lay.symbols["LOCAL_PERCPU_END"]
    parts = []
    broken = False
    for r in at.itertuples():
        lost = r.own_pa != r.expected_pa
        leak = r.other_pa is not None
        broken |= lost or leak or r.violations > 0 or r.sync != "local-area skip"
        what = []
        if lost:
            what.append(f"CPU {r.cpu}'s own walk {'faults' if r.own_pa is None else 'is wrong'}")
        if leak:
            what.append(f"CPU {r.other_cpu} reaches CPU {r.cpu}'s page (PA {r.other_pa:#x})")
        parts.append(f"from CPU {r.cpu}: sync {r.sync} ({r.entries_copied} entries), "
                     + (", ".join(what) or "no harm") + f", {r.violations} violations")
    skipped = (below["sync"] == "local-area skip").all()
    unit = -(-DEFAULT_UNIT_SIZE // cfg.page_size) * cfg.page_size
    first_at_end = DEFAULT_PLACEMENT.local_base(lay.symbols, unit) + unit == end
    text = (f"A local mapping ending one page below LOCAL_PERCPU_END "
            f"({fmt_addr(end)}) is {'skipped' if skipped else 'NOT skipped'}; one ending "
            f"exactly at it is not (end < LOCAL_PERCPU_END is false): " + "; ".join(parts)
            + (". With the assumed placement the first chunk's local copy ends there, but it "
               "is mapped before percpu_pgd_setup_done (no sync yet)." if first_at_end else
               ". With the assumed placement the first chunk's local copy does not end "
               "there."))
    return ClaimResult(claim, cfg.label(), "fails" if broken or not skipped else "holds", text,
                       "pgtable.skip_rule_boundary", f"{_SYNC}; {_PLACEMENT}",
                       {"LOCAL_PERCPU_END": end,
                        "entries_copied_at_end": int(at["entries_copied"].sum()),
                        "violations_at_end": int(at["violations"].sum())})


# --- claim 8: SMT/CnP and KPTI --------------------------------------------------------------

def _first_chunk_tables(cfg: KernelConfig,
                        ctx: _Context) -> tuple[KernelPageTables, int, int]:
    kpt = build_first_chunk(cfg.replace(local_percpu=True), ctx.nr_cpus)
    unit = -(-DEFAULT_UNIT_SIZE // cfg.page_size) * cfg.page_size
    local, glob = first_chunk_va(kpt, unit)
    return kpt, local, glob


def claim_shared_tlb(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """`pgtable.shared_tlb_finding` at the first chunk's local address (CPU 0 fills the
    TLB entry, CPU 1 hits it), and at its global address as the control."""
    claim = _CLAIM["8a"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
    kpt, local, glob = _first_chunk_tables(cfg, ctx)
    finding = shared_tlb_finding(kpt, local, filler=0, reader=1)
    control = shared_tlb_finding(kpt, glob, filler=0, reader=1)
    text = (f"Local address {fmt_addr(local)}: CPU 1's own walk gives PA "
            f"{finding.reader_pa:#x}, a TLB entry filled by CPU 0 gives "
            f"{finding.cached_pa:#x} (CPU {finding.data_owner}'s copy): "
            + ("a this_cpu access on CPU 1 would silently use CPU 0's data. "
               if finding.wrong_cpu else "no confusion. ")
            + f"Global address {fmt_addr(glob)}: "
            + ("harmless, every CPU translates it alike." if not control.wrong_cpu
               else "ALSO confused."))
    return ClaimResult(claim, cfg.label(), "fails" if finding.wrong_cpu else "holds", text,
                       "pgtable.shared_tlb_finding; kernel mappings are global (nG clear)",
                       _PLACEMENT,
                       {"local_va": local, "reader_pa": finding.reader_pa,
                        "cached_pa": finding.cached_pa})


def claim_kpti(cfg: KernelConfig, ctx: _Context) -> ClaimResult:
    """KPTI's trampoline switches TTBR1 by the link-time constant TRAMP_SWAPPER_OFFSET
    (asm/memory.h: swapper_pg_dir - tramp_pg_dir = 2 * PAGE_SIZE), so after an entry from
    EL0 a CPU runs on swapper_pg_dir, CPU 0's root: the model walks CPU 1's local address
    through CPU 0's root."""
    claim = _CLAIM["8b"]
    lay = _patched(cfg)
    if lay is None or not lay.sane:
        return _broken(claim, cfg, lay)
    kpt, local, _ = _first_chunk_tables(cfg, ctx)
    own = kpt.translate(1, local)
    via_swapper = kpt.translate(0, local)
    wrong = own != via_swapper
    text = (f"With KPTI (CONFIG_UNMAP_KERNEL_AT_EL0) tramp_map_kernel adds TRAMP_SWAPPER_OFFSET "
            f"({format_size(2 * cfg.page_size)}) to TTBR1, landing on swapper_pg_dir, CPU 0's "
            f"root, on every CPU (and tramp_unmap_kernel subtracts it from CPU n's own root). "
            f"CPU 1 would then reach PA {via_swapper:#x} at {fmt_addr(local)}, not its own "
            f"{own:#x}: " + ("its this_cpu ops would use CPU 0's copy. KPTI needs a per-CPU "
                             "trampoline target." if wrong else "no difference."))
    return ClaimResult(claim, cfg.label(), "fails" if wrong else "holds", text,
                       "arch/arm64/include/asm/memory.h TRAMP_SWAPPER_OFFSET; "
                       "arch/arm64/kernel/entry.S tramp_map_kernel; KernelPageTables.translate",
                       "the series leaves the KPTI trampoline unchanged (cover letter: KPTI "
                       f"'may not work'); {_PLACEMENT}",
                       {"own_pa": own, "swapper_pa": via_swapper})


# --- claim 9: preemption safety and cost ---------------------------------------------------

@functools.lru_cache(maxsize=4)
def _safety_table(kernel: str) -> pd.DataFrame:
    """interleave.safety_table (a few seconds of exhaustive search), once per kernel."""
    return safety_table(kernel=kernel)


def claim_preempt_safety(ctx: _Context) -> ClaimResult:
    """`interleave.safety_table`: exhaustive interleavings of an op pair on 2 CPUs, for
    every op, LSE and LL/SC, today and with the local scheme; plus a plain body."""
    claim = _CLAIM["9a"]
    table = _safety_table(ctx.kernel).copy()
    col = "local this_cpu"
    unsafe = table[~table[col].str.startswith("safe")]
    unsafe_names = sorted({f"{r.op}/{r.size}" for r in unsafe.itertuples()})
    hypothetical = all(
        any(n.startswith("hypothetical") for n in op_sequence(r.op, r.size, scheme="local",
                                                             kernel=ctx.kernel).notes)
        for r in unsafe.itertuples())
    plain = explore(op_pair("add", 8, scheme="local", atomics="plain", operand=5,
                            kernel=ctx.kernel))
    plain_verdicts = sorted(v for v in plain.verdicts if v != "ok")
    today_unsafe = table[~table["today this_cpu"].str.startswith("safe")]
    retries = int((table[col] == "safe (retries)").sum())
    n_ops = len(table)
    text = (f"{n_ops - len(unsafe)}/{n_ops} op x atomics cases are safe with the local scheme "
            f"and no bracket ({retries} LL/SC cases by retrying)"
            + (f"; unsafe: {', '.join(unsafe_names)} ({', '.join(sorted(set(unsafe[col])))})"
               + (", which the kernel does not have" if hypothetical else "")
               if len(unsafe) else "")
            + f". A plain load-add-store without the bracket: "
            f"{', '.join(plain_verdicts) or 'safe'}. Today's bracketed ops: "
            f"{n_ops - len(today_unsafe)}/{n_ops} safe.")
    if unsafe.empty:
        verdict = "holds"
    elif hypothetical:
        verdict = "holds with caveat"
    else:
        verdict = "fails"
    if not plain_verdicts:
        verdict = "fails"  # the claim says a plain body is NOT safe
    return ClaimResult(claim, "all", verdict, text,
                       "interleave.safety_table; interleave.explore(op_pair(atomics='plain'))",
                       _SCHEME,
                       {"cases": n_ops, "unsafe_local": unsafe_names,
                        "plain_verdicts": plain_verdicts})


def claim_op_cost(ctx: _Context) -> ClaimResult:
    """`ops.ops_table` at 8 bytes (cmpxchg128 at 16), LSE, under PREEMPT_FULL and without a
    preempt count (Debian's PREEMPT_VOLUNTARY): cycles before and after."""
    claim = _CLAIM["9b"]
    numbers: dict[str, Any] = {}
    parts = []
    for preempt, label in PREEMPT_LABELS.items():
        t = ops_table(preempt=preempt, kernel=ctx.kernel)
        t = t[(t["atomics"] == "lse") & ((t["size"] == 8) | (t["op"] == "cmpxchg128"))]
        piv = t.pivot_table(index="op", columns="scheme", values="cycles", sort=False)
        saving = piv["today"] - piv["local"]
        numbers[preempt] = {op: {"today": round(float(row["today"]), 2),
                                 "local": round(float(row["local"]), 2)}
                            for op, row in piv.iterrows()}
        parts.append(f"{label}: today {_span(piv['today'])} cycles, local "
                     f"{_span(piv['local'])}, saving {_span(saving)} per op")
    text = (f"LSE, {DEFAULT_CORE} costs, {len(numbers['full'])} ops: " + "; ".join(parts)
            + ". The 'after' sequence is the model's reading of the unpublished patch 11/11.")
    return ClaimResult(claim, "all", "assumption", text, "ops.ops_table(op_sequence, op_cost)",
                       _SCHEME, numbers)


# --- claim 10: the 13-18% sys-time saving --------------------------------------------------

PREEMPT_LABELS = {"full": "PREEMPT_FULL", "none": "no preempt count (NONE/VOLUNTARY)"}


def claim_sys_saving(ctx: _Context, *, preempt: str = "full",
                     ghz: float = 3.0) -> ClaimResult:
    """r = S * f / d ops per sys-second for a saving share S (replay.reviewer_view), and
    the share of today's sys time this_cpu ops must take for it, S * c_today / d: above
    100% no op rate explains S, and a saving d <= 0 explains nothing."""
    claim = _CLAIM["10"]
    t = ops_table(sizes=(8,), kernel=ctx.kernel, preempt=preempt)
    t = t[t["atomics"] == "lse"]
    today = float(t[t["scheme"] == "today"]["cycles"].mean())
    local = float(t[t["scheme"] == "local"]["cycles"].mean())
    saving = today - local
    view = reviewer_view(saving_cycles=saving, ghz=ghz)
    lo, hi = view.targets[0], view.targets[-1]
    label = PREEMPT_LABELS.get(preempt, preempt)
    text = (f"Mean over the 8-byte LSE ops, {label}: {today:.1f} -> {local:.1f} cycles, "
            f"{saving:.1f} saved per op.")
    numbers: dict[str, Any] = {"today_cycles": today, "local_cycles": local,
                               "saving_cycles": saving}
    if saving <= 0:
        verdict = "cannot hold"
        text += (" The local scheme saves nothing per op here, so no this_cpu op rate "
                 f"explains {lo:.0%}-{hi:.0%} less sys time.")
        if ctx.preempt_note:
            text += f" {ctx.preempt_note}"
    else:
        req = view.table()
        shares = [s * today / saving for s in (lo, hi)]
        verdict = "cannot hold" if shares[0] > 1 else "assumption"
        text += (f" At {ghz:g} GHz, {lo:.0%}-{hi:.0%} less sys time needs "
                 f"{req['ops_per_sys_second'].iloc[0] / 1e6:.0f}-"
                 f"{req['ops_per_sys_second'].iloc[-1] / 1e6:.0f} M this_cpu ops per "
                 f"sys-second per CPU (one every {req['ns_between_ops'].iloc[0]:.1f}-"
                 f"{req['ns_between_ops'].iloc[-1]:.1f} ns): today's this_cpu ops would have to "
                 f"take {shares[0]:.0%}-{shares[1]:.0%} of sys time. The workloads are not "
                 "stated; an upper bound (every saved cycle saved time).")
        numbers.update(ops_per_sys_second=[float(x) for x in req["ops_per_sys_second"]],
                       this_cpu_share_of_sys_needed=shares)
    return ClaimResult(claim, f"4K, {label}", verdict, text,
                       "ops.ops_table; replay.reviewer_view", f"{_SCHEME}; clock {ghz:g} GHz",
                       numbers)


def claim_sys_saving_rows(ctx: _Context) -> list[ClaimResult]:
    """Claim 10 under PREEMPT_FULL and without a preempt count."""
    return [claim_sys_saving(ctx, preempt=p) for p in PREEMPT_LABELS]


# --- captures --------------------------------------------------------------------------------

def default_captures_dir() -> Path:
    """The capture bundles shipped as package data (`data/captures`)."""
    return CAPTURES_DIR


@functools.lru_cache(maxsize=8)
def _compare(path: Path) -> Any:
    from .captures import compare, load_bundle

    return compare(load_bundle(path))


def _pick_captures(folder: Path) -> tuple[Path, ...]:
    """One bundle per distinct configuration (the first by name): both Debian 4K/52 boots,
    on 52-bit and on 48-bit hardware."""
    from .captures import derive_config, load_bundle

    chosen: dict[str, Path] = {}
    for path in sorted(p for p in folder.iterdir() if (p / "meta.json").is_file()):
        try:
            label = derive_config(load_bundle(path)).label()
        except ValueError:
            continue
        chosen.setdefault(label, path)
    return tuple(chosen.values())


def _preempt_note(bundles: tuple[Path, ...]) -> str:
    """What the first capture's kernel config says about preemption (e.g. Debian's)."""
    from .captures import load_bundle, preemption_model

    for path in bundles:
        facts = load_bundle(path).meta.get("config") or {}
        model = preemption_model(facts)
        if model:
            return (f"The captured kernel ({path.name}) is built with {model}: its "
                    "this_cpu ops run this way today.")
    return ""


def _no_capture(claim_id: str, folder: Path | None) -> ClaimResult:
    where = f" ({folder} is absent or holds no bundle)" if folder is not None else ""
    return ClaimResult(_CLAIM[claim_id], "capture", "assumption",
                       f"{NO_CAPTURE}{where}: the rows above rest on the models alone, "
                       "not checked against a real kernel here.", "captures")


# --- the checklist ----------------------------------------------------------------------------

_PER_CONFIG: tuple[tuple[str, Callable[[KernelConfig, _Context], ClaimResult]], ...] = (
    ("1", claim_area_size), ("2", claim_pgd_sync), ("3", claim_offsets),
    ("4", claim_same_offset), ("5", claim_vmalloc_lost), ("6", claim_fits),
    ("7", claim_skip_boundary), ("8a", claim_shared_tlb), ("8b", claim_kpti),
)


def _safety_rows(ctx: _Context) -> list[ClaimResult]:
    return [claim_preempt_safety(ctx)]


def _cost_rows(ctx: _Context) -> list[ClaimResult]:
    return [claim_op_cost(ctx)]


_GLOBAL: tuple[tuple[str, Callable[[_Context], list[ClaimResult]]], ...] = (
    ("9a", _safety_rows), ("9b", _cost_rows), ("10", claim_sys_saving_rows),
)
_CAPTURE: tuple[tuple[str, Callable[[Path], ClaimResult]], ...] = (
    ("3", claim_offsets_capture), ("6", claim_fits_capture),
)


def evaluate_claims(kernel: str = DEFAULT_KERNEL, *, nr_cpus: int = 4,
                    capacity_cpus: int = DEFAULT_CAPACITY_CPUS,
                    static_size: int = DEFAULT_STATIC_SIZE,
                    claims: Iterable[str] | None = None,
                    captures_dir: str | Path | None = None,
                    use_captures: bool = True) -> pd.DataFrame:
    """The reviewer's checklist: one row per claim and configuration (every configuration
    of `valid_configs(kernel, kasan=("none",))` for claims 1-8, one row for 9-10, plus
    one row per real-kernel capture for claims 3 and 6). Columns: `COLUMNS`.

    nr_cpus: CPUs of the page-table and allocator scenarios (2..8 keeps it fast);
    capacity_cpus: CPUs for claim 1's capacity arithmetic; static_size: the kernel's
    static percpu size; claims: a subset of claim ids ("1", ..., "8a", "10");
    captures_dir: where the capture bundles are (default `default_captures_dir()`);
    use_captures=False leaves the capture rows out.
    """
    if not isinstance(nr_cpus, int) or not 2 <= nr_cpus <= 64:
        raise ValueError(f"nr_cpus {nr_cpus!r} must be 2..64 (the scenarios use CPUs 0-2; "
                         "keep it small, e.g. 4, for speed)")
    wanted = set(_CLAIM) if claims is None else {str(c) for c in claims}
    unknown = sorted(wanted - set(_CLAIM))
    if unknown:
        raise ValueError(f"unknown claim id(s) {unknown}; choose from {list(_CLAIM)}")
    configs = list(valid_configs(kernel, kasan=("none",)))
    folder = Path(captures_dir) if captures_dir is not None else default_captures_dir()
    bundles = _pick_captures(folder) if use_captures and folder.is_dir() else ()
    ctx = _Context(str(configs[0].kernel), nr_cpus, capacity_cpus, static_size,
                   _preempt_note(bundles))
    rows: list[ClaimResult] = []
    for claim_id, func in _PER_CONFIG:
        if claim_id not in wanted:
            continue
        rows += [func(cfg, ctx) for cfg in configs]
        for cid, capture_func in _CAPTURE:
            if cid == claim_id and use_captures:
                rows += ([capture_func(p) for p in bundles] if bundles
                         else [_no_capture(cid, folder)])
    for claim_id, global_func in _GLOBAL:
        if claim_id in wanted:
            rows += global_func(ctx)
    return pd.DataFrame([r.row() for r in rows], columns=COLUMNS)


# --- printing ------------------------------------------------------------------------------

def _json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def format_claims(frame: pd.DataFrame, fmt: str = "table", *, width: int = 100) -> str:
    """The checklist as text: "table" (aligned columns, evidence wrapped below each row),
    "json" (a list of records, raw numbers included) or "markdown" (a table to paste into
    a review mail)."""
    if fmt not in FORMATS:
        raise ValueError(f"format {fmt!r} is unknown; choose one of {', '.join(FORMATS)}")
    records = frame.to_dict("records")
    if fmt == "json":
        return json.dumps(_json_ready(records), indent=2)
    if fmt == "markdown":
        def cell(text: Any) -> str:
            return str(text).replace("|", "\\|").replace("\n", " ")
        lines = ["| # | claim | config | verdict | evidence | source |",
                 "| --- | --- | --- | --- | --- | --- |"]
        for r in records:
            evidence = r["evidence"] + (f" *Assumes {r['assumption']}.*" if r["assumption"]
                                        else "")
            lines.append(f"| {cell(r['claim_id'])} | {cell(r['claim'])} | {cell(r['config'])} "
                         f"| **{cell(r['verdict'])}** | {cell(evidence)} | "
                         f"{cell(r['source'])} |")
        return "\n".join(lines)
    heads = ("#", "claim", "config", "verdict")
    keys = ("claim_id", "claim", "config", "verdict")
    widths = [max([len(h)] + [len(str(r[k])) for r in records]) for h, k in zip(heads, keys,
                                                                               strict=True)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(heads, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    indent = " " * 4
    for r in records:
        lines.append("  ".join(str(r[k]).ljust(w) for k, w in zip(keys, widths,
                                                                  strict=True)).rstrip())
        lines += textwrap.wrap(r["evidence"], width, initial_indent=indent,
                               subsequent_indent=indent)
        lines += textwrap.wrap(f"source: {r['source']}", width, initial_indent=indent,
                               subsequent_indent=indent + "  ")
        if r["assumption"]:
            lines += textwrap.wrap(f"assumes: {r['assumption']}", width,
                                   initial_indent=indent, subsequent_indent=indent + "  ")
    return "\n".join(lines)


def claims_table(kernel: str = DEFAULT_KERNEL, fmt: str = "table", **kwargs: Any) -> str:
    """`format_claims(evaluate_claims(kernel, **kwargs), fmt)`: the text the CLI prints."""
    return format_claims(evaluate_claims(kernel, **kwargs), fmt)


def verdict_counts(frame: pd.DataFrame) -> pd.DataFrame:
    """Verdicts per claim: one row per claim id, one column per verdict seen."""
    return (frame.groupby(["claim_id", "verdict"], sort=False).size()
            .unstack(fill_value=0))
