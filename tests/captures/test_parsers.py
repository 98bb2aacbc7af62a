"""The capture parsers: on texts in the kernel's own formats and their errors, hypothesis
fuzzing (truncations and garbage lines raise nothing but CaptureParseError), and on the
texts of the shipped bundles."""

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer.captures import (
    TRACE_COLUMNS,
    CaptureParseError,
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
)

from .conftest import MAX4, PTDUMP_A72, PTDUMP_MAX
from .samples import PERCPU_STATS, PTDUMP, VMALLOCINFO

# --- ptdump ----------------------------------------------------------------------------

def test_ptdump_ranges_levels_attributes_and_sections():
    frame = parse_ptdump(PTDUMP)
    assert list(frame["level"]) == ["PUD", "PMD", "PTE", "PUD", "PTE", "PGD"]
    assert list(frame["section"]) == ["Linear Mapping start"] * 3 + [
        "Modules start", "vmalloc() area", "Fixmap end"]
    assert frame.iloc[0]["size"] == 1 << 30 and not frame.iloc[0]["valid"]
    assert frame.iloc[1]["attributes"] == "RW NX SHD AF NG BLK UXN MEM/NORMAL-TAGGED"
    assert frame.iloc[1]["valid"]
    assert frame.iloc[-1]["end"] == 1 << 64  # printed as 0x0000000000000000


def test_ptdump_markers_take_the_address_of_the_next_range():
    markers = ptdump_markers(PTDUMP).set_index("label")["address"]
    assert markers["Linear Mapping end"] == markers["Modules start"] == 0xFFFF800000000000
    assert markers["vmalloc() area"] == 0xFFFF800080000000
    assert markers["Fixmap end"] == 0xFFFFFFFFFF800000


def test_ptdump_size_that_is_not_end_minus_start_is_an_error_with_its_line():
    bad = PTDUMP.replace("          2M PMD", "          4M PMD")
    with pytest.raises(CaptureParseError) as info:
        parse_ptdump(bad)
    assert (info.value.source, info.value.line) == ("ptdump", 3)


def test_ptdump_truncated_last_line_is_dropped():
    cut = PTDUMP[: PTDUMP.rindex("8M PGD") + 2]
    assert len(parse_ptdump(cut)) == len(parse_ptdump(PTDUMP)) - 1


@pytest.mark.parametrize("folder", [PTDUMP_A72, PTDUMP_MAX], ids=lambda p: p.name)
def test_ptdump_is_read_whole(folder):
    text = load_bundle(folder).text("ptdump")
    ranges = parse_ptdump(text)
    markers = ptdump_markers(text)
    assert len(ranges) + len(markers) == len(text.splitlines())
    # The ranges tile the walk from its start to the top of the address space.
    assert (ranges["start"].iloc[1:].to_numpy() == ranges["end"].iloc[:-1].to_numpy()).all()
    assert ranges["end"].iloc[-1] == 1 << 64


# --- vmallocinfo -----------------------------------------------------------------------

def test_vmallocinfo_callers_flags_and_unknown_words():
    frame = parse_vmallocinfo(VMALLOCINFO)
    assert list(frame["function"])[:2] == ["start_kernel", "__ioremap_prot"]
    assert frame.iloc[0]["pages"] == 4 and frame.iloc[0]["nodes"] == ("N0=4",)
    assert frame.iloc[1]["phys"] == 0x8020000 and frame.iloc[1]["flags"] == ("ioremap",)
    assert frame.iloc[2]["flags"] == ("unpurged", "vm_area")
    assert frame.iloc[3]["flags"] == ("vm_map_ram",)
    assert frame.iloc[4]["other"] == ("brand-new-flag",)
    assert frame.iloc[4]["end"] == 0xFFFFC1FFBF800000


def test_vmallocinfo_wrong_size_is_an_error():
    with pytest.raises(CaptureParseError, match="vmallocinfo line 1"):
        parse_vmallocinfo("0xffff800080000000-0xffff800080005000   4096 x+0x0/0x4\n")


def test_dynamic_chunks_are_pcpu_get_vm_areas_in_vmallocinfo(debian_bundle):
    # Every live chunk (created, not destroyed) is one pcpu_get_vm_areas area of
    # nr_units * unit_size bytes starting at its base_addr.
    trace = parse_trace(debian_bundle.text("trace"))
    created = list(trace[trace["event"] == "percpu_create_chunk"]["base_addr"])
    destroyed = list(trace[trace["event"] == "percpu_destroy_chunk"]["base_addr"])
    alive = {int(b) for b in created} - {int(b) for b in destroyed}
    areas = parse_vmallocinfo(debian_bundle.text("vmallocinfo"))
    chunks = areas[areas["function"] == "pcpu_get_vm_areas"]
    assert {int(s) for s in chunks["start"]} == alive
    assert (chunks["size"] == debian_bundle.meta["smp"] * 139264).all()


# --- percpu_stats ----------------------------------------------------------------------

def test_percpu_stats_sections_and_chunks():
    frame = parse_percpu_stats(PERCPU_STATS)
    assert percpu_stats_section(frame, "Allocation Info")["unit_size"] == 139264
    assert percpu_stats_section(frame, "Global Stats")["nr_chunks"] == 3
    chunks = frame[frame["section"] == "Per Chunk Stats"]
    labels = chunks.drop_duplicates("chunk")["chunk_label"].tolist()
    assert labels == ["Reserved Chunk", "First Chunk", "sidelined", ""]
    assert chunks[(chunks["chunk"] == 1) & (chunks["key"] == "free_bytes")]["value"].item() == -12


def test_percpu_stats_garbage_is_an_error_with_its_line():
    with pytest.raises(CaptureParseError) as info:
        parse_percpu_stats(PERCPU_STATS.replace("  nr_chunks ", "nr chunks?"))
    assert info.value.line == 17


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


# --- vmcoreinfo ------------------------------------------------------------------------

def test_vmcoreinfo_kinds_and_numbers():
    frame = parse_vmcoreinfo("OSRELEASE=6.12.117+deb12-arm64\nPAGESIZE=4096\n"
                             "SYMBOL(swapper_pg_dir)=ffffae0c3d2fe000\n"
                             "NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)=-184549376\n"
                             "NUMBER(TCR_EL1_T1SZ)=0xc\nKERNELOFFSET=0\n")
    numbers = dict(zip(frame["key"], frame["number"], strict=True))
    assert numbers["OSRELEASE"] is None and numbers["PAGESIZE"] == 4096
    assert numbers["SYMBOL(swapper_pg_dir)"] == 0xFFFFAE0C3D2FE000
    assert numbers["NUMBER(PAGE_SLAB_MAPCOUNT_VALUE)"] == -184549376
    with pytest.raises(CaptureParseError, match="vmcoreinfo line 2"):
        parse_vmcoreinfo("PAGESIZE=4096\nNUMBER(VA_BITS)=fifty-two\n")


# --- the kernel log --------------------------------------------------------------------

def test_first_chunk_facts_from_the_kernel_log(debian_bundle):
    # dmesg: "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264" and
    # "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096"
    info = percpu_first_chunk(parse_dmesg(debian_bundle.text("dmesg")))
    assert info is not None
    assert (info.kind, info.pages_per_cpu, info.static_size, info.reserved_size,
            info.dyn_size, info.unit_size) == ("Embedded", 34, 101464, 8192, 29608, 139264)
    assert (info.alloc_atoms, info.atom_size) == (34, 4096)
    assert info.groups == (tuple(range(debian_bundle.meta["smp"])),)
    assert info.nr_units == debian_bundle.meta["smp"]


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


def test_memory_line_reports_the_guest_memory(bundle):
    # dmesg: "Memory: 1833620K/2097152K available (...)" for `-m 2048`
    lines = memory_lines(parse_dmesg(bundle.text("dmesg")))
    memory = lines[lines["message"].str.startswith("Memory: ")]["message"].item()
    total_kib = int(memory.split("/")[1].split("K")[0])
    assert total_kib == bundle.meta["memory_mb"] * 1024


# --- the trace -------------------------------------------------------------------------

def test_trace_keeps_every_event_the_buffer_held(debian_bundle):
    trace = parse_trace(debian_bundle.text("trace"))
    assert list(trace.columns) == TRACE_COLUMNS
    assert trace.attrs["lost_events"] == 0
    assert trace.attrs["entries_in_buffer"] == trace.attrs["entries_written"] == len(trace)
    assert trace.attrs["nr_cpus"] == debian_bundle.meta["smp"]
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


def test_first_chunk_offsets_stay_in_the_areas_the_log_announces(debian_bundle):
    # mm/percpu.c pcpu_setup_first_chunk(): the dynamic first chunk maps dyn_size bytes
    # from base + static + reserved; pcpu_alloc_first_chunk() sets its base_addr to that
    # address's page and start_offset to the rest, so offsets run from
    # (static + reserved) % PAGE_SIZE to that plus dyn_size:
    # "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264" -> 3160 .. 32768.
    info = percpu_first_chunk(parse_dmesg(debian_bundle.text("dmesg")))
    events = percpu_events(parse_trace(debian_bundle.text("trace")))
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


# --- fuzzing ---------------------------------------------------------------------------

def _real_sample(source: str, lines: int = 60) -> str:
    text = load_bundle(MAX4).text(source)
    return "\n".join(text.splitlines()[:lines]) + "\n"


SAMPLES = {
    "ptdump": (parse_ptdump, PTDUMP),
    "vmallocinfo": (parse_vmallocinfo, None),
    "vmcoreinfo": (parse_vmcoreinfo, None),
    "percpu_stats": (parse_percpu_stats, PERCPU_STATS),
    "trace": (parse_trace, None),
    "dmesg": (lambda t: percpu_first_chunk(parse_dmesg(t)), None),
}


def _sample(name: str) -> str:
    fixed = SAMPLES[name][1]
    return fixed if fixed is not None else _real_sample(name)


@pytest.mark.parametrize("name", sorted(SAMPLES))
@given(cut=st.integers(min_value=0, max_value=20000),
       garbage=st.lists(st.tuples(st.integers(0, 80), st.text(max_size=40)), max_size=3))
def test_truncations_and_garbage_raise_only_the_parse_error(name, cut, garbage):
    parser = SAMPLES[name][0]
    lines = _sample(name)[:cut].split("\n")
    for position, junk in garbage:
        lines.insert(min(position, len(lines)), junk)
    try:
        parser("\n".join(lines))
    except CaptureParseError as exc:
        assert exc.line >= 1


@pytest.mark.parametrize("name", sorted(SAMPLES))
@given(cut=st.integers(min_value=1, max_value=20000))
def test_a_truncated_real_text_parses(name, cut):
    # A text cut anywhere (a file read while it grew, a console cut short) parses.
    SAMPLES[name][0](_sample(name)[:cut])
