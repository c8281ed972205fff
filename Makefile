# The README's two commands: `make demo` and `make test`. Both create the venv on first use.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# torch==2.13.0 comes first: on these machines it is a local CPU wheel; any other request downloads gigabytes.
$(STAMP): pyproject.toml
	@# PostgreSQL for `sentinel stack` (and its tests): Debian's package, installed when missing (needs root).
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; }
	@# Chromium for the review page's browser test: Debian's package, installed when missing (needs root).
	command -v chromium >/dev/null || \
		{ apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
		echo "chromium could not be installed: the review page's browser test will be skipped"
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/sentinel demo

# Three workers: the stack's tests, two xdist groups queued first, each on a stack and a worker of its own
# (tests/stack/conftest.py), while the third runs the rest; then all three share what is left.
test: install
	$(VENV)/bin/pytest -n 3 --dist loadgroup --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check . && $(VENV)/bin/mypy

bench: install
	$(PY) benchmarks/detection.py
	$(PY) benchmarks/retrain.py

clean:
	rm -rf $(VENV) .sentinel .pytest_cache .mypy_cache .ruff_cache
