# Labelloop: `make demo` runs the whole thing locally, `make test` runs the suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
REQ_STAMP := $(VENV)/.req-$(shell cat requirements.txt | sha256sum | cut -c1-12)
DEV_STAMP := $(VENV)/.dev-$(shell cat requirements.txt requirements-dev.txt | sha256sum | cut -c1-12)
# manage.py, gunicorn and celery default to the production settings (docs/security.md); what make starts here is the
# development checkout, so it says so (an explicit DJANGO_SETTINGS_MODULE in the environment still wins; the test
# targets set their own).
export DJANGO_SETTINGS_MODULE ?= config.settings.local

.PHONY: demo test test-postgres test-sqlite lint serve redis venv dev-venv

venv: $(REQ_STAMP)
$(REQ_STAMP):
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -r requirements.txt
	touch $@

dev-venv: $(DEV_STAMP)
$(DEV_STAMP): $(REQ_STAMP)
	$(PIP) install -r requirements-dev.txt
	touch $@

redis:
	@scripts/ensure_redis.sh

demo: venv redis
	$(PY) manage.py migrate --noinput
	$(PY) manage.py demo_setup
	@echo "Starting web on http://127.0.0.1:8000, the housekeeping, default and gpu workers, beat, and the prediction service on http://127.0.0.1:8001 (Ctrl-C stops them)"
	$(VENV)/bin/honcho -f Procfile.dev start

serve: venv
	$(VENV)/bin/honcho -f Procfile.dev start

# The suite runs on PostgreSQL (a throwaway cluster, or $$DATABASE_URL), then again on SQLite; the slow
# multi-process integration tests (real workers training models) and the browser tests run once, in the PostgreSQL
# pass, after the rest, in two lanes side by side (scripts/slow_lanes.sh): the browser tests one at a time in one,
# the other slow tests one at a time in the other (they start workers and browsers of their own; two of a kind
# would compete for the cores). One lane after the other took 27 minutes (stop 58).
# The SQLite pass of `make test` leaves out the tests that use no test database (no django_db mark, no db fixture:
# tests/conftest.py): they ran in the PostgreSQL pass and would only repeat it; `make test-sqlite` alone runs them.
# The rest runs in TEST_WORKERS processes (pytest-xdist; each its own test database). Each pass lists its slowest
# tests. Exit status 5 (no test selected, e.g. PYTEST_ARGS names a file without slow tests) is not a failure.
TEST_WORKERS ?= 2
PYTEST_FAST := -m "not slow and not e2e" -n $(TEST_WORKERS) --durations=15
PYTEST_SLOW := --durations=15
test: dev-venv
	$(MAKE) test-postgres
	$(MAKE) test-sqlite SQLITE_SCOPE=--database-tests-only

test-postgres: dev-venv
	DJANGO_SETTINGS_MODULE=config.settings.test scripts/with_postgres.sh $(PY) -m pytest $(PYTEST_FAST) $(PYTEST_ARGS) || [ $$? -eq 5 ]
	DJANGO_SETTINGS_MODULE=config.settings.test scripts/slow_lanes.sh $(PY) $(PYTEST_SLOW) $(PYTEST_ARGS)

test-sqlite: dev-venv
	env -u DATABASE_URL DJANGO_SETTINGS_MODULE=config.settings.test $(PY) -m pytest -m "not postgres and not slow and not e2e" -n $(TEST_WORKERS) --durations=15 $(SQLITE_SCOPE) $(PYTEST_ARGS) || [ $$? -eq 5 ]

lint: dev-venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
