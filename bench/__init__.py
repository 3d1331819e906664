"""Benchmarks of aigw-runbook: each figure as a ratio against a reference measured in the same run.

``python -m bench [--quick] [--only NAME,...]`` prints one table; docs/PERFORMANCE.md records it.
Benchmarks are not tests: nothing here asserts a time.
"""
