# One command per published result. Run from the repository root after `pip install -e ".[dev]"`.
.PHONY: study study-replicated study-report validate test test-full lint docs bench bench-gpu

WORKERS ?= 2

# The study at CPU scale (docs/study-cpu.md): the noise, signal and replicated signal sweeps
# (resumable: rerun to continue), then both reports.
study:
	python -m lightning_app sweep configs/sweeps/cpu/noise.yaml --workers $(WORKERS)
	python -m lightning_app sweep configs/sweeps/cpu/signal.yaml --workers $(WORKERS)
	$(MAKE) study-replicated

study-report:
	python -m lightning_app analyze --source sweeps/ --noise noise --signal signal --out docs/study-cpu
	python -m lightning_app analyze --source sweeps/ --noise noise --signal signal-replicated --out docs/study-cpu-replicated

# The replicated signal sweep (3 seeds per configuration, about 15 minutes), then both reports.
study-replicated:
	python -m lightning_app sweep configs/sweeps/cpu/signal-replicated.yaml --workers $(WORKERS)
	$(MAKE) study-report

# The statistics validated by simulation (planted nulls and effects): writes docs/validation.md.
validate:
	python bench/validate_stats.py

# The inner loop: everything but the slow tests and those that start real processes (python -m
# lightning_app, DDP, Ray, wandb agent). test-full is `pytest`: every test but the slow ones.
test:
	pytest -m "not slow and not process"

test-full:
	pytest

lint:
	ruff check . && ruff format --check . && mypy

# The documentation site (mkdocs.yml): --strict fails on a broken link or anchor. Written to build/site/.
docs:
	mkdocs build --strict --site-dir build/site

bench:
	python bench/bench_training.py
	python bench/bench_history.py
	python bench/bench_analysis.py
	python bench/bench_sweep.py

# The study on one GPU (BENCHMARKS.md, "On a GPU"): needs a CUDA GPU and full Fashion-MNIST.
bench-gpu:
	python bench/bench_gpu.py
