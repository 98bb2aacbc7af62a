"""Interleavings of this_cpu ops with preemption, migration and interrupts.

Expected outcomes come from the kernel's own reasoning, not from the simulator:
- _pcp_protect() in arch/arm64/include/asm/percpu.h holds preemption off across
  offset + access, so today's this_cpu_* cannot be moved mid-op;
- __this_cpu_* (asm-generic/percpu.h raw_cpu_generic_to_op) leaves that to the caller;
- the exclusive monitor is cleared on context switch and exception return (Arm ARM,
  "Exclusive monitors": ERET clears the local monitor), so an interrupted LL/SC retries;
- include/linux/preempt.h: without CONFIG_PREEMPT_COUNT the bracket is barrier(), and
  without CONFIG_PREEMPTION there is no involuntary preemption in kernel mode, but
  interrupts still run.
"""

import json

import pytest

from percpu_explorer.cli import main
from percpu_explorer.thiscpu.interleave import (
    Irq,
    OpCall,
    Scenario,
    Task,
    apply_op,
    explore,
    op_pair,
    preemption_points,
    random_schedules,
)


@pytest.mark.parametrize("atomics", ["lse", "llsc"])
@pytest.mark.parametrize("preempt", ["full", "lazy", "rt"])
def test_today_this_cpu_add_is_safe_under_preemption(atomics, preempt):
    assert explore(op_pair("add", atomics=atomics, preempt=preempt)).safe


@pytest.mark.parametrize("op", ["xchg", "cmpxchg", "add_return", "or"])
def test_today_this_cpu_rmw_ops_are_safe(op):
    assert explore(op_pair(op, atomics="llsc", operand=7)).safe


def test_unguarded_this_cpu_add_loses_and_misplaces_updates():
    result = explore(op_pair("add", flavour="__this_cpu", preempt="full"))
    assert not result.safe
    assert {"lost update", "misplaced"} <= set(result.verdicts)
    # the lost update needs the migration between the load and the store
    path = result.examples["lost update"]
    assert any(step.kind == "migrate" for step in path)


def test_unguarded_add_exact_outcomes_at_each_preemption_point():
    # A (CPU0) does __this_cpu_add(v, 1) (mrs; ldr [x0, x12]; add; str [x0, x12]); at the
    # point, B does __this_cpu_add(v, 4) on CPU0 and A resumes on CPU1. Copies start at
    # 0x10 (CPU0) and 0x20 (CPU1).
    pts = preemption_points("add", flavour="__this_cpu", preempt="full")
    migrate = pts["migrate"].tolist()
    assert migrate[0] == "ok (v@CPU0=0x14 v@CPU1=0x21)"          # A moved before starting
    assert migrate[1].startswith("misplaced (v@CPU0=0x15")        # offset of CPU0 kept
    assert migrate[2] == "lost update (v@CPU0=0x11 v@CPU1=0x20)"  # B's +4 overwritten
    assert migrate[4] == "ok (v@CPU0=0x15 v@CPU1=0x20)"
    # the verdict columns carry the same verdicts, for views that colour by them
    assert pts["migrate_verdict"].tolist()[:4] == ["ok", "misplaced", "lost update",
                                                    "lost update"]


def test_today_bracket_forbids_preemption_between_offset_and_access():
    pts = preemption_points("add", preempt="full")
    texts = pts["after"].tolist()
    inc = texts.index("str w11, [x10, #TI_PREEMPT]")
    dec = len(texts) - 1 - texts[::-1].index("str w11, [x10, #TI_PREEMPT]")
    assert not pts["preemptible"][inc:dec].any()
    assert pts["migrate_verdict"][inc:dec].isna().all()  # cannot happen inside the bracket
    assert pts["preemptible"][:inc].all() and pts["preemptible"][dec:].all()
    assert set(pts["migrate"]) - {"-"} <= {"ok (v@CPU0=0x14 v@CPU1=0x21)",
                                         "ok (v@CPU0=0x15 v@CPU1=0x20)"}


@pytest.mark.parametrize("op,size", [("add", 8), ("add", 1), ("xchg", 4), ("cmpxchg", 8),
                                     ("cmpxchg128", 16)])
@pytest.mark.parametrize("atomics", ["lse", "llsc"])
def test_local_scheme_is_safe_for_lse_and_llsc(op, size, atomics):
    result = explore(op_pair(op, size, scheme="local", atomics=atomics, operand=5))
    assert result.safe, result.summary()
    if atomics == "llsc":  # the migration between ldxr and stxr forces a retry
        assert result.retried


def test_local_llsc_retry_at_the_point_between_ldxr_and_stxr():
    pts = preemption_points("add", scheme="local", atomics="llsc")
    after = dict(zip(pts["after"], pts["migrate"], strict=True))
    # loaded CPU0's copy, migrated: the stxr on CPU1 fails, the loop reloads CPU1's copy
    assert after["ldxr x3, [x0]"] == "ok (v@CPU0=0x14 v@CPU1=0x21, LL/SC retried)"


def test_local_scheme_is_not_safe_for_a_plain_load_modify_store():
    result = explore(op_pair("add", scheme="local", atomics="plain"))
    assert not result.safe and "lost update" in result.verdicts
    pts = preemption_points("add", scheme="local", atomics="plain")
    after = dict(zip(pts["after"], pts["migrate"], strict=True))
    # read CPU0's 0x10, stored 0x11 into CPU1's copy: CPU1's 0x20 is gone
    assert after["ldr x3, [x0, x12]"] == "lost update (v@CPU0=0x14 v@CPU1=0x11)"
    # the same plain body is safe today inside the bracket
    assert explore(op_pair("add", scheme="today", atomics="plain")).safe


def test_the_op_the_local_scheme_cannot_make_safe_is_a_16_byte_read():
    # no 16-byte this_cpu_read exists; as two 8-byte loads, a migration between them
    # mixes two CPUs' copies in the local scheme; today the bracket keeps one CPU
    assert explore(op_pair("read", 16, scheme="today")).safe
    local = explore(op_pair("read", 16, scheme="local"))
    assert not local.safe and "torn" in local.verdicts
    # cmpxchg128 is safe both as CASP (one instruction) and as an ldxp/stxp pair
    assert explore(op_pair("cmpxchg128", 16, scheme="local", atomics="lse", operand=9)).safe
    assert explore(op_pair("cmpxchg128", 16, scheme="local", atomics="llsc", operand=9)).safe


def test_16_byte_read_is_torn_by_an_interrupt_even_today():
    # preempt_disable does not mask interrupts: the bracket cannot help here
    assert "torn" in explore(op_pair("read", 16, scheme="today", irq=True)).verdicts


@pytest.mark.parametrize("atomics", ["lse", "llsc"])
def test_preempt_none_this_cpu_add_is_safe_with_an_interrupt(atomics):
    seq_result = explore(op_pair("add", preempt="none", kernel="6.12", atomics=atomics,
                                 irq=True))
    assert seq_result.safe
    if atomics == "llsc":
        assert seq_result.retried  # the interrupt cleared the monitor


def test_preempt_none_unguarded_add_loses_the_interrupts_update():
    result = explore(op_pair("add", flavour="__this_cpu", preempt="none", kernel="6.12",
                             irq=True))
    assert not result.safe and set(result.verdicts) == {"ok", "lost update"}
    pts = preemption_points("add", flavour="__this_cpu", preempt="none", kernel="6.12")
    # no involuntary preemption inside the op, but the interrupt still hits
    assert pts["migrate"].tolist()[1:4] == ["-"] * 3
    assert pts["irq"].tolist()[3] == "lost update (v@CPU0=0x11 v@CPU1=0x20)"


def test_exhaustive_counts_of_a_small_case_are_stable():
    # two unguarded adds, 2 CPUs, <= 1 migration each: 4 correct end states
    result = explore(op_pair("add", flavour="__this_cpu"))
    assert result.verdicts["ok"] == 4


def test_random_schedules_find_the_same_problems():
    bad = random_schedules(op_pair("add", flavour="__this_cpu"), 400, seed=1)
    assert not bad.safe and not bad.exhaustive
    assert random_schedules(op_pair("add", atomics="llsc"), 200, seed=1).safe


def test_custom_scenario_with_three_tasks_and_two_ops_each():
    call = OpCall("add", 4, "this_cpu", 1)
    scen = Scenario((Task("A", 0, (call, call)), Task("B", 1, (call,)), Task("C", 0, (call,))),
                    (Irq(1, OpCall("add", 4, "this_cpu", 100)),), scheme="local")
    result = random_schedules(scen, 300, seed=2)
    assert result.safe
    for out in result.outcomes:
        assert sum(out.final.values()) == 4 + 100


def test_apply_op_reference():
    assert apply_op(OpCall("sub", 1, operand=2), 1) == (0xFF, 0)
    assert apply_op(OpCall("cmpxchg", 8, operand=5, old=3), 3) == (5, 3)
    assert apply_op(OpCall("cmpxchg", 8, operand=5, old=3), 4) == (4, 4)
    assert apply_op(OpCall("and", 2, operand=0xF0), 0x3C) == (0x30, 0)


def test_bad_scenario():
    with pytest.raises(ValueError, match=r"cpu 3 is out of range; valid CPUs are 0\.\.1"):
        Scenario((Task("A", 3, (OpCall(),)),))


def test_exhaustive_pair_is_fast_enough_for_the_cli(capsys):
    assert main(["interleave", "--op", "add", "--scheme", "local", "--atomics", "plain",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["safe"] is False and "lost update" in data["verdicts"]
    assert main(["interleave", "--op", "add", "--flavour", "__this_cpu"]) == 0
    out = capsys.readouterr().out
    assert "UNSAFE" in out and "a schedule giving 'lost update'" in out
    with pytest.raises(SystemExit) as exc:  # refused by the argument parser, one line
        main(["interleave", "--atomics", "xyz"])
    assert exc.value.code == 2


def test_safety_table_answers_claim_9():
    from percpu_explorer.thiscpu.interleave import safety_table

    t = safety_table((("add", 8), ("cmpxchg128", 16), ("read", 16)), kernel="6.12").set_index(
        ["op", "size", "atomics"])
    for atomics in ("lse", "llsc"):
        assert t.loc[("add", 8, atomics), "local this_cpu"].startswith("safe")
        assert t.loc[("cmpxchg128", 16, atomics), "local this_cpu"].startswith("safe")
        assert t.loc[("read", 16, atomics), "local this_cpu"] == "torn"
        assert t.loc[("read", 16, atomics), "today this_cpu"] == "safe"
        assert t.loc[("add", 8, atomics), "none+irq this_cpu"].startswith("safe")
    assert t.loc[("add", 8, "lse"), "today __this_cpu (no guard)"] == "lost update, misplaced"
    assert t.loc[("add", 8, "lse"), "none+irq __this_cpu"] == "lost update"
    # an interrupt's cmpxchg128 between the unguarded ldp and stp is lost
    assert t.loc[("cmpxchg128", 16, "lse"), "none+irq __this_cpu"] == "lost update"


def test_returned_values_count_in_the_verdict():
    # __this_cpu_xchg under PREEMPT_NONE: the interrupt's +100 lands between ldr and str;
    # the final value looks serial, but the value xchg returned misses the +100
    pts = preemption_points("xchg", flavour="__this_cpu", preempt="none", kernel="6.12",
                            operand=7)
    assert pts["after"].tolist()[2] == "ldr x3, [x0, x12]"
    assert pts["irq"].tolist()[2] == "lost update (v@CPU0=0x7 v@CPU1=0x20)"


def test_no_preempt_none_scenarios_from_v7_0():
    # 7dadeaa6e851 (v7.0): arm64 builds only full, lazy and rt; a PREEMPT_NONE scenario at
    # the series' base is refused, and the safety table's none+irq columns say n/a
    from percpu_explorer.thiscpu.interleave import NO_PREEMPT_NONE, safety_table

    with pytest.raises(ValueError, match="7dadeaa6e851"):
        op_pair("add", preempt="none", kernel="7.1")
    t = safety_table((("add", 8),), kernel="7.1")
    assert set(t["none+irq this_cpu"]) == set(t["none+irq __this_cpu"]) == {NO_PREEMPT_NONE}
    assert t["today this_cpu"].str.startswith("safe").all()


def test_llsc_retries_need_a_switch_inside_the_loop():
    # today the bracket keeps the task on its CPU across ldxr..stxr: no retry without an
    # interrupt; the local scheme lets the scheduler in, and the monitor forces a retry
    assert not explore(op_pair("add", atomics="llsc")).retried
    assert explore(op_pair("add", atomics="llsc", irq=True)).retried
    assert explore(op_pair("add", scheme="local", atomics="llsc")).retried
