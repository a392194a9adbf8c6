# One-command entry points. Everything installs from this repo's own files:
#   .venv/          the four packages editable, plus test and lint tools
#   .meltano-venv/  Meltano itself (requirements-meltano.txt), apart from singer-sdk's pins
#   .meltano/       the Meltano plugins of meltano.yml (`meltano install`)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PACKAGE_FILES := requirements-dev.txt precoro-client/pyproject.toml precoro-sandbox/pyproject.toml \
	tap-precoro/pyproject.toml target-precoro/pyproject.toml
MELTANO_VENV := .meltano-venv
MELTANO := $(MELTANO_VENV)/bin/meltano
MELTANO_STAMP := $(MELTANO_VENV)/.installed
PLUGINS_STAMP := .meltano/.plugins-installed
PLUGIN_FILES := meltano.yml precoro-client/pyproject.toml tap-precoro/pyproject.toml \
	target-precoro/pyproject.toml
# Debian's Chromium + chromedriver for tests/browser/; stamped only once both are there,
# so a machine where they cannot be installed (not root) tries again on the next run.
BROWSER_STAMP := $(VENV)/.browser-installed

.PHONY: install test lint demo bench clean readme browser

install: $(STAMP) $(PLUGINS_STAMP)

$(STAMP): $(PACKAGE_FILES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

$(MELTANO_STAMP): requirements-meltano.txt
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MELTANO_VENV)/bin/python -m pip install --quiet -r requirements-meltano.txt
	touch $(MELTANO_STAMP)

$(PLUGINS_STAMP): $(MELTANO_STAMP) $(PLUGIN_FILES)
	@echo "meltano install: the plugins of meltano.yml into .meltano/"
	$(MELTANO) --log-level=warning install
	touch $(PLUGINS_STAMP)

browser: $(BROWSER_STAMP)

$(BROWSER_STAMP): scripts/install_browser.sh | $(STAMP)
	bash scripts/install_browser.sh
	if command -v chromedriver >/dev/null && { command -v chromium || command -v chromium-browser \
		|| command -v google-chrome; } >/dev/null; then touch $@; fi

test: $(STAMP) $(PLUGINS_STAMP) $(BROWSER_STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP) $(PLUGINS_STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano .pytest_cache .mypy_cache .ruff_cache

readme: $(STAMP)
	$(BIN)/python scripts/readme_settings.py
	$(BIN)/python scripts/meltano_settings.py
