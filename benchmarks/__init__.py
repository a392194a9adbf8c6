"""Benchmarks run by `make bench`; each script also runs on its own."""
