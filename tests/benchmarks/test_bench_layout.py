"""Speed target (issue 2): every valid configuration of every era in well under 100 ms."""

from percpu_explorer import compute_layout, valid_configs

# The first release of each layout change: eras (5.17, 6.5, 6.9), the FDT window and
# FIXADDR_TOT_START (6.4), FIX_VNCR (6.16), and the default 7.1.
ERA_KERNELS = ("5.17", "6.4", "6.5", "6.9", "6.16", "7.1")


def all_layouts():
    count = 0
    for kernel in ERA_KERNELS:
        for cfg in valid_configs(kernel):
            compute_layout(cfg)
            count += 1
            if cfg.version.at_least(6, 9):
                compute_layout(cfg.replace(local_percpu=True))
                count += 1
    return count


def test_all_configurations_of_all_eras(benchmark):
    count = benchmark(all_layouts)
    assert count == 25 + 25 + 25 + 39 * 2 * 3
    if not benchmark.disabled:  # --benchmark-disable runs the body once, untimed
        assert benchmark.stats.stats.median < 0.100
