# ChatKit: the verbs people expect. `make run` and `make test` work on a fresh clone.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# What `make run` watches for code changes: the project's packages, never .venv (installing
# a package must not restart the server) nor tests, docs or the database.
RELOAD_DIRS := chatkit conversations widget audit
PYTEST_ARGS ?=
ARGS ?=

.PHONY: run test lint fuzz format migrate manage superuser fake-llm bench bench-smoke bench-purge \
	screenshots clean

# The virtualenv is rebuilt only when a requirements file changes.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

## run: serve the demo page, the API and the admin on http://$(HOST):$(PORT) (SQLite, demo mode
## unless the environment or .env says otherwise), reloading on code changes.
run: export DEBUG ?= true
run: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/uvicorn chatkit.asgi:application --reload $(RELOAD_DIRS:%=--reload-dir %) \
		--log-config chatkit/uvicorn-logging.json \
		--lifespan off --no-proxy-headers --host $(HOST) --port $(PORT)

## test: the whole suite (unit, API, live uvicorn, browser). PYTEST_ARGS passes options on.
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## lint: ruff, as CI runs it.
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## fuzz: schemathesis checks the API against its own OpenAPI schema on a live uvicorn and a
## throwaway database, as CI does (.ci/fuzz; FUZZ_EXAMPLES=2000 for a longer run).
fuzz: $(VENV)/.dev
	VENV=$(VENV) .ci/fuzz

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: export DEBUG ?= true
migrate: $(VENV)/.runtime
	$(BIN)/python manage.py migrate --noinput

## manage: any manage.py command, in development as `make run` serves (the virtualenv's python,
## DEBUG=true unless set): make manage ARGS="purge_sessions --dry-run"
manage: export DEBUG ?= true
manage: $(VENV)/.runtime
	$(BIN)/python manage.py $(ARGS)

## superuser: create an admin login for http://$(HOST):$(PORT)/admin/, asking for it at a
## terminal; with DJANGO_SUPERUSER_USERNAME, DJANGO_SUPERUSER_EMAIL (may be empty) and
## DJANGO_SUPERUSER_PASSWORD set, or without a terminal, from those variables, asking nothing.
superuser: export DEBUG ?= true
superuser: $(VENV)/.runtime
	@if [ -z "$$DJANGO_SUPERUSER_USERNAME$$DJANGO_SUPERUSER_PASSWORD" ] && [ -t 0 ]; then \
		exec $(BIN)/python manage.py createsuperuser; \
	fi; \
	if [ -z "$$DJANGO_SUPERUSER_USERNAME" ] || [ -z "$$DJANGO_SUPERUSER_PASSWORD" ] \
			|| [ -z "$${DJANGO_SUPERUSER_EMAIL+set}" ]; then \
		echo "make superuser: to create one without questions, set DJANGO_SUPERUSER_USERNAME," \
			"DJANGO_SUPERUSER_EMAIL (may be empty) and DJANGO_SUPERUSER_PASSWORD" >&2; \
		exit 2; \
	fi; \
	exec $(BIN)/python manage.py createsuperuser --noinput

## fake-llm: a local OpenAI-compatible server on :8001 for trying the product without a model;
## then run with OPENAI_API_KEY=fake OPENAI_BASE_URL=http://127.0.0.1:8001/v1 make run
fake-llm: $(VENV)/.dev
	$(BIN)/python -m tests.fakes.openai_server --port 8001 --ttft 0.3 --itl 0.03

## bench: issue 12's figures (CPU per chunk and per turn, added time to first token, JSON turns
## against the Node peer, open streams) for this tree, the baseline commit and the Node/Express
## peer, against the fake model, in 3 interleaved rounds: about 32 minutes on 2 cores. Needs
## PostgreSQL and Redis on 127.0.0.1; makes and drops databases of its own. ARGS passes options
## on (ARGS="--only 1,4 --no-baseline --markdown"); figures land in bench/results/latest.json.
bench: $(VENV)/.dev bench/node/node_modules
	$(BIN)/python bench/run.py $(ARGS)

## bench-smoke: the same end to end with tiny counts and one round (a few minutes; figures
## printed, not judged), as CI runs it.
bench-smoke: $(VENV)/.dev bench/node/node_modules
	$(BIN)/python bench/run.py --quick $(ARGS)

bench/node/node_modules: bench/node/package-lock.json
	npm ci --prefix bench/node --no-audit --no-fund
	touch $@

## bench-purge: fill a PostgreSQL database of its own (BENCH_DATABASE_URL, default
## postgres://postgres@127.0.0.1:5432/chatkit_bench) with 100,000 conversations and 1,000,000
## messages, time the admin's search with and without its indexes, then time purge_sessions.
bench-purge: $(VENV)/.runtime
	$(BIN)/python bench/purge.py

## screenshots: docs/screenshots/*.png for the README (the widget on the demo page, in
## Chromium, answered by the fake model). CI never runs it: it writes into the repository.
screenshots: $(VENV)/.dev
	$(BIN)/python docs/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
