"""arc-atlas benchmarks, each reported as a ratio to PostgreSQL's own COPY speed.

Run ``python -m bench --help``.
"""
