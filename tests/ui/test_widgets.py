"""The controls layer, driven headless (ipywidgets 8 needs no kernel): set values as a
user or from code, assert on the panel's choices and the explorers' PlotViews."""

import json
import re

import plotly.graph_objects as go
import pytest
from plotly.io.json import to_json_plotly

from percpu_explorer import KernelConfig, compute_layout
from percpu_explorer.kernel.config import PAGE_SIZES, va_bits_choices, vabits_actual_choices
from percpu_explorer.ui import plots, widgets
from percpu_explorer.ui.widgets import (
    EXPLORERS,
    AllocatorExplorer,
    ControlPanel,
    CostExplorer,
    LayoutExplorer,
    PageTableExplorer,
    PlotView,
)

# arch/arm64/Kconfig, choice "Virtual address space size", written out by hand:
# ARM64_VA_BITS_52 depends on ARM64_64K_PAGES before v6.9 (LPA2 for 4K/16K came in v6.9).
KCONFIG_VA_BITS = {
    ("6.8", 4096): (39, 48), ("6.8", 16384): (36, 47, 48), ("6.8", 65536): (42, 48, 52),
    ("7.1", 4096): (39, 48, 52), ("7.1", 16384): (36, 47, 48, 52),
    ("7.1", 65536): (42, 48, 52),
}
# VA_BITS_MIN (asm/memory.h): a 52-bit kernel on hardware without 52-bit VA.
HW_FALLBACK = {4096: 48, 16384: 47, 65536: 48}


@pytest.fixture(scope="module")
def shared():
    """All four explorers on one panel."""
    panel = ControlPanel()
    return panel, [cls(panel) for cls in EXPLORERS]


def changes_of(panel):
    seen = []
    panel.on_change(lambda: seen.append(panel.config))
    return seen


# --- the panel -----------------------------------------------------------------------------

@pytest.mark.parametrize(("kernel", "page_size"), sorted(KCONFIG_VA_BITS))
def test_va_bits_offered_follow_kconfig(kernel, page_size):
    panel = ControlPanel()
    panel.kernel.value = kernel  # as a user would
    panel.page_size.value = page_size
    assert panel.choices("va_bits") == KCONFIG_VA_BITS[kernel, page_size]
    assert tuple(v for _, v in panel.va_bits.options) == KCONFIG_VA_BITS[kernel, page_size]
    assert panel.config.va_bits in KCONFIG_VA_BITS[kernel, page_size]


@pytest.mark.parametrize("page_size", PAGE_SIZES)
def test_vabits_actual_is_offered_only_for_52_bit(page_size):
    panel = ControlPanel(page_size=page_size)
    for va_bits in panel.choices("va_bits"):
        panel.va_bits.value = va_bits
        shown = panel.vabits_actual.layout.display != "none"
        assert shown == (va_bits == 52)
        if va_bits == 52:
            assert panel.choices("vabits_actual") == (52, HW_FALLBACK[page_size])
            panel.vabits_actual.value = HW_FALLBACK[page_size]
            assert panel.config.vabits_actual == HW_FALLBACK[page_size]
        else:
            assert panel.choices("vabits_actual") == ()
            assert panel.config.vabits_actual == va_bits


def test_parent_change_moves_dependants_before_one_notification():
    panel = ControlPanel(kernel="7.1", page_size=4096, va_bits=52, vabits_actual=48,
                         local_percpu=True)
    seen = changes_of(panel)
    panel.kernel.value = "6.8"  # 4K/52 and local percpu do not exist in 6.8
    assert len(seen) == 1  # no broken intermediate configuration was announced
    assert (seen[0].va_bits, seen[0].vabits_actual, seen[0].local_percpu) == (48, 48, False)
    assert panel.local_percpu.disabled and not panel.local_percpu.value
    panel.kernel.value = "6.9"
    assert not panel.local_percpu.disabled
    panel.page_size.value = 16384  # 48 is still offered: kept
    assert panel.config.va_bits == 48 and len(seen) == 3


def test_kasan_offers_only_what_kconfig_allows():
    panel = ControlPanel(kernel="7.1", page_size=16384, va_bits=48, kasan="generic")
    panel.kernel.value = "6.8"  # HAVE_ARCH_KASAN excludes 16K/48 before 6.9
    assert panel.choices("kasan") == ("none",) and panel.config.kasan == "none"
    panel.va_bits.value = 47
    assert panel.choices("kasan") == ("none", "generic", "sw-tags")


def test_invalid_values_from_code_raise_readably_and_change_nothing():
    panel = ControlPanel()
    before = panel.config
    with pytest.raises(ValueError, match="choose one of 36, 47, 48, 52"):
        panel.set(page_size="16K", va_bits=39)
    assert panel.config == before
    assert "va_bits 39" in panel.message.value and "Traceback" not in panel.message.value
    with pytest.raises(ValueError, match=r"from 6\.9 on"):
        panel.set(kernel="6.8", local_percpu=True)
    with pytest.raises(ValueError, match="unknown control"):
        panel.set(colour="red")
    panel.set(page_size=16384)
    assert panel.message.value == "" and panel.config.va_bits == 48


# --- every explorer through every configuration ---------------------------------------------

def _configurations():
    for kernel, locals_ in (("7.1", (False, True)), ("6.8", (False,)), ("5.17", (False,))):
        for page_size in PAGE_SIZES:
            for va_bits in va_bits_choices(page_size, kernel):
                for actual in vabits_actual_choices(page_size, va_bits):
                    for local in locals_:
                        yield {"kernel": kernel, "page_size": page_size, "va_bits": va_bits,
                               "vabits_actual": actual, "local_percpu": local}


def test_every_explorer_draws_every_valid_configuration_or_goes_back(shared):
    panel, explorers = shared
    configs = list(_configurations())
    assert len(configs) == 26 + 9 + 9  # 7.1 with and without the patch, 6.8, 5.17
    refused = []
    for values in configs:
        before = panel.values
        explorers[0].set(**values)  # one panel change redraws all four
        asked = panel.config if panel.values != before else None
        errors = [e.error for e in explorers if e.error is not None]
        if not errors:
            assert all(e.figure.layout.title.text for e in explorers)
        else:
            # only a patched layout that cannot work may be refused: the panel goes back
            cfg = compute_layout(KernelConfig(**{**before, **values}))
            assert cfg.problems and values["local_percpu"], values
            assert panel.values == before, values
            assert any(e in panel.message.value for e in errors)
            refused.append(values)
        # the figures always show what the panel shows
        assert all(e.drawn == panel.values for e in explorers), (values, asked)
        assert "Traceback" not in panel.message.value
    # 16K/48 and 4K/52 are broken with the patch (series.md; layout tests)
    assert {(v["page_size"], v["va_bits"]) for v in refused} >= {(16384, 48)}


def test_kasan_modes_and_cpu_counts_draw(shared):
    panel, explorers = shared
    for kasan in ("generic", "sw-tags"):
        for nr_cpus in (2, 64):
            explorers[0].set(kernel="7.1", page_size=4096, va_bits=48, local_percpu=True,
                             kasan=kasan, nr_cpus=nr_cpus)
            assert [e.error for e in explorers] == [None] * 4
    panel.set(kasan="none", nr_cpus=4, local_percpu=False)


# --- broken layouts and failing updates -----------------------------------------------------

def test_broken_patched_layout_shows_its_problems_without_a_traceback():
    explorer = LayoutExplorer().set(page_size=16384, va_bits=48, local_percpu=True)
    patched = compute_layout(explorer.config)
    assert patched.problems and explorer.error is None
    bar = next(t for t in explorer.figure.data if t.name == "patched (RFC 02/11) (schematic)")
    assert plots.PROBLEM_COLOR in bar.marker.color
    message = explorer.panel.message.value
    for problem in patched.problems:
        assert problem.code in message
    assert "Traceback" not in message
    explorer.set(local_percpu=False)
    assert explorer.panel.message.value == ""


def test_failing_update_goes_back_to_the_figure_shown_and_says_why(monkeypatch):
    explorer = PageTableExplorer()
    figure, walk = explorer.figure, explorer.walk
    title = figure.layout.title.text
    explorer.set(address="custom", custom="not-an-address")
    assert explorer.figure is figure and figure.layout.title.text == title
    assert explorer.walk is walk  # the state still matches the figure shown
    assert "custom VA 'not-an-address' is not a number" in explorer.error
    message = explorer.panel.message.value
    assert "Cannot draw this choice" in message and "back to the figure shown" in message
    # the address choice goes back to the one walked; the typed text stays to be corrected
    assert explorer.controls["address"].value == "percpu unit (linear map)"
    assert explorer.controls["custom"].value == "not-an-address"

    def boom(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(plots, "walk_figure", boom)
    explorer.set(address="percpu unit (linear map)", cpu=1)
    assert explorer.error == "RuntimeError: plotting failed"
    assert figure.layout.title.text == title and "Traceback" not in explorer.panel.message.value
    assert explorer.controls["cpu"].value == 0  # back to the CPU the figure walks
    monkeypatch.undo()
    explorer.set(cpu=1)
    assert explorer.error is None and explorer.panel.message.value == ""
    assert "on CPU 1" in figure.layout.title.text


def test_a_change_sends_the_browser_the_whole_figure_in_one_message(monkeypatch):
    # Each message makes plotly.js redraw; a redraw of the map costs ~100-250 ms in
    # Chromium, so a change of page size must reach the browser as one state update,
    # carrying the figure the explorer now holds (the page's Plotly.react diffs it).
    explorer = LayoutExplorer()
    figure = explorer.figure
    assert isinstance(figure, PlotView)
    sent = []
    original = figure.send_state

    def counting(key=None):
        sent.append(sorted(key) if isinstance(key, list | tuple | set) else key)
        return original(key)
    monkeypatch.setattr(figure, "send_state", counting)
    explorer.set(page_size=16384)
    assert explorer.figure is figure and sent == ["spec"]
    assert json.loads(figure.spec) == json.loads(to_json_plotly(figure.to_plotly_json()))
    assert "16K/48" in json.loads(figure.spec)["layout"]["title"]["text"]
    before = figure.spec
    explorer.set(page_size=16384)  # nothing changed: nothing sent
    assert sent == ["spec"] and figure.spec == before


def test_page_table_walk_follows_cpu_and_address():
    explorer = PageTableExplorer(page_size=4096, va_bits=48, local_percpu=True, nr_cpus=4)
    assert explorer.controls["cpu"].options == (0, 1, 2, 3)
    explorer.set(address="Local Percpu (first chunk)", cpu=2)
    assert explorer.walk.ok and explorer.walk.cpu == 2
    local_pa = explorer.walk.pa
    explorer.set(cpu=3)
    assert explorer.walk.pa != local_pa  # the same VA, each CPU's own unit
    explorer.set(address="VMALLOC_START (unmapped)")
    assert not explorer.walk.ok and "fault" in explorer.figure.layout.title.text
    explorer.set(local_percpu=False, nr_cpus=2)
    assert "Local Percpu (first chunk)" not in explorer.controls["address"].options
    assert explorer.controls["cpu"].value == 1
    with pytest.raises(ValueError, match="cpu 5 is not offered"):
        explorer.set(nr_cpus=4, cpu=5)  # nothing changes, not even the panel
    assert explorer.config.nr_cpus == 2 and explorer.controls["cpu"].options == (0, 1)
    assert "cpu 5" in explorer.panel.message.value


def test_allocator_steps_through_the_history():
    explorer = AllocatorExplorer(n_alloc=60, n_free=20)
    explorer.set(step=0)
    assert len(explorer.decisions) == 0
    explorer.set(step=80, view="chunks")
    assert len(explorer.decisions) == 80
    assert explorer.figure.layout.title.text.startswith("Request 80 of 80: ")
    assert [b.y for b in explorer.figure.data[:1]] == [
        tuple(b.y) for b in plots.chunks_figure(explorer.alloc).data[:1]]
    _, last = explorer.controls["chunk"].options[-1]
    explorer.set(view="chunk map", chunk=last)
    assert f"chunk {last}" in explorer.figure.layout.title.text
    with pytest.raises(ValueError, match="chunk 99"):
        explorer.set(chunk=99)


def test_replay_offers_files_and_generators():
    explorer = CostExplorer(nr_cpus=2)
    keys = [key for _, key in explorer.workload_choices()]
    assert "file:tiny.csv" in keys and "generate:vm-events" in keys
    explorer.set(workload="file:tiny.csv", core=explorer.controls["core"].options[-1])
    assert explorer.error is None and len(explorer.cost.totals) > 1
    explorer.set(kernel="6.12", workload="generate:percpu-ref", preempt="none")
    assert "preempt=none" in explorer.figure.layout.title.text
    assert explorer.workload(explorer.config)["cpu"].max() <= 1
    with pytest.raises(ValueError, match="workload"):
        explorer.set(workload="file:missing.csv")


def test_replay_offers_only_the_preemption_models_the_kernel_builds():
    # kernel/Kconfig.preempt after 7dadeaa6e851 (v7.0): arm64 has only full, lazy and rt;
    # v6.12 offers none, voluntary, full and rt (arm64 PREEMPT_LAZY came in v6.16)
    explorer = CostExplorer(nr_cpus=2, kernel="6.12")
    assert tuple(explorer.controls["preempt"].options) == ("none", "voluntary", "full", "rt")
    explorer.set(preempt="voluntary")
    explorer.set(kernel="7.1")  # voluntary is gone: back to full, and the figure says so
    assert tuple(explorer.controls["preempt"].options) == ("full", "lazy", "rt")
    assert explorer.controls["preempt"].value == "full"
    assert "preempt=full" in explorer.figure.layout.title.text and explorer.error is None
    with pytest.raises(ValueError, match="preempt 'none' is not offered"):
        explorer.set(preempt="none")
    # tpidr_el1 and tpidr_el2 are one cost class: VHE would change no price, so no control
    assert "vhe" not in explorer.controls


def test_replay_offers_only_the_panel_controls_its_price_depends_on():
    explorer = CostExplorer()
    assert explorer.panel.offered == ("kernel", "nr_cpus")
    for key in ("page_size", "va_bits", "kasan", "local_percpu"):
        assert getattr(explorer.panel, key).layout.display == "none"


def test_replay_prices_the_local_scheme_only_from_v6_9():
    # RFC 02/11 places the Local Percpu area in the v6.9+ layout (vmemmap ending at -1G);
    # before v6.9 there is no local scheme to price
    explorer = CostExplorer(kernel="6.1")
    assert set(explorer.cost.totals["scheme"]) == {"today"}
    assert "local percpu needs v6.9+" in explorer.figure.layout.title.text
    explorer.set(kernel="6.9")
    assert set(explorer.cost.totals["scheme"]) == {"today", "local"}
    assert "needs v6.9" not in explorer.figure.layout.title.text


def test_replay_title_says_the_panels_cpus():
    explorer = CostExplorer(nr_cpus=4)
    assert " on 4 CPUs," in explorer.figure.layout.title.text
    # 64 CPUs: a generated pattern spreads 25 units per CPU over every one of them
    explorer.set(nr_cpus=64)
    assert " on 64 CPUs," in explorer.figure.layout.title.text
    assert len(explorer.cost.per_cpu) == 64 and explorer.cost.nr_cpus == 64
    # a file keeps its CPUs (mix.parquet: 8, data/workloads/README.md); more are idle
    explorer.set(workload="file:mix.parquet")
    assert " on 64 CPUs (8 with ops)," in explorer.figure.layout.title.text
    assert explorer.cost.per_cpu["ops"].iloc[8:].sum() == 0


def test_replay_file_on_too_few_cpus_raises_the_cpus_or_goes_back():
    explorer = CostExplorer(nr_cpus=4)
    explorer.controls["workload"].value = "file:mix.parquet"  # as a person picks it
    assert explorer.panel.config.nr_cpus == 8 and explorer.error is None
    assert "CPUs set from 4 to 8" in explorer.panel.message.value
    assert " on 8 CPUs," in explorer.figure.layout.title.text
    explorer.panel.nr_cpus.value = 4  # fewer than the file uses: refused, back to 8
    assert explorer.panel.config.nr_cpus == 8 and explorer.panel.nr_cpus.value == 8
    assert "CPUs must be 8 or more" in explorer.panel.message.value
    assert " on 8 CPUs," in explorer.figure.layout.title.text


def test_widget_composes_panel_controls_and_figure():
    explorer = PageTableExplorer()
    box = explorer.widget
    assert box.children[0] is explorer.panel.widget
    assert box.children[-1] is explorer.figure
    assert explorer.panel.message in explorer.panel.widget.children
    assert widgets.LayoutExplorer(explorer.panel).panel is explorer.panel


def test_explorers_display_without_a_browser(capsys):
    explorer = LayoutExplorer()
    explorer._ipython_display_()
    explorer.panel._ipython_display_()
    assert explorer.widget is explorer.widget  # one container, displayed again and again


def test_an_explorer_displays_the_figure_shown_now_as_html_beside_its_widget(monkeypatch):
    """The display bundle: the widget for the front end, and the figure shown now as HTML
    marked with the PlotView's placeholder (the app's page draws it before its widgets
    are live; the PlotView removes it once it draws)."""
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display",
                        lambda obj, raw=False: shown.append((obj, raw)))
    explorer = LayoutExplorer()
    explorer._ipython_display_()
    explorer.panel.set(page_size=65536, va_bits=42)
    explorer._ipython_display_()
    (first, raw), (second, _) = shown
    assert raw
    view = first["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == explorer.widget.model_id
    placeholder = explorer.figure.placeholder
    assert placeholder.startswith("percpu-first-")
    for bundle in (first, second):  # one placeholder per view, whatever it shows
        html = bundle["text/html"]
        assert f'<div class="percpu-first-draw" data-percpu-first="{placeholder}">' in html
        assert 'class="plotly-graph-div percpu-page-figure"' in html
    # the HTML draws the figure shown at the time
    for bundle, title in ((first, "address space, 4K/48,"), (second, "address space, 64K/42,")):
        fig = json.loads(re.search(r", fig = (\{.*\}), config = ", bundle["text/html"]).group(1))
        assert title in fig["layout"]["title"]["text"]
        # its height kept before it draws: the layout's, else plotly.js's default of 450 px
        # (plotly.js src/plots/layout_attributes.js: height dflt 450)
        assert f'style="width:100%;height:{fig["layout"].get("height", 450)}px;"' in bundle[
            "text/html"]
    assert fig["data"] == json.loads(explorer.figure.spec)["data"]


# --- the panel follows the figure; local percpu is a wish -----------------------------------

def test_a_configuration_the_walk_cannot_draw_puts_the_panel_back():
    # 16K/48 with the patch: vmalloc would end below its start (layout tests), so there
    # is no first chunk to walk: panel and figure go back to 4K/48 with the patch.
    explorer = PageTableExplorer(local_percpu=True)
    title = explorer.figure.layout.title.text
    with pytest.raises(ValueError):
        explorer.panel.page_size.value = 16384  # as a person picks it
        if explorer.error:
            raise ValueError(explorer.error)
    assert explorer.panel.values["page_size"] == 4096 and explorer.panel.page_size.value == 4096
    assert explorer.drawn == explorer.panel.values
    assert explorer.figure.layout.title.text == title
    message = explorer.panel.message.value
    assert "Cannot draw 16K/48, local percpu, kernel 7.1, 4 CPUs" in message
    assert "back to 4K/48, local percpu, kernel 7.1, 4 CPUs" in message
    assert "local_percpu" not in message  # words for a person, not Python fields


def test_local_percpu_comes_back_after_an_older_kernel():
    panel = ControlPanel(local_percpu=True)
    panel.kernel.value = "6.1"  # before v6.9 the patch cannot apply (layout formulas)
    assert panel.values["local_percpu"] is False and panel.local_percpu.disabled
    assert "needs kernel v6.9 or later" in panel.message.value
    panel.kernel.value = "7.1"
    assert panel.values["local_percpu"] is True and panel.local_percpu.value is True
    assert panel.message.value == ""
    panel.local_percpu.value = False  # unticked by hand: stays off
    panel.kernel.value = "6.1"
    panel.kernel.value = "7.1"
    assert panel.values["local_percpu"] is False and panel.message.value == ""


def test_an_explorer_offers_only_the_controls_its_figure_uses():
    class KernelOnly(LayoutExplorer):
        PANEL_FIELDS = ("kernel", "nr_cpus")

    explorer = KernelOnly()
    assert explorer.panel.offered == ("kernel", "nr_cpus")
    assert explorer.panel.page_size.layout.display == "none"
    assert explorer.panel.choices("va_bits") == () and explorer.panel.choices("kernel")
    with pytest.raises(ValueError, match="unknown control"):
        ControlPanel(offer=("colour",))


def _plain(figure):
    data = figure.to_plotly_json()
    for trace in data["data"]:
        trace.pop("uid", None)
    return data


@pytest.mark.parametrize("explorer_class, steps", [
    (LayoutExplorer, [{"page_size": 16384}, {"local_percpu": True}, {"page_size": 4096},
                      {"va_bits": 52}, {"local_percpu": False}]),
    (PageTableExplorer, [{"cpu": 1}, {"page_size": 65536}, {"local_percpu": True},
                         {"address": "Local Percpu (first chunk)"}]),
    (AllocatorExplorer, [{"step": 50}, {"view": "chunks"}, {"view": "chunk map"},
                         {"nr_cpus": 8}]),
    (CostExplorer, [{"kernel": "6.12"}, {"nr_cpus": 8}, {"kernel": "6.1"}, {"kernel": "7.1"}]),
])
def test_a_redrawn_figure_equals_a_fresh_one(explorer_class, steps):
    """Only what changed is sent (one update), yet after any sequence of changes the
    widget holds exactly the figure a fresh explorer draws for the same choices: no
    trace, axis or annotation of an earlier figure is left behind."""
    explorer = explorer_class()
    for values in steps:
        explorer.set(**values)
        assert explorer.error is None, values
        fresh = explorer._build(explorer.config)
        assert _plain(explorer.figure) == _plain(go.Figure(fresh)), values


def test_replay_offers_the_census_workloads_counted_in_a_real_kernel():
    explorer = CostExplorer(nr_cpus=2)
    keys = [key for _, key in explorer.workload_choices()]
    assert "census:debian-6.12.117-max-smp2/page_faults" in keys
    assert not any(k.endswith("/boot") for k in keys)
    explorer.controls["workload"].value = "census:debian-6.12.117-max-smp2/page_faults"
    assert explorer.error is None and explorer.cost.counted
    title = explorer.figure.layout.title.text
    assert "319,612 this_cpu ops counted (census debian-6.12.117-max-smp2, phase " \
        "page_faults, all CPUs together), kernel 7.1" in title
    # the per-CPU panel would put every op on CPU 0: the figure shows variables instead
    assert explorer.figure.layout.annotations[1].text.startswith("per variable")
    assert "PREEMPT_VOLUNTARY" in explorer.panel.message.value


def test_a_warmed_cost_explorer_reads_nothing_when_a_workload_is_picked(monkeypatch):
    """A pre-started kernel (Voila's VOILA_PREHEAT=True) reads every file and census
    workload before a visitor comes; a pick then reads nothing from disk."""
    from percpu_explorer.ui.widgets import cost as cost_widget

    monkeypatch.setenv("VOILA_PREHEAT", "True")
    explorer = CostExplorer()
    keys = [k for _, k in explorer.workload_choices() if not k.startswith("generate:")]
    assert any(k.startswith("census:") for k in keys) and any(k.startswith("file:")
                                                             for k in keys)

    def no_disk(*args, **kwargs):
        raise AssertionError("read from disk after warming")

    monkeypatch.setattr(cost_widget, "read_workload", no_disk)
    monkeypatch.setattr(cost_widget, "load_census", no_disk)
    for key in keys:
        explorer.controls["workload"].value = key
        assert explorer.error is None, (key, explorer.error)
        assert explorer.cost is not None and explorer.cost.events > 0
    monkeypatch.setenv("VOILA_PREHEAT", "False")  # a kernel started for a visitor: no wait
    assert [k for k, _ in CostExplorer()._cache] == ["generate:vm-events"]  # its first draw
