"""Speed target (issue 6): cost replay of 10 million events under all schemes in under
2 seconds on one core."""

import pytest

from percpu_explorer.thiscpu.cost import price_workload
from percpu_explorer.thiscpu.workloads import synthetic


@pytest.fixture(scope="module")
def ten_million():
    return synthetic(10_000_000, nr_cpus=160, seed=1)


def test_price_workload_10m_events_all_schemes(benchmark, ten_million):
    result = benchmark.pedantic(price_workload, args=(ten_million,), rounds=2, iterations=1)
    assert result.events == 10_000_000 and len(result.totals) == 4
    assert result.per_cpu["ops"].sum() == 10_000_000
    if not benchmark.disabled:
        assert benchmark.stats.stats.median < 2.0
