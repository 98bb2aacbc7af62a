"""JupyterHub configuration: the percpu-explorer dashboards, one single-user server per student.

Every student logs in and gets a Jupyter Server of their own (`jupyterhub-singleuser`) whose
Voila extension serves the dashboards; deploy/singleuser/jupyter_server_config.py sets it up
as `percpu-explorer app` does. The first page a student sees is the landing page.

Two modes, chosen by the environment:

* Kubernetes (the default): KubeSpawner starts each student's server as a pod from the image
  repo2docker builds from this repository (environment.yml). The Zero to JupyterHub chart
  runs the hub; deploy/z2jh-values.yaml mounts this file into the hub's
  /usr/local/etc/jupyterhub/jupyterhub_config.d/, which the chart loads after its own
  configuration, so what is set here wins (deploy/z2jh-values.yaml repeats the same numbers
  for the chart's own use; the tests keep the two equal).
* PERCPU_HUB_LOCAL=1: a test on this machine, loopback only: SimpleLocalProcessSpawner (a
  process per student, no isolation) and DummyAuthenticator (any name, any password). Never
  for a real class. PERCPU_HUB_PORT (8000), PERCPU_HUB_API_PORT (8081),
  PERCPU_PROXY_API_PORT (8001) choose the ports, PERCPU_HUB_STATE the folder for the hub's
  database, cookie secret and the students' home folders (.hub/state).

Option names, from the projects' references:
  JupyterHub.*      https://jupyterhub.readthedocs.io/en/stable/reference/api/app.html
  Spawner.*, SimpleLocalProcessSpawner.*
                    https://jupyterhub.readthedocs.io/en/stable/reference/api/spawner.html
  ConfigurableHTTPProxy.*
                    https://jupyterhub.readthedocs.io/en/stable/reference/api/proxy.html
  "dummy" authenticator, "simple" spawner: the entry points jupyterhub registers
                    (jupyterhub.authenticators / jupyterhub.spawners)
  KubeSpawner.*     https://jupyterhub-kubespawner.readthedocs.io/en/latest/spawner.html
                    (mem_limit, mem_guarantee, cpu_limit, cpu_guarantee, default_url and
                    environment are the Spawner options KubeSpawner inherits and enforces
                    as the pod's resources)
  jupyterhub_config.d, hub.extraFiles
                    https://z2jh.jupyter.org/en/stable/resources/reference.html#hub-extrafiles
"""

import os
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - traitlets defines get_config() for a config file

# --- what every student gets, in both modes --------------------------------------------------
# The landing page (Voila's tree of notebooks/, drawn by the app's template).
DEFAULT_URL = "/voila/tree"
# Memory (measured, README "Under JupyterHub"): the student's server 217 MB on the landing
# page, 334 MB after rendering all six dashboards; a kernel per open dashboard, 139-244 MB;
# all six open at once 1563 MB of RSS (1165 MB counting shared pages once). The limit holds
# all six; the guarantee (what the scheduler reserves per student) the server and two.
MEM_LIMIT = "2G"
MEM_GUARANTEE = "768M"
# CPU (measured): opening a dashboard costs 6-10 s of one core (the server renders the page
# while the kernel runs the notebook), 40 s for all six; an idle page costs nothing.
# The limit lets one student use at most one core; the guarantee keeps a crowded node usable.
CPU_LIMIT = 1.0
CPU_GUARANTEE = 0.1
# Where the student's server finds deploy/singleuser/jupyter_server_config.py.
SINGLEUSER_CONFIG = "deploy/singleuser"

LOCAL = os.environ.get("PERCPU_HUB_LOCAL") == "1"

if LOCAL:
    repo = Path(__file__).resolve().parent.parent
    state = Path(os.environ.get("PERCPU_HUB_STATE") or repo / ".hub" / "state")
    state.mkdir(parents=True, exist_ok=True)
    loopback = "127.0.0.1"

    c.JupyterHub.authenticator_class = "dummy"
    c.JupyterHub.spawner_class = "simple"
    c.JupyterHub.ip = loopback
    c.JupyterHub.port = int(os.environ.get("PERCPU_HUB_PORT", "8000"))
    c.JupyterHub.hub_ip = loopback
    c.JupyterHub.hub_port = int(os.environ.get("PERCPU_HUB_API_PORT", "8081"))
    c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.ConfigurableHTTPProxy.api_url = (
        f"http://{loopback}:{int(os.environ.get('PERCPU_PROXY_API_PORT', '8001'))}")
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    # `make hub-deps` installs the proxy (an npm package) into .hub/; else it must be on PATH.
    proxy = repo / ".hub" / "node_modules" / ".bin" / "configurable-http-proxy"
    if proxy.exists():
        c.ConfigurableHTTPProxy.command = [str(proxy)]

    c.SimpleLocalProcessSpawner.home_dir_template = str(state / "home" / "{username}")
    c.Spawner.ip = loopback
    # The students' servers run in the hub's own environment.
    c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
    # Jupyter Server refuses to run as root unless told (ServerApp.allow_root).
    c.Spawner.args = ["--ServerApp.allow_root=True"] if os.geteuid() == 0 else []
    c.Spawner.default_url = DEFAULT_URL
    c.Spawner.environment = {"JUPYTER_CONFIG_PATH": str(repo / SINGLEUSER_CONFIG)}
    # Not enforced by a local process spawner (it passes them on as MEM_LIMIT, CPU_LIMIT);
    # set so that the local test runs what a class gets.
    c.Spawner.mem_limit = MEM_LIMIT
    c.Spawner.mem_guarantee = MEM_GUARANTEE
    c.Spawner.cpu_limit = CPU_LIMIT
    c.Spawner.cpu_guarantee = CPU_GUARANTEE
else:
    # repo2docker copies the repository into the image at the user's home, /home/jovyan.
    image_repo = "/home/jovyan"
    c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
    # KubeSpawner.* rather than Spawner.*: the chart sets KubeSpawner.* from its values,
    # and the more specific class would win over Spawner.*.
    c.KubeSpawner.default_url = DEFAULT_URL
    c.KubeSpawner.mem_limit = MEM_LIMIT
    c.KubeSpawner.mem_guarantee = MEM_GUARANTEE
    c.KubeSpawner.cpu_limit = CPU_LIMIT
    c.KubeSpawner.cpu_guarantee = CPU_GUARANTEE
    # Merged into what the chart sets from singleuser.extraEnv.
    c.KubeSpawner.environment.update(
        {"JUPYTER_CONFIG_PATH": f"{image_repo}/{SINGLEUSER_CONFIG}"})
