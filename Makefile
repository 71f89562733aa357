# Two commands on a fresh machine:  `make run` (the pipeline on local folders)  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
VOLUME ?= local/volume
WAREHOUSE ?= local/warehouse
# Local trigger timings (the bundle's are >= 60 s, as Databricks requires).
WATCH_ARGS ?= --wait-after-last-change 2 --min-between-triggers 5

.PHONY: setup run test lint bench clean

setup: $(VENV)/.installed

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
	$(BIN)/orderlake watch --volume $(VOLUME) --warehouse $(WAREHOUSE) $(WATCH_ARGS) $(ARGS)
	$(BIN)/orderlake show --volume $(VOLUME) --warehouse $(WAREHOUSE)

test: setup
	@# The CLI build is refused by the Go proxy here; its tests skip with the reason.
	bash scripts/install-databricks-cli.sh || echo "Databricks CLI not installed: CLI validate tests will skip"
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check .

clean:
	rm -rf local .pytest_cache
