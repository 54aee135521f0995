"""Calendar errors; each keeps the value at fault and says what to do."""

from __future__ import annotations

import datetime as dt
import difflib


class BacktestError(Exception):
    """Base of every error the tool reports to its user (the hierarchy: ``core.errors``).

    Defined here, in the lowest layer, so that calendar errors belong to the one
    hierarchy without the calendars importing the engine.
    """

    def __init__(self, message: str, *, hint: str = "", where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where  # file[:line], field, symbol or day at fault

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}. Hint: {self.hint}" if self.hint else text


class CalendarError(BacktestError):
    """A calendar question that has no answer (bad exchange, date out of range)."""

    def __init__(self, message: str, hint: str = "", where: str = "") -> None:
        super().__init__(message, hint=hint, where=where)

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
