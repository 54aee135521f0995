"""Exit codes, decided in one place (the README's table is this one).

Every non-zero exit prints one paragraph naming what is at fault; --debug
adds the traceback.

Nothing heavy is imported here at start-up: the error classes (and with them the
calendars and pandas) are imported when an error is mapped to its code, so
`backtest --help` does not pay for them.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from typing import Any, NoReturn

import typer

EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_DATA = 4
EXIT_SESSION = 5
EXIT_SOME_RUNS_FAILED = 6  # a sweep finished, but some of its runs failed (each recorded with its error)
EXIT_INTERRUPTED = 130


class CommandLineError(Exception):
    """A command cannot do what it was asked as given (exit 2): what is at fault and what to do.

    For the command line's own refusals (``init`` into a folder that already holds a project);
    errors of the config, data or a run are core's (:mod:`core.errors`).
    """

    def __init__(self, message: str, *, where: str = "", hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.where = where
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}. Hint: {self.hint}" if self.hint else text


@functools.cache
def _exit_codes() -> tuple[tuple[type[BaseException], int], ...]:
    """The table: the first class an error is an instance of decides its code (subclasses
    before bases).  Built on first use: importing the classes imports the calendars."""
    from calendars import CalendarError, ClockError
    from core.errors import (
        BacktestError,
        ConfigError,
        ConsentError,
        DataError,
        NoResultsError,
        NotInRunError,
        ResultsError,
        SessionError,
    )

    return (
        (CommandLineError, EXIT_USAGE),  # the command line's own refusals (init over a project)
        (NotInRunError, EXIT_USAGE),  # inspect-day of a holiday or of a day outside the run
        (ConsentError, EXIT_USAGE),  # inspect-day of a run with code, without --run-code
        (ConfigError, EXIT_CONFIG),
        (ClockError, EXIT_SESSION),  # the clock asked to go back or past the close: a session failure
        (CalendarError, EXIT_CONFIG),  # an unknown exchange, dates outside the calendar
        (NoResultsError, EXIT_DATA),  # inspect / report before any run (or of a run not there)
        (DataError, EXIT_DATA),
        (SessionError, EXIT_SESSION),
        (ResultsError, EXIT_SESSION),  # results not writable or unreadable
        (BacktestError, EXIT_SESSION),
    )


def __getattr__(name: str) -> Any:
    # ``EXIT_CODES`` is the table above, built when first asked for (PEP 562)
    if name == "EXIT_CODES":
        return _exit_codes()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def exit_code_of(exc: BaseException) -> int:
    """The exit code of an error the tool reports (anything unexpected is a session failure)."""
    return next((code for cls, code in _exit_codes() if isinstance(exc, cls)), EXIT_SESSION)


# Typer raises these for usage errors and exits; they pass through untouched.  Found
# through the MRO because Typer may bundle its own copy of click.
_USAGE_ERRORS: tuple[type[BaseException], ...] = (
    typer.Exit,
    typer.Abort,
    *(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


def _debug() -> bool:
    return os.environ.get("BACKTEST_DEBUG") == "1"


def handled(command: Callable[..., int]) -> Callable[..., None]:
    """Run ``command``; turn its result or error into the CONTRACT exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            code = command(*args, **kwargs)
        except _USAGE_ERRORS:
            raise
        except KeyboardInterrupt as exc:
            _say(interrupted_message(exc))
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except Exception as exc:
            if not _interrupted(exc):
                _fail(exc)
            _say(interrupted_message(exc))
            raise typer.Exit(EXIT_INTERRUPTED) from None
        raise typer.Exit(code or 0)

    return wrapper


NOTHING_WRITTEN = "nothing was written; earlier results and data are as they were"


def interrupted_message(exc: BaseException) -> str:
    """One line for Ctrl-C: what was and was not written (an interrupt may say it; else nothing)."""
    said = next((str(e) for e in _chain(exc) if isinstance(e, KeyboardInterrupt) and str(e)), "")
    return f"interrupted; {said or NOTHING_WRITTEN}"


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and the exceptions it was raised from or while handling."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _interrupted(exc: BaseException) -> bool:
    """Ctrl-C, also when it landed inside a DuckDB query (raised as its InterruptException and
    perhaps wrapped in one of ours)."""
    return any(
        isinstance(e, KeyboardInterrupt) or type(e).__name__ == "InterruptException" for e in _chain(exc)
    )


def _fail(exc: Exception) -> NoReturn:
    """Report an error as one paragraph and exit with its code (called while it is handled)."""
    from calendars.errors import BacktestError

    if isinstance(exc, BacktestError | CommandLineError):
        _report(exc)
        raise typer.Exit(exit_code_of(exc)) from None
    _report(exc, prefix=f"internal error ({type(exc).__name__}): ")  # a bug of ours: still one paragraph
    raise typer.Exit(EXIT_SESSION) from None


def _report(exc: BaseException, prefix: str = "") -> None:
    from cli import render

    if _debug():
        render.stderr.print(traceback.format_exc(), markup=False, highlight=False)
    hint = "" if _debug() or not prefix else " (run with --debug for the traceback)"
    render.error(f"{prefix}{exc}{hint}")


def _say(message: str) -> None:
    from cli import render

    render.error(message)
