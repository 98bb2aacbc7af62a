"""The this_cpu_*() instruction sequences, pinned against the kernel source, and the
cost model on hand-checked sums."""

import json

import pytest

from percpu_explorer.cli import main
from percpu_explorer.thiscpu.ops import (
    CORE_PROFILES,
    LocalScheme,
    core_profile,
    core_profile_from_dict,
    lse_nonreturn_loads,
    op_cost,
    op_sequence,
    ops_table,
    sizes_for,
)


def op_texts(seq):
    return seq.texts("op")


# --- sequences: arch/arm64/include/asm/percpu.h (v6.12.117 and v6.1.192) -----------------

def test_add_lse_before_v6_18_is_stadd_and_three_nops():
    # v6.1 percpu.h: PERCPU_OP(add, add, stadd); __PERCPU_OP_CASE LSE half "#op_lse ... __nops(3)"
    seq = op_sequence("add", 8, kernel="6.1", atomics="lse")
    assert op_texts(seq) == ["stadd x1, [x0]", "nop", "nop", "nop"]


def test_add_lse_from_v6_18_and_6_12_117_is_ldadd_with_unused_result():
    # v6.12.117 percpu.h: PERCPU_OP(add, add, ldadd), "#op_lse #sfx %[val], %[tmp], %[ptr]"
    # (mainline "arm64: Use load LSE atomics for the non-return per-CPU atomic operations",
    # v6.18-rc6, deepin-community/kernel PR #1297 shows the backport to 6.12.y)
    for kernel in ("6.18", "7.1", "6.12.117"):
        assert op_texts(op_sequence("add", 4, kernel=kernel)) == [
            "ldadd w1, w3, [x0]", "nop", "nop", "nop"]
    assert op_texts(op_sequence("or", 1, kernel="7.1"))[0] == "ldsetb w1, w3, [x0]"
    assert lse_nonreturn_loads("6.12.117") and not lse_nonreturn_loads("6.12")
    # Debian's linux-source-6.12 changelog lists the backport under ChangeLog-6.12.112.
    assert lse_nonreturn_loads("6.12.112") and not lse_nonreturn_loads("6.12.111")
    assert not lse_nonreturn_loads("6.17")


def test_and_is_andnot_of_the_complement():
    # this_cpu_and_N: _pcp_protect(__percpu_andnot_case_N, pcp, ~(uN)(val));
    # PERCPU_OP(andnot, bic, ldclr)
    assert op_texts(op_sequence("and", 2, atomics="lse")) == [
        "mvn w1, w1", "ldclrh w1, w3, [x0]", "nop", "nop", "nop"]
    assert op_texts(op_sequence("and", 8, atomics="llsc")) == [
        "mvn x1, x1", "ldxr x3, [x0]", "bic x3, x3, x1", "stxr w4, x3, [x0]", "cbnz w4, 1b"]


def test_add_llsc_is_the_exclusive_loop():
    # __PERCPU_OP_CASE LL/SC half: 1: ldxr; op; stxr; cbnz 1b
    assert op_texts(op_sequence("add", 1, atomics="llsc")) == [
        "ldxrb w3, [x0]", "add w3, w3, w1", "stxrb w4, w3, [x0]", "cbnz w4, 1b"]


def test_add_return_lse_is_ldadd_add_and_two_nops():
    # __PERCPU_RET_OP_CASE LSE half: ldadd; add; __nops(2)
    assert op_texts(op_sequence("add_return", 8)) == [
        "ldadd x1, x3, [x0]", "add x3, x3, x1", "nop", "nop"]


@pytest.mark.parametrize("op", ["add", "and", "or", "add_return", "xchg"])
def test_lse_and_llsc_alternatives_have_equal_length(op):
    # ALTERNATIVE() needs both halves the same length; the kernel pads with __nops()
    lse = op_texts(op_sequence(op, 8, atomics="lse"))
    llsc = op_texts(op_sequence(op, 8, atomics="llsc"))
    if op == "and":  # the mvn of ~val is outside the asm
        lse, llsc = lse[1:], llsc[1:]
    assert len(lse) == len(llsc) == 4


def test_xchg_is_swp_or_prefetched_exclusive_loop():
    # asm/cmpxchg.h __XCHG_CASE(w, , , 32, , , , , , ) via xchg_relaxed
    assert op_texts(op_sequence("xchg", 4)) == ["swp w1, w3, [x0]", "nop", "nop", "nop"]
    assert op_texts(op_sequence("xchg", 4, atomics="llsc")) == [
        "prfm pstl1strm, [x0]", "ldxr w3, [x0]", "stxr w4, w1, [x0]", "cbnz w4, 1b"]


def test_cmpxchg_is_cas_or_ldxr_eor_loop():
    # atomic_lse.h __CMPXCHG_CASE: cas; atomic_ll_sc.h __CMPXCHG_CASE: prfm; 1: ldxr; eor;
    # cbnz 2f; stxr; cbnz 1b; 2:
    lse = op_texts(op_sequence("cmpxchg", 8))
    assert lse[-1] == "cas x2, x1, [x0]"
    llsc = [t.split("  //")[0] for t in op_texts(op_sequence("cmpxchg", 8, atomics="llsc"))]
    assert llsc[1:7] == ["prfm pstl1strm, [x0]", "ldxr x3, [x0]", "eor x5, x3, x2",
                         "cbnz x5, 2f", "stxr w5, x1, [x0]", "cbnz w5, 1b"]
    # sub-word sizes cast old first: "if (sz < 32) old = (u##sz)old;"
    assert "and w2, w2, #0xff" in op_texts(op_sequence("cmpxchg", 1, atomics="llsc"))[1]


def test_cmpxchg128_is_casp_or_ldxp_stxp_loop():
    # atomic_lse.h __CMPXCHG128: casp; atomic_ll_sc.h __CMPXCHG128: ldxp; cmp; ccmp; b.ne;
    # stxp; cbnz
    assert op_texts(op_sequence("cmpxchg128", 16))[-1].startswith("casp ")
    llsc = op_texts(op_sequence("cmpxchg128", 16, atomics="llsc"))
    assert [t.split()[0] for t in llsc[2:8]] == ["ldxp", "cmp", "ccmp", "b.ne", "stxp", "cbnz"]
    assert sizes_for("cmpxchg128") == (16,)


def test_today_bracket_per_preemption_model():
    # include/linux/preempt.h: without CONFIG_PREEMPT_COUNT both halves are barrier();
    # with a count but no CONFIG_PREEMPTION, enable is __preempt_count_dec();
    # with CONFIG_PREEMPTION, __preempt_count_dec_and_test() and __preempt_schedule_notrace()
    none = op_sequence("add", 8, preempt="none")
    assert none.texts("bracket") == [] and none.resched is None
    assert none.texts("offset") == ["mrs x12, tpidr_el1", "add x0, x0, x12"]
    count = op_sequence("add", 8, preempt="count")
    assert len(count.texts("bracket")) == 4 + 3 and count.resched is None
    full = op_sequence("add", 8, preempt="full")
    assert full.texts("bracket")[:4] == ["mrs x10, sp_el0", "ldr w11, [x10, #TI_PREEMPT]",
                                         "add w11, w11, #1", "str w11, [x10, #TI_PREEMPT]"]
    assert [t.split()[0] for t in full.texts("bracket")[4:]] == [
        "ldr", "sub", "str", "cbz", "ldr", "cbz"]
    assert full.resched.text == "bl preempt_schedule_notrace"
    assert op_sequence("add", 8, preempt="dynamic").resched.text == (
        "bl dynamic_preempt_schedule_notrace")
    assert op_sequence("add", 8, preempt="rt").texts() == full.texts()


def test_read_write_fold_the_offset_into_the_address():
    # __percpu_read_64 = READ_ONCE(*(u64 *)ptr) with ptr = raw_cpu_ptr(): ldr [x0, xoff]
    assert op_sequence("read", 8, preempt="none").texts() == [
        "mrs x12, tpidr_el1", "ldr x3, [x0, x12]"]
    assert op_sequence("write", 2, preempt="none").texts() == [
        "mrs x12, tpidr_el1", "strh w1, [x0, x12]"]


def test_this_cpu_ptr_flavours_are_plain_load_modify_store():
    # asm-generic/percpu.h raw_cpu_generic_to_op: *raw_cpu_ptr(&pcp) += val
    seq = op_sequence("add", 8, flavour="__this_cpu", preempt="full")
    assert seq.texts() == ["mrs x12, tpidr_el1", "add x0, x0, x12", "ldr x3, [x0]",
                           "add x3, x3, x1", "str x3, [x0]"]
    assert op_sequence("add", 8, flavour="raw_cpu").texts() == seq.texts()


def test_local_scheme_has_no_bracket_and_no_tpidr():
    seq = op_sequence("add", 8, scheme="local", preempt="full")
    assert seq.texts() == ["adrp x12, __per_cpu_local_off",
                           "ldr x12, [x12, :lo12:__per_cpu_local_off]", "add x0, x0, x12",
                           "ldadd x1, x3, [x0]", "nop", "nop", "nop"]
    const = op_sequence("add", 8, scheme="local", local=LocalScheme(offset="constant"))
    assert const.texts("offset") == ["mov x12, #LOCAL_OFFSET", "add x0, x0, x12"]
    kept = op_sequence("add", 8, scheme="local", local=LocalScheme(bracket=True))
    assert kept.texts("bracket") == op_sequence("add", 8).texts("bracket")


def test_bad_values_name_the_choices():
    with pytest.raises(ValueError, match="op 'mul' is unknown; choose one of read"):
        op_sequence("mul", 8)
    with pytest.raises(ValueError, match="size 16 is not allowed for op 'add'"):
        op_sequence("add", 16)
    with pytest.raises(ValueError, match="preempt 'lazy' is unknown"):
        op_sequence("add", 8, preempt="lazy")
    with pytest.raises(ValueError, match="core 'm1' is unknown"):
        core_profile("m1")


# --- cost model: hand-checked sums -------------------------------------------------------

def test_cost_of_add_today_and_local_on_n1_hand_checked():
    n1 = core_profile("neoverse-n1")
    today = op_cost(op_sequence("add", 8), n1)
    # bracket in: mrs 2 + ldr 4 + add 1 + str 1 = 8; offset: mrs 2 + add 1 = 3;
    # op: ldadd near 8 + 3 nops x 0.25 = 8.75; bracket out: 4+1+1+1+4+1 = 12
    assert today.common == 8 + 3 + 8.75 + 12
    assert today.resched == pytest.approx(1e-4 * (3000 + 2))
    local = op_cost(op_sequence("add", 8, scheme="local"), n1)
    assert local.common == (1 + 4 + 1) + 8.75 and local.resched == 0
    # stadd (v6.1) executes far under "auto"
    old = op_cost(op_sequence("add", 8, kernel="6.1", preempt="none"), n1)
    assert old.common == 3 + 40 + 0.75
    assert op_cost(op_sequence("add", 8, kernel="6.1", preempt="none"), n1,
                   lse_execution="near").common == 3 + 8 + 0.75


def test_every_profile_number_has_a_source_and_estimates_say_so():
    for profile in CORE_PROFILES.values():
        for cls in profile.costs:
            assert profile.sources[cls], (profile.name, cls)
        assert all(s.startswith("estimate") for s in profile.sources.values()) or \
            any("Software Optimization Guide" in s for s in profile.sources.values())
    assert all(s.startswith("estimate") for s in CORE_PROFILES["ampereone"].sources.values())


def test_user_profile_edits():
    user = core_profile_from_dict({"name": "mine", "base": "neoverse-v2",
                                   "costs": {"mrs_tpidr": 20}})
    assert user.costs["mrs_tpidr"] == 20 and user.sources["mrs_tpidr"] == "user"
    assert user.costs["load"] == CORE_PROFILES["neoverse-v2"].costs["load"]
    edited = CORE_PROFILES["neoverse-n1"].with_costs(alu=2)
    assert edited.costs["alu"] == 2 and CORE_PROFILES["neoverse-n1"].costs["alu"] == 1
    with pytest.raises(ValueError, match="unknown cost class 'fma'"):
        core_profile_from_dict({"costs": {"fma": 3}})
    with pytest.raises(ValueError, match="non-negative"):
        CORE_PROFILES["neoverse-n1"].with_costs(alu=-1)


def test_ops_table_saving_is_the_bracket_and_offset_difference():
    t = ops_table(("add",), (8,), preempt="none", resched_probability=0)
    by = t.set_index("variant")["cycles"]
    # no preempt count: today = mrs+add (3) + op; local = adrp+ldr+add (6) + op
    assert by["local-lse"] - by["today-lse"] == 3


# --- command line ------------------------------------------------------------------------

def test_cli_ops_prints_sequences_cost_and_the_assumption(capsys):
    assert main(["ops", "--op", "add", "--size", "8", "--preempt", "none"]) == 0
    out = capsys.readouterr().out
    assert "local scheme (assumed" in out and "ldadd x1, x3, [x0]" in out
    assert "cost on neoverse-n1: 11.75 cycles" in out  # 3 + 8.75, hand-checked above


def test_cli_ops_json_and_errors(capsys):
    assert main(["ops", "--op", "cmpxchg128", "--scheme", "local", "--atomics", "llsc",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and "stxp w7, x8, x9, [x0]" in rows[0]["instructions"]
    assert main(["ops", "--op", "add", "--size", "16"]) == 2
    assert "size 16 is not allowed" in capsys.readouterr().err


def test_cli_ops_takes_a_user_profile_file(tmp_path, capsys):
    path = tmp_path / "core.json"
    path.write_text(json.dumps({"name": "slow-mrs", "base": "neoverse-n1",
                                "costs": {"mrs_tpidr": 52}}))
    assert main(["ops", "--op", "read", "--size", "8", "--preempt", "none", "--scheme", "today",
                 "--atomics", "lse", "--core", str(path)]) == 0
    assert "cost on slow-mrs: 56.00 cycles" in capsys.readouterr().out  # 52 + ldr 4
    path.write_text("{")
    assert main(["ops", "--core", str(path)]) == 2
    assert "cannot read a core profile" in capsys.readouterr().err
