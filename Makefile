# pid: make targets. `make demo` and `make test` are the two commands a new user needs.
SHELL := /bin/bash
UV ?= python3 -m uv
PY := .venv/bin/python
PID := .venv/bin/pid
VAR := var

.PHONY: install test test-fast lint bench demo clean

install: .venv/.installed

.venv/.installed: pyproject.toml uv.lock
	@python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
	$(UV) sync --frozen
	@touch $@

test: install
	$(PY) -m pytest -q

lint: install
	.venv/bin/ruff check src tests
	.venv/bin/mypy

bench: install
	$(PID) bench synth

demo: install
	@mkdir -p $(VAR)/demo
	$(PID) synth --count 2 --out $(VAR)/demo/sheets --seed 7 --size 4000x3000 --style clean
	$(PID) synth --count 2 --out $(VAR)/demo/scans --seed 7 --size 4000x3000 --style scan
	$(PID) eval --pred $(VAR)/demo/sheets --truth $(VAR)/demo/sheets --json $(VAR)/demo/self-score.json
	@echo "sheets: $(VAR)/demo/sheets and $(VAR)/demo/scans (original.png, masks, graph.json, ...)"

clean:
	rm -rf $(VAR) .pytest_cache .ruff_cache .mypy_cache
