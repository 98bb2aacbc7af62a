"""The this_cpu findings and reading tables: sentences that carry the model's numbers, the
two sequences side by side with every instruction explained, the CPUs a workload runs on,
and no local scheme before v6.9."""

import pytest

from percpu_explorer.errors import InputError
from percpu_explorer.findings import BASES
from percpu_explorer.thiscpu import (
    ATOMICS,
    FLAVOURS,
    LOCAL_NEEDS,
    OPS,
    SECTIONS,
    LocalScheme,
    explain_insn,
    explain_sequence,
    generate,
    op_cost,
    op_cost_finding,
    op_sequence,
    preempt_table,
    price_workload,
    read_workload,
    reviewer_finding,
    reviewer_table,
    reviewer_view,
    safety_finding,
    safety_table,
    scheme_table,
    sequence_finding,
    sequence_table,
    sizes_for,
    this_cpu_finding,
    variants_for,
)

from ..conftest import DATA

MIX = DATA / "workloads" / "mix.parquet"


@pytest.fixture(scope="module")
def mix_cost():
    return price_workload(read_workload(MIX))


# --- the sequences, readable --------------------------------------------------------------

def test_every_instruction_of_every_sequence_is_explained():
    kernels = ("6.1", "6.12", "7.1")  # stadd era, ldadd in 6.12.y, v7.0 preemption models
    schemes = (LocalScheme(), LocalScheme(offset="constant", bracket=True, raw_cpu_local=True))
    seen = 0
    for op in OPS:
        for size in sizes_for(op):
            for flavour in FLAVOURS:
                for atomics in ATOMICS:
                    for kernel in kernels:
                        for preempt in ("full", "voluntary"):
                            if kernel == "7.1" and preempt == "voluntary":
                                continue  # 7dadeaa6e851: arm64 has full, lazy, rt only
                            for scheme, local in (("today", schemes[0]), ("local", schemes[0]),
                                                  ("local", schemes[1])):
                                seq = op_sequence(op, size, flavour=flavour, scheme=scheme,
                                                  atomics=atomics, preempt=preempt,
                                                  kernel=kernel, local=local)
                                words = explain_sequence(seq)
                                assert len(words) == len(seq.insns)
                                assert all(s in SECTIONS and len(w) > 5 for s, w in words)
                                seen += 1
    assert seen > 1000


def test_the_bracket_splits_into_disable_and_enable():
    # asm/preempt.h: __preempt_count_add() is mrs sp_el0 (current), ldr, add, str (4);
    # __preempt_count_dec_and_test() a 64-bit ldr, sub, 32-bit str, the test, and the
    # reload and test of `!pc || !READ_ONCE(ti->preempt_count)` (6)
    seq = op_sequence("add", 8, preempt="full", kernel="7.1")
    sections = [s for s, _ in explain_sequence(seq)]
    assert sections.count("disable") == 4 and sections.count("enable") == 6
    assert sections == sorted(sections, key=list(SECTIONS).index)  # in the kernel's order
    assert seq.insns[4].text == "mrs x12, tpidr_el2" and "tpidr_el2" in explain_insn(seq, 4)


def test_sequence_table_puts_both_sequences_side_by_side():
    today = op_sequence("add", 8, scheme="today", preempt="full")
    local = op_sequence("add", 8, scheme="local", preempt="full")
    table = sequence_table(today, local)
    body = table[~table["section"].isin(["rare path", "total"])]
    assert [t for t in body["today"] if t] == today.texts()
    assert [t for t in body["local"] if t] == local.texts()
    # the assumed local scheme has no bracket: its side of both bracket sections says none
    first = table.set_index("section")
    for title in (SECTIONS["disable"], SECTIONS["enable"]):
        assert first.loc[title, "local"] == "" and first.loc[title, "local: what it does"] \
            == "none"
    # mrs of tpidr_el2 (VHE, the ALTERNATIVE in __kern_my_cpu_offset) is explained as such
    row = table[table["today"] == "mrs x12, tpidr_el2"].iloc[0]
    assert "tpidr_el2" in row["today: what it does"]
    total = table[table["section"] == "total"].iloc[0]
    assert total["today"] == f"{len(today.insns)} instructions"
    assert total["today: cycles"] == f"~{op_cost(today).cycles:.0f} cycles (estimate)"
    assert total["local: cycles"] == f"~{op_cost(local).cycles:.0f} cycles (estimate)"
    assert not table.isna().any().any()


def test_instruction_cycles_say_which_are_estimates():
    # Neoverse N1 SOG (via LLVM's model): load 4 cycles; mrs of a system register is not
    # tabulated per register, so the profile estimates it (2)
    table = sequence_table(op_sequence("add", 8))
    cycles = dict(zip(table["today"], table["today: cycles"], strict=True))
    assert cycles["ldr w11, [x10, #TI_PREEMPT]"] == "4"
    assert cycles["mrs x12, tpidr_el2"] == "2 (est.)"


# --- findings --------------------------------------------------------------------------------

def test_this_cpu_finding_carries_the_cost_models_numbers(mix_cost):
    f = this_cpu_finding("add", 8, preempt="full", kernel="7.1", cost=mix_cost,
                         workload="mix.parquet")
    n = f.numbers
    today = op_cost(op_sequence("add", 8, scheme="today", preempt="full"))
    local = op_cost(op_sequence("add", 8, scheme="local", preempt="full"))
    assert n["today_cycles"] == today.cycles and n["local_cycles"] == local.cycles
    # today: a 10-instruction bracket (asm/preempt.h) + mrs/add + ldadd and 3 nops = 16;
    # the assumed local scheme: adrp/ldr/add + ldadd and 3 nops = 7
    assert (n["today_insns"], n["local_insns"]) == (16, 7)
    for text in (f"{n['today_insns']} instructions and ~{n['today_cycles']:.0f} cycles",
                 f"{n['local_insns']} instructions and ~{n['local_cycles']:.0f} cycles",
                 f"~{n['bracket_cycles']:.0f} of them the preemption bracket",
                 f"{mix_cost.events:,} ops on 8 CPUs",
                 f"~{n['today_per_op']:.0f} against ~{n['local_per_op']:.0f} cycles per op",
                 f"{n['workload_saving_pct']:.0f}% fewer"):
        assert text in f.answer, text
    # r = S * f / d (the reviewer's view): 13% of 3 GHz over the saving per op
    saving = mix_cost.saving_per_op("lse")
    assert n["required_rate"] == pytest.approx(0.13 * 3e9 / saving)
    assert f.basis == "estimate" and "neoverse-n1" in f.detail
    assert "local sequence is an assumption (ops.DEFAULT_LOCAL_SCHEME)" in f.detail
    assert "PREEMPT_FULL" in f.question


def test_before_v6_9_there_is_no_local_scheme_to_compare():
    cost = price_workload(read_workload(MIX), kernel="6.1", variants=variants_for("6.1"))
    f = this_cpu_finding(kernel="6.1", cost=cost, workload="mix.parquet")
    assert LOCAL_NEEDS in f.answer and "local_cycles" not in f.numbers
    assert f"~{f.numbers['today_per_op']:.0f} cycles per op" in f.answer
    assert "patch 11/11" not in f.detail


def test_without_a_preempt_count_the_local_scheme_costs_more():
    # PREEMPT_VOLUNTARY without CONFIG_PREEMPT_COUNT: the bracket is barrier() only; the
    # assumed local offset (adrp 1 + ldr 4 + add 1 = 6 on N1) costs more than mrs + add (3)
    f = this_cpu_finding(preempt="voluntary", kernel="6.12")
    assert f.numbers["saving_cycles"] == pytest.approx(-3)
    assert "(~3 cycles more)" in f.answer and "bracket" not in f.answer


def test_sequence_and_cost_findings():
    today = op_sequence("add", 8, preempt="full")
    local = op_sequence("add", 8, scheme="local", preempt="full")
    seq = sequence_finding(today, local)
    assert seq.basis == "assumption" and "10 of its 16 instructions" in seq.answer
    assert "7 instructions against 16" in seq.answer
    cost = op_cost_finding(today, local)
    # N1 bracket: mrs 2 + 3 loads x 4 + 2 stores x 1 + add, sub 1 + 2 cbz 1 = 20, plus the
    # rare reschedule 1e-4 x (3000 + 2) = 0.3
    assert cost.numbers["bracket_cycles"] == pytest.approx(20.3002)
    assert cost.basis == "estimate" and "~20 of them the preemption bracket" in cost.answer
    assert f"~{cost.numbers['saving_cycles']:.0f} cycles" in cost.answer
    assert all(f.basis in BASES for f in (seq, cost))


def test_preempt_table_follows_kconfig_preempt():
    # kernel/Kconfig.preempt: arm64 gained PREEMPT_RT in v6.12 and from v7.0 (7dadeaa6e851)
    # offers only full, lazy and rt; v6.1 has none, voluntary and full
    rows = preempt_table(("6.1", "6.12", "7.1")).set_index("kernel")
    assert rows.loc["6.1", "with a preempt count"] == "full"
    assert rows.loc["6.12", "bracket is barrier() only"] == "none, voluntary"
    assert rows.loc["7.1", "with a preempt count"] == "full, lazy, rt"
    assert rows.loc["7.1", "bracket is barrier() only"] == "none offered"
    assert rows.loc["6.1", "local percpu"] == LOCAL_NEEDS


def test_safety_finding_counts_the_tables_verdicts():
    table = safety_table(kernel="6.12")  # still has PREEMPT_NONE: the interrupt columns
    f = safety_finding(table)
    irq = sum(v != "safe" for v in table["none+irq __this_cpu"])
    assert f.numbers["irq_unguarded_unsafe"] == irq > 0
    assert f"breaks it in {irq} of {len(table)} cases" in f.answer
    assert "the hypothetical 16-byte read (torn)" in f.answer
    unguarded = sum(not v.startswith("safe") for v in table["today __this_cpu (no guard)"])
    assert f.numbers["unguarded_unsafe"] == unguarded > 0
    assert f.numbers["today_unsafe"] == 0
    assert f"safe in {len(table)} of {len(table)} cases" in f.answer
    assert f"misplaces updates in {unguarded};" in f.answer


def test_reviewer_finding_and_table_by_the_formula():
    # r = S * f / d: d = 15 cycles at 3 GHz; 13% needs 26 M ops/s (one every ~115 cycles,
    # ~38 ns), 18% needs 36 M (one every ~83 cycles, ~28 ns)
    view = reviewer_view(saving_cycles=15, ghz=3.0)
    f = reviewer_finding(view)
    assert f.numbers["rate_13"] == pytest.approx(26e6)
    assert "13% sys-time cut needs ~26 M" in f.answer and "one every ~120 cycles" in f.answer
    assert "an 18% sys-time cut needs ~36 M" in f.answer
    rows = reviewer_table(view)
    assert list(rows["this_cpu ops per sys-second per CPU"]) == ["~26 M", "~36 M"]
    assert list(rows["one op every"]) == ["~120 cycles (~38 ns)", "~83 cycles (~28 ns)"]
    nothing = reviewer_finding(reviewer_view(saving_cycles=-3, ghz=3.0))
    assert "saves nothing" in nothing.answer


def test_scheme_table_in_whole_cycles(mix_cost):
    t = scheme_table(mix_cost)
    assert list(t["cycles (estimate)"]) == [round(c) for c in mix_cost.totals["cycles"]]
    assert t["saved against today"].dtype.kind == "i"


# --- the CPUs a workload runs on, and kernels without the local scheme ----------------------

def test_pricing_counts_idle_cpus_when_told_how_many():
    # 12 units on 64 CPUs leave most CPUs without ops; the highest CPU with one is below 63
    frame = generate("percpu-ref", 12, nr_cpus=64, seed=1)
    used = int(frame["cpu"].max()) + 1
    assert used < 64
    assert price_workload(frame).nr_cpus == used  # default: up to the highest CPU
    cost = price_workload(frame, nr_cpus=64)
    assert cost.nr_cpus == 64 and len(cost.per_cpu) == 64
    assert cost.per_cpu["ops"].sum() == len(frame)
    assert cost.op_rate_per_cpu() == pytest.approx(price_workload(frame).op_rate_per_cpu()
                                                   * used / 64)
    with pytest.raises(InputError, match=f"nr_cpus 2 is fewer .* CPUs 0..{used - 1}"):
        price_workload(frame, nr_cpus=2)


def test_variants_for_a_kernel():
    # RFC 02/11 needs the v6.9 layout (vmemmap ending at -1G)
    assert {v.scheme for v in variants_for("6.8")} == {"today"}
    assert {v.scheme for v in variants_for("6.9")} == {"today", "local"}
