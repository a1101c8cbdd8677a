# The README's two commands: `make run` (whole notebook pipeline, cpu profile) and `make test` (ruff, pytest, nbval).
PROFILE ?= cpu
VENV := .venv
BIN := $(VENV)/bin

.PHONY: setup run test demo smoke bench convergence clean-runs
setup:
	@bash scripts/setup.sh

# After 01 and 02, two notebooks at a time, one thread each (t2wlib/pipeline/runner.py; benchmarks/bench_parallel.py).
run: setup
	$(BIN)/t2w run --profile $(PROFILE) --parallel 2

# pytest includes the papermill smoke pipeline (tests/test_pipeline.py), which checks every notebook's
# outputs; its executed copies stay in runs/test-smoke/ (`pytest --nbval-lax runs/test-smoke/*.ipynb`
# re-runs them cell by cell, which checks nothing the pipeline test did not).
# setup --test adds Debian's chromium and chromium-driver, which the demo page's browser test drives.
# One pytest-xdist worker per core this process may use, each with its share of the threads; the tests that
# read the smoke run go to one worker, which builds it once (tests/conftest.py).
TEST_WORKERS ?= $(shell nproc)
test:
	@bash scripts/setup.sh --test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n $(TEST_WORKERS)

# The rest of the convergence study, beside the curves that `run` makes in 02_train (needs `run`'s
# zoos; hours on 2 cores): the training levers, the task-loss hypernetwork, the ε token spaces and the
# ε generator 4x longer on emoji; the levers and Figure 3's ε generator twice as long on Fashion-MNIST
# (scripts/convergence_study.py).
convergence: setup
	$(BIN)/python scripts/convergence_study.py --profile $(PROFILE) --datasets emoji
	$(BIN)/python scripts/convergence_study.py --profile $(PROFILE) --datasets fashion-mnist --part levers,eps-plateau

# The demo page on http://127.0.0.1:8501 (t2w demo): with no generator yet, the demo profile's are
# built first (at most 10 minutes on 2 cores); with `run`'s, those are offered.
demo: setup
	$(BIN)/t2w demo

bench: setup
	$(BIN)/python benchmarks/bench_features.py

smoke:
	$(MAKE) run PROFILE=smoke

clean-runs:
	rm -rf runs figures/smoke
