"""The classroom app's limits: the cap on visitors' kernels and the "class is full" page,
and a visitor's kernel shut down soon after the visitor leaves (timings: `make load`)."""

import asyncio
import json
import os
import re
import time
import urllib.error
import urllib.request

import pytest

from percpu_explorer.paths import notebooks_dir
from percpu_explorer.ui import app, classroom

NOTEBOOK = "06_exercises.ipynb"  # the lightest dashboard: what is tested here is the server
GiB = 2**30


def test_default_cap_is_the_memory_share_over_the_kernel_budget():
    # 24 GiB available: 0.8 * 24 GiB / 300 MiB = 65.5 -> 65 kernels fit, less 6 pre-started
    assert classroom.default_max_kernels(24 * GiB, dashboards=6, pool_size=1) == 59
    assert classroom.default_max_kernels(24 * GiB, dashboards=6, pool_size=0) == 65
    # 1 GiB: 2 fit, the 6 pre-started ones take more than that: still one visitor
    assert classroom.default_max_kernels(1 * GiB, dashboards=6, pool_size=1) == 1


def test_visitors_are_the_kernels_they_took_plus_arrivals():
    # "c" is pre-started (never taken), "gone" was taken and shut down since
    assert classroom.visitor_kernels({"a", "b", "c"}, {"a", "b", "gone"}, 0) == 2
    assert classroom.visitor_kernels({"a"}, {"a"}, 3) == 4


def test_an_arriving_visitor_counts_once_while_their_kernel_starts_and_after():
    """A kernel is listed before its start returns, and the page's first snippet comes
    later still. The cap counted that visitor twice in between (as arriving and as a
    listed kernel), and refused a class of 5 under a cap of 7 (CI, 4 visitors in). A
    pre-started kernel still starting for its pool counted as a visitor too."""
    from percpu_explorer.ui.voila_server import ClassroomHandler, _ArrivalManager

    listed: list[str] = ["pre-started"]
    seen: list[int] = []

    def count():
        return classroom.visitor_kernels(listed, ClassroomHandler.taken,
                                         ClassroomHandler.arriving)

    class Manager:
        async def start_kernel(self, **kwargs):
            listed.append("started")  # listed here; the start returns a few awaits later
            await asyncio.sleep(0.01)
            seen.append(count())
            return "started"

        async def get_rendered_notebook(self, notebook_name, **kwargs):
            await asyncio.sleep(0.01)  # the pool's first kernel still starting
            seen.append(count())
            return None, [], "pre-started"

    async def visit(method, *args):
        ClassroomHandler.arriving += 1
        settled = []

        def settle(kernel_id=None):
            if not settled:
                settled.append(1)
                ClassroomHandler.arriving -= 1
                ClassroomHandler.taken.add(kernel_id)

        seen.append(count())
        await getattr(_ArrivalManager(Manager(), settle), method)(*args)
        seen.append(count())

    taken = set(ClassroomHandler.taken)
    try:
        app.run_async(visit("start_kernel"))
        assert seen == [1, 1, 1] and ClassroomHandler.arriving == 0
        seen.clear()
        app.run_async(visit("get_rendered_notebook", "01_address_space.ipynb"))
        assert seen == [2, 2, 2] and ClassroomHandler.arriving == 0
    finally:
        ClassroomHandler.taken = taken


def test_command_line_carries_the_cap_the_culling_and_the_pool():
    cmd = app.voila_command(max_kernels=7, pool_size=2)
    assert cmd[1:3] == ["-m", "percpu_explorer.ui.voila_server"]
    assert "--ClassroomVoila.max_kernels=7" in cmd
    assert f"--MappingKernelManager.cull_idle_timeout={classroom.CULL_IDLE_S}" in cmd
    assert f"--MappingKernelManager.cull_interval={classroom.CULL_INTERVAL_S}" in cmd
    assert "--MappingKernelManager.cull_connected=False" in cmd  # readers keep theirs
    assert classroom.CULL_IDLE_S + classroom.CULL_INTERVAL_S <= 60  # gone within a minute
    assert "--VoilaConfiguration.preheat_kernel=True" in cmd
    assert "--VoilaConfiguration.default_pool_size=2" in cmd
    assert not any("preheat" in a for a in app.voila_command(max_kernels=7, pool_size=0))


@pytest.mark.parametrize(("argv", "named"), [
    (["--max-kernels", "0"], "--max-kernels 0"),
    (["--pool-size", "-1"], "--pool-size -1"),
    (["--pool-size", "9"], "--pool-size 9"),
])
def test_bad_limits_are_named(cli, argv, named):
    status, _, err = cli("app", *argv)
    assert status == 2
    assert named in err and err.count("\n") == 1


def test_full_page_says_what_happened_and_retries_by_itself():
    page = classroom.full_page(12, 12, retry_after=60)
    assert "The class is full, try again in a minute" in page
    assert "holds 12 open" in page and "12 are open" in page
    assert '<meta http-equiv="refresh" content="60">' in page


def _kernel(base, kernel_id):
    """The kernel's model from the server's REST API, or None once it is gone (404)."""
    try:
        with urllib.request.urlopen(f"{base}api/kernels/{kernel_id}", timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return None
        raise


def _fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


async def _cap_and_cull(base):
    get = asyncio.to_thread
    leaving, staying = (app.Session(base, NOTEBOOK) for _ in range(2))
    try:
        await asyncio.gather(leaving.open(timeout=120), staying.open(timeout=120))
        assert (await get(_kernel, base, leaving.kernel_id))["connections"] == 1
        t0 = time.monotonic()
        status, headers, page = await get(_fetch, app.dashboard_url(base, NOTEBOOK))
        assert status == 503 and time.monotonic() - t0 < 30  # answered, never a hang
        assert headers["Retry-After"] == str(classroom.RETRY_AFTER_S)
        assert "The class is full, try again in a minute" in page
        assert "holds 2 open dashboards at once, and 2 are open" in " ".join(page.split())

        leaving.close()
        t_close = time.monotonic()
        limit = classroom.CULL_IDLE_S + classroom.CULL_INTERVAL_S + 5
        while await get(_kernel, base, leaving.kernel_id) is not None:
            assert time.monotonic() - t_close < limit, "the closed tab's kernel stayed"
            await asyncio.sleep(2)
        gone_after = time.monotonic() - t_close
        assert (await get(_kernel, base, staying.kernel_id))["connections"] == 1  # still
        status, _, page = await get(_fetch, app.dashboard_url(base, NOTEBOOK))
        assert status == 200
        assert re.search(r'"kernelId":\s*"[0-9a-f-]+"', page)
        return gone_after
    finally:
        leaving.close()
        staying.close()


@pytest.mark.slow
def test_cap_refuses_at_once_and_a_closed_tab_frees_its_kernel_within_a_minute(tmp_path):
    """Cap 2: two visitors connect; a third gets the 'class is full' page (503,
    Retry-After), not a hang. The first leaves (its websocket closes): its kernel is shut
    down within CULL_IDLE_S + CULL_INTERVAL_S, the one still connected stays, and a new
    visitor gets a dashboard again."""
    with (tmp_path / "voila.log").open("wb") as log, \
            app.running(log=log, timeout=90, max_kernels=2, pool_size=0) as base:
        app.run_async(_cap_and_cull(base))


def test_class_visitors_change_only_controls_that_still_offer_another_value():
    """A change can narrow another control (16K pages leave VA bits one choice): a visitor
    then changes the others, and each change is to a value the control offers; a control
    hidden by its layout is not on the page to change."""
    import random

    from percpu_explorer.ui import classload

    states = {
        "a": {"state": {"description": "VA bits", "_options_labels": ["47"], "index": 0}},
        "b": {"state": {"description": "page size", "_options_labels": ["4K", "16K", "64K"],
                        "index": 1}},
        "c": {"state": {"description": "local percpu", "_model_name": "CheckboxModel",
                        "value": True}},
        "d": {"state": {"description": "CPUs", "_model_name": "BoundedIntTextModel",
                        "min": 1, "max": 1, "value": 1}},
        # hidden by its layout (a panel control the explorer does not offer)
        "e": {"state": {"description": "KASAN", "_options_labels": ["none", "generic"],
                        "index": 0, "layout": "IPY_MODEL_f"}},
        "f": {"state": {"_model_name": "LayoutModel", "display": "none"}},
        "g": {"state": {"description": "core", "_options_labels": ["a", "b"], "index": 0,
                        "layout": "IPY_MODEL_h"}},
        "h": {"state": {"_model_name": "LayoutModel", "display": None}},
    }
    assert [m for m, _ in classload.controls(states)] == ["b", "c", "g"]
    rng = random.Random(1)
    for _ in range(20):
        assert classload.new_value(states["b"]["state"], rng)["index"] in (0, 2)
    assert classload.new_value(states["c"]["state"], rng) == {"value": False}


def test_pool_refills_run_one_at_a_time_until_their_notebook_has_run():
    """`voila_server.pace_refills`: a refill (no kernel id) waits for the one before it to
    have run its notebook, unless a visitor took it from its pool while it waited; a
    restart (a kernel id) never waits."""
    import asyncio

    from percpu_explorer.ui import voila_server

    log = []
    started = iter(range(100))

    class Manager:  # what pace_refills uses of Voila's preheating kernel manager
        def __init__(self):
            self._pools = {}

        async def _initialize(self, notebook, kernel_id=None, **kwargs):
            kid = kernel_id or f"k{next(started)}"
            log.append(("start", kid))

            async def notebook_runs():
                await asyncio.sleep(0.6)
                log.append(("ran", kid))
            return {"task": asyncio.get_running_loop().create_task(notebook_runs()),
                    "kernel_id": kid}

    async def main():
        km = Manager()
        voila_server.pace_refills(km, 1, quiet_s=0)
        pool = km._pools["01.ipynb"] = [
            asyncio.create_task(km._initialize("01.ipynb")) for _ in range(3)]
        await asyncio.sleep(0.01)
        restart = await km._initialize("02.ipynb", "kept")  # while the first still runs
        taken = pool.pop(2)  # a visitor takes the third while it waits for its turn
        results = await asyncio.gather(*pool, taken)
        await asyncio.gather(restart["task"], *(r["task"] for r in results))
        return results

    from percpu_explorer.ui import app

    results = app.run_async(main())  # a thread of its own: Playwright's loop may be running
    assert [r["kernel_id"] for r in results] == ["k0", "k2", "k1"]
    assert log.index(("ran", "k0")) < log.index(("start", "k2"))  # one at a time
    assert log.index(("start", "kept")) < log.index(("ran", "k0"))  # restarts never wait
    assert log.index(("start", "k1")) < log.index(("ran", "k0"))  # taken: starts at once


def test_pool_refills_wait_until_the_class_has_stopped_arriving():
    """A refill waits until no kernel has been taken (no refill asked for) for `quiet_s`,
    unless a visitor takes it meanwhile."""
    import asyncio

    from percpu_explorer.ui import app, voila_server

    log = []

    class Manager:
        def __init__(self):
            self._pools = {}

        async def _initialize(self, notebook, kernel_id=None, **kwargs):
            log.append(("start", kernel_id, asyncio.get_running_loop().time()))
            return {"kernel_id": kernel_id}

    async def main():
        km = Manager()
        voila_server.pace_refills(km, 2, quiet_s=1.0)
        loop = asyncio.get_running_loop()
        pool = km._pools["01.ipynb"] = []
        asked = []
        for _ in range(3):  # three visitors take a kernel 0.2 s apart: three refills
            asked.append(loop.time())
            pool.append(asyncio.create_task(km._initialize("01.ipynb")))
            await asyncio.sleep(0.2)
        taken = pool.pop(2)  # the third visitor's refill is taken at once
        await asyncio.gather(*pool, taken)
        return asked

    asked = app.run_async(main())
    starts = [t for _, _, t in log]
    # the taken one starts first, at once (within a look); the others once 1 s has
    # passed after the last ask
    assert len(starts) == 3 and starts[0] < asked[2] + 0.8
    assert all(t >= asked[2] + 1.0 for t in starts[1:])


def test_the_culler_passes_over_a_kernel_still_starting():
    """`voila_server.cull_only_started`: jupyter_server's culler read `last_activity` of a
    pool kernel still starting and logged a TraitError at ERROR level each round; now
    that kernel waits for the next round, and a started idle kernel is culled as before."""
    from datetime import timedelta

    from jupyter_server._tz import utcnow
    from jupyter_server.services.kernels.kernelmanager import (
        AsyncMappingKernelManager,
        ServerKernelManager,
    )
    from traitlets import TraitError

    from percpu_explorer.ui import voila_server

    km = AsyncMappingKernelManager(cull_idle_timeout=30)
    shut = []

    async def shutdown_kernel(kernel_id, *args, **kwargs):
        shut.append(kernel_id)

    km.shutdown_kernel = shutdown_kernel
    km._kernels["starting"] = ServerKernelManager()  # in the map, not started yet
    idle = km._kernels["idle"] = ServerKernelManager()
    idle.last_activity = utcnow() - timedelta(seconds=120)
    idle.execution_state = "idle"

    with pytest.raises(TraitError, match="last_activity"):  # the defect, unpatched
        app.run_async(km.cull_kernel_if_idle("starting"))
    voila_server.cull_only_started(km)
    assert app.run_async(km.cull_kernel_if_idle("starting")) is None
    app.run_async(km.cull_kernel_if_idle("idle"))
    assert shut == ["idle"]  # 120 s idle, no connection: culled (timeout 30 s)


def test_dead_pre_started_kernels_are_taken_out_of_the_pool():
    """`voila_server.prune_dead_pool_kernels`: in a class, a pool kernel died at start
    (its render task failed: "Kernel died before replying to kernel_info") and Voila gave
    it to a visitor, whose page never went live. Before a visitor takes one, the pool
    drops every kernel whose start or notebook failed, or that is dead or gone; the good
    and the still-starting stay, and a refill is asked for."""
    from percpu_explorer.ui import voila_server

    class Kernel:
        def __init__(self, alive):
            self.alive = alive

        async def is_alive(self):
            return self.alive

    class Log:
        def warning(self, *args):
            pass

    async def main():
        loop = asyncio.get_running_loop()

        def done(result=None, error=None):
            f = loop.create_future()
            f.set_exception(error) if error else f.set_result(result)
            return f

        async def fails():
            raise RuntimeError("Kernel died before replying to kernel_info")

        failed_render = loop.create_task(fails())
        good_render = done(([], None))
        await asyncio.sleep(0)
        km = type("Manager", (), {})()
        km.log = Log()
        km.kernels = {"good": Kernel(True), "dead": Kernel(False), "broken": Kernel(True)}
        km.shut, km.refills = [], []

        def get_kernel(kernel_id):
            return km.kernels[kernel_id]

        async def shutdown_kernel(kernel_id):
            km.shut.append(kernel_id)

        km.get_kernel, km.shutdown_kernel = get_kernel, shutdown_kernel
        km.fill_if_needed = lambda delay, notebook_name: km.refills.append(notebook_name)
        starting = loop.create_future()
        pool = [
            done({"kernel_id": "broken", "task": failed_render}),  # its notebook failed
            done(error=RuntimeError("no kernel")),                 # its start failed
            done({"kernel_id": "dead", "task": good_render}),      # the process died
            done({"kernel_id": "gone", "task": good_render}),      # culled, not listed
            done({"kernel_id": "good", "task": good_render}),
            starting,
        ]
        km._pools = {"01.ipynb": list(pool)}
        dropped = await voila_server.prune_dead_pool_kernels(km, "01.ipynb")
        assert await voila_server.prune_dead_pool_kernels(km, "02.ipynb") == 0
        starting.cancel()
        return dropped, km, pool

    dropped, km, pool = app.run_async(main())
    assert dropped == 4
    assert km._pools["01.ipynb"] == [pool[4], pool[5]]
    assert km.shut == ["broken", "dead"] and km.refills == ["01.ipynb"]


def _kernel_processes():
    """{kernel id: pid} of the ipykernel processes running on this machine (their
    connection file, `-f .../kernel-<id>.json`, names the id)."""
    from pathlib import Path

    found = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any("ipykernel" in a for a in argv):
            ids = re.findall(r"kernel-([0-9a-f-]{36})\.json", " ".join(argv))
            if ids:
                found[ids[0]] = int(proc.name)
    return found


@pytest.mark.slow
def test_a_visitor_never_gets_a_pre_started_kernel_that_died(tmp_path):
    """A pool kernel killed after running its notebook is not handed to the next visitor:
    the request takes it out of the pool and the visitor gets a kernel of their own (with
    autorestart on, jupyter_client restarted it empty, and Voila gave it out as it was)."""
    import os
    import shutil
    import signal as signals

    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(notebooks_dir() / NOTEBOOK, folder / NOTEBOOK)
    before = set(_kernel_processes())
    with (tmp_path / "voila.log").open("wb") as log, \
            app.running(notebooks=folder, log=log, timeout=90, max_kernels=4,
                        pool_size=1) as base:
        deadline = time.monotonic() + 120
        idle_since = None
        while True:  # the pool's kernel has started and stays idle: its notebook has run
            mine = {k: p for k, p in _kernel_processes().items() if k not in before}
            state = _kernel(base, next(iter(mine)))["execution_state"] if mine else None
            idle_since = (idle_since or time.monotonic()) if state == "idle" else None
            if idle_since and time.monotonic() - idle_since > 3:
                break
            assert time.monotonic() < deadline, f"no idle pool kernel: {mine}, {state}"
            time.sleep(0.5)
        assert len(mine) == 1
        pooled, pid = next(iter(mine.items()))
        os.kill(pid, signals.SIGKILL)
        time.sleep(2)
        t0 = time.monotonic()
        status, _, page = _fetch(app.dashboard_url(base, NOTEBOOK))
        assert status == 200 and time.monotonic() - t0 < 90  # answered, never a hang
        served = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', page).group(1)
        assert served != pooled
        assert _kernel(base, served)["execution_state"] in ("idle", "busy", "starting")
    text = (tmp_path / "voila.log").read_text()
    assert f"1 dead pre-started kernel(s) of {NOTEBOOK} shut down" in text


def test_running_refills_stop_while_a_visitors_kernel_computes():
    """`voila_server.RefillGate`: a refill running its notebook took the core a visitor's
    change needed (class p95 0.28-0.36 s with it, 0.07-0.19 s with refills held back).
    It is stopped while a visitor's kernel computes and goes on when they are idle, when
    its notebook is done or taken, or after GATE_MAX_STOP_S stopped."""
    import signal as signals
    from types import SimpleNamespace

    from percpu_explorer.ui import voila_server
    from percpu_explorer.ui.voila_server import GATE_BUSY_CPU_S, GATE_MAX_STOP_S, RefillGate

    loop = asyncio.new_event_loop()
    notebook_runs = loop.create_future()  # the refill's notebook, still running
    item = loop.create_future()
    item.set_result({"kernel_id": "refill", "task": notebook_runs})
    waiting = loop.create_future()  # a pre-started kernel whose notebook has run
    ran = loop.create_future()
    ran.set_result(None)
    waiting.set_result({"kernel_id": "ready", "task": ran})
    pids = {"visitor": 101, "refill": 202, "ready": 303}

    pool = [item, waiting]

    class Manager:
        def __init__(self):
            self._pools = {"04_this_cpu_replay.ipynb": pool}

        def list_kernel_ids(self):
            return list(pids)

        def get_kernel(self, kernel_id):
            return SimpleNamespace(provisioner=SimpleNamespace(pid=pids[kernel_id]))

    cpu = {101: 5.0, 202: 1.0, 303: 2.0}
    sent = []
    now = [0.0]
    gate = RefillGate(Manager(), cpu_seconds=cpu.get, send=lambda pid, sig: sent.append(
        (pid, sig)), clock=lambda: now[0])
    stop, go = (202, signals.SIGSTOP), (202, signals.SIGCONT)

    def look(visitor_cpu_s=0.0, dt=0.1):
        now[0] += dt
        cpu[101] += visitor_cpu_s
        cpu[202] += 0.1  # the refill computes all along: never counts as a visitor
        sent.clear()
        gate.look()
        return list(sent)

    assert look() == []  # the visitor idle: the refill runs
    assert look(visitor_cpu_s=GATE_BUSY_CPU_S / 2) == []  # an idle kernel's threads
    assert look(visitor_cpu_s=0.05) == [stop]  # a change computing: the refill stops
    assert look(visitor_cpu_s=0.05) == []  # still computing: stays stopped
    assert look() == [go]  # idle again: goes on
    assert look(visitor_cpu_s=0.05) == [stop]
    for _ in range(int(GATE_MAX_STOP_S / 0.1) - 2):
        assert look(visitor_cpu_s=0.05) == []
    assert look(visitor_cpu_s=0.05, dt=0.2) == [go]  # stopped GATE_MAX_STOP_S: one look
    assert look(visitor_cpu_s=0.05) == [stop]
    pool.remove(item)  # a visitor took it
    assert look(visitor_cpu_s=0.05) == [go]  # no longer a refill: it goes on
    pool.insert(0, item)
    assert look(visitor_cpu_s=0.05) == [stop]
    gate.go_on()  # a visitor arrives: every stopped refill goes on
    assert sent[-1] == go and not gate.stopped
    assert look(visitor_cpu_s=0.05) == [stop]
    notebook_runs.set_result(None)  # its notebook has run: no longer a running refill
    assert look(visitor_cpu_s=0.05) == [go]
    assert look(visitor_cpu_s=0.05) == []  # the kernel that waits in the pool is never stopped
    loop.close()
    assert voila_server._proc_cpu_seconds(os.getpid()) > 0


def test_the_refill_gate_stops_a_real_process_and_lets_it_go_on():
    """The gate's real means: CPU time from /proc and SIGSTOP / SIGCONT, on two busy
    processes standing for a visitor's kernel and a refill running its notebook."""
    import signal as signals
    import subprocess
    import sys
    from types import SimpleNamespace

    from percpu_explorer.ui.voila_server import RefillGate

    if not RefillGate.supported():
        pytest.skip("no /proc here: the gate is off")
    busy = [sys.executable, "-c", "while True: pass"]
    visitor, refill = subprocess.Popen(busy), subprocess.Popen(busy)
    loop = asyncio.new_event_loop()
    try:
        running = loop.create_future()
        item = loop.create_future()
        item.set_result({"kernel_id": "refill", "task": running})
        pids = {"visitor": visitor.pid, "refill": refill.pid}
        km = SimpleNamespace(
            _pools={"04_this_cpu_replay.ipynb": [item]},
            list_kernel_ids=lambda: list(pids),
            get_kernel=lambda k: SimpleNamespace(provisioner=SimpleNamespace(pid=pids[k])))
        gate = RefillGate(km, clock=time.monotonic)

        def state(pid):  # R running, S sleeping, T stopped
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]

        def looks(n=5):
            for _ in range(n):
                gate.look()
                time.sleep(0.1)

        looks()
        assert gate.stopped == {refill.pid: gate.stopped[refill.pid]}
        assert state(refill.pid) == "T" and state(visitor.pid) != "T"
        visitor.send_signal(signals.SIGSTOP)  # the visitor's kernel idle: no CPU used
        looks()
        assert not gate.stopped and state(refill.pid) != "T"
    finally:
        loop.close()
        for proc in (visitor, refill):
            proc.kill()
            proc.wait()
