# Precis — the two commands first: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | cksum | cut -d' ' -f1)
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test stack bench lint format migrate install check-services system-setup clean

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (Precis needs Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python requirements/base.txt requirements/dev.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

## make run: the embedded platform on http://127.0.0.1:8000 (SQLite, in-process tasks, local summarizer)
run: export DEBUG ?= true
run: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput -v 0
	$(BIN)/python manage.py ensure_demo --url http://$(HOST):$(PORT)
	$(BIN)/python -m config.serve --access-log /dev/null -b $(HOST) -p $(PORT) config.asgi:application

## make test: lint + the whole suite against PostgreSQL and Redis on localhost (DATABASE_URL / REDIS_URL override)
test: $(STAMP) check-services system-setup
	$(BIN)/ruff check .
	$(BIN)/pytest $(PYTEST_ARGS)

# Debian packages the tests need: Chromium for the admin browser tests, OCRmyPDF and Tesseract for OCR (once; needs root for apt).
system-setup:
	@bash config/tests/system_setup.sh

check-services: $(STAMP)
	@$(BIN)/python -m config.services_check

## make stack: daphne + celery worker + celery beat against DATABASE_URL / REDIS_URL
stack: $(STAMP)
	@test -n "$$DATABASE_URL" -a -n "$$REDIS_URL" || { echo "error: make stack needs DATABASE_URL and REDIS_URL"; exit 1; }
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/honcho start -f Procfile

## make bench: every benchmark at a small scale (a few minutes), results in docs/benchmarks.md
bench: $(STAMP) check-services
	@command -v wrk >/dev/null || { echo "installing wrk (Debian package)"; apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq wrk); }
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	$(BIN)/python -m bench.run --scale $(or $(SCALE),small)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
