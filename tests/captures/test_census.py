"""The census bundles shipped in data/census/ and the pieces that make them.

They were made by `make census`: Debian's 6.12.117+deb12-arm64 kernel (PREEMPT_VOLUNTARY)
booted `nokaslr` under qemu-system-aarch64 7.2 (`-accel tcg,thread=single`, 2 CPUs) with
the thiscpu_census plugin, running every workload of `census.WORKLOADS`:
- debian-6.12.117-max-smp2: `-cpu max` (LSE atomics);
- debian-6.12.117-cortex-a57-smp2: `-cpu cortex-a57` (ARMv8.0: LL/SC loops);
- debian-6.12.117-max-vhe-smp2: `-cpu max -M virt,virtualization=on` (the kernel at EL2).
"""

import struct

import pandas as pd
import pytest

from percpu_explorer.captures import (
    WORKLOADS,
    census_check,
    census_counts,
    census_workload,
    classify_site,
    counter_delta,
    event_sites,
    load_census,
    phase_summary,
    shipped_census,
    site_table,
    top_functions,
    vm_event_index,
)
from percpu_explorer.captures.census import MARKER_WORD, parse_census_output
from percpu_explorer.captures.census_run import (
    census_init_script,
    exit_program,
    marker_program,
    pingpong_program,
    plugin_source,
)
from percpu_explorer.errors import InputError
from percpu_explorer.thiscpu import price_counts, price_workload

from ..conftest import DATA, ROOT

MAX = "debian-6.12.117-max-smp2"
A57 = "debian-6.12.117-cortex-a57-smp2"
VHE = "debian-6.12.117-max-vhe-smp2"


@pytest.fixture(scope="module", params=[MAX, A57, VHE])
def census(request):
    return load_census(request.param)


@pytest.fixture(scope="module")
def lse():
    return load_census(MAX)


def test_the_bundles_are_shipped_small_and_gzipped():
    assert {MAX, A57, VHE} <= set(shipped_census())
    for name in (MAX, A57, VHE):
        folder = DATA / "census" / name
        files = sorted(p.name for p in folder.iterdir())
        assert files == ["counters.csv.gz", "meta.json", "sites.csv.gz", "symbols.csv.gz",
                         "words.csv.gz"]
        assert sum(p.stat().st_size for p in folder.iterdir()) < 200_000


def test_pgfault_site_equals_the_kernel_counter_in_every_workload(census):
    # mm/memory.c: handle_mm_fault() is the only count_vm_event(PGFAULT); the site is
    # found by the address its access reaches: vm_event_states + 8 * PGFAULT, the index
    # read from /proc/vmstat's order (include/linux/vm_event_item.h starts at PGPGIN).
    sites = event_sites(census, "pgfault")
    assert list(sites["function"]) == ["handle_mm_fault"]
    delta = counter_delta(census, "pgfault")
    assert (delta > 0).all()
    for phase in census.phases[1:]:
        assert int(sites[phase].sum()) == int(delta[phase]), phase


def test_pgreuse_site_equals_the_kernel_counter_in_every_workload(census):
    # mm/memory.c: wp_page_reuse() is the only count_vm_event(PGREUSE).
    sites = event_sites(census, "pgreuse")
    assert list(sites["function"]) == ["wp_page_reuse"]
    delta = counter_delta(census, "pgreuse")
    assert delta["fork_exec"] > 0
    for phase in census.phases[1:]:
        assert int(sites[phase].sum()) == int(delta[phase]), phase


def test_every_run_of_an_out_of_line_copy_is_credited_to_a_bl_site(census):
    checks = census_check(census)
    copies = checks[checks["check"].str.startswith("bl")]
    assert len(copies) == len(census.phases) and (copies["kernel"] > 0).all()
    assert checks["equal"].all()


def test_vm_event_index_follows_the_kernel_enum(lse):
    # include/linux/vm_event_item.h: PGPGIN, PGPGOUT, PSWPIN, PSWPOUT, then PGALLOC_*.
    assert vm_event_index(lse, "pgpgin") == 0
    assert vm_event_index(lse, "pswpout") == 3
    with pytest.raises(InputError, match="nosuch"):
        vm_event_index(lse, "nosuch")


def test_the_pgfault_increment_is_an_lse_or_llsc_add_of_8_bytes():
    # this_cpu_inc() on vm_event_states.event[] (unsigned long): arm64's this_cpu_add_8,
    # an LSE atomic with -cpu max and an LL/SC loop on ARMv8.0 (cortex-a57 has no LSE).
    for name, access in ((MAX, "lse"), (A57, "llsc")):
        site = event_sites(load_census(name), "pgfault").iloc[0]
        assert (site["op"], site["size"], site["access"], site["flavour"]) == \
            ("add", 8, access, "this_cpu")


def test_vhe_kernel_reads_tpidr_el2_at_the_same_addresses(lse):
    # asm/percpu.h __kern_my_cpu_offset: ALTERNATIVE(mrs tpidr_el1, mrs tpidr_el2,
    # ARM64_HAS_VIRT_HOST_EXTN); nokaslr puts the same kernel at the same address.
    vhe = load_census(VHE)
    a = event_sites(lse, "pgfault").iloc[0]
    b = event_sites(vhe, "pgfault").iloc[0]
    assert a["addr"] == b["addr"] and (a["kind"], b["kind"]) == ("mrs1", "mrs2")
    assert (vhe.sites["kind"] == "mrs2").sum() > 0.9 * (vhe.sites["kind"] != "bl").sum()


def test_boot_dominates_and_each_workload_runs_kernel_code(census):
    s = phase_summary(census).set_index("phase")
    assert list(s.index) == ["boot", *WORKLOADS]
    assert s.loc["boot", "kernel_insns"] > 5 * s.drop("boot")["kernel_insns"].sum() / 2
    assert (s["kernel_insns"] > 0).all() and (s["offset_reads"] > 0).all()
    assert ((s["this_cpu_share"] > 0) & (s["this_cpu_share"] < 0.1)).all()
    # the census boot with the plugin is timed against a plain one doing the same work
    assert set(census.meta["phase_seconds_plain"]) == set(s.index)
    t = census.meta["timings_s"]
    assert t["census_boot_cpu"] > 0 and t["plain_boot_cpu"] > 0


def test_site_table_and_counts_agree(lse):
    s = site_table(lse)
    assert (s["function"] != "__kern_my_cpu_offset").all()
    counts = census_counts(lse)
    assert set(counts["phase"]) == set(lse.phases) - {"boot"}
    for phase in ("fork_exec", "memcg"):
        assert counts.loc[counts["phase"] == phase, "count"].sum() == s[phase].sum()
    assert set(counts["op"]) <= {"read", "write", "add", "add_return", "and", "or", "xchg",
                                 "cmpxchg", "cmpxchg128", "pointer"}
    top = top_functions(lse, "page_faults", n=5)
    assert top["count"].is_monotonic_decreasing and len(top) == 5
    with pytest.raises(InputError, match="phase 'nope'"):
        census_counts(lse, ["nope"])


# --- classification on instruction words ---------------------------------------------------

BASE = 0xFFFF800080386000


def _words(seq):
    return {BASE + 4 * i: w for i, w in enumerate(seq)}


def test_classify_lse_ldadd_with_its_percpu_address():
    # handle_mm_fault of 6.12.117: adrp x4, <page>; mov x0, #1; mrs x1, tpidr_el1;
    # add x4, x4, #0xd08; add x1, x4, x1; ldadd x0, x3, [x1] (ARM ARM encodings).
    words = _words([0xD000DEE4, 0xD2800020, 0xD538D081, 0x91342084, 0x8B010081,
                    0xF8200023, 0xD503201F])
    c = classify_site(BASE + 8, "mrs1", words)
    assert (c.op, c.size, c.access) == ("add", 8, "lse")
    # adrp: immlo=2, immhi=0x6f7 -> +0x1bde pages from 0xffff800080386000
    assert c.target == BASE + (0x1BDE << 12) + 0xD08


def test_classify_llsc_loop_plain_rmw_read_and_pointer():
    # mrs x1, tpidr_el1; add x1, x0, x1; ldxr x2, [x1]; add x2, x2, #1;
    # stxr w3, x2, [x1]; cbnz w3, .-12
    llsc = _words([0xD538D081, 0x8B010001, 0xC85F7C22, 0x91000442, 0xC8037C22, 0x35FFFFA3])
    assert (classify_site(BASE, "mrs1", llsc).op, classify_site(BASE, "mrs1", llsc).access) \
        == ("add", "llsc")
    # mrs x1, tpidr_el1; ldr x2, [x0, x1]; add x2, x2, #1; str x2, [x0, x1]
    plain = _words([0xD538D081, 0xF8616802, 0x91000442, 0xF8216802])
    c = classify_site(BASE, "mrs1", plain)
    assert (c.op, c.size, c.access, c.flavour) == ("add", 8, "plain", "__this_cpu")
    # mrs x1, tpidr_el1; ldrb w2, [x0, x1]; ret
    read = _words([0xD538D081, 0x38616802, 0xD65F03C0])
    assert (classify_site(BASE, "mrs1", read).op, classify_site(BASE, "mrs1", read).size) \
        == ("read", 1)
    # mrs x1, tpidr_el1; add x0, x0, x1; cbz x2, ...: only a pointer before the branch
    ptr = _words([0xD538D081, 0x8B010000, 0xB4000042])
    c = classify_site(BASE, "mrs1", ptr)
    assert (c.op, c.stop) == ("pointer", "conditional branch")


def test_classify_follows_an_unconditional_branch():
    # mrs x1, tpidr_el1; b +8; (skipped); ldr w2, [x0, x1]
    words = _words([0xD538D081, 0x14000002, 0xD503201F, 0xB8616802, 0xD65F03C0])
    c = classify_site(BASE, "mrs1", words)
    assert (c.op, c.size) == ("read", 4)


# --- the run's pieces ------------------------------------------------------------------------

def test_marker_is_an_unallocated_hint_in_a_valid_static_elf():
    # HINT #imm: 0xd503201f | imm << 5 (ARM ARM C6.2.126); #0x7e is unallocated (a NOP).
    assert MARKER_WORD & 0xFFFFF01F == 0xD503201F and (MARKER_WORD >> 5) & 0x7F == 0x7E
    for program in (marker_program(), exit_program()):
        ident, e_type, machine, _, entry = struct.unpack_from("<16sHHIQ", program)
        assert ident[:4] == b"\x7fELF" and ident[4] == 2 and e_type == 2 and machine == 183
        assert entry == 0x400000 + 64 + 56
    code = marker_program()
    words = struct.unpack_from(f"<{(len(code) - 120) // 4}I", code, 120)
    assert MARKER_WORD in words
    assert b"/proc/vmstat\0" in code and b"/proc/stat\0" in code


def test_pingpong_program_forks_and_exchanges_over_two_pipes():
    code = pingpong_program(7)
    words = struct.unpack_from(f"<{(len(code) - 120) // 4}I", code, 120)
    # syscall numbers of arm64's asm-generic table: pipe2 59, clone 220, write 64,
    # read 63, close 57, wait4 260, exit 93 (movz x8, #n = 0xd2800008 | n << 5)
    for nr in (59, 220, 64, 63, 57, 260, 93):
        assert 0xD2800008 | nr << 5 in words, nr
    assert 0xD2800013 | 7 << 5 in words  # movz x19, #7: the rounds
    # svc #0: pipe2 x2, clone, write+read in each loop, close x2, wait4, exit x2
    assert words.count(0xD4000001) == 12


def test_init_script_marks_after_boot_and_each_workload():
    text = census_init_script(("fork_exec", "memcg"), kallsyms=False)
    marks = [line for line in text.splitlines() if line.startswith("mark ")]
    assert marks == ["mark boot", "mark fork_exec", "mark memcg"]
    assert "kallsyms" not in text and "poweroff -f" in text


def test_plugin_source_ships_as_package_data():
    source = plugin_source()
    assert "qemu_plugin_version" in source and "0xd538d080u" in source
    assert "captures/plugin/*.c" in (ROOT / "pyproject.toml").read_text()


def test_parse_census_output():
    text = ("snap 0 100 20\nc ffff800080000010 3\nsnap 1 150 25\nc ffff800080000010 5\n"
            "site ffff800080000010 mrs1 d538d081\nw ffff800080000010 d538d081\nend 150 25\n")
    snaps, sites, words = parse_census_output(text)
    assert [s["kernel"] for s in snaps] == [100, 150]
    assert snaps[1]["counts"] == {0xFFFF800080000010: 5}
    assert list(sites["kind"]) == ["mrs1"] and list(words["word"]) == [0xD538D081]
    with pytest.raises(InputError, match="line 1"):
        parse_census_output("bogus 1 2\n")


def test_a_damaged_bundle_is_one_clear_error(tmp_path):
    import shutil

    folder = tmp_path / "damaged"
    shutil.copytree(DATA / "census" / MAX, folder)
    (folder / "words.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match=r"words\.csv\.gz"):
        load_census(folder)
    (folder / "meta.json").write_text('{"phases": []}')
    with pytest.raises(InputError, match="no list of phases"):
        load_census(folder)


def test_load_census_refuses_unknown_names(tmp_path):
    with pytest.raises(InputError, match="choose a folder or one of"):
        load_census("no-such-census")
    (tmp_path / "x").mkdir()
    with pytest.raises(InputError, match=r"meta\.json"):
        load_census(tmp_path / "x")


def test_counters_parse_vmstat_and_stat(lse):
    c = lse.counters
    names = set(c["name"])
    assert {"pgfault", "pgreuse", "ctxt", "processes", "softirq"} <= names
    # /proc/stat "processes" counts forks: the fork_exec workload forks 200 times
    assert counter_delta(lse, "processes")["fork_exec"] >= 200
    assert isinstance(c, pd.DataFrame)


def test_a_census_phase_is_a_counted_workload_held_to_the_kernel(lse):
    # The page_faults phase as a workload: every non-pointer site's executions, and the
    # pgfault increment (handle_mm_fault's this_cpu_inc, an 8-byte add of
    # vm_event_states + 8 * PGFAULT) counts exactly /proc/vmstat's pgfault delta.
    w = census_workload(lse, "page_faults")
    s = site_table(lse)
    assert int(w["count"].sum()) == int(s.loc[s["op"] != "pointer", "page_faults"].sum())
    pgfault = w[w["variable"] == event_sites(lse, "pgfault")["target"].iloc[0]]
    assert pgfault[["op", "size", "flavour"]].values.tolist() == [["add", 8, "this_cpu"]]
    assert int(pgfault["count"].iloc[0]) == int(counter_delta(lse, "pgfault")["page_faults"])
    assert set(w["cpu"]) == {0} and set(w["time"]) == {0} and "any" not in set(w["flavour"])
    assert "all CPUs together" in " ".join(w.attrs["assumptions"])
    with pytest.raises(InputError, match="choose from boot, idle"):
        census_workload(lse, "nope")


def test_a_census_workload_prices_as_the_census_review_does(lse):
    # Two routes to one number: price_workload on the counted workload and price_counts
    # on the census's aggregated counts (v7.1 PREEMPT_FULL, tpidr_el1 as counted).
    w = census_workload(lse, "memcg")
    cost = price_workload(w, preempt="full", kernel="7.1", vhe=False)
    priced = price_counts(census_counts(lse, ["memcg"]), vhe=False)
    full = priced[priced["world"] == "7.1 FULL"].set_index("scheme")["cycles"]
    totals = cost.totals.set_index("variant")["cycles"]
    assert totals["today-lse"] == pytest.approx(full["today"])
    assert totals["local-lse"] == pytest.approx(full["local"])
