"""Speed target (issue 6): exhaustive interleaving of one op pair across 2 CPUs in under
a second."""

from percpu_explorer.thiscpu.interleave import explore, op_pair


def test_exhaustive_this_cpu_add_llsc_pair_with_irq(benchmark):
    # the largest pair case of the tests: LL/SC under PREEMPT_FULL with an interrupt
    result = benchmark(explore, op_pair("add", atomics="llsc", preempt="full", irq=True))
    assert result.safe and result.retried
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 1.0


def test_exhaustive_unguarded_pair(benchmark):
    result = benchmark(explore, op_pair("add", flavour="__this_cpu", preempt="full"))
    assert not result.safe
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 1.0
