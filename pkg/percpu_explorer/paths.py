"""Where the package finds its data and the repository's notebooks.

The captures, workloads and reference tables are package data
(`percpu_explorer/data`, also reachable as `data/` at the top of the repository),
so an installed wheel finds them as an editable install does. The notebooks belong
to the repository, not the package: `notebooks_dir()` finds them next to a source
checkout and says how to point at them otherwise.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = PACKAGE_DIR / "data"
CAPTURES_DIR = DATA_DIR / "captures"
WORKLOADS_DIR = DATA_DIR / "workloads"
REFERENCE_DIR = DATA_DIR / "reference"
# pkg/percpu_explorer -> the repository, when running from a source checkout.
REPOSITORY_DIR = PACKAGE_DIR.parent.parent


def notebooks_dir() -> Path:
    """The repository's notebooks/ folder; a clear error when the package is installed alone."""
    folder = REPOSITORY_DIR / "notebooks"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"no notebooks folder at {folder}: the notebooks live in the percpu-explorer "
            "repository, not in the installed package; pass --notebooks DIR (a checkout's "
            "notebooks/)"
        )
    return folder
