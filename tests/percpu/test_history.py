"""Request histories: the CSV format, its validation and running one."""

import pandas as pd
import pytest

from percpu_explorer.percpu.allocator import PercpuAllocator
from percpu_explorer.percpu.first_chunk import build_alloc_info
from percpu_explorer.percpu.history import read_requests, run_history, validate_requests


def test_request_files_are_validated_line_by_line(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("op,id,size,align,reserved,atomic\n"
                    "alloc,1,8,8,0,0\n"
                    "alloc,2,eight,8,0,0\n"
                    "grab,3,8,8,0,0\n"
                    "alloc,4,8,8,maybe,0\n"
                    "free,1,,,,\n")
    with pytest.raises(ValueError) as exc:
        read_requests(str(path))
    # One line for the command line (the first problem and how many follow); every
    # problem as FILE:LINE:COLUMN in `problems`.
    assert "\n" not in str(exc.value)
    assert str(exc.value).startswith(f"{path}:3:3: size 'eight' is not a number")
    assert "2 more problems" in str(exc.value)
    assert exc.value.problems == [
        f"{path}:3:3: size 'eight' is not a number (a size_t: 0 to 2**64 - 1)",
        f"{path}:4:1: op 'grab' is not alloc or free",
        f"{path}:5:5: reserved 'maybe' is not 0/1/true/false",
    ]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['id'\]"):
        validate_requests(pd.DataFrame({"op": ["alloc"]}))


def test_replay_records_every_decision():
    alloc = PercpuAllocator(build_alloc_info(101464, nr_cpus=2))
    out = run_history(alloc, [
        {"op": "alloc", "id": 1, "size": 8, "align": 8},
        {"op": "alloc", "id": 2, "size": 30000, "align": 4096},  # does not fit: new chunk
        {"op": "free", "id": 1},
        {"op": "free", "id": 7},
    ])
    assert list(out["op"]) == ["alloc", "alloc", "free", "free"]
    assert out.loc[0, "chunk_id"] == alloc.first_chunk.id
    assert out.loc[1, "chunks_created"] >= 1 and out.loc[1, "pages_populated"] >= 8
    assert out.loc[2, "size"] == 8
    assert out.loc[3, "error"] == "free of id 7, which is not allocated"
