"""The app's Voila server: Voila with a cap on visitors' kernels (`ui.classroom`).

`python -m percpu_explorer.ui.voila_server` takes Voila's command line plus
`--ClassroomVoila.max_kernels=N`. Its dashboard handler answers past the cap with the
"class is full" page (HTTP 503, Retry-After) before any kernel starts; below it, it renders
as Voila does. A pre-started kernel handed to a visitor is marked active at that moment, so
the idle culler gives the visitor's page time to connect to it.

Voila's kernel websocket reads the header of every binary message as the v1 websocket
protocol lays it out, also on a connection that speaks the legacy protocol (a 4-byte
big-endian part count): there it takes a message's first 8 bytes for the number of parts
and builds a list that long, which grew the server past 17 GB in a load test whose clients
speak the legacy protocol, on the first figure sent with binary buffers.
`ClassroomKernelWebsocketHandler` reads a legacy message as the legacy protocol.

A class leaves garbage behind in the server: its kernels sent several MB per figure and
page, and what the server no longer uses waits, partly in reference cycles, for Python's
rarely run full collection, then in glibc's heaps (one per thread that allocates;
`app.voila_env` caps them at MALLOC_ARENA_MAX=2), which keep freed memory for the next
allocation instead of giving it back. Every `CULL_INTERVAL_S` the server looks whether
kernels have gone since it last looked; if so it collects garbage and asks glibc to
return its free pages (`release_memory`), then once more at the next look, so that the
server shrinks back after a class (measured: README).

Voila refills a dashboard's pool of pre-started kernels as soon as a visitor takes one,
and each refill is a kernel running its whole notebook (4-11 s of a core). A class that
arrives within a minute takes a pool's worth of kernels at once, and their refills took
both cores of a 2-core machine from the visitors' kernels (a change to figure p95 of
2.6 s). `pool_refills` refills run at once, each until its notebook has run; the others
wait their turn, so the visitors' kernels keep the other cores. Refills also wait until
no visitor has taken a kernel for `refill_quiet_s`: the pools are there to absorb a class
arriving, and a refill during the arrivals took the CPU the arriving pages needed for
their first figures. A visitor who takes a refill still waiting (the pool was empty)
starts it at once.

A refill that runs still took the core a visitor's change needed: with refills held
back for the whole class, its change-to-figure p95 was 0.07-0.19 s per dashboard; with
one refill running, 0.28-0.36 s for the dashboards whose slowest changes met it.
`RefillGate` stops a running refill (SIGSTOP) while a visitor's kernel computes and
lets it go on (SIGCONT) when they are all idle again, looking every GATE_LOOK_S.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import os
import signal
import time
from typing import Any, ClassVar

import tornado.ioloop
import tornado.web
from jupyter_core.utils import ensure_async
from jupyter_server._tz import utcnow  # the clock the idle culler reads
from jupyter_server.services.kernels.connection.base import deserialize_binary_message
from traitlets import Bool, Float, Int
from voila.app import Voila
from voila.tornado.handler import TornadoVoilaHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from . import classroom

PACE_LOOK_S = 0.25  # a refill waiting for its turn looks this often whether it was taken
GATE_LOOK_S = 0.1  # the refill gate looks this often whether a visitor's kernel computes
# A visitor's kernel computes when it used more than this much CPU since the last look (an
# idle ipykernel's threads use well under 1 ms a second).
GATE_BUSY_CPU_S = 0.01
GATE_MAX_STOP_S = 3.0  # a refill stopped this long runs for one look before it stops again
REFILL_QUIET_S = 10.0  # refills wait until no kernel was taken for this long


def _libc_malloc_trim() -> Any:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def release_memory() -> bool:
    """Collect garbage, then have glibc return the heap's free pages to the system
    (malloc_trim(0)); False where there is no malloc_trim."""
    gc.collect()
    if _MALLOC_TRIM is None:
        return False
    _MALLOC_TRIM(0)
    return True


class KernelsGoneWatch:
    """Calls `release` at the first look after the number of kernels went down, and once
    more at the next look: a gone kernel's websockets and channels close a moment after
    it leaves the list, and what they held is garbage only then."""

    def __init__(self, count: Any, release: Any = release_memory) -> None:
        self.count = count
        self.release = release
        self.last = count()
        self.pending = 0
        self.releases = 0

    def __call__(self) -> None:
        now = self.count()
        if now < self.last:
            self.pending = 2
        self.last = now
        if self.pending:
            self.pending -= 1
            self.release()
            self.releases += 1


class _ArrivalManager:
    """The kernel manager as one arriving visitor's request sees it: the kernel Voila
    starts for the visitor, or takes for them from a pool, joins `ClassroomHandler.taken`
    as the call returns, and the visitor stops counting as arriving at that same moment.
    A kernel is listed before its start returns, and the page's first snippet comes
    later still: counting from either, the cap counted one visitor twice in between."""

    def __init__(self, real: Any, settle: Any) -> None:
        self._real = real
        self._settle = settle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    async def start_kernel(self, *args: Any, **kwargs: Any) -> str:
        kernel_id = None
        try:
            kernel_id = await ensure_async(self._real.start_kernel(*args, **kwargs))
            return kernel_id
        finally:
            self._settle(kernel_id)

    async def get_rendered_notebook(self, *args: Any, **kwargs: Any) -> Any:
        kernel_id = None
        try:
            result = await self._real.get_rendered_notebook(*args, **kwargs)
            kernel_id = result[2]
            return result
        finally:
            self._settle(kernel_id)


class ClassroomHandler(TornadoVoilaHandler):
    """Voila's dashboard handler behind the cap on visitors' kernels."""

    arriving = 0  # visitors past the gate whose kernel is not yet theirs (this process)
    gate: RefillGate | None = None  # the server's refill gate, when it has one
    taken: ClassVar[set[str]] = set()  # ids of the kernels visitors have taken

    def initialize(self, **kwargs: Any) -> None:
        self.max_kernels = int(kwargs.pop("max_kernels", 0))
        self._arrival: _ArrivalManager | None = None
        super().initialize(**kwargs)

    @property
    def kernel_manager(self) -> Any:
        real = super().kernel_manager
        return self._arrival if getattr(self, "_arrival", None) is not None else real

    def _open_kernels(self) -> int:
        listed = set(super().kernel_manager.list_kernel_ids())
        ClassroomHandler.taken &= listed  # the ones shut down since
        return classroom.visitor_kernels(listed, ClassroomHandler.taken,
                                         ClassroomHandler.arriving)

    def _mark_pool_active(self) -> None:
        """The kernel this request takes from a pool counts as active from now."""
        km = super().kernel_manager
        for kernel_id in classroom.pooled_kernel_ids(km) & set(km.list_kernel_ids()):
            km.get_kernel(kernel_id).last_activity = utcnow()

    def _settle(self, kernel_id: str | None = None) -> None:
        """This visitor's kernel is theirs (or failed to be): no longer arriving."""
        if self._arrival is not None:
            self._arrival = None
            ClassroomHandler.arriving -= 1
            if kernel_id is not None:
                ClassroomHandler.taken.add(kernel_id)

    @tornado.web.authenticated
    async def get(self, path: str | None = None) -> None:
        notebook = self.notebook_path or path or ""
        if not notebook.endswith(".ipynb"):
            await super().get(path)
            return
        open_now = self._open_kernels()
        if self.max_kernels and open_now >= self.max_kernels:
            self.log.warning("class full: %d of %d kernels open, refused %s", open_now,
                             self.max_kernels, notebook)
            self.set_status(503)
            self.set_header("Retry-After", str(classroom.RETRY_AFTER_S))
            self.set_header("Content-Type", "text/html; charset=utf-8")
            self.set_header("Cache-Control", "no-store")
            self.finish(classroom.full_page(open_now, self.max_kernels))
            return
        real = super().kernel_manager
        ClassroomHandler.arriving += 1  # before any await: the next request counts it
        if ClassroomHandler.gate is not None:
            ClassroomHandler.gate.go_on()  # the kernel this visitor takes may be one
        self._arrival = _ArrivalManager(real, self._settle)
        try:
            await prune_dead_pool_kernels(real, notebook)
            self._mark_pool_active()
            async for snippet in self.get_generator(path=path):
                self.write(snippet)
                self.flush()
        finally:
            self._settle()


async def prune_dead_pool_kernels(kernel_manager: Any, notebook: str) -> int:
    """Take out of `notebook`'s pool every pre-started kernel that cannot serve a visitor
    (its start or its notebook's run failed, or the kernel is gone or dead), shut each
    down and ask for refills; how many were taken out. Voila hands out the pool's first
    kernel as it is: a kernel that died at start went to a visitor, whose page then
    never went live. With the pool emptied, the visitor gets a kernel of their own."""
    pool = getattr(kernel_manager, "_pools", {}).get(notebook)
    dropped = 0
    for item in list(pool or ()):
        if not item.done():
            continue  # still starting: Voila waits for it
        kernel_id = None
        if item.cancelled() or item.exception() is not None:
            dead = True
        else:
            content = item.result()
            kernel_id = content.get("kernel_id")
            task = content.get("task")
            dead = (task is not None and task.done()
                    and (task.cancelled() or task.exception() is not None))
            if not dead:
                try:
                    dead = not await ensure_async(kernel_manager.get_kernel(kernel_id).is_alive())
                except KeyError:  # the manager no longer has it
                    dead, kernel_id = True, None
        if dead:
            pool.remove(item)
            dropped += 1
            if kernel_id is not None:
                with contextlib.suppress(Exception):
                    await ensure_async(kernel_manager.shutdown_kernel(kernel_id))
    if dropped:
        kernel_manager.log.warning("%d dead pre-started kernel(s) of %s shut down", dropped,
                                   notebook)
        kernel_manager.fill_if_needed(delay=None, notebook_name=notebook)
    return dropped

V1_PROTOCOL = "v1.kernel.websocket.jupyter.org"


def legacy_message_type(message: bytes) -> str | None:
    """The msg_type of a binary message in the legacy websocket protocol (None if it is
    not one)."""
    try:
        return str(deserialize_binary_message(message)["header"]["msg_type"])
    except Exception:  # not a legacy binary message: nothing to read
        return None


class ClassroomKernelWebsocketHandler(VoilaKernelWebsocketHandler):
    """Voila's kernel websocket, reading legacy-protocol binary messages as such."""

    def write_message(self, message: Any, binary: bool = False) -> Any:
        if isinstance(message, bytes) and self.selected_subprotocol != V1_PROTOCOL:
            if legacy_message_type(message) == "execute_input":
                return None  # Voila never shows the code it runs
            return super(VoilaKernelWebsocketHandler, self).write_message(message, binary)
        return super().write_message(message, binary)


class ClassroomVoila(Voila):
    """Voila serving the notebooks folder, its dashboards behind `ClassroomHandler`."""

    max_kernels = Int(0, config=True,
                      help="Most visitors' kernels at once; past it a visitor gets the "
                           "'class is full' page (HTTP 503). 0: no cap.")
    release_memory = Bool(True, config=True,
                          help="After kernels have gone, collect garbage and return the "
                               "heap's free pages to the system (glibc malloc_trim).")
    pool_refills = Int(max(1, (os.cpu_count() or 2) - 1), config=True,
                       help="Pre-started kernels that refill the pools at once, each until "
                            "its notebook has run; 0: as many as Voila starts.")
    refill_quiet_s = Float(REFILL_QUIET_S, config=True,
                           help="Refills wait until no visitor has taken a kernel for this "
                                "many seconds (a class still arriving); 0: no wait.")
    refill_gate = Bool(True, config=True,
                       help="Stop a running pool refill while a visitor's kernel computes "
                            "(Linux: SIGSTOP and SIGCONT, CPU time from /proc).")

    def init_handlers(self) -> list:
        handlers = []
        for spec in super().init_handlers():
            if len(spec) >= 2 and spec[1] is TornadoVoilaHandler:
                kwargs = {**(spec[2] if len(spec) > 2 else {}), "max_kernels": self.max_kernels}
                spec = (spec[0], ClassroomHandler, kwargs)
            elif len(spec) >= 2 and spec[1] is VoilaKernelWebsocketHandler:
                spec = (spec[0], ClassroomKernelWebsocketHandler, *spec[2:])
            handlers.append(spec)
        if self.release_memory:
            self._watch_kernels_gone()
        if self.pool_refills and hasattr(self.kernel_manager, "_pools"):
            pace_refills(self.kernel_manager, self.pool_refills, self.refill_quiet_s)
            if self.refill_gate and RefillGate.supported():
                self.gate = RefillGate(self.kernel_manager)
                self.gate.guard_shutdowns()
                self.log.info("Refills stop while a visitor's kernel computes (refill gate, "
                              "a look every %.1f s)", GATE_LOOK_S)
                ClassroomHandler.gate = self.gate
                self.gate_look = tornado.ioloop.PeriodicCallback(self.gate.look,
                                                                 GATE_LOOK_S * 1000)
                self.gate_look.start()
        cull_only_started(self.kernel_manager)
        return handlers

    def _watch_kernels_gone(self) -> None:
        """Release memory after kernels have gone, looking every CULL_INTERVAL_S."""
        km = self.kernel_manager
        watch = KernelsGoneWatch(lambda: len(km.list_kernel_ids()))
        self.kernels_gone = tornado.ioloop.PeriodicCallback(
            watch, classroom.CULL_INTERVAL_S * 1000)
        self.kernels_gone.start()


def pace_refills(kernel_manager: Any, at_once: int, quiet_s: float = REFILL_QUIET_S) -> None:
    """Let `at_once` pool refills run at a time, each until its notebook has run, and
    none until no kernel has been taken for `quiet_s` (each refill is asked for when a
    visitor takes a kernel: a class still arriving).

    Voila's pools hold tasks of its kernel manager's `_initialize` (start a kernel, run
    the notebook in the background); the pools filled when the server starts are left as
    they are, every later call waits. A refill a visitor has taken from its pool while it
    waited (the pool was empty) starts at once: a visitor never waits behind other
    dashboards' refills. A restart (a kernel id given) never waits."""
    turns = asyncio.Semaphore(at_once)
    initialize = kernel_manager._initialize
    last_asked = [float("-inf")]

    def taken(task: asyncio.Task[Any] | None) -> bool:
        return not any(task in pool for pool in getattr(kernel_manager, "_pools", {}).values())

    async def paced(notebook_name: str, kernel_id: str | None = None, **kwargs: Any) -> Any:
        if kernel_id is not None:
            return await initialize(notebook_name, kernel_id, **kwargs)
        loop = asyncio.get_running_loop()
        last_asked[0] = loop.time()
        me = asyncio.current_task()
        turn = False
        while not taken(me):
            if not turn:
                try:
                    await asyncio.wait_for(turns.acquire(), PACE_LOOK_S)
                    turn = True
                except TimeoutError:
                    continue
            quiet_in = last_asked[0] + quiet_s - loop.time()
            if quiet_in <= 0:
                break
            await asyncio.sleep(min(quiet_in, PACE_LOOK_S))
        try:
            content = await initialize(notebook_name, kernel_id, **kwargs)
            running = content.get("task") if isinstance(content, dict) else None
            if turn and isinstance(running, asyncio.Future):
                with contextlib.suppress(Exception):
                    await asyncio.shield(running)  # the notebook has run
            return content
        finally:
            if turn:
                turns.release()

    kernel_manager._initialize = paced


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _proc_cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system) of process `pid` from /proc, None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS  # utime, stime


def _kernel_pid(kernel_manager: Any, kernel_id: str) -> int | None:
    """The process id of a local kernel (None: gone, or not a local process)."""
    try:
        provisioner = kernel_manager.get_kernel(kernel_id).provisioner
    except KeyError:
        return None
    pid = getattr(provisioner, "pid", None)
    if pid is None and getattr(provisioner, "process", None) is not None:
        pid = provisioner.process.pid
    return int(pid) if pid else None


class RefillGate:
    """Stops running pool refills while a visitor's kernel computes.

    Each look: the refills running are the pre-started kernels still in a pool whose
    notebook has not finished; the visitors' kernels are every other listed kernel. If
    one of those used more than GATE_BUSY_CPU_S of CPU since the last look, every
    running refill is stopped (SIGSTOP); otherwise, and for any kernel that is no
    longer a running refill (its notebook done, or taken by a visitor), it goes on
    (SIGCONT). A refill stopped for GATE_MAX_STOP_S runs for one look, so a visitor's
    kernel computing for minutes does not hold the pools empty for as long."""

    def __init__(self, kernel_manager: Any, *, cpu_seconds: Any = _proc_cpu_seconds,
                 send: Any = os.kill, clock: Any = time.monotonic) -> None:
        self.km = kernel_manager
        self.cpu_seconds = cpu_seconds
        self.send = send
        self.clock = clock
        self.cpu: dict[int, float] = {}  # visitor kernel pid -> CPU seconds at the last look
        self.stopped: dict[int, float] = {}  # refill pid -> since when it is stopped

    @staticmethod
    def supported() -> bool:
        return os.path.isdir("/proc/self") and hasattr(signal, "SIGSTOP")

    def running_refills(self) -> set[int]:
        """Pids of the pre-started kernels whose notebook is still running in a pool."""
        pids = set()
        for content in classroom.pool_contents(self.km):
            task = content.get("task")
            if task is not None and not task.done():
                pid = _kernel_pid(self.km, content["kernel_id"])
                if pid is not None:
                    pids.add(pid)
        return pids

    def visitors_busy(self) -> bool:
        """Whether a visitor's kernel used more than GATE_BUSY_CPU_S since the last look."""
        pooled = classroom.pooled_kernel_ids(self.km)
        busy = False
        seen: dict[int, float] = {}
        for kernel_id in self.km.list_kernel_ids():
            if kernel_id in pooled:
                continue
            pid = _kernel_pid(self.km, kernel_id)
            if pid is None or pid in self.stopped:
                continue
            used = self.cpu_seconds(pid)
            if used is None:
                continue
            seen[pid] = used
            if used - self.cpu.get(pid, used) > GATE_BUSY_CPU_S:
                busy = True
        self.cpu = seen
        return busy

    def look(self) -> None:
        refills = self.running_refills()
        busy = self.visitors_busy()
        now = self.clock()
        for pid, since in list(self.stopped.items()):
            if pid not in refills or not busy or now - since >= GATE_MAX_STOP_S:
                self._send(pid, signal.SIGCONT)
                del self.stopped[pid]
                refills.discard(pid)  # runs at least until the next look
        if busy:
            for pid in refills - set(self.stopped):
                if self._send(pid, signal.SIGSTOP):
                    self.stopped[pid] = now

    def guard_shutdowns(self) -> None:
        """A stopped refill goes on before it is shut down: stopped, it cannot answer
        the shutdown request, and the manager would wait for it before killing it."""
        km = self.km
        shutdown_kernel, shutdown_all = km.shutdown_kernel, km.shutdown_all

        async def kernel_going_on(kernel_id: str, *args: Any, **kwargs: Any) -> Any:
            pid = _kernel_pid(km, kernel_id)
            if pid is not None and self.stopped.pop(pid, None) is not None:
                self._send(pid, signal.SIGCONT)
            return await ensure_async(shutdown_kernel(kernel_id, *args, **kwargs))

        async def all_going_on(*args: Any, **kwargs: Any) -> Any:
            self.go_on()
            return await ensure_async(shutdown_all(*args, **kwargs))

        km.shutdown_kernel, km.shutdown_all = kernel_going_on, all_going_on

    def go_on(self) -> None:
        """Every stopped refill goes on (a visitor is taking a kernel)."""
        for pid in list(self.stopped):
            self._send(pid, signal.SIGCONT)
        self.stopped.clear()

    def _send(self, pid: int, sig: int) -> bool:
        try:
            self.send(pid, sig)
        except OSError:  # gone
            return False
        return True


def cull_only_started(kernel_manager: Any) -> None:
    """The idle culler passes over a kernel that is still starting.

    jupyter_server sets a kernel's `last_activity` once the kernel has started, and its
    culler asks `hasattr(kernel, "last_activity")`; before that, reading the trait raises
    TraitError (the trait has no value and takes no None), which the culler logged at
    ERROR level with its traceback for each pool kernel starting during a cull round.
    The next round, CULL_INTERVAL_S later, checks the kernel as usual."""
    cull = kernel_manager.cull_kernel_if_idle

    async def started_only(kernel_id: str) -> Any:
        kernel = kernel_manager._kernels.get(kernel_id)
        if kernel is not None and "last_activity" not in getattr(kernel, "_trait_values", {}):
            return None
        return await ensure_async(cull(kernel_id))

    kernel_manager.cull_kernel_if_idle = started_only

main = ClassroomVoila.launch_instance

if __name__ == "__main__":
    main()
