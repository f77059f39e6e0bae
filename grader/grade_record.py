"""One grade record: submission time -> lateness -> multiplier -> final score.

The one rule, in one place. The gradebook stores what these functions compute when a
submission is recorded (or an extension granted), and every reader (reports, CSV,
Gradescope, results.json) reads the stored record and calls `final_score`; nobody
computes lateness or a final score any other way.

- **Lateness** (`lateness`): started days after the due date plus the student's extension
  plus the grace period; the late policy's multiplier for that time. An extension moves
  the due date and any cutoff by its days.
- **Final score** (`final_score`): the override's points when there is one, else the tests'
  score times the multiplier.
- **Override** (`check_override`): within 0..the assignment's points, with a reason.
- **Extension** (`check_extension`): 0 < days <= `MAX_EXTENSION_DAYS`, with a reason;
  0 days clears it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from grader.i18n import Domain

if TYPE_CHECKING:  # config imports this module; only the types are needed here
    from grader.config import AssignmentConfig, LatePolicy
    from grader.intake import Submission

_, _n = Domain("cli").functions()

MAX_EXTENSION_DAYS = 365.0
"""The longest extension `grader extend` grants (a typo such as 300 instead of 3 stays possible
but 3000 is refused)."""


class GradeRecordError(ValueError):
    """An override or extension outside its bounds; the message says what was expected."""


@dataclass(frozen=True)
class Lateness:
    """How late a submission is, under a policy and an extension.

    Attributes:
        charged_at: the time lateness is charged from (`grader.intake.lateness_time`), or None.
        due: the due date that applied: the assignment's plus the extension.
        extension_days: the student's extension (0: none).
        late_days: started days after `due` and the grace period (0: on time or unknown).
        multiplier: the late policy's factor, in [0, 1].
    """

    charged_at: datetime | None
    due: datetime | None
    extension_days: float
    late_days: int
    multiplier: float


@dataclass(frozen=True)
class GradeRecord:
    """Everything a grade's number is made of, as stored; `final` is computed by `final_score`.

    Attributes:
        score: the points the tests earned.
        max_score: the points the assignment is worth.
        submitted_at: when the graded submission was made (None: unknown).
        charged_at: the time lateness is charged from (`grader.intake.lateness_time`);
            None: `submitted_at`.
        late_days, late_multiplier: the stored lateness (`lateness`).
        extension_days, extension_reason: the student's extension (0, "": none).
        override_points, override_reason: the instructor's override (None, "": none).
    """

    score: float
    max_score: float
    submitted_at: datetime | None = None
    charged_at: datetime | None = None
    late_days: int = 0
    late_multiplier: float = 1.0
    extension_days: float = 0.0
    extension_reason: str = ""
    override_points: float | None = None
    override_reason: str = ""

    @property
    def final(self) -> float:
        return final_score(self.score, self.late_multiplier, self.override_points)

    @property
    def after_penalty(self) -> float:
        """The tests' score with the late policy applied (before any override)."""
        return final_score(self.score, self.late_multiplier, None)


def late_days(policy: LatePolicy, charged_at: datetime | None, due: datetime | None) -> int:
    """Started days after the due date and the grace period; 0 when on time or unknown."""
    if charged_at is None or due is None:
        return 0
    late_by = charged_at - due - timedelta(minutes=policy.grace_minutes)
    if late_by <= timedelta(0):
        return 0
    return math.ceil(late_by / timedelta(days=1))


def late_multiplier(policy: LatePolicy, charged_at: datetime | None, due: datetime | None,
                    *, cutoff: datetime | None = None) -> float:
    """The factor a grade is multiplied by under the policy (1 when on time or unknown).

    Args:
        policy: the assignment's late policy.
        charged_at: the time lateness is charged from (timezone-aware), or None.
        due: the due date that applies (timezone-aware), or None.
        cutoff: the cutoff that applies; default the policy's.

    Returns:
        A number in [0, 1].
    """
    if policy.policy == "none" or charged_at is None or due is None:
        return 1.0
    cutoff = policy.cutoff if cutoff is None else cutoff
    grace = timedelta(minutes=policy.grace_minutes)
    if charged_at - due - grace <= timedelta(0):
        return 1.0
    if policy.policy == "zero_after":
        return 0.0 if charged_at > (cutoff or due) + grace else 1.0
    if cutoff is not None and charged_at > cutoff:
        return 0.0
    return max(0.0, 1.0 - policy.percent / 100.0 * late_days(policy, charged_at, due))


def lateness(policy: LatePolicy, due: datetime | None, charged_at: datetime | None,
             extension_days: float = 0.0) -> Lateness:
    """A submission's lateness: the one function every writer of a grade calls.

    Args:
        policy: the assignment's late policy.
        due: the assignment's due date (timezone-aware), or None.
        charged_at: the time lateness is charged from, or None (never late).
        extension_days: the student's extension; it moves the due date and the cutoff.
    """
    shift = timedelta(days=max(0.0, float(extension_days)))
    moved = due + shift if due is not None else None
    cutoff = policy.cutoff + shift if policy.cutoff is not None else None
    return Lateness(charged_at, moved, float(extension_days),
                    late_days(policy, charged_at, moved),
                    late_multiplier(policy, charged_at, moved, cutoff=cutoff))


def submission_lateness(config: AssignmentConfig, submission: Submission,
                        extension_days: float = 0.0) -> Lateness:
    """`lateness` of an intake's submission: charged from `grader.intake.lateness_time`
    (the instructor's time, Canvas's LATE marker, else the receipt time)."""
    from grader.intake import lateness_time  # intake imports config, which imports us

    charged = lateness_time(submission, config.due, config.late.grace_minutes)
    return lateness(config.late, config.due, charged, extension_days)


def final_score(score: float, multiplier: float, override_points: float | None = None) -> float:
    """The grade that counts: the override when there is one, else score x multiplier."""
    if override_points is not None:
        return float(override_points)
    return round(float(score) * float(multiplier), 6)


def check_override(points: float, max_points: float, reason: str) -> tuple[float, str]:
    """An override's points and reason, or why they cannot be one.

    Raises:
        GradeRecordError: points not a number within 0..max_points, or no reason.
    """
    try:
        value = float(points)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0.0 <= value <= max_points:
        raise GradeRecordError(_("an override must be between 0 and {max_points} points (the "
                                 "assignment's total); received: {received}",
                                 max_points=f"{max_points:g}", received=repr(points)))
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise GradeRecordError(_("an override needs a reason (it is shown to the student and "
                                 "in exports); add --reason \"...\", e.g. --reason \"regrade "
                                 "of part 2\""))
    return value, reason


def check_extension(days: float, reason: str) -> tuple[float, str]:
    """An extension's days and reason, or why they cannot be one (0 days clears it).

    Raises:
        GradeRecordError: days not a number within 0..`MAX_EXTENSION_DAYS`, or no reason.
    """
    try:
        value = float(days)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value) or not 0.0 <= value <= MAX_EXTENSION_DAYS:
        raise GradeRecordError(_("an extension must be between 0 and {max_days} days (0 clears "
                                 "it); received: --days {received}",
                                 max_days=f"{MAX_EXTENSION_DAYS:g}", received=repr(days)))
    reason = " ".join(str(reason or "").split())
    if not reason:
        raise GradeRecordError(_("an extension needs a reason (it is recorded and shown in "
                                 "reports); add --reason \"...\", e.g. --reason \"medical\""))
    return value, reason


def late_note(record: GradeRecord) -> str | None:
    """The sentence a results.json shows for a late submission (None: not late)."""
    if record.late_multiplier == 1.0 and not record.late_days:
        return None
    return _n("Late by {n} day: the score is multiplied by {multiplier}.",
              "Late by {n} days: the score is multiplied by {multiplier}.",
              record.late_days, multiplier=f"{record.late_multiplier:g}")


def extension_note(days: float, reason: str) -> str:
    """The sentence a report and a results.json show for an extension."""
    return _("Extension of {days} day(s) granted ({reason}): lateness counts from the "
             "extended due date.", days=f"{days:g}", reason=reason or _("no reason recorded"))


def override_note(record: GradeRecord) -> str | None:
    """The sentence a results.json shows for an instructor's override (None: none)."""
    if record.override_points is None:
        return None
    points = f"{record.override_points:g}"
    if not record.override_reason:
        return _("Instructor override: {points} points.", points=points)
    return _("Instructor override: {points} points. {reason}", points=points,
             reason=record.override_reason)
