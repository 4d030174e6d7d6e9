# One command per published result. Run from the repository root after `pip install -e ".[dev]"`.
.PHONY: study study-report test lint bench bench-gpu

WORKERS ?= 2

# The study at CPU scale (docs/study-cpu.md): both sweeps (resumable: rerun to continue), then the report.
study:
	python -m lightning_app sweep configs/sweeps/cpu/noise.yaml --workers $(WORKERS)
	python -m lightning_app sweep configs/sweeps/cpu/signal.yaml --workers $(WORKERS)
	$(MAKE) study-report

study-report:
	python -m lightning_app analyze --source sweeps/ --noise noise --signal signal --out docs/study-cpu

test:
	pytest

lint:
	ruff check . && ruff format --check . && mypy

bench:
	python bench/bench_training.py
	python bench/bench_history.py
	python bench/bench_analysis.py
	python bench/bench_sweep.py

# The study on one GPU (BENCHMARKS.md, "On a GPU"): needs a CUDA GPU and full Fashion-MNIST.
bench-gpu:
	python bench/bench_gpu.py
