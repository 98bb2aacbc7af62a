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
    format_cycles,
    lse_nonreturn_loads,
    offset_reads,
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
    # (mainline 535fdfc5a228 "arm64: Use load LSE atomics for the non-return per-CPU atomic
    # operations", v6.18-rc6: it turned `[val], %[ptr]` into `[val], %[tmp], %[ptr]`)
    for kernel in ("6.18", "7.1", "6.12.117"):
        assert op_texts(op_sequence("add", 4, kernel=kernel)) == [
            "ldadd w1, w3, [x0]", "nop", "nop", "nop"]
    assert lse_nonreturn_loads("6.12.117") and not lse_nonreturn_loads("6.12")
    # Debian's linux-source-6.12 changelog lists the backport under ChangeLog-6.12.112.
    assert lse_nonreturn_loads("6.12.112") and not lse_nonreturn_loads("6.12.111")
    assert not lse_nonreturn_loads("6.17")
    # linux-source-6.1 6.1.192's percpu.h still has PERCPU_OP(add, add, stadd)
    assert lse_nonreturn_loads("6.1.192") is False
    # no 6.6.y release was checked: unknown, not guessed
    assert lse_nonreturn_loads("6.6.50") is None


def test_8_and_16_bit_lse_ops_lack_the_size_suffix_until_the_fix():
    # 8cf2093f5372 "arm64: percpu: Fix LSE operations on {8,16}-bit types" (arm64-fixes,
    # 2026-09-18, after v7.1) adds #sfx to the LSE half of __PERCPU_OP_CASE; before it
    # (v6.1.192's and mainline's percpu.h: `#op_lse "\t%" #w "[val], ...`) a 1-byte add is
    # a 32-bit atomic. 6.12.117 carries the fix (Debian changelog, ChangeLog-6.12.112).
    assert op_texts(op_sequence("or", 1, kernel="7.1"))[0] == "ldset w1, w3, [x0]"
    assert op_texts(op_sequence("or", 1, kernel="6.12.117"))[0] == "ldsetb w1, w3, [x0]"
    assert op_texts(op_sequence("add", 2, kernel="6.1.192"))[0] == "stadd w1, [x0]"
    assert op_texts(op_sequence("add_return", 2, kernel="7.1"))[0] == "ldadd w1, w3, [x0]"
    note = " ".join(op_sequence("or", 1, kernel="7.1").notes)
    assert "8cf2093f5372" in note and "32-bit atomic on this 1-byte variable" in note
    assert op_texts(op_sequence("add", 8, kernel="7.1"))[0] == "ldadd x1, x3, [x0]"
    # LL/SC is unaffected: ldxrb/stxrb carry #sfx in every version
    assert op_texts(op_sequence("add", 1, atomics="llsc", kernel="7.1"))[0] == "ldxrb w3, [x0]"


def test_an_unverified_stable_release_shows_its_base_release_and_says_unknown():
    # 6.6.y and 6.18.y: no release was checked for the backports (6.18.y had them queued
    # in stable-rc in September 2026, sublevel not known)
    seq = op_sequence("add", 2, kernel="6.6.50")
    assert seq.unknown == ("lse_sizes", "lse_load_form")
    assert op_texts(seq)[0] == "stadd w1, [x0]"  # v6.6's code
    assert any(n.startswith("unknown: whether 6.6.50 carries 535fdfc5a228") for n in seq.notes)
    assert op_sequence("add", 8, kernel="6.18.3").unknown == ()  # 6.18 has 535fdfc5a228
    assert op_sequence("add", 1, kernel="6.18.3").unknown == ("lse_sizes",)


def test_and_mask_and_write_cast_fixes_are_version_facts():
    # 44274c657256 and 885bff055a0f (arm64-fixes 2026-09-18; 6.12.112; 6.1.189 per Debian's
    # 6.1.192 changelog): ~(uN)(val) and (unsigned long)(val) instead of ~val and
    # (unsigned long)val; same instructions for an operand of the variable's size
    assert any("44274c657256" in n for n in op_sequence("and", 4, kernel="7.1").notes)
    assert not any("44274c657256" in n for n in op_sequence("and", 4, kernel="6.12.117").notes)
    assert any("885bff055a0f" in n for n in op_sequence("write", 4, kernel="6.1.188").notes)
    assert not any("885bff055a0f" in n for n in op_sequence("write", 4, kernel="6.1.189").notes)


def test_and_is_andnot_of_the_complement():
    # this_cpu_and_N: _pcp_protect(__percpu_andnot_case_N, pcp, ~(uN)(val));
    # PERCPU_OP(andnot, bic, ldclr) (v6.12.117 percpu.h)
    assert op_texts(op_sequence("and", 2, atomics="lse", kernel="6.12.117")) == [
        "mvn w1, w1", "ldclrh w1, w3, [x0]", "nop", "nop", "nop"]
    assert op_texts(op_sequence("and", 8, atomics="llsc")) == [
        "mvn x1, x1", "ldxr x3, [x0]", "bic x3, x3, x1", "stxr w4, x3, [x0]", "cbnz w4, 1b"]


def test_add_llsc_is_the_exclusive_loop():
    # __PERCPU_OP_CASE LL/SC half: 1: ldxr; op; stxr; cbnz 1b
    assert op_texts(op_sequence("add", 1, atomics="llsc")) == [
        "ldxrb w3, [x0]", "add w3, w3, w1", "stxrb w4, w3, [x0]", "cbnz w4, 1b"]


def test_sub_adds_the_negated_value_and_inc_dec_add_a_constant():
    # include/linux/percpu-defs.h: this_cpu_sub(pcp, val) = this_cpu_add(pcp,
    # -(typeof(pcp))(val)); this_cpu_inc = this_cpu_add(pcp, 1); this_cpu_dec =
    # this_cpu_sub(pcp, 1); the asm takes the value in a register ([val] "r", v6.12.117)
    assert op_texts(op_sequence("sub", 8))[:2] == ["neg x1, x1", "ldadd x1, x3, [x0]"]
    assert op_texts(op_sequence("inc", 4))[:2] == ["mov w1, #1", "ldadd w1, w3, [x0]"]
    assert op_texts(op_sequence("dec", 8, atomics="llsc"))[:3] == [
        "mov x1, #-1", "ldxr x3, [x0]", "add x3, x3, x1"]
    assert op_texts(op_sequence("dec", 1, kernel="6.12.117"))[:2] == [
        "mov w1, #0xff", "ldaddb w1, w3, [x0]"]  # (u8)-1
    # raw_cpu_sub(pcp, val) = raw_cpu_add(pcp, -(val)); plain C: sub, or an immediate
    assert op_texts(op_sequence("sub", 8, flavour="raw_cpu"))[1] == "sub x3, x3, x1"
    assert op_texts(op_sequence("inc", 8, flavour="raw_cpu"))[1] == "add x3, x3, #1"
    assert op_texts(op_sequence("dec", 4, flavour="__this_cpu"))[1] == "sub w3, w3, #1"


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


@pytest.mark.parametrize("op", ["sub", "inc", "dec"])
def test_the_operand_is_made_outside_both_alternatives(op):
    lse = op_texts(op_sequence(op, 8, atomics="lse"))
    llsc = op_texts(op_sequence(op, 8, atomics="llsc"))
    assert lse[0] == llsc[0]
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
    # try_cmpxchg compares the returned value with old afterwards (asm-generic
    # __cpu_fallback_try_cmpxchg) but cas's [old] is "+r": it works on a copy
    try_seq = op_sequence("try_cmpxchg", 8)
    assert [t.split("  //")[0] for t in op_texts(try_seq)[1:]] == ["mov x3, x2",
                                                                   "cas x3, x1, [x0]"]
    assert try_seq.texts("after") == ["cmp x3, x2", "cset w0, eq"]
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


def test_cmpxchg128_lse_pins_x0_to_x4_and_pays_the_moves():
    # v6.12.117 atomic_lse.h __lse__cmpxchg128: register asm x0 = o.low, x1 = o.high,
    # x2 = n.low, x3 = n.high, x4 = ptr; casp overwrites x0:x1 ("+&r") and the asm also takes
    # [oldval1]/[oldval2] "r" (o.low/o.high), so old lives in two places: two moves
    seq = op_sequence("cmpxchg128", 16)
    assert seq.texts("offset") == ["mrs x12, tpidr_el2", "add x4, x5, x12"]
    assert [t.split("  //")[0] for t in op_texts(seq)] == [
        "nop", "mov x0, x6", "mov x1, x7", "casp x0, x1, x2, x3, [x4]"]
    assert any("pins old to x0:x1" in n for n in seq.notes)
    n1 = core_profile("neoverse-n1")
    # today, full: bracket 8 + 12, offset mrs 2 + add 1, op nop 0.25 + 2 movs + casp 12
    assert op_cost(seq, n1).common == 8 + 12 + 3 + 0.25 + 2 + 12


def test_today_bracket_per_preemption_model():
    # include/linux/preempt.h: without CONFIG_PREEMPT_COUNT both halves are barrier()
    # (Debian's 6.12: PREEMPT_VOLUNTARY, no PREEMPT_COUNT); with CONFIG_PREEMPTION,
    # __preempt_count_dec_and_test() and __preempt_schedule_notrace() (asm/preempt.h)
    for model in ("none", "voluntary"):
        seq = op_sequence("add", 8, preempt=model, kernel="6.12")
        assert seq.texts("bracket") == [] and seq.resched is None
        assert seq.texts("offset") == ["mrs x12, tpidr_el2", "add x0, x0, x12"]
        assert "barrier() only" in seq.notes[-1]
    full = op_sequence("add", 8, preempt="full")
    assert full.texts("bracket")[:4] == ["mrs x10, sp_el0", "ldr w11, [x10, #TI_PREEMPT]",
                                         "add w11, w11, #1", "str w11, [x10, #TI_PREEMPT]"]
    assert [t.split()[0] for t in full.texts("bracket")[4:]] == [
        "ldr", "sub", "str", "cbz", "ldr", "cbz"]
    assert full.resched.text == "bl preempt_schedule_notrace"
    # lazy and rt build the same bracket (preempt_enable_notrace() is the same code; lazy
    # only changes when TIF_NEED_RESCHED is set)
    assert op_sequence("add", 8, preempt="rt").texts() == full.texts()
    assert op_sequence("add", 8, preempt="lazy").texts() == full.texts()


def test_preempt_models_are_checked_against_the_kernel_version():
    # 7dadeaa6e851 ("sched: Further restrict the preemption modes", v7.0): PREEMPT_NONE
    # depends on ARCH_NO_PREEMPT, PREEMPT_VOLUNTARY on !ARCH_HAS_PREEMPT_LAZY
    with pytest.raises(ValueError, match=r"preempt 'none' is not offered by arm64 kernel 7.1: "
                       r"since v7.0, commit 7dadeaa6e851 .* choose one of full, lazy, rt$"):
        op_sequence("add", 8, preempt="none", kernel="7.1")
    with pytest.raises(ValueError, match="c8597e2dd8b6"):  # arm64 PREEMPT_LAZY from v6.16
        op_sequence("add", 8, preempt="lazy", kernel="6.15")
    assert op_sequence("add", 8, preempt="voluntary", kernel="6.19").preempt == "voluntary"


def test_the_offset_register_follows_vhe_in_every_listing():
    # asm/percpu.h __kern_my_cpu_offset(): ALTERNATIVE("mrs %0, tpidr_el1", "mrs %0,
    # tpidr_el2", ARM64_HAS_VIRT_HOST_EXTN)
    vhe, guest = op_sequence("read", 8), op_sequence("read", 8, vhe=False)
    assert vhe.texts("offset") == ["mrs x12, tpidr_el2"] and vhe.offset_register == "tpidr_el2"
    assert guest.texts("offset") == ["mrs x12, tpidr_el1"]
    assert "VHE, offset in tpidr_el2" in vhe.format().splitlines()[0]
    assert "no VHE, offset in tpidr_el1" in guest.format().splitlines()[0]
    assert op_cost(vhe).cycles == op_cost(guest).cycles


def test_read_write_fold_the_offset_into_the_address():
    # __percpu_read_64 = READ_ONCE(*(u64 *)ptr) with ptr = raw_cpu_ptr(): ldr [x0, xoff]
    assert op_sequence("read", 8, preempt="none", kernel="6.12", vhe=False).texts() == [
        "mrs x12, tpidr_el1", "ldr x3, [x0, x12]"]
    assert op_sequence("write", 2, preempt="none", kernel="6.12", vhe=False).texts() == [
        "mrs x12, tpidr_el1", "strh w1, [x0, x12]"]


def test_raw_cpu_read_modify_writes_use_register_offset_addressing():
    # asm-generic/percpu.h raw_cpu_generic_to_op: *raw_cpu_ptr(&pcp) += val, plain C: the
    # load and the store both take [x0, x12]; no add forms the address
    seq = op_sequence("add", 8, flavour="__this_cpu", preempt="full")
    assert seq.texts() == ["mrs x12, tpidr_el2", "ldr x3, [x0, x12]", "add x3, x3, x1",
                           "str x3, [x0, x12]"]
    assert op_sequence("add", 8, flavour="raw_cpu").texts() == seq.texts()
    # ldp/stp have no register-offset form: a 16-byte raw cmpxchg adds first
    assert op_sequence("cmpxchg128", 16, flavour="raw_cpu").texts("offset")[-1] == (
        "add x4, x5, x12")


def test_one_offset_read_serves_raw_reads_in_a_row():
    # __kern_my_cpu_offset() is a non-volatile asm with a fake stack read as its only input:
    # reusable until a barrier() (this_cpu brackets) or a store (-fno-strict-aliasing)
    assert offset_reads([("raw_cpu", "read"), ("raw_cpu", "read"), ("__this_cpu", "add")]) == 1
    assert offset_reads([("raw_cpu", "add"), ("raw_cpu", "add")]) == 2
    assert offset_reads([("this_cpu", "read"), ("this_cpu", "read")]) == 2
    assert offset_reads([("raw_cpu", "read"), ("this_cpu", "add"), ("raw_cpu", "read")]) == 3
    with pytest.raises(ValueError, match="flavour 'per_cpu' is unknown"):
        offset_reads([("per_cpu", "read")])


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
    with pytest.raises(ValueError, match="preempt 'count' is unknown; choose one of full"):
        op_sequence("add", 8, preempt="count")
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


def test_costs_resting_on_estimates_say_so_in_whole_cycles():
    n1 = core_profile("neoverse-n1")
    cost = op_cost(op_sequence("add", 8), n1)
    # mrs (no per-register table), the LSE atomic and the resched path are estimates
    assert {"mrs_tpidr", "lse_near", "resched"} <= set(cost.estimated)
    assert cost.text() == "~32 cycles (estimate)"  # 31.75 + 0.3002
    assert format_cycles(11.75, estimate=False) == "11.75 cycles"
    # a profile whose numbers all come from a table is no estimate
    sure = n1.with_costs(mrs_tpidr=2, nop=0.25)
    read = op_cost(op_sequence("read", 8, preempt="none", kernel="6.12"), sure)
    assert read.estimated == () and read.text() == "6 cycles"


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
    t = ops_table(("add",), (8,), preempt="none", kernel="6.19", resched_probability=0)
    assert t["estimate"].all() and "mrs_tpidr" in t["estimated"].iloc[0]
    by = t.set_index("variant")["cycles"]
    # no preempt count: today = mrs+add (3) + op; local = adrp+ldr+add (6) + op
    assert by["local-lse"] - by["today-lse"] == 3


# --- command line ------------------------------------------------------------------------

def test_cli_ops_prints_sequences_cost_and_the_assumption(capsys):
    assert main(["ops", "--op", "add", "--size", "8", "--preempt", "none", "--kernel",
                 "6.19", "--no-vhe"]) == 0
    out = capsys.readouterr().out
    assert "local scheme (assumed" in out and "ldadd x1, x3, [x0]" in out
    assert "mrs x12, tpidr_el1" in out and "no VHE, offset in tpidr_el1" in out
    # 3 + 8.75 = 11.75, hand-checked above, shown in whole cycles as an estimate
    assert "cost on neoverse-n1: ~12 cycles (estimate)" in out
    assert "11.75" not in out


def test_cli_refuses_a_preemption_model_the_kernel_does_not_build(capsys):
    assert main(["ops", "--preempt", "none", "--kernel", "7.1"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "7dadeaa6e851" in err
    assert err.endswith("choose one of full, lazy, rt")
    assert main(["interleave", "--preempt", "voluntary", "--kernel", "7.0"]) == 2
    assert "7dadeaa6e851" in capsys.readouterr().err


def test_cli_ops_json_and_errors(capsys):
    assert main(["ops", "--op", "cmpxchg128", "--scheme", "local", "--atomics", "llsc",
                 "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 1 and "stxp w10, x2, x3, [x4]" in rows[0]["instructions"]
    assert rows[0]["offset_register"] == "tpidr_el2" and rows[0]["estimate"]
    assert main(["ops", "--op", "add", "--size", "16"]) == 2
    assert "size 16 is not allowed" in capsys.readouterr().err


def test_cli_ops_takes_a_user_profile_file(tmp_path, capsys):
    path = tmp_path / "core.json"
    path.write_text(json.dumps({"name": "slow-mrs", "base": "neoverse-n1",
                                "costs": {"mrs_tpidr": 52}}))
    assert main(["ops", "--op", "read", "--size", "8", "--preempt", "none", "--kernel", "6.12",
                 "--scheme", "today", "--atomics", "lse", "--core", str(path)]) == 0
    # 52 (the user's number) + ldr 4 (N1 guide): no estimate in it
    assert "cost on slow-mrs: 56 cycles\n" in capsys.readouterr().out
    path.write_text("{")
    assert main(["ops", "--core", str(path)]) == 2
    assert "cannot read a core profile" in capsys.readouterr().err
