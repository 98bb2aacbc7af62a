# ruff: noqa: E501  (the samples keep the kernel's own line lengths)
"""The capture parsers on texts in the kernel's own formats, their errors, hypothesis
fuzzing (truncations and garbage lines raise nothing but CaptureParseError), bundle
round trips, and the pieces of the QEMU procedure that need no boot."""

import gzip

import pytest
from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer.captures.bundle import (
    CaptureBundle,
    CaptureParseError,
    config_facts,
    kernel_version_from_release,
    layout_comparison,
    load_bundle,
    parse_dmesg,
    parse_percpu_stats,
    parse_ptdump,
    parse_trace,
    parse_vmallocinfo,
    parse_vmcoreinfo,
    percpu_first_chunk,
    percpu_stats_section,
    preemption_model,
    ptdump_markers,
    save_bundle,
)
from percpu_explorer.captures.qemu import (
    DONE,
    PERCPU_EVENTS,
    QemuPlan,
    build_initramfs,
    init_script,
    qemu_command,
    split_console,
)
from percpu_explorer.cli import main

from ..conftest import DATA

MAX4 = DATA / "captures" / "debian-6.12.117-max-smp4"

# Lines in the format of arch/arm64/mm/ptdump.c note_page(): "0x%016lx-0x%016lx   ",
# "%9lu%c %s" (size, unit, level) and " %s" per attribute; markers "---[ %s ]---".
PTDUMP = """\
---[ Linear Mapping start ]---
0xffff000000000000-0xffff000040000000           1G PUD
0xffff000040000000-0xffff000040200000           2M PMD       RW NX SHD AF NG         BLK UXN    MEM/NORMAL-TAGGED
0xffff000040200000-0xffff000040210000          64K PTE       ro NX SHD AF NG    CON     UXN    MEM/NORMAL
---[ Linear Mapping end ]---
---[ Modules start ]---
0xffff800000000000-0xffff800080000000           2G PUD
---[ Modules end ]---
---[ vmalloc() area ]---
0xffff800080000000-0xffff800080005000          20K PTE       RW NX SHD AF NG             UXN    MEM/NORMAL
---[ Fixmap end ]---
0xffffffffff800000-0x0000000000000000           8M PGD
"""

PERCPU_STATS = """\
Percpu Memory Statistics
Allocation Info:
----------------------------------------
  unit_size           :       139264
  static_size         :       101464
  reserved_size       :         8192
  dyn_size            :        29608
  atom_size           :         4096
  alloc_size          :       139264

Global Stats:
----------------------------------------
  nr_alloc            :         3460
  nr_dealloc          :         3067
  nr_cur_alloc        :          393
  nr_max_alloc        :         1500
  nr_chunks           :            3
  nr_max_chunks       :            4
  min_alloc_size      :            4
  max_alloc_size      :         4096
  empty_pop_pages     :            5

Per Chunk Stats:
----------------------------------------
Chunk: <- Reserved Chunk
  nr_alloc            :            2
  max_alloc_size      :           64
  empty_pop_pages     :            0
  first_bit           :            8
  free_bytes          :         8064
  contig_bytes        :         8064
  sum_frag            :            0
  max_frag            :            0
  cur_min_alloc       :           64
  cur_med_alloc       :           64
  cur_max_alloc       :           64

Chunk: <- First Chunk
  nr_alloc            :          300
  free_bytes          :          -12

Chunk (sidelined):
  nr_alloc            :            1

Chunk:
  nr_alloc            :            7
"""

VMALLOCINFO = """\
0xffff800080000000-0xffff800080005000   20480 start_kernel+0x364/0x820 pages=4 vmalloc N0=4
0xffff800080005000-0xffff800080007000    8192 __ioremap_prot+0x70/0xb8 phys=0x0000000008020000 ioremap
0xffff800080008000-0xffff80008000c000   16384 unpurged vm_area
0xffff80008000c000-0xffff80008000e000    8192 vm_map_ram
0xffffc1ffbf778000-0xffffc1ffbf800000  557056 pcpu_get_vm_areas+0x0/0x1120 vmalloc brand-new-flag
"""


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


# --- vmcoreinfo, config, versions ------------------------------------------------------

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


def test_config_facts_and_versions():
    facts = config_facts("CONFIG_ARM64_VA_BITS=52\n# CONFIG_PTDUMP_DEBUGFS is not set\n"
                         "CONFIG_PREEMPT_VOLUNTARY=y\nCONFIG_LOCALVERSION=\"-x\"\n")
    assert facts["CONFIG_ARM64_VA_BITS"] == "52" and facts["CONFIG_PTDUMP_DEBUGFS"] is None
    assert facts["CONFIG_LOCALVERSION"] == "-x"
    assert preemption_model(facts) == "PREEMPT_VOLUNTARY (no preempt count)"
    assert kernel_version_from_release("6.12.117+deb12-arm64") == "6.12.117"
    assert kernel_version_from_release("6.8.0-rc3") == "6.8.0"


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


# --- bundles ---------------------------------------------------------------------------

def test_bundle_round_trip_gzips_large_texts(tmp_path):
    bundle = CaptureBundle(meta={"kernel_release": "6.12.117"},
                           texts={"dmesg": "small\n", "trace": "x" * 100_000})
    folder = save_bundle(bundle, tmp_path / "b")
    assert (folder / "trace.txt.gz").is_file() and (folder / "dmesg.txt").is_file()
    again = load_bundle(folder)
    assert again.texts == bundle.texts and again.name == "b"
    with pytest.raises(KeyError, match="ptdump"):
        again.text("ptdump")


# --- the comparison shows both values of a disagreement --------------------------------

def test_a_wrong_ptdump_marker_is_reported_with_both_values():
    real = load_bundle(MAX4)
    # A made-up ptdump whose "vmalloc() end" is one page off the model's 0xffffc1ffbf800000.
    fake = ("---[ vmalloc() area ]---\n"
            "0xffff800080000000-0xffffc1ffbf801000 70863806468K PTE\n"
            "---[ vmalloc() end ]---\n"
            "0xffffc1ffbf801000-0xffffc1ffc0000000       8188K PTE\n")
    bundle = CaptureBundle(meta=real.meta, texts={"ptdump": fake})
    rows = layout_comparison(bundle).set_index("item")
    assert rows.loc["vmalloc() area", "match"]
    wrong = rows.loc["vmalloc() end"]
    assert (wrong["model"], wrong["real"], wrong["match"]) == (
        0xFFFFC1FFBF800000, 0xFFFFC1FFBF801000, False)
    assert rows.loc["Fixmap start", "note"] == "marker absent from the capture"


# --- the QEMU procedure without a boot -------------------------------------------------

def test_init_script_prints_every_source_and_powers_off():
    script = init_script(cgroups=5)
    for source in ("vmcoreinfo", "vmallocinfo", "ptdump", "percpu_stats", "trace", "dmesg"):
        assert f"begin {source}@@@" in script
    assert "seq 1 5" in script and script.rstrip().endswith("poweroff -f")


def test_qemu_command_names_cpu_smp_and_kernel_parameters(tmp_path):
    plan = QemuPlan(cpu="cortex-a72", smp=8, kaslr=False)
    cmd = qemu_command(plan, tmp_path / "Image", tmp_path / "initrd")
    assert cmd[:4] == ["qemu-system-aarch64", "-M", "virt", "-cpu"]
    assert cmd[cmd.index("-smp") + 1] == "8"
    append = cmd[cmd.index("-append") + 1]
    assert "no_hash_pointers" in append and "nokaslr" in append
    assert "trace_event=" + ",".join(PERCPU_EVENTS) in append


def test_initramfs_is_a_newc_cpio_with_init_and_console(tmp_path):
    busybox = tmp_path / "busybox"
    busybox.write_bytes(b"\x7fELF fake")
    blob = gzip.decompress(build_initramfs(busybox, "#!/bin/sh\n", tmp_path / "i").read_bytes())
    names, offset = [], 0
    while True:
        header = blob[offset:offset + 110]
        assert header[:6] == b"070701"
        size, namesize = int(header[54:62], 16), int(header[94:102], 16)
        name = blob[offset + 110:offset + 110 + namesize - 1].decode()
        if name == "TRAILER!!!":
            break
        names.append(name)
        offset += 110 + namesize
        offset += -offset % 4 + size
        offset += -offset % 4
    assert {"init", "bin/busybox", "dev/console"} <= set(names)


def test_split_console_keeps_successful_sections_only():
    console = ("boot noise\n@@@percpu-explorer begin vmcoreinfo@@@\nPAGESIZE=4096\n"
               "@@@percpu-explorer end vmcoreinfo rc=0@@@\n"
               "@@@percpu-explorer begin ptdump@@@\ncat: can't open\n"
               "@@@percpu-explorer end ptdump rc=1@@@\n" + DONE + "\n")
    assert split_console(console) == {"vmcoreinfo": "PAGESIZE=4096\n"}


# --- command line ----------------------------------------------------------------------

def test_cli_compare_prints_agreement(capsys):
    assert main(["compare", str(MAX4)]) == 0
    out = capsys.readouterr().out
    # vmcoreinfo.txt: NUMBER(VMALLOC_END)=0xffffc1ffbf800000
    assert "VMALLOC_END                     0xffffc1ffbf800000  0xffffc1ffbf800000  yes" in out
    assert "10 of 10 values agree." in out


def test_cli_compare_csv_has_one_row_per_value(capsys):
    assert main(["compare", str(MAX4), "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "source,item,model,real,match,note" and len(lines) == 11


def test_cli_capture_needs_a_source(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["capture", "--out", "x"])
    assert exit_info.value.code == 2


def test_capture_local_reads_what_exists_and_says_what_is_absent(monkeypatch, tmp_path):
    from percpu_explorer.captures import qemu

    (tmp_path / "vmallocinfo").write_text(VMALLOCINFO)
    files = {name: str(tmp_path / name) for name in qemu._LOCAL_FILES}
    monkeypatch.setattr(qemu, "_LOCAL_FILES", files)
    monkeypatch.setattr(qemu.platform, "machine", lambda: "aarch64")

    def no_kcore():
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(qemu, "_read_kcore_notes", no_kcore)
    monkeypatch.setattr(qemu, "_run", lambda cmd, what, **kw: "[    0.0] hello\n")
    said = []
    bundle = qemu.capture_local(progress=said.append)
    assert bundle.texts["vmallocinfo"] == VMALLOCINFO
    assert "ptdump" in bundle.meta["absent"] and "vmcoreinfo" in bundle.meta["absent"]
    assert bundle.meta["absent_reasons"]["vmcoreinfo"] == "/proc/kcore: Operation not permitted"
    assert any(line.startswith("skipped ptdump") for line in said)


def test_capture_local_refuses_a_non_arm64_machine(monkeypatch):
    from percpu_explorer.captures import qemu

    monkeypatch.setattr(qemu.platform, "machine", lambda: "x86_64")
    with pytest.raises(qemu.CaptureError, match="use --qemu"):
        qemu.capture_local()
