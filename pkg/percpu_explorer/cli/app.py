"""`app`: the notebooks served as Voila dashboards, and its load test."""

from __future__ import annotations

import argparse
import json
import signal

from .common import PROG, fail


def cmd_app(args: argparse.Namespace) -> str:
    from ..ui import app

    if args.load_test:
        report = app.load_test(sessions=args.sessions, drop=args.drop,
                               host=app.check_host(args.host))
        ok = (report["sessions_updated"] == report["expected_updated"]
              and report["server_alive_after_drops"])
        if not ok:
            print(json.dumps(report, indent=2))
            raise SystemExit(fail("load test: not every session got its figure, or the "
                                  "server did not survive the dropped sessions"))
        return json.dumps(report, indent=2)
    # bad --host/--port/--max-kernels/--pool-size: a ValueError naming it
    app.voila_command(args.host, args.port, None, args.max_kernels, args.pool_size)
    status = app.serve(args.host, args.port, None, args.max_kernels, args.pool_size)
    if status not in (0, -signal.SIGTERM, -signal.SIGINT):
        raise SystemExit(fail(f"the Voila server exited with status {status}"))
    return f"{PROG} app: stopped"


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """`app`."""
    p = sub.add_parser("app", help="serve the notebooks as Voila dashboards (a classroom app)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    p.add_argument("--port", type=int, default=8866, help="port (default 8866)")
    p.add_argument("--max-kernels", type=int, default=None,
                   help="most visitors at once, one kernel each; past it a visitor gets a "
                        "'class is full, try again in a minute' page (default: 80%% of the "
                        "memory available at start, 300 MB per kernel)")
    p.add_argument("--pool-size", type=int, default=0,
                   help="kernels per dashboard started ahead of visitors, so that the server "
                        "answers at once (default 0: none; a pre-started kernel has been "
                        "seen culled before its visitor connected)")
    p.add_argument("--load-test", action="store_true",
                   help="instead: start the app on a free loopback port, run --sessions "
                        "concurrent visitors against it, report memory and update times")
    p.add_argument("--sessions", type=int, default=30, help="load test visitors (default 30)")
    p.add_argument("--drop", type=int, default=3,
                   help="load test visitors that leave in the middle of an update (default 3)")
    p.set_defaults(func=cmd_app)
