"""Times as text: every way the project writes a UTC nanosecond timestamp.

Timestamps are UTC nanoseconds everywhere inside; they become text only on the way
out (JSON documents, tables, messages), through these functions.  The units are
:data:`~calendars.intervals.NS_PER_SECOND` and :data:`~calendars.intervals.NS_PER_MINUTE`.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np

from calendars.intervals import NS_PER_MINUTE, NS_PER_SECOND

_MINUTES_PER_DAY = 24 * 60
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def iso(ns: int) -> str:
    """ISO-8601 in UTC to the second, with its offset: ``2023-11-24T14:30:00+00:00``."""
    return iso_many(np.array([ns], dtype=np.int64))[0]


def iso_many(ns: np.ndarray) -> list[str]:
    """:func:`iso` of many UTC nanosecond times at once."""
    text = np.datetime_as_string(ns.astype("datetime64[ns]"), unit="s")
    return [f"{t}+00:00" for t in text.tolist()]


def iso_us(ns: int) -> str:
    """ISO-8601 in UTC to the microsecond, the fraction only when there is one:
    ``2023-11-24T14:30:00+00:00``, ``2023-11-24T14:30:00.250000+00:00`` (a time off the minute)."""
    return (_EPOCH + dt.timedelta(microseconds=int(ns) // 1000)).isoformat()


def local_iso(ns: int, tz: str) -> str:
    """ISO-8601 in the zone ``tz`` to the microsecond, with its offset: ``2023-11-24T09:30:00-05:00``."""
    return (_EPOCH + dt.timedelta(microseconds=int(ns) // 1000)).astimezone(ZoneInfo(tz)).isoformat()


def hhmm(ns: int) -> str:
    """The UTC time of day, ``HH:MM``."""
    minute = int(ns) // NS_PER_MINUTE % _MINUTES_PER_DAY
    return f"{minute // 60:02d}:{minute % 60:02d}"


def local_hhmm(ns: int, tz: str) -> str:
    """The time of day in the zone ``tz`` (an exchange's), ``HH:MM``."""
    return dt.datetime.fromtimestamp(int(ns) // NS_PER_SECOND, tz=ZoneInfo(tz)).strftime("%H:%M")


def date_hhmm(ns: int) -> str:
    """The UTC date and time of day, ``YYYY-MM-DD HH:MM``."""
    return dt.datetime.fromtimestamp(int(ns) // NS_PER_SECOND, tz=dt.UTC).strftime("%Y-%m-%d %H:%M")


def ns_of_iso(text: str) -> int:
    """The UTC nanoseconds of an ISO-8601 time with an offset (as :func:`iso` writes them)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset")
    return (moment - _EPOCH) // _MICROSECOND * 1000
