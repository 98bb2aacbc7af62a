"""Real-browser tests (issue 8): pytest-playwright driving Debian's Chromium, never a
browser of Playwright's own. `make test` installs the `chromium` package when missing;
without it these tests skip and say why. On failure the page's screenshot and its console
log are saved in the test's output folder (pytest-playwright's --output, test-results/)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from percpu_explorer.paths import DATA_DIR, notebooks_dir
from percpu_explorer.ui import app, classload

try:
    CHROMIUM = classload.chromium_path()
except ValueError:  # none installed: the browser tests skip (the fixtures say so)
    CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # we run as root in CI
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: `make test` installs Debian's chromium "
                    f"package (apt-get install chromium), or set PERCPU_CHROMIUM")
    return {**browser_type_launch_args, "executable_path": CHROMIUM,
            "args": CHROMIUM_FLAGS, "headless": True}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "viewport": {"width": 1400, "height": 1000}}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture
def console(page, output_path, request):
    """The page's console messages and page errors; written out, with a screenshot, if the
    test fails."""
    messages: list[str] = []

    def record(m):  # a failed fetch names its URL only in the message's location
        url = m.location.get("url", "") if "Failed to load resource" in m.text else ""
        messages.append(f"[{m.type}] {m.text}" + (f" ({url})" if url else ""))
    def outside(r):  # the explorer serves every asset itself: nothing leaves loopback
        host = urlsplit(r.url).hostname
        if r.url.startswith(("http:", "https:", "ws:", "wss:")) and host not in LOOPBACK:
            messages.append(f"[error] request outside loopback: {r.method} {r.url}")
    page.on("console", record)
    page.on("pageerror", lambda e: messages.append(f"[pageerror] {e}"))
    page.on("request", outside)
    yield messages
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        out = Path(output_path)
        out.mkdir(parents=True, exist_ok=True)
        (out / "console.log").write_text("\n".join(messages) + "\n")
        try:
            page.screenshot(path=str(out / "failure.png"), full_page=True)
        except Exception as exc:  # the page may be gone; the log still says what happened
            (out / "screenshot-failed.txt").write_text(repr(exc))


@pytest.fixture(scope="session")
def jupyterlab_server(tmp_path_factory):
    """JupyterLab on a free loopback port for the whole session, on a copy of notebooks/
    (nothing in the work tree is saved over) with `data` beside it as in the repository
    (the notebooks read ../data/...). Its own Jupyter config, runtime and workspace
    folders; its log is kept beside them; killed with its kernels at the end."""
    tmp = tmp_path_factory.mktemp("lab")
    root = tmp / "notebooks"
    root.mkdir()
    for nb in notebooks_dir().glob("*.ipynb"):
        shutil.copy2(nb, root / nb.name)
    (tmp / "data").symlink_to(DATA_DIR, target_is_directory=True)
    config = tmp / "config"
    (config / "labconfig").mkdir(parents=True)
    # No "Would you like to get notified about news?" popup over the notebook.
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port = app.free_port()
    # The app's template on the Jupyter path, as under JupyterHub (deploy/singleuser): the
    # server's Voila extension serves its static plotly.js to JupyterLab's pages too.
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(config),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
               JUPYTER_PATH=app.voila_env(base=dict(os.environ))["JUPYTER_PATH"])
    log_path = tmp / "lab.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
             f"--port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
             "--IdentityProvider.token=", "--ServerApp.password=",
             "--ServerApp.disable_check_xsrf=True",
             "--LabApp.expose_app_in_browser=True",  # helpers.open_in_lab runs commands
             f"--ServerApp.root_dir={root}"],
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base = f"http://127.0.0.1:{port}/"
        try:
            try:
                app.wait_ready(base + "api/status", proc, timeout=90)
            except (RuntimeError, TimeoutError) as exc:
                raise RuntimeError(f"{exc}\n{log_path.read_text()[-3000:]}") from exc
            yield base
        finally:
            app.stop(proc)


@pytest.fixture
def shot(page, output_path):
    """shot(name): a screenshot of the current step in the test's output folder."""
    out = Path(output_path)
    out.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 100))

    def take(name: str) -> Path:
        path = out / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path))
        return path
    return take
