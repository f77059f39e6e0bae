"""Alembic revisions of the gradebook, oldest first (see `grader.gradebook.migrations`)."""
