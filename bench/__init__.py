"""Benchmarks and validation scripts (run as ``python bench/<script>.py``); not shipped."""
