"""The sparse page-table model, per-CPU roots, mapping sync and the questions of issue 3.

Expected numbers come from the kernel's arithmetic done by hand or from the
layout symbols (pgd_index(a) = (a >> PGDIR_SHIFT) & (PTRS_PER_PGD - 1),
asm/pgtable.h), never from the model under test.
"""

import pytest

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.cli import main
from percpu_explorer.kernel.pgtable import KernelPageTables
from percpu_explorer.kernel.scenarios import (
    RAM_BASE,
    build_first_chunk,
    pgtable_cost,
    pgtable_cost_summary,
    shared_tlb_finding,
    skip_rule_boundary,
    sync_stream_table,
    vmalloc_sync_stream,
)
from percpu_explorer.kernel.walk import format_walk

K4_48 = KernelConfig(page_size=4096, va_bits=48, local_percpu=True, nr_cpus=64)
PAGE = 4096
UNIT = 128 << 10


def sym(cfg):
    return compute_layout(cfg).symbols


def pgd_index(cfg, addr):
    s = sym(cfg)
    return (addr >> s["PGDIR_SHIFT"]) & (s["PTRS_PER_PGD"] - 1)


def snapshot(kpt, vas):
    return (kpt.table_counts().to_dict(), kpt.total_pages, kpt.entries_copied,
            kpt.sync_calls, tuple(kpt.translate(c, v) for c in range(kpt.nr_cpus) for v in vas))


# --- mapping, walking, unmapping -------------------------------------------------------

def test_map_and_walk_a_vmalloc_page_4k_48():
    kpt = KernelPageTables(K4_48.replace(local_percpu=False), 4)
    va = 0xFFFF800080000000  # VMALLOC_START of 4K/48 (v6.9+ layout)
    kpt.vmap_range(va, va + 2 * PAGE, 0x81234000)
    walk = kpt.walk(3, va + PAGE + 0x10)
    assert walk.pa == 0x81235010
    # L0 index bits 47:39 = 256, L1 bits 38:30 = 2, L2 = 0, L3 = 1 (memory.rst diagram)
    assert [s.index for s in walk.steps] == [256, 2, 0, 1]
    assert [s.kind for s in walk.steps] == ["table", "table", "table", "page"]
    assert walk.mapping_size == PAGE
    # Each entry sits at table + 8 * index; the PTE descriptor is PA | PTE_TYPE_PAGE (3).
    assert all(s.entry_pa == s.table_pa + 8 * s.index for s in walk.steps)
    assert walk.steps[-1].descriptor == 0x81235000 | 3
    text = format_walk(walk)
    assert "ffff800080001010  81235010" in text and "PAGE: 81235000  (4KB)" in text
    assert walk.to_frame()["kind"].tolist() == ["table", "table", "table", "page"]
    # Unmapped neighbour faults at the PTE level, the tables being there.
    miss = kpt.walk(0, va + 2 * PAGE)
    assert miss.pa is None and miss.fault_level == "PTE"


def test_blocks_where_alignment_allows_as_the_linear_map():
    # 4K: a 1G-aligned 1G + 2M range with aligned PA maps one PUD block (1GB) and
    # one PMD block (2MB), as alloc_init_pud()/alloc_init_cont_pmd() do.
    kpt = KernelPageTables(K4_48.replace(local_percpu=False), 2)
    va, pa = 0xFFFF000040000000, 0x40000000
    kpt.vmap_range(va, va + (1 << 30) + (2 << 20), pa, blocks=True)
    w1 = kpt.walk(1, va + 0x12345)
    assert (w1.steps[-1].level, w1.steps[-1].kind, w1.mapping_size) == ("PUD", "block", 1 << 30)
    assert w1.pa == pa + 0x12345
    w2 = kpt.walk(1, va + (1 << 30) + 0x1000)
    assert (w2.steps[-1].level, w2.mapping_size) == ("PMD", 2 << 20)
    # A misaligned PA falls back to pages.
    kpt.vmap_range(va + (4 << 30), va + (4 << 30) + (2 << 20), pa + PAGE, blocks=True)
    assert kpt.walk(0, va + (4 << 30)).mapping_size == PAGE
    # Unmapping part of a block is refused; all of it clears the entry.
    with pytest.raises(ValueError, match="part of the block"):
        kpt.vunmap_range(va, va + (2 << 20))
    kpt.vunmap_range(va, va + (1 << 30))
    assert kpt.walk(0, va).fault_level == "PUD"


def test_64k_52_on_48_bit_hw_walk_uses_ttbr1_offset():
    cfg = KernelConfig(page_size=65536, va_bits=52, vabits_actual=48)
    kpt = KernelPageTables(cfg, 2)
    va = 0xFFFF000000000000  # lowest 48-bit kernel address: hardware index 0
    kpt.vmap_range(va, va + 65536, 0x50000)
    walk = kpt.walk(0, va)
    root = walk.steps[0]
    assert walk.ttbr1 == walk.root_pa + 0x1E00  # TTBR1_BADDR_4852_OFFSET
    assert (root.index, root.hw_index) == (960, 0)
    assert root.entry_pa == walk.ttbr1 + 8 * root.hw_index
    assert walk.pa == 0x50000


def test_lpa2_folded_walk_4k_52_on_48():
    cfg = KernelConfig(page_size=4096, va_bits=52, vabits_actual=48)
    kpt = KernelPageTables(cfg, 2)
    va = 0xFFFF800080000000
    kpt.vmap_range(va, va + PAGE, 0x9000)
    walk = kpt.walk(1, va)
    assert len(walk.steps) == 4  # four levels run: the PGD page is the P4D
    assert walk.steps[0].index == 256  # p4d_index: bits 47:39
    assert walk.pa == 0x9000


def test_pgd_smaller_than_a_page_64k_48():
    kpt = KernelPageTables(KernelConfig(page_size=65536, va_bits=48), 2)
    va = 0xFFFFFFFFC0000000
    kpt.vmap_range(va, va + 65536, 0x70000)
    step = kpt.walk(0, va).steps[0]
    assert step.index == 63  # PTRS_PER_PGD = 64: bits 47:42 all ones
    assert step.entry_pa - step.table_pa == 63 * 8 < 512  # inside the 512-byte PGD


# --- bad input ---------------------------------------------------------------------------

def test_bad_input_names_value_and_range_and_leaves_state_unchanged():
    kpt = build_first_chunk(K4_48, 4, unit_size=UNIT)
    s = sym(K4_48)
    va = s["VMALLOC_START"]
    kpt.vmap_range(va, va + 4 * PAGE, 0x100000)
    probe = [va, va + 3 * PAGE, s["LOCAL_PERCPU_END"] - PAGE]
    before = snapshot(kpt, probe)
    with pytest.raises(ValueError, match=r"overlaps an existing mapping at 0xffff800080003000"):
        kpt.vmap_range(va + 3 * PAGE, va + 6 * PAGE, 0x200000)
    with pytest.raises(ValueError, match=r"outside the kernel half.*0xffff000000000000"):
        kpt.vmap_range(0x1000, 0x3000, 0x200000)
    with pytest.raises(ValueError, match="PAGE_SIZE"):
        kpt.vmap_range(va + 100, va + PAGE, 0x200000)
    with pytest.raises(ValueError, match=r"cpu 4 is outside 0\.\.3"):
        kpt.walk(4, va)
    with pytest.raises(ValueError, match=r"cpu -1 is outside 0\.\.3"):
        kpt.vmap_range(s["LOCAL_PERCPU_START"], s["LOCAL_PERCPU_START"] + PAGE, 0, cpu=-1)
    with pytest.raises(ValueError, match="Local Percpu area"):
        kpt.vmap_range(s["LOCAL_PERCPU_START"], s["LOCAL_PERCPU_START"] + PAGE, 0)
    with pytest.raises(ValueError, match="outside the Local Percpu area"):
        kpt.vmap_range(va + 8 * PAGE, va + 9 * PAGE, 0, cpu=1)
    with pytest.raises(ValueError, match="overlaps"):  # CPU 2's first chunk is there
        kpt.vmap_range(s["LOCAL_PERCPU_END"] - PAGE, s["LOCAL_PERCPU_END"], 0, cpu=2)
    assert snapshot(kpt, probe) == before


def test_bad_construction():
    with pytest.raises(ValueError, match=r"nr_cpus 65 is outside 1\.\.64"):
        KernelPageTables(K4_48, 65)
    with pytest.raises(ValueError, match="broken"):  # patch 02/11 does not fit 4K/52
        KernelPageTables(KernelConfig(page_size=4096, va_bits=52, local_percpu=True), 2)
    with pytest.raises(ValueError, match="do not fit the Global Percpu area"):
        # 16K/36: the Global area is 2 * 32M = 64M; 4096 units of 128K need 512M.
        build_first_chunk(KernelConfig(page_size=16384, va_bits=36, local_percpu=True,
                                       nr_cpus=4096), 4096)


# --- per-CPU roots and sync -----------------------------------------------------------

def test_first_chunk_each_cpu_reaches_its_own_unit_and_shares_the_rest():
    kpt = build_first_chunk(K4_48, 8, unit_size=UNIT)
    s = sym(K4_48)
    local = s["LOCAL_PERCPU_END"] - UNIT
    for cpu in range(8):
        # this_cpu: the same local VA reaches the CPU's own unit at RAM_BASE + cpu * UNIT.
        assert kpt.walk(cpu, local + 0x40).pa == RAM_BASE + cpu * UNIT + 0x40
        # per_cpu_ptr(): CPU 5's global unit is the same page from every CPU.
        glob = s["PERCPU_END"] - 8 * UNIT + 5 * UNIT
        assert kpt.walk(cpu, glob + 0x40).pa == RAM_BASE + 5 * UNIT + 0x40
    assert kpt.check_invariants() == ()
    roots = {kpt.walk(c, local).root_pa for c in range(8)}
    assert len(roots) == 8


def test_shared_mapping_syncs_only_when_a_pgd_entry_is_created():
    kpt = KernelPageTables(K4_48, 4)
    va = sym(K4_48)["VMALLOC_START"]
    first = kpt.vmap_range(va, va + PAGE, 0x1000)
    # pud_alloc_track() on an empty root entry sets PGTBL_P4D_MODIFIED (4 levels:
    # the p4d is folded into the PGD) -> one root entry copied to CPUs 1..3.
    assert "PGTBL_P4D_MODIFIED" in first.mask_names
    assert first.sync is not None and not first.sync.skipped
    assert first.sync.indices == (pgd_index(K4_48, va),)
    assert first.sync.entries_copied == 3
    second = kpt.vmap_range(va + PAGE, va + 2 * PAGE, 0x2000)
    assert second.sync is None and "PGTBL_P4D_MODIFIED" not in second.mask_names
    assert all(kpt.walk(c, va + PAGE).pa == 0x2000 for c in range(4))
    assert kpt.entries_copied == 3


def test_mainline_has_one_root_and_never_syncs():
    kpt = KernelPageTables(K4_48.replace(local_percpu=False), 4)
    va = sym(K4_48)["VMALLOC_START"]
    result = kpt.vmap_range(va, va + PAGE, 0x1000)
    assert result.sync is None and kpt.entries_copied == 0
    assert len({kpt.walk(c, va).root_pa for c in range(4)}) == 1


def test_pgd_populate_kernel_style_sync_of_a_single_address_copies_one_entry():
    # pgd_populate_kernel(addr, ...) calls arch_sync_kernel_mappings(addr, addr);
    # the do/while over pgd_addr_end() still visits one entry.
    kpt = KernelPageTables(K4_48, 3)
    va = sym(K4_48)["VMALLOC_START"]
    result = kpt.arch_sync_kernel_mappings(va, va)
    assert result.indices == (pgd_index(K4_48, va),) and result.entries_copied == 2


def test_skip_rule_boundary_end_equal_to_local_percpu_end_is_not_skipped():
    # Patch 02/11: if (start >= LOCAL_PERCPU_START && end < LOCAL_PERCPU_END) return;
    # A local mapping ending exactly at LOCAL_PERCPU_END fails `end < LOCAL_PERCPU_END`,
    # so swapper's root entry (CPU 0's view, here still empty) is copied over CPU 1's
    # freshly made private entry: CPU 1 loses its mapping.
    s = sym(K4_48)
    top = s["LOCAL_PERCPU_END"]
    kpt = KernelPageTables(K4_48, 4)
    result = kpt.vmap_range(top - 2 * PAGE, top, 0x7000, cpu=1)
    assert result.sync is not None and not result.sync.skipped
    assert result.sync.indices == (pgd_index(K4_48, top - 1),)
    assert result.sync.entries_copied == 3
    assert kpt.walk(1, top - PAGE).fault_level == "PGD"

    # One page lower the same mapping is skipped and CPU 1 keeps it.
    kpt = KernelPageTables(K4_48, 4)
    result = kpt.vmap_range(top - 3 * PAGE, top - PAGE, 0x7000, cpu=1)
    assert result.sync is not None and result.sync.skipped
    assert kpt.walk(1, top - 2 * PAGE).pa == 0x7000 + PAGE
    assert kpt.check_invariants() == ()


def test_skip_rule_boundary_copies_cpu0_local_tables_to_every_cpu():
    # CPU 0's root is swapper_pg_dir. Its top-of-area chunk, mapped after
    # percpu_pgd_setup_done, is synced: every CPU's root now points at CPU 0's
    # private tables, so a this_cpu access on CPU 2 reaches CPU 0's page.
    s = sym(K4_48)
    top = s["LOCAL_PERCPU_END"]
    kpt = KernelPageTables(K4_48, 4)
    kpt.vmap_range(top - UNIT, top, RAM_BASE, cpu=0)
    assert kpt.walk(2, top - PAGE).pa == RAM_BASE + UNIT - PAGE
    violations = kpt.check_invariants()
    assert {(v.kind, v.cpu) for v in violations} == {("foreign-table", c) for c in (1, 2, 3)}
    # CPU 1 then cannot map its own chunk: the entry now holds CPU 0's pages
    # (in the kernel, vmap_pte_range() BUG()s on "remapping already mapped page").
    with pytest.raises(ValueError, match="overlaps"):
        kpt.vmap_range(top - UNIT, top, RAM_BASE + UNIT, cpu=1)


@pytest.mark.parametrize("cfg", [K4_48, KernelConfig(page_size=65536, va_bits=42,
                                                     local_percpu=True)], ids=["4K/48", "64K/42"])
def test_skip_rule_boundary_table(cfg):
    # Rows: CPU 1 below the top, CPU 1 at the top, CPU 0 below, CPU 0 at the top.
    table = skip_rule_boundary(cfg, 4)
    page = cfg.page_size
    assert table["sync"].tolist() == ["local-area skip", "copied", "local-area skip", "copied"]
    assert table["entries_copied"].tolist() == [0, 3, 0, 3]
    mine = RAM_BASE + page
    # CPU 1 keeps its page below the top, loses it at the top (swapper had nothing).
    assert table["own_pa"].tolist()[:2] == [mine, None]
    # CPU 0's top mapping is pushed into CPU 2's root: CPU 2 reaches CPU 0's page.
    assert table["other_pa"].tolist() == [None, None, None, mine]
    assert table["violations"].tolist() == [0, 0, 0, 3]


def test_vunmap_of_a_root_block_syncs_in_a_two_level_config():
    # 16K/36: the root is the PMD level (32M entries); a 32M block at the root is a
    # PGD-level entry, cleared by pmd_clear_huge() -> PGTBL_PMD_MODIFIED -> sync.
    cfg = KernelConfig(page_size=16384, va_bits=36, local_percpu=True, nr_cpus=8)
    kpt = KernelPageTables(cfg, 3)
    va = (sym(cfg)["VMALLOC_START"] + (32 << 20) - 1) & ~((32 << 20) - 1)
    kpt.vmap_range(va, va + (32 << 20), 0x2000000, blocks=True)
    assert kpt.walk(2, va + 0x4000).mapping_size == 32 << 20
    result = kpt.vunmap_range(va, va + (32 << 20))
    assert result.mask_names == ("PGTBL_PMD_MODIFIED",)
    assert result.sync is not None and result.sync.entries_copied == 2
    assert kpt.walk(2, va).pa is None and kpt.check_invariants() == ()


# --- the questions ---------------------------------------------------------------------

@pytest.mark.parametrize(("page_size", "va_bits", "pgdir"), [
    (4096, 48, 512 << 30),   # PGDIR_SIZE 512G
    (16384, 36, 32 << 20),   # 32M
    (65536, 42, 512 << 20),  # 512M
])
def test_sync_frequency_of_a_vmalloc_stream(page_size, va_bits, pgdir):
    # 1024 areas of 1M (256 pages at 4K), each followed by a guard page, lowest first.
    cfg = KernelConfig(page_size=page_size, va_bits=va_bits, local_percpu=True, nr_cpus=64)
    stream = vmalloc_sync_stream(cfg, 64, 1024, 1 << 20)
    start = sym(cfg)["VMALLOC_START"]
    assert stream.pgdir_size == pgdir
    # vmap_range_noflush() syncs when it creates a root entry, and the sync copies
    # every root entry of the call's [start, end) to the 63 other CPUs.
    shift = pgdir.bit_length() - 1
    seen, syncs, copies = set(), 0, 0
    for i in range(1024):
        a = start + i * ((1 << 20) + page_size)
        entries = set(range(a >> shift, ((a + (1 << 20) - 1) >> shift) + 1))
        if entries - seen:
            syncs += 1
            copies += len(entries) * 63
        seen |= entries
    assert stream.syncs == syncs
    assert stream.entries_copied == copies
    if pgdir == 32 << 20:
        assert stream.syncs >= (1 << 30) // pgdir  # at least one per 32M of the 1G+
    if pgdir == 512 << 30:
        assert stream.syncs == 1


def test_sync_stream_table_one_row_per_config():
    cfgs = [KernelConfig(page_size=p, va_bits=v, nr_cpus=16)
            for p, v in ((4096, 48), (16384, 36), (65536, 42))]
    table = sync_stream_table(cfgs, 16, 64, 1 << 20)
    # PGDIR_SIZE: 512G, 32M, 512M (ARM64_HW_PGTABLE_LEVEL_SHIFT of each root).
    assert table["pgdir_size"].tolist() == [512 << 30, 32 << 20, 512 << 20]
    assert (table["entries_copied"] >= table["syncs"] * 15).all()


def test_memory_cost_4k_48_with_4096_cpus():
    cfg = K4_48.replace(nr_cpus=4096)
    summary = pgtable_cost_summary(pgtable_cost(cfg, 4096, unit_size=UNIT))
    # Per CPU: its root page (CPU 0 keeps swapper_pg_dir) and, for a 128K chunk in one
    # 2M PMD entry at the top of the area, one PUD, one PMD and one PTE page.
    assert summary.private_pages == 4095 + 3 * 4096
    # Both: swapper_pg_dir and the linear map of the 512M of units as 256 2M blocks
    # (one PUD page, one PMD page).
    linear = 1 + 1 + 1
    # Patched, shared: for 4096 x 128K = 512M of global units in one 1G PUD entry,
    # one PUD page, one PMD page and 512M / 2M = 256 PTE pages.
    global_area = 1 + 1 + 256
    assert summary.mainline_bytes == linear * 4096
    assert summary.patched_bytes == (linear + global_area + 4095 + 3 * 4096) * 4096
    assert summary.extra_bytes == (global_area + 4095 + 3 * 4096) * 4096  # ~65MB


def test_memory_cost_64k_48_pays_a_64k_page_per_root():
    # PGD_SIZE is only 512 bytes at 64K/48, but each root is a page (patch 01/11):
    # per CPU root + PMD + PTE = 3 x 64K.
    cfg = KernelConfig(page_size=65536, va_bits=48, local_percpu=True, nr_cpus=256)
    summary = pgtable_cost_summary(pgtable_cost(cfg, 256, unit_size=UNIT))
    assert summary.private_pages == 255 + 2 * 256


def test_mainline_walk_of_the_embedded_first_chunk_in_the_linear_map():
    cfg = K4_48.replace(local_percpu=False)
    kpt = build_first_chunk(cfg, 8, unit_size=UNIT)
    # __phys_to_virt(): PAGE_OFFSET + (pa - memstart_addr); PAGE_OFFSET = -(1 << 48).
    va = 0xFFFF000000000000 + 3 * UNIT + 0x10
    walk = kpt.walk(5, va)
    assert walk.pa == RAM_BASE + 3 * UNIT + 0x10
    assert (walk.steps[-1].level, walk.mapping_size) == ("PMD", 2 << 20)
    assert kpt.cpu_table_counts()["pages"].sum() == 0  # nothing private in mainline


def test_memory_cost_64k_48_roots_as_pgd_alloc_would_size_them():
    # If the roots came from pgd_alloc() (PGD_SIZE = 64 * 8 = 512 bytes from a slab,
    # pgdir_is_page_size() being false), 256 roots would take 256 * 512 bytes.
    cfg = KernelConfig(page_size=65536, va_bits=48, local_percpu=True, nr_cpus=256)
    cost = pgtable_cost(cfg, 256, unit_size=UNIT)
    root = cost[(cost.model == "patched") & (cost.level == "PGD")].iloc[0]
    assert root.pages == 256  # swapper_pg_dir + 255 per-CPU roots
    assert root.bytes == 256 * 65536
    assert root.bytes_if_pgd_alloc == 256 * 512


def test_setup_percpu_pgd_copies_shared_entries_and_turns_sync_on():
    s = sym(K4_48)
    kpt = KernelPageTables(K4_48, 4, percpu_pgd_setup_done=False)
    va = s["VMALLOC_START"]
    result = kpt.vmap_range(va, va + PAGE, 0x1000)
    assert result.sync is not None and result.sync.reason == "before percpu_pgd_setup_done"
    assert kpt.walk(1, va).fault_level == "PGD"
    assert {v.kind for v in kpt.check_invariants()} == {"stale-shared"}
    top = s["LOCAL_PERCPU_END"]
    kpt.vmap_range(top - PAGE, top, 0x5000, cpu=2)
    # One shared root entry (vmalloc) copied to CPUs 1..3; CPU 2's local entry stays.
    assert kpt.setup_percpu_pgd() == 3
    assert kpt.walk(1, va).pa == 0x1000 and kpt.walk(2, top - PAGE).pa == 0x5000
    assert kpt.check_invariants() == ()
    again = kpt.vmap_range(va + (1 << 39), va + (1 << 39) + PAGE, 0x2000)
    assert again.sync is not None and again.sync.reason == "copied"


def test_shared_tlb_finding():
    kpt = build_first_chunk(K4_48, 4, unit_size=UNIT)
    s = sym(K4_48)
    local = s["LOCAL_PERCPU_END"] - UNIT + 0x80
    finding = shared_tlb_finding(kpt, local, filler=0, reader=1)
    assert finding.wrong_cpu and finding.data_owner == 0
    assert finding.reader_pa == RAM_BASE + UNIT + 0x80
    assert finding.cached_pa == RAM_BASE + 0x80
    assert "CPU 0's copy" in finding.explanation
    glob = s["PERCPU_END"] - 4 * UNIT + 0x80
    assert not shared_tlb_finding(kpt, glob, filler=0, reader=1).wrong_cpu


# --- command line ------------------------------------------------------------------------

def test_cli_walk_prints_the_cpu_s_own_unit(capsys):
    s = sym(K4_48)
    va = s["LOCAL_PERCPU_END"] - UNIT + 0x10
    assert main(["walk", hex(va), "--cpu", "3", "--local-percpu", "--nr-cpus", "8"]) == 0
    out = capsys.readouterr().out
    assert f"{va:016x}  {RAM_BASE + 3 * UNIT + 0x10:x}" in out
    assert "cpu 3" in out


def test_cli_errors_are_one_line(capsys):
    assert main(["walk", "0x1000", "--cpu", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "0xffff000000000000" in err[0]
    assert main(["walk", "0xffff800080000000", "--cpu", "9", "--nr-cpus", "8"]) == 2
    assert "cpu 9 is outside 0..7" in capsys.readouterr().err


def test_cli_pgtables(capsys):
    assert main(["pgtables", "--nr-cpus", "4096"]) == 0
    out = capsys.readouterr().out
    assert "extra ~65MB" in out
    assert main(["pgtables", "--nr-cpus", "64", "--format", "json"]) == 0
    import json
    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["private_pages"] == 63 + 3 * 64


def test_unit_addresses_are_where_the_first_chunk_is_mapped():
    from percpu_explorer.kernel import unit_addresses

    cfg = KernelConfig(page_size=4096, va_bits=48, local_percpu=True, nr_cpus=4)
    kpt = build_first_chunk(cfg, 4)
    s = sym(cfg)
    for cpu in range(4):
        unit = unit_addresses(kpt, cpu)
        assert unit.pa == RAM_BASE + cpu * UNIT
        assert unit.linear == s["PAGE_OFFSET"] + cpu * UNIT  # memstart_addr = RAM_BASE
        assert unit.local == s["LOCAL_PERCPU_END"] - UNIT  # the top of the local area
        assert unit.global_ == s["PERCPU_END"] - 4 * UNIT + cpu * UNIT
        for va in (unit.linear, unit.local, unit.global_):
            assert kpt.translate(cpu, va) == unit.pa
    mainline = unit_addresses(build_first_chunk(cfg.replace(local_percpu=False), 2), 1)
    assert (mainline.local, mainline.global_) == (None, None)
    with pytest.raises(ValueError, match=r"outside 0\.\.3"):
        unit_addresses(kpt, 4)


def test_each_cpu_reaches_the_shared_tables_below_its_root():
    kpt = build_first_chunk(KernelConfig(local_percpu=True, nr_cpus=4), 4)
    per_cpu, shared = kpt.cpu_table_counts(), kpt.table_counts()["shared_pages"]
    # CPU 0 walks from swapper_pg_dir; CPUs 1.. from their own root, below which
    # they reach every shared table but swapper_pg_dir
    assert list(per_cpu["own_root"]) == [False, True, True, True]
    assert list(per_cpu["shared_reached"]) == [shared.sum()] + [shared.sum() - 1] * 3
