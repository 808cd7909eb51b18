# Two commands: `make run` (demo on local chains) and `make test` (the whole suite). Both set up everything.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PYTHON := $(BIN)/python
STAMP := $(VENV)/.installed
NPM_STAMP := devnet/node_modules/.installed

.PHONY: run test setup browser devnet clean bench soak

setup: $(STAMP) $(NPM_STAMP)

$(STAMP): requirements.lock pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "Python 3.11 is required ($(PY) not found)"; exit 1; }
	test -x $(PYTHON) || $(PY) -m venv $(VENV)
	$(PYTHON) -m pip install --quiet --upgrade pip
	$(PYTHON) -m pip install --quiet -r requirements.lock
	$(PYTHON) -m pip check
	touch $(STAMP)

$(NPM_STAMP): devnet/package.json devnet/package-lock.json
	@command -v npm >/dev/null 2>&1 || { echo "Node.js and npm are required for the local chains"; exit 1; }
	cd devnet && npm ci --no-audit --no-fund --loglevel=error
	touch $(NPM_STAMP)

# Debian's chromium for the browser tests (Playwright drives it; no browser download).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing: install Debian's chromium package (sudo apt-get install chromium)"; exit 1; fi; }

test: setup browser
	$(PYTHON) -m pytest $(PYTEST_ARGS)

run: setup
	$(PYTHON) manage.py migrate --noinput
	$(PYTHON) manage.py collectstatic --noinput -v0
	$(PYTHON) tools/run_procfile.py -f Procfile start

# `make run` for SOAK_MINUTES (30) with beat every 5 s: fails on any ERROR/CRITICAL line (not in the suite).
soak: setup
	$(PYTHON) tools/soak.py

# Every benchmark at its default sizes (bench/RESULTS.md says which env/flags run the big cases); each
# script's wall time (with the load average when it ended) and the total are printed at the end
# (issue #14: under 15 minutes on 2 cores) and kept in var/bench-times.txt.
bench: setup
	@start=$$(date +%s); mkdir -p var && : > var/bench-times.txt; \
	for f in bench/[a-z]*.py; do \
	  t=$$(date +%s); $(PYTHON) $$f || exit 1; \
	  echo "$$f $$(( $$(date +%s) - t )) s (load $$(cut -d' ' -f1-3 /proc/loadavg))" >> var/bench-times.txt; \
	done; cat var/bench-times.txt; \
	echo "make bench: $$(( $$(date +%s) - start )) s in all (load $$(cut -d' ' -f1-3 /proc/loadavg))" | tee -a var/bench-times.txt

clean:
	rm -rf var/celery var/devnet.json
