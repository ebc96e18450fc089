# The few commands a person needs. `make run` on a fresh clone sets everything up and serves the app.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_DEBUG ?= 1

.PHONY: run test test-fast test-peers install migrate seed lint format messages bench mutate clean

# requirements-dev.txt includes requirements.txt: a change to either reinstalls.
$(BIN)/activate: requirements.txt requirements-dev.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(BIN)/activate

install: $(BIN)/activate

messages: install
	$(BIN)/python manage.py compilemessages --ignore=.venv >/dev/null

migrate: install
	mkdir -p var
	$(BIN)/python manage.py migrate --noinput

run: migrate messages
	@if [ ! -f var/.seeded ]; then $(BIN)/python manage.py seed_demo && touch var/.seeded; fi
	@echo ""
	@echo "  RIS front desk: http://$(HOST):$(PORT)/   (log in as frontdesk, tech or admin, password demo-pass-2026)"
	@echo "  Worklist folder: $${WORKLIST_DIR:-var/worklists}"
	@echo ""
	@echo "  DICOM worklist/MPPS server: $${DICOM_SERVER_AE:-RISMWL} on port $${DICOM_SERVER_PORT:-11112}"
	@echo "  Worklist folder reconciled every 60 s (no Celery beat here: export_worklists --every)"
	$(BIN)/python manage.py serve_dicom --stop-with-parent --bind $(HOST) & \
	$(BIN)/python manage.py export_worklists --every 60 --stop-with-parent & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The real peers of the test tiers (dcmtk, Orthanc, Chromium, PostgreSQL, Redis...): as root, installed
# and started when missing (a fast no-op when all is there); otherwise the command to run is printed.
test-peers:
	scripts/test-peers

# The default suite, then the real-stack tier (PostgreSQL, Redis, a Celery worker and beat) in its own
# run with its own settings. The tier skips when those services do not answer, except under CI=true.
test: test-peers install messages
	$(BIN)/pytest --create-db -m "not realstack"
	$(BIN)/pytest --create-db -m realstack --ds=ris.settings_realstack tests/realstack

test-fast: install
	$(BIN)/pytest -m "not interop and not realstack and not e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) var .pytest_cache
