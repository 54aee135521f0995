"""Bar intervals: parsed once at the boundary, typed everywhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Time units, in the nanoseconds every timestamp of the project is counted in.
NS_PER_SECOND = 1_000_000_000
NS_PER_MINUTE = 60 * NS_PER_SECOND

_PATTERN = re.compile(r"^(\d+)(m|h|d)$")
_MINUTES = {"m": 1, "h": 60, "d": 24 * 60}

# The intervals the store and the engine know, smallest first.
SUPPORTED = ("1m", "2m", "3m", "5m", "10m", "15m", "30m", "1h", "1d")


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A bar length in minutes; ``1d`` is one whole session (regular hours)."""

    minutes: int
    label: str

    @classmethod
    def parse(cls, text: str) -> Interval:
        """The interval labelled ``text``: exactly one of :data:`SUPPORTED` (surrounding blanks aside).

        The unit is case-sensitive: ``1M`` might mean a month to its writer, so
        it is refused rather than read as one minute.
        """
        label = text.strip()
        match = _PATTERN.match(label)
        if match is None or label not in SUPPORTED:
            raise ValueError(_unknown_interval(text))
        count, unit = int(match.group(1)), match.group(2)
        return cls(count * _MINUTES[unit], label)

    @property
    def is_daily(self) -> bool:
        return self.label == "1d"

    @property
    def nanoseconds(self) -> int:
        return self.minutes * NS_PER_MINUTE

    def divides(self, other: Interval) -> bool:
        """Whether bars of ``other`` can be built from bars of this interval."""
        if other.is_daily:
            return not self.is_daily or self == other
        return not self.is_daily and other.minutes % self.minutes == 0

    def __str__(self) -> str:
        return self.label


def _unknown_interval(text: str) -> str:
    """Why ``text`` is no interval, with the label the writer most likely meant."""
    label = text.strip()
    known = f"use one of {', '.join(SUPPORTED)}"
    if label == label.lower():
        return f"unknown interval {text!r}; {known}"
    lower_case = "intervals are m, h or d in lower case, e.g. 1m"
    if label.lower() in SUPPORTED and not label.endswith("M"):  # 1H, 1D: only the case is off
        return f"unknown interval {text!r}: {lower_case} (did you mean {label.lower()!r}?)"
    if label.endswith("M"):  # 1M: minutes or a month? never guess
        return f"unknown interval {text!r}: M is not a unit (months are not supported); {lower_case}; {known}"
    return f"unknown interval {text!r}: {lower_case}; {known}"
