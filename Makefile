# Two commands on a fresh machine: `make run` and `make test`. Both create .venv if it is missing.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export TQDM_DISABLE := 1
# Playwright drives Debian's chromium (/usr/bin/chromium) and must never download a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1
export DEBIAN_FRONTEND := noninteractive

.PHONY: install run test test-fast bench

# --no-cache-dir: a CI machine with little disk holds the venv (about 7 GB with torch) and no second copy of the wheels.
$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir --upgrade pip
	$(PY) -m pip install -q --no-cache-dir -r requirements.txt
	$(PY) -m pip install -q --no-build-isolation --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	ZEST_AUTORUN=1 $(VENV)/bin/streamlit run app.py $(ARGS)

test: $(STAMP)
	# The browser test needs Debian's chromium; install it when missing (as root, or through passwordless sudo).
	command -v chromium >/dev/null || (sudo -n true 2>/dev/null && sudo apt-get install -y chromium || apt-get install -y chromium || (apt-get update && apt-get install -y chromium))
	$(PY) -m pytest -q

# The suite without the slow tests (browser, make run, Ray, zoo builds): for the edit-test loop; CI runs `make test`.
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) bench/bench_engine.py
