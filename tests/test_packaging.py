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


# Which folders each part of the package may import (DEVELOPERS' layers: kernel at the
# bottom, views at the top). Leaf modules (paths, errors) may be imported by everyone.
LAYERS = {
    "kernel": set(),
    "percpu": {"kernel"},
    "thiscpu": {"kernel", "percpu"},
    "captures": {"kernel", "percpu", "thiscpu"},  # a census phase is a thiscpu workload
    "ui": {"kernel", "percpu", "thiscpu", "captures", "exercises"},  # the exercise sheet
    "claims": {"kernel", "percpu", "thiscpu", "captures"},
    "exercises": {"kernel", "percpu", "thiscpu"},
    "cli": {"kernel", "percpu", "thiscpu", "captures", "ui", "claims"},
    "__init__": {"kernel"},
}
LEAVES = {"paths", "errors", "findings", "glossary"}


def _imports(path, package):
    import ast

    rel = path.relative_to(package).with_suffix("").parts
    here = ("percpu_explorer", *rel[:-1])  # the package a relative import starts from
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = here[: len(here) - node.level + 1]
            target = (*base, *(node.module.split(".") if node.module else ()))
            names = [a.name for a in node.names] if not node.module else [None]
            for name in names:
                yield node.lineno, target + ((name,) if name else ())


def test_folders_import_only_downwards_and_through_the_folder_package():
    package = ROOT / "pkg" / "percpu_explorer"
    bad = []
    for path in package.rglob("*.py"):
        own = path.relative_to(package).parts[0].removesuffix(".py")
        if own in LEAVES:
            continue
        for line, target in _imports(path, package):
            if len(target) < 2:
                continue
            folder = target[1]
            if folder == own or folder in LEAVES:
                continue
            where = f"{path.relative_to(package)}:{line} imports {'.'.join(target)}"
            if folder not in LAYERS.get(own, set()):
                bad.append(f"{where}: {own} may not import {folder}")
            elif len(target) > 2 and (package / folder / f"{target[2]}.py").exists():
                bad.append(f"{where}: import from the folder package, not its module")
    assert not bad, "\n".join(bad)


def test_readme_layout_shows_every_folder_of_the_package():
    text = (ROOT / "README.md").read_text()
    block = text[text.index("## Layout of the repository"):]
    block = block[block.index("```") + 3:]
    block = block[:block.index("```")]
    folders = sorted(p.name for p in (ROOT / "pkg" / "percpu_explorer").iterdir()
                     if p.is_dir() and ((p / "__init__.py").exists() or p.name == "data"))
    shown = [line.split()[0].rstrip("/") for line in block.splitlines() if line.startswith("  ")]
    assert shown == [f for f in ["kernel", "percpu", "thiscpu", "captures", "ui", "claims",
                                 "cli", "data"] if f in folders]
    assert sorted(shown) == folders


def test_every_notebook_names_its_kernel():
    """Without a kernelspec JupyterLab opens each notebook on a "Select Kernel" dialog and
    Voila has to guess; the header of the paired script carries it (jupytext.toml)."""
    import json

    for ipynb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        spec = json.loads(ipynb.read_text())["metadata"].get("kernelspec", {})
        assert spec.get("name") == "python3" and spec.get("language") == "python", ipynb.name
        assert "name: python3" in ipynb.with_suffix(".py").read_text(), ipynb.name
