"""A child process that runs command lines of `percpu-explorer` one after another.

Started by `tests/fuzz/harness.py` with the memory limit in its arguments, it sets
RLIMIT_AS (address space) on itself, imports the command line once, then reads one JSON
request per line on stdin ({"argv": [...], "seconds": N}) and writes one JSON result per
line: the exit status, stdout's size, stderr, the time taken and, when the command did
not end with an exit status, the exception and its traceback (a defect).

What would leave the machine is replaced, so that fuzzing never starts a server, boots
QEMU or reads this machine's kernel: `ui.app.start` and the three capture functions raise
`Stub`, after every check that comes before them has run. A result with "stub" set means
the command accepted its arguments and got that far.
"""

from __future__ import annotations

import io
import json
import os
import resource
import signal
import sys
import time
import traceback


class Stub(Exception):
    """The command reached a stubbed action: its arguments were accepted."""


class CaseTimeout(Exception):
    """The case ran longer than its time limit."""


def _stub(name: str):
    def stub(*args: object, **kwargs: object) -> None:
        raise Stub(name)
    return stub


def _on_alarm(signum: int, frame: object) -> None:
    raise CaseTimeout()


def run_case(main, argv: list[str], seconds: float) -> dict:
    """Run `main(argv)` with captured, encoding-strict stdout (as a terminal's) and a
    backslash-escaping stderr (as Python's own)."""
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(err_bytes, encoding="utf-8", errors="backslashreplace")
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = out, err
    result: dict = {"status": None, "error": None, "stub": None}
    started = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        try:
            result["status"] = main(argv)
        except SystemExit as exc:
            result["status"] = exc.code if isinstance(exc.code, int) else 1
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except Stub as exc:
        result["status"], result["stub"] = 0, str(exc)
    except CaseTimeout:
        result["error"] = f"timeout: still running after {seconds} s"
    except BaseException as exc:  # every other ending is the defect looked for
        result["error"] = "".join(traceback.format_exception(exc))[-4000:]
    finally:
        sys.stdout, sys.stderr = saved
    result["seconds"] = time.perf_counter() - started
    for stream in (out, err):
        try:
            stream.flush()
        except (ValueError, UnicodeError) as exc:
            result["error"] = result["error"] or f"output not writable: {exc!r}"
    result["stdout_bytes"] = len(out_bytes.getvalue())
    result["stderr"] = err_bytes.getvalue().decode("utf-8", "replace")[-4000:]
    return result


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGALRM, _on_alarm)
    reply = os.fdopen(os.dup(1), "w", encoding="utf-8")
    from percpu_explorer.captures import qemu  # noqa: F401 - patched below
    from percpu_explorer.cli import captures as cli_captures
    from percpu_explorer.cli import census as cli_census
    from percpu_explorer.cli import main as cli_main
    from percpu_explorer.ui import app

    app.start = _stub("ui.app.start")
    cli_captures.capture_qemu = _stub("capture_qemu")
    cli_captures.capture_local = _stub("capture_local")
    cli_captures.capture_variant = _stub("capture_variant")
    cli_census.run_census = _stub("run_census")
    reply.write(json.dumps({"ready": True}) + "\n")
    reply.flush()
    for line in sys.stdin:
        request = json.loads(line)
        if "chdir" in request:
            os.chdir(request["chdir"])
        result = run_case(cli_main, request["argv"], request.get("seconds", 60))
        reply.write(json.dumps(result) + "\n")
        reply.flush()


if __name__ == "__main__":
    main()
