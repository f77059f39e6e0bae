"""nn-grader: grades the neural-network chapter's assignments."""

__version__ = "0.1.0"
