"""Benchmarks that print measured figures. Never imported by product code.

Timing figures live here, never in pass/fail tests: the machines are shared and noisy.
"""
