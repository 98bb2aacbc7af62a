"""The reviewer's checklist (percpu_explorer.claims): verdicts tied to the kernel's arithmetic."""

import json

import pytest

from percpu_explorer.claims import (
    CLAIMS,
    COLUMNS,
    NO_CAPTURE,
    VERDICTS,
    evaluate_claims,
    format_claims,
    verdict_counts,
)
from tests.conftest import DATA

BROKEN = {"4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52", "16K/52 (47-bit hw)"}
SANE = {"4K/39", "4K/48", "16K/36", "16K/47", "64K/42", "64K/48", "64K/52", "64K/52 (48-bit hw)"}
HAVE_CAPTURES = (DATA / "captures").is_dir()


@pytest.fixture(scope="module")
def checklist():
    return evaluate_claims("7.1")


def row(frame, claim_id, config):
    rows = frame[(frame.claim_id == claim_id) & (frame.config == config)]
    assert len(rows) == 1, (claim_id, config)
    return rows.iloc[0]


def test_every_claim_is_answered_for_every_configuration(checklist):
    assert list(checklist.columns) == COLUMNS
    assert set(checklist.verdict) <= set(VERDICTS)
    assert set(checklist.claim_id) == {c.id for c in CLAIMS}
    # the patch's own words travel with every row (patch 02/11's comment on the area size)
    assert "1TB with 4K page size" in checklist[checklist.claim_id == "1"].words.iloc[0]
    # valid_configs("7.1", kasan=("none",)): 13 page size / VA bits / vabits_actual combinations.
    for claim_id in ("1", "2", "3", "4", "5", "6", "7", "8a", "8b"):
        configs = set(checklist[checklist.claim_id == claim_id].config)
        assert SANE | BROKEN <= configs
    assert (checklist.evidence.str.len() > 40).all()
    assert checklist.source.str.len().min() > 0


def test_area_is_1tb_at_4k_48(checklist):
    # 4K/48: 4 levels, PGDIR_SHIFT = ARM64_HW_PGTABLE_LEVEL_SHIFT(0) = 9 * 4 + 3 = 39, so
    # PGDIR_SIZE = 512GB and PERCPU_SIZE = 2 * PGDIR_SIZE = 1TB, as patch 02/11 says.
    r = row(checklist, "1", "4K/48")
    assert r.verdict == "holds"
    assert r.numbers["PGDIR_SHIFT"] == 39 and r.numbers["PERCPU_SIZE"] == 1 << 40
    assert "1TB" in r.evidence


def test_area_too_small_for_512_cpus_at_16k_36(checklist):
    # 16K/36: 2 levels, PGDIR_SHIFT = 11 * 2 + 3 = 25: a 64MB area. 512 units (CONFIG_NR_CPUS
    # default 512) of 144K need 72MB: the unit is PFN_ALIGN(static 101464 +
    # PERCPU_MODULE_RESERVE 8K + PERCPU_DYNAMIC_RESERVE 28K) with 16K pages (mm/percpu.c
    # pcpu_build_alloc_info()), 9 pages.
    r = row(checklist, "1", "16K/36")
    assert r.numbers["PERCPU_SIZE"] == 64 << 20
    assert r.numbers["unit_size"] == 144 << 10
    assert r.verdict == "fails"
    # 4K/39: PGDIR_SHIFT = 9 * 3 + 3 = 30, a 2GB area: fits, but is not the quoted 1TB.
    assert row(checklist, "1", "4K/39").verdict == "holds with caveat"


def test_the_five_broken_configurations_cannot_hold_the_areas(checklist):
    # series.md claim 6: one PGD entry is 256T (4K/52: 5 levels, PGDIR_SHIFT 9 * 5 + 3 = 48)
    # or 128T (16K/48 and 16K/52: 4 levels, PGDIR_SHIFT 11 * 4 + 3 = 47); four of them do not
    # fit below vmemmap. The 48-bit / 47-bit hardware variants break too.
    fits = checklist[checklist.claim_id == "6"]
    model = fits[~fits.config.str.contains("capture")]
    assert set(model[model.verdict == "cannot hold"].config) == BROKEN
    assert set(model[model.verdict == "holds"].config) == SANE
    assert row(checklist, "6", "4K/52").numbers["PGDIR_SIZE"] == 256 << 40
    assert row(checklist, "6", "16K/48").numbers["PGDIR_SIZE"] == 128 << 40
    assert row(checklist, "6", "16K/52").numbers["PGDIR_SIZE"] == 128 << 40
    for claim_id in ("1", "2", "4", "7", "8a", "8b"):
        part = checklist[(checklist.claim_id == claim_id) & checklist.config.isin(BROKEN)]
        assert (part.verdict == "cannot hold").all()


def test_pgd_only_sync_holds_where_the_layout_is_sane(checklist):
    # 4 CPUs: a shared vmalloc mapping creating one root entry is copied to the 3 other roots.
    r = row(checklist, "2", "4K/48")
    assert r.verdict == "holds"
    assert r.numbers["entries_copied"] == 3 and r.numbers["violations"] == 0
    assert "ARCH_PAGE_TABLE_SYNC_MASK" in r.assumption


def test_mainline_offsets_exceed_vmalloc_and_patched_stay_in_the_area(checklist):
    # Real ptdump of a v6.16+ 4K/48 kernel: vmalloc from 0xffff800080000000 to
    # 0xfffffdffbf800000. Mainline's first chunk is in the linear map, below it.
    r = row(checklist, "3", "4K/48")
    assert r.numbers["vmalloc_size"] == 0xFFFFFDFFBF800000 - 0xFFFF800080000000
    assert r.numbers["mainline_max_offset"] > r.numbers["vmalloc_size"]
    low, high = r.numbers["patched_min_offset"], r.numbers["patched_max_offset"]
    assert -(1 << 40) < low <= high <= 1 << 40  # PERCPU_SIZE = 1TB
    assert r.verdict == "holds" and "DEFAULT_PLACEMENT" in r.assumption


def test_same_offset_reaches_each_cpus_copy_in_both_areas(checklist):
    for config in SANE:
        r = row(checklist, "4", config)
        assert r.verdict == "holds", r.evidence
        assert r.numbers["mismatches"] == 0
        assert "dynamic, first, reserved" in r.evidence
        assert "DEFAULT_PLACEMENT" in r.assumption


def test_vmalloc_lost_at_4k_48(checklist):
    # Mainline VMALLOC_END 0xfffffdffbf800000 (real ptdump). Patched: LOCAL_PERCPU_END =
    # ALIGN_DOWN(VMEMMAP_START 0xfffffdffc0000000, 512GB) = 0xfffffd8000000000; two 1TB areas
    # below it; VMALLOC_END = PERCPU_START - 8M = 0xfffffb7fff800000. Lost: 2TB + 511GB.
    r = row(checklist, "5", "4K/48")
    assert r.numbers["vmalloc_lost"] == 0xFFFFFDFFBF800000 - 0xFFFFFB7FFF800000
    assert r.numbers["alignment_lost"] == 0xFFFFFDFFC0000000 - 0xFFFFFD8000000000
    assert r.verdict == "holds with caveat"
    # 16K/36: VMEMMAP_START is 32MB aligned already, so only the two 64MB areas go.
    assert row(checklist, "5", "16K/36").numbers["alignment_lost"] == 0


def test_sync_skip_boundary_fails_at_local_percpu_end(checklist):
    # Patch 02/11: `if (start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END) return;` with an
    # exclusive end: a range ending exactly at LOCAL_PERCPU_END is synced. From CPU 0 (whose
    # root is swapper_pg_dir) the local entry is copied into the 3 other roots, so each of them
    # reaches CPU 0's page: 3 violations; from CPU 1 the (empty) swapper entry is copied over
    # every other root, its own included: its own walk faults.
    r = row(checklist, "7", "4K/48")
    assert r.verdict == "fails"
    assert r.numbers["LOCAL_PERCPU_END"] == 0xFFFFFD8000000000
    assert r.numbers["entries_copied_at_end"] == 3 + 3
    assert r.numbers["violations_at_end"] == 3
    assert "CPU 1's own walk faults" in r.evidence
    assert set(checklist[(checklist.claim_id == "7") & checklist.config.isin(SANE)].verdict) \
        == {"fails"}


def test_shared_tlb_and_kpti_use_cpu0s_copy(checklist):
    # Kernel mappings are global (nG clear): a TLB entry CPU 0 filled for a local VA gives CPU
    # 0's page to a sibling. KPTI's trampoline returns TTBR1 to swapper_pg_dir
    # (TRAMP_SWAPPER_OFFSET = 2 * PAGE_SIZE, asm/memory.h), CPU 0's root on every CPU.
    # The model's units: CPU n at 0x40000000 + n * 128K (pgtable.build_first_chunk).
    smt = row(checklist, "8a", "4K/48")
    assert smt.verdict == "fails"
    assert (smt.numbers["reader_pa"], smt.numbers["cached_pa"]) == (0x40020000, 0x40000000)
    kpti = row(checklist, "8b", "4K/48")
    assert kpti.verdict == "fails"
    assert (kpti.numbers["own_pa"], kpti.numbers["swapper_pa"]) == (0x40020000, 0x40000000)
    assert "8KB" in kpti.evidence  # 2 * 4K


def test_preempt_safety_verdicts(checklist):
    # Single LSE instructions cannot be split; an LL/SC loop whose monitor a context switch
    # clears retries; a plain load-add-store loses an update; a 16-byte read made of two
    # 8-byte loads (the kernel has none) can be torn between two CPUs' copies.
    r = checklist[checklist.claim_id == "9a"].iloc[0]
    assert r.verdict == "holds with caveat"
    assert r.numbers["unsafe_local"] == ["read/16"]
    assert "lost update" in r.numbers["plain_verdicts"]
    assert "DEFAULT_LOCAL_SCHEME" in r.assumption
    cost = checklist[checklist.claim_id == "9b"].iloc[0]
    assert cost.verdict == "assumption"
    assert set(cost.numbers) == {"full", "none"}


def test_sys_time_saving_rows(checklist):
    rows = checklist[checklist.claim_id == "10"]
    full = rows[rows.config.str.contains("PREEMPT_FULL")].iloc[0]
    none = rows[rows.config.str.contains("no preempt count")].iloc[0]
    # replay module: the op rate a share S needs is r = S * f / d (f = 3 GHz).
    d = full.numbers["saving_cycles"]
    assert full.numbers["ops_per_sys_second"][0] == pytest.approx(0.13 * 3e9 / d)
    assert full.numbers["this_cpu_share_of_sys_needed"][0] == pytest.approx(
        0.13 * full.numbers["today_cycles"] / d)
    assert full.verdict == "assumption"
    # Without a preempt count the bracket is barrier() only: nothing left to save.
    assert none.numbers["saving_cycles"] <= 0 and none.verdict == "cannot hold"


@pytest.mark.skipif(not HAVE_CAPTURES, reason="data/captures not present")
def test_capture_rows_debian_4k_52(checklist):
    # Debian 6.12.117 arm64 (4K pages, VA_BITS=52), booted under QEMU on 52-bit and 48-bit
    # CPUs: the RFC layout does not fit; its real percpu addresses span more than vmalloc.
    caps = checklist[checklist.config.str.contains("capture")]
    fits = caps[caps.claim_id == "6"]
    assert len(fits) == 2 and (fits.verdict == "cannot hold").all()
    offsets = caps[caps.claim_id == "3"]
    assert len(offsets) == 2 and (offsets.verdict == "holds").all()
    assert all(n["real_offset_spread"] > n["vmalloc_size"] for n in offsets.numbers)
    assert "agrees on every allocation" in offsets.evidence.iloc[0]


def test_missing_captures_give_a_clear_row(tmp_path):
    frame = evaluate_claims(claims=["6"], captures_dir=tmp_path / "none")
    last = frame.iloc[-1]
    assert last.config == "capture" and last.evidence.startswith(NO_CAPTURE)
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
    assert table.splitlines()[0].split() == ["#", "claim", "config", "verdict"]
    assert "source: pgtable.skip_rule_boundary" in table
    md = format_claims(part, "markdown").splitlines()
    assert md[0] == "| # | claim | config | verdict | evidence | source |"
    assert len(md) == 2 + len(part) and all(line.count(" | ") >= 5 for line in md[2:])
    data = json.loads(format_claims(part, "json"))
    assert data[0]["numbers"]["PERCPU_SIZE"] == 2 << 30  # 4K/39: 2 * 1GB
    counts = verdict_counts(checklist)
    assert counts.loc["6", "cannot hold"] == 5 + 2 * HAVE_CAPTURES


def test_cli_claims_json_and_errors(cli):
    status, out, _ = cli("claims", "--format", "json")
    data = json.loads(out)
    assert status == 0
    assert {"claim_id", "verdict", "evidence", "source"} <= set(data[0])
    assert {d["verdict"] for d in data if d["claim_id"] == "7" and d["config"] == "4K/48"} \
        == {"fails"}
    status, _, err = cli("claims", "--format", "xml")
    assert status == 2 and "format 'xml' is unknown" in err
