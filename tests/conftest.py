from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from percpu_explorer.cli import main

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"

settings.register_profile(
    "default", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture
def cli(capsys):
    """Run the command line: cli(*argv) -> (exit status, stdout, stderr)."""
    def run(*argv):
        status = main(list(argv))
        out, err = capsys.readouterr()
        return status, out, err
    return run


@pytest.fixture(scope="session")
def voila_app(tmp_path_factory):
    """The classroom app (issue 8) on a free loopback port for the whole session; its log
    is kept beside the tests' temporary files and shown if it fails to start."""
    from percpu_explorer.ui import app

    log_path = tmp_path_factory.mktemp("voila") / "voila.log"
    with log_path.open("wb") as log:
        try:
            # No ready-kernel pool here: six preheated kernels at session start would take
            # ~1 GB and both cores while the other tests run (tests/ui/test_classroom.py and
            # tests/browser/test_class_load.py test the pool).
            with app.running(log=log, timeout=90, pool_size=0) as base:
                yield base
        except (RuntimeError, TimeoutError) as exc:
            raise RuntimeError(f"{exc}\n{log_path.read_text()[-3000:]}") from exc
