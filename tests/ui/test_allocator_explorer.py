"""The allocator explorer as a person uses it: it opens on the chunk the last request
touched, every step is visible (the area outlined, the title naming the request), a chunk
that does not exist at a step is said so, and no figure ever carries a NaN or infinity
(a browser cannot be sent one: the widget message fails and the figure stays empty)."""

import json
import math

import pytest
from ipywidgets.widgets.widget import _remove_buffers

from percpu_explorer import KernelConfig, compute_layout, valid_configs
from percpu_explorer.errors import InputError
from percpu_explorer.percpu import boot_percpu, step_history
from percpu_explorer.ui import plots
from percpu_explorer.ui.widgets import AllocatorExplorer
from percpu_explorer.ui.widgets.allocator import FOLLOW

N = 80  # requests of the small history the tests step through (60 allocations, 20 frees)


def finite_everywhere(value, where="figure"):
    """Every number in a figure's JSON-ready data is finite."""
    if isinstance(value, float):
        assert math.isfinite(value), where
    elif isinstance(value, dict):
        for key, item in value.items():
            finite_everywhere(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for i, item in enumerate(value):
            finite_everywhere(item, f"{where}[{i}]")
    elif hasattr(value, "tolist"):  # numpy arrays and scalars
        finite_everywhere(value.tolist(), where)


def _no_constant(name):
    raise AssertionError(f"the figure's JSON holds {name}, which JSON.parse refuses")


def widget_message(explorer):
    """What ipykernel sends the browser for the explorer's figure: the widget state with
    its buffers taken out, as JSON that refuses NaN (json_clean's allow_nan=False); the
    figure inside it as the page's JSON.parse reads it (no NaN or Infinity)."""
    state, _, _ = _remove_buffers(explorer.figure.get_state())
    message = json.dumps(state, allow_nan=False, default=str)
    json.loads(state["spec"], parse_constant=_no_constant)
    return message


def shows(explorer):
    """The figure's JSON-ready data and layout, every number checked."""
    data = [t.to_plotly_json() for t in explorer.figure.data]
    finite_everywhere(data)
    finite_everywhere(explorer.figure.layout.to_plotly_json())
    widget_message(explorer)
    return data


@pytest.fixture(scope="module")
def explorer():
    return AllocatorExplorer(n_alloc=60, n_free=20)


def title(explorer):
    """The figure's title as one line (the figure wraps it to fit)."""
    return explorer.figure.layout.title.text.replace("<br>", " ")


def trace(explorer, prefix):
    return next((t for t in explorer.figure.data if t.name and t.name.startswith(prefix)),
                None)


def test_it_opens_on_the_chunk_of_the_last_request_with_its_area_outlined(explorer):
    explorer.set(step=N, chunk=FOLLOW, view="chunk map")
    last = explorer.run.steps[-1]
    assert explorer.current is last and explorer.shown_chunk == last.chunk_id
    heading = title(explorer)
    assert heading.startswith(f"Request {N} of {N}: {last.sentence()}")
    assert "4K/48, 4 CPUs, mainline v7.1" in heading  # the panel's configuration
    outline = trace(explorer, f"request {N}:")
    assert outline is not None
    xs = [x for x in outline.x if x is not None]
    assert min(xs) == last.off % 4096 and sum(
        outline.x[i + 1] - outline.x[i] for i in range(0, len(outline.x), 6)) == last.size
    shows(explorer)


def test_every_step_changes_what_is_shown(explorer):
    titles, outlines = set(), set()
    for s in range(1, N + 1, 7):
        explorer.set(step=s)
        step = explorer.run.step(s)
        assert title(explorer).startswith(f"Request {s} of {N}: ")
        assert len(explorer.decisions) == s
        titles.add(title(explorer))
        outline = trace(explorer, f"request {s}:")
        assert outline is not None and explorer.shown_chunk == step.chunk_id
        outlines.add(tuple(outline.x))
    assert len(titles) == len(range(1, N + 1, 7))  # each step reads differently
    assert len(outlines) > 1  # and outlines another area


def test_step_zero_shows_the_first_chunk_as_booted(explorer):
    explorer.set(step=0, chunk=FOLLOW, view="chunk map")
    assert title(explorer).startswith(
        f"Request 0 of {N}: the allocator as booted")
    assert explorer.shown_chunk == explorer.alloc.first_chunk.id
    # No degenerate axes: the pages of the chunk, page 0 on top.
    nr_pages = explorer.alloc.first_chunk.nr_pages
    assert tuple(explorer.figure.layout.yaxis.range) == (nr_pages - 0.5, -0.5)
    assert tuple(explorer.figure.layout.xaxis2.range) == (0, 4096)
    shows(explorer)


def test_a_chosen_chunk_that_does_not_exist_yet_is_said_so():
    explorer = AllocatorExplorer()  # 300 allocations, 100 frees: chunk 2 comes later
    dynamic = explorer.run.chunks[explorer.run.chunks["kind"] == "dynamic"].iloc[0]
    chunk, born = int(dynamic["id"]), int(dynamic["created_at"])
    offered = [v for _, v in explorer.controls["chunk"].options]
    assert offered == [FOLLOW, 0, 1, chunk]  # every chunk of the history, at any step
    explorer.set(chunk=chunk, step=born - 1)
    why = (f"chunk {chunk} does not exist yet at request {born - 1}: the allocator creates "
           f"it during request {born}")
    assert why in title(explorer) and why in explorer.panel.message.value
    assert explorer.shown_chunk is None and explorer.controls["chunk"].value == chunk
    assert trace(explorer, "chunk (all units)") is not None  # the chunks that exist
    explorer.set(step=born)
    assert explorer.shown_chunk == chunk and why not in explorer.panel.message.value
    shows(explorer)


def test_bad_requests_and_configurations_say_why_in_words(explorer):
    with pytest.raises(InputError, match=rf"request 9999 is outside 0\.\.{N}"):
        explorer.set(step=9999)
    with pytest.raises(ValueError, match="chunk 99 is not offered"):
        explorer.set(chunk=99)
    before = title(explorer)
    # 16K/48 with patch 02/11: the two 2 * 128TB areas push vmalloc below its start.
    assert not compute_layout(KernelConfig(page_size=16384, va_bits=48,
                                           local_percpu=True)).sane
    with pytest.raises(InputError, match="local percpu does not fit 16K/48"):
        explorer.set(page_size=16384, va_bits=48, local_percpu=True)
    assert explorer.panel.values["page_size"] == 4096  # nothing changed
    # As a person does it: 16K/48 first, then the tick; the panel goes back and says why.
    explorer.set(page_size=16384, va_bits=48)
    drawn = title(explorer)
    assert drawn != before and "16K/48" in drawn
    explorer.panel.local_percpu.value = True
    message = explorer.panel.message.value
    assert "local percpu does not fit 16K/48" in message and "local_percpu=" not in message
    assert "16K/47" in message  # a page size / VA bits that fit
    assert explorer.panel.values["local_percpu"] is False
    assert title(explorer) == drawn
    explorer.set(page_size=4096, va_bits=48, local_percpu=False)
    # 16K/36 patched: PGDIR_SIZE 32M, so a 64MB Global Percpu area; 512 units of 144KB
    # (72MB) do not fit, 455 (~64MB) do: 64MB // 144KB = 455.
    assert (64 << 20) // (144 << 10) == 455
    with pytest.raises(ValueError):
        explorer._check(KernelConfig(page_size=16384, va_bits=36, local_percpu=True,
                                     nr_cpus=512))
    try:
        explorer._check(KernelConfig(page_size=16384, va_bits=36, local_percpu=True,
                                     nr_cpus=512))
    except InputError as exc:
        assert str(exc).startswith("512 CPUs do not fit 16K/36 with local percpu")
        assert str(exc).endswith("CPUs can be at most 455 here")


def test_panel_offers_only_controls_the_allocator_depends_on():
    # KASAN moves neither vmalloc, the linear map nor the Global Percpu area (kernel
    # layouts of every era), so the allocator's figures cannot depend on it.
    assert "kasan" not in AllocatorExplorer.PANEL_FIELDS
    for kernel in ("6.1", "7.1"):
        for cfg in valid_configs(kernel):
            if cfg.kasan == "none":
                continue
            plain = compute_layout(cfg.replace(kasan="none")).symbols
            sym = compute_layout(cfg).symbols
            for name in ("VMALLOC_START", "VMALLOC_END", "_PAGE_OFFSET(vabits_actual)"):
                assert sym[name] == plain[name], (cfg.label(), name)


CONFIGS = [cfg.replace(local_percpu=local, nr_cpus=nr)
           for cfg in valid_configs("7.1", kasan=("none",))
           for local in (False, True)
           for nr in (2, 64)
           if not local or compute_layout(cfg.replace(local_percpu=True)).sane]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.label()}-"
                         f"{'local' if c.local_percpu else 'mainline'}-{c.nr_cpus}")
def test_no_figure_holds_nan_or_infinity(cfg):
    # Every chunk of the history (reserved and first chunks have bytes outside their
    # map), both views, the start and the end of the history.
    alloc, _ = boot_percpu(cfg, 101464, cfg.nr_cpus, page_tables=False)
    step_history(alloc, [{"op": "alloc", "id": i, "size": 32768, "align": 4096}
                         for i in range(6)] + [{"op": "alloc", "id": 9, "size": 8}])
    figures = [plots.chunks_figure(alloc, mark=alloc.chunks[-1].id)]
    for chunk in alloc.chunks:
        figures.append(plots.chunk_map_heatmap(alloc, chunk.id, mark=(0, 8)))
    for fig in figures:
        finite_everywhere([t.to_plotly_json() for t in fig.data])
        finite_everywhere(fig.layout.to_plotly_json())
        json.dumps(fig.to_plotly_json(), allow_nan=False, default=lambda v: v.tolist())


def test_the_explorer_sends_no_nan_for_each_control(explorer):
    for values in ({"step": 0}, {"step": 5}, {"view": "chunks"}, {"view": "chunk map"},
                   {"chunk": 0}, {"chunk": 1}, {"chunk": FOLLOW}, {"page_size": 65536},
                   {"nr_cpus": 64}, {"va_bits": 42}, {"local_percpu": True},
                   {"kernel": "6.12"}):
        explorer.set(**values)
        assert explorer.error is None, (values, explorer.error)
        shows(explorer)
    explorer.set(page_size=4096, va_bits=48, nr_cpus=4, local_percpu=False, kernel="7.1")


def test_switching_views_leaves_nothing_of_the_other_view(explorer):
    # The page's Plotly.react replaces the layout with the one sent: the chunk map's
    # second axes and its arrow must not be in what the chunks view sends, nor the other
    # way round.
    explorer.set(step=N, chunk=FOLLOW, view="chunk map")
    assert "xaxis2" in json.loads(explorer.figure.spec)["layout"]
    explorer.set(view="chunks")
    layout = json.loads(explorer.figure.spec)["layout"]
    assert "xaxis2" not in layout and "yaxis2" not in layout and "annotations" not in layout
    assert "xaxis2" not in explorer.figure.layout.to_plotly_json()
    explorer.set(view="chunk map")
    assert "xaxis2" in json.loads(explorer.figure.spec)["layout"]


