# cellwright — set-up included: every target creates .venv with pinned versions first.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: demo test bench install clean lint

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[cpsat,test]'
	@if [ -d examples/acme-counter ]; then $(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e examples/acme-counter; fi
	@touch $(STAMP)

install: $(STAMP)

## make demo: run the 7-day iPSC maintenance protocol on the simulated workcell (virtual time)
demo: $(STAMP)
	$(BIN)/cellwright run protocols/ipsc-maintenance.yaml --db var/demo.db --operator demo

## make test: the whole test suite, offline, in virtual time
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: benchmarks (tables on stdout, JSON under bench/results/)
bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) var .pytest_cache
