"""Fuzzing profiles, the shared worker process and the end-of-session report.

FUZZ_PROFILE=quick (the default; part of `make test`, well under a minute on two cores)
runs a fixed, derandomized set of examples; FUZZ_PROFILE=long (`make fuzz`) runs many
more (FUZZ_EXAMPLES per test, default 600), random each time, and keeps hypothesis's
database of failures.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from .harness import MEMORY_LIMIT, PROFILE, TALLY, Worker

_COMMON = dict(deadline=None, suppress_health_check=list(HealthCheck), print_blob=True)
settings.register_profile("fuzz-quick", max_examples=20, derandomize=True, database=None,
                          **_COMMON)
settings.register_profile("fuzz-long", max_examples=int(os.environ.get("FUZZ_EXAMPLES", "600")),
                          **_COMMON)
if PROFILE not in ("quick", "long"):
    raise pytest.UsageError(f"FUZZ_PROFILE {PROFILE!r} is unknown; use quick or long")


def fuzz_settings(scale: float = 1.0) -> settings:
    """The profile's settings, with `scale` times its examples (cheap tests ask for more)."""
    base = settings.get_profile(f"fuzz-{PROFILE}")
    return settings(base, max_examples=max(1, round(base.max_examples * scale)))


@pytest.fixture(scope="session")
def worker():
    """One child process for every command-line case of the session."""
    w = Worker(MEMORY_LIMIT)
    yield w
    w.stop()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not TALLY.cases:
        return
    tr = terminalreporter
    total = sum(TALLY.cases.values())
    tr.section(f"fuzz ({PROFILE} profile)")
    tr.write_line(f"{total} cases: " + ", ".join(f"{k} {v}" for k, v in
                                                 sorted(TALLY.cases.items())))
    tr.write_line("exit statuses: " + ", ".join(f"{k}: {v}" for k, v in
                                                sorted(TALLY.statuses.items(), key=str)))
    tr.write_line(f"child memory limit {MEMORY_LIMIT >> 20} MiB; worker restarts "
                  f"{TALLY.restarts}; slowest case {TALLY.slowest[0]:.2f} s: "
                  f"{TALLY.slowest[1][:8]!r}")
    for defect in TALLY.defects[:50]:
        tr.write_line(f"DEFECT {defect[:300]}")
