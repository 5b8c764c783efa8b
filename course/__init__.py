"""Tooling that builds, tests, benchmarks and releases the course (``python -m course --help``)."""
