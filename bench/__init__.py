"""Benchmarks: each `bench_*.py` compares our code with the floor and the usual
alternative in one run, and reports ratios (the machine is noisy)."""
