"""Bar intervals: parsed once at the boundary, typed everywhere else."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        match = _PATTERN.match(text.strip().lower())
        if not match or text.strip().lower() not in SUPPORTED:
            raise ValueError(f"unknown interval {text!r}; use one of {', '.join(SUPPORTED)}")
        count, unit = int(match.group(1)), match.group(2)
        return cls(count * _MINUTES[unit], text.strip().lower())

    @property
    def is_daily(self) -> bool:
        return self.label == "1d"

    @property
    def nanoseconds(self) -> int:
        return self.minutes * 60_000_000_000

    def divides(self, other: Interval) -> bool:
        """Whether bars of ``other`` can be built from bars of this interval."""
        if other.is_daily:
            return not self.is_daily or self == other
        return not self.is_daily and other.minutes % self.minutes == 0

    def __str__(self) -> str:
        return self.label
