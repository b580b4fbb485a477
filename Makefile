# pid: make targets. `make demo` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
UV ?= python3 -m uv
PY := .venv/bin/python
PID := .venv/bin/pid
VAR := var
RUN := $(VAR)/run
LOG := $(VAR)/log
CELERY := .venv/bin/celery -A pid.tasks.app
CPU_CONCURRENCY ?= $(shell nproc)
# One node name per pool, task events on, so Flower shows every stage by name and state.
GPU_ARGS := worker -Q gpu -P prefork -c 1 -n gpu@%h -E --loglevel INFO
CPU_ARGS := worker -Q cpu -P prefork -c $(CPU_CONCURRENCY) --max-tasks-per-child 50 -n cpu@%h -E --loglevel INFO
IO_ARGS := worker -Q io -P threads -c 20 -n io@%h -E --loglevel INFO
MAINTENANCE_ARGS := worker -Q maintenance -P prefork -c 1 -n maintenance@%h -E --loglevel INFO
BEAT_ARGS := beat --loglevel INFO --schedule $(RUN)/celerybeat-schedule

.PHONY: install services test lint bench migrate demo clean api api-stop flower \
	celery-gpu celery-cpu celery-io celery-maintenance celery-beat celery-all celery-status \
	celery-stop celery-purge

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

# PostgreSQL and Redis on their local ports, started (or installed) when they are not.
services:
	@./scripts/ensure-services.sh

test: install services
	$(PY) -m pytest -q

lint: install
	.venv/bin/ruff check src tests
	.venv/bin/mypy

bench: install
	$(PID) bench synth
	$(PID) bench topology
	$(PID) bench service

# Creates the database named in PID_DATABASE_URL when missing, then applies every migration.
migrate: install services
	$(PY) -m pid.db.migrate

# Starts the API, all pools and beat, then sends one generated drawing through the REST API.
demo: install services migrate celery-all
	$(PY) scripts/demo.py

# --- the service ---------------------------------------------------------------------------

api: install services migrate
	$(PY) -m pid.api

celery-gpu: install
	$(CELERY) $(GPU_ARGS)

celery-cpu: install
	$(CELERY) $(CPU_ARGS)

celery-io: install
	$(CELERY) $(IO_ARGS)

celery-maintenance: install
	$(CELERY) $(MAINTENANCE_ARGS)

celery-beat: install
	@mkdir -p $(RUN)
	$(CELERY) $(BEAT_ARGS) --pidfile $(abspath $(RUN))/beat.pid

# All four pools and exactly one beat in the background; pid files in var/run, logs in var/log.
celery-all: install services migrate
	@mkdir -p $(RUN) $(LOG)
	$(CELERY) $(GPU_ARGS) --detach --pidfile $(abspath $(RUN))/gpu.pid --logfile $(abspath $(LOG))/gpu.log
	$(CELERY) $(CPU_ARGS) --detach --pidfile $(abspath $(RUN))/cpu.pid --logfile $(abspath $(LOG))/cpu.log
	$(CELERY) $(IO_ARGS) --detach --pidfile $(abspath $(RUN))/io.pid --logfile $(abspath $(LOG))/io.log
	$(CELERY) $(MAINTENANCE_ARGS) --detach --pidfile $(abspath $(RUN))/maintenance.pid --logfile $(abspath $(LOG))/maintenance.log
	$(CELERY) $(BEAT_ARGS) --detach --pidfile $(abspath $(RUN))/beat.pid --logfile $(abspath $(LOG))/beat.log
	@echo "pools and beat started: pid files in $(RUN), logs in $(LOG); stop with make celery-stop"

celery-status: install
	$(CELERY) inspect ping --timeout 3 || true
	$(CELERY) inspect active --timeout 3 || true

# Stops exactly the processes whose pid files celery-all wrote.
celery-stop:
	@for f in $(RUN)/gpu.pid $(RUN)/cpu.pid $(RUN)/io.pid $(RUN)/maintenance.pid $(RUN)/beat.pid; do \
		if [ -f $$f ]; then pid=$$(cat $$f); echo "stopping $$f ($$pid)"; kill -TERM $$pid 2>/dev/null || true; \
		for i in $$(seq 1 60); do kill -0 $$pid 2>/dev/null || break; sleep 0.5; done; rm -f $$f; fi; \
	done

celery-purge: install
	$(CELERY) purge -f -Q gpu,cpu,io,maintenance

flower: install
	$(PY) -m pid.tasks.flower

api-stop:
	@if [ -f $(RUN)/api.pid ]; then kill -TERM $$(cat $(RUN)/api.pid) 2>/dev/null || true; rm -f $(RUN)/api.pid; fi

clean:
	rm -rf $(VAR) .pytest_cache .ruff_cache .mypy_cache
