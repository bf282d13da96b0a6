"""Servers `make bench` compares memoria against (see tests/benchmarks/bench_serving.py)."""
