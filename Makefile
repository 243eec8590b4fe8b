# The two README commands: `make demo` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint bench clean console browser

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,spark,delta]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/traitsync demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

# The console's browser tests drive Debian's Chromium (never a downloaded browser build).
CHROMIUM ?= /usr/bin/chromium
browser:
	@test -x $(CHROMIUM) || { \
	  echo "Chromium is missing: installing Debian's chromium for the console's browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; fi; }
	@test -x $(CHROMIUM) || { echo "error: $(CHROMIUM) still missing; install it (apt-get install chromium)"; exit 1; }

test: lint browser
	$(BIN)/pytest -q -p no:cacheprovider

# Rebuild the web console (front-end source in console/) into src/traitsync/console/static.
console:
	cd console && npm ci --no-audit --no-fund && npm run build

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .traitsync .pytest_cache .mypy_cache .ruff_cache
