"""Claims about the page tables: PGDIR_SIZE-aligned areas need only the PGD level
synced, the sync skip rule at LOCAL_PERCPU_END, and whether a local-area access
reaches the CPU's own copy when a TLB is shared (SMT, CnP) or KPTI switches roots."""

from __future__ import annotations

from ..kernel import (
    DEFAULT_PLACEMENT,
    RAM_BASE,
    KernelConfig,
    KernelPageTables,
    build_first_chunk,
    first_chunk_va,
    fmt_addr,
    format_size,
    shared_tlb_finding,
    skip_rule_boundary,
)
from .common import (
    CLAIM_BY_ID,
    PLACEMENT,
    SYNC,
    ClaimResult,
    Context,
    cannot_hold,
    first_chunk_unit,
    patched_layout,
)

# --- claim 2: PGDIR alignment, PGD-only sync ---------------------------------------------

def claim_pgd_sync(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """Alignment of the four area bounds; a shared vmalloc mapping and a local one after
    boot on `nr_cpus` CPUs: what syncs, what every CPU reaches, the invariants."""
    claim = CLAIM_BY_ID["2"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
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
                       "check_invariants", SYNC,
                       {"PGDIR_SIZE": pgdir, "entries_copied": copied,
                        "violations": len(violations)})


# --- claim 7: the skip boundary -------------------------------------------------------------

def claim_skip_boundary(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """`pgtable.skip_rule_boundary`: two-page local mappings ending one page below and
    exactly at LOCAL_PERCPU_END, from CPU 1 and from CPU 0 (swapper_pg_dir)."""
    claim = CLAIM_BY_ID["7"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
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
    unit = first_chunk_unit(cfg)
    first_at_end = DEFAULT_PLACEMENT.local_base(lay.symbols, unit) + unit == end
    text = (f"A local mapping ending one page below LOCAL_PERCPU_END "
            f"({fmt_addr(end)}) is {'skipped' if skipped else 'NOT skipped'}; one ending "
            f"exactly at it is not (end < LOCAL_PERCPU_END is false): " + "; ".join(parts)
            + (". With the assumed placement the first chunk's local copy ends there, but it "
               "is mapped before percpu_pgd_setup_done (no sync yet)." if first_at_end else
               ". With the assumed placement the first chunk's local copy does not end "
               "there."))
    return ClaimResult(claim, cfg.label(), "fails" if broken or not skipped else "holds", text,
                       "pgtable.skip_rule_boundary", f"{SYNC}; {PLACEMENT}",
                       {"LOCAL_PERCPU_END": end,
                        "entries_copied_at_end": int(at["entries_copied"].sum()),
                        "violations_at_end": int(at["violations"].sum())})


# --- claim 8: SMT/CnP and KPTI --------------------------------------------------------------

def _first_chunk_tables(cfg: KernelConfig,
                        ctx: Context) -> tuple[KernelPageTables, int, int]:
    """The patched first chunk's tables, its local VA and CPU 0's global VA."""
    kpt = build_first_chunk(cfg.replace(local_percpu=True), ctx.nr_cpus)
    local, glob = first_chunk_va(kpt, first_chunk_unit(cfg))
    return kpt, local, glob


def claim_shared_tlb(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """`pgtable.shared_tlb_finding` at the first chunk's local address (CPU 0 fills the
    TLB entry, CPU 1 hits it), and at its global address as the control."""
    claim = CLAIM_BY_ID["8a"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
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
                       PLACEMENT,
                       {"local_va": local, "reader_pa": finding.reader_pa,
                        "cached_pa": finding.cached_pa})


def claim_kpti(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """KPTI's trampoline switches TTBR1 by the link-time constant TRAMP_SWAPPER_OFFSET
    (asm/memory.h: swapper_pg_dir - tramp_pg_dir = 2 * PAGE_SIZE), so after an entry from
    EL0 a CPU runs on swapper_pg_dir, CPU 0's root: the model walks CPU 1's local address
    through CPU 0's root."""
    claim = CLAIM_BY_ID["8b"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
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
                       f"'may not work'); {PLACEMENT}",
                       {"own_pa": own, "swapper_pa": via_swapper})
