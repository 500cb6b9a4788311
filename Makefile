# One-command set-up for users and CI.
#   make demo   create .venv if missing, install torch (CPU 2.13.0 unless TORCH_SPEC says otherwise),
#               the plugin and a Qt binding, then open napari with the toy remnant and the fit dock.
#   make test   the same set-up plus the test extras and the Xvfb/GL system libraries, then ruff (lint and
#               format check), mypy on napari_sushi/core, and pytest.
# Both are idempotent: a stamp file records what is installed for the current pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
SYSTEM_PKGS := xvfb xauth libxcb-icccm4 libxcb-keysyms1 libgl1-mesa-dri libegl1 libxkbcommon-x11-0 \
	libxcb-cursor0 libxcb-image0 libxcb-render-util0 libxcb-shape0 libxcb-randr0 libxcb-xinerama0 \
	libdbus-1-3 libfontconfig1
PYTEST_ARGS ?=

.PHONY: demo test venv system-deps screenshots benchmarks clean-venv

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.torch: | $(VENV)/bin/python
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	touch $@

$(VENV)/.app: pyproject.toml $(VENV)/.torch
	$(PIP) install -q -e ".[test,apec]"
	$(PY) -c "import napari_sushi, napari, PyQt6"
	touch $@

venv: $(VENV)/.app

system-deps:
	@missing=""; for p in $(SYSTEM_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing system packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "The viewer tests need these Debian/Ubuntu packages: sudo apt-get install$$missing"; exit 1; \
	  fi; \
	fi

demo: venv
	$(VENV)/bin/napari-sushi demo

test: venv system-deps
	$(VENV)/bin/ruff check napari_sushi tests scripts benchmarks
	$(VENV)/bin/ruff format --check napari_sushi tests scripts benchmarks
	$(VENV)/bin/mypy
	$(PY) -m pytest $(PYTEST_ARGS)

screenshots: venv system-deps
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) scripts/make_screenshots.py

benchmarks: venv
	$(PY) benchmarks/run_all.py

clean-venv:
	rm -rf $(VENV)
