"""Each student's single-user server under JupyterHub: the classroom app's dashboards.

JupyterHub starts `jupyterhub-singleuser` (a Jupyter Server) with JUPYTER_CONFIG_PATH
pointing at this folder (deploy/jupyterhub_config.py sets it), so this file is loaded as
the server's `jupyter_server_config.py`. It gives the server's Voila extension (`/voila/`,
`/voila/render/<notebook>`) what `percpu-explorer app` gives standalone Voila: our
template and landing page, no code cells, no tracebacks; and it culls idle kernels and
shuts the server down when nobody uses it.

Option names: Jupyter Server's config reference
(https://jupyter-server.readthedocs.io/en/latest/other/full-config.html: ServerApp.root_dir,
ServerApp.shutdown_no_activity_timeout, MappingKernelManager.cull_*), Voila's
(https://voila.readthedocs.io/en/stable/customize.html: VoilaConfiguration.*; the server
extension reads it from the server's config and voila.py from the Jupyter config path).
"""

import os

from percpu_explorer.paths import notebooks_dir
from percpu_explorer.ui import app

c = get_config()  # noqa: F821 - traitlets defines get_config() for a config file

# The app's environment: our template's data folder on JUPYTER_PATH, the notebooks folder
# the landing page lists, plotly's renderer for the kernels (they inherit the server's
# environment). The app's voila.py (catalogue, extension denylist) is found on the Jupyter
# config path, which the Voila extension reads when it loads, after this file.
os.environ.update(app.voila_env())
os.environ["JUPYTER_CONFIG_PATH"] = os.pathsep.join(
    [*filter(None, os.environ.get("JUPYTER_CONFIG_PATH", "").split(os.pathsep)),
     str(app.VOILA_CONFIG)])

c.ServerApp.root_dir = str(notebooks_dir())
c.VoilaConfiguration.template = app.TEMPLATE
c.VoilaConfiguration.strip_sources = True
c.VoilaConfiguration.show_tracebacks = False

# A kernel nobody is connected to (its tab closed) goes after KERNEL_IDLE_S idle; the
# server itself exits SERVER_IDLE_S after its last kernel, and JupyterHub sees it stopped.
KERNEL_IDLE_S = 600
SERVER_IDLE_S = 1200
c.MappingKernelManager.cull_idle_timeout = KERNEL_IDLE_S
c.MappingKernelManager.cull_interval = 60
c.MappingKernelManager.cull_connected = False
c.ServerApp.shutdown_no_activity_timeout = SERVER_IDLE_S

