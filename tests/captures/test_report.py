"""The comparison as the command line prints it."""

import json

from percpu_explorer.captures import compare, format_comparison, format_value, load_bundle
from percpu_explorer.cli import main

from .conftest import MAX4, PTDUMP_A72


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


def test_report_of_a_bundle_with_every_text():
    # The rebuilt kernel's bundle: vmcoreinfo and ptdump markers, the first chunk, the
    # replayed trace (3460 allocations, 3067 frees) and percpu_stats.
    text = format_comparison(compare(load_bundle(PTDUMP_A72)))
    assert "22 of 22 values agree." in text
    assert "10 of 10 fields and lines agree." in text
    assert ("Allocator replay: 3460 of 3460 allocations and 3067 of 3067 frees" in text
            and "every decision agrees." in text)
    assert "percpu_stats after the replay: 35 of 42 fields agree" in text
    assert "  global nr_alloc: model 3460, real 3571" in text
    assert "RFC patch 02/11 on this configuration: BROKEN:" in text


def test_values_print_as_addresses_or_small_numbers():
    assert (format_value(None), format_value(4096)) == ("-", "4096")
    assert format_value(0xFFFF000000000000) == "0xffff000000000000"


def test_cli_compare_json_carries_every_result_not_only_the_layout(capsys):
    # The rebuilt kernel's bundle (debian-6.12.117-ptdump-a72-smp4): its trace has 3460
    # percpu_alloc_percpu and 3067 percpu_free_percpu events, its dmesg the `percpu:` and
    # `pcpu-alloc:` lines, and debugfs percpu_stats; the JSON holds the same results as the
    # text report above.
    assert main(["compare", str(PTDUMP_A72), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["bundle"] == PTDUMP_A72.name and data["config"]["kernel"] == "6.12.117"
    assert (data["layout"]["agreed"], data["layout"]["total"]) == (22, 22)
    assert data["layout"]["rows"][0].keys() >= {"source", "item", "model", "real", "match"}
    first = data["first_chunk"]
    assert first["log"]["kind"] == "Embedded" and first["log"]["nr_cpus"] == 4
    assert (first["model"]["agreed"], first["model"]["total"]) == (10, 10)
    assert data["events"]["percpu_alloc_percpu"] == 3460
    replay = data["replay"]
    assert (replay["allocs"], replay["allocs_matched"]) == (3460, 3460)
    assert (replay["frees"], replay["frees_matched"]) == (3067, 3067)
    assert replay["all_matched"] is True and replay["disagreements"] == []
    assert replay["chunks_created"]["model"] == replay["chunks_created"]["kernel"]
    assert replay["assumptions"]
    stats = data["stats"]
    assert (stats["agreed"], stats["total"]) == (35, 42)
    nr_alloc = next(r for r in stats["rows"] if r["section"] == "global"
                    and r["key"] == "nr_alloc")
    assert (nr_alloc["model"], nr_alloc["real"]) == (3460, 3571)
    assert data["rfc"]["sane"] is False and data["rfc"]["problems"]


def test_compare_json_of_a_bundle_without_percpu_stats_says_null(capsys):
    assert main(["compare", str(MAX4), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["stats"] is None and data["replay"]["all_matched"] is True
