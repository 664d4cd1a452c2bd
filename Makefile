# Two commands for a fresh clone; each sets up .venv itself.
#   make run    the main job end to end (see README)
#   make test   the default test suite (fast; real-data tests need ECGJAX_DATA_DIR)
# CI runs make test, then make test-heavy (the end-to-end tests marked heavy).
PY := .venv/bin/python

.PHONY: run test test-heavy test-all bootstrap
bootstrap:
	@bash scripts/bootstrap.sh

run: bootstrap
	$(PY) experiments/reproduce_jones2020.py --config experiments/configs/reproduce_jones2020.py:quick --workdir runs/reproduce_quick $(ARGS)

test: bootstrap
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder $(ARGS)

test-heavy: bootstrap
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "heavy and not slow and not gpu" $(ARGS)

test-all: bootstrap
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder -m "" $(ARGS)
