"""Voila's configuration for `percpu-explorer app` (`ui.app.voila_command` points Voila's
config_file_paths here): the landing page's catalogue of the notebooks folder the app
serves, and the JupyterLab extensions the dashboards leave out."""

import os
from pathlib import Path

from percpu_explorer.ui import app

c = get_config()  # noqa: F821 - traitlets defines get_config() for a config file
folder = os.environ.get(app.NOTEBOOKS_ENV)
for name, value in app.voila_configuration(Path(folder) if folder else None).items():
    setattr(c.VoilaConfiguration, name, value)
