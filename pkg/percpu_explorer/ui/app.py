"""The classroom app: the notebooks served as Voila dashboards, and a load test for it.

`percpu-explorer app` runs Voila on `notebooks/`: a landing page lists the dashboards in
the suggested order (`DASHBOARDS`: titles from each notebook's first heading, one line on
what it shows) with the glossary below them, each visitor's dashboard runs in a kernel of
its own, code cells are stripped and the page may only talk to its kernel through widget
messages (Voila refuses execute requests). It listens on 127.0.0.1 unless told otherwise
and stops cleanly on SIGINT or SIGTERM.

The landing page and the dashboards' page are the Voila template `percpu-explorer`
(`ui/jupyter/voila/templates/`, found through JUPYTER_PATH): Voila's `lab` template without
its Font Awesome stylesheets from a CDN, and a static landing page drawn from the catalogue,
which reaches the template as Voila's `extension_config`, set by the app's voila.py
(`ui/jupyter/config/`). The dashboards do not load JupyterLab's jupytext extension: it
edits notebooks and needs JupyterLab's document manager, which Voila's front end lacks.

`percpu-explorer app --load-test` starts the app on a free loopback port, opens N
sessions the way a browser does (the page, then the kernel's websocket), changes controls
in each, waits for every session's figure to update, drops some sessions in the middle of
an update, and reports memory per session and the slowest update. It is bounded in
sessions and time and stops by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..glossary import TERMS
from ..paths import notebooks_dir
from . import APP_PAGE, LEAN_KERNEL_ENV, RENDERER_ENV, classroom

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
LOOPBACK_NAMES = {"localhost"}
MAX_SESSIONS = 60

# The Voila template of the app: a Jupyter data folder (JUPYTER_PATH) holding
# voila/templates/percpu-explorer, and the folder of the app's voila.py configuration.
TEMPLATE = "percpu-explorer"
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter"
VOILA_CONFIG = JUPYTER_DATA / "config"
NOTEBOOKS_ENV = "PERCPU_EXPLORER_NOTEBOOKS"  # the folder voila.py lists on the landing page
MALLOC_ARENA_ENV = "MALLOC_ARENA_MAX"  # glibc's cap on its heaps (arenas) per process
MALLOC_ARENAS = 2
# Lab-only extensions the dashboards do not load (see the module docstring); the
# dashboards draw with the template's plotly.js (`ui.plotlyjs`), never with
# jupyterlab-plotly's own 4.8 MB copy.
EXTENSION_DENYLIST = ("jupyterlab-jupytext", "jupyterlab-plotly")

# The dashboards in the suggested order, with one line on what each shows; the titles
# are the notebooks' own first headings.
DASHBOARDS: tuple[tuple[str, str], ...] = (
    ("01_address_space.ipynb",
     "Where each region of the kernel's virtual address space lies for a configuration, "
     "and what the two local percpu areas of RFC patch 02/11 take from vmalloc."),
    ("02_per_cpu_page_tables.ipynb",
     "One root table per CPU: a translation walked step by step on each CPU, which "
     "mappings are synced to the other CPUs, and what the extra tables cost."),
    ("03_percpu_allocator.ipynb",
     "How mm/percpu.c places the first chunk and later chunks, the offsets it hands out, "
     "and how much room the Global Percpu area leaves; checked against real kernels."),
    ("04_this_cpu_replay.ipynb",
     "What a this_cpu_*() operation compiles to today and with the local mapping, where "
     "preemption can cut it, and what a workload's operations cost."),
    ("05_reviewer_checklist.ipynb",
     "Each claim of the series with its verdict per configuration and what the verdict "
     "stands on: kernel arithmetic, a real kernel, an assumption or an estimate."),
    ("06_exercises.ipynb",
     "Questions drawn from a seed: translate a local percpu address, predict the next "
     "allocation's offset, find the lost update; type an answer and check it."),
)


@dataclass(frozen=True)
class Dashboard:
    """One entry of the landing page."""

    notebook: str
    title: str
    description: str


def notebook_title(path: Path) -> str:
    """The notebook's first Markdown heading (without its #), else its file name."""
    try:
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
    except (OSError, ValueError):
        return path.stem
    for cell in cells:
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        for line in text.splitlines():
            if line.lstrip().startswith("#"):
                return line.strip().lstrip("#").strip() or path.stem
    return path.stem


def dashboards(notebooks: Path | None = None) -> list[Dashboard]:
    """The landing page's list: `DASHBOARDS` in order (those present in `notebooks`), then
    any other notebook of the folder by name, without a description."""
    folder = notebooks or notebooks_dir()
    known = dict(DASHBOARDS)
    names = [n for n, _ in DASHBOARDS if (folder / n).is_file()]
    names += sorted(p.name for p in folder.glob("*.ipynb") if p.name not in known)
    return [Dashboard(n, notebook_title(folder / n), known.get(n, "")) for n in names]


def landing_config(notebooks: Path | None = None) -> dict[str, Any]:
    """What the landing page template shows: the dashboards and the glossary."""
    return {
        "dashboards": [{"notebook": d.notebook, "title": d.title,
                        "description": d.description} for d in dashboards(notebooks)],
        "glossary": [{"term": term, "definition": text} for term, text in TERMS.items()],
    }


def check_host(host: str) -> str:
    """A literal IP address or 'localhost'; anything else is refused by name."""
    if host in LOOPBACK_NAMES:
        return host
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"--host {host!r} is not an IP address (e.g. 127.0.0.1, ::1, "
                         f"0.0.0.0 to listen on every interface) or 'localhost'") from None
    return host


def check_port(port: int) -> int:
    if not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is out of range; use 1..65535 (default {DEFAULT_PORT})")
    return port


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or ipaddress.ip_address(host).is_loopback


def voila_command(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  notebooks: Path | None = None, max_kernels: int | None = None,
                  pool_size: int = classroom.POOL_SIZE) -> list[str]:
    """The Voila command line: our defaults spelt out so that a test can see them. Voila
    runs as `ui.voila_server` (Voila with the cap on visitors' kernels, `ui.classroom`);
    `max_kernels` None: from the memory available now."""
    folder = notebooks or notebooks_dir()
    classroom.check_pool_size(pool_size)
    if max_kernels is None:
        max_kernels = classroom.default_max_kernels(dashboards=len(dashboards(folder)),
                                                    pool_size=pool_size)
    preheat = [  # a kernel per dashboard that has run the notebook before anyone asks
        "--VoilaConfiguration.preheat_kernel=True",
        f"--VoilaConfiguration.default_pool_size={pool_size}",
    ] if pool_size else []
    return [
        sys.executable, "-m", "percpu_explorer.ui.voila_server", str(folder),
        "--no-browser",
        f"--template={TEMPLATE}",
        f"--Voila.config_file_paths={VOILA_CONFIG}",  # voila.py: catalogue, extensions
        f"--Voila.ip={check_host(host)}",
        f"--port={check_port(port)}",
        "--Voila.port_retries=0",           # the port asked for, or a clear failure
        "--VoilaConfiguration.strip_sources=True",   # no code cells (Voila's default)
        "--VoilaConfiguration.show_tracebacks=False",
        # A kernel nobody is connected to (tab closed, connection dropped) goes after
        # CULL_IDLE_S idle; connected visitors keep theirs however long they read.
        f"--MappingKernelManager.cull_idle_timeout={classroom.CULL_IDLE_S}",
        f"--MappingKernelManager.cull_interval={classroom.CULL_INTERVAL_S}",
        "--MappingKernelManager.cull_connected=False",
        # Kernels talk to the server over Unix sockets in the runtime folder, not TCP
        # ports: a port picked free can be taken before the kernel binds it, and with a
        # class starting 30 kernels one was ("Address already in use"); the pool handed
        # the dead kernel to a visitor whose page then never went live.
        "--KernelManager.transport=ipc",
        f"--Voila.connection_dir_root={ipc_connection_root()}",
        # A kernel that dies stays dead: restarted, it would hold none of the notebook's
        # widgets (Voila does not run the notebook again), and a pool would hand it out
        # as if it had (`voila_server.prune_dead_pool_kernels` takes dead ones out).
        "--KernelManager.autorestart=False",
        f"--ClassroomVoila.max_kernels={classroom.check_max_kernels(max_kernels)}",
        *preheat,
    ]


def voila_configuration(notebooks: Path | None = None) -> dict[str, Any]:
    """The VoilaConfiguration that voila.py sets: the landing page's catalogue (as the
    extension_config the template reads) and the extensions the dashboards leave out."""
    return {"extension_config": {"percpu-explorer": landing_config(notebooks)},
            "extension_denylist": list(EXTENSION_DENYLIST)}


def voila_env(notebooks: Path | None = None,
              base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment Voila runs in: our template's data folder first on JUPYTER_PATH,
    the notebooks folder for voila.py, static figures drawn with the plotly.js the page
    loads once (renderer percpu_page; `ui.plots.set_renderer`); processes without
    jsonschema's IRI grammar (`ui.lean_kernel`); glibc's heaps capped at MALLOC_ARENAS
    (`ui.voila_server`)."""
    env = dict(os.environ if base is None else base)
    env[NOTEBOOKS_ENV] = str(notebooks or notebooks_dir())
    paths = [str(JUPYTER_DATA), *filter(None, env.get("JUPYTER_PATH", "").split(os.pathsep))]
    env["JUPYTER_PATH"] = os.pathsep.join(paths)
    # percpu_page alone: Voila's page carries every output's whole mime bundle as JSON, so
    # plotly's MIME type beside it would send each figure twice.
    env.setdefault(RENDERER_ENV, APP_PAGE)
    env.setdefault(LEAN_KERNEL_ENV, "1")  # kernels without jsonschema's IRI grammar
    # glibc's heaps: one per allocating thread by default (8 per core), each keeping what
    # it freed; two hold a class's garbage in fewer places (`ui.voila_server`).
    env.setdefault(MALLOC_ARENA_ENV, str(MALLOC_ARENAS))
    return env


# A Unix socket's path holds at most 107 bytes (sun_path). Voila puts its kernels'
# connection files in a folder it makes, ROOT/voila_<8 characters>, and a kernel's IPC
# sockets beside its file: ROOT/voila_XXXXXXXX/kernel-<36-character id>-ipc-<n>.
IPC_PATH_MAX = 107
_IPC_NAME_LEN = len("/voila_") + 8 + len("/kernel-") + 36 + len("-ipc-") + 2
_SHORT_ROOTS = ("/tmp", "/var/tmp")


def ipc_connection_root(temp: str | None = None) -> str:
    """The folder Voila makes its connection folder in (`Voila.connection_dir_root`):
    the system's temporary folder (TMPDIR) when the kernels' socket paths fit in
    IPC_PATH_MAX (macOS's per-user TMPDIR, 49 bytes, does not), else /tmp or /var/tmp.
    Voila's folder in it is the user's alone (mode 0700)."""
    import tempfile

    temp = temp or tempfile.gettempdir()
    for root in (temp, *_SHORT_ROOTS):
        if len(os.fsencode(root)) + _IPC_NAME_LEN <= IPC_PATH_MAX and \
                os.path.isdir(root) and os.access(root, os.W_OK | os.X_OK):
            return root
    raise InputError(f"TMPDIR {temp!r}: too long for the kernels' socket paths (at most "
                     f"{IPC_PATH_MAX - _IPC_NAME_LEN} bytes), and neither "
                     f"{' nor '.join(_SHORT_ROOTS)} is writable; set TMPDIR to a shorter "
                     "folder")


def free_port(host: str = DEFAULT_HOST) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET  # ::1 is IPv6
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def start(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, notebooks: Path | None = None,
          log: Any = None, max_kernels: int | None = None,
          pool_size: int = classroom.POOL_SIZE) -> subprocess.Popen[bytes]:
    """Start Voila in its own process group (so that stop() ends its kernels too)."""
    notebooks = notebooks or notebooks_dir()
    if not notebooks.is_dir():
        raise ValueError(f"notebooks folder {str(notebooks)!r} does not exist")
    env = voila_env(notebooks)
    return subprocess.Popen(voila_command(host, port, notebooks, max_kernels, pool_size), env=env,
                            stdout=log, stderr=subprocess.STDOUT if log else None,
                            start_new_session=True)


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None = None,
               timeout: float = 60.0) -> None:
    """Wait until `url` answers 200; fail early if the server process has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before {url} "
                               f"answered")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not answer within {timeout:.0f} s")


def stop(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    """SIGTERM (Voila shuts its kernels down), then SIGKILL of the whole group if need be."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # stray kernels of the group, if any
    return int(proc.returncode or 0)


@contextlib.contextmanager
def running(host: str = DEFAULT_HOST, port: int | None = None,
            notebooks: Path | None = None, log: Any = None,
            timeout: float = 60.0, max_kernels: int | None = None,
            pool_size: int = classroom.POOL_SIZE) -> Iterator[str]:
    """The app on a free loopback port for the duration of a `with`: yields its base URL."""
    port = port or free_port(host)
    proc = start(host, port, notebooks, log, max_kernels, pool_size)
    url = f"http://{host}:{port}/"
    try:
        wait_ready(url, proc, timeout)
        yield url
    finally:
        stop(proc)


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          notebooks: Path | None = None, max_kernels: int | None = None,
          pool_size: int = classroom.POOL_SIZE) -> int:
    """Run the app in the foreground until SIGINT/SIGTERM; both shut it down cleanly."""
    if not is_loopback(host):
        print(f"percpu-explorer app: listening on {host}, not only on this machine: anyone "
              f"who can reach port {port} can open the dashboards", file=sys.stderr)
    proc = start(host, port, notebooks, None, max_kernels, pool_size)

    def forward(signum: int, frame: Any) -> None:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return int(proc.wait())
            except KeyboardInterrupt:  # pragma: no cover - handled by forward()
                forward(signal.SIGINT, None)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        stop(proc)


# --- a session as a browser opens it: the page, then its kernel's websocket -----------------

def kernel_id_in(page_html: str) -> str:
    """The id of the kernel a Voila dashboard page connects to ("" when it names none)."""
    found = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', page_html)
    return found.group(1) if found else ""


def dashboard_url(base: str, notebook: str) -> str:
    return f"{base.rstrip('/')}/voila/render/{notebook}"


def _message(msg_type: str, content: dict[str, Any], session: str,
             channel: str = "shell") -> dict[str, Any]:
    return {
        "header": {"msg_id": uuid.uuid4().hex, "msg_type": msg_type, "username": "load",
                   "session": session, "date": "", "version": "5.3"},
        "parent_header": {}, "metadata": {}, "content": content, "buffers": [],
        "channel": channel,
    }


# What an explorer's PlotView sends the browser to redraw: the whole figure, one state
# update (`ui.widgets.PlotView`).
FIGURE_STATE = "spec"


@dataclass
class Session:
    """One visitor: the dashboard page, its kernel, and the widget models it holds."""

    base: str
    notebook: str
    kernel_id: str = ""
    states: dict[str, dict[str, Any]] = field(default_factory=dict)
    ws: Any = None
    session: str = field(default_factory=lambda: uuid.uuid4().hex)

    async def open(self, timeout: float = 120.0) -> None:
        from tornado.httpclient import AsyncHTTPClient
        from tornado.websocket import websocket_connect

        AsyncHTTPClient.configure(None, max_clients=MAX_SESSIONS + 2)  # all visitors at once
        response = await AsyncHTTPClient().fetch(dashboard_url(self.base, self.notebook),
                                                 request_timeout=timeout,
                                                 connect_timeout=timeout)
        self.kernel_id = kernel_id_in(response.body.decode())
        if not self.kernel_id:
            raise RuntimeError(f"{self.notebook}: no kernel id in the dashboard page")
        ws_url = self.base.replace("http", "ws", 1).rstrip("/")
        self.ws = await websocket_connect(
            f"{ws_url}/api/kernels/{self.kernel_id}/channels?session_id={self.session}",
            max_message_size=256 << 20)
        control = uuid.uuid4().hex
        await self.send("comm_open", {"comm_id": control, "target_name": "jupyter.widget.control",
                                      "data": {}}, {"version": "1.0.0"})
        await self.send("comm_msg", {"comm_id": control, "data": {"method": "request_states"}})
        deadline = time.monotonic() + timeout
        answered = False
        while not answered:
            msg = await self.receive(deadline)
            data = msg["content"].get("data", {}) if msg["msg_type"] == "comm_msg" else {}
            if data.get("method") == "update_states":
                self.states = data["states"]
                answered = True
            # a dashboard without widgets (05) has no widget manager: the kernel closes
            # the control comm it does not know
            elif msg["msg_type"] == "comm_close" and msg["content"].get("comm_id") == control:
                answered = True

    async def send(self, msg_type: str, content: dict[str, Any],
                   metadata: dict[str, Any] | None = None) -> str:
        msg = _message(msg_type, content, self.session)
        msg["metadata"] = metadata or {}
        await self.ws.write_message(json.dumps(msg))
        return str(msg["header"]["msg_id"])

    async def receive(self, deadline: float) -> dict[str, Any]:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{self.notebook} (kernel {self.kernel_id}): no answer in time")
        raw = await asyncio.wait_for(self.ws.read_message(), left)
        if raw is None:
            raise ConnectionError(f"kernel {self.kernel_id}: the websocket closed")
        if isinstance(raw, bytes):  # with binary buffers: count, offsets, the JSON, buffers
            n = int.from_bytes(raw[:4], "big")
            offsets = [int.from_bytes(raw[4 * (i + 1):4 * (i + 2)], "big") for i in range(n)]
            msg = json.loads(raw[offsets[0]:offsets[1] if n > 1 else None])
        else:
            msg = json.loads(raw)
        msg["msg_type"] = msg.get("header", {}).get("msg_type", msg.get("msg_type"))
        return dict(msg)

    def model(self, description: str) -> str:
        """The id of the control with this description (e.g. 'page size')."""
        for model_id, s in self.states.items():
            if s.get("state", {}).get("description") == description:
                return model_id
        raise KeyError(f"no control {description!r} in {self.notebook}")

    def figures(self) -> set[str]:
        """The explorers' PlotViews (anywidget models that take a figure from Python)."""
        return {m for m, s in self.states.items()
                if {FIGURE_STATE, "plotly_version"} <= set(s.get("state", {}))}

    async def change(self, description: str, state: dict[str, Any],
                     timeout: float = 60.0) -> float:
        """Change one control as the browser would; seconds until the kernel has sent the
        figure's new state and gone idle.

        A redraw reaches the browser as one state update of the figure's PlotView
        (`ui.widgets.PlotView`); the kernel's "idle" status for this change follows it."""
        figures = self.figures()
        model_id = self.model(description)
        t0 = time.monotonic()
        msg_id = await self.send("comm_msg", {"comm_id": model_id, "data": {
            "method": "update", "state": state, "buffer_paths": []}})
        deadline = t0 + timeout
        drawn = False
        while True:
            msg = await self.receive(deadline)
            content = msg["content"]
            if msg["msg_type"] == "comm_msg" and content.get("comm_id") in figures:
                data = content.get("data", {})
                if data.get("method") == "update" and FIGURE_STATE in data.get("state", {}):
                    drawn = True
            elif (msg["msg_type"] == "status"
                  and content.get("execution_state") == "idle"
                  and msg.get("parent_header", {}).get("msg_id") == msg_id):
                if not drawn:
                    raise RuntimeError(f"{self.notebook}: changing {description!r} to "
                                       f"{state} sent no figure message")
                return time.monotonic() - t0

    async def execute(self, code: str, wait: float = 3.0) -> dict[str, Any] | None:
        """Send an execute request; the reply, or None if the server dropped it."""
        msg_id = await self.send("execute_request", {
            "code": code, "silent": False, "store_history": False, "user_expressions": {},
            "allow_stdin": False, "stop_on_error": True})
        deadline = time.monotonic() + wait
        with contextlib.suppress(TimeoutError, asyncio.TimeoutError):
            while True:
                msg = await self.receive(deadline)
                if msg.get("parent_header", {}).get("msg_id") == msg_id:
                    return msg
        return None

    async def kernel_info(self, timeout: float = 30.0) -> dict[str, Any]:
        msg_id = await self.send("kernel_info_request", {})
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.receive(deadline)
            if msg["msg_type"] == "kernel_info_reply" and \
                    msg.get("parent_header", {}).get("msg_id") == msg_id:
                return msg

    def close(self) -> None:
        if self.ws is not None:
            self.ws.close()


# --- the load test --------------------------------------------------------------------------

# Each session walks the address-space dashboard through these page size / VA bits /
# local percpu changes; every one of them redraws the map.
CHANGES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("local percpu (RFC 02/11)", {"value": False}),
    ("page size", {"index": 1}),             # 16K
    ("local percpu (RFC 02/11)", {"value": True}),
    ("page size", {"index": 0}),             # 4K
)


def run_async(coro: Any) -> Any:
    """asyncio.run in a thread of its own: safe where an event loop already runs (Jupyter,
    Playwright's sync API in the same test session)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def _tree_rss(pid: int) -> int:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total


async def _run_sessions(base: str, pid: int, n: int, drop: int, notebook: str,
                        time_limit: float) -> dict[str, Any]:
    rss0 = _tree_rss(pid)
    t0 = time.monotonic()
    sessions = [Session(base, notebook) for _ in range(n)]
    opened = await asyncio.gather(*(asyncio.wait_for(s.open(time_limit), time_limit)
                                    for s in sessions),
                                  return_exceptions=True)
    open_errors = [repr(e) for e in opened if isinstance(e, BaseException)]
    live = [s for s, e in zip(sessions, opened, strict=True) if not isinstance(e, BaseException)]
    t_open = time.monotonic() - t0
    rss_open = _tree_rss(pid)

    async def walk(s: Session, dropped: bool) -> list[float]:
        times = []
        for description, state in CHANGES:
            if dropped:  # change a control and leave before the figure arrives
                model_id = s.model(description)
                await s.send("comm_msg", {"comm_id": model_id, "data": {
                    "method": "update", "state": state, "buffer_paths": []}})
                s.close()
                return []
            times.append(await s.change(description, state))
        return times

    drops = set(range(min(drop, len(live))))
    t1 = time.monotonic()
    results = await asyncio.gather(*(asyncio.wait_for(walk(s, i in drops), time_limit)
                                     for i, s in enumerate(live)), return_exceptions=True)
    t_updates = time.monotonic() - t1
    errors = open_errors + [repr(r) for r in results if isinstance(r, BaseException)]
    times = [t for r in results if isinstance(r, list) for t in r]
    updated = sum(1 for i, r in enumerate(results)
                  if i not in drops and isinstance(r, list) and len(r) == len(CHANGES))
    # After the drops: a new visitor still gets a working dashboard.
    after = Session(base, notebook)
    try:
        await asyncio.wait_for(after.open(time_limit), time_limit)
        await after.change("page size", {"index": 1})
        alive_after = True
    except Exception as exc:  # reported, not raised: the report says what failed
        errors.append(f"after the drops: {exc!r}")
        alive_after = False
    finally:
        after.close()
    for s in live:
        s.close()
    return {
        "sessions": n, "dropped_mid_update": len(drops),
        "sessions_updated": updated, "expected_updated": n - len(drops),
        "updates_per_session": len(CHANGES), "updates": len(times),
        "slowest_update_s": round(max(times), 3) if times else None,
        "median_update_s": round(sorted(times)[len(times) // 2], 3) if times else None,
        "open_all_s": round(t_open, 2), "update_all_s": round(t_updates, 2),
        "server_rss_before_mb": round(rss0 / 2**20, 1),
        "server_rss_open_mb": round(rss_open / 2**20, 1),
        "memory_per_session_mb": round((rss_open - rss0) / max(len(live), 1) / 2**20, 1),
        "server_alive_after_drops": alive_after,
        "errors": errors[:10],
    }


def load_test(sessions: int = 30, drop: int = 3, notebook: str = "01_address_space.ipynb",
              time_limit: float = 300.0, host: str = DEFAULT_HOST, log: Any = None) -> dict:
    """Start the app, run `sessions` concurrent visitors against it, stop it, report."""
    if not 1 <= sessions <= MAX_SESSIONS:
        raise ValueError(f"--sessions {sessions} is out of range; use 1..{MAX_SESSIONS}")
    if not 0 <= drop < sessions:
        raise ValueError(f"--drop {drop} must be at least 0 and less than --sessions {sessions}")
    if not is_loopback(host):
        raise ValueError(f"the load test runs on loopback only, not on {host!r}")
    port = free_port(host)
    proc = start(host, port, None, log)
    base = f"http://{host}:{port}/"
    try:
        wait_ready(base, proc)
        report = run_async(asyncio.wait_for(
            _run_sessions(base, proc.pid, sessions, drop, notebook, time_limit),
            time_limit * 3))
        report["server_alive_after_drops"] = report["server_alive_after_drops"] and \
            proc.poll() is None
        return report
    finally:
        stop(proc)
