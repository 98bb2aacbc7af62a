"""`percpu-explorer first-chunk` and `alloc-trace`."""

import json

import pytest

from percpu_explorer.cli import main
from percpu_explorer.percpu import PercpuAllocator, build_alloc_info, run_history


def test_first_chunk_prints_the_kernels_boot_lines(cli):
    # Issue 4 / data/captures: a 6.12 kernel with 4K pages, 4 CPUs and 101464 static bytes.
    status, out, _ = cli("first-chunk", "--static-size", "101464", "--nr-cpus", "4")
    assert status == 0
    assert out.splitlines() == [
        "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264",
        "pcpu-alloc: s101464 r8192 d29608 u139264 alloc=34*4096",
        "pcpu-alloc: [0] 0 [0] 1 [0] 2 [0] 3 ",
    ]


def test_first_chunk_json_places_the_chunks(cli):
    status, out, _ = cli("first-chunk", "--static-size", "101464", "--nr-cpus", "4",
                         "--format", "json")
    data = json.loads(out)
    assert status == 0 and data["unit_size"] == 139264
    assert data["unit_offsets"] == {str(c): c * 139264 for c in range(4)}
    # Mainline: the first dynamic chunk ends at VMALLOC_END (0xfffffdffbf800000, 4K/48).
    assert int(data["first_dynamic_chunk"]["base_addr"], 16) + 4 * 139264 == 0xFFFFFDFFBF800000
    status, out, _ = cli("first-chunk", "--static-size", "101464", "--nr-cpus", "4",
                         "--local-percpu", "--format", "json")
    data = json.loads(out)
    # rfc.DEFAULT_PLACEMENT: units end at PERCPU_END (0xfffffc8000000000 at 4K/48).
    assert int(data["first_chunk"]["pcpu_base_addr"], 16) == 0xFFFFFC8000000000 - 4 * 139264
    assert "assumed" in data["first_chunk"]["placement"]


def test_alloc_trace_replays_a_file(cli, tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("op,id,size,align,reserved,atomic\nalloc,1,8,8,0,0\nalloc,2,64,64,0,0\n"
                    "free,1,,,,\n")
    status, out, _ = cli("alloc-trace", str(path), "--nr-cpus", "4", "--format", "json")
    data = json.loads(out)
    assert status == 0 and [d["op"] for d in data["decisions"]] == ["alloc", "alloc", "free"]
    assert data["percpu_stats"]["global"]["nr_alloc"] == 2
    assert data["percpu_stats"]["global"]["nr_dealloc"] == 1
    status, out, _ = cli("alloc-trace", str(path), "--nr-cpus", "4")
    assert "Percpu Memory Statistics" in out and "0xffff" in out


def test_alloc_trace_bad_file_is_one_clear_error(capsys, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("op,id,size\nalloc,1,big\n")
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["alloc-trace", str(path)]))
    err = capsys.readouterr().err
    assert exc.value.code == 2 and f"{path}:2:3: size 'big' is not a number" in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("size", "message"), [
    # size_t: pcpu_alloc(size_t size, size_t align, ...) in mm/percpu.c.
    ("99999999999999999999", "size '99999999999999999999' is out of range (a size_t: 0 to "
                             "2**64 - 1)"),
    ("-5", "size '-5' is out of range (a size_t: 0 to 2**64 - 1)"),
])
def test_alloc_trace_sizes_beyond_size_t_name_file_line_and_column(cli, tmp_path, size,
                                                                    message):
    path = tmp_path / "h.csv"
    path.write_text(f"op,id,size,align,reserved,atomic\nalloc,1,8,8,0,0\nalloc,2,{size},8,0,0\n")
    status, out, err = cli("alloc-trace", str(path))
    assert status == 2 and out == "" and err.count("\n") == 1
    assert f"{path}:3:3: {message}" in err


def test_alloc_trace_request_the_kernel_refuses_is_a_decision_not_an_error(cli, tmp_path):
    # pcpu_alloc(): size > PCPU_MIN_UNIT_SIZE (PFN_ALIGN(32K) = 32768 with 4K pages) or an
    # align that is not a power of two WARNs and returns NULL: a row with its error.
    path = tmp_path / "h.csv"
    path.write_text("op,id,size,align\nalloc,1,32769,8\nalloc,2,8,24\nalloc,3,32768,4096\n")
    status, out, _ = cli("alloc-trace", str(path), "--nr-cpus", "4", "--format", "json")
    rows = json.loads(out)["decisions"]
    assert status == 0
    assert "illegal size (32772)" in rows[0]["error"] and "illegal" in rows[1]["error"]
    assert rows[2].get("error") is None and rows[2]["size"] == 32768


def test_first_chunk_sizes_take_the_one_size_syntax(cli):
    # --static-size 4k is the same as 4096 (issue 13: one size syntax everywhere).
    assert cli("first-chunk", "--static-size", "4k", "--nr-cpus", "4")[1] == \
        cli("first-chunk", "--static-size", "4096", "--nr-cpus", "4")[1]
    status, out, _ = cli("first-chunk", "--static-size", "101464", "--nr-cpus", "4",
                         "--reserved-size", "8K", "--dyn-size", "28K")
    # Debian 6.12's boot line (data/captures): s101464 r8192 d29608 u139264.
    assert status == 0 and out.splitlines()[0] == \
        "percpu: Embedded 34 pages/cpu s101464 r8192 d29608 u139264"


def test_ops_core_file_holding_a_json_list_is_one_line(cli, tmp_path):
    path = tmp_path / "core.json"
    path.write_text("[1, 2]")
    status, _, err = cli("ops", "--core", str(path))
    assert status == 2 and err.count("\n") == 1
    assert f"argument --core: {path}: a core profile is an object" in err and "not list" in err


def test_replay_keeps_64_bit_addresses_exact():
    # A free row leaves ptr empty; the column must stay exact integers, not floats.
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4))
    out = run_history(alloc, [{"op": "alloc", "id": 1, "size": 8, "align": 8},
                         {"op": "alloc", "id": 2, "size": 8, "align": 8},
                         {"op": "free", "id": 1}])
    assert int(out["ptr"][1]) - int(out["ptr"][0]) == 8
    assert int(out["ptr"][1]) in alloc.live
