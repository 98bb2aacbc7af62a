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
