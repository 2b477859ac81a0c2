# The two commands of the README:
#   make run    install what is needed, then run the platform on its embedded defaults
#   make test   install what is needed, start the services the tests use, run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.hcp-installed

.PHONY: install run test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch==2.13.0: the CPU build lies on this project's machines (pip finds it there);
	# GPU nodes get the CUDA build of the same release (cluster.yaml).
	$(BIN)/pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/hcp run

test: $(STAMP)
	scripts/ensure-services.sh
	# The unit tier needs nothing running and is spread over the cores; the integration and
	# end-to-end tiers share one Ray session and real services, so they run in one process.
	$(BIN)/python -m pytest -q -n 2 tests/unit
	$(BIN)/python -m pytest -q tests/integration tests/e2e

bench: $(STAMP)
	$(BIN)/python -m bench.mining
	$(BIN)/python -m bench.switch

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
