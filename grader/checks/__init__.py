"""Reusable checks for hidden test suites: gradients (and later architecture, accuracy)."""
