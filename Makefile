# The README's two commands: `make run` (whole notebook pipeline, cpu profile) and `make test`.
PROFILE ?= cpu
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test smoke bench clean-runs
setup:
	@bash scripts/setup.sh

run: setup
	$(BIN)/t2w run --profile $(PROFILE)

test: setup
	$(BIN)/python -m pytest

smoke:
	$(MAKE) run PROFILE=smoke

clean-runs:
	rm -rf runs figures/smoke
