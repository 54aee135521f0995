"""One error hierarchy; every error names what is at fault and hints at a fix.

The command line maps each class to an exit code (see ``cli/errors.py``);
core never exits or prints.
"""

from __future__ import annotations


class BacktestError(Exception):
    """Base of every error the tool reports to its user."""

    exit_code = 5

    def __init__(self, message: str, *, hint: str = "", where: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where  # file[:line], field, symbol or day at fault

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}. Hint: {self.hint}" if self.hint else text


class ConfigError(BacktestError):
    """The session config is missing, malformed or inconsistent."""

    exit_code = 3


class DataError(BacktestError):
    """Market data is missing, unreadable or invalid."""

    exit_code = 4


class SessionError(BacktestError):
    """Something failed while a session was being prepared or streamed."""

    exit_code = 5


class LifecycleError(SessionError):
    """A component was driven through an illegal lifecycle transition."""


class ResultsError(BacktestError):
    """Results could not be written or read."""

    exit_code = 5
