"""`cost` on kernels the patch cannot apply to, and on the CPUs the user names."""

import json

from percpu_explorer.paths import WORKLOADS_DIR

TINY = WORKLOADS_DIR / "tiny.csv"


def test_cost_before_v6_9_prices_only_today(cli):
    # RFC 02/11 edits the v6.9+ layout formulas (kernel.local_percpu_supported): on 6.1
    # there is no local scheme to price and no saving to conclude on.
    status, out, _ = cli("cost", str(TINY), "--kernel", "6.1")
    assert status == 0
    assert "local-lse" not in out and "today-lse" in out
    assert "No local scheme priced: local percpu (RFC 02/11) needs kernel v6.9" in out
    status, out, _ = cli("cost", str(TINY), "--kernel", "6.1", "--format", "json")
    data = json.loads(out)
    assert {row["variant"] for row in data["totals"]} == {"today-lse", "today-llsc"}
    assert "reviewer" not in data


def test_cost_counts_the_cpus_given(cli):
    # tiny.csv has ops on CPUs 0 and 1; with --nr-cpus 4 two CPUs are idle but count.
    status, out, _ = cli("cost", str(TINY), "--nr-cpus", "4", "--format", "json")
    assert status == 0 and json.loads(out)["nr_cpus"] == 4
    status, out, _ = cli("cost", str(TINY), "--format", "json")
    assert json.loads(out)["nr_cpus"] == 2
