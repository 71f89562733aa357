# Two commands on a fresh machine:  `make run` (the pipeline on local folders)  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VOLUME ?= local/volume
WAREHOUSE ?= local/warehouse
# Local trigger timings (the bundle's are >= 60 s, as Databricks requires).
WATCH_ARGS ?= --wait-after-last-change 2 --min-between-triggers 5

.PHONY: setup run test test-gcs lint bench clean

# The class archive (orderlake/engine/class_archive.py) makes every later JVM start faster; it
# is rebuilt only when Java or the jars change.
setup: $(VENV)/.installed
	@$(BIN)/python -m orderlake.engine.class_archive --if-missing

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/python -m orderlake.engine.session
	touch $@

# The main job: sample client files into $(VOLUME)/source/, then the file-arrival-triggered
# pipeline. Drop more CSV files into $(VOLUME)/source/ while it runs; Ctrl-C stops it.
run: setup
	@if [ ! -d "$(WAREHOUSE)" ] && [ -z "$$(ls -A $(VOLUME)/source 2>/dev/null)" ]; then \
		$(BIN)/orderlake samples --volume $(VOLUME); fi
	$(BIN)/orderlake watch --create --volume $(VOLUME) --warehouse $(WAREHOUSE) $(WATCH_ARGS) $(ARGS)
	$(BIN)/orderlake show --volume $(VOLUME) --warehouse $(WAREHOUSE)

# The real Databricks CLI (built once from source with Go, cached) validates the bundle in the
# tests; REQUIRE_DATABRICKS_CLI=0 lets those tests skip on a machine without Go.
# Headless Chromium (Debian's package) renders the HTML report in the tests; REQUIRE_BROWSER=0
# lets those tests skip where it cannot be installed.
# The GCS emulator (fake-gcs-server, built once with Go, cached) and the GCS connector jar
# (Maven Central, cached) run tests/storage: the storage layer and the engine on gs://, locally
# and on a one-machine Spark cluster. ORDERLAKE_REQUIRE_GCS=1 makes a missing part a failure,
# not a skip; REQUIRE_GCS=0 lets them skip on a machine without Go. tests/storage runs in a
# pytest process of its own: its Spark session carries the connector (one SparkContext per
# process), and the rest of the suite must not start one without it first.
# scripts/run-tests.sh runs the two pytest processes side by side (CI time on 2 cores).
REQUIRE_DATABRICKS_CLI ?= 1
REQUIRE_BROWSER ?= 1
REQUIRE_GCS ?= 1
test: setup
	bash scripts/install-databricks-cli.sh >/dev/null || [ "$(REQUIRE_DATABRICKS_CLI)" = 0 ]
	bash scripts/install-chromium.sh >/dev/null 2>&1 || [ "$(REQUIRE_BROWSER)" = 0 ]
	bash scripts/install-fake-gcs-server.sh >/dev/null || [ "$(REQUIRE_GCS)" = 0 ]
	$(BIN)/python -m orderlake.storage.connectors >/dev/null || [ "$(REQUIRE_GCS)" = 0 ]
	$(BIN)/ruff check .
	ORDERLAKE_REQUIRE_DATABRICKS_CLI=$(REQUIRE_DATABRICKS_CLI) \
	ORDERLAKE_REQUIRE_BROWSER=$(REQUIRE_BROWSER) REQUIRE_GCS=$(REQUIRE_GCS) BIN=$(BIN) \
	bash scripts/run-tests.sh $(PYTEST_ARGS)

# Only the storage layer and the engine on gs:// and on a cluster (docs/gcs-notes.md).
test-gcs: setup
	bash scripts/install-fake-gcs-server.sh >/dev/null
	$(BIN)/python -m orderlake.storage.connectors >/dev/null
	$(BIN)/ruff check .
	ORDERLAKE_REQUIRE_GCS=1 $(BIN)/pytest tests/storage $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf local .pytest_cache
