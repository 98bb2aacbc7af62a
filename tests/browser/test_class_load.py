"""A class in real browsers: Chromium pages (one browser, a context each) on the dashboards
at once, some closed mid-way; the figures update and the closed pages' kernels go.

`make test` runs the smoke test only (two pages, one tab closed). The class itself and the
first-figure timings with and without pre-started kernels run under `make load`
(PERCPU_CLASS_LOAD=1) and print their numbers."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import pytest

from percpu_explorer.paths import notebooks_dir
from percpu_explorer.ui import app, classload, classroom, voila_server

from .helpers import (
    STABLE_MS,
    WAIT,
    assert_clean_page,
    figure_state,
    open_dashboard,
    select,
    set_slider,
    wait_figure_changed,
)

pytestmark = pytest.mark.browser

CLASS_LOAD = os.environ.get("PERCPU_CLASS_LOAD") == "1"
needs_load = pytest.mark.skipif(not CLASS_LOAD, reason="the class load runs under `make load`")

# One control per dashboard with a figure, and a choice that redraws it (the values are
# the panel's own choices: page sizes of arm64, kernel releases of the catalogue).
CHANGES = {
    "01_address_space.ipynb": lambda page: select(page, "page size", "16K"),
    # (16K pages with the patch have no per-CPU page tables: 02 would keep its figure)
    "02_per_cpu_page_tables.ipynb": lambda page: select(page, "CPU", "2"),
    "03_percpu_allocator.ipynb": lambda page: set_slider(page, "request", 50),
    "04_this_cpu_replay.ipynb": lambda page: select(page, "kernel", "6.1"),
}
ALL = [n for n, _ in app.DASHBOARDS]


def _kernel_alive(base: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}api/kernels/{kernel_id}", timeout=30):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def _kernel_id(page) -> str:
    kernel_id = app.kernel_id_in(page.content())
    assert kernel_id, "no kernel id in the dashboard page"
    return kernel_id


def _wait_gone(base: str, kernel_ids: list[str], limit: float) -> float:
    t0 = time.monotonic()
    while any(_kernel_alive(base, k) for k in kernel_ids):
        assert time.monotonic() - t0 < limit, "a closed page's kernel is still running"
        time.sleep(1)
    return time.monotonic() - t0


def test_closing_a_tab_shuts_its_kernel_down(browser, voila_app):
    """Two visitors; one closes the tab (the page's unload handler asks Voila to shut its
    kernel down): that kernel goes, the other visitor's figure still updates."""
    contexts = [browser.new_context() for _ in range(2)]
    try:
        pages = [c.new_page() for c in contexts]
        for page in pages:
            open_dashboard(page, voila_app, "01_address_space.ipynb")
        ids = [_kernel_id(p) for p in pages]
        assert all(_kernel_alive(voila_app, k) for k in ids)
        pages[0].close(run_before_unload=True)
        _wait_gone(voila_app, ids[:1], limit=classroom.CULL_IDLE_S + classroom.CULL_INTERVAL_S)
        before = figure_state(pages[1])
        CHANGES["01_address_space.ipynb"](pages[1])
        assert wait_figure_changed(pages[1], before) != before
        assert _kernel_alive(voila_app, ids[1])
    finally:
        for c in contexts:
            c.close()


def _app_processes() -> list[psutil.Process]:
    """The app's server and kernels (children of this test process; not the browser)."""
    procs = []
    for p in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):  # gone or a zombie meanwhile
            if any(k in " ".join(p.cmdline()) for k in ("voila_server", "ipykernel")):
                procs.append(p)
    return procs


def _pools_filled(log_path: Path, n: int, timeout: float = 300) -> None:
    """Wait until Voila has started `n` pre-started kernels (its log says so each time a
    pool is full) and every kernel has finished running its notebook (the app's processes
    use less than 5% of a core over a second). A refill (n past the dashboards' count)
    first waits `REFILL_QUIET_S` after the kernel it replaces was taken."""
    deadline = time.monotonic() + timeout
    while log_path.read_text(errors="replace").count("is filled with") < n:
        assert time.monotonic() < deadline, "the pre-started kernels never got ready"
        time.sleep(1)
    if n > len(ALL):
        time.sleep(voila_server.REFILL_QUIET_S + 1)
    while True:
        procs = _app_processes()
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
        time.sleep(1)
        busy = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                busy += p.cpu_percent(None)
        if busy < 5:
            return
        assert time.monotonic() < deadline, "the pre-started kernels never finished"


# Records, from the page's first byte, when the explorer's first drawing (the page's HTML)
# and its live figure (the PlotView) are first drawn.
_WATCH_DRAWINGS = """(() => {
  const seen = window.__percpuSeen = {};
  new MutationObserver(() => {
    const now = performance.now();
    if (document.querySelector('.percpu-first-draw .main-svg') && seen.first === undefined)
      seen.first = now;
    if (document.querySelector('.percpu-plotview .main-svg') && seen.live === undefined)
      seen.live = now;
  }).observe(document, {childList: true, subtree: true});
})();"""


def test_a_pre_started_dashboard_draws_its_figure_before_the_page_is_live(
        page, console, tmp_path):
    """With a pre-started kernel the page comes whole: its HTML draws the explorer's
    figure (on the first screen) as soon as plotly.js is in, the live figure replaces it
    once the widgets have started, and no first drawing is left. (Without one, Voila
    shows the cells only once the kernel has run them all, when the widgets start too.)"""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(notebooks_dir() / "01_address_space.ipynb", folder)
    log_path = tmp_path / "voila.log"
    with log_path.open("wb") as log, app.running(notebooks=folder, log=log, timeout=120,
                                                 pool_size=1) as base:
        _pools_filled(log_path, 1)
        page.set_viewport_size({"width": 1280, "height": 2400})  # 01's explorer on screen
        page.add_init_script(_WATCH_DRAWINGS)
        open_dashboard(page, base, "01_address_space.ipynb")
        seen = page.evaluate("() => window.__percpuSeen")
        assert "first" in seen and "live" in seen, seen
        assert seen["first"] < seen["live"], seen
        assert page.locator(".percpu-first-draw").count() == 0
        assert page.locator(".percpu-plotview:has(.main-svg)").count() == 1
        assert_clean_page(page, console)


@needs_load
@pytest.mark.parametrize("pool_size", [0, 1])
def test_first_figure_per_dashboard(browser, tmp_path, pool_size):
    """Seconds from opening each dashboard to its first drawn figure (the page's HTML,
    anywhere on the page), to its first screen complete (text shown, every figure on it
    drawn) and to the page being live (the widgets drawn), one visitor at a time, with
    and without a pre-started kernel per dashboard; 05 and 06 have no figure."""
    log_path = tmp_path / "voila.log"
    first, screen, live = {}, {}, {}
    with log_path.open("wb") as log, app.running(log=log, timeout=120,
                                                 pool_size=pool_size) as base:
        if pool_size:
            _pools_filled(log_path, len(ALL))
        for notebook in ALL:
            context = browser.new_context()
            try:
                page = context.new_page()
                t0 = time.monotonic()
                response = page.goto(app.dashboard_url(base, notebook), wait_until="commit")
                explorers = classload.explorers_in(response.text())
                while notebook not in live:  # each moment as it comes, 20 ms apart
                    now = round(time.monotonic() - t0, 2)
                    assert now < WAIT / 1000, f"{notebook} not live after {now} s"
                    if notebook not in first and page.evaluate(classload.FIGURE_DRAWN_JS):
                        first[notebook] = now
                    if notebook not in screen and page.evaluate(classload.FIRST_SCREEN_JS):
                        screen[notebook] = now
                    if notebook in screen and page.evaluate(classload.LIVE_JS, explorers):
                        live[notebook] = now
                    time.sleep(0.02)
                # a figure drawn between this round's looks: the live figure
                if notebook not in first and page.evaluate(classload.FIGURE_DRAWN_JS):
                    first[notebook] = live[notebook]
                open_dashboard(page, base, notebook)  # whole: every figure drawn
            finally:
                context.close()
            if pool_size:  # the next visitor's kernel back in the pool first
                _pools_filled(log_path, len(ALL) + len(live))
    print(f"\npool_size={pool_size}, seconds to the first figure: {json.dumps(first)}; "
          f"to the first screen complete: {json.dumps(screen)}; live: {json.dumps(live)} "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    assert len(live) == len(screen) == len(ALL) and set(CHANGES) <= set(first)


# Where, below the top of its cell, each explorer's first drawing is once the cells are
# shown (its figure's element keeps its place and height before plotly.js draws in it),
# by cell, looked at every frame (`_LIVE_PLACES`: where its live figure is once the page
# is whole).
_WATCH_PLACES = """(() => {
  const first = window.__percpuFirstAt = {};
  const look = () => {
    for (const e of document.querySelectorAll('.percpu-first-draw .plotly-graph-div')) {
      const cell = e.closest('[cell-index]'), index = cell.getAttribute('cell-index');
      const r = e.getBoundingClientRect();
      if (r.height > 0 && !(index in first))
        first[index] = r.top - cell.getBoundingClientRect().top;
    }
    if (!document.querySelector('.percpu-plotview .main-svg')) requestAnimationFrame(look);
  };
  requestAnimationFrame(look);
})();"""
_LIVE_PLACES = """() => Object.fromEntries(
    [...document.querySelectorAll('.percpu-plotview')].map(e => {
  const cell = e.closest('[cell-index]');
  return [cell.getAttribute('cell-index'),
          e.getBoundingClientRect().top - cell.getBoundingClientRect().top];
}))"""


def test_the_live_figure_takes_the_place_of_the_first_drawing(browser, tmp_path):
    """Each explorer's first drawing keeps the room its controls take once the page is
    live (`Explorer.controls_height`), so the figure does not move down when the widget
    replaces it (it moved by 69-125 px): at 1280 px wide, within 4 px for 01-04. With
    pre-started kernels, as a class meets them: the page comes whole and shows its first
    drawings before the widgets start."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for notebook in CHANGES:
        shutil.copy(notebooks_dir() / notebook, folder)
    (tmp_path / "data").symlink_to((notebooks_dir() / ".." / "data").resolve())  # 04 reads it
    moved = {}
    log_path = tmp_path / "voila.log"
    with log_path.open("wb") as log, app.running(notebooks=folder, log=log, timeout=120,
                                                 pool_size=1) as base:
        _pools_filled(log_path, len(CHANGES))
        for notebook in CHANGES:
            context = browser.new_context(viewport={"width": 1280, "height": 720})
            try:
                page = context.new_page()
                page.add_init_script(_WATCH_PLACES)
                open_dashboard(page, base, notebook)
                first = page.evaluate("() => window.__percpuFirstAt")
                live = page.evaluate(_LIVE_PLACES)
            finally:
                context.close()
            assert first and first.keys() == live.keys(), (notebook, first, live)
            moved[notebook] = {cell: round(live[cell] - first[cell], 1) for cell in live}
    print(f"\nlive figure below the first drawing (px), by cell: {json.dumps(moved)}")
    assert all(abs(d) <= 4 for m in moved.values() for d in m.values()), moved


@needs_load
def test_class_of_real_browsers(browser, tmp_path):
    """10 pages at once over the six dashboards; 3 leave mid-way (two lose their
    connection, one closes its tab); the others' figures update; the leavers' kernels go
    within a minute."""
    log_path = tmp_path / "voila.log"
    with log_path.open("wb") as log, app.running(log=log, timeout=120, pool_size=1) as base:
        _pools_filled(log_path, len(ALL))
        contexts = [browser.new_context() for _ in range(10)]
        pages = [c.new_page() for c in contexts]
        notebooks = [ALL[i % len(ALL)] for i in range(10)]
        t0 = time.monotonic()
        for page, notebook in zip(pages, notebooks, strict=True):  # all loading at once
            page.goto(app.dashboard_url(base, notebook), wait_until="commit")
        first = []
        for page, notebook in zip(pages, notebooks, strict=True):
            open_dashboard(page, base, notebook)  # already loading: waits for the figure
            first.append(time.monotonic() - t0)
        ids = [_kernel_id(p) for p in pages]
        leaving = [0, 5, 7]
        contexts[0].close()                       # connection dropped
        contexts[5].close()
        pages[7].close(run_before_unload=True)    # tab closed
        t_left = time.monotonic()
        updates = []
        for i, (page, notebook) in enumerate(zip(pages, notebooks, strict=True)):
            if i in leaving or notebook not in CHANGES:
                continue
            before = figure_state(page)
            t = time.monotonic()
            CHANGES[notebook](page)
            try:
                assert wait_figure_changed(page, before) != before, notebook
            except Exception as exc:  # say which page did not redraw
                raise AssertionError(f"page {i} ({notebook}) did not redraw: {exc}") from exc
            updates.append(time.monotonic() - t)
        _wait_gone(base, [ids[i] for i in leaving], limit=60 - (time.monotonic() - t_left))
        gone = time.monotonic() - t_left
        staying = [ids[i] for i in range(10) if i not in leaving]
        assert all(_kernel_alive(base, k) for k in staying)
        for i, c in enumerate(contexts):
            if i not in (0, 5):
                c.close()
    print(f"\n10 Chromium pages: all first figures within {max(first):.1f} s "
          f"(median {statistics.median(first):.1f} s); updates (incl. {STABLE_MS} ms settle) "
          f"median {statistics.median(updates):.2f} s, max {max(updates):.2f} s; "
          f"3 leavers' kernels gone {gone:.0f} s after leaving "
          f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
