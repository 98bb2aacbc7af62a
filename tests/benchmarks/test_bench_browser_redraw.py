"""Speed in the browser: from a control changed in the page to the explorer's figure redrawn
by plotly, in Chromium, for each explorer as its notebook makes it, in JupyterLab (and in
Voila in the full run). Target: a median under 150 ms for the address-space map.

Each round changes one control between two values, alternately. The time runs from the
`change` event dispatched on the control to the first animation frame after plotly has
drawn the final figure (the figure's title and traces equal those the value gave in the
warm-up round). The figure arrives whole in one PlotView message. The report
per explorer: p50/p95 of that time, and for the profile where it goes: the time until the
last kernel message of the update arrived and the bytes of the update's messages (the
Python side alone: test_bench_widgets.py).

`make test` runs a few rounds in JupyterLab only; PERCPU_BENCH_FULL=1 (`make bench`) runs
30 rounds per explorer in JupyterLab and in Voila.
"""

import json
import os
import statistics

import pytest

from percpu_explorer.ui import app
from tests.browser import helpers as h
from tests.browser.conftest import (  # noqa: F401 - the browser tests' fixtures
    browser_context_args,
    browser_type_launch_args,
    console,
    jupyterlab_server,
)

pytestmark = pytest.mark.browser

FULL = os.environ.get("PERCPU_BENCH_FULL") == "1"
ROUNDS = 30 if FULL else 4
TARGET_MS = {"map (01)": 150.0}

# name -> (the notebook's cell that shows the explorer, control, its two values (the first
# a change from the explorer's start))
CASES = {
    "map (01)": ("LayoutExplorer(local_percpu=True)", "page size", ("16K", "4K")),
    "page tables (02)": ("PageTableExplorer(local_percpu=True)", "local percpu (RFC 02/11)",
                         (False, True)),
    "allocator (03)": ("AllocatorExplorer()", "page size", ("16K", "4K")),
    "replay cost (04)": ("CostExplorer()", "kernel", ("6.12", "7.1")),
}

# Every websocket message's arrival time and size, for the profile.
WS_LOG_JS = """(() => {
  const Native = window.WebSocket;
  window.__wsLog = [];
  class Logged extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        const d = e.data;
        window.__wsLog.push([performance.now(), d.byteLength ?? d.size ?? d.length ?? 0]);
      });
    }
  }
  window.WebSocket = Logged;
})();"""

# What identifies a drawn figure: its title and each trace's type, name, lengths and
# first values (cheap enough to compute on every DOM change of the graph).
SIGNATURE_JS = """(gd) => JSON.stringify([
  ((gd.layout || {}).title || {}).text || '',
  (gd.data || []).map(t => [t.type, t.name, (t.x || []).length, (t.y || []).length,
                            (t.z || []).length, (t.x || [])[0], (t.y || [])[0]])])"""
SIGNATURE_NOW_JS = f"""() => ({SIGNATURE_JS})({h._ROOT_JS}.querySelector('{h.FIGURE}'))"""

# One round: change the control, resolve at the first animation frame after the figure
# has reached `target` (having left its state before the change; with no target, at the
# first frame after it left it).
ROUND_JS = f"""async ([description, value, target, timeoutMs]) => {{
  const root = {h._ROOT_JS};
  const gd = root.querySelector('{h.FIGURE}');
  const sig = () => ({SIGNATURE_JS})(gd);
  const labelled = [...root.querySelectorAll('.widget-dropdown, .widget-checkbox')].find(
    w => [...w.querySelectorAll('label, span')].some(l => l.textContent === description));
  if (!labelled) throw new Error('no control ' + description);
  const before = sig();
  const ws0 = window.__wsLog.length;
  let t0 = 0;
  return await new Promise((resolve, reject) => {{
    let left = false, finished = false;
    const observer = new MutationObserver(check);
    const timer = setTimeout(() => {{ observer.disconnect();
      reject(new Error('the figure did not reach its state for ' + value)); }}, timeoutMs);
    function check() {{
      if (finished) return;
      const s = sig();
      if (s !== before) left = true;
      if (left && (target === null || s === target)) {{
        finished = true;
        observer.disconnect();
        clearTimeout(timer);
        requestAnimationFrame(() => {{
          const t = performance.now();
          const msgs = window.__wsLog.slice(ws0).filter(m => m[0] >= t0 && m[0] <= t);
          resolve({{ms: t - t0, messages: msgs.length,
                   bytes: msgs.reduce((a, m) => a + m[1], 0),
                   last_message_ms: msgs.length ? msgs[msgs.length - 1][0] - t0 : null}});
        }});
      }}
    }}
    observer.observe(gd, {{childList: true, subtree: true, attributes: true,
                          characterData: true}});
    t0 = performance.now();
    const select = labelled.querySelector('select');
    if (select) {{
      const option = [...select.options].find(o => o.text === String(value));
      if (!option) {{ reject(new Error('no option ' + value + ' in ' + description)); return; }}
      select.value = option.value;
      select.dispatchEvent(new Event('change', {{bubbles: true}}));
    }} else {{
      const box = labelled.querySelector('input[type=checkbox]');
      if (box.checked !== value) box.click();
    }}
  }});
}}"""


def _notebook(cell: str) -> str:
    source = f"from percpu_explorer.ui.widgets import *  # noqa\n{cell}"
    return json.dumps({
        "cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                   "outputs": [], "source": source}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5})


def _name(case: str) -> str:
    return "bench_" + case.split(" (")[0].replace(" ", "_") + ".ipynb"


def _measure(page, case: str, benchmark) -> list[dict]:
    """Warm up (each value once; what it draws, once settled, is its target), then ROUNDS
    alternating changes, each one a benchmark round."""
    _, control, values = CASES[case]
    h.wait_figure(page)
    targets = {}
    for value in values:
        before = h.figure_state(page)
        page.evaluate(ROUND_JS, [control, value, None, h.WAIT])
        h.wait_figure_changed(page, before)
        targets[value] = page.evaluate(SIGNATURE_NOW_JS)
    assert targets[values[0]] != targets[values[1]], f"{case}: {control} changes nothing"
    results: list[dict] = []

    def change() -> None:
        value = values[len(results) % 2]
        results.append(page.evaluate(ROUND_JS, [control, value, targets[value], h.WAIT]))

    benchmark.pedantic(change, rounds=ROUNDS, iterations=1)
    return results


def _report(capsys, frontend: str, case: str, results: list[dict], benchmark) -> dict:
    ms = sorted(r["ms"] for r in results)
    last = [r["last_message_ms"] for r in results if r["last_message_ms"] is not None]
    row = {
        "frontend": frontend, "explorer": case, "rounds": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "p95_ms": round(ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))], 1),
        "last_message_p50_ms": round(statistics.median(last), 1) if last else None,
        "messages": max(r["messages"] for r in results),
        "kilobytes": round(statistics.median(r["bytes"] for r in results) / 1024, 1),
    }
    benchmark.extra_info.update(row)
    line = (f"{frontend:10} {case:18} p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms"
            f"  (last message at {row['last_message_p50_ms']} ms, {row['messages']} messages, "
            f"{row['kilobytes']} KB; {row['rounds']} rounds)")
    with capsys.disabled():  # the table shows in every run, not only when a test fails
        print(f"\n[browser redraw] {line}")
    return row


def _check(case: str, row: dict, benchmark) -> None:
    target = TARGET_MS.get(case)
    if target is not None and not benchmark.disabled and FULL:
        assert row["p50_ms"] < target, f"{case}: p50 {row['p50_ms']} ms, target {target} ms"


@pytest.mark.parametrize("case", list(CASES))
def test_redraw_in_jupyterlab(benchmark, capsys, page, console, jupyterlab_server,  # noqa: F811
                              case):
    page.add_init_script(WS_LOG_JS)
    name = _name(case)
    response = page.request.put(f"{jupyterlab_server}api/contents/{name}",
                                data={"type": "notebook", "format": "json",
                                      "content": json.loads(_notebook(CASES[case][0]))})
    assert response.ok, response.text()
    h.open_in_lab(page, jupyterlab_server, name)
    results = _measure(page, case, benchmark)
    row = _report(capsys, "JupyterLab", case, results, benchmark)
    h.assert_clean_page(page, console)
    _check(case, row, benchmark)


@pytest.fixture(scope="module")
def voila_bench(tmp_path_factory):
    """The app on a folder of the four one-explorer notebooks (full run only)."""
    if not FULL:
        pytest.skip("Voila redraw times: the full run only (PERCPU_BENCH_FULL=1, make bench)")
    folder = tmp_path_factory.mktemp("bench-notebooks")
    for case, (cell, _, _) in CASES.items():
        (folder / _name(case)).write_text(_notebook(cell))
    log = (folder.parent / "voila-bench.log").open("wb")
    with app.running(notebooks=folder, log=log, timeout=90) as base:
        yield base
    log.close()


@pytest.mark.parametrize("case", list(CASES))
def test_redraw_in_voila(benchmark, capsys, page, console, voila_bench, case):  # noqa: F811
    page.add_init_script(WS_LOG_JS)
    h.open_dashboard(page, voila_bench, _name(case))
    results = _measure(page, case, benchmark)
    row = _report(capsys, "Voila", case, results, benchmark)
    h.assert_clean_page(page, console)
    _check(case, row, benchmark)
