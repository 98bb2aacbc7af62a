"""`pip install .` outside the repository (not editable) still finds every data file.

The wheel is built from a copy of the package sources and installed into a fresh venv
that borrows only the third-party packages of the test environment; the check runs in
a temporary folder, so nothing of the checkout is on its path.
"""

import json
import shutil
import site
import subprocess
import sys
import venv

import pytest

from .conftest import ROOT

CHECK = r"""
import json, sys
from pathlib import Path
import percpu_explorer
from percpu_explorer import paths
from percpu_explorer.captures import compare, load_bundle
from percpu_explorer.claims import default_captures_dir
from percpu_explorer.thiscpu import read_workload

out = {"package": percpu_explorer.__file__, "captures": {}, "workloads": {}}
assert default_captures_dir() == paths.CAPTURES_DIR
for folder in sorted(p for p in paths.CAPTURES_DIR.iterdir() if p.is_dir()):
    bundle = load_bundle(folder)
    out["captures"][folder.name] = sorted(bundle.texts)
first = sorted(p for p in paths.CAPTURES_DIR.iterdir() if p.is_dir())[0]
result = compare(load_bundle(first))
out["compare_rows"] = [result.agreed, len(result.layout_rows)]
for path in sorted(paths.WORKLOADS_DIR.iterdir()):
    if path.suffix in {".csv", ".parquet"}:
        out["workloads"][path.name] = len(read_workload(path))
out["files"] = sorted(str(p.relative_to(paths.DATA_DIR)) for p in paths.DATA_DIR.rglob("*")
                      if p.is_file())
from percpu_explorer.ui import app
template = app.JUPYTER_DATA / "voila" / "templates" / app.TEMPLATE
out["voila_template"] = sorted(p.name for p in template.iterdir())
out["voila_config"] = (app.VOILA_CONFIG / "voila.py").is_file()
from percpu_explorer.ui import plotlyjs
out["plotly_js"] = plotlyjs.CARTESIAN.is_file()
out["plotview_esm"] = (app.JUPYTER_DATA.parent / "widgets" / "plotview.js").is_file()
try:
    paths.notebooks_dir()
    out["notebooks"] = "found"
except FileNotFoundError as exc:
    out["notebooks"] = str(exc)
print(json.dumps(out))
"""


@pytest.mark.slow
def test_wheel_installed_outside_the_repository_finds_its_data(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "pkg", src / "pkg", symlinks=False,
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "-w", str(wheels), str(src)], check=True)
    (wheel,) = wheels.glob("percpu_explorer-*.whl")

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()"
                              "['purelib'])"], check=True, capture_output=True, text=True)
    # numpy, pandas and pyarrow from the test environment, as a plain path entry (its .pth
    # files, the editable install among them, are not processed).
    (tmp_path / "venv-site").mkdir()
    borrowed = [p for p in site.getsitepackages() if "site-packages" in p]
    from pathlib import Path
    Path(purelib.stdout.strip(), "borrowed.pth").write_text("\n".join(borrowed) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                    "--target", purelib.stdout.strip(), str(wheel)], check=True)

    run = subprocess.run([str(python), "-I", "-c", CHECK], cwd=tmp_path,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["package"].startswith(str(env_dir)), out["package"]
    shipped = sorted(str(p.relative_to(ROOT / "data")) for p in (ROOT / "data").rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert out["files"] == shipped
    # every shipped capture loads with its texts; the first compares against the model
    assert len(out["captures"]) == len([p for p in (ROOT / "data" / "captures").iterdir()
                                        if p.is_dir()]) >= 4
    assert all("dmesg" in texts for texts in out["captures"].values())
    agreed, rows = out["compare_rows"]
    assert rows > 0 and agreed == rows
    assert out["workloads"] and all(n > 0 for n in out["workloads"].values())
    # the classroom app's Voila template and configuration come with the package
    assert out["voila_template"] == ["conf.json", "index.html.j2", "static", "tree-lab.html",
                                     "tree.html"]
    assert out["voila_config"]
    assert out["plotly_js"] and out["plotview_esm"]  # the pages' plotly.js, PlotView's module
    # the notebooks belong to the repository: an installed package says how to find them
    assert "--notebooks" in out["notebooks"]
