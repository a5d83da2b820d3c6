# `make demo` and `make test` work on a fresh clone: each creates .venv and installs what it needs.
VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU wheel of torch; override (e.g. TORCH=torch) to take another build.
TORCH ?= torch==2.13.0

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" -e ".[test]"
	touch $@

.PHONY: demo test bench gpu-check
demo: $(VENV)/.installed
	$(PY) -m gpuaug demo

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(PY) -m pytest -q benchmarks --benchmark-enable

# On a lent GPU (no network, nothing installed from here): see benchmarks/README.md "GPU check".
# ARGS="--dry-run" runs the same stages on the CPU.
gpu-check:
	bash benchmarks/gpu_check.sh $(ARGS)
