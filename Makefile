# The two commands: `make run` and `make test`. Everything else is a step of those.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two stamps, named by pyproject.toml's checksum: the runtime's (what `make run` needs)
# and the test extra's (pytest, mypy, Playwright...: `make test` and `make lint`). The test
# stamp depends on the runtime's, so after a change to pyproject.toml either target
# installs what it needs, in either order.
SUM := $(shell cksum pyproject.toml | cut -d' ' -f1)
RUN_STAMP := $(VENV)/.installed-run-$(SUM)
TEST_STAMP := $(VENV)/.installed-test-$(SUM)
PORT ?= 8000

.PHONY: install install-run run test lint bench bench-http bench-scale chaos fuzz postgres browser clean

install: $(TEST_STAMP)

install-run: $(RUN_STAMP)

$(RUN_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e .
	rm -f $(VENV)/.installed-run-*
	touch $(RUN_STAMP)

$(TEST_STAMP): $(RUN_STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-test-*
	touch $(TEST_STAMP)

run: install-run
	$(BIN)/payledger serve --demo --port $(PORT)

postgres:
	./scripts/ensure-postgres

browser:
	./scripts/ensure-chromium

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python scripts/openapi-lint

# The suite runs in TEST_WORKERS processes (pytest-xdist): its tests mostly wait on
# PostgreSQL, the broker and the clock, so more workers than cores still pay.
TEST_WORKERS ?= 4
test: install postgres browser lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist worksteal

# The long fault run (see docs/reliability.md, "Faults"): CHAOS_TRIALS trials of load with
# kill -9, a PostgreSQL restart (of a private cluster) and broker pauses; seeded by
# CHAOS_SEED (printed); the processes' log is kept in var/chaos.
# Then the outside systems' state machines (processor and PMS faults at every call),
# OUTCOME_EXAMPLES examples each instead of the bounded run's few.
CHAOS_TRIALS ?= 1000
CHAOS_SEED ?=
OUTCOME_EXAMPLES ?= 500
chaos: install postgres
	mkdir -p var/chaos
	CHAOS_SEED=$(CHAOS_SEED) $(BIN)/python -m tests.reliability --trials $(CHAOS_TRIALS) \
		--log-dir var/chaos
	PAYLEDGER_OUTCOME_EXAMPLES=$(OUTCOME_EXAMPLES) $(BIN)/pytest -p no:randomly \
		tests/integration/test_outcome_machine*.py

# Every operation of the OpenAPI document, fuzzed long on SQLite and PostgreSQL.
FUZZ_EXAMPLES ?= 100
fuzz: install postgres
	PAYLEDGER_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/fuzz -s

# every target's figure beside its baseline of the same run (the HTTP ones included), then a
# summary of verdicts; PAYLEDGER_BENCH_REPLAY_EVENTS (1000000) sizes the replay figure
bench: install postgres
	./scripts/ensure-wrk
	$(BIN)/python -m bench.run

bench-http: install postgres
	./scripts/ensure-wrk
	$(BIN)/python -m bench.http

# Not part of `make test`: a store cloned from one real practice history (docs/performance.md);
# PAYLEDGER_SCALE_EVENTS=1000000 PAYLEDGER_SCALE_PRACTICES=200 for the platform-audit size
bench-scale: install postgres
	$(BIN)/python -m bench.scale

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis
