"""Speed target (issue 7): from a control change, as a user makes it (a widget's value
set), to an updated PlotView (model computation, figure and its JSON sent) in under
100 ms for the address-space map and under 300 ms for the other explorers."""

import itertools

import pytest

from percpu_explorer.ui.widgets import (
    AllocatorExplorer,
    CostExplorer,
    LayoutExplorer,
    PageTableExplorer,
)

# (explorer, panel control toggled, its two values (the first a change), limit in seconds)
CASES = {
    "address space map": (LayoutExplorer, "local_percpu", (False, True), 0.100),
    "page-table walk": (PageTableExplorer, "nr_cpus", (8, 4), 0.300),
    "allocator": (AllocatorExplorer, "local_percpu", (False, True), 0.300),
    "replay": (CostExplorer, "kernel", ("6.12", "7.1"), 0.300),
}


@pytest.mark.parametrize("case", list(CASES))
def test_control_change_to_updated_figure(benchmark, case):
    cls, control, values, limit = CASES[case]
    explorer = cls(page_size=4096, va_bits=48, local_percpu=True, nr_cpus=4)
    widget = getattr(explorer.panel, control)
    cycle = itertools.cycle(values)
    before = explorer.updates

    def change():
        widget.value = next(cycle)

    benchmark.pedantic(change, rounds=6, iterations=1, warmup_rounds=1)
    assert explorer.error is None
    assert explorer.updates > before  # every round redrew the same PlotView
    if not benchmark.disabled:  # --benchmark-disable runs the body once, untimed
        assert benchmark.stats.stats.median < limit
