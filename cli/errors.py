"""Exit codes, decided in one place (the README's table is this one).

Every non-zero exit prints one paragraph naming what is at fault; --debug
adds the traceback.
"""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from typing import Any

import typer

from calendars import CalendarError
from cli import render
from core.errors import (
    BacktestError,
    ConfigError,
    DataError,
    NoResultsError,
    NotInRunError,
    ResultsError,
    SessionError,
)

EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_DATA = 4
EXIT_SESSION = 5
EXIT_INTERRUPTED = 130

# The first class an error is an instance of decides its code (subclasses before bases).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (NotInRunError, EXIT_USAGE),  # inspect-day of a holiday or of a day outside the run
    (ConfigError, EXIT_CONFIG),
    (CalendarError, EXIT_CONFIG),  # an unknown exchange, dates outside the calendar
    (NoResultsError, EXIT_DATA),  # inspect / report before any run (or of a run not there)
    (DataError, EXIT_DATA),
    (SessionError, EXIT_SESSION),
    (ResultsError, EXIT_SESSION),  # results not writable or unreadable
    (BacktestError, EXIT_SESSION),
)


def exit_code_of(exc: BaseException) -> int:
    """The exit code of an error the tool reports (anything unexpected is a session failure)."""
    return next((code for cls, code in EXIT_CODES if isinstance(exc, cls)), EXIT_SESSION)


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
        except KeyboardInterrupt:
            render.error("interrupted; earlier results were left as they were")
            raise typer.Exit(EXIT_INTERRUPTED) from None
        except (BacktestError, CalendarError) as exc:
            _report(exc)
            raise typer.Exit(exit_code_of(exc)) from None
        except Exception as exc:  # a bug of ours: still one paragraph, never a bare traceback
            _report(exc, prefix=f"internal error ({type(exc).__name__}): ")
            raise typer.Exit(EXIT_SESSION) from None
        raise typer.Exit(code or 0)

    return wrapper


def _report(exc: BaseException, prefix: str = "") -> None:
    if _debug():
        render.stderr.print(traceback.format_exc(), markup=False, highlight=False)
    hint = "" if _debug() or not prefix else " (run with --debug for the traceback)"
    render.error(f"{prefix}{exc}{hint}")
