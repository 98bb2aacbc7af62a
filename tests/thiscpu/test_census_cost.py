"""Pricing aggregated op counts (a census) under each scheme and preemption model."""

import pandas as pd
import pytest

from percpu_explorer.errors import InputError
from percpu_explorer.thiscpu import WORLDS, LocalScheme, census_savings, price_counts


def _counts(rows):
    return pd.DataFrame(rows, columns=["phase", "function", "op", "size", "flavour", "atomics",
                                       "count"])


READS = _counts([("w", "f", "read", 8, "any", "plain", 100)])


def _insns(priced, world, scheme):
    row = priced[(priced["world"] == world) & (priced["scheme"] == scheme)]
    return int(row["insns"].iloc[0])


def test_reads_on_the_counted_voluntary_kernel_are_two_instructions():
    # arch/arm64/include/asm/percpu.h: this_cpu_read = __kern_my_cpu_offset() (one mrs)
    # and a READ_ONCE load; without CONFIG_PREEMPT_COUNT (PREEMPT_VOLUNTARY) the
    # preempt_disable/enable_notrace() bracket is barrier() only (include/linux/preempt.h).
    priced = price_counts(READS)
    assert _insns(priced, "6.12.117 VOLUNTARY", "today") == 200
    # with a preempt count (v7.1 FULL/LAZY) the bracket adds real instructions
    assert _insns(priced, "7.1 FULL", "today") > 200
    assert _insns(priced, "7.1 FULL", "today") == _insns(priced, "7.1 LAZY", "today")
    assert set(priced["world"]) == {w.label for w in WORLDS}


def test_pointers_and_raw_ops_save_nothing():
    counts = _counts([("w", "f", "pointer", 0, "any", "plain", 1000),
                      ("w", "g", "add", 8, "__this_cpu", "plain", 10)])
    priced = price_counts(counts)
    # a pointer is not an op the schemes differ on; __this_cpu_add keeps raw_cpu_ptr()
    # (ops.DEFAULT_LOCAL_SCHEME: raw_cpu_local False)
    assert (priced["ops"] == 10).all()
    for world in WORLDS:
        assert _insns(priced, world.label, "today") == _insns(priced, world.label, "local")


def test_savings_and_the_rate_a_share_needs():
    counts = _counts([("w", "f", "add", 8, "this_cpu", "lse", 1000),
                      ("w", "f", "read", 4, "any", "plain", 3000)])
    out = census_savings(counts, {"w": 1_000_000}, cpi=1.5,
                         local=LocalScheme(offset="constant")).set_index("world")
    # needed cycles per op = S x kernel instructions x cpi / ops (the definition)
    assert out.loc["7.1 FULL", "needed_cycles_per_op_13"] == pytest.approx(
        0.13 * 1_000_000 * 1.5 / 4000)
    assert out.loc["7.1 FULL", "insns_saved"] > 0
    # no bracket to remove and one mrs today: the constant-offset local scheme removes
    # nothing on the voluntary kernel
    assert out.loc["6.12.117 VOLUNTARY", "insns_saved"] == 0
    assert out.loc["7.1 FULL", "insns_saved_share"] == pytest.approx(
        out.loc["7.1 FULL", "insns_saved"] / 1_000_000)


def test_bad_counts_are_refused_in_one_line():
    with pytest.raises(InputError, match="op 'frob' is unknown"):
        price_counts(_counts([("w", "f", "frob", 8, "any", "plain", 1)]))
    with pytest.raises(InputError, match="lack column"):
        price_counts(READS.drop(columns=["atomics"]))
    with pytest.raises(InputError, match="negative"):
        price_counts(_counts([("w", "f", "read", 8, "any", "plain", -1)]))
    with pytest.raises(InputError, match="cpi"):
        census_savings(READS, {"w": 10}, cpi=0)
    with pytest.raises(InputError, match="phase 'w'"):
        census_savings(READS, {"x": 10})
