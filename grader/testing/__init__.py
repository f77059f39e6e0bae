"""Helpers the project's own tests and benchmarks share; nothing here is course material."""
