"""What every export format shares: its error, and how numbers, times and lists are shown."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

PROBLEMS_EXIT = 3  # exit status when some students could not be exported (listed on stderr)


class ExportError(ValueError):
    """An export that cannot be made; the message names what was asked and what exists."""


def listing(names: Sequence[str]) -> str:
    return ", ".join(names[:20]) + (f", ... ({len(names) - 20} more)"
                                    if len(names) > 20 else "") if names else "none"


def num(value: float) -> str:
    """A number's cell; a non-finite one is left empty (an LMS import skips it)."""
    number = float(value)
    return format(round(number, 4), "g") if math.isfinite(number) else ""


def moment(value: datetime | None) -> str:
    return value.isoformat(timespec="seconds") if value is not None else ""
