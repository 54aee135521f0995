"""Calendar errors; each keeps the value at fault and says what to do."""

from __future__ import annotations

import datetime as dt
import difflib


class CalendarError(Exception):
    """A calendar question that has no answer (bad exchange, date out of range)."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UnknownExchange(CalendarError):
    def __init__(self, exchange: str, known: list[str]) -> None:
        close = difflib.get_close_matches(exchange.upper(), known, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "use an exchange_calendars code such as XNYS"
        super().__init__(f"unknown exchange {exchange!r}", hint)
        self.exchange = exchange


class DateOutOfBounds(CalendarError):
    def __init__(self, day: dt.date, first: dt.date, last: dt.date) -> None:
        super().__init__(
            f"{day} is outside the calendar ({first} .. {last})",
            "choose dates inside the calendar's range",
        )
        self.day = day
