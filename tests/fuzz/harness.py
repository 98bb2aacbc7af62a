"""Running fuzz cases in a child process under a memory limit, and judging each result.

`Worker` keeps one `worker.py` child alive across cases (start-up, the imports, takes
about a second); a case that kills the child (memory, a crash) or outlives its time
limit ends it, is recorded as a defect and the next case starts a fresh child. `check`
asserts what every command line must do with any input: exit with status 0 or 2,
never a traceback, and on failure print exactly one `percpu-explorer: error:` line.

Settings come from the environment: FUZZ_PROFILE (quick, the default in `make test`, or
long for `make fuzz`), FUZZ_MEMORY_MB (the child's address-space limit, default 3072)
and FUZZ_CASE_SECONDS (time limit per case, default 60).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

MEMORY_LIMIT = int(os.environ.get("FUZZ_MEMORY_MB", "3072")) << 20
CASE_SECONDS = float(os.environ.get("FUZZ_CASE_SECONDS", "60"))
PROFILE = os.environ.get("FUZZ_PROFILE", "quick")
WORKER = Path(__file__).with_name("worker.py")
PREFIX = "percpu-explorer: error: "


@dataclass
class Tally:
    """Cases tried and defects seen in this session (reported at its end)."""

    cases: Counter = field(default_factory=Counter)
    statuses: Counter = field(default_factory=Counter)
    defects: list[str] = field(default_factory=list)
    restarts: int = 0
    slowest: tuple[float, list[str]] = (0.0, [])


TALLY = Tally()


class Worker:
    """One `worker.py` child under RLIMIT_AS, fed one command line at a time."""

    def __init__(self, memory_limit: int = MEMORY_LIMIT) -> None:
        self.memory_limit = memory_limit
        self.proc: subprocess.Popen[str] | None = None

    def _start(self) -> None:
        env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1",
                   MKL_NUM_THREADS="1", PYTHONHASHSEED="0", COLUMNS="100")
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), str(self.memory_limit)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, encoding="utf-8", env=env, start_new_session=True)
        ready = self._read(120)
        if not ready or not ready.get("ready"):
            self.stop()
            raise RuntimeError("the fuzz worker did not start (import failed?)")

    def _read(self, seconds: float) -> dict | None:
        assert self.proc is not None and self.proc.stdout is not None
        import selectors

        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(seconds):
                return None
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def stop(self) -> None:
        """End the child this worker started (its own process group)."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()
        self.proc = None

    def run(self, argv: list[str], *, cwd: str | None = None,
            seconds: float = CASE_SECONDS) -> dict:
        """Run one command line; a dead or hung child gives a result with its error."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc is not None and self.proc.stdin is not None
        request = {"argv": argv, "seconds": seconds}
        if cwd is not None:
            request["chdir"] = cwd
        started = time.perf_counter()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            result = self._read(seconds + 30)
        except (BrokenPipeError, OSError):
            result = None
        if result is None:
            code = self.proc.poll()
            self.stop()
            TALLY.restarts += 1
            why = ("killed" if code is not None and code < 0 else
                   f"exited {code}" if code is not None else "hung")
            result = {"status": None, "stderr": "", "stdout_bytes": 0, "stub": None,
                      "seconds": time.perf_counter() - started,
                      "error": f"the worker {why} (memory limit {self.memory_limit >> 20} MiB, "
                               f"time limit {seconds} s)"}
        return result


def check(result: dict, argv: list[str], *, kind: str) -> None:
    """Assert the command line's contract for one case, and tally it."""
    TALLY.cases[kind] += 1
    TALLY.statuses[result["status"]] += 1
    if result["seconds"] > TALLY.slowest[0]:
        TALLY.slowest = (result["seconds"], argv)
    problem = None
    err = result["stderr"]
    if result["error"]:
        problem = result["error"].strip().splitlines()[-1]
    elif result["status"] not in (0, 2):
        problem = f"exit status {result['status']}"
    elif "Traceback (most recent call last)" in err:
        problem = "a traceback on stderr"
    elif result["status"] == 2 and (not err.startswith(PREFIX) or err.count("\n") != 1):
        problem = f"status 2 without exactly one error line: {err[:300]!r}"
    elif result["seconds"] > CASE_SECONDS:
        problem = f"took {result['seconds']:.1f} s (limit {CASE_SECONDS} s)"
    if problem:
        TALLY.defects.append(f"{kind}: {argv!r}: {problem}")
        raise AssertionError(f"{kind}: {argv!r}: {problem}\n{result.get('error') or err}")
