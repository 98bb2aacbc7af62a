"""Real-kernel captures: the shipped bundles parsed, and the model held against them.

The bundles in data/captures/ were made by `make capture`: Debian's arm64 kernel
6.12.117+deb12-arm64 (4K pages, CONFIG_ARM64_VA_BITS=52, NR_CPUS=512) booted under
qemu-system-aarch64 7.2 with `-M virt`:
- debian-6.12.117-max-smp4: `-cpu max` (LPA2: runs with 52-bit VA), 4 CPUs, KASLR on;
- debian-6.12.117-a72-smp8-nokaslr: `-cpu cortex-a72` (no LPA2: 48-bit VA), 8 CPUs,
  nokaslr;
and by `make capture-ptdump` (the same source rebuilt with CONFIG_PTDUMP_DEBUGFS and
CONFIG_PERCPU_STATS): debian-6.12.117-ptdump-a72-smp4 and -ptdump-max-smp4, 4 CPUs.
All ran a workload creating and removing 200 memory cgroups.
"""

import pandas as pd
import pytest

from percpu_explorer.captures.bundle import (
    TRACE_COLUMNS,
    CaptureParseError,
    compare,
    derive_config,
    first_chunk_comparison,
    first_dynamic_chunk_end,
    load_bundle,
    memory_lines,
    parse_dmesg,
    parse_percpu_stats,
    parse_ptdump,
    parse_trace,
    parse_vmallocinfo,
    parse_vmcoreinfo,
    percpu_events,
    percpu_first_chunk,
    percpu_stats_section,
    ptdump_markers,
    vmcoreinfo_numbers,
)
from percpu_explorer.kernel.config import KernelConfig
from percpu_explorer.kernel.layout import compute_layout
from percpu_explorer.kernel.units import fmt_addr

from ..conftest import DATA

CAPTURES = DATA / "captures"
MAX4 = CAPTURES / "debian-6.12.117-max-smp4"
A72 = CAPTURES / "debian-6.12.117-a72-smp8-nokaslr"
BUNDLES = sorted(p for p in CAPTURES.iterdir() if (p / "meta.json").is_file())


@pytest.fixture(scope="module", params=BUNDLES, ids=lambda p: p.name)
def bundle(request):
    return load_bundle(request.param)


def test_at_least_two_bundles_from_different_cpus_are_shipped():
    metas = [load_bundle(p).meta for p in BUNDLES]
    assert len({(m["cpu"], m["smp"]) for m in metas}) >= 2
    assert {"max", "cortex-a72"} <= {m["cpu"] for m in metas}
    rebuilt = [p for p in BUNDLES if {"ptdump", "percpu_stats"} <= set(load_bundle(p).texts)]
    assert len(rebuilt) >= 1


# --- the model against each bundle: every value the capture shows ---------------------

def test_every_layout_value_of_the_capture_equals_the_model(bundle):
    result = compare(bundle)
    table = result.layout_rows
    assert len(table) >= 9, "the capture shows too few layout values to compare"
    bad = result.disagreements
    assert bad.empty, "model and real kernel disagree:\n" + bad.to_string()


def test_allocator_model_first_chunk_equals_the_kernel_log(bundle):
    # dmesg: "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264",
    # "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096", "pcpu-alloc: [0] 0 [0] 1 ..."
    # The model gets only the static size 101464 and the CPU count.
    rows = first_chunk_comparison(bundle)
    assert len(rows) == 10
    assert rows["match"].all(), "allocator model and kernel log disagree:\n" + rows[
        ~rows["match"]].to_string()


def test_derived_config_is_debians_arm64_kernel(bundle):
    cfg = derive_config(bundle)
    assert (cfg.page_size, cfg.va_bits, cfg.nr_cpus, cfg.kasan) == (4096, 52, 512, "none")
    assert cfg.kernel == "6.12.117"
    assert (cfg.kvm, cfg.kpti, cfg.ghes, cfg.sdei, cfg.relocatable) == (True,) * 5


def test_vmalloc_end_with_lpa2_matches_the_real_kernel():
    # data/captures/debian-6.12.117-max-smp4/vmcoreinfo.txt (-cpu max, 52-bit VA):
    #   NUMBER(VMALLOC_END)=0xffffc1ffbf800000, NUMBER(VMEMMAP_START)=0xffffc1ffc0000000,
    #   NUMBER(TCR_EL1_T1SZ)=0xc
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=52, kernel="6.12.117"))
    assert fmt_addr(layout["VMALLOC_END"]) == "0xffffc1ffbf800000"
    assert fmt_addr(layout["VMEMMAP_START"]) == "0xffffc1ffc0000000"
    numbers = vmcoreinfo_numbers(parse_vmcoreinfo(load_bundle(MAX4).text("vmcoreinfo")))
    assert numbers["vabits_actual"] == 52


def test_vmalloc_end_of_a_52_bit_kernel_on_48_bit_hardware_matches_the_real_kernel():
    # data/captures/debian-6.12.117-a72-smp8-nokaslr/vmcoreinfo.txt (-cpu cortex-a72):
    #   NUMBER(VA_BITS)=52, NUMBER(TCR_EL1_T1SZ)=0x10 (48 bits),
    #   NUMBER(VMALLOC_END)=0xfffffdffbf800000 (the unused vmemmap stays above vmalloc),
    #   NUMBER(VMEMMAP_START)=0xffffc1ffc0000000 (VMEMMAP_START is that of VA_BITS=52)
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=48, kernel="6.12.117"))
    assert fmt_addr(layout["VMALLOC_END"]) == "0xfffffdffbf800000"
    assert fmt_addr(layout["VMEMMAP_START"]) == "0xffffc1ffc0000000"
    numbers = vmcoreinfo_numbers(parse_vmcoreinfo(load_bundle(A72).text("vmcoreinfo")))
    assert (numbers["VA_BITS"], numbers["vabits_actual"]) == (52, 48)
    assert numbers["KERNELOFFSET"] == 0  # booted with nokaslr


def test_first_dynamic_chunk_ends_at_vmalloc_end():
    # trace.txt.gz, first "percpu_create_chunk: base_addr=fffffdffbf6f0000"; dmesg
    # "pcpu-alloc: s101464 r8192 d29608 u139264" with 8 units: 0xfffffdffbf6f0000 +
    # 8 * 139264 = 0xfffffdffbf800000 = VMALLOC_END of the 48-bit layout.
    assert first_dynamic_chunk_end(load_bundle(A72)) == 0xFFFFFDFFBF800000


def test_rfc_layout_does_not_fit_debians_configuration(bundle):
    # series.md: 4K/52 cannot hold the two 2 * PGDIR_SIZE areas (one PGD entry is 256T).
    result = compare(bundle)
    assert result.rfc_layout is not None
    assert "vmalloc-empty" in {p.code for p in result.rfc_layout.problems}


# --- the kernel log --------------------------------------------------------------------

def test_first_chunk_facts_from_the_kernel_log(bundle):
    # dmesg: "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264" and
    # "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096"
    info = percpu_first_chunk(parse_dmesg(bundle.text("dmesg")))
    assert info is not None
    assert (info.kind, info.pages_per_cpu, info.static_size, info.reserved_size,
            info.dyn_size, info.unit_size) == ("Embedded", 34, 101464, 8192, 29608, 139264)
    assert (info.alloc_atoms, info.atom_size) == (34, 4096)
    assert info.groups == (tuple(range(bundle.meta["smp"])),)
    assert info.nr_units == bundle.meta["smp"]


def test_first_chunk_line_that_does_not_parse_is_an_error_with_its_line():
    log = "[    0.000000] Booting\n[    0.000000] percpu: Embedded 34 pages/cpu s1 rX\n"
    with pytest.raises(CaptureParseError) as info:
        percpu_first_chunk(parse_dmesg(log))
    assert info.value.line == 2 and info.value.source == "dmesg"


def test_page_first_chunk_and_unused_units_are_read():
    log = ("percpu: 33 4K pages/cpu s96000 r8192 d31000\n"
           "pcpu-alloc: s96000 r8192 d31000 u135168 alloc=33*4096\n"
           "pcpu-alloc: [0] 0 [0] 1 [1] 2 [1] -- \n")
    info = percpu_first_chunk(parse_dmesg(log))
    assert (info.kind, info.pages_per_cpu, info.unit_size) == ("4K", 33, 135168)
    assert info.groups == ((0, 1), (2,)) and info.nr_units == 4


# --- the trace -------------------------------------------------------------------------

def test_trace_keeps_every_event_the_buffer_held(bundle):
    trace = parse_trace(bundle.text("trace"))
    assert list(trace.columns) == TRACE_COLUMNS
    assert trace.attrs["lost_events"] == 0
    assert trace.attrs["entries_in_buffer"] == trace.attrs["entries_written"] == len(trace)
    assert trace.attrs["nr_cpus"] == bundle.meta["smp"]
    counts = trace["event"].value_counts()
    assert counts["percpu_create_chunk"] == 3
    assert counts["tracing_mark_write"] == 3  # the workload's three marks


def test_alloc_events_have_every_field_and_frees_match_live_allocations(bundle):
    events = percpu_events(parse_trace(bundle.text("trace")))
    allocs = events[events["event"] == "percpu_alloc_percpu"]
    fields = ["call_site", "reserved", "is_atomic", "size", "align", "base_addr", "off", "ptr",
              "bytes_alloc", "gfp_flags"]
    assert not allocs[fields].isna().any().any()
    # bytes_alloc = pcpu_obj_full_size(size) (mm/percpu-internal.h): size per possible
    # CPU plus, with memcg kmem accounting, one obj_cgroup pointer per 4-byte block.
    full = allocs["size"] * bundle.meta["smp"] + allocs["size"] // 4 * 8
    assert (allocs["bytes_alloc"] == full).all()
    live: set[tuple[int, int]] = set()
    for row in events.itertuples():
        key = (row.base_addr, row.off)
        if row.event == "percpu_alloc_percpu":
            assert key not in live, f"offset {row.off} handed out twice (line {row.line})"
            live.add(key)
        elif row.event == "percpu_free_percpu":
            assert key in live, f"free of an offset never allocated (line {row.line})"
            live.remove(key)


def test_ptr_is_the_chunk_address_shifted_by_one_constant(bundle):
    # __addr_to_pcpu_ptr(base_addr + off): the same shift for every chunk and event.
    events = percpu_events(parse_trace(bundle.text("trace")))
    with_ptr = events.dropna(subset=["ptr"])
    shift = {(int(r.base_addr) + int(r.off) - int(r.ptr)) % (1 << 64)
             for r in with_ptr.itertuples()}
    assert len(shift) == 1


def test_dynamic_chunks_are_pcpu_get_vm_areas_in_vmallocinfo(bundle):
    # Every live chunk (created, not destroyed) is one pcpu_get_vm_areas area of
    # nr_units * unit_size bytes starting at its base_addr.
    trace = parse_trace(bundle.text("trace"))
    created = list(trace[trace["event"] == "percpu_create_chunk"]["base_addr"])
    destroyed = list(trace[trace["event"] == "percpu_destroy_chunk"]["base_addr"])
    alive = {int(b) for b in created} - {int(b) for b in destroyed}
    areas = parse_vmallocinfo(bundle.text("vmallocinfo"))
    chunks = areas[areas["function"] == "pcpu_get_vm_areas"]
    assert {int(s) for s in chunks["start"]} == alive
    assert (chunks["size"] == bundle.meta["smp"] * 139264).all()


def test_old_kernel_alloc_event_without_call_site_is_read():
    # v5.x printed no call_site / bytes_alloc / gfp_flags.
    text = ("  swapper/0-1 [000] ....  0.1: percpu_alloc_percpu: reserved=0 is_atomic=0 "
            "size=8 align=8 base_addr=ffff000012340000 off=64 ptr=0000000000001040\n")
    row = parse_trace(text).iloc[0]
    assert pd.isna(row["call_site"]) and pd.isna(row["bytes_alloc"])
    assert (row["size"], row["off"], row["base_addr"]) == (8, 64, 0xFFFF000012340000)


def test_trace_lost_events_and_unknown_events_are_kept():
    text = ("# tracer: nop\nCPU:1 [LOST 12 EVENTS]\n"
            "  bash-10 [001] d..1. 5.5: sched_switch: prev_comm=bash\n")
    trace = parse_trace(text)
    assert trace.attrs["lost_events"] == 12
    assert trace.iloc[0]["message"] == "prev_comm=bash"


def test_a_bad_field_is_an_error_with_its_line():
    text = ("# tracer: nop\n"
            "  a-1 [000] ..... 1.0: percpu_free_percpu: base_addr=zz off=1 ptr=1\n")
    with pytest.raises(CaptureParseError, match="trace line 2"):
        parse_trace(text)


def test_first_chunk_offsets_stay_in_the_areas_the_log_announces(bundle):
    # mm/percpu.c pcpu_setup_first_chunk(): the dynamic first chunk maps dyn_size bytes
    # from base + static + reserved; pcpu_alloc_first_chunk() sets its base_addr to that
    # address's page and start_offset to the rest, so offsets run from
    # (static + reserved) % PAGE_SIZE to that plus dyn_size:
    # "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264" -> 3160 .. 32768.
    info = percpu_first_chunk(parse_dmesg(bundle.text("dmesg")))
    events = percpu_events(parse_trace(bundle.text("trace")))
    allocs = events[events["event"] == "percpu_alloc_percpu"]
    # Only modules' static percpu uses the reserved chunk, and the initramfs loads none.
    assert not (allocs["reserved"] == 1).any()
    first = allocs[allocs["base_addr"] == allocs["base_addr"].iloc[0]]
    start_offset = (info.static_size + info.reserved_size) % 4096
    assert (start_offset, start_offset + info.dyn_size) == (3160, 32768)
    assert (first["off"] + first["size"]).max() == start_offset + info.dyn_size
    # The trace starts after the earliest allocations (made before trace events are
    # enabled): its first offset is above start_offset. A replay must start from there.
    assert first["off"].min() > start_offset


def test_memory_line_reports_the_guest_memory(bundle):
    # dmesg: "Memory: 1833620K/2097152K available (...)" for `-m 2048`
    lines = memory_lines(parse_dmesg(bundle.text("dmesg")))
    memory = lines[lines["message"].str.startswith("Memory: ")]["message"].item()
    total_kib = int(memory.split("/")[1].split("K")[0])
    assert total_kib == bundle.meta["memory_mb"] * 1024


# --- the bundles of Debian's kernel rebuilt with ptdump and percpu_stats ---------------
# debian-6.12.117-ptdump-{a72,max}-smp4: linux-source-6.12 (6.12.117) built with the
# package's config plus CONFIG_PTDUMP_DEBUGFS and CONFIG_PERCPU_STATS (`make capture-ptdump`).

PTDUMP_A72 = CAPTURES / "debian-6.12.117-ptdump-a72-smp4"
PTDUMP_MAX = CAPTURES / "debian-6.12.117-ptdump-max-smp4"


def test_ptdump_markers_of_a_52_bit_kernel_on_48_bit_hardware_equal_the_model():
    # ptdump.txt of debian-6.12.117-ptdump-a72-smp4: the first range after each marker
    # starts at these addresses ("---[ vmalloc() end ]---" then 0xfffffdffbf800000-...).
    real = ptdump_markers(load_bundle(PTDUMP_A72).text("ptdump")).set_index("label")["address"]
    expected = {
        "Linear Mapping start": 0xFFFF000000000000,  # the walk starts at _PAGE_OFFSET(48)
        "vmalloc() end": 0xFFFFFDFFBF800000,
        "vmemmap start": 0xFFFFFDFFC0000000,  # virt_to_page(_PAGE_OFFSET(48))
        "PCI I/O start": 0xFFFFFFFFC0800000,
        "Fixmap start": 0xFFFFFFFFFF427000,  # FIXADDR_TOT_START: 985 fixmap pages
        "Fixmap end": 0xFFFFFFFFFF800000,
    }
    assert {label: real[label] for label in expected} == expected
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=48, kernel="6.12.117"))
    assert layout["vmemmap_start"] == expected["vmemmap start"]
    assert layout["FIXADDR_TOT_START"] == expected["Fixmap start"]


def test_ptdump_markers_of_a_52_bit_kernel_with_lpa2_equal_the_model():
    # ptdump.txt of debian-6.12.117-ptdump-max-smp4 (-cpu max, 52-bit VA).
    real = ptdump_markers(load_bundle(PTDUMP_MAX).text("ptdump")).set_index("label")["address"]
    layout = compute_layout(KernelConfig(va_bits=52, vabits_actual=52, kernel="6.12.117"))
    assert real["Linear Mapping start"] == layout["PAGE_OFFSET"] == 0xFFF0000000000000
    assert real["vmalloc() end"] == layout["VMALLOC_END"] == 0xFFFFC1FFBF800000
    assert real["Fixmap start"] == layout["FIXADDR_TOT_START"] == 0xFFFFFFFFFF427000
    assert list(real.index) == [m.label for m in layout.markers]


@pytest.mark.parametrize("folder", [PTDUMP_A72, PTDUMP_MAX], ids=lambda p: p.name)
def test_ptdump_is_read_whole(folder):
    text = load_bundle(folder).text("ptdump")
    ranges = parse_ptdump(text)
    markers = ptdump_markers(text)
    assert len(ranges) + len(markers) == len(text.splitlines())
    # The ranges tile the walk from its start to the top of the address space.
    assert (ranges["start"].iloc[1:].to_numpy() == ranges["end"].iloc[:-1].to_numpy()).all()
    assert ranges["end"].iloc[-1] == 1 << 64


@pytest.mark.parametrize("folder", [PTDUMP_A72, PTDUMP_MAX], ids=lambda p: p.name)
def test_percpu_stats_agree_with_the_log_and_the_trace(folder):
    # percpu_stats.txt "Allocation Info" and dmesg "pcpu-alloc: s101464 r8192 d29608
    # u139264 alloc=34*4096" describe the same struct pcpu_alloc_info.
    bundle = load_bundle(folder)
    stats = parse_percpu_stats(bundle.text("percpu_stats"))
    info = percpu_stats_section(stats, "Allocation Info")
    log = percpu_first_chunk(parse_dmesg(bundle.text("dmesg")))
    assert info == {"unit_size": log.unit_size, "static_size": log.static_size,
                    "reserved_size": log.reserved_size, "dyn_size": log.dyn_size,
                    "atom_size": log.atom_size, "alloc_size": log.alloc_atoms * log.atom_size}
    glob = percpu_stats_section(stats, "Global Stats")
    assert glob["nr_cur_alloc"] == glob["nr_alloc"] - glob["nr_dealloc"]
    # pcpu_stats.nr_chunks counts the first chunk plus the live dynamic ones.
    trace = parse_trace(bundle.text("trace"))
    created = (trace["event"] == "percpu_create_chunk").sum()
    destroyed = (trace["event"] == "percpu_destroy_chunk").sum()
    assert glob["nr_chunks"] == 1 + created - destroyed
    labels = stats[stats["section"] == "Per Chunk Stats"].drop_duplicates("chunk")["chunk_label"]
    assert list(labels).count("Reserved Chunk") == 1
    assert len(labels) - 1 == glob["nr_chunks"]
    # Every traced allocation is counted; the first ones of the boot precede tracing.
    assert (trace["event"] == "percpu_alloc_percpu").sum() < glob["nr_alloc"]
