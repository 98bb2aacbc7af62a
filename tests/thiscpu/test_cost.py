"""Cost replay totals on hand-checked workloads, semantic replay through the allocator and
page-table models, and the reviewer's view arithmetic."""

import json

import numpy as np
import pandas as pd
import pytest

from percpu_explorer.cli import main
from percpu_explorer.errors import InputError
from percpu_explorer.thiscpu.cost import price_workload, resolve_workload, reviewer_view
from percpu_explorer.thiscpu.ops import LocalScheme
from percpu_explorer.thiscpu.workloads import (
    generate,
    mix,
    read_workload,
    synthetic,
    validate_workload,
)

from ..conftest import DATA

TINY = DATA / "workloads" / "tiny.csv"


def test_tiny_cost_totals_hand_checked_preempt_none():
    # Neoverse N1 profile, no preempt count (bracket = barrier()), kernel 6.19 (the last
    # release with PREEMPT_NONE, ldadd since 6.18):
    # today: 2 add + 1 or at (mrs 2 + add 1 + ld<op> 8 + 3 nops 0.75) = 3 x 11.75, inc and
    #   sub one more (mov #1 / neg) 2 x 12.75, write mrs+str 3, 2 cmpxchg (mrs 2 + add 1 +
    #   nop 0.25 + cas 10) = 26.5, swp 11.75, read mrs+ldr 6, 2 __this_cpu (mrs, ldr, add,
    #   str with register-offset addressing = 8) = 16  -> 124
    # local (adrp 1 + ldr 4 [+ add 1]): 3 x 14.75 + 2 x 15.75 + write 6 + 2 x 16.25 + 14.75
    #   + read 9 + the 2 __this_cpu ops unchanged 16 -> 154
    w = read_workload(TINY)
    r = price_workload(w, "neoverse-n1", preempt="none", kernel="6.19")
    totals = r.totals.set_index("variant")["cycles"]
    assert totals["today-lse"] == pytest.approx(124)
    assert totals["local-lse"] == pytest.approx(154)
    assert r.saving_per_op() == pytest.approx(-30 / 12)
    assert r.per_cpu.set_index("cpu")["today-lse"].tolist() == pytest.approx([60, 64])
    by_var = r.per_variable.set_index("variable")["today-lse"]
    assert by_var["c"] == pytest.approx(16)
    # a link-time constant offset (mov + add) makes the local scheme cheaper again
    const = price_workload(w, "neoverse-n1", preempt="none", kernel="6.19",
                           local=LocalScheme(offset="constant"))
    assert const.totals.set_index("variant")["cycles"]["local-lse"] == pytest.approx(
        3 * 10.75 + 2 * 11.75 + 2 + 2 * 12.25 + 10.75 + 5 + 16)



def test_cost_table_is_kept_per_settings_and_an_edited_core_reprices():
    """An explorer prices the same settings again for each workload: the table is kept
    (read-only); a core profile edited under the same name is priced anew (the tiny
    workload's today-lse total above, with mrs tpidr_el1 at 4 cycles instead of 2: the
    12 this_cpu ops that read the offset add 2 cycles each, 124 + 24 = 148)."""
    from percpu_explorer.thiscpu.cost import CostSettings, cost_table
    from percpu_explorer.thiscpu.ops import core_profile

    n1 = core_profile("neoverse-n1")
    first = cost_table(CostSettings(n1, "none", "6.19"))
    assert cost_table(CostSettings(n1, "none", "6.19")) is first
    assert not first.flags.writeable
    slow_mrs = n1.with_costs(mrs_tpidr=n1.costs["mrs_tpidr"] + 2)
    assert slow_mrs.name == n1.name
    assert cost_table(CostSettings(slow_mrs, "none", "6.19")) is not first
    w = read_workload(TINY)
    totals = price_workload(w, slow_mrs, preempt="none", kernel="6.19").totals
    assert totals.set_index("variant")["cycles"]["today-lse"] == pytest.approx(148)

def test_full_preemption_saving_per_add_hand_checked():
    # one this_cpu_add_8 under PREEMPT_FULL: today 31.75 + 1e-4 x 3002, local 14.75
    w = pd.DataFrame({"time": [0], "cpu": [0], "task": [0], "op": ["add"], "size": [8],
                      "variable": ["v"], "value": [1], "flavour": ["this_cpu"]})
    r = price_workload(w, "neoverse-n1", preempt="full")
    assert r.saving_per_op() == pytest.approx(31.75 + 0.3002 - 14.75)


def test_price_workload_counts_and_progress():
    w = synthetic(50_000, nr_cpus=8, seed=3)
    seen = []
    r = price_workload(w, chunk=20_000, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(20_000, 50_000), (40_000, 50_000), (50_000, 50_000)]
    assert r.per_cpu["ops"].sum() == 50_000 == r.per_op["ops"].sum()
    for label in ("today-lse", "local-llsc"):
        total = r.totals.set_index("variant").loc[label, "cycles"]
        assert r.per_cpu[label].sum() == pytest.approx(total)
        assert r.per_op[label].sum() == pytest.approx(total)
        assert r.per_variable[label].sum() == pytest.approx(total)


def test_price_workload_equals_a_row_by_row_sum():
    # independent check of the vectorised path: sum op_cost() per event in a loop
    from percpu_explorer.thiscpu.ops import op_cost, op_sequence

    w = mix({"slub-fastpath": 30, "percpu-counter": 30, "vm-events": 30}, nr_cpus=3)
    r = price_workload(w, "neoverse-v2", preempt="lazy")
    want = sum(op_cost(op_sequence(row.op, int(row.size), flavour=row.flavour,
                                   scheme="local", atomics="llsc", preempt="lazy"),
                       "neoverse-v2").cycles for row in w.itertuples())
    assert r.totals.set_index("variant").loc["local-llsc", "cycles"] == pytest.approx(want)


def test_resolve_workload_of_tiny_hand_checked():
    # a@0: 5, +1 -> 6; a@1: 7, xchg 1, -3 -> 2**64 - 2; b@0: write 100, cmpxchg 100->200
    # succeeds, cmpxchg 100->300 fails; b@1: |0x0f; c@1 (2 bytes): +65535, +1 -> 0
    w = read_workload(TINY)
    for scheme in ("today", "local"):
        result = resolve_workload(w, scheme)
        assert result.ok, result.problems
        got = {(r.variable, r.cpu): r.value for r in result.values.itertuples()}
        assert got == {("a", 0): 6, ("a", 1): 2**64 - 2, ("b", 0): 200, ("b", 1): 15,
                       ("c", 1): 0}


def test_resolve_workload_uses_global_today_and_local_with_the_patch():
    w = generate("percpu-ref", 40, nr_cpus=3, seed=2)
    today = resolve_workload(w, "today").values
    local = resolve_workload(w, "local").values
    assert today["address"].nunique() == 3      # one global address per CPU
    assert local["address"].nunique() == 1      # one local address on every CPU
    assert local["phys"].nunique() == 3         # ... reaching three different copies
    assert today["phys"].nunique() == 3


def test_resolve_workload_catches_a_shared_tlb_in_the_local_scheme():
    # SMT threads sharing a TLB (or CnP): CPU 1 uses CPU 0's translation of the local
    # address and updates CPU 0's copy; global addresses are unaffected
    w = generate("net-stats", 60, nr_cpus=2, seed=4)
    assert resolve_workload(w, "today", tlb_shared_with={1: 0}).ok
    bad = resolve_workload(w, "local", tlb_shared_with={1: 0})
    assert not bad.ok
    assert any("on CPU 1 reaches" in p and "not CPU 1's copy" in p for p in bad.problems)


def test_resolve_workload_progress_and_errors():
    w = generate("percpu-ref", 30, nr_cpus=2)
    seen = []
    resolve_workload(w, progress=lambda d, t: seen.append(d), every=25)
    assert seen == [25, 50, 60]
    with pytest.raises(ValueError, match="scheme 'global' is unknown"):
        resolve_workload(w, "global")


def test_reviewer_view_arithmetic():
    view = reviewer_view(saving_cycles=15, ghz=3.0)
    table = view.table().set_index("target_sys_saving")
    # r = S f / d: 0.13 x 3e9 / 15 = 26e6 ops per sys-second, one every 115.4 cycles
    assert table.loc[0.13, "ops_per_sys_second"] == pytest.approx(26e6)
    assert table.loc[0.13, "sys_cycles_between_ops"] == pytest.approx(3e9 / 26e6)
    assert table.loc[0.18, "ops_per_sys_second"] == pytest.approx(36e6)
    assert "assumptions" in view.text() and "upper bound" in view.text()


def test_reviewer_view_from_a_replay():
    # 1000 ops over 1 ms on one CPU = 1e6 ops/s; half the time in sys -> 2e6 per sys-second
    w = pd.DataFrame({"time": np.linspace(0, 1_000_000, 1000).astype(np.int64),
                      "cpu": 0, "task": 0, "op": "add", "size": 8, "variable": "v", "value": 1,
                      "flavour": "this_cpu"})
    r = price_workload(w, "neoverse-n1", preempt="full", resched_probability=0)
    view = reviewer_view(r, ghz=2.0, sys_share=0.5)
    assert view.saving_cycles == pytest.approx(31.75 - 14.75)
    assert view.explained_share() == pytest.approx(2e6 * 17 / 2e9)
    with pytest.raises(ValueError, match="sys_share 0 must be in"):
        reviewer_view(r, sys_share=0)


def test_cli_replay_table_json_and_bad_file(tmp_path, capsys):
    assert main(["replay", str(TINY), "--preempt", "none", "--kernel", "6.19",
                 "--semantic"]) == 0
    out = capsys.readouterr().out
    assert "Semantic replay (local): final per-CPU values equal the reference" in out
    assert "the local scheme saves nothing per op" in out
    assert "cycles are estimates, shown in whole cycles" in out
    assert main(["replay", str(TINY), "--format", "json", "--preempt", "full"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["events"] == 12 and len(data["totals"]) == 4
    assert "mrs_tpidr" in data["estimated_classes"]
    assert all(float(t["cycles_per_op"]).is_integer() for t in data["totals"])
    assert main(["replay", str(TINY), "--preempt", "none"]) == 2  # kernel 7.1: no NONE
    assert "7dadeaa6e851" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("time,cpu,task,op,size,variable,value\n0,0,0,add,3,v,1\n0,0,0,nop,8,v,x\n")
    assert main(["replay", str(bad)]) == 2
    err = capsys.readouterr().err
    # One line: the first problem and how many follow (issue 13); all are in
    # WorkloadError.problems for a library caller.
    assert err.count("\n") == 1 and "bad.csv:2:5:" in err and "2 more problems" in err


def test_resolve_workload_of_the_mixed_example_agrees_under_both_schemes():
    w = read_workload(DATA / "workloads" / "mix.parquet")
    today, local = resolve_workload(w, "today"), resolve_workload(w, "local")
    assert today.ok and local.ok
    assert today.values["value"].tolist() == local.values["value"].tolist()
    assert repr(today).startswith("WorkloadResolution(today, ")


def test_cycles_by_instruction_class_sum_to_the_totals():
    from percpu_explorer.thiscpu import cost_by_class

    for preempt in ("none", "full"):
        cost = price_workload(read_workload(TINY), "neoverse-n1", preempt=preempt,
                              kernel="6.19")
        classes = cost_by_class(cost)
        assert list(classes.columns) == ["variant", "class", "cycles"]
        per_variant = classes.groupby("variant")["cycles"].sum()
        for row in cost.totals.itertuples():
            assert per_variant[row.variant] == pytest.approx(row.cycles, rel=1e-12)
        assert ("resched" in set(classes["class"])) == (preempt == "full")
        assert {"mrs_tpidr", "lse_atomic"} <= set(classes["class"])


def test_a_workload_without_ops_has_nothing_to_price(tmp_path, capsys):
    empty = read_workload(TINY).iloc[:0]
    with pytest.raises(ValueError, match="no this_cpu ops: nothing to price"):
        price_workload(empty)
    with pytest.raises(ValueError, match="nothing to replay"):
        resolve_workload(empty)
    path = tmp_path / "empty.csv"
    path.write_text("time,cpu,task,op,size,variable,value\n")
    for command in ("cost", "replay"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err.strip()
        assert err == (f"percpu-explorer: error: {path}: the workload has no this_cpu ops: "
                       "nothing to price")


def test_reviewer_view_prints_estimates_with_two_significant_figures():
    text = reviewer_view(saving_cycles=17.25, ghz=3.0).text()
    # 0.13 x 3e9 / 17.25 = 22.6 M ops per sys-second: shown as ~23
    assert "~17 cycles saved per this_cpu op (an estimate" in text
    assert "~23 M this_cpu ops per sys-second" in text and "22.6" not in text


def test_vhe_changes_the_listing_not_the_price():
    w = read_workload(TINY)
    on = price_workload(w, "neoverse-n1", vhe=True)
    off = price_workload(w, "neoverse-n1", vhe=False)
    assert on.totals["cycles"].tolist() == off.totals["cycles"].tolist()
    assert "tpidr_el2 (VHE)" in " ".join(on.settings.assumptions())
    assert "tpidr_el1 (no VHE)" in " ".join(off.settings.assumptions())


def test_a_counted_workload_prices_as_its_rows_repeated():
    # price_workload is a sum over ops: a row with count n is n identical ops
    rows = [(0, 0, 0, "add", 8, "a", 1, "this_cpu", 3),
            (0, 1, 0, "cmpxchg", 4, "b", 2, "this_cpu", 2),
            (0, 1, 0, "read", 1, "c", 0, "__this_cpu", 7)]
    cols = ["time", "cpu", "task", "op", "size", "variable", "value", "flavour", "count"]
    counted = validate_workload(pd.DataFrame(rows, columns=cols))
    expanded = validate_workload(pd.DataFrame(
        [r[:-1] for r in rows for _ in range(r[-1])], columns=cols[:-1]))
    a, b = price_workload(counted, nr_cpus=2), price_workload(expanded, nr_cpus=2)
    assert a.counted and not b.counted and a.events == b.events == 12
    pd.testing.assert_frame_equal(a.totals, b.totals)
    pd.testing.assert_frame_equal(a.per_op, b.per_op)
    pd.testing.assert_frame_equal(a.per_cpu, b.per_cpu)
    # no time span: no op rate, and the reviewer's view says so instead of a NaN
    view = reviewer_view(a)
    assert view.op_rate is None and "op rate: unknown (12 ops" in view.text()
    with pytest.raises(InputError, match=r"counted workload .* no per-op values"):
        resolve_workload(counted, "today")
