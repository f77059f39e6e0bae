"""Release: strip reference solutions into student skeletons.

- `strip`: nbgrader markers in `.py` files (`strip_solutions`, `find_solution_leaks`).
- `notebook`: `.ipynb` files, released exactly as `nbgrader generate_assignment` does.
"""

from grader.release.strip import (
    MarkerError,
    StripResult,
    find_solution_leaks,
    strip_file,
    strip_solutions,
)

__all__ = [
    "MarkerError",
    "StripResult",
    "find_solution_leaks",
    "strip_file",
    "strip_solutions",
]
