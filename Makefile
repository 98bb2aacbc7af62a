# Two commands do everything on a fresh machine with Python >= 3.11 and make:
#   make run   - create .venv, install the explorer, start JupyterLab on notebooks/
#   make test  - create/update .venv, install the test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8888
# JupyterLab refuses to start as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lint bench clean venv

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || \
	  { echo "percpu-explorer needs Python >= 3.11; '$(PYTHON)' is $$($(PYTHON) -V 2>&1). Run: make PYTHON=python3.11 ..."; exit 1; }
	@$(PYTHON) -m venv $(VENV) || \
	  { echo "Could not create $(VENV) with '$(PYTHON) -m venv' (on Debian/Ubuntu: apt-get install python3-venv)"; exit 1; }
	$(PY) -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changes.
$(VENV)/.installed-lab: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[lab]"
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@ $(VENV)/.installed-lab

venv: $(VENV)/.installed-lab

run: $(VENV)/.installed-lab
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --port=$(PORT) $(ROOT_FLAG)

test: $(VENV)/.installed-test
	$(PY) -m ruff check pkg tests notebooks
	$(PY) -m pytest --nbmake tests notebooks --benchmark-min-rounds=3 --benchmark-max-time=0.05 --benchmark-warmup=off

lint: $(VENV)/.installed-test
	$(PY) -m ruff check pkg tests notebooks

# Full benchmark runs (make test runs them in a quick mode).
bench: $(VENV)/.installed-test
	$(PY) -m pytest tests/benchmarks --benchmark-only

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks
