# The two commands of the README:
#   make build   - set up, then run the main job (train a small sparse network on
#                  bundled data and build it for pynq-z2)
#   make test    - set up, then run the test suite
VENV := .venv
SBNN := $(VENV)/bin/sbnn
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: setup build test test-slow bench clean

setup:
	@bash scripts/setup.sh

build: setup
	$(SBNN) build

test: setup
	$(PYTEST) -q

test-slow: setup
	$(PYTEST) -q --runslow -m slow

bench: setup
	$(VENV)/bin/python bench/run_all.py

clean:
	rm -rf build .pytest_cache
