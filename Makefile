# Two commands do everything on a fresh machine with Python >= 3.11 and make:
#   make run   - create .venv, install the explorer, start JupyterLab on notebooks/
#   make test  - create/update .venv, install the test extras, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8888
# JupyterLab refuses to start as root unless told; containers and CI machines often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: run test lint bench clean venv capture capture-deps capture-ptdump capture-all app load chromium fuzz census census-deps hub-deps

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
	@touch $@ $(VENV)/.installed-lab $(VENV)/.installed-app

venv: $(VENV)/.installed-lab

run: $(VENV)/.installed-lab
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=notebooks --port=$(PORT) $(ROOT_FLAG)

# tests/fuzz runs its quick profile here (FUZZ_PROFILE=quick: a fixed set, well under a minute).
test: $(VENV)/.installed-test chromium hub-deps
	$(PY) -m ruff check pkg tests notebooks deploy
	FUZZ_PROFILE=quick $(PY) -m pytest --nbmake tests notebooks --benchmark-min-rounds=3 --benchmark-max-time=0.05 --benchmark-warmup=off --output=test-results

# Every subcommand and file reader fuzzed at length (issue 13): random cases each run, each
# in a child process under FUZZ_MEMORY_MB of address space and FUZZ_CASE_SECONDS; the
# report at the end counts the cases. FUZZ_EXAMPLES per test (default 600: about 20 minutes).
FUZZ_EXAMPLES    ?= 600
FUZZ_MEMORY_MB   ?= 3072
FUZZ_CASE_SECONDS ?= 60
fuzz: $(VENV)/.installed-test
	FUZZ_PROFILE=long FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_MEMORY_MB=$(FUZZ_MEMORY_MB) \
	  FUZZ_CASE_SECONDS=$(FUZZ_CASE_SECONDS) $(PY) -m pytest tests/fuzz -p no:cacheprovider

# The classroom app (issue 8): Voila dashboards of notebooks/ on HOST:APP_PORT (loopback
# unless told: make app HOST=0.0.0.0). Ctrl-C (or SIGTERM) stops it and its kernels.
HOST     ?= 127.0.0.1
APP_PORT ?= 8866
$(VENV)/.installed-app: pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e ".[app]"
	@touch $@ $(VENV)/.installed-lab

app: $(VENV)/.installed-app
	$(VENV)/bin/percpu-explorer app --host $(HOST) --port $(APP_PORT)

# Load test on loopback: SESSIONS concurrent visitors against one app (a few minutes).
SESSIONS ?= 30
load: $(VENV)/.installed-test chromium
	$(VENV)/bin/percpu-explorer app --load-test --sessions $(SESSIONS)
	timeout 1800 $(PY) -m percpu_explorer.ui.classload --pool-size 5 --browsers 6
	PERCPU_CLASS_LOAD=1 timeout 1800 $(PY) -m pytest -s -p no:cacheprovider tests/browser/test_class_load.py

# JupyterHub's proxy for tests/deploy (a local hub serving the dashboards): the npm package
# configurable-http-proxy, pinned, installed into .hub/ of this checkout (never globally).
# Without node and npm the test skips and says why.
CHP_VERSION ?= 4.6.3
HUB_DIR     := .hub
$(HUB_DIR)/.installed-chp-$(CHP_VERSION):
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  npm install --prefix $(HUB_DIR) --no-audit --no-fund --loglevel=error \
	    configurable-http-proxy@$(CHP_VERSION) && touch $@; \
	else echo "node/npm are missing: the JupyterHub test (tests/deploy) will skip"; fi

hub-deps: $(HUB_DIR)/.installed-chp-$(CHP_VERSION)

# Browser tests drive Debian's Chromium; nothing downloads a browser of its own.
chromium:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "Chromium is missing: installing Debian's chromium package for the browser tests"; \
	  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "Could not install chromium: the browser tests will skip"; \
	else echo "Chromium is missing and cannot be installed here (needs root and apt-get): the browser tests will skip"; fi

lint: $(VENV)/.installed-test
	$(PY) -m ruff check pkg tests notebooks deploy

# Full benchmark runs (make test runs them in a quick mode); PERCPU_BENCH_FULL: the browser
# redraw times with 30 rounds per explorer, in JupyterLab and in Voila.
bench: $(VENV)/.installed-test chromium
	PERCPU_BENCH_FULL=1 $(PY) -m pytest tests/benchmarks --benchmark-only

# Real-kernel captures (issue 5): boot Debian's arm64 kernel under QEMU and save bundles
# (root: adds the arm64 dpkg architecture, installs qemu-system-arm). capture-ptdump first
# rebuilds that kernel with CONFIG_PTDUMP_DEBUGFS + CONFIG_PERCPU_STATS (~40 min, niced).
# Bundles go to /tmp/capture-work/bundles: the tests hold real values of the shipped ones,
# so refresh data/captures/ only on purpose (make capture CAPTURES=data/captures).
CAPTURES ?= /tmp/capture-work/bundles
KVER     ?= 6.12.117
capture-deps:
	@dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
	apt-get update -q
	@command -v qemu-system-aarch64 >/dev/null || apt-get install -y -q qemu-system-arm

capture: $(VENV)/.installed-lab capture-deps
	$(VENV)/bin/percpu-explorer capture --qemu --cpu max --smp 4 \
	  --out $(CAPTURES)/debian-$(KVER)-max-smp4
	$(VENV)/bin/percpu-explorer capture --qemu --cpu cortex-a72 --smp 8 --no-kaslr \
	  --out $(CAPTURES)/debian-$(KVER)-a72-smp8-nokaslr
	$(VENV)/bin/percpu-explorer capture --qemu --cpu max --smp 4 --workers 4 \
	  --out $(CAPTURES)/debian-$(KVER)-max-smp4-4shells
	$(VENV)/bin/percpu-explorer compare $(CAPTURES)/debian-$(KVER)-max-smp4
	$(VENV)/bin/percpu-explorer compare $(CAPTURES)/debian-$(KVER)-a72-smp8-nokaslr
	$(VENV)/bin/percpu-explorer compare $(CAPTURES)/debian-$(KVER)-max-smp4-4shells

capture-ptdump: $(VENV)/.installed-lab capture-deps
	@command -v aarch64-linux-gnu-gcc >/dev/null || \
	  apt-get install -y -q gcc-aarch64-linux-gnu flex bison bc libssl-dev libelf-dev
	$(VENV)/bin/percpu-explorer capture --qemu --rebuild --cpu cortex-a72 --smp 4 \
	  --out $(CAPTURES)/debian-$(KVER)-ptdump-a72-smp4
	$(VENV)/bin/percpu-explorer compare $(CAPTURES)/debian-$(KVER)-ptdump-a72-smp4

# Every bundle from nothing (issue 16): Debian's kernel as shipped (capture), rebuilt with
# ptdump (capture-ptdump), and linux-source-6.12 built per VARIANT (PAGESIZE-VABITS, with
# -patched for RFC patch 02/11 of data/patches/) from the package's config trimmed by
# captures/kbuild.py (no modules, DRM, sound, networking, SoC platforms, debug info; each
# in its own O= folder under $(WORK)/build, niced), booted with -cpu CPU. Prints how long
# each step took (the capture log adds the build and boot times; the bundle's meta keeps
# them). A second CPU for the same variant boots the kernel built already (-cpu cortex-a72:
# no LPA2/LVA, so a 52-bit kernel runs with 48 bits). 4k-52-patched is Debian's own 4K/52
# with the patch: the model calls that layout broken, and its boots fail (5 minutes at most
# each; --keep-failed-boot --log-exceptions: the bundle keeps the console, QEMU's exception
# log and CPU 0's registers and says how; compare sets the model's problem list beside it).
# It boots twice per CPU: with KASLR (the image offset wraps and the kernel faults before
# its console) and with nokaslr (vmalloc fails and the kernel panics). Built variants are
# named after the linux-source-6.12 they are built from (the .deb in $(WORK), else the
# version apt would download), Debian's own kernel after KVER.
WORK      ?= /tmp/capture-work
# The shipped bundles (64k-42: two page-table levels, PMD and PUD folded).
VARIANTS  ?= 16k-47:max 4k-48-patched:max 16k-47-patched:max 64k-52:max 64k-42:max \
             64k-52-patched:max 64k-52-patched:cortex-a72
capture-all: $(VENV)/.installed-lab capture-deps
	@command -v aarch64-linux-gnu-gcc >/dev/null && command -v ccache >/dev/null || \
	  apt-get install -y -q gcc-aarch64-linux-gnu flex bison bc libssl-dev libelf-dev ccache
	@s=$$(date +%s); $(MAKE) --no-print-directory capture CAPTURES=$(CAPTURES); \
	  echo "== capture (Debian's kernel, 3 boots): $$(( $$(date +%s) - s ))s"
	@s=$$(date +%s); $(MAKE) --no-print-directory capture-ptdump CAPTURES=$(CAPTURES); \
	  echo "== capture-ptdump (full Debian rebuild, 2 boots): $$(( $$(date +%s) - s ))s"
	@srcver=$$(ls $(WORK)/linux-source-6.12_*_all.deb 2>/dev/null | tail -n 1 | \
	  sed -E 's/.*_([0-9.]+)-[^_]*_all\.deb$$/\1/'); \
	[ -n "$$srcver" ] || srcver=$$(apt-cache policy linux-source-6.12 | \
	  awk '/Candidate:/ {print $$2}' | sed 's/-.*//'); \
	echo "== built variants are named after linux-source-6.12 $$srcver"; \
	for v in $(VARIANTS) 4k-52-patched:max 4k-52-patched:cortex-a72; do \
	  name=$${v%%:*}; cpu=$${v##*:}; out=$(CAPTURES)/debian-$$srcver-$$name-$$cpu-smp4; \
	  t=1500; k=; [ $$name = 4k-52-patched ] && { t=300; k="--keep-failed-boot --log-exceptions"; }; \
	  s=$$(date +%s); \
	  $(VENV)/bin/percpu-explorer capture --qemu --build $$name --cpu $$cpu --smp 4 \
	    --timeout $$t $$k --work $(WORK) --out $$out && $(VENV)/bin/percpu-explorer compare $$out; \
	  echo "== $$name on -cpu $$cpu (build + boot + compare, exit $$?): $$(( $$(date +%s) - s ))s"; \
	  if [ $$name = 4k-52-patched ]; then s=$$(date +%s); \
	    $(VENV)/bin/percpu-explorer capture --qemu --build $$name --cpu $$cpu --smp 4 \
	      --no-kaslr --timeout $$t $$k --work $(WORK) --out $$out-nokaslr && \
	      $(VENV)/bin/percpu-explorer compare $$out-nokaslr; \
	    echo "== $$name on -cpu $$cpu, nokaslr (boot + compare, exit $$?): $$(( $$(date +%s) - s ))s"; \
	  fi; \
	done

# The census of this_cpu sites: Debian's arm64 kernel under QEMU with our TCG
# plugin (compiled against qemu-plugin.h from Debian's qemu source package), real
# workloads, exact counts per site and phase. Each run prints how long each step took.
# Bundles go to /tmp/census-work/bundles; the tests read the shipped ones in data/census/
# (refresh on purpose: make census CENSUS=data/census).
CENSUS      ?= /tmp/census-work/bundles
CENSUS_WORK ?= /tmp/census-work
census-deps: capture-deps
	@{ command -v gcc >/dev/null && command -v pkg-config >/dev/null && \
	  pkg-config --exists glib-2.0; } || apt-get install -y -q gcc pkg-config libglib2.0-dev

census: $(VENV)/.installed-lab census-deps
	$(VENV)/bin/percpu-explorer census --qemu --cpu max --work $(CENSUS_WORK) \
	  --out $(CENSUS)/debian-$(KVER)-max-smp2
	$(VENV)/bin/percpu-explorer census --qemu --cpu cortex-a57 --work $(CENSUS_WORK) \
	  --out $(CENSUS)/debian-$(KVER)-cortex-a57-smp2
	$(VENV)/bin/percpu-explorer census --qemu --cpu max --vhe --work $(CENSUS_WORK) \
	  --out $(CENSUS)/debian-$(KVER)-max-vhe-smp2
	$(VENV)/bin/percpu-explorer cost --census $(CENSUS)/debian-$(KVER)-max-smp2

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .benchmarks
