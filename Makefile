# The two set-up commands of the README: `make run` and `make test`.
# Both create .venv on first use and (re)install when pyproject.toml changes.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= ./inferwatch-data
HOST ?= 127.0.0.1
PORT ?= 8420

# The end-to-end tests again with every server on the ClickHouse backend (chdb, the engine
# in-process), for what the store-level parity tests (tests/unit/test_*parity.py, which ask both
# stores the same questions) cannot show: a smoke run, ingest over HTTP, durability under SIGKILL,
# restart, and the real clients (SDK, Roboflow's inference package, its reports, the proxy). Tests
# marked `any_store` show what happens before or apart from the store (a client's retries, the
# proxy's pass-through, the disk floor): they run once.
# Longest first (as measured with --durations): xdist hands files out in this order, a whole file
# to a worker, so the long ones start at once and the short ones even out the end.
E2E := tests/e2e
CHDB_TESTS := $(addprefix $(E2E)/test_,$(addsuffix .py,sdk durability disk restart proxy real_inference \
	roboflow_workflow_blocks)) $(E2E)/test_roboflow_sdk.py::test_every_sdk_method \
	$(addprefix $(E2E)/test_,$(addsuffix .py,pingback smoke ingest))

.PHONY: run test client-deps lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.stamp-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.stamp-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test,chdb]'
	touch $@

# The reporting part of Roboflow's `inference` package, for the tests that drive it (docs/roboflow.md):
# pinned, without dependency resolution (the full package pulls torch), beside the venv.
CLIENT := $(VENV)/roboflow-inference
$(CLIENT)/.stamp: tests/clients/requirements-inference.txt | $(BIN)/python
	rm -rf $(CLIENT)
	$(BIN)/pip install -q --no-deps --target $(CLIENT) -r tests/clients/requirements-inference.txt
	touch $@

# Roboflow's `roboflow-slim` SDK and CLI, for the Vision Events tests (docs/vision-events.md):
# pinned, without dependency resolution, beside the venv.
RF_SDK := $(VENV)/roboflow-slim
$(RF_SDK)/.stamp: tests/clients/requirements-roboflow.txt | $(BIN)/python
	rm -rf $(RF_SDK)
	$(BIN)/pip install -q --no-deps --target $(RF_SDK) -r tests/clients/requirements-roboflow.txt
	touch $@

client-deps: $(CLIENT)/.stamp $(RF_SDK)/.stamp

run: $(VENV)/.stamp-run
	$(BIN)/inferwatch serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

# The dashboard's browser tests drive Debian's Chromium through Playwright (never a browser
# download of Playwright's own). Installed once, as root (or through sudo).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium'
	test -x $@

# The Prometheus tests scrape inferwatch with Debian's Prometheus server, on loopback only.
PROMETHEUS := /usr/bin/prometheus
$(PROMETHEUS):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends prometheus'
	test -x $@

# The durability-point test traces the server's fdatasync calls with Debian's strace.
STRACE := /usr/bin/strace
$(STRACE):
	$$( [ "$$(id -u)" = 0 ] || echo sudo ) sh -c 'apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q strace'
	test -x $@

lint: $(VENV)/.stamp-test
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# A pytest-xdist worker per core and one more, each file's tests on one worker (a module's
# fixtures, such as a server of its own, are made once; its tests may build on each other): much
# of a run is waiting on server processes, clients and Chromium, time another worker fills (on 2
# cores, with the chdb pass beside, 3 workers took 470 and 540 s where 2 took 549 and 581,
# alternating). Files are handed out in the order tests/conftest.py collects them (those that
# start processes first, then the long in-process ones), not by how many tests they hold: the
# slowest files hold few.
PYTEST := $(BIN)/pytest -q -n $$(( $$(nproc) + 1 )) --dist loadfile --no-loadscope-reorder

# The chdb pass runs beside the DuckDB pass, on a worker of its own: the DuckDB pass keeps about
# 1.4 of the 2 cores busy, waiting the rest of its time on processes, and the chdb pass fills that.
# Its report is printed after the DuckDB pass's; make fails if either pass failed.
test: $(VENV)/.stamp-test $(CLIENT)/.stamp $(RF_SDK)/.stamp $(CHROMIUM) $(PROMETHEUS) $(STRACE) lint
	@log=$$(mktemp); \
	echo "$(PYTEST) --store=chdb -n 1 -m 'not any_store' ... > $$log &"; \
	$(PYTEST) --store=chdb -n 1 -m 'not any_store' $(CHDB_TESTS) > $$log 2>&1 & chdb=$$!; \
	echo "$(PYTEST)"; $(PYTEST); duckdb=$$?; \
	wait $$chdb; chdb=$$?; \
	echo "--- the chdb pass:"; cat $$log; rm -f $$log; \
	exit $$(( duckdb ? duckdb : chdb ))

bench: $(VENV)/.stamp-test
	$(BIN)/python bench/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
