"""A class against the app: visitors arriving within a minute over all the dashboards, each
changing a control every 5-15 s (seeded), then leaving; what it measures per dashboard.

Each visitor is a websocket client as a browser is (`app.Session`): the dashboard page,
then its kernel's websocket and the widgets' states. A change is a widget update message
for one of the dashboard's own controls (a choice, a tick box or a slider, picked with
the seeded generator, set to another of its values); its latency is the time until the
first message that updates a figure, and until the kernel is idle again (the change fully
handled; dashboards without an explorer's PlotView have only this one). After the class leaves
(websockets closed, as when tabs close or connections drop), the report says how long
until every visitor's kernel was shut down, the app's memory then and before, and the
server's own RSS before the class, at its peak and after it left.

With `browsers`, that many of the visitors (spread over the arrivals and the dashboards)
are real Chromium pages instead (Playwright, one browser, a context each): each measures
the seconds from opening its dashboard to the page's last byte (the server's part), to
its first figure drawn (an HTML figure of the page or an explorer's first drawing,
wherever it is on the page), to its first screen complete (its text shown and every
figure on that screen drawn) and to the page being live (Voila's front end has rendered
every output and each explorer draws its live figure), reads on, and closes. The pages
run on the server's own cores, so under load their times include the browser's work
competing with the class's kernels (in a class, each student's computer does it).

`percpu-explorer app --class-load` runs it (`make load`); bounded in visitors and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import statistics
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from . import app, classroom

SEED = 15
ARRIVAL_S = 60.0          # every visitor arrives within this
STAY_S = 120.0            # each stays this long after the dashboard is open
PAUSE_S = (5.0, 15.0)     # between two changes of one visitor


@dataclass
class Visitor:
    """One visitor's dashboard, their kernel and what they measured."""

    notebook: str
    arrive: float
    opened_s: float | None = None
    to_figure: list[float] = field(default_factory=list)
    to_idle: list[float] = field(default_factory=list)
    kernel_id: str = ""
    error: str = ""
    browser: bool = False
    first_figure_s: float | None = None
    first_screen_s: float | None = None
    page_s: float | None = None
    live_s: float | None = None


def controls(states: dict[str, dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """The dashboard's controls a visitor can change: (model id, model state). A control
    its layout hides (a panel control the explorer does not offer) is not one."""
    found = []
    for model_id, s in states.items():
        st = s.get("state", {})
        if st.get("disabled") or not st.get("description"):
            continue
        layout = str(st.get("layout", "")).removeprefix("IPY_MODEL_")
        if states.get(layout, {}).get("state", {}).get("display") == "none":
            continue
        if "_options_labels" in st and len(st["_options_labels"]) > 1 and "index" in st:
            found.append((model_id, st))
        elif st.get("_model_name") == "CheckboxModel":
            found.append((model_id, st))
        elif st.get("_model_name") in ("IntSliderModel", "BoundedIntTextModel") and \
                st.get("max", 0) > st.get("min", 0):
            found.append((model_id, st))
    return sorted(found)


def new_value(state: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Another value of the control, as the front end sends it."""
    if "_options_labels" in state:
        choices = [i for i in range(len(state["_options_labels"])) if i != state.get("index")]
        return {"index": rng.choice(choices)}
    if state.get("_model_name") == "CheckboxModel":
        return {"value": not state.get("value")}
    lo, hi = int(state["min"]), int(state["max"])
    return {"value": rng.choice([v for v in (lo, hi, rng.randint(lo, hi))
                                 if v != state.get("value")] or [lo])}


async def _change(s: app.Session, model_id: str, update: dict[str, Any],
                  timeout: float = 120.0) -> tuple[float | None, float]:
    """Send one change; seconds to the first figure update (None if none) and to idle."""
    figures = s.figures()
    t0 = time.monotonic()
    msg_id = await s.send("comm_msg", {"comm_id": model_id, "data": {
        "method": "update", "state": update, "buffer_paths": []}})
    s.states[model_id]["state"].update(update)
    to_figure = None
    deadline = t0 + timeout
    while True:
        msg = await s.receive(deadline)
        content = msg.get("content", {})
        if msg["msg_type"] == "comm_msg":
            data = content.get("data", {})
            target = content.get("comm_id")
            if data.get("method") == "update":
                if target in figures and to_figure is None:
                    to_figure = time.monotonic() - t0
                if target in s.states:  # the kernel may set controls too (e.g. reverting)
                    s.states[target]["state"].update(data.get("state", {}))
        elif msg["msg_type"] == "status" and \
                msg.get("parent_header", {}).get("msg_id") == msg_id and \
                content.get("execution_state") == "idle":
            return to_figure, time.monotonic() - t0


async def _visit(base: str, v: Visitor, rng: random.Random, t_start: float,
                 stay: float) -> None:
    await asyncio.sleep(max(0.0, t_start + v.arrive - time.monotonic()))
    s = app.Session(base, v.notebook)
    t0 = time.monotonic()
    try:
        await s.open(timeout=300)
        v.opened_s = time.monotonic() - t0
        v.kernel_id = s.kernel_id
        leave = time.monotonic() + stay
        while mine := controls(s.states):  # as they are now: a change may narrow a choice
            pause = rng.uniform(*PAUSE_S)
            if time.monotonic() + pause > leave:
                break
            await asyncio.sleep(pause)
            model_id, state = rng.choice(mine)
            to_figure, to_idle = await _change(s, model_id, new_value(state, rng))
            v.to_idle.append(to_idle)
            if to_figure is not None:
                v.to_figure.append(to_figure)
        # reads on until leaving (05, the checklist, has no controls to change)
        await asyncio.sleep(max(0.0, leave - time.monotonic()))
    except Exception as exc:  # reported: the report says which visitor failed and how
        v.error = f"{v.notebook}: {exc!r}"
    finally:
        s.close()


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)


def _kernel_gone(base: str, kernel_id: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}api/kernels/{kernel_id}", timeout=30):
            return False
    except urllib.error.HTTPError as e:
        return e.code == 404
    except OSError:  # no answer in time: not known to be gone
        return False


def kernel_memory(server_pid: int) -> dict[str, dict[str, float]]:
    """RSS, PSS and USS (MB) of each kernel of the server, by kernel id."""
    import psutil

    found = {}
    with contextlib.suppress(psutil.Error):
        for p in psutil.Process(server_pid).children(recursive=True):
            with contextlib.suppress(psutil.Error):
                conn = [a for a in p.cmdline() if "kernel-" in a and a.endswith(".json")]
                if conn:
                    kid = conn[0].rsplit("kernel-", 1)[1][:-5]
                    m = p.memory_full_info()
                    found[kid] = {"rss": m.rss / 2**20, "pss": m.pss / 2**20,
                                  "uss": m.uss / 2**20}
    return found


def tree_memory_mb(server_pid: int) -> dict[str, float]:
    """RSS and PSS (MB) of the server and all its kernels."""
    import psutil

    rss = pss = 0.0
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(server_pid)
        for p in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                m = p.memory_full_info()
                rss += m.rss
                pss += m.pss
    return {"rss": round(rss / 2**20), "pss": round(pss / 2**20)}


def server_rss_mb(server_pid: int) -> float:
    """RSS (MB) of the server process alone (0 if it is gone)."""
    import psutil

    try:
        return round(psutil.Process(server_pid).memory_info().rss / 2**20, 1)
    except psutil.Error:
        return 0.0


def _settle(server_pid: int, timeout: float = 300.0) -> float:
    """Wait until the app uses under 5% of a core (pre-started kernels have run their
    notebooks); seconds waited."""
    import psutil

    t0 = time.monotonic()
    time.sleep(2)  # Voila starts the pools a moment after it answers
    while time.monotonic() - t0 < timeout:
        procs: list[Any] = []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(server_pid)
            procs = [root, *root.children(recursive=True)]
        for p in procs:
            with contextlib.suppress(psutil.Error):
                p.cpu_percent(None)
        time.sleep(1.0)
        busy = 0.0
        for p in procs:
            with contextlib.suppress(psutil.Error):
                busy += p.cpu_percent(None)
        if busy < 5:
            break
    return time.monotonic() - t0


# In a Chromium page: a figure is drawn (seconds from opening to it: the first figure).
FIGURE_DRAWN_JS = "() => !!document.querySelector('.js-plotly-plot .main-svg')"
# The first screen is complete: the page is parsed, its cells are shown and every figure
# on the screen (the page's figures keep their height before they draw) is drawn.
FIRST_SCREEN_JS = """() => {
  const cells = document.getElementById('rendered_cells');
  if (document.readyState === 'loading' || !cells || cells.offsetParent === null) return false;
  const h = window.innerHeight;
  return [...document.querySelectorAll('.plotly-graph-div, .percpu-plotview')].every(e => {
    const r = e.getBoundingClientRect();
    return !(r.height > 0 && r.top < h && r.bottom > 0) || !!e.querySelector('.main-svg');
  });
}"""
# Live, given how many explorers the page's HTML carried (`explorers_in`): Voila's front
# end has rendered every output and each widget output's view, and each explorer's live
# figure is drawn and has replaced its first drawing (05 has no widget at all).
LIVE_JS = """(explorers) => {
  const cells = document.getElementById('rendered_cells');
  if (!cells || cells.offsetParent === null) return false;
  if (document.querySelector(
      'script[type="application/vnd.voila.cell-output+json"], .percpu-first-draw')) return false;
  // a widget output waiting for its model holds only the text "Loading widget..."
  const waiting = [...document.querySelectorAll('.jp-OutputArea-output')].some(
    o => o.childElementCount === 0 && /^(Loading widget|Error displaying widget)/.test(
      (o.textContent || '').trim()));
  const live = document.querySelectorAll('.percpu-plotview');
  return !waiting && live.length >= explorers
    && [...live].every(g => g.querySelector('.main-svg'));
}"""


def explorers_in(page_html: str) -> int:
    """How many explorers a dashboard's HTML carries (each with its first drawing)."""
    return page_html.count("data-percpu-first=")


# What a page that never went live shows: its title, whether its cells are shown, and how
# many outputs, widget views, first drawings and live figures it has of each.
_PAGE_STATE_JS = """() => {
  const n = (q) => document.querySelectorAll(q).length;
  const view = ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.widget-view+json']";
  const cells = document.getElementById('rendered_cells');
  return [`title ${JSON.stringify(document.title)}`,
    `cells shown ${!!(cells && cells.offsetParent)}`,
    `outputs left to the front end ${n('script[type="application/vnd.voila.cell-output+json"]')}`,
    `widget views ${n(view)} (drawn ${n(view + ' .lm-Widget') ? 'some' : 'none'})`,
    `first drawings ${n('.percpu-first-draw')}`,
    `live figures ${n('.percpu-plotview')}`,
    `drawn ${n('.percpu-plotview .main-svg') ? 'some' : 'none'}`,
  ].join(', ');
}"""


async def _browse(base: str, v: Visitor, browser: Any, t_start: float, stay: float) -> None:
    """A visitor in a Chromium page of its own: opens the dashboard, times its first
    figure, its first screen and the page going live, reads on until leaving, closes
    the page."""
    await asyncio.sleep(max(0.0, t_start + v.arrive - time.monotonic()))
    context = await browser.new_context(viewport={"width": 1300, "height": 900})
    try:
        page = await context.new_page()

        async def seconds_until(js: str) -> float:
            await page.wait_for_function(js, arg=explorers, timeout=300_000, polling=20)
            return round(time.monotonic() - t0, 3)

        t0 = time.monotonic()
        response = await page.goto(app.dashboard_url(base, v.notebook), wait_until="commit",
                                   timeout=300_000)
        explorers = explorers_in(await response.text()) if response else 0
        try:
            # a figure drawn (or the page live without one: 05, 06 have none), and the
            # first screen complete, whichever comes first
            figure_or_live, v.first_screen_s = await asyncio.gather(
                seconds_until(f"(n) => ({FIGURE_DRAWN_JS})() || ({LIVE_JS})(n)"),
                seconds_until(FIRST_SCREEN_JS))
            if await page.evaluate(FIGURE_DRAWN_JS):
                v.first_figure_s = figure_or_live
            # the server's part: the page's last byte received (navigation timing)
            v.page_s = round(await page.evaluate(
                "() => performance.getEntriesByType('navigation')[0].responseEnd") / 1000, 3)
            await seconds_until(LIVE_JS)
        except Exception as exc:
            state = await page.evaluate(_PAGE_STATE_JS)
            raise RuntimeError(f"not live after 300 s: {state}") from exc
        v.live_s = round(time.monotonic() - t0, 3)
        v.opened_s = v.live_s
        v.kernel_id = app.kernel_id_in(await page.content())
        await asyncio.sleep(max(0.0, t0 + stay - time.monotonic()))
        await page.close(run_before_unload=True)  # the tab closed
    except Exception as exc:  # reported: the report says which visitor failed and how
        v.error = f"{v.notebook} (Chromium): {exc!r}"
    finally:
        await context.close()


def chromium_path() -> str:
    """The Chromium the browser visitors run: $PERCPU_CHROMIUM, else `chromium` on the
    PATH (`make chromium` installs Debian's)."""
    import shutil

    found = os.environ.get("PERCPU_CHROMIUM") or shutil.which("chromium")
    if not found:
        raise ValueError("browser visitors need Chromium: run `make chromium` or set "
                         "PERCPU_CHROMIUM to its path")
    return found


async def _class(base: str, visitors: list[Visitor], seed: int, stay: float,
                 server_pid: int, server_peak: list[float] | None = None
                 ) -> dict[str, dict[str, float]]:
    """Run the class; each kernel's memory once its dashboard is open, by kernel id. The
    server's largest RSS seen (sampled each second) goes into `server_peak[0]`."""
    if any(v.browser for v in visitors):
        from playwright.async_api import async_playwright

        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=chromium_path(), args=["--no-sandbox", "--disable-gpu"])
            try:
                return await _run_class(base, visitors, seed, stay, server_pid,
                                        server_peak, browser)
            finally:
                await browser.close()
    return await _run_class(base, visitors, seed, stay, server_pid, server_peak, None)


async def _run_class(base: str, visitors: list[Visitor], seed: int, stay: float,
                     server_pid: int, server_peak: list[float] | None, browser: Any
                     ) -> dict[str, dict[str, float]]:
    rng = random.Random(seed)
    t_start = time.monotonic()
    memory: dict[str, dict[str, float]] = {}
    peak = server_peak if server_peak is not None else [0.0]

    async def sample_memory() -> None:
        tick = 0
        while True:
            await asyncio.sleep(1)
            peak[0] = max(peak[0], server_rss_mb(server_pid))
            tick += 1
            if tick % 5 == 0:
                for kid, m in kernel_memory(server_pid).items():
                    memory.setdefault(kid, m)

    sampler = asyncio.ensure_future(sample_memory())
    try:
        await asyncio.gather(*(
            _browse(base, v, browser, t_start, stay) if v.browser else
            _visit(base, v, random.Random(rng.random()), t_start, stay) for v in visitors))
    finally:
        sampler.cancel()
    return memory


def class_load(sessions: int = 30, seed: int = SEED, stay: float = STAY_S,
               arrival: float = ARRIVAL_S, pool_size: int = classroom.POOL_SIZE,
               host: str = app.DEFAULT_HOST, log: Any = None,
               browsers: int = 0) -> dict[str, Any]:
    """Start the app, run a class of `sessions` visitors over every dashboard, stop it;
    the report: per dashboard, open times and change latencies (p50, p95), kernel memory;
    how long until the leavers' kernels were gone; the app's memory (server and kernels)
    before and after, and the server's RSS before, at its peak and after the class left.
    `browsers` of the visitors are Chromium pages: their first-figure and live times."""
    if not 1 <= sessions <= app.MAX_SESSIONS:
        raise ValueError(f"--sessions {sessions} is out of range; use 1..{app.MAX_SESSIONS}")
    if not 0 <= browsers <= sessions:
        raise ValueError(f"--browsers {browsers} is out of range; use 0..{sessions} "
                         f"(at most the {sessions} visitors)")
    if browsers:
        chromium_path()
    if not app.is_loopback(host):
        raise ValueError(f"the load test runs on loopback only, not on {host!r}")
    notebooks = [d.notebook for d in app.dashboards()]
    rng = random.Random(seed)
    visitors = [Visitor(notebooks[i % len(notebooks)], rng.uniform(0, arrival))
                for i in range(sessions)]
    # every (sessions / browsers)-th visitor a page: spread over arrivals and dashboards
    for k in range(browsers):
        visitors[k * sessions // browsers].browser = True
    port = app.free_port(host)
    proc = app.start(host, port, None, log, max_kernels=sessions + 5, pool_size=pool_size)
    base = f"http://{host}:{port}/"
    try:
        app.wait_ready(base, proc, timeout=120)
        settle_s = _settle(proc.pid)
        before = tree_memory_mb(proc.pid)
        server_before = server_rss_mb(proc.pid)
        server_peak = [server_before]
        t0 = time.monotonic()
        memory = app.run_async(_class(base, visitors, seed, stay, proc.pid, server_peak))
        during_s = time.monotonic() - t0
        t_left = time.monotonic()
        left = [v.kernel_id for v in visitors if v.kernel_id]
        gone_s = None
        while time.monotonic() - t_left < 120:
            if all(_kernel_gone(base, k) for k in left):
                gone_s = round(time.monotonic() - t_left, 1)
                break
            time.sleep(2)
        _settle(proc.pid, timeout=60)  # the pools refilled
        time.sleep(classroom.CULL_INTERVAL_S + 2)  # the server's look after kernels went
        after = tree_memory_mb(proc.pid)
        server_after = server_rss_mb(proc.pid)
        per: dict[str, Any] = {}
        for nb in notebooks:
            mine = [v for v in visitors if v.notebook == nb]
            fig = [t for v in mine for t in v.to_figure]
            idle = [t for v in mine for t in v.to_idle]
            opened = [v.opened_s for v in mine if v.opened_s is not None]
            ws_opened = [v.opened_s for v in mine if v.opened_s is not None and not v.browser]
            mem = [memory[v.kernel_id] for v in mine if v.kernel_id in memory]
            per[nb] = {
                "visitors": len(mine), "opened": len(opened),
                "open_s_p50": _pct(opened, 0.5), "open_s_max": _pct(opened, 1.0),
                "websocket_open_s_max": _pct(ws_opened, 1.0),
                "changes": len(idle), "to_figure_n": len(fig),
                "to_figure_s_p50": _pct(fig, 0.5), "to_figure_s_p95": _pct(fig, 0.95),
                "to_idle_s_p50": _pct(idle, 0.5), "to_idle_s_p95": _pct(idle, 0.95),
                "kernel_rss_mb": round(statistics.median(m["rss"] for m in mem)) if mem else None,
                "kernel_pss_mb": round(statistics.median(m["pss"] for m in mem)) if mem else None,
                "kernel_uss_mb": round(statistics.median(m["uss"] for m in mem)) if mem else None,
            }
        everything = [t for v in visitors for t in v.to_figure]
        pages = [v for v in visitors if v.browser]

        def times(name: str) -> list[float]:
            return [getattr(v, name) for v in pages if getattr(v, name) is not None]

        chromium = {
            "pages": len(pages),
            **{f"{name}_p50": _pct(times(name), 0.5) for name in (
                "page_s", "first_figure_s", "first_screen_s", "live_s")},
            **{f"{name}_max": _pct(times(name), 1.0) for name in (
                "page_s", "first_figure_s", "first_screen_s", "live_s")},
            "each": [{"dashboard": v.notebook, "arrived_s": round(v.arrive, 1),
                      "page_s": v.page_s, "first_figure_s": v.first_figure_s,
                      "first_screen_s": v.first_screen_s, "live_s": v.live_s}
                     for v in sorted(pages, key=lambda v: v.arrive)],
        } if pages else None
        return {
            "visitors": sessions, "seed": seed, "arrival_s": arrival, "stay_s": stay,
            "pool_size": pool_size, "class_s": round(during_s),
            "load_average_1min": round(os.getloadavg()[0], 1), "cores": os.cpu_count(),
            "pools_ready_s": round(settle_s),
            # the page with its first figure's JSON and the kernel's widgets, as a
            # websocket visitor gets them (a Chromium page's drawing: "chromium")
            "websocket_opened_under_2s": (
                f"{sum(v.opened_s < 2.0 for v in visitors if not v.browser and v.opened_s)}"
                f" of {sum(not v.browser for v in visitors)}"),
            "all_to_figure_s_p50": _pct(everything, 0.5),
            "all_to_figure_s_p95": _pct(everything, 0.95),
            "per_dashboard": per,
            "chromium": chromium,
            "kernels_gone_after_leaving_s": gone_s,
            "app_memory_mb_before": before, "app_memory_mb_after": after,
            "server_rss_mb": {"before": server_before, "peak": server_peak[0],
                              "after": server_after},
            "errors": [v.error for v in visitors if v.error][:10],
        }
    finally:
        app.stop(proc)


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - `python -m ...`
    import argparse

    p = argparse.ArgumentParser(prog="python -m percpu_explorer.ui.classload",
                                description="a class of websocket visitors against the app")
    p.add_argument("--sessions", type=int, default=30, help="visitors (default 30)")
    p.add_argument("--pool-size", type=int, default=classroom.POOL_SIZE,
                   help="pre-started kernels per dashboard (default %(default)s)")
    p.add_argument("--seed", type=int, default=SEED, help="default %(default)s")
    p.add_argument("--browsers", type=int, default=0,
                   help="how many of the visitors are Chromium pages (default 0)")
    args = p.parse_args(argv)
    try:
        report = class_load(args.sessions, args.seed, pool_size=args.pool_size,
                            browsers=args.browsers)
    except ValueError as exc:
        p.error(str(exc))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":  # pragma: no cover
    main()
