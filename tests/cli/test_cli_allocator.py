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
    assert exc.value.code == 2 and f"{path}:2: size 'big' is not a number" in err


def test_replay_keeps_64_bit_addresses_exact():
    # A free row leaves ptr empty; the column must stay exact integers, not floats.
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=4))
    out = run_history(alloc, [{"op": "alloc", "id": 1, "size": 8, "align": 8},
                         {"op": "alloc", "id": 2, "size": 8, "align": 8},
                         {"op": "free", "id": 1}])
    assert int(out["ptr"][1]) - int(out["ptr"][0]) == 8
    assert int(out["ptr"][1]) in alloc.live
