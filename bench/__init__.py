"""Benchmarks of Hydite against real processes on 127.0.0.1 (results in bench/RESULTS.md)."""
