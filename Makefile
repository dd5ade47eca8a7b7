# The two commands of the README: `make run` (set up, then the embedded default run) and
# `make test` (set up, then the test suite). Both are idempotent on a fresh machine.
VENV ?= .venv
export VENV

.PHONY: setup run test test-unit clean-cache
setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/counterpoint run

test: setup
	$(VENV)/bin/python -m pytest -q

test-unit: setup
	$(VENV)/bin/python -m pytest -q -m "not integration"
