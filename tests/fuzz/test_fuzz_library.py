"""The library's entry points, fuzzed in this process: each takes any value and either
returns or raises an InputError (a ValueError) whose message is one line. Issue 13.

These calls build no allocator or page tables (which the command-line cases exercise
under a memory limit in the worker), so they run here, many per second.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from percpu_explorer.errors import InputError
from percpu_explorer.kernel import KernelConfig, parse_addr, parse_size
from percpu_explorer.percpu import build_alloc_info, validate_requests
from percpu_explorer.thiscpu import core_profile_from_dict
from percpu_explorer.thiscpu.workloads import REQUIRED_COLUMNS, validate_workload

from .conftest import fuzz_settings
from .files import CORE, json_values
from .harness import TALLY
from .strategies import around, int_text, size_text, weird_text

anything = st.one_of(json_values, around(4096, 2**31, 2**64), weird_text, size_text(4096),
                     st.floats(allow_nan=True, allow_infinity=True))


def refused_in_one_line(call, *args, **kwargs):
    """Run `call`; an InputError must be one line naming something; tally the case."""
    TALLY.cases["library"] += 1
    try:
        return call(*args, **kwargs)
    except InputError as exc:
        assert "\n" not in str(exc) and str(exc).strip()
        assert len(str(exc)) < 1500, str(exc)[:200]
        return None


def test_parse_size():
    @fuzz_settings(8)
    @given(st.one_of(size_text(4096, 2**64), anything))
    def run(value):
        size = refused_in_one_line(parse_size, value)
        assert size is None or 0 <= size < 2**64

    run()


def test_parse_addr():
    @fuzz_settings(8)
    @given(st.one_of(st.integers(-(2**66), 2**66).map(hex), anything))
    def run(value):
        addr = refused_in_one_line(parse_addr, value)
        assert addr is None or 0 <= addr < 2**64

    run()


FIELDS = ["page_size", "va_bits", "vabits_actual", "kasan", "nr_cpus", "kvm", "local_percpu",
          "kernel", "btmap_extra_page", "struct_page_size", "no_such_field"]
valid_field = {"page_size": st.sampled_from([4096, 16384, 65536, "4K", "64K"]),
               "va_bits": st.sampled_from([39, 47, 48, 52]), "kernel": st.sampled_from(
                   ["6.1", "6.8", "7.1"]), "nr_cpus": st.integers(2, 4096)}


def test_kernel_config():
    @fuzz_settings(8)
    @given(st.dictionaries(st.sampled_from(FIELDS),
                           st.one_of(anything, *valid_field.values()), max_size=4))
    def run(fields):
        if "no_such_field" in fields:
            refused_in_one_line(KernelConfig.from_dict, fields)
        else:
            cfg = refused_in_one_line(KernelConfig, **fields)
            assert cfg is None or 2 <= cfg.nr_cpus <= 4096

    run()


def test_build_alloc_info():
    sizes = st.one_of(st.none(), st.integers(0, 1 << 20), around(2**31, 2**64),
                      st.sampled_from([True, 1.5, "8K"]))

    @fuzz_settings(8)
    @given(sizes, st.one_of(st.integers(1, 4096), around(4096)), sizes, sizes,
           st.one_of(st.none(), st.sampled_from([4096, 8192, 2**21, 2**40, 3 * 4096])),
           st.sampled_from([4096, 16384, 65536, 8192]))
    def run(static, nr_cpus, reserved, dyn, atom, page):
        ai = refused_in_one_line(build_alloc_info, static, nr_cpus=nr_cpus, page_size=page,
                                 reserved_size=reserved, dyn_size=dyn, atom_size=atom)
        # struct pcpu_chunk counts a unit's bytes in an int (mm/percpu-internal.h).
        assert ai is None or ai.size_sum <= 2**31 - 1

    run()


def test_core_profile_from_dict():
    keys = st.sampled_from([*sorted(CORE), "costs", "load", "alu"])

    @fuzz_settings(8)
    @given(st.one_of(json_values, st.dictionaries(keys, json_values, max_size=4),
                     st.builds(lambda k, v: {**CORE, k: v}, keys, json_values)))
    def run(data):
        refused_in_one_line(core_profile_from_dict, data)

    run()


cells = st.one_of(st.none(), int_text(0, 4096, 2**63, 2**64), weird_text,
                  st.floats(allow_nan=True, allow_infinity=True), st.booleans())


def test_validate_requests():
    columns = ["op", "id", "size", "align", "reserved", "atomic", "extra"]

    @fuzz_settings(4)
    @given(st.lists(st.fixed_dictionaries(
        {}, optional={c: st.one_of(cells, st.sampled_from(["alloc", "free"])) for c in columns}),
        max_size=6))
    def run(rows):
        frame = pd.DataFrame(rows, dtype=object)
        out = refused_in_one_line(validate_requests, frame)
        assert out is None or set(out["op"]) <= {"alloc", "free"}

    run()


def test_validate_workload():
    values = {"time": int_text(0, 2**63), "cpu": int_text(0, 4095), "task": int_text(0),
              "op": st.sampled_from(["add", "read", "cmpxchg128", "nop"]),
              "size": st.sampled_from(["1", "8", "16", "3"]), "variable": weird_text,
              "value": int_text(2**63, 2**64), "flavour": st.sampled_from(["raw_cpu", "x", ""]),
              "old": int_text(2**63)}

    @fuzz_settings(4)
    @given(st.lists(st.fixed_dictionaries(
        {c: st.one_of(values[c], cells) for c in REQUIRED_COLUMNS},
        optional={"flavour": values["flavour"], "old": values["old"], "junk": cells}),
        max_size=5), st.one_of(st.none(), st.integers(-2, 5000)))
    def run(rows, nr_cpus):
        frame = pd.DataFrame(rows, columns=sorted({k for r in rows for k in r}) or None,
                             dtype=object)
        out = refused_in_one_line(validate_workload, frame, "w.csv",
                                  nr_cpus=nr_cpus)
        assert out is None or out["cpu"].between(0, 4095).all()

    run()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_widget_fields():
    """The control panel and the page-table explorer's custom address: a bad value is
    refused in one line, shown in the panel, and the previous figure stays."""
    widgets = pytest.importorskip("percpu_explorer.ui.widgets")
    panel = widgets.ControlPanel()
    explorer = widgets.PageTableExplorer(panel)

    @fuzz_settings(2)
    @given(st.dictionaries(st.sampled_from(["kernel", "page_size", "va_bits", "vabits_actual",
                                            "kasan", "local_percpu", "nr_cpus", "bogus"]),
                           st.one_of(anything, st.sampled_from([4096, 48, "7.1", True, 4])),
                           max_size=2),
           st.one_of(weird_text, st.integers(-(2**65), 2**65).map(hex)))
    def run(values, custom):
        before = panel.values
        if refused_in_one_line(panel.set, **values) is None:
            assert panel.values == before and panel.message.value
        panel.set(**before)
        explorer.controls["custom"].value = custom
        figure = json.dumps(explorer.figure.to_plotly_json(), default=str)
        updates = explorer.updates
        explorer.controls["address"].value = "custom"
        if explorer.error is not None:  # refused: the message shows, the figure stays
            TALLY.cases["library"] += 1
            assert "\n" not in explorer.error and explorer.updates == updates
            assert json.dumps(explorer.figure.to_plotly_json(), default=str) == figure
        explorer.controls["address"].value = explorer.ADDRESSES[0]
        explorer.controls["custom"].value = ""

    run()
