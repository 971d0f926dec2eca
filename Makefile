# Two commands: `make run` sets everything up and starts the app; `make test` sets up and runs the tests.
.PHONY: run test lint setup setup-dev

run: setup
	.venv/bin/minicpm-assistant

test: setup-dev
	.venv/bin/python -m pytest

lint: setup-dev
	.venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/lint-imports

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh dev
