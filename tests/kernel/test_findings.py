"""The answers of notebooks 01 and 02: each sentence holds the model's numbers, and those
numbers are the kernel's arithmetic done by hand here (asm/memory.h, asm/pgtable.h with
patch 02/11), or follow from the model's stated assumptions (kernel.rfc)."""

import pytest

from percpu_explorer import KernelConfig
from percpu_explorer.errors import InputError
from percpu_explorer.kernel import (
    RAM_BASE,
    broken_layout_reason,
    compute_layout,
    fmt_addr,
    format_size,
    layout_finding,
    layout_problems,
    page_tables_finding,
    pgtable_cost_finding,
    pgtable_cost_table,
    shared_tlb_answer,
    skip_rule_finding,
    skip_rule_table,
    sync_stream_finding,
)

K4_48 = KernelConfig(page_size="4K", va_bits=48, nr_cpus=4)
K16_48 = KernelConfig(page_size="16K", va_bits=48, nr_cpus=4)
TB, GB = 1 << 40, 1 << 30

# 4K/48, v6.9+ (asm/memory.h): VMEMMAP_SIZE = (_PAGE_END(48) - PAGE_OFFSET) >> (12 - 6)
# = 2^47 >> 6 = 2TB, VMEMMAP_START = -1G - 2TB = 0xfffffdffc0000000; mainline
# VMALLOC_END = VMEMMAP_START - 8M (ptdump's "vmalloc() end" 0xfffffdffbf800000).
# Patch 02/11: LOCAL_PERCPU_END = ALIGN_DOWN(VMEMMAP_START, PGDIR_SIZE = 2^39),
# PERCPU_START = LOCAL_PERCPU_END - 2 * PERCPU_SIZE, VMALLOC_END = PERCPU_START - 8M.
LOCAL_END_4K = 0xFFFFFD8000000000
PERCPU_START_4K = LOCAL_END_4K - 2 * TB
VMALLOC_END_MAINLINE_4K = 0xFFFFFDFFBF800000
VMALLOC_START_48 = 0xFFFF800080000000  # MODULES_END = _PAGE_END(48) + 2G


def test_layout_finding_of_4k_48_gives_the_patch_numbers():
    f = layout_finding(K4_48)
    assert f.basis == "kernel arithmetic" and "?" in f.question
    n = f.numbers
    assert n["PERCPU_SIZE"] == 1 * TB  # "It is 1TB with 4K page size" (patch 02/11)
    assert n["PGDIR_SIZE"] == 512 * GB
    assert (n["PERCPU_START"], n["LOCAL_PERCPU_END"]) == (PERCPU_START_4K, LOCAL_END_4K)
    lost = VMALLOC_END_MAINLINE_4K - (PERCPU_START_4K - (8 << 20))
    assert lost == 2 * TB + 511 * GB  # the areas, and 0xfffffdffc0000000 - LOCAL_PERCPU_END
    assert n["vmalloc_lost"] == lost and n["alignment_lost"] == 511 * GB
    for text in ("1TB each", "PGDIR_SIZE 512GB", fmt_addr(PERCPU_START_4K),
                 fmt_addr(LOCAL_END_4K), f"shrinks by {format_size(lost)}",
                 "2TB for the areas, 511GB to aligning", "kernel 7.1"):
        assert text in f.answer, text
    # test_patch_02.BROKEN: 4K/52 and 16K/48, 16K/52 (and the 48/47-bit hardware fallbacks
    # of the 52-bit kernels) cannot hold the areas; 13 configurations without KASAN at 7.1.
    assert n["broken"] == ("4K/52", "4K/52 (48-bit hw)", "16K/48", "16K/52",
                           "16K/52 (47-bit hw)")
    assert f"do not fit in 5 of the {n['configs']} configurations" in f.answer
    assert n["configs"] == 13


def test_layout_finding_of_16k_48_says_why_in_the_kernel_numbers():
    # 16K/48: PGDIR_SHIFT 47 (128TB); VMEMMAP_SIZE = 2^47 >> (14 - 6) = 512GB, so
    # VMEMMAP_START = -1G - 512GB = 0xffffff7fc0000000 and LOCAL_PERCPU_END =
    # ALIGN_DOWN(it, 2^47) = 0xffff800000000000 = _PAGE_END(48), below VMALLOC_START.
    f = layout_finding(K16_48)
    end = 0xFFFF800000000000
    start = end - 2 * (256 * TB)
    assert f.numbers["PERCPU_SIZE"] == 256 * TB and f.numbers["problems"] == 7
    for text in ("2 * PGDIR_SIZE = 256TB each", f"LOCAL_PERCPU_END {fmt_addr(end)}",
                 f"not even above VMALLOC_START {fmt_addr(VMALLOC_START_48)}",
                 f"PERCPU_START comes out at {fmt_addr(start)}",
                 f"VMALLOC_END {fmt_addr(start - (8 << 20))}",
                 "below 0xffff000000000000, the lowest address TTBR1 translates"):
        assert text in f.answer, text
    assert "problems in all" in f.answer and "its two" not in f.answer


def test_layout_finding_before_6_9_says_the_patch_does_not_apply():
    f = layout_finding(KernelConfig(kernel="6.8"))
    assert "6.5-6.8 layout" in f.answer and "from 6.9 on" in f.answer
    assert f.basis == "kernel arithmetic"


def test_broken_layout_reason_and_problem_rows():
    assert broken_layout_reason(compute_layout(K4_48.replace(local_percpu=True))) is None
    patched = compute_layout(K16_48.replace(local_percpu=True))
    reason = broken_layout_reason(patched)
    assert reason is not None and reason.startswith("the patched layout is broken: ")
    assert "\n" not in reason and "'" not in reason  # one line, nothing HTML escapes
    rows = layout_problems(patched)
    assert list(rows["problem"]) == [f.code for f in patched.problems]
    assert len(rows) == 7


def test_page_tables_finding_each_cpu_reaches_its_own_unit():
    f = page_tables_finding(K4_48.replace(local_percpu=True))
    n = f.numbers
    # rfc.DEFAULT_PLACEMENT: the local copy of the first chunk ends at LOCAL_PERCPU_END,
    # one 128K unit per CPU at RAM_BASE + cpu * 128K (scenarios.unit_pa).
    assert n["local_va"] == LOCAL_END_4K - (128 << 10)
    assert n["pa_by_cpu"] == {cpu: RAM_BASE + cpu * (128 << 10) for cpu in range(4)}
    assert n["own_copy"] and n["violations"] == 0
    # Tables (as test_pgtable_model.test_memory_cost_4k_48_with_4096_cpus counts them):
    # mainline swapper + PUD + PMD of 2M blocks = 3; patched adds the Global area's
    # PUD, PMD and one PTE page (512K of units), and per CPU a root (not CPU 0) and a
    # PUD, PMD and PTE page for its local copy: 3 + 3 + (3 + 4 * 3) = 21.
    assert (n["mainline_pages"], n["patched_pages"], n["private_pages"]) == (3, 21, 15)
    for text in (fmt_addr(LOCAL_END_4K - (128 << 10)), "CPU 3 to PA 0x40060000",
                 "21 pages of 4KB (84KB) against 3 (12KB)", "15 of them private"):
        assert text in f.answer, text
    assert f.basis == "assumption" and "patch 01/11" in f.detail


def test_page_tables_finding_refuses_a_broken_layout_in_plain_words():
    with pytest.raises(InputError, match=r"^the patched layout is broken: .* no per-CPU page "
                                         r"tables to walk$"):
        page_tables_finding(K16_48)
    with pytest.raises(InputError, match=r"from 6\.9 on"):
        page_tables_finding(KernelConfig(kernel="6.8"))


def test_skip_rule_finding_the_mapping_at_the_top_is_copied():
    # Patch 02/11: if (start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END) return;
    # the exclusive end LOCAL_PERCPU_END fails the test, so the one root entry is copied
    # to the 3 other CPUs: CPU 0's local tables reach CPUs 1-3 (3 foreign-table
    # violations, test_pgtable_model), and CPU 2 reads CPU 0's top page RAM_BASE + 4K.
    f = skip_rule_finding(K4_48)
    n = f.numbers
    assert (n["LOCAL_PERCPU_END"], n["entries_copied"], n["violations"]) == (LOCAL_END_4K, 3, 3)
    assert n["leaked_pa"] == RAM_BASE + 4096 and n["cpu1_loses_mapping"]
    assert n["skipped_one_page_lower"]
    for text in (fmt_addr(LOCAL_END_4K), "other 3 CPUs' roots (3 entries)",
                 "CPU 2 then reaches CPU 0's page (PA 0x40001000)", "3 invariant violations",
                 "its walk faults", "one page lower is skipped"):
        assert text in f.answer, text
    assert f.basis == "assumption" and "patch 02/11 as written" in f.detail


def test_skip_rule_table_reads_without_decimal_addresses():
    table = skip_rule_table(K4_48)
    assert list(table["end is LOCAL_PERCPU_END"]) == ["no", "yes", "no", "yes"]
    assert list(table["mapping CPU reaches"]) == [
        "its own page", "fault: its mapping was overwritten", "its own page", "its own page"]
    assert table["CPU 2 reaches"].iloc[3] == "CPU 0's page 0x40001000"
    assert list(table["end"])[1] == LOCAL_END_4K  # an int: ui.tables.readable prints hex


def test_pgtable_cost_finding_with_4096_cpus():
    big = K4_48.replace(nr_cpus=4096, local_percpu=True)
    f = pgtable_cost_finding(big)
    n = f.numbers
    # test_pgtable_model.test_memory_cost_4k_48_with_4096_cpus: mainline 3 pages;
    # patched 3 + (1 + 1 + 256) shared + 4095 roots + 3 * 4096 local tables.
    private = 4095 + 3 * 4096
    pages = 3 + 258 + private
    assert (n["mainline_pages"], n["patched_pages"], n["patched_private_pages"]) == \
        (3, pages, private)
    assert n["extra_bytes"] == (pages - 3) * 4096 and n["pages_per_cpu"] == 4
    for text in ("4,096 CPUs", "3 pages (12KB) in mainline", f"{pages:,} pages",
                 f"{format_size(pages * 4096)})", f"{format_size((pages - 3) * 4096)} more",
                 f"{private:,} of those pages", "4 per CPU (16KB"):
        assert text in f.answer, text
    table = pgtable_cost_table(big)
    assert list(table["level"]) == ["PGD (L0)", "PUD (L1)", "PMD (L2)", "PTE (L3)", "total"]
    assert table["patched_pages"].iloc[-1] == pages and table["mainline_bytes"].iloc[-1] == 12288


def test_sync_stream_finding_counts_new_root_entries():
    # 1024 areas of 1M + a guard page from VMALLOC_START: one 512GB root entry at 4K/48;
    # at 16K/36 the root entries are 32MB, so the 1G+ of areas needs at least 33 new ones.
    configs = [K4_48.replace(local_percpu=True),
               KernelConfig(page_size="16K", va_bits=36, local_percpu=True, nr_cpus=4)]
    f = sync_stream_finding(configs, 4, 1024, 1 << 20)
    assert f.numbers["syncs"]["4K/48"] == 1 and f.numbers["syncs"]["16K/36"] >= 33
    assert f.numbers["entries_copied"]["4K/48"] == 3  # one entry to 3 other CPUs
    assert "1 time (3 entries) with 4K/48's 512GB root entries" in f.answer
    assert "32MB root entries" in f.answer


def test_shared_tlb_answer_names_the_wrong_copy():
    f = shared_tlb_answer(K4_48.replace(local_percpu=True))
    assert f.numbers["reader_pa"] == RAM_BASE + (128 << 10)
    assert f.numbers["cached_pa"] == RAM_BASE and f.numbers["wrong_cpu"]
    assert "CnP" in f.answer and "nG" in f.answer
