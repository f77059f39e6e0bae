"""Red team: a student id never becomes a file name that a shell reads as an option.

Results, reports and exports are written as ``<out>/<file_name(id)>/``; an instructor
archiving or cleaning that folder with a wildcard (``tar czf class.tgz *``, ``rm -r *``)
hands every name to the command, and a name that starts with ``-`` is read as an option:
a student whose id is ``--remove-files`` made tar delete the class's results.
"""

from __future__ import annotations

import pytest

from grader.ids import file_name, validate_id


@pytest.mark.parametrize("student_id", ["--remove-files", "-rf", "-2+3", "---", "-.hidden",
                                        "._-x", "--checkpoint-action=exec=sh"])
def test_a_file_name_never_starts_with_a_dash_or_a_dot(student_id: str) -> None:
    name = file_name(validate_id(student_id))
    assert not name.startswith(("-", ".")), name
    assert "/" not in name and name


def test_a_leading_dash_still_tells_students_apart() -> None:
    names = {file_name(student_id) for student_id in ("-2+3", "2+3", "--2+3", "_2+3")}
    assert len(names) == 4, names
    assert file_name("2+3") == "2+3"  # an ordinary id keeps its name


def test_a_dash_inside_an_id_is_kept() -> None:
    assert file_name("anne-marie") == "anne-marie"
    assert file_name("s-1") == "s-1"
