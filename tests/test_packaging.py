"""The repository's own promises: two commands, one dependency list, CI runs make test."""

import re
import tomllib

import yaml

from .conftest import ROOT

# conda-forge names that differ from PyPI names.
CONDA_NAME = {"kaleido": "python-kaleido"}


def _name(requirement):
    return re.split(r"[<>=!~\[ ;]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_lists_the_same_packages_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pip_names = {_name(r) for r in project["dependencies"]}
    for extra in project["optional-dependencies"].values():
        pip_names |= {_name(r) for r in extra if not r.startswith("percpu-explorer")}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)} - {"python", "pip"}
    assert conda == {CONDA_NAME.get(n, n) for n in pip_names}
    assert "conda-forge" in env["channels"]
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert "-e ." in pip_section


def test_readme_starts_with_the_two_commands():
    lines = [line for line in (ROOT / "README.md").read_text().splitlines() if line.strip()]
    code = lines[lines.index("```sh") + 1:lines.index("```sh") + 3]
    assert [c.split("#")[0].strip() for c in code] == ["make run", "make test"]


def test_ci_runs_exactly_make_test():
    commands = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    assert commands[-1] == "make test"


def test_package_is_typed():
    assert (ROOT / "pkg" / "percpu_explorer" / "py.typed").exists()


def test_only_ui_imports_plotting_widgets_or_voila():
    package = ROOT / "pkg" / "percpu_explorer"
    for path in package.rglob("*.py"):
        if path.relative_to(package).parts[0] == "ui":
            continue
        text = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(plotly|ipywidgets|voila)", text, re.M), path


def test_notebooks_are_paired_and_in_sync():
    import jupytext

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for ipynb in notebooks:
        script = ipynb.with_suffix(".py")
        assert script.exists(), f"{ipynb.name} has no paired {script.name}"
        cells = [(c.cell_type, c.source) for c in jupytext.read(ipynb).cells]
        assert cells == [(c.cell_type, c.source) for c in jupytext.read(script).cells], ipynb.name
