"""Test results: pure records (`records`) and the pytest plugin that collects them (`plugin`)."""
