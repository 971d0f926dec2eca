# Two commands: `make run` sets everything up and starts the app; `make test` sets up and runs the tests.
.PHONY: run test soak lint setup setup-dev

run: setup
	.venv/bin/minicpm-assistant

test: setup-dev
	.venv/bin/python -m pytest

# Long runs (large folders, many kill points), not part of `make test`.
soak: setup-dev
	SOAK=1 .venv/bin/python -m pytest -m soak
	SOAK=1 .venv/bin/python -m pytest tests/rag/test_fuzz.py

lint: setup-dev
	.venv/bin/ruff check . && .venv/bin/mypy && .venv/bin/lint-imports

setup:
	@scripts/setup.sh

setup-dev:
	@scripts/setup.sh dev
