# Two commands matter: `make run` and `make test`. Everything else is what they call.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck pytest migrate seed clean

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
	$(PY) manage.py serve

test: install lint typecheck pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

pytest: install
	$(PY) -m pytest $(PYTEST_ARGS)

migrate: install
	$(PY) manage.py migrate

seed: install
	$(PY) manage.py seed_demo

clean:
	rm -rf $(VENV) var/*.sqlite3* var/redis* var/celerybeat*
