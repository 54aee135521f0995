"""One error hierarchy; every error names what is at fault and hints at a fix.

The command line maps each class to an exit code in one table
(``cli/errors.py``); core never exits or prints.
"""

from __future__ import annotations

from calendars.errors import BacktestError, CalendarError

__all__ = [
    "BacktestError",
    "CalendarError",
    "ConfigError",
    "ConsentError",
    "DataError",
    "LifecycleError",
    "NoResultsError",
    "NotInRunError",
    "ResultsError",
    "SessionError",
]


class ConfigError(BacktestError):
    """The session config is missing, malformed or inconsistent."""


class DataError(BacktestError):
    """Market data is missing, unreadable or invalid."""


class SessionError(BacktestError):
    """Something failed while a session was being prepared or streamed."""


class LifecycleError(SessionError):
    """A component was driven through an illegal lifecycle transition."""


class ResultsError(BacktestError):
    """Results could not be written or read."""


class NoResultsError(ResultsError):
    """There is no run to read yet (or not the one asked for)."""


class NotInRunError(BacktestError):
    """A day asked of a run is not one of its sessions (a holiday, or outside its range)."""


class ConsentError(BacktestError):
    """An action would run code named by a file the user did not write; it needs their say-so."""
