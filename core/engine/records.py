"""What the engine records of each day for the results: insertions, pauses, scans (JSON-ready)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from calendars.timefmt import iso


@dataclass(slots=True)
class DayLog:
    """What happened mid-session today: insertions and pauses (kept with the last day)."""

    insertions: list[dict[str, Any]] = field(default_factory=list)
    pauses: list[dict[str, Any]] = field(default_factory=list)


def insertion_record(symbol: str, source: str, now_ns: int, status: str = "inserted") -> dict[str, Any]:
    """One insertion or removal: who, when, asked by whom, and what came of it."""
    return {"symbol": symbol, "clock": iso(now_ns), "source": source, "status": status}


def pause_record(now_ns: int, action: str, reason: str, depth: int) -> dict[str, Any]:
    """One pause or resume of the stream, with the pauses held after it."""
    return {"clock": iso(now_ns), "action": action, "reason": reason, "depth": depth}
