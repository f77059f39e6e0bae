"""The one grade record (`grader.grade_record`): lateness, extension, override, final score."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest

from grader import grade_record
from grader.config import LatePolicy
from grader.grade_record import GradeRecord, GradeRecordError

DUE = datetime(2026, 12, 24, 0, 0, tzinfo=timezone(timedelta(hours=8)))
TEN_A_DAY = LatePolicy("percent_per_day", percent=10, grace_minutes=15)


@pytest.mark.parametrize(("late_by", "days", "multiplier"), [
    (timedelta(hours=-1), 0, 1.0),
    (timedelta(minutes=15), 0, 1.0),  # inside the grace period
    (timedelta(minutes=16), 1, 0.9),
    (timedelta(days=1, minutes=15), 1, 0.9),
    (timedelta(days=1, minutes=16), 2, 0.8),
    (timedelta(days=30), 30, 0.0),  # never below zero
])
def test_lateness_counts_started_days_after_due_and_grace(late_by, days, multiplier):
    late = grade_record.lateness(TEN_A_DAY, DUE, DUE + late_by)
    assert (late.late_days, late.multiplier) == (days, pytest.approx(multiplier))
    assert TEN_A_DAY.multiplier(DUE + late_by, DUE) == pytest.approx(multiplier)


def test_an_extension_moves_the_due_date_and_the_cutoff():
    policy = LatePolicy("percent_per_day", percent=10, cutoff=DUE + timedelta(days=2))
    submitted = DUE + timedelta(days=3, hours=1)
    assert grade_record.lateness(policy, DUE, submitted).multiplier == 0.0  # past the cutoff
    extended = grade_record.lateness(policy, DUE, submitted, extension_days=3)
    assert extended.due == DUE + timedelta(days=3)
    assert (extended.late_days, extended.multiplier) == (1, pytest.approx(0.9))
    assert grade_record.lateness(policy, DUE, submitted, extension_days=4).multiplier == 1.0


def test_zero_after_and_none_policies():
    zero = LatePolicy("zero_after")
    assert grade_record.lateness(zero, DUE, DUE + timedelta(seconds=1)).multiplier == 0.0
    assert grade_record.lateness(zero, DUE, DUE + timedelta(seconds=1), 1).multiplier == 1.0
    none = LatePolicy()
    late = grade_record.lateness(none, DUE, DUE + timedelta(days=5))
    assert (late.late_days, late.multiplier) == (5, 1.0)  # counted, never charged


def test_an_unknown_time_is_never_late():
    late = grade_record.lateness(TEN_A_DAY, DUE, None)
    assert (late.late_days, late.multiplier) == (0, 1.0)


def test_the_final_score_is_the_override_else_score_times_multiplier():
    assert grade_record.final_score(7, 0.8) == pytest.approx(5.6)
    assert grade_record.final_score(7, 0.8, 9.5) == 9.5
    assert grade_record.final_score(7, 0.8, 0.0) == 0.0  # an override of 0 still counts
    record = GradeRecord(score=7, max_score=10, late_multiplier=0.5, override_points=None)
    assert (record.final, record.after_penalty) == (pytest.approx(3.5), pytest.approx(3.5))


@pytest.mark.parametrize("points", [150, -1, 100.0001, math.nan, math.inf, -math.inf, "x",
                                    None, "1e400"])
def test_an_override_outside_zero_to_max_is_refused(points):
    with pytest.raises(GradeRecordError, match=r"between 0 and 100 points .*received"):
        grade_record.check_override(points, 100, "regrade")


@pytest.mark.parametrize("reason", ["", "   ", "\n\t"])
def test_an_override_needs_a_reason(reason):
    with pytest.raises(GradeRecordError, match="needs a reason"):
        grade_record.check_override(95, 100, reason)


def test_an_override_within_bounds_keeps_a_one_line_reason():
    assert grade_record.check_override("100", 100, " paper\nsubmission ") == (
        100.0, "paper submission")
    assert grade_record.check_override(0, 100, "plagiarism") == (0.0, "plagiarism")


@pytest.mark.parametrize("days", [-1, 366, math.nan, math.inf, "three", None])
def test_an_extension_out_of_bounds_is_refused(days):
    with pytest.raises(GradeRecordError, match=r"between 0 and 365 days"):
        grade_record.check_extension(days, "medical")


def test_an_extension_needs_a_reason_and_zero_clears():
    with pytest.raises(GradeRecordError, match="needs a reason"):
        grade_record.check_extension(3, " ")
    assert grade_record.check_extension(0, "granted by mistake") == (0.0, "granted by mistake")
