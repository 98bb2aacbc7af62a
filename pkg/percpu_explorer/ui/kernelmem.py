"""What a dashboard's kernel holds, step by step: a kernel started as the app starts one
(`app.voila_env`, the notebooks folder as working directory), then the libraries imported
one after another, the notebook's own imports, and its cells; the kernel's RSS (resident
memory, shared library pages included) and USS (its private memory, what one more kernel
costs) after each step.

`python -m percpu_explorer.ui.kernelmem [NOTEBOOK ...]` prints the table (README, the app).
pandas imports pyarrow when it is installed, so pyarrow is its own step before pandas.
"""

from __future__ import annotations

import ast
import sys
import time
from typing import Any

from . import app

LIBRARIES: tuple[tuple[str, str], ...] = (
    ("interpreter + ipykernel", "pass"),
    ("numpy", "import numpy"),
    ("pyarrow (pandas imports it)", "import pyarrow"),
    ("pandas", "import pandas"),
    ("plotly", "import plotly.graph_objects"),
    ("ipywidgets + anywidget", "import ipywidgets, anywidget"),
)


def _imports(cells: list[str]) -> str:
    """The notebook's import statements, in order."""
    found = []
    for source in cells:
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        found += [ast.get_source_segment(source, node) or "" for node in tree.body
                  if isinstance(node, ast.Import | ast.ImportFrom)]
    return "\n".join(found)


def _run(client: Any, code: str, timeout: float = 300.0) -> str | None:
    """Execute `code`; the error it raised (None if none)."""
    msg_id = client.execute(code, store_history=False)
    error = None
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            error = f"{msg['content']['ename']}: {msg['content']['evalue']}"
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return error


def kernel_steps(notebook: str) -> list[dict[str, Any]]:
    """Each step's label, the kernel's RSS and USS (MB) after it, and any error."""
    import nbformat
    import psutil
    from jupyter_client.manager import KernelManager

    from ..paths import notebooks_dir

    folder = notebooks_dir()
    nb = nbformat.read(folder / notebook, as_version=4)
    cells = [c.source for c in nb.cells if c.cell_type == "code"]
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=app.voila_env(folder), cwd=str(folder))
    client = km.client()
    client.start_channels()
    steps = []
    try:
        client.wait_for_ready(timeout=120)
        kernel = psutil.Process(km.provisioner.process.pid)  # type: ignore[union-attr]

        def step(label: str, error: str | None) -> None:
            time.sleep(0.5)
            m = kernel.memory_full_info()
            steps.append({"step": label, "rss": round(m.rss / 2**20, 1),
                          "uss": round(m.uss / 2**20, 1), "error": error})

        for label, code in (*LIBRARIES, ("percpu_explorer (the notebook's imports)",
                                         _imports(cells))):
            step(label, _run(client, code))
        errors = [e for e in (_run(client, c) for c in cells) if e]
        step("running the notebook", "; ".join(errors) or None)
    finally:
        client.stop_channels()
        km.shutdown_kernel(now=True)
    return steps


def main(argv: list[str] | None = None) -> None:  # pragma: no cover - prints the table
    names = (argv if argv is not None else sys.argv[1:]) or \
        [d.notebook for d in app.dashboards()]
    for name in names:
        print(name)
        rss = uss = 0.0
        for s in kernel_steps(name):
            print(f"  {s['step']:42s} RSS {s['rss']:6.1f} (+{s['rss'] - rss:5.1f})  "
                  f"USS {s['uss']:6.1f} (+{s['uss'] - uss:5.1f})  {s['error'] or ''}")
            rss, uss = s["rss"], s["uss"]


if __name__ == "__main__":  # pragma: no cover
    main()
