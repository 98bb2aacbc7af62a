"""The model held against the shipped captures: every layout value, the first chunk, the
RFC layout of the same configuration; a disagreement shows both values; and every text is
parsed once per comparison."""

import pytest

from percpu_explorer.captures import (
    CaptureBundle,
    ParsedCapture,
    compare,
    first_chunk_comparison,
    first_dynamic_chunk_end,
    layout_comparison,
    load_bundle,
    parse_ptdump,
    parse_vmcoreinfo,
    ptdump_markers,
    vmcoreinfo_numbers,
)
from percpu_explorer.kernel import KernelConfig, compute_layout, fmt_addr, pgtable_geometry

from .conftest import A72, BUNDLES, MAX4, PTDUMP_A72, PTDUMP_MAX

WITH_PTDUMP = [p for p in BUNDLES if (p / "ptdump.txt").is_file()]

# --- the model against each bundle: every value the capture shows ----------------------

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


def test_rfc_layout_does_not_fit_debians_configuration(debian_bundle):
    # series.md: 4K/52 cannot hold the two 2 * PGDIR_SIZE areas (one PGD entry is 256T).
    result = compare(debian_bundle)
    assert result.rfc_layout is not None
    assert "vmalloc-empty" in {p.code for p in result.rfc_layout.problems}


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


@pytest.mark.parametrize("path", WITH_PTDUMP, ids=lambda p: p.name)
def test_ptdump_levels_are_the_models_page_table_levels(path):
    # The walk (mm/pagewalk.c) reports a hole of a level folded at build time
    # (asm-generic pgtable-nop*d.h) at the level it folds into, and arm64's note_page()
    # names a level folded at run time (mm_p4d_folded/mm_pud_folded) "PGD": each range
    # is named after a level the hardware walks. A range starts and ends where an entry of
    # its level does. 64K/42: two levels, "PGD" entries of 512M (PGDIR_SHIFT 29) and "PTE"
    # entries of 64K; 4K/52 with LPA2: five, PGD 256T, P4D 512G, PUD 1G, PMD 2M, PTE 4K.
    capture = ParsedCapture(load_bundle(path))
    span = {level.name: level.entry_span for level in pgtable_geometry(capture.config).levels}
    ranges = parse_ptdump(capture.bundle.text("ptdump"))
    assert set(ranges["level"]) == set(span)
    for start, end, level in zip(ranges["start"], ranges["end"], ranges["level"], strict=True):
        assert start % span[level] == 0 and end % span[level] == 0, (hex(start), level)


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


# --- every text is parsed once ---------------------------------------------------------

def _count_calls(monkeypatch, names):
    """Wrap each named function where the captures modules look it up; count the calls."""
    from percpu_explorer.captures import bundle, comparison, parsers

    counts = dict.fromkeys(names, 0)

    def counting(name, real):
        def counted(*args, **kwargs):
            counts[name] += 1
            return real(*args, **kwargs)
        return counted

    for name in names:
        for module in (bundle, comparison, parsers):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, counting(name, getattr(module, name)))
    return counts


PARSING = ("parse_vmcoreinfo", "vmcoreinfo_numbers", "parse_ptdump", "ptdump_markers",
           "parse_dmesg", "percpu_first_chunk", "parse_trace", "percpu_events",
           "parse_percpu_stats", "derive_config")


def test_compare_parses_each_text_once_and_derives_the_config_once(monkeypatch):
    # The rebuilt kernel's bundle has every text the comparison reads.
    bundle = load_bundle(PTDUMP_A72)
    assert {"vmcoreinfo", "ptdump", "dmesg", "trace", "percpu_stats"} <= set(bundle.texts)
    counts = _count_calls(monkeypatch, PARSING)
    result = compare(bundle)
    assert counts == dict.fromkeys(PARSING, 1)
    # ... and it is the whole comparison: layout, first chunk, replay and percpu_stats.
    assert result.disagreements.empty and result.first_chunk_rows["match"].all()
    assert result.replay is not None and result.stats_rows is not None


def test_a_parsed_capture_is_compared_without_parsing_again(monkeypatch):
    capture = ParsedCapture.of(load_bundle(A72))
    assert ParsedCapture.of(capture) is capture
    before = compare(capture)
    counts = _count_calls(monkeypatch, PARSING)
    again = compare(capture)
    assert layout_comparison(capture).equals(before.layout_rows)
    assert first_chunk_comparison(capture).equals(before.first_chunk_rows)
    assert first_dynamic_chunk_end(capture) == 0xFFFFFDFFBF800000
    assert counts == dict.fromkeys(PARSING, 0)
    assert again.config == before.config and again.layout_rows.equals(before.layout_rows)


def test_a_parsed_capture_reads_only_the_texts_asked_for(monkeypatch):
    # The first dynamic chunk's end needs the log and the trace: neither the config facts
    # nor VMCOREINFO are read for it.
    counts = _count_calls(monkeypatch, PARSING)
    bundle = load_bundle(A72)
    assert first_dynamic_chunk_end(CaptureBundle(meta={}, texts=bundle.texts)) == (
        0xFFFFFDFFBF800000)
    assert counts["parse_vmcoreinfo"] == counts["derive_config"] == 0
    assert counts["parse_dmesg"] == counts["parse_trace"] == 1
