# One entry point for everyday tasks. uv is installed with pip when missing.
UV := $(shell command -v uv 2>/dev/null || echo "python3 -m uv")

.PHONY: serve test lint bench uv

serve: uv
	$(UV) run audiovault serve

test: uv
	$(UV) run pytest

lint: uv
	$(UV) run ruff format --check .
	$(UV) run ruff check .
	$(UV) run mypy

bench: uv
	$(UV) run python -m benchmarks.encoder
	$(UV) run python -m benchmarks.upload
	$(UV) run python -m benchmarks.memory
	$(UV) run python -m benchmarks.concurrency

uv:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
