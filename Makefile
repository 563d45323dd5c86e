# The same commands the maintainers and CI use.
.PHONY: install lint test test-fast bench quality

install:
	pip install torch==2.13.0 && pip install -e ".[dev]"

lint:
	lint-imports
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	mypy src/walletfaq

test:
	python -m pytest -q

test-fast:
	python -m pytest -q -m "not slow"

bench:
	python benchmarks/latency.py

quality:
	python benchmarks/quality.py
