"""The classroom app (issue 8): command line, security defaults, widget front-end versions,
and a small load run that checks correctness only (timings: `make load`)."""

import html
import json
import os
import re
import shutil
import signal
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path

import pytest

from percpu_explorer.paths import notebooks_dir
from percpu_explorer.ui import app, classload, plotlyjs

NOTEBOOK = "01_address_space.ipynb"


def _get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        assert response.status == 200, url
        return response.read().decode()


# --- command line -------------------------------------------------------------------------

def test_app_listens_on_loopback_and_strips_code_by_default():
    cmd = app.voila_command()
    assert "--Voila.ip=127.0.0.1" in cmd
    assert "--VoilaConfiguration.strip_sources=True" in cmd
    assert "--Voila.port_retries=0" in cmd
    assert cmd[cmd.index("percpu_explorer.ui.voila_server") + 1] == str(notebooks_dir())
    assert app.is_loopback("127.0.0.1") and app.is_loopback("::1")
    assert not app.is_loopback("0.0.0.0")



def test_kernels_talk_over_unix_sockets_whose_paths_fit(tmp_path):
    """No TCP ports to race for (a port picked free was taken before a pool kernel bound
    it: "Address already in use"): the kernels use IPC sockets beside their connection
    files, in the folder Voila makes under `Voila.connection_dir_root`; their paths must
    fit a sockaddr_un (107 bytes)."""
    cmd = app.voila_command()
    assert "--KernelManager.transport=ipc" in cmd
    assert f"--Voila.connection_dir_root={app.ipc_connection_root()}" in cmd
    assert app.ipc_connection_root("/tmp") == "/tmp"  # short enough: kept
    # macOS's per-user TMPDIR is 49 bytes: its sockets' paths would be 115 bytes
    mac = tmp_path / "var/folders/zz/zyxvpxvq6csfxvn_n0000000000000/T"
    mac.mkdir(parents=True)
    assert len(f"{mac}/voila_abcdefgh/kernel-{'0' * 36}-ipc-5") > app.IPC_PATH_MAX
    root = app.ipc_connection_root(str(mac))
    assert root in ("/tmp", "/var/tmp")
    assert len(f"{root}/voila_abcdefgh/kernel-{'0' * 36}-ipc-5") <= app.IPC_PATH_MAX


def _one_notebook(tmp_path, name="06_exercises.ipynb"):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(notebooks_dir() / name, folder / name)
    return folder


@pytest.mark.slow
def test_a_running_app_puts_its_kernels_sockets_under_the_root(tmp_path):
    """The sockets are where the root says: Voila's folder of connection files, with a
    kernel's IPC sockets beside its file (what `ipc_connection_root` measures). The
    server with a pool also runs its refill gate (`voila_server.RefillGate`)."""
    import stat

    log_path = tmp_path / "voila.log"
    with log_path.open("wb") as log, app.running(
            log=log, timeout=90, pool_size=1, notebooks=_one_notebook(tmp_path)) as base:
        del base
        root = Path(app.ipc_connection_root())
        deadline = time.monotonic() + 60
        sockets: list[Path] = []
        while not sockets and time.monotonic() < deadline:
            sockets = [p for d in root.glob("voila_*") if d.stat().st_uid == os.getuid()
                       for p in d.glob("kernel-*-ipc-*") if stat.S_ISSOCK(p.lstat().st_mode)]
            time.sleep(0.5)
        assert sockets, f"no kernel sockets under {root}"
        assert all(len(os.fsencode(p)) <= app.IPC_PATH_MAX for p in sockets)
    assert "Refills stop while a visitor's kernel computes" in log_path.read_text()


@pytest.mark.parametrize(("argv", "named"), [
    (["--port", "70000"], "--port 70000"),
    (["--port", "0"], "--port 0"),
    (["--host", "my host"], "--host 'my host'"),
    (["--load-test", "--sessions", "500"], "--sessions 500"),
    (["--load-test", "--sessions", "3", "--drop", "3"], "--drop 3"),
    (["--load-test", "--host", "0.0.0.0", "--sessions", "2", "--drop", "0"], "'0.0.0.0'"),
])
def test_app_bad_values_are_named(cli, argv, named):
    status, _, err = cli("app", *argv)
    assert status == 2
    assert named in err and err.count("\n") == 1


def test_app_stops_cleanly_on_sigint(tmp_path):
    """`percpu-explorer app` in the foreground; SIGINT ends it and its kernels."""
    import subprocess

    port = app.free_port()
    proc = subprocess.Popen([sys.executable, "-m", "percpu_explorer.cli", "app", "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        app.wait_ready(f"http://127.0.0.1:{port}/", proc, timeout=60)
        _get(app.dashboard_url(f"http://127.0.0.1:{port}/", "06_exercises.ipynb"))
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.decode()
    assert proc.returncode == 0, text[-2000:]
    assert "Kernel shutdown" in text and "app: stopped" in text


# --- the running app ----------------------------------------------------------------------

def test_dashboards_are_listed_in_order_with_their_own_headings(tmp_path):
    folder = tmp_path / "nb"
    folder.mkdir()
    cell = {"cell_type": "markdown", "metadata": {}, "source": ["Intro\n", "## The title\n"]}
    for name in ("zz_extra.ipynb", "02_per_cpu_page_tables.ipynb", "01_address_space.ipynb"):
        (folder / name).write_text(json.dumps({"cells": [cell], "metadata": {}}))
    (folder / "03_percpu_allocator.ipynb").write_text("not json")
    listed = app.dashboards(folder)
    assert [d.notebook for d in listed] == ["01_address_space.ipynb",
                                            "02_per_cpu_page_tables.ipynb",
                                            "03_percpu_allocator.ipynb", "zz_extra.ipynb"]
    assert [d.title for d in listed] == ["The title", "The title", "03_percpu_allocator",
                                         "The title"]
    assert listed[0].description == dict(app.DASHBOARDS)["01_address_space.ipynb"]
    assert listed[-1].description == ""  # not in the catalogue: listed, without a line
    # the repository's notebooks: every one listed, in the catalogue's order
    assert [d.notebook for d in app.dashboards()] == [
        n for n, _ in app.DASHBOARDS if (notebooks_dir() / n).exists()]


def test_landing_page_lists_the_dashboards_and_the_glossary(voila_app):
    from percpu_explorer.glossary import TERMS

    page = _get(voila_app)
    positions = [page.index(f'href="/voila/render/{d.notebook}"') for d in app.dashboards()]
    assert positions == sorted(positions) and len(positions) == len(app.DASHBOARDS)
    text = html.unescape(page)
    for d in app.dashboards():
        assert d.title in text and d.description in text
    assert all(term in text and definition in text for term, definition in TERMS.items())
    assert "https://" not in page  # nothing fetched from elsewhere
    listing = json.loads(_get(voila_app + "voila/api/contents/"))  # Voila's own API still
    assert {p.name for p in notebooks_dir().glob("*.ipynb")} <= {
        item["name"] for item in listing["content"]}


def test_dashboards_use_the_template_without_a_cdn(voila_app):
    page = _get(app.dashboard_url(voila_app, NOTEBOOK))
    assert "fontawesome" not in page  # the lab template's CDN stylesheets are gone
    assert "jupyterlab-jupytext" not in _served_extensions(page)


def test_a_dashboard_loads_plotly_js_once_from_the_template(voila_app):
    """One plotly.js per page: the template's cartesian bundle (1.5 MB), the version
    plotly.py writes for; jupyterlab-plotly's copy is not loaded and no output inlines
    another (plotly.js's header comment, "plotly.js v", would be in the page)."""
    page = _get(app.dashboard_url(voila_app, NOTEBOOK))
    assert "jupyterlab-plotly" not in _served_extensions(page)
    assert "plotly.js v" not in page and "plotly.js (" not in page
    tags = re.findall(r'<script id="percpu-plotly" async src="([^"]+)"', page)
    assert len(tags) == 1 and "plotly-cartesian.min.js" in tags[0]
    bundle = _get(voila_app.rstrip("/") + html.unescape(tags[0]))
    assert f"plotly.js (cartesian - minified) v{plotlyjs.plotly_py_version()}" in bundle[:300]
    assert bundle == plotlyjs.CARTESIAN.read_text(encoding="utf-8")
    assert page.count("Plotly.newPlot") >= 1  # the static figures draw with it


def test_a_dashboard_s_html_and_first_figures_are_in_the_page_itself(voila_app):
    """The template writes HTML outputs (findings, tables, static figures) into the page,
    and each explorer's first figure beside its widget; the widget itself goes to the
    front end without that HTML, so nothing is drawn twice for good."""
    page = _get(app.dashboard_url(voila_app, NOTEBOOK))
    in_page = re.findall(r'data-mime-type="text/html">(.*?)</div>\s*</div>', page, re.S)
    assert any("percpu-page-figure" in h for h in in_page)  # a static figure
    firsts = re.findall(
        r'<div class="percpu-first-draw" data-percpu-first="(percpu-first-[0-9a-f-]+)">', page)
    assert len(firsts) == 1 == classload.explorers_in(page)  # 01 has one explorer
    outputs = [json.loads(html.unescape(s)) for s in re.findall(
        r'<script type="application/vnd.voila.cell-output\+json">\s*(.*?)\s*</script>', page, re.S)]
    views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(views) == 1 and "text/html" not in views[0]["data"]
    # no HTML output is left for the front end to render a second time
    assert not [o for o in outputs if "text/html" in o.get("data", {})]


def test_dashboard_has_no_code(voila_app):
    page = _get(app.dashboard_url(voila_app, NOTEBOOK))
    assert "from percpu_explorer.widgets import LayoutExplorer" not in page
    assert "explorer = LayoutExplorer(local_percpu=True)" not in page  # outputs only
    assert "application/vnd.jupyter.widget-view+json" in page


def _served_extensions(page):
    config = json.loads(re.search(
        r'<script id="jupyter-config-data" type="application/json">\s*(\{.*?\})\s*</script>',
        page, re.S).group(1))
    return {e["name"]: e for e in config["federated_extensions"]}


def _shipped_package_json(dist_name, ext_name):
    """The labextension package.json that the installed Python package ships."""
    dist = metadata.distribution(dist_name)
    wanted = f"share/jupyter/labextensions/{ext_name}/package.json"
    for f in dist.files or ():
        if str(f).replace("\\", "/").endswith(wanted):
            return json.loads(Path(dist.locate_file(f)).read_text())
    raise AssertionError(f"{dist_name} ships no {wanted}")


@pytest.mark.parametrize(("dist_name", "ext_name"), [
    ("jupyterlab_widgets", "@jupyter-widgets/jupyterlab-manager"),
    ("anywidget", "anywidget"),
])
def test_served_widget_frontends_match_the_installed_packages(voila_app, dist_name, ext_name):
    """The classic Voila failure ("No version of module @jupyter-widgets/controls is
    registered") is a front end from another install than the kernel's packages."""
    page = _get(app.dashboard_url(voila_app, NOTEBOOK))
    served = _served_extensions(page)
    assert ext_name in served, f"Voila does not load {ext_name}: {sorted(served)}"
    base = f"{voila_app}voila/labextensions/{ext_name}/"
    served_pkg = json.loads(_get(base + "package.json"))
    shipped = _shipped_package_json(dist_name, ext_name)
    assert served_pkg["version"] == shipped["version"]
    _get(base + served[ext_name]["load"])  # the remote entry itself is served
    if dist_name == "anywidget":
        assert served_pkg["version"] == metadata.version("anywidget")


def test_kernel_widget_versions_are_the_ones_the_frontend_provides(voila_app):
    """Every model the dashboard's kernel made names a module version the served front
    end registers: controls/base 2.x from jupyterlab_widgets 3, anywidget's own version."""
    session = app.Session(voila_app, NOTEBOOK)
    app.run_async(_open_and_close(session))
    modules = {(s["state"]["_model_module"], s["state"]["_model_module_version"])
               for s in session.states.values()}
    manager = _shipped_package_json("jupyterlab_widgets", "@jupyter-widgets/jupyterlab-manager")
    controls_range = manager["dependencies"]["@jupyter-widgets/controls"]
    assert int(re.search(r"\d+", controls_range).group()) == 5  # controls 5.x = protocol 2.0
    assert metadata.version("ipywidgets").startswith("8.")
    for module, version in modules:
        if module.startswith("@jupyter-widgets/"):
            assert version.startswith("2."), (module, version)
        elif module == "anywidget":
            wanted = version.lstrip("~^").split(".")[:2]  # e.g. ~0.11.*
            assert metadata.version("anywidget").split(".")[:2] == wanted, version
        else:
            raise AssertionError(f"unexpected widget module {module} {version}")


async def _open_and_close(session):
    try:
        await session.open(timeout=90)
    finally:
        session.close()


async def _try_execute(session, marker):
    try:
        await session.open(timeout=90)
        refused = await session.execute(
            f"open({str(marker)!r}, 'w').write('ran')", wait=5)
        info = await session.kernel_info()
        return refused, info
    finally:
        session.close()


def test_execute_requests_are_refused(voila_app, tmp_path):
    marker = tmp_path / "executed"
    refused, info = app.run_async(_try_execute(app.Session(voila_app, NOTEBOOK), marker))
    assert refused is None  # no execute_reply, no output: the server dropped the request
    assert info["msg_type"] == "kernel_info_reply"  # while the kernel answers what is allowed
    time.sleep(0.5)
    assert not marker.exists()


def test_small_load_run_every_session_updates_and_server_survives_drops():
    """3 visitors, one leaving mid-update: correctness only (the timings: make load)."""
    report = app.load_test(sessions=3, drop=1, time_limit=120)
    assert report["errors"] == []
    assert report["sessions_updated"] == report["expected_updated"] == 2
    assert report["updates"] == 2 * len(app.CHANGES)
    assert report["server_alive_after_drops"]


def test_legacy_binary_messages_are_read_as_the_legacy_protocol():
    """A figure with binary buffers (a heatmap's numpy arrays) reaches a client of the
    legacy websocket protocol as jupyter_server serializes it: a 4-byte big-endian part
    count. Voila reads its first 8 bytes as a v1 part count (here about 10**17); ours reads
    the message type."""
    from jupyter_server.services.kernels.connection.base import serialize_binary_message

    from percpu_explorer.ui import voila_server

    msg = {"header": {"msg_type": "comm_msg", "msg_id": "1"}, "parent_header": {},
           "metadata": {}, "content": {"data": {}}, "channel": "iopub",
           "buffers": [b"\0" * 64, b"\1" * 8]}
    raw = serialize_binary_message(msg)
    assert int.from_bytes(raw[:8], "little") > 10**15  # what Voila's v1 reader would take
    assert voila_server.legacy_message_type(raw) == "comm_msg"
    assert voila_server.legacy_message_type(
        serialize_binary_message({**msg, "header": {"msg_type": "execute_input"}})
    ) == "execute_input"
    assert voila_server.legacy_message_type(b"\0\0\0\7garbage") is None


async def _allocator_change(session: app.Session) -> float:
    try:
        await session.open(timeout=120)
        return await session.change("page size", {"index": 1}, timeout=60)
    finally:
        session.close()


def test_a_legacy_client_gets_the_allocator_figure_and_the_server_stays_small(voila_app):
    """The allocator dashboard sends its heatmap with binary buffers; a websocket client
    of the legacy protocol (the load test's) gets its widgets and a redraw, and the
    server's memory stays bounded (it grew by about 27 MB/s before)."""
    import psutil

    server = next(p for p in psutil.process_iter(["cmdline"])
                  if "percpu_explorer.ui.voila_server" in " ".join(p.info["cmdline"] or [])
                  and voila_app.split(":")[-1].rstrip("/") in " ".join(p.info["cmdline"]))
    seconds = app.run_async(_allocator_change(app.Session(voila_app,
                                                          "03_percpu_allocator.ipynb")))
    assert seconds < 60
    time.sleep(2)
    assert server.memory_info().rss < 1 << 30


async def _open_only(session: app.Session) -> dict:
    try:
        await session.open(timeout=120)
        return session.states
    finally:
        session.close()


def test_a_dashboard_without_widgets_opens_for_the_load_clients(voila_app):
    """05 (the checklist) has tables and no widgets, so its kernel has no widget manager
    and closes the load client's control comm: that counts as opened with no states (the
    class load's visitors of 05 used to wait for states until their 300 s ran out)."""
    states = app.run_async(_open_only(app.Session(voila_app, "05_reviewer_checklist.ipynb")))
    assert states == {}
