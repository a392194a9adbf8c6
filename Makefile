# One-command entry points. Everything installs from this repo's own files:
#   .venv/          the four packages editable, plus test and lint tools
#                   (requirements-dev.txt, at the pins of requirements-lock.txt)
#   .meltano-venv/  Meltano itself (requirements-meltano.txt at requirements-meltano-lock.txt),
#                   apart from singer-sdk's pins
#   .meltano/       the Meltano plugins of meltano.yml (`meltano install`)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements-lock.txt
MELTANO_LOCK := requirements-meltano-lock.txt
PACKAGE_FILES := requirements-dev.txt $(LOCK) precoro-client/pyproject.toml precoro-sandbox/pyproject.toml \
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

.PHONY: install test lint lock demo bench clean readme browser

install: $(STAMP) $(PLUGINS_STAMP)

$(STAMP): $(PACKAGE_FILES)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt -c $(LOCK)
	touch $(STAMP)

$(MELTANO_STAMP): requirements-meltano.txt $(MELTANO_LOCK)
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MELTANO_VENV)/bin/python -m pip install --quiet -r requirements-meltano.txt -c $(MELTANO_LOCK)
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

# Coverage starts before pytest (not pytest-cov, which starts after the sandbox's pytest
# plugin has imported precoro_client); the summary is printed whatever the tests did.
test: $(STAMP) $(PLUGINS_STAMP) $(BROWSER_STAMP)
	$(BIN)/python -m coverage run -m pytest; status=$$?; \
		$(BIN)/python -m coverage report --skip-covered || true; exit $$status

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

demo: $(STAMP) $(PLUGINS_STAMP)
	$(BIN)/python scripts/demo.py

bench: $(STAMP)
	$(BIN)/python -m benchmarks

clean:
	rm -rf $(VENV) $(MELTANO_VENV) .meltano .pytest_cache .mypy_cache .ruff_cache .coverage

# Re-resolve the pins after a dependency changes (in requirements-*.txt or a pyproject.toml),
# for every platform and both supported Pythons; the packages of this repo are not pinned.
LOCAL_PACKAGES := precoro-client precoro-sandbox tap-precoro target-precoro
UV_COMPILE = $(BIN)/uv pip compile --quiet --universal --python-version 3.11 \
	$(foreach p,$(LOCAL_PACKAGES),--no-emit-package $(p))
lock: $(STAMP)
	$(UV_COMPILE) requirements-dev.txt -o $(LOCK)
	$(UV_COMPILE) requirements-meltano.txt -o $(MELTANO_LOCK)

readme: $(STAMP)
	$(BIN)/python scripts/readme_settings.py
	$(BIN)/python scripts/meltano_settings.py
	$(BIN)/python scripts/fields_reference.py
