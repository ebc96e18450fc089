# The few commands a person needs. `make run` on a fresh clone sets everything up and serves the app.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export DJANGO_DEBUG ?= 1

.PHONY: run test test-fast test-peers install migrate seed lint format messages bench bench-scale mutate clean

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

# Images in `make run`: a local Orthanc as the demo PACS (scripts/run-pacs) when the Debian package is
# installed and no ORTHANC_URL points at another; the web pages and the follower talk to it as its user.
ORTHANC_BIN ?= /usr/sbin/Orthanc
ifeq ($(origin ORTHANC_URL)$(wildcard $(ORTHANC_BIN)),undefined$(ORTHANC_BIN))
run: export ORTHANC_URL := http://127.0.0.1:8042
run: export ORTHANC_USERNAME := demo
run: export ORTHANC_PASSWORD := demo-pacs-2026
run: export RUN_LOCAL_ORTHANC := 1
endif

run: migrate messages
	@if [ ! -f var/.seeded ]; then $(BIN)/python manage.py seed_demo && touch var/.seeded; fi
	@echo ""
	@echo "  RIS front desk: http://$(HOST):$(PORT)/   (log in as frontdesk, tech or admin, password demo-pass-2026)"
	@echo "  Order API: http://$(HOST):$(PORT)/api/docs/   (a token: manage.py api_client NAME --scopes read,book)"
	@echo "  Worklist folder: $${WORKLIST_DIR:-var/worklists}"
	@echo ""
	@echo "  DICOM worklist/MPPS server: $${DICOM_SERVER_AE:-RISMWL} on port $${DICOM_SERVER_PORT:-11112}"
	@echo "  Worklist folder reconciled every 60 s (no Celery beat here: export_worklists --every)"
	@echo "  HL7 listener (MLLP) for the HIS: $(HOST):$${HL7_PORT:-2575}, senders $${HL7_KNOWN_SENDERS:-configured in the admin}"
	@echo "  HL7 outbox to the HIS's receivers sent every 10 s (hl7_outbox --every)"
	@echo "  PACS: $${ORTHANC_URL:-none}, its stable studies followed every 5 s (follow_pacs --every)"
	$(BIN)/python manage.py serve_dicom --stop-with-parent --bind $(HOST) & \
	$(BIN)/python manage.py export_worklists --every 60 --stop-with-parent & \
	$(BIN)/python manage.py serve_hl7 --stop-with-parent --bind $(HOST) & \
	$(BIN)/python manage.py hl7_outbox --every 10 --stop-with-parent & \
	$(BIN)/python scripts/run-pacs & \
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The real peers of the test tiers (dcmtk, Orthanc, Chromium, PostgreSQL, Redis...): as root, installed
# and started when missing (a fast no-op when all is there); otherwise the command to run is printed.
test-peers:
	scripts/test-peers

# The default suite, then the real-stack tier (PostgreSQL, Redis, a Celery worker and beat) in its own
# run with its own settings. The tier skips when those services do not answer, except under CI=true.
# The default suite runs in two processes (pytest-xdist; XDIST_WORKERS=0 for one). --dist loadgroup
# hands out single tests in collection order, so each worker keeps pytest-django's order (database
# tests, then transactional ones, then the rest) and the migrations' rows such as the role groups are
# there for every database test. The modules sharing one gunicorn (they use no test database) stay in
# one worker (ONE_WORKER in tests/conftest.py), and start first (xdist sends larger groups first).
# Each worker has its own SQLite test database (pytest-django suffixes its name), temporary folders
# and servers.
# The real-stack tier stays in one process: its Celery worker serves one Redis queue and one database.
XDIST_WORKERS ?= 2
test: test-peers install messages
	$(BIN)/pytest --create-db -m "not realstack" -n $(XDIST_WORKERS) --dist loadgroup
	$(BIN)/pytest --create-db -m realstack --ds=ris.settings_realstack tests/realstack

test-fast: install
	$(BIN)/pytest -m "not interop and not realstack and not e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Everything, including the hospital-scale section (bench/scale.py builds its two data sets in PostgreSQL
# once per migration set, in about 4 minutes; later runs copy them). bench-scale runs that section alone.
bench: install
	$(BIN)/python bench/run.py

bench-scale: install
	$(BIN)/python bench/run.py --only scale

# Mutation testing (docs/MUTATION.md): slow, so not part of `make test`. Each module must be listed in
# [tool.mutmut] only_mutate in pyproject.toml and have its MUTATE_TESTS here: its fast tests, not the
# interop, e2e or real-stack tiers, nor tests/mwl_server/test_server.py (it waits out network timeouts
# when a mutant breaks an answer). mutmut copies the project into mutants/, afresh each run since it
# never refreshes a file it copied before.
MODULES ?= mwl_server/matching.py worklist_export/encoding.py scheduling/rules.py scheduling/services.py \
	scheduling/selectors.py
MUTATE_TESTS_mwl_server/matching.py := tests/mwl_server/test_matching.py \
	tests/mwl_server/test_matching_mutants.py tests/mwl_server/test_query_bounds.py \
	tests/mwl_server/test_worklist_find.py
MUTATE_TESTS_worklist_export/encoding.py := tests/worklist_export/test_encoding.py \
	tests/worklist_export/test_encoding_mutants.py
MUTATE_TESTS_scheduling/services.py := tests/scheduling/test_booking.py tests/scheduling/test_order_workflow.py \
	tests/scheduling/test_service_arguments.py tests/scheduling/test_history.py tests/scheduling/test_patients.py
MUTATE_TESTS_scheduling/selectors.py := tests/scheduling/test_selectors.py tests/scheduling/test_day_board.py \
	tests/scheduling/test_rules.py
MUTATE_TESTS_scheduling/rules.py := tests/scheduling/test_rules.py tests/scheduling/test_rules_messages.py \
	tests/scheduling/test_booking.py \
	tests/scheduling/test_order_workflow.py tests/scheduling/test_forms.py
# Two children at most: the machine has two cores and others run tests on it too.
MUTATE_CHILDREN ?= 2
mutate: install
	$(foreach m,$(MODULES),$(if $(MUTATE_TESTS_$(m)),,$(error mutate: no MUTATE_TESTS_$(m) in the Makefile)))
	@$(BIN)/python -c 'import pathlib, sys, tomllib; \
		cfg = tomllib.loads(pathlib.Path("pyproject.toml").read_text())["tool"]["mutmut"]; \
		apps = [str(p.parent) for p in sorted(pathlib.Path().glob("*/apps.py"))]; \
		wrong = [f"{m} is not in only_mutate" for m in sys.argv[1:] if m not in cfg["only_mutate"]] \
			+ [f"the app {a} is not in source_paths" for a in apps if a not in cfg["source_paths"]]; \
		wrong and sys.exit("mutate: " + "; ".join(wrong) + " ([tool.mutmut] in pyproject.toml)")' $(MODULES)
	rm -rf mutants
	mkdir mutants
	printf '%s\n' $(sort $(foreach m,$(MODULES),$(MUTATE_TESTS_$(m)))) > mutants/mutmut-tests.txt
	$(BIN)/mutmut run --max-children $(MUTATE_CHILDREN) $(foreach m,$(MODULES),'$(subst /,.,$(m:.py=)).*')
	@echo ""
	@$(BIN)/mutmut results --all true | awk -v modules="$(subst /,.,$(MODULES:.py=))" ' \
		BEGIN { n = split(modules, module, " ") } \
		{ key = $$1; sub(/:$$/, "", key); status = $$0; sub(/^[^:]*: /, "", status); \
		  for (i = 1; i <= n; i++) if (index(key, module[i] ".x") == 1) { \
		    total[i]++; if (status == "killed") killed[i]++; else left[i] = left[i] "    " status "  " key "\n" } } \
		END { for (i = 1; i <= n; i++) { \
		  printf "%s: %d/%d mutants killed (%.1f%%)\n", module[i], killed[i], total[i], \
		    total[i] ? 100 * killed[i] / total[i] : 0; printf "%s", left[i] } \
		  print "(mutmut show NAME prints a mutant'"'"'s diff; docs/MUTATION.md explains the survivors)" }'

clean:
	rm -rf $(VENV) var .pytest_cache
