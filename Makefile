# The two entry points of the README. Both install everything from the project's own files first.
#   make repro  — set up, then `dvc repro` (the profile named in params.yaml, `default` as shipped)
#   make test   — set up, then unit tests + nbval on every notebook (smoke profile)
PYTHON ?= python3
# Where the face archives are: FACEFILL_DATA_DIR if set, else data/raw, else ../shared/data (offline copy).
ifeq ($(strip $(FACEFILL_DATA_DIR)),)
  ifneq ($(wildcard data/raw/*),)
    FACEFILL_DATA_DIR := $(abspath data/raw)
  else ifneq ($(wildcard ../shared/data),)
    FACEFILL_DATA_DIR := $(abspath ../shared/data)
  endif
endif
export FACEFILL_DATA_DIR

.PHONY: install repro test bench sync-notebooks lock
# the exact versions of the committed run first (requirements-lock.txt), then the project itself
# (its ranges in pyproject.toml are satisfied by the lock, so nothing is upgraded)
install:
	$(PYTHON) -m pip install -q -r requirements-lock.txt
	$(PYTHON) -m pip install -q -e ".[dev]"

repro: install
	$(PYTHON) -m dvc repro

test: install
	$(PYTHON) -m pytest -q --nbval-lax --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

bench: install
	$(PYTHON) -m facefill.bench

# regenerate the .ipynb files from their paired py:percent sources (keeps the checked outputs)
sync-notebooks:
	$(PYTHON) -m facefill.notebooks sync

# rewrite requirements-lock.txt from the current environment: its header comment, then `pip freeze`
# without facefill itself; torch's CUDA wheels (nvidia-*, cuda-*, triton) are marked Linux-only, as
# torch itself requires them
lock:
	{ sed -n '/^#/p;/^#/!q' requirements-lock.txt; \
	  $(PYTHON) -m pip freeze --exclude-editable | \
	  sed -E 's/^((nvidia-|cuda-|triton==)[^ ]*)$$/\1 ; platform_system == "Linux"/'; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt
