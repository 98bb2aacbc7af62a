"""Claims about the page tables: PGDIR_SIZE-aligned areas need only the PGD level
synced, the sync skip rule at LOCAL_PERCPU_END, and whether a local-area access
reaches the CPU's own copy when a TLB is shared (SMT, CnP), when KPTI switches roots
and when software PAN derives reserved_pg_dir from TTBR1.

Every verdict here rests on what the unpublished patches are assumed to do (patch
01/11's sync, the placement of patches 03-09, what the series keeps of KPTI and
software PAN): the rows are graded "assumption" and say what they depend on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..kernel import (
    DEFAULT_PLACEMENT,
    RAM_BASE,
    KernelConfig,
    KernelPageTables,
    RfcPlacement,
    build_first_chunk,
    first_chunk_va,
    fmt_addr,
    format_size,
    shared_tlb_finding,
    skip_rule_boundary,
)
from ..percpu import PercpuAllocator, build_alloc_info, run_history, synthetic_history
from .allocator import HISTORY
from .common import (
    CLAIM_BY_ID,
    PLACEMENT,
    SYNC,
    ClaimResult,
    Context,
    cannot_hold,
    conditional,
    first_chunk_unit,
    patched_layout,
)

# --- claim 2: PGDIR alignment, PGD-only sync ---------------------------------------------

def claim_pgd_sync(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """Alignment of the four area bounds (kernel arithmetic); a shared vmalloc mapping and
    a local one after boot on `nr_cpus` CPUs under the assumed sync of patch 01/11: what
    syncs, what every CPU reaches, the invariants."""
    claim = CLAIM_BY_ID["2"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    sym = lay.symbols
    pgdir = sym["PGDIR_SIZE"]
    names = ("PERCPU_START", "PERCPU_END", "LOCAL_PERCPU_START", "LOCAL_PERCPU_END")
    misaligned = [n for n in names if sym[n] % pgdir]
    if misaligned:
        return ClaimResult(claim, cfg.label(), "fails",
                           f"{', '.join(misaligned)} are not multiples of PGDIR_SIZE "
                           f"{format_size(pgdir)}.", "layout.compute_layout(local_percpu=True)",
                           "kernel arithmetic", numbers={"PGDIR_SIZE": pgdir})
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
    ok = reached == {pa} and below_root == {"shared"} and skipped and not leaked \
        and not violations
    copied = 0 if shared.sync is None else shared.sync.entries_copied
    text = (f"PERCPU_START..LOCAL_PERCPU_END ({fmt_addr(sym['PERCPU_START'])}.."
            f"{fmt_addr(sym['LOCAL_PERCPU_END'])}) are multiples of PGDIR_SIZE "
            f"{format_size(pgdir)} (kernel arithmetic). Under the assumed sync, on "
            f"{ctx.nr_cpus} CPUs a vmalloc mapping at {fmt_addr(va)} synced its root "
            f"entry only ({copied} entries copied) and every CPU reached PA {pa:#x} through "
            f"{'shared' if below_root == {'shared'} else 'non-shared'} lower tables; a local "
            f"mapping on CPU 1 {'skipped the sync' if skipped else 'synced'}; "
            f"{len(violations)} invariant violations.")
    condition = ("patch 01/11 shares every table below the root and copies a root entry "
                 "to every CPU whenever swapper's root level changes (its "
                 "ARCH_PAGE_TABLE_SYNC_MASK, not public)")
    return ClaimResult(claim, cfg.label(), conditional("holds" if ok else "fails", condition),
                       text, "scenarios.build_first_chunk; KernelPageTables.vmap_range/walk/"
                       "check_invariants", "assumption", SYNC,
                       {"PGDIR_SIZE": pgdir, "entries_copied": copied,
                        "violations": len(violations)})


# --- claim 7: the skip boundary -------------------------------------------------------------

@dataclass
class MappingRecorder:
    """A percpu page mapper (percpu.vm.PageMapper) that maps into `kpt` and records the
    end of every local mapping and whether percpu_pgd_setup_done was set then."""

    kpt: KernelPageTables
    local_ends: list[tuple[int, bool]] = field(default_factory=list)

    def map_pages(self, va: int, pa: int, size: int, cpu: int | None) -> None:
        if cpu is not None:
            self.local_ends.append((va + size, self.kpt.percpu_pgd_setup_done))
        self.kpt.vmap_range(va, va + size, pa, cpu=cpu)

    def unmap_pages(self, va: int, size: int, cpu: int | None) -> None:
        self.kpt.vunmap_range(va, va + size, cpu=cpu)


def local_mappings_at_end(cfg: KernelConfig, ctx: Context,
                          placement: RfcPlacement = DEFAULT_PLACEMENT) -> dict[str, int]:
    """setup_per_cpu_areas() with page tables (as percpu.boot_percpu), then HISTORY's
    synthetic history: how many local mappings were made, and how many of them end
    exactly at LOCAL_PERCPU_END before and after percpu_pgd_setup_done."""
    patched = cfg.replace(local_percpu=True)
    ai = build_alloc_info(ctx.static_size, nr_cpus=ctx.nr_cpus, page_size=cfg.page_size)
    kpt = KernelPageTables(patched, ctx.nr_cpus, percpu_pgd_setup_done=False)
    recorder = MappingRecorder(kpt)
    alloc = PercpuAllocator(ai, cfg=patched, placement=placement, mapper=recorder)
    kpt.setup_percpu_pgd()
    run_history(alloc, synthetic_history(HISTORY[0], HISTORY[1], seed=3))
    end = kpt.local_end
    return {"local_mappings": len(recorder.local_ends),
            "at_end_before_setup": sum(e == end and not done for e, done in recorder.local_ends),
            "at_end_after_setup": sum(e == end and done for e, done in recorder.local_ends),
            "chunks": len(alloc.chunks)}


def claim_skip_boundary(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """The rule as written (`scenarios.skip_rule_boundary`: two-page local mappings ending
    one page below and exactly at LOCAL_PERCPU_END, from CPU 1 and from CPU 0), and
    whether the assumed placement ever maps there after percpu_pgd_setup_done
    (`local_mappings_at_end`): a real flaw in the code, latent unless it does."""
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
    skipped = bool((below["sync"] == "local-area skip").all())
    seen = local_mappings_at_end(cfg, ctx)
    text = (f"mm/vmalloc.c passes arch_sync_kernel_mappings() the exclusive end of the "
            f"range, so a local mapping ending exactly at LOCAL_PERCPU_END "
            f"({fmt_addr(end)}) fails `end < LOCAL_PERCPU_END` and is synced, while one "
            f"ending a page below is {'skipped' if skipped else 'NOT skipped'}. What the "
            f"sync then does: " + "; ".join(parts) + ". "
            f"Under rfc.DEFAULT_PLACEMENT, booting and running {HISTORY[0]} allocations and "
            f"{HISTORY[1]} frees on {ctx.nr_cpus} CPUs ({seen['chunks']} chunks) made "
            f"{seen['local_mappings']} local mappings: {seen['at_end_before_setup']} ended "
            f"there before percpu_pgd_setup_done (the first chunk's local copy, at the top "
            f"of the area), {seen['at_end_after_setup']} after it.")
    if seen["at_end_after_setup"]:
        condition = "chunks are placed as rfc.DEFAULT_PLACEMENT places them"
        text += " The flaw triggers under the assumed placement."
    else:
        condition = ("a local mapping ending at LOCAL_PERCPU_END is made after "
                     "percpu_pgd_setup_done: the first chunk's local copy, placed at the very "
                     "top as a top-down allocator places it, mapped or remapped after setup, "
                     "or a placement that puts a later chunk's local copy there")
        text += (" A flaw in the code as written (the skip needs `end <= "
                 "LOCAL_PERCPU_END`), latent under the assumed placement.")
    outcome = "fails" if broken or not skipped else "holds"
    return ClaimResult(claim, cfg.label(), conditional(outcome, condition), text,
                       "scenarios.skip_rule_boundary; claims.pgtables.local_mappings_at_end; "
                       "mm/vmalloc.c vmap_range_noflush/__vunmap_range_noflush",
                       "assumption",
                       f"{SYNC}; {PLACEMENT}; the first chunk is mapped before "
                       "percpu_pgd_setup_done (patch 05/11, from setup_per_cpu_areas())",
                       {"LOCAL_PERCPU_END": end,
                        "entries_copied_at_end": int(at["entries_copied"].sum()),
                        "violations_at_end": int(at["violations"].sum()), **seen})


# --- claim 8: SMT/CnP, KPTI and software PAN ---------------------------------------------

def _first_chunk_tables(cfg: KernelConfig,
                        ctx: Context) -> tuple[KernelPageTables, int, int]:
    """The patched first chunk's tables, its local VA and CPU 0's global VA."""
    kpt = build_first_chunk(cfg.replace(local_percpu=True), ctx.nr_cpus)
    local, glob = first_chunk_va(kpt, first_chunk_unit(cfg))
    return kpt, local, glob


CNP = ("CnP stays clear in every CPU's TTBR1 (patch 01/11 clears it; mainline sets it "
       "through cpu_enable_cnp() -> __cpu_replace_ttbr1(), arch/arm64/mm/mmu.c) and the "
       "core honours CnP=0, under which TLB entries are private to the PE that filled "
       "them (Arm ARM, TTBR1_EL1.CnP), SMT siblings included")


def claim_shared_tlb(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """`scenarios.shared_tlb_finding` at the first chunk's local address (CPU 0 fills the
    TLB entry, CPU 1 hits it), and at its global address as the control: what a shared
    entry would do. Whether entries are shared is CnP's question."""
    claim = CLAIM_BY_ID["8a"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    kpt, local, glob = _first_chunk_tables(cfg, ctx)
    finding = shared_tlb_finding(kpt, local, filler=0, reader=1)
    control = shared_tlb_finding(kpt, glob, filler=0, reader=1)
    text = ("With CnP=0 each PE keeps its own TLB entries, so CPU 1 walks its own root. If "
            f"an entry were shared (CnP set, or a core sharing entries between SMT threads): "
            f"at the local address {fmt_addr(local)} CPU 1's own walk gives PA "
            f"{finding.reader_pa:#x}, an entry filled by CPU 0 gives {finding.cached_pa:#x} "
            f"(CPU {finding.data_owner}'s copy): "
            + ("a this_cpu access on CPU 1 would silently use CPU 0's data. "
               if finding.wrong_cpu else "no confusion. ")
            + f"Global address {fmt_addr(glob)}: "
            + ("harmless, every CPU translates it alike." if not control.wrong_cpu
               else "ALSO confused."))
    return ClaimResult(claim, cfg.label(), conditional("holds", CNP), text,
                       "scenarios.shared_tlb_finding; kernel mappings are global (nG clear)",
                       "assumption",
                       f"patch 01/11 clears CnP (cover letter) and keeps it clear on every "
                       f"per-CPU root; {PLACEMENT}",
                       {"local_va": local, "reader_pa": finding.reader_pa,
                        "cached_pa": finding.cached_pa, "wrong_cpu_if_shared": finding.wrong_cpu})


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
    condition = ("the series keeps KPTI's trampoline, which switches TTBR1 by "
                 "TRAMP_SWAPPER_OFFSET from tramp_pg_dir to swapper_pg_dir")
    return ClaimResult(claim, cfg.label(), conditional("fails" if wrong else "holds", condition),
                       text, "arch/arm64/include/asm/memory.h TRAMP_SWAPPER_OFFSET; "
                       "arch/arm64/kernel/entry.S tramp_map_kernel; KernelPageTables.translate",
                       "assumption",
                       "the series leaves the KPTI trampoline unchanged (cover letter: KPTI "
                       f"'may not work'); {PLACEMENT}",
                       {"own_pa": own, "swapper_pa": via_swapper})


def claim_sw_pan(cfg: KernelConfig, ctx: Context) -> ClaimResult:
    """Software PAN (CONFIG_ARM64_SW_TTBR0_PAN, used when the CPU lacks ARMv8.1 PAN:
    system_uses_ttbr0_pan()) blocks user memory by pointing TTBR0 at reserved_pg_dir,
    found as TTBR1 - RESERVED_SWAPPER_OFFSET (PAGE_SIZE, asm/memory.h) in
    __uaccess_ttbr0_disable() (asm/uaccess.h) and the `__uaccess_ttbr0_disable` macro
    (asm/asm-uaccess.h) that entry.S runs on every exception entry. With per-CPU roots
    TTBR1 is CPU n's own root: the model says which page lies below each root."""
    claim = CLAIM_BY_ID["8c"]
    lay = patched_layout(cfg)
    if lay is None or not lay.sane:
        return cannot_hold(claim, cfg, lay)
    kpt, _, _ = _first_chunk_tables(cfg, ctx)
    offset = cfg.page_size  # RESERVED_SWAPPER_OFFSET
    roots = {root.pa: cpu for cpu, root in enumerate(kpt.roots)}
    below = {}
    for cpu in range(1, kpt.nr_cpus):
        under = roots.get(kpt.roots[cpu].pa - offset)
        below[cpu] = under
    live = [cpu for cpu, under in below.items() if under is not None]
    named = "; ".join(f"CPU {cpu}'s TTBR0 would be "
                      + ("swapper_pg_dir" if under == 0 else f"CPU {under}'s root")
                      + f" ({len(kpt.roots[under].entries)} valid entries)"
                      for cpu, under in below.items() if under is not None)
    text = (f"uaccess_ttbr0_disable() and the exception entry (entry.S __swpan_entry_el1/"
            f"el0) set TTBR0 to TTBR1 - RESERVED_SWAPPER_OFFSET ({format_size(offset)}; "
            f"vmlinux.lds.S asserts swapper_pg_dir - reserved_pg_dir equals it): the empty "
            f"reserved_pg_dir only where TTBR1 is swapper_pg_dir, CPU 0. On CPU n it is the "
            f"page below CPU n's own root. The model allocates the {kpt.nr_cpus - 1} "
            f"per-CPU roots one after another, so "
            + (named + ": kernel tables where an empty one belongs, and user addresses are "
               "no longer blocked from the kernel." if live else
               "no root sits on another.")
            + " As with KPTI's TRAMP_SWAPPER_OFFSET (8b), an offset fixed at link time "
            "from swapper_pg_dir does not hold for per-CPU roots.")
    condition = ("the kernel uses software PAN (CONFIG_ARM64_SW_TTBR0_PAN on a CPU without "
                 "hardware PAN) and a CPU's root does not sit one page above an empty "
                 "table, as swapper_pg_dir sits above reserved_pg_dir")
    return ClaimResult(claim, cfg.label(), conditional("fails", condition), text,
                       "arch/arm64/include/asm/uaccess.h __uaccess_ttbr0_disable; "
                       "asm/asm-uaccess.h __uaccess_ttbr0_disable; asm/memory.h "
                       "RESERVED_SWAPPER_OFFSET; KernelPageTables.roots",
                       "assumption",
                       "patch 01/11 allocates the per-CPU roots without an empty page below "
                       "each (not public; the model allocates them one after another) and "
                       "leaves software PAN unchanged",
                       {"RESERVED_SWAPPER_OFFSET": offset,
                        "root_below": {str(cpu): under for cpu, under in below.items()}})
