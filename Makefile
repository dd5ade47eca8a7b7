# The two commands of the README: `make run` (set up, then the embedded default run) and
# `make test` (set up, lint, then the test suite). All are idempotent on a fresh machine.
VENV ?= .venv
export VENV

.PHONY: setup run test test-unit lint fix clean-cache
setup:
	@bash scripts/setup.sh

run: setup
	$(VENV)/bin/counterpoint run

# Both checks run (and both report) before the status says whether either failed.
lint: setup
	@status=0; \
	$(VENV)/bin/ruff check . || status=1; \
	$(VENV)/bin/ruff format --check . || status=1; \
	exit $$status

# Apply what `make lint` asks for: the safe lint fixes, then the formatter.
fix: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: setup lint
	$(VENV)/bin/python -m pytest -q

test-unit: setup
	$(VENV)/bin/python -m pytest -q -m "not integration"

# Counterpoint vs TRL's GRPOTrainer side by side on this machine (bench/README.md); builds the
# bench models and bench/.venv-trl on first use. BENCH_ARGS, e.g. "--models small --repeats 1".
.PHONY: bench
bench: setup
	$(VENV)/bin/python bench/run.py $(BENCH_ARGS)
