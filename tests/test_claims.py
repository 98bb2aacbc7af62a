"""The reviewer's checklist (percpu_explorer.claims): verdicts tied to the kernel's arithmetic,
each graded by the evidence it stands on."""

import json

import pytest

from percpu_explorer.claims import (
    BASES,
    CLAIMS,
    COLUMNS,
    HARD_BASES,
    NO_CAPTURE,
    OUTCOMES,
    SUMMARY_COLUMNS,
    ClaimResult,
    basis_counts,
    checklist_finding,
    claims_summary,
    evaluate_claims,
    format_claims,
    md_escape,
    verdict_counts,
)
from percpu_explorer.thiscpu import CORE_PROFILES, DEFAULT_CORE
from tests.conftest import DATA

BROKEN = {"4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52", "16K/52 (47-bit hw)"}
SANE = {"4K/39", "4K/48", "16K/36", "16K/47", "64K/42", "64K/48", "64K/52", "64K/52 (48-bit hw)"}
HAVE_CAPTURES = (DATA / "captures").is_dir()
N1 = CORE_PROFILES[DEFAULT_CORE].costs


@pytest.fixture(scope="module")
def checklist():
    from percpu_explorer.claims.captures import (
        compare_capture,
        default_captures_dir,
        pick_captures,
    )

    compare_capture.cache_clear()
    frame = evaluate_claims("7.1")
    # Claims 1, 3 and 6 share one comparison per picked bundle: each compared once.
    picked = len(pick_captures(default_captures_dir()))
    info = compare_capture.cache_info()
    assert info.misses == picked <= info.maxsize
    return frame


def row(frame, claim_id, config):
    rows = frame[(frame.claim_id == claim_id) & (frame.config == config)]
    assert len(rows) == 1, (claim_id, config)
    return rows.iloc[0]


def rows_of(frame, claim_id, text):
    return frame[(frame.claim_id == claim_id) & frame.config.str.contains(text, regex=False)]


def test_every_claim_is_answered_for_every_configuration(checklist):
    assert list(checklist.columns) == COLUMNS
    assert set(checklist.outcome) <= set(OUTCOMES)
    assert set(checklist.basis) == set(BASES)
    assert set(checklist.claim_id) == {c.id for c in CLAIMS}
    # the patch's own words travel with every row (patch 02/11's comment on the area size)
    assert "1TB with 4K page size" in checklist[checklist.claim_id == "1"].words.iloc[0]
    # valid_configs("7.1", kasan=("none",)): 13 page size / VA bits / vabits_actual combinations.
    for claim_id in ("1", "2", "3", "4", "5", "6", "7", "8a", "8b", "8c"):
        configs = set(checklist[checklist.claim_id == claim_id].config)
        assert SANE | BROKEN <= configs
    assert (checklist.evidence.str.len() > 40).all()
    assert checklist.source.str.len().min() > 0


def test_bare_verdicts_only_on_hard_evidence(checklist):
    hard = checklist[checklist.basis.isin(HARD_BASES)]
    assert (hard.verdict == hard.outcome).all() and (hard.depends_on == "").all()
    soft = checklist[~checklist.basis.isin(HARD_BASES)]
    assert len(soft) > 0
    for r in soft.itertuples():
        assert r.verdict.startswith(f"{r.outcome} if "), r.verdict
        assert len(r.depends_on) > 20, (r.claim_id, r.config)


def test_claim_result_refuses_a_bare_verdict_on_soft_evidence():
    claim = CLAIMS[0]
    for basis in ("assumption", "estimate"):
        with pytest.raises(ValueError, match=r"bare.*say what it depends on"):
            ClaimResult(claim, "4K/48", "holds", "evidence", "source", basis, "named")
        with pytest.raises(ValueError, match="must name what it depends on"):
            ClaimResult(claim, "4K/48", "holds if x", "evidence", "source", basis)
    with pytest.raises(ValueError, match="must be one of"):
        ClaimResult(claim, "4K/48", "holds if x", "evidence", "source", "kernel arithmetic")
    with pytest.raises(ValueError, match="depends on no assumption"):
        ClaimResult(claim, "4K/48", "holds", "evidence", "source", "real kernel", "a guess")
    with pytest.raises(ValueError, match="basis 'guessed' is unknown"):
        ClaimResult(claim, "4K/48", "holds", "evidence", "source", "guessed")
    # counted in a real kernel run (a census) is hard evidence: bare verdicts, no assumption
    assert ClaimResult(claim, "census", "not checked", "e", "s", "measured").outcome == \
        "not checked"
    with pytest.raises(ValueError, match="depends on no assumption"):
        ClaimResult(claim, "census", "holds", "e", "s", "measured", "a guess")
    ok = ClaimResult(claim, "4K/48", "fails if chunks are placed top-down", "e", "s",
                     "assumption", "rfc.DEFAULT_PLACEMENT")
    assert ok.outcome == "fails" and ok.row()["basis"] == "assumption"


# --- claim 1: kernel arithmetic, a function of the possible CPUs ---------------------------

def test_area_is_1tb_at_4k_48(checklist):
    # 4K/48: 4 levels, PGDIR_SHIFT = ARM64_HW_PGTABLE_LEVEL_SHIFT(0) = 9 * 4 + 3 = 39, so
    # PGDIR_SIZE = 512GB and PERCPU_SIZE = 2 * PGDIR_SIZE = 1TB, as patch 02/11 says.
    r = row(checklist, "1", "4K/48")
    assert r.verdict == "holds" and r.basis == "kernel arithmetic"
    assert r.numbers["PGDIR_SHIFT"] == 39 and r.numbers["PERCPU_SIZE"] == 1 << 40
    assert "1TB" in r.evidence
    # mm/percpu.c pcpu_build_alloc_info() counts units with for_each_possible_cpu(): a chunk
    # spans possible CPUs x unit (136K here, the Debian 6.12 boot line's u139264), and the
    # 1TB area holds the first chunk and floor((1TB - span) / span) more.
    by_cpus = r.numbers["patched_chunks_by_possible_cpus"]
    assert by_cpus[512] == ((1 << 40) - 512 * (136 << 10)) // (512 * (136 << 10)) == 15419
    assert by_cpus[4] == ((1 << 40) - 4 * (136 << 10)) // (4 * (136 << 10))
    assert "CONFIG_NR_CPUS=512 with every CPU possible is the worst case" in r.evidence


def test_area_too_small_for_512_possible_cpus_at_16k_36(checklist):
    # 16K/36: 2 levels, PGDIR_SHIFT = 11 * 2 + 3 = 25: a 64MB area. The unit is
    # PFN_ALIGN(static 101464 + PERCPU_MODULE_RESERVE 8K + PERCPU_DYNAMIC_RESERVE 28K) with 16K
    # pages (mm/percpu.c pcpu_build_alloc_info()), 9 pages = 144K. 512 possible CPUs (the
    # worst case of CONFIG_NR_CPUS=512) need 72MB; 455 * 144K = 65520K fit, 456 do not.
    r = row(checklist, "1", "16K/36")
    assert r.numbers["PERCPU_SIZE"] == 64 << 20
    assert r.numbers["unit_size"] == 144 << 10
    assert r.verdict == "fails" and r.basis == "kernel arithmetic"
    assert r.numbers["max_possible_cpus"] == (64 << 20) // (144 << 10) == 455
    assert r.numbers["patched_chunks_by_possible_cpus"][512] is None
    assert r.numbers["patched_chunks_by_possible_cpus"][4] == (64 << 20) // (4 * (144 << 10)) - 1
    assert "fits up to 455 possible CPUs" in r.evidence
    # 4K/39: PGDIR_SHIFT = 9 * 3 + 3 = 30, a 2GB area: fits, but is not the quoted 1TB.
    assert row(checklist, "1", "4K/39").verdict == "holds with caveat"


@pytest.mark.skipif(not HAVE_CAPTURES, reason="data/captures not present")
def test_real_first_chunk_has_one_unit_per_possible_cpu(checklist):
    # Debian 6.12.117 (CONFIG_NR_CPUS=512) under QEMU -smp 4: dmesg "pcpu-alloc: [0] 0 [0] 1
    # [0] 2 [0] 3" and "u139264": 4 units of 136K, one per possible CPU, not 512.
    r = row(checklist, "1", "4K/52 (capture debian-6.12.117-max-smp4)")
    assert r.basis == "real kernel" and r.verdict == "cannot hold"
    assert (r.numbers["nr_units"], r.numbers["CONFIG_NR_CPUS"]) == (4, 512)
    assert r.numbers["unit_size"] == 139264
    assert r.numbers["lines_matched"] == r.numbers["lines"]


def test_the_five_broken_configurations_cannot_hold_the_areas(checklist):
    # series.md claim 6: one PGD entry is 256T (4K/52: 5 levels, PGDIR_SHIFT 9 * 5 + 3 = 48)
    # or 128T (16K/48 and 16K/52: 4 levels, PGDIR_SHIFT 11 * 4 + 3 = 47); four of them do not
    # fit below vmemmap. The 48-bit / 47-bit hardware variants break too.
    fits = checklist[checklist.claim_id == "6"]
    model = fits[~fits.config.str.contains("capture")]
    assert set(model[model.verdict == "cannot hold"].config) == BROKEN
    assert set(model[model.verdict == "holds"].config) == SANE
    assert (model.basis == "kernel arithmetic").all()
    assert row(checklist, "6", "4K/52").numbers["PGDIR_SIZE"] == 256 << 40
    assert row(checklist, "6", "16K/48").numbers["PGDIR_SIZE"] == 128 << 40
    assert row(checklist, "6", "16K/52").numbers["PGDIR_SIZE"] == 128 << 40
    for claim_id in ("1", "2", "4", "7", "8a", "8b", "8c"):
        part = checklist[(checklist.claim_id == claim_id) & checklist.config.isin(BROKEN)]
        assert (part.verdict == "cannot hold").all()
        assert (part.basis == "kernel arithmetic").all()


# --- claims 2-4: the sync mask and the same offset are assumptions ---------------------------

def test_pgd_only_sync_rests_on_patch_01s_sync_mask(checklist):
    # The alignment is kernel arithmetic; that a root-only sync suffices rests on patch
    # 01/11's ARCH_PAGE_TABLE_SYNC_MASK (its code is not public; kernel/pgtable.py module
    # docstring).
    # 4 CPUs: a shared vmalloc mapping creating one root entry is copied to the 3 other roots.
    r = row(checklist, "2", "4K/48")
    assert r.basis == "assumption" and r.verdict.startswith("holds if patch 01/11")
    assert r.numbers["entries_copied"] == 3 and r.numbers["violations"] == 0
    assert "ARCH_PAGE_TABLE_SYNC_MASK" in r.depends_on


def test_mainline_offsets_exceed_vmalloc_and_patched_stay_in_the_area(checklist):
    # Real ptdump of a v6.16+ 4K/48 kernel: vmalloc from 0xffff800080000000 to
    # 0xfffffdffbf800000. Mainline's first chunk is in the linear map, below it: kernel
    # arithmetic of mm/percpu.c's placement. The patched offsets are shown under the
    # assumed placement, which the evidence names.
    r = row(checklist, "3", "4K/48")
    assert r.numbers["vmalloc_size"] == 0xFFFFFDFFBF800000 - 0xFFFF800080000000
    assert r.numbers["mainline_max_offset"] > r.numbers["vmalloc_size"]
    low, high = r.numbers["patched_min_offset"], r.numbers["patched_max_offset"]
    assert -(1 << 40) < low <= high <= 1 << 40  # PERCPU_SIZE = 1TB
    assert r.verdict == "holds" and r.basis == "kernel arithmetic"
    assert "assuming rfc.DEFAULT_PLACEMENT" in r.evidence


def test_same_offset_is_true_by_the_models_construction(checklist):
    # rfc.RfcPlacement.local_base + (addr - pcpu_base_addr): the model builds the local
    # copies at the same offset, so the walks check its tables, not patches 03-09.
    for config in SANE:
        r = row(checklist, "4", config)
        assert r.basis == "assumption" and r.verdict.startswith("holds if patches 03-09")
        assert r.numbers["mismatches"] == 0
        assert "dynamic, first, reserved" in r.evidence
        assert "by the model's construction" in r.depends_on
        assert "DEFAULT_PLACEMENT" in r.depends_on


def test_vmalloc_lost_at_4k_48(checklist):
    # Mainline VMALLOC_END 0xfffffdffbf800000 (real ptdump). Patched: LOCAL_PERCPU_END =
    # ALIGN_DOWN(VMEMMAP_START 0xfffffdffc0000000, 512GB) = 0xfffffd8000000000; two 1TB areas
    # below it; VMALLOC_END = PERCPU_START - 8M = 0xfffffb7fff800000. Lost: 2TB + 511GB.
    r = row(checklist, "5", "4K/48")
    assert r.numbers["vmalloc_lost"] == 0xFFFFFDFFBF800000 - 0xFFFFFB7FFF800000
    assert r.numbers["alignment_lost"] == 0xFFFFFDFFC0000000 - 0xFFFFFD8000000000
    assert r.verdict == "holds with caveat" and r.basis == "kernel arithmetic"
    # 16K/36: VMEMMAP_START is 32MB aligned already, so only the two 64MB areas go.
    assert row(checklist, "5", "16K/36").numbers["alignment_lost"] == 0


# --- claim 7: a real flaw in the skip rule, latent under the assumed placement ---------------

def test_sync_skip_boundary_is_real_but_latent(checklist):
    # Patch 02/11: `if (start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END) return;` and
    # mm/vmalloc.c vmap_range_noflush()/__vunmap_range_noflush() pass the exclusive end, so
    # a range ending exactly at LOCAL_PERCPU_END is synced. From CPU 0 (swapper_pg_dir) the
    # local entry is copied into the 3 other roots, each of which then reaches CPU 0's page:
    # 3 violations; from CPU 1 the (empty) swapper entry is copied over every other root,
    # its own included: its own walk faults.
    r = row(checklist, "7", "4K/48")
    assert r.basis == "assumption"
    assert r.verdict.startswith("fails if a local mapping ending at LOCAL_PERCPU_END is made "
                                "after percpu_pgd_setup_done")
    assert r.numbers["LOCAL_PERCPU_END"] == 0xFFFFFD8000000000
    assert r.numbers["entries_copied_at_end"] == 3 + 3
    assert r.numbers["violations_at_end"] == 3
    assert "CPU 1's own walk faults" in r.evidence
    # Latent: under rfc.DEFAULT_PLACEMENT only the first chunk's local copy (one mapping per
    # CPU, 4 CPUs) ends there, mapped before percpu_pgd_setup_done; later chunks sit below.
    assert r.numbers["at_end_before_setup"] == 4
    assert r.numbers["at_end_after_setup"] == 0
    assert r.numbers["local_mappings"] > r.numbers["at_end_before_setup"]
    assert "latent" in r.evidence
    for config in SANE:
        assert row(checklist, "7", config).outcome == "fails"


# --- claim 8: what the SMT, KPTI and software-PAN verdicts depend on ---------------------------

def test_shared_tlb_depends_on_cnp(checklist):
    # Patch 01/11 clears CnP; with CnP=0 TLB entries are private to each PE (Arm ARM), so the
    # row holds if CnP stays clear. If an entry were shared, kernel mappings being global (nG
    # clear), the model's units (CPU n at 0x40000000 + n * 128K, scenarios.build_first_chunk)
    # show CPU 1 reading CPU 0's copy.
    smt = row(checklist, "8a", "4K/48")
    assert smt.basis == "assumption" and smt.verdict.startswith("holds if CnP stays clear")
    assert "patch 01/11 clears CnP" in smt.depends_on
    assert (smt.numbers["reader_pa"], smt.numbers["cached_pa"]) == (0x40020000, 0x40000000)
    assert smt.numbers["wrong_cpu_if_shared"]


def test_kpti_trampoline_lands_on_cpu0s_root(checklist):
    # KPTI's trampoline returns TTBR1 to swapper_pg_dir (TRAMP_SWAPPER_OFFSET = 2 * PAGE_SIZE,
    # asm/memory.h; entry.S tramp_map_kernel), CPU 0's root on every CPU.
    kpti = row(checklist, "8b", "4K/48")
    assert kpti.basis == "assumption"
    assert kpti.verdict.startswith("fails if the series keeps KPTI's trampoline")
    assert (kpti.numbers["own_pa"], kpti.numbers["swapper_pa"]) == (0x40020000, 0x40000000)
    assert "8KB" in kpti.evidence  # 2 * 4K


def test_software_pan_reserved_pg_dir_is_swapper_minus_a_page(checklist):
    # arch/arm64/include/asm/uaccess.h __uaccess_ttbr0_disable() and asm/asm-uaccess.h's
    # __uaccess_ttbr0_disable macro set TTBR0 = TTBR1 - RESERVED_SWAPPER_OFFSET, and
    # asm/memory.h defines RESERVED_SWAPPER_OFFSET as PAGE_SIZE (vmlinux.lds.S asserts
    # swapper_pg_dir - reserved_pg_dir == it). KernelPageTables allocates swapper_pg_dir
    # and then CPUs 1-3's roots one page after another, so the page below CPU n's root is
    # CPU n-1's root (swapper_pg_dir, "CPU 0", for CPU 1).
    for config, page in (("4K/48", 4096), ("16K/36", 16384), ("64K/48", 65536)):
        r = row(checklist, "8c", config)
        assert r.basis == "assumption" and r.outcome == "fails"
        assert "CONFIG_ARM64_SW_TTBR0_PAN" in r.verdict
        assert r.numbers["RESERVED_SWAPPER_OFFSET"] == page
        assert r.numbers["root_below"] == {"1": 0, "2": 1, "3": 2}
    assert "CPU 1's TTBR0 would be swapper_pg_dir" in row(checklist, "8c", "4K/48").evidence


# --- claims 9-10: safety is an assumption, costs are estimates, the bracket is a fact ---------

def test_preempt_safety_rests_on_the_local_scheme(checklist):
    # Single LSE instructions cannot be split; an LL/SC loop whose monitor a context switch
    # clears retries; a plain load-add-store loses an update; a 16-byte read made of two
    # 8-byte loads (the kernel has none) can be torn between two CPUs' copies.
    r = checklist[checklist.claim_id == "9a"].iloc[0]
    assert r.basis == "assumption" and r.outcome == "holds with caveat"
    assert r.numbers["unsafe_local"] == ["read/16"]
    assert "lost update" in r.numbers["plain_verdicts"]
    assert "DEFAULT_LOCAL_SCHEME" in r.depends_on


def test_bracket_is_real_work_from_v7_and_a_barrier_in_debian_6_12(checklist):
    # kernel/Kconfig.preempt after commit 7dadeaa6e851 (v7.0): PREEMPT_NONE depends on
    # ARCH_NO_PREEMPT and PREEMPT_VOLUNTARY on !ARCH_HAS_PREEMPT_LAZY; arm64 has lazy
    # preemption, so 7.1 builds only full, lazy and rt, each with a preempt count. The bracket
    # is then asm/preempt.h's __preempt_count_add(1) (mrs sp_el0, ldr, add, str) and
    # __preempt_count_dec_and_test() with its check (ldr, sub, str, cbz, ldr, cbz): 10.
    kconfig = row(checklist, "9c", "arm64 7.1 Kconfig")
    assert kconfig.basis == "kernel arithmetic" and kconfig.verdict == "holds"
    assert kconfig.numbers["models"] == ["full", "lazy", "rt"]
    assert kconfig.numbers["bracket_instructions"] == 10
    if HAVE_CAPTURES:
        # data/captures/*/meta.json: CONFIG_PREEMPT_VOLUNTARY=y, CONFIG_PREEMPT_COUNT unset:
        # include/linux/preempt.h makes preempt_disable/enable_notrace() barrier().
        real = rows_of(checklist, "9c", "capture")
        assert len(real) == 1
        assert (real.basis == "real kernel").all() and (real.verdict == "fails").all()
        assert not real.numbers.iloc[0]["preempt_count"]


def test_op_cost_rows_state_both_worlds_and_their_break_even(checklist):
    v7 = rows_of(checklist, "9b", "PREEMPT_FULL").iloc[0]
    distro = rows_of(checklist, "9b", "no preempt count").iloc[0]
    assert {v7.basis, distro.basis} == {"estimate"}
    assert v7.outcome == "holds" and min(v7.numbers["saving_cycles"].values()) > 0
    # Without a preempt count the bracket is barrier(): the only difference is the offset,
    # today mrs tpidr_el1 + add (asm/percpu.h __kern_my_cpu_offset), with the local scheme
    # adrp + ldr of __per_cpu_local_off + add. The saving is mrs - (adrp + ldr), so the
    # verdict flips where mrs costs as much as an ALU op and an L1 load: 1 + 4 cycles on
    # Neoverse N1 (its Software Optimization Guide, via LLVM's scheduling model).
    assert distro.outcome == "fails"
    assert distro.numbers["mrs_tpidr_break_even"] == pytest.approx(N1["alu"] + N1["load"])
    assert distro.numbers["mrs_tpidr_estimate"] == N1["mrs_tpidr"]
    for saving in distro.numbers["saving_cycles"].values():
        assert saving == pytest.approx(N1["mrs_tpidr"] - N1["alu"] - N1["load"])
    assert "mrs tpidr_el1 costs under ~5 cycles" in distro.verdict
    assert "mrs_tpidr 2" in distro.depends_on
    if HAVE_CAPTURES:
        assert distro.numbers["kernel"] == "6.12.117" and distro.numbers["preempt"] == "voluntary"


def test_sys_time_saving_rows(checklist):
    full = rows_of(checklist, "10", "PREEMPT_FULL").iloc[0]
    none = rows_of(checklist, "10", "no preempt count").iloc[0]
    assert {full.basis, none.basis} == {"estimate"}
    # replay module: the op rate a share S needs is r = S * f / d (f = 3 GHz).
    d = full.numbers["saving_cycles"]
    assert full.numbers["ops_per_sys_second"][0] == pytest.approx(0.13 * 3e9 / d)
    assert full.numbers["this_cpu_share_of_sys_needed"][0] == pytest.approx(
        0.13 * full.numbers["today_cycles"] / d)
    assert full.verdict.startswith("holds if today's this_cpu ops take at least")
    # Without a preempt count the bracket is barrier() only: nothing left to save. Each
    # extra cycle of mrs adds one to today's cost and to the saving, so the smaller share
    # S = 13% needs all of sys time when S * (today + x) = saving + x.
    n = none.numbers
    assert n["saving_cycles"] <= 0 and none.outcome == "cannot hold"
    x = (0.13 * n["today_cycles"] - n["saving_cycles"]) / (1 - 0.13)
    assert n["mrs_tpidr_break_even"] == pytest.approx(n["mrs_tpidr_estimate"] + x)


# --- real kernels, grades, formats --------------------------------------------------------------

@pytest.mark.skipif(not HAVE_CAPTURES, reason="data/captures not present")
def test_capture_rows_debian_4k_52(checklist):
    # Debian 6.12.117 arm64 (4K pages, VA_BITS=52), booted under QEMU on 52-bit and 48-bit
    # CPUs: the RFC layout does not fit; its real percpu addresses span more than vmalloc.
    every = checklist[checklist.config.str.contains("capture")]
    assert (every.basis == "real kernel").all()
    caps = every[every.config.str.startswith("4K/52")]
    fits = caps[caps.claim_id == "6"]
    assert len(fits) == 2 and (fits.verdict == "cannot hold").all()
    offsets = caps[caps.claim_id == "3"]
    assert len(offsets) == 2 and (offsets.verdict == "holds").all()
    assert all(n["real_offset_spread"] > n["vmalloc_size"] for n in offsets.numbers)
    assert "agrees on every allocation" in offsets.evidence.iloc[0]


def test_basis_counts_put_hard_findings_first(checklist):
    counts = basis_counts(checklist)
    assert list(counts.index) == list(BASES)
    assert counts["rows"].sum() == len(checklist)
    # 13 configurations x 10 per-config claims: the 5 broken ones cannot hold claims 1, 2,
    # 4, 5, 6, 7, 8a, 8b, 8c (45 rows, kernel arithmetic).
    assert counts.loc["kernel arithmetic", "cannot hold"] == 45
    # claims 9b and 10 at the series' base and in today's distribution kernel, and claim
    # 10 on the shipped census in its three worlds (6.12 VOLUNTARY, 7.1 FULL and LAZY)
    assert counts.loc["estimate", "rows"] == 4 + 3
    assert counts.loc["measured", "rows"] == 1


def test_missing_captures_give_a_clear_row(tmp_path):
    frame = evaluate_claims(claims=["6"], captures_dir=tmp_path / "none")
    last = frame.iloc[-1]
    assert last.config == "capture" and last.evidence.startswith(NO_CAPTURE)
    assert (last.basis, last.verdict) == ("real kernel", "not checked")
    assert len(evaluate_claims(claims=["6"], use_captures=False)) == 13


def test_old_kernel_cannot_take_the_patch():
    # Patch 02/11 is written for the v6.9+ layout.
    frame = evaluate_claims("6.8", claims=["1", "6"], use_captures=False)
    assert (frame.verdict == "cannot hold").all()


def test_bad_arguments_name_the_fix():
    with pytest.raises(ValueError, match="unknown claim"):
        evaluate_claims(claims=["11"])
    with pytest.raises(ValueError, match="nr_cpus"):
        evaluate_claims(nr_cpus=1)
    with pytest.raises(ValueError, match="format"):
        format_claims(evaluate_claims(claims=["5"], use_captures=False), "xml")


def test_formats(checklist):
    part = checklist[checklist.claim_id.isin(["1", "7"])]
    table = format_claims(part, "table")
    assert table.splitlines()[0].split() == ["#", "claim", "config", "basis", "verdict"]
    assert "source: scenarios.skip_rule_boundary" in table
    assert "verdict: fails if a local mapping ending at LOCAL_PERCPU_END" in table
    md = format_claims(part, "markdown").splitlines()
    assert md[0] == "| # | claim | config | basis | verdict | evidence | source |"
    assert len(md) == 2 + len(part) and all(line.count(" | ") >= 6 for line in md[2:])
    grouped = format_claims(part, "markdown", group_by_basis=True)
    heads = [line for line in grouped.splitlines() if line.startswith("### ")]
    assert [h.split(" (")[0] for h in heads] == ["### kernel arithmetic", "### real kernel",
                                                 "### assumption"][:len(heads)]
    data = json.loads(format_claims(part, "json"))
    assert data[0]["numbers"]["PERCPU_SIZE"] == 2 << 30  # 4K/39: 2 * 1GB
    assert data[0]["basis"] == "kernel arithmetic"
    counts = verdict_counts(checklist)
    assert counts.loc["6", "cannot hold"] == 5 + 2 * HAVE_CAPTURES


def test_cli_claims_json_and_errors(cli):
    status, out, _ = cli("claims", "--format", "json")
    data = json.loads(out)
    assert status == 0
    assert {"claim_id", "basis", "verdict", "outcome", "evidence", "source",
            "depends_on"} <= set(data[0])
    assert {d["basis"] for d in data} == set(BASES)
    seven = [d for d in data if d["claim_id"] == "7" and d["config"] == "4K/48"]
    assert [(d["basis"], d["outcome"]) for d in seven] == [("assumption", "fails")]
    status, _, err = cli("claims", "--format", "xml")
    assert status == 2 and "format 'xml' is unknown" in err


# --- Markdown, the summary and the checklist's answer -----------------------------------------

def render_markdown(text):
    """What JupyterLab and GitHub make of it: CommonMark with GFM tables."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").enable("table").render(text)


def test_markdown_keeps_kernel_symbols_as_written(checklist):
    # issue 14: "raw_cpu_*/__this_cpu_*" rendered as "raw_cpu/_this_cpu*" (the stars and
    # underscores read as emphasis).
    symbol = "raw_cpu_*/__this_cpu_*"
    assert md_escape(symbol) == r"raw\_cpu\_\*/\_\_this\_cpu\_\*"
    assert md_escape("a | b <c> [d]") == r"a \| b \<c\> \[d\]"
    md = format_claims(checklist[checklist.claim_id == "9a"], "markdown")
    assert md_escape(symbol) in md
    rendered = render_markdown(md)
    assert symbol in rendered and "<em>" in rendered  # only the "Depends on" note is italic
    assert "raw_cpu/_this_cpu" not in rendered
    # a row whose evidence holds markup characters renders them, in the right cell
    part = checklist[checklist.claim_id == "9a"].copy()
    part["evidence"] = "x = a | b, *p++ and __percpu <T> [0]"
    cells = render_markdown(format_claims(part, "markdown")).split("<td>")
    assert "x = a | b, *p++ and __percpu &lt;T&gt; [0]" in cells[6]


def test_summary_has_one_row_per_claim(checklist):
    summary = claims_summary(checklist)
    assert list(summary.columns) == SUMMARY_COLUMNS
    assert list(summary["#"]) == [c.id for c in CLAIMS]
    one = summary.set_index("#")
    assert one.loc["1", "fails in"] == "16K/36"  # 512 possible CPUs do not fit 64MB
    # real kernels: Debian's 4K/52 twice (no room for the areas), and the 16K/47, 64K/52,
    # 64K/42, patched 4K/48, patched 16K/47 and patched 64K/52 (52- and 48-bit hardware)
    # builds of linux-source-6.12
    assert one.loc["1", "verdicts"] == ("4 holds, 3 holds with caveat, 1 fails, 5 cannot hold "
                                        "(kernel arithmetic); 7 holds, 2 cannot hold "
                                        "(real kernel)"
                                        if HAVE_CAPTURES else
                                        "4 holds, 3 holds with caveat, 1 fails, 5 cannot hold "
                                        "(kernel arithmetic); 1 not checked (real kernel)")
    assert set(one.loc["7", "fails in"].split(", ")) == {
        "4K/39", "4K/48", "16K/36", "16K/47", "64K/42", "64K/48", "64K/52"} | {
        "64K/52 (48-bit hw)"}
    assert one.loc["7", "verdicts"] == "5 cannot hold (kernel arithmetic); 8 fails if ... " \
                                       "(assumption)"
    assert one.loc["3", "fails in"] == "none"
    assert not summary.isna().any().any()
    # the summary counts every row once
    total = sum(int(n) for v in summary["verdicts"] for n in
                [w.split()[0] for w in v.replace(";", ",").split(", ")])
    assert total == len(checklist)


def test_finding_names_the_hard_findings(checklist):
    finding = checklist_finding(checklist, "7.1")
    n = finding.numbers
    assert n["claims"] == len(CLAIMS) and n["rows"] == len(checklist)
    assert n["configurations"] == 13 and set(n["cannot_fit_configs"]) == BROKEN
    listed = ", ".join(n["cannot_fit_configs"])
    assert f"cannot fit in 5 of the 13 configurations of v7.1 ({listed})" in finding.answer
    assert n["hard_fails"]["1"] == ["16K/36"]
    assert "claim 1 (area size) fails in 16K/36" in finding.answer
    assert {"7", "8b", "8c"} <= set(n["soft_negative"])
    assert ("claims 7 (sync skip boundary), 8b (KPTI) and 8c (software PAN) fail in all 8 "
            "configurations that fit") in finding.answer
    assert finding.basis == "kernel arithmetic" and "assumptions" in finding.detail
    if HAVE_CAPTURES:
        assert n["real_kernels_cannot_fit"] == 2 and "9c" in n["hard_fails"]


def test_summary_and_folded_formats(checklist):
    text = format_claims(checklist, "summary").splitlines()
    assert text[0].split()[:3] == ["1", "area", "size"]
    assert "    fails in: 16K/36" in text
    folded = format_claims(checklist, "markdown", fold_claims=True)
    assert folded.count("<details>") == folded.count("</details>") == len(CLAIMS)
    assert "<summary><b>7 sync skip boundary: 5 cannot hold (kernel arithmetic); 8 fails if " \
           "... (assumption)</b></summary>" in folded
    rendered = render_markdown(folded)
    assert rendered.count("<table>") == len(CLAIMS)


def test_cli_claims_summary_and_markdown(cli):
    status, out, _ = cli("claims", "--format", "summary")
    assert status == 0 and "fails in: 16K/36" in out
    assert out.startswith("On the kernel's own arithmetic the two percpu areas cannot fit in 5")
    status, out, _ = cli("claims", "--format", "markdown")
    assert status == 0 and r"raw\_cpu\_\*/\_\_this\_cpu\_\*" in out
    status, _, err = cli("claims", "--format", "html")
    assert status == 2 and "choose one of table, json, markdown, summary" in err


def test_finding_before_v6_9_says_the_patch_does_not_apply():
    # Patch 02/11 is written for the v6.9+ layout (kernel.config.local_percpu_refusal).
    frame = evaluate_claims("6.8", claims=["1", "6"], use_captures=False)
    finding = checklist_finding(frame, "6.8")
    assert finding.answer.startswith("Patch 02/11 does not apply to v6.8")
    assert finding.numbers["cannot_fit"] == finding.numbers["configurations"] == 9


def test_without_real_kernels_the_census_rows_go_too():
    # The census rows stand on a shipped bundle of a real kernel run, like the captures.
    frame = evaluate_claims(claims=["10"], use_captures=False)
    assert not frame.config.str.startswith("census").any()
    with_census = evaluate_claims(claims=["10"])
    assert (with_census.basis == "measured").sum() == 1
