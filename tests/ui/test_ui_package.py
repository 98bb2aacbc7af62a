"""The views package: its modules load on first use, so the CLI and the models can
import it without plotly, ipywidgets or voila."""

import subprocess
import sys


def test_importing_the_views_package_loads_no_plotting_or_widgets():
    code = ("import sys, percpu_explorer.ui as ui\n"
            "print(sorted(m for m in ('plotly', 'ipywidgets', 'voila') if m in sys.modules))\n"
            "ui.readable\n"
            "print(sorted(m for m in ('plotly', 'ipywidgets', 'voila') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.splitlines()
    assert out == ["[]", "[]"]  # tables need pandas only


def test_every_listed_name_is_there():
    import percpu_explorer.ui as ui

    for name in ui.__all__:
        assert getattr(ui, name) is not None, name
    assert ui.readable is ui.tables.readable
    assert ui.plots.address_space_map.__module__ == "percpu_explorer.ui.plots.address_map"
