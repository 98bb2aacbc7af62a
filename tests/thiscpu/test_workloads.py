"""Workload files: the format, validation messages (file, line, column) and generators."""

import pandas as pd
import pytest

from percpu_explorer.thiscpu.workloads import (
    PATTERNS,
    WorkloadError,
    generate,
    mix,
    read_workload,
    synthetic,
    validate_workload,
    write_workload,
)

from ..conftest import DATA

WORKLOADS = DATA / "workloads"
HEADER = "time,cpu,task,op,size,variable,value\n"


def write(tmp_path, text, name="w.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_every_example_file_validates():
    files = sorted(WORKLOADS.glob("*.csv")) + sorted(WORKLOADS.glob("*.parquet"))
    assert len(files) >= 6
    for path in files:
        frame = read_workload(path)
        assert len(frame) > 0 and frame["op"].notna().all()


def test_tiny_example_reads_typed():
    w = read_workload(WORKLOADS / "tiny.csv", nr_cpus=2)
    assert len(w) == 12
    assert w["value"].tolist()[4] == 0x0F  # hex accepted
    assert w["flavour"].astype(str).tolist()[10:] == ["__this_cpu", "__this_cpu"]
    assert w["flavour"].astype(str).tolist()[0] == "this_cpu"  # empty -> default
    assert w["old"].tolist()[5] == 100 and pd.isna(w["old"].tolist()[0])


def test_one_message_per_problem_with_line_and_column(tmp_path):
    path = write(tmp_path, HEADER
                 + "0,0,1,add,8,v,1\n"        # line 2: fine
                 + "1,0,1,mul,8,v,1\n"        # line 3: unknown op (column 4)
                 + "2,0,1,add,16,v,1\n"       # line 4: size not allowed for add (column 5)
                 + "3,9,1,add,8,v,1\n"        # line 5: CPU out of range (column 2)
                 + "4,0,1,add,8,v,lots\n")    # line 6: non-numeric value (column 7)
    with pytest.raises(WorkloadError) as err:
        read_workload(path, nr_cpus=4)
    problems = err.value.problems
    assert problems == [
        f"{path}:3:4: column 'op': unknown op 'mul' (valid: read, write, add, sub, inc, dec, "
        "and, or, add_return, xchg, cmpxchg, try_cmpxchg, cmpxchg128)",
        f"{path}:4:5: column 'size': size 16 is not allowed for op 'add' (valid: 1, 2, 4, 8)",
        f"{path}:5:2: column 'cpu': CPU 9 is out of range (valid: 0..3)",
        f"{path}:6:7: column 'value': 'lots' is not an integer",
    ]
    assert "nothing was replayed" in str(err.value)


def test_missing_column_is_reported(tmp_path):
    path = write(tmp_path, "time,cpu,task,op,size,value\n0,0,1,add,8,1\n")
    with pytest.raises(WorkloadError, match=r"w\.csv:1: missing column 'variable'"):
        read_workload(path)


def test_unknown_flavour_and_negative_time(tmp_path):
    path = write(tmp_path, "time,cpu,task,op,size,variable,value,flavour\n"
                 "-1,0,1,add,8,v,1,this_cpu\n0,0,1,add,8,v,1,that_cpu\n")
    with pytest.raises(WorkloadError) as err:
        read_workload(path)
    assert [p.split(": ", 1)[0] for p in err.value.problems] == [f"{path}:2:1", f"{path}:3:8"]


def test_time_going_backwards_on_one_cpu(tmp_path):
    path = write(tmp_path, HEADER + "5,0,1,add,8,v,1\n3,1,1,add,8,v,1\n4,0,1,add,8,v,1\n")
    with pytest.raises(WorkloadError, match=r":4:1: column 'time': 4 goes back in time on CPU 0"):
        read_workload(path)


def test_parquet_problems_use_the_same_line_numbers(tmp_path):
    frame = pd.DataFrame({"time": [0, 1], "cpu": [0, 0], "task": [1, 1], "op": ["add", "dec"],
                          "size": [8, 3], "variable": ["v", "v"], "value": [1, 1]})
    path = tmp_path / "w.parquet"
    frame.to_parquet(path)
    with pytest.raises(WorkloadError, match=r"w\.parquet:3:5: column 'size': size 3"):
        read_workload(path)


def test_unreadable_file_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="no such workload file"):
        read_workload(tmp_path / "nope.csv")


@pytest.mark.parametrize("name", sorted(PATTERNS))
def test_generators_are_seeded_valid_and_documented(name):
    a = generate(name, 50, nr_cpus=3, seed=7)
    assert a.equals(generate(name, 50, nr_cpus=3, seed=7))
    assert not a.equals(generate(name, 50, nr_cpus=3, seed=8))
    validate_workload(a, nr_cpus=3)
    pattern = PATTERNS[name]
    assert pattern.description and pattern.source
    every = [op.every for op in pattern.unit]
    assert len(a) >= 50 * sum(1 for e in every if e == 1)


def test_percpu_counter_generator_follows_the_batch():
    # lib/percpu_counter.c: count moves 0..31 by try_cmpxchg, then __this_cpu_sub(32)
    w = generate("percpu-counter", 64, nr_cpus=1, seed=0)
    cas = w[w["op"] == "try_cmpxchg"]
    assert cas["old"].tolist()[:3] == [0, 1, 2] and cas["value"].tolist()[31] == 32
    subs = w[w["op"] == "sub"]
    assert len(subs) == 2 and (subs["value"] == 32).all()
    assert (subs["flavour"].astype(str) == "__this_cpu").all()


def test_unknown_pattern():
    with pytest.raises(ValueError, match="pattern 'foo' is unknown; choose one of vm-events"):
        generate("foo", 1)


def test_round_trip_csv_and_parquet(tmp_path):
    w = mix({"percpu-ref": 20, "percpu-counter": 20}, nr_cpus=2, seed=3)
    for name in ("w.csv", "w.parquet"):
        back = read_workload(write_workload(w, tmp_path / name))
        assert back["value"].tolist() == w["value"].tolist()
        assert back["op"].astype(str).tolist() == w["op"].astype(str).tolist()


def test_synthetic_has_only_valid_op_sizes():
    validate_workload(synthetic(2000, nr_cpus=8, seed=1), nr_cpus=8)


def test_example_files_are_what_the_generators_make():
    # data/workloads/README.md names the call behind each file
    for name in ("vm-events", "percpu-counter", "percpu-ref", "slub-fastpath", "net-stats"):
        made = validate_workload(generate(name, 100, nr_cpus=4, seed=1))
        stored = read_workload(WORKLOADS / f"{name}.csv")
        for col in ("time", "cpu", "task", "size", "value"):
            assert stored[col].tolist() == made[col].tolist(), (name, col)
        assert stored["op"].astype(str).tolist() == made["op"].astype(str).tolist()
    mixed = mix({"vm-events": 300, "percpu-ref": 300, "slub-fastpath": 200,
                 "percpu-counter": 200, "net-stats": 200}, nr_cpus=8, seed=1)
    assert read_workload(WORKLOADS / "mix.parquet")["value"].tolist() == mixed["value"].tolist()


def test_count_column_validates_and_defaults_to_one(tmp_path):
    path = write(tmp_path, HEADER.rstrip("\n") + ",count\n"
                 "0,0,0,add,8,a,1,5\n0,0,0,read,4,b,0,\n")
    w = read_workload(path)
    assert w["count"].tolist() == [5, 1]  # an empty count is one execution
    bad = write(tmp_path, HEADER.rstrip("\n") + ",count\n0,0,0,add,8,a,1,0\n"
                "0,0,0,add,8,a,1,x\n", name="bad.csv")
    with pytest.raises(WorkloadError) as err:
        read_workload(bad)
    assert err.value.problems == [
        f"{bad}:2:8: column 'count': 0 is out of range (valid: 1..{2**63 - 1})",
        f"{bad}:3:8: column 'count': 'x' is not an integer"]
