# Two commands matter: `make run` and `make test`. Everything else is what they call.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# manage.py, ASGI and Celery default to production settings; the local commands choose theirs.
DEV := DJANGO_SETTINGS_MODULE=config.settings.dev
TESTING := DJANGO_SETTINGS_MODULE=config.settings.test

.PHONY: install run test lint typecheck pytest fuzz browser screenshots bench chaos migrate seed reset-demo clean

install: $(STAMP)

# Reinstall only when the pinned dependencies change.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Migrates, seeds the demo data and starts web + worker + beat (and an embedded Redis
# when REDIS_URL is unset) on http://127.0.0.1:8000.
run: install
	$(DEV) $(PY) manage.py serve

test: install lint typecheck pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy .

# Three test processes (pytest-xdist), each with its own test database and Redis database; a
# module's tests stay together. Three on two cores: many tests wait on worker processes, a
# browser or a clock, and a third process keeps the cores busy meanwhile.
# PYTEST_WORKERS=0 runs them in this process.
# The app's bytecode is compiled first: the tests start a couple of hundred worker, daphne
# and CLI processes, which otherwise compile it each time when PYTHONDONTWRITEBYTECODE is set.
PYTEST_WORKERS ?= 3
APP_PACKAGES := config features pipeline skills notifications audit
pytest: install browser
	$(PY) -m compileall -q -j 0 $(APP_PACKAGES)
	$(TESTING) $(PY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# schemathesis with every check against a live daphne, RUNWAY_FUZZ_EXAMPLES (20) examples per
# API operation (about five minutes), then the in-process API and page-form fuzzers with more.
fuzz: install
	$(TESTING) $(PY) -m pytest -m fuzz tests/integration/test_api_fuzz_live.py -q
	$(TESTING) RUNWAY_FUZZ_EXAMPLES=$${RUNWAY_FUZZ_EXAMPLES:-50} $(PY) -m pytest tests/test_schemathesis.py tests/test_form_fuzz.py -q

# Browser tests drive Debian's Chromium (never a downloaded browser). As root we install it;
# otherwise we say how, and the browser tests fail loudly rather than skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get install -y -qq chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)); \
	  else echo "Browser tests need Chromium: sudo apt-get install chromium"; fi; }

# Screenshots of the board, a card and the phone layout, from the browser tests.
screenshots: install browser
	$(TESTING) RUNWAY_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser -q

# Benchmarks and the chaos run (not tests): real worker processes on the machine's PostgreSQL
# and Redis when they answer, the embedded defaults otherwise. See README "Performance".
bench: install browser
	$(PY) -m bench.run $(BENCH_ARGS)

chaos: install
	$(PY) -m bench.chaos $(CHAOS_ARGS)

migrate: install
	$(DEV) $(PY) manage.py migrate

seed: install
	$(DEV) $(PY) manage.py seed_demo

# The embedded default's demo data starts afresh at the next `make run` (stop it first).
RUNWAY_VAR_DIR ?= var
reset-demo:
	rm -f $(RUNWAY_VAR_DIR)/runway.sqlite3 $(RUNWAY_VAR_DIR)/runway.sqlite3-wal \
	  $(RUNWAY_VAR_DIR)/runway.sqlite3-shm $(RUNWAY_VAR_DIR)/celerybeat-schedule*

clean:
	rm -rf $(VENV) var/*.sqlite3* var/redis* var/celerybeat*
