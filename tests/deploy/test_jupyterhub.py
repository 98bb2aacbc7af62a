"""The dashboards under JupyterHub (deploy/): the hub configuration loads in both of its modes
and sets what the README promises, the Zero to JupyterHub values use only keys the chart
documents and agree with the configuration, and a real local JupyterHub on loopback serves
the dashboards to two students, each from a server of their own.

The live test needs JupyterHub's proxy, the npm package configurable-http-proxy, which
`make hub-deps` (part of `make test`) installs into .hub/; without node and npm it skips."""

import html
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests
import yaml
from jupyter_server.serverapp import ServerApp
from jupyter_server.services.kernels.kernelmanager import MappingKernelManager
from jupyterhub.app import JupyterHub
from jupyterhub.auth import DummyAuthenticator
from jupyterhub.proxy import ConfigurableHTTPProxy
from jupyterhub.spawner import SimpleLocalProcessSpawner, Spawner
from jupyterhub.traitlets import ByteSpecification
from traitlets.config import PyFileConfigLoader
from voila.configuration import VoilaConfiguration

from percpu_explorer.paths import notebooks_dir
from percpu_explorer.ui import app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HUB_CONFIG = DEPLOY / "jupyterhub_config.py"
SINGLEUSER_DIR = DEPLOY / "singleuser"
VALUES = DEPLOY / "z2jh-values.yaml"
PROXY = ROOT / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
NOTEBOOK = "01_address_space.ipynb"
STUDENTS = ("ada", "grace")


class KubeSpawner(Spawner):
    """Stands in for kubespawner.KubeSpawner (not installed here) so that its configuration
    section applies: every option this configuration gives KubeSpawner is one it inherits
    from Spawner (KubeSpawner's reference lists them among its own)."""

    async def start(self):
        raise NotImplementedError

    async def stop(self, now=False):
        raise NotImplementedError

    async def poll(self):
        raise NotImplementedError


# The classes of every configuration section the deploy files write.
CONFIGURABLES = {cls.__name__: cls for cls in (
    JupyterHub, Spawner, SimpleLocalProcessSpawner, ConfigurableHTTPProxy, DummyAuthenticator,
    KubeSpawner, ServerApp, MappingKernelManager, VoilaConfiguration)}


def assert_options_exist(config):
    """Every option set is a configurable trait of its class (traitlets only warns)."""
    for section, options in config.items():
        assert section in CONFIGURABLES, f"unexpected configuration section {section}"
        traits = CONFIGURABLES[section].class_traits(config=True)
        unknown = sorted(set(options) - set(traits))
        assert not unknown, f"{section} has no options {unknown}"


@pytest.fixture
def hub_config(monkeypatch, tmp_path):
    """Load deploy/jupyterhub_config.py as JupyterHub does: local=True in the local test mode
    (then the JupyterHub application itself, which resolves the classes), else as the hub of
    the Kubernetes deployment reads it (with traitlets' loader: kubespawner is not installed
    here, so JupyterHub would refuse the spawner class)."""
    def load(local):
        if local:
            monkeypatch.setenv("PERCPU_HUB_LOCAL", "1")
            monkeypatch.setenv("PERCPU_HUB_STATE", str(tmp_path / "state"))
            hub = JupyterHub()
            hub.load_config_file(HUB_CONFIG.name, path=str(DEPLOY))
            return hub
        monkeypatch.delenv("PERCPU_HUB_LOCAL", raising=False)
        return PyFileConfigLoader(HUB_CONFIG.name, path=str(DEPLOY)).load_config()
    return load


def test_local_mode_runs_a_loopback_hub_with_process_spawner_and_dummy_login(hub_config):
    hub = hub_config(local=True)
    assert_options_exist(hub.config)
    assert hub.spawner_class is SimpleLocalProcessSpawner
    assert hub.authenticator_class is DummyAuthenticator
    assert hub.ip == hub.hub_ip == "127.0.0.1"
    proxy = ConfigurableHTTPProxy(config=hub.config)
    assert proxy.api_url.startswith("http://127.0.0.1:")
    spawner = SimpleLocalProcessSpawner(config=hub.config)
    assert spawner.ip == "127.0.0.1"
    assert spawner.default_url == "/voila/tree"
    assert spawner.environment == {"JUPYTER_CONFIG_PATH": str(SINGLEUSER_DIR)}
    assert spawner.cmd == [sys.executable, "-m", "jupyterhub.singleuser"]
    # Jupyter Server refuses root unless told; the flag is there exactly when we are root.
    assert ("--ServerApp.allow_root=True" in spawner.args) == (os.geteuid() == 0)
    # The state (database, cookie secret, homes) stays in the folder given.
    state = os.environ["PERCPU_HUB_STATE"]
    assert hub.db_url == f"sqlite:///{state}/jupyterhub.sqlite"
    assert spawner.home_dir_template.startswith(state)


def test_kubernetes_mode_gives_each_student_a_pod_with_limits(hub_config):
    config = hub_config(local=False)
    assert_options_exist(config)
    assert config.JupyterHub.spawner_class == "kubespawner.KubeSpawner"
    assert "authenticator_class" not in config.JupyterHub  # the chart's values choose it
    spawner = KubeSpawner(config=config)
    assert spawner.default_url == "/voila/tree"
    # JupyterHub's byte units are binary (ByteSpecification: G = 2**30, M = 2**20).
    assert spawner.mem_limit == 2 * 2**30
    assert spawner.mem_guarantee == 768 * 2**20
    assert (spawner.cpu_guarantee, spawner.cpu_limit) == (0.1, 1.0)
    # repo2docker puts the repository at the user's home, /home/jovyan.
    assert spawner.environment == {"JUPYTER_CONFIG_PATH": "/home/jovyan/deploy/singleuser"}


def test_single_user_server_serves_the_app_dashboards_and_culls(monkeypatch):
    # The file sets the server's environment (what Voila and the kernels read): keep it local.
    monkeypatch.setattr(os, "environ", dict(os.environ))
    config = PyFileConfigLoader("jupyter_server_config.py", path=str(SINGLEUSER_DIR)).load_config()
    assert_options_exist(config)
    voila = VoilaConfiguration(config=config)
    assert voila.template == app.TEMPLATE
    assert voila.strip_sources and not voila.show_tracebacks
    assert ServerApp(config=config).root_dir == str(notebooks_dir())
    # The app's voila.py (landing page catalogue) is on the config path the Voila extension reads.
    assert str(app.VOILA_CONFIG) in os.environ["JUPYTER_CONFIG_PATH"].split(os.pathsep)
    assert os.environ["JUPYTER_PATH"].split(os.pathsep)[0] == str(app.JUPYTER_DATA)
    kernels = MappingKernelManager(config=config)
    assert kernels.cull_idle_timeout > 0 and not kernels.cull_connected
    assert kernels.cull_interval <= kernels.cull_idle_timeout
    # The server outlives its last kernel by a while, then exits; the hub sees it stopped.
    assert config.ServerApp.shutdown_no_activity_timeout > kernels.cull_idle_timeout


# The keys of the jupyterhub chart 4.x this file may use, as its configuration reference
# (values.schema.yaml, https://z2jh.jupyter.org/en/stable/resources/reference.html) documents
# them; the values under hub.config are JupyterHub's own options (checked below).
Z2JH_KEYS = {
    "hub.extraFiles.*.mountPath", "hub.extraFiles.*.stringData", "hub.config",
    "hub.activeServerLimit", "hub.concurrentSpawnLimit",
    "singleuser.image.name", "singleuser.image.tag", "singleuser.image.pullPolicy",
    "singleuser.defaultUrl", "singleuser.cmd", "singleuser.extraEnv", "singleuser.startTimeout",
    "singleuser.memory.limit", "singleuser.memory.guarantee",
    "singleuser.cpu.limit", "singleuser.cpu.guarantee", "singleuser.storage.type",
    "cull.enabled", "cull.timeout", "cull.every", "cull.users", "cull.maxAge",
    "cull.concurrency", "cull.adminUsers", "cull.removeNamedServers",
}


def leaf_keys(tree, prefix=""):
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if path == "hub.config" or not isinstance(value, dict):
            yield path
        elif path == "hub.extraFiles":
            for file in value.values():
                yield from (f"hub.extraFiles.*.{k}" for k in file)
        else:
            yield from leaf_keys(value, path + ".")


def test_z2jh_values_use_documented_keys_and_agree_with_the_hub_config(hub_config):
    values = yaml.safe_load(VALUES.read_text())
    keys = set(leaf_keys(values))
    assert keys <= Z2JH_KEYS, f"keys the chart does not document: {sorted(keys - Z2JH_KEYS)}"
    hub_options = values["hub"]["config"]
    assert set(hub_options) <= {"JupyterHub", "SharedPasswordAuthenticator"}
    assert set(hub_options["JupyterHub"]) <= set(JupyterHub.class_traits(config=True))
    # jupyterhub registers the shared-password authenticator (JupyterHub >= 5.3).
    assert JupyterHub(authenticator_class=hub_options["JupyterHub"]["authenticator_class"])

    # This file is mounted where the chart loads extra hub configuration.
    (mount,) = (f["mountPath"] for f in values["hub"]["extraFiles"].values())
    assert mount.startswith("/usr/local/etc/jupyterhub/jupyterhub_config.d/")
    assert mount.endswith(".py")

    single = values["singleuser"]
    spawner = KubeSpawner(config=hub_config(local=False))
    assert single["defaultUrl"] == spawner.default_url
    to_bytes = ByteSpecification().validate
    assert to_bytes(None, single["memory"]["limit"]) == spawner.mem_limit
    assert to_bytes(None, single["memory"]["guarantee"]) == spawner.mem_guarantee
    assert (single["cpu"]["limit"], single["cpu"]["guarantee"]) == (
        spawner.cpu_limit, spawner.cpu_guarantee)
    # No home volume: it would hide the repository repo2docker put in /home/jovyan.
    assert single["storage"]["type"] == "none"
    assert values["cull"]["enabled"] and 0 < values["cull"]["every"] < values["cull"]["timeout"]


# --- a real JupyterHub on loopback -------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalHub:
    """A JupyterHub started from deploy/jupyterhub_config.py in its local mode; remembers every
    process it started (proxy, single-user servers, kernels) so that none outlives the test."""

    def __init__(self, state: Path):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PERCPU_HUB_LOCAL": "1", "PERCPU_HUB_STATE": str(state),
               "PERCPU_HUB_PORT": str(self.port), "PERCPU_HUB_API_PORT": str(free_port()),
               "PERCPU_PROXY_API_PORT": str(free_port())}
        self.log_path = state.parent / "jupyterhub.log"
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)], cwd=state.parent,
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.seen: dict[int, psutil.Process] = {}

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def track(self):
        try:
            for p in psutil.Process(self.proc.pid).children(recursive=True):
                self.seen.setdefault(p.pid, p)
        except psutil.NoSuchProcess:
            pass

    def wait_ready(self, timeout=45):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.track()
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"JupyterHub exited ({self.proc.returncode}):\n{self.log_tail()}")
            try:
                if requests.get(f"{self.base}/hub/api", timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.3)
        raise TimeoutError(f"JupyterHub not up after {timeout} s:\n{self.log_tail()}")

    def stop(self):
        """SIGTERM: the hub stops the servers it spawned (they stop their kernels) and the
        proxy; whatever is left after 15 s is killed with its process group."""
        self.track()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        _, alive = psutil.wait_procs(list(self.seen.values()), timeout=10)
        for p in alive:
            try:
                os.killpg(p.pid, signal.SIGKILL) if os.getpgid(p.pid) == p.pid else p.kill()
            except (ProcessLookupError, psutil.NoSuchProcess):
                pass
        _, alive = psutil.wait_procs(alive, timeout=5)
        return alive


@pytest.fixture(scope="module")
def local_hub(tmp_path_factory):
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{' and '.join(missing)} not found: JupyterHub's proxy "
                    "(configurable-http-proxy) is a Node.js program")
    if not PROXY.exists():
        pytest.fail(f"JupyterHub's proxy is not installed at {PROXY}: run `make hub-deps`")
    hub = LocalHub(tmp_path_factory.mktemp("hub") / "state")
    try:
        hub.wait_ready()
        yield hub
    finally:
        left = hub.stop()
        assert not left, f"processes left running: {[p.pid for p in left]}"


def log_in(base: str, name: str) -> requests.Session:
    """Log in on the hub's form as a student would (DummyAuthenticator: any password)."""
    session = requests.Session()
    form = session.get(f"{base}/hub/login", timeout=10)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', form.text)
    assert xsrf, form.text[:500]
    session.post(f"{base}/hub/login", data={"username": name, "password": "class",
                                            "_xsrf": xsrf.group(1)}, timeout=30)
    return session


def visit(base: str, name: str) -> dict:
    """Log in, wait for the student's server to open its default page (the landing page),
    then open the first dashboard."""
    session = log_in(base, name)
    landing = f"{base}/user/{name}/voila/tree"
    deadline = time.monotonic() + 45
    while True:  # the hub shows "your server is starting" until the server is up
        page = session.get(f"{base}/user/{name}/", timeout=30)
        if (page.url == landing and page.status_code == 200) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    dashboard = session.get(f"{base}/user/{name}/voila/render/{NOTEBOOK}", timeout=60)
    return {"landing": page, "dashboard": dashboard, "session": session}


def server_of(name: str) -> psutil.Process:
    """The student's single-user server: the process JupyterHub gave their name."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if "jupyterhub.singleuser" in (p.info["cmdline"] or []) and (
                    p.environ().get("JUPYTERHUB_USER") == name):
                found.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert len(found) == 1, f"{name}: {len(found)} single-user servers"
    return found[0]


def test_local_hub_serves_each_student_the_dashboard_from_their_own_server(local_hub, hub_config):
    with ThreadPoolExecutor(len(STUDENTS)) as pool:
        pages = dict(zip(STUDENTS, pool.map(lambda n: visit(local_hub.base, n), STUDENTS),
                         strict=True))
    # Each student then asks for the other's server, now that both run (before, the hub
    # answers 404: no server of that name is running yet).
    for name, got in pages.items():
        other = next(s for s in STUDENTS if s != name)
        got["foreign"] = got["session"].get(f"{local_hub.base}/user/{other}/voila/tree",
                                            timeout=30)
    local_hub.track()
    title = app.notebook_title(notebooks_dir() / NOTEBOOK)
    for name, got in pages.items():
        landing = got["landing"]
        assert landing.url == f"{local_hub.base}/user/{name}/voila/tree", local_hub.log_tail()
        # The landing page lists the six dashboards, linked inside the student's own server.
        links = re.findall(rf'href="/user/{name}/voila/render/(\d\d_\w+\.ipynb)"', landing.text)
        assert links == [d.notebook for d in app.dashboards()]
        dashboard = got["dashboard"]
        assert dashboard.status_code == 200, local_hub.log_tail()
        assert dashboard.url == f"{local_hub.base}/user/{name}/voila/render/{NOTEBOOK}"
        assert re.search(rf"<h1[^>]*>{re.escape(html.escape(title, quote=False))}",
                         dashboard.text)
        # The other student's server sends this one to the hub to log in, and the hub refuses.
        foreign = got["foreign"]
        assert foreign.status_code == 403, (foreign.status_code, foreign.url)
        assert foreign.url.startswith(f"{local_hub.base}/hub/api/oauth2/authorize")
        assert "voila/render" not in foreign.text

    guarantee = KubeSpawner(config=hub_config(local=False)).mem_guarantee
    servers = {name: server_of(name) for name in STUDENTS}
    assert len({s.pid for s in servers.values()}) == len(STUDENTS)
    for name, server in servers.items():
        kernels = server.children(recursive=True)
        assert len(kernels) == 1, f"{name}: {len(kernels)} kernels"
        # One student with one dashboard open fits in what the scheduler reserves per student.
        rss = server.memory_info().rss + kernels[0].memory_info().rss
        assert rss < guarantee, f"{name}: server and kernel {rss >> 20} MB"
