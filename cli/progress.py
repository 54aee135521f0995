"""Progress while a command works, on stderr: a run's days, a sweep's runs, an import.

On a terminal a live status line moves under the finished lines; elsewhere (CI logs,
pipes) the same finished lines are written as plain text and nothing moves.  A run
prints one line per day, at most :data:`WIDTH` columns::

    day 12/250 2023-03-17  23,400 bars  P&L +1,234.56  equity 101,234  0.18 s  ETA 0:00:41

with what happened that day folded in at its end (``early close``, ``dropped X``,
``paused 2x (scan gappers, insert JPM)``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from calendars.timefmt import local_hhmm
from cli.render import stderr
from core.events import (
    BarsStreamed,
    DayFinished,
    DayResult,
    Event,
    PauseChanged,
    PhaseStarted,
    QualityAlert,
    RunStarted,
)

WIDTH = 100  # a day's line fits this many columns
_BOUNDARY = "bar boundary"  # the outer pause around every mid-session step: says nothing by itself
_STATUS = {1: "tearing down", 2: "loading", 3: "streaming", 4: "closing"}


def clock_text(seconds: float) -> str:
    """``H:MM:SS`` of a duration."""
    whole = int(round(seconds))
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


def day_line(
    index: int,
    days: int,
    result: DayResult,
    *,
    eta: str,
    pauses: int = 0,
    reasons: list[str] | None = None,
    width: int = WIDTH,
) -> str:
    """One finished day in at most ``width`` columns: what a trader watches (bars, P&L, equity),
    the day's time, the ETA, then the day's notes, cut with an ellipsis if they do not fit."""
    parts = [f"day {index + 1}/{days} {result.session}", f"{result.bars:,} bars"]
    if result.pnl is not None:
        parts.append(f"P&L {result.pnl:+,.2f}")
    if result.equity is not None:
        parts.append(f"equity {result.equity:,.0f}")
    parts += [f"{sum(result.phase_seconds.values()):.2f} s", eta]
    line = "  ".join(parts)
    notes = []
    if result.early_close:
        notes.append("early close")
    if result.dropped:
        notes.append(f"dropped {', '.join(result.dropped)}")
    if pauses:
        said = [r for r in dict.fromkeys(reasons or []) if r != _BOUNDARY]
        notes.append(f"paused {pauses}x" + (f" ({', '.join(said)})" if said else ""))
    if notes:
        line += "  " + "; ".join(notes)
    return line if len(line) <= width else line[: width - 1] + "…"


def phases_line(result: DayResult) -> str:
    """``--verbose``: the day's time per phase and its streaming rate."""
    seconds = result.phase_seconds
    phases = ", ".join(f"{n} {name} {s * 1000:.1f} ms" for n, (name, s) in enumerate(seconds.items(), 1))
    streaming = seconds.get("streaming", 0.0)
    rate = f"; {result.bars / streaming:,.0f} bars/s streaming" if streaming and result.bars else ""
    return f"  phases {phases}{rate}"


class RunProgress:
    """Renders a run's events: a header, one line per finished day, quality warnings.

    ``quiet``: nothing.  ``verbose``: each day's phase times too.  On a terminal a live
    line shows the day in progress (loading, then the bars streamed so far: reset when a
    day starts, so it never shows the last day's values) and the ETA.
    """

    def __init__(self, quiet: bool = False, verbose: bool = False) -> None:
        self._quiet = quiet
        self._verbose = verbose
        self._progress: Progress | None = None
        self._task: Any = None
        self._days = 0
        self._tz: str | None = None
        self._began: float | None = None  # when the first day started (wall clock, for the ETA)
        self._finished = 0
        self._eta = ""
        self._pauses = 0
        self._reasons: list[str] = []

    def __enter__(self) -> RunProgress:
        if stderr.is_terminal and not self._quiet:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=20),
                MofNCompleteColumn(),
                TextColumn("{task.fields[eta]}"),
                console=stderr,
                transient=True,
            )
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, event: Event) -> None:
        if self._quiet:
            return
        if isinstance(event, RunStarted):
            self._started(event)
        elif isinstance(event, PhaseStarted):
            if self._began is None:
                self._began = time.perf_counter()
            if event.phase == 1:  # a new day: nothing of the last one stays on screen
                self._pauses, self._reasons = 0, []
            self._status(f"day {event.day_index + 1}/{event.days} {event.session} {_STATUS[event.phase]}")
        elif isinstance(event, BarsStreamed):
            clock = f" clock {local_hhmm(event.clock_ns, self._tz)}" if self._tz else ""
            self._status(
                f"day {event.day_index + 1}/{self._days} {event.session} streaming "
                f"{event.bars:,}/{event.expected:,} bars{clock}"
            )
        elif isinstance(event, PauseChanged):
            if event.action == "pause":
                if event.depth == 1:  # one pause episode: from the first hold to the last resume
                    self._pauses += 1
                self._reasons.append(event.reason)
        elif isinstance(event, QualityAlert):
            action = "left out of the session" if event.dropped else "kept"
            self._print(
                f"warning: {event.session} {event.symbol}: trailing-history quality {event.score:.4f} "
                f"below quality.min_score {event.min_score:.4f}; {action}"
            )
        elif isinstance(event, DayFinished):
            self._day_finished(event)

    def _started(self, event: RunStarted) -> None:
        self._days = event.days
        self._tz = getattr(event, "tz", None)  # the exchange's zone, when the event carries it
        derived = ", ".join(event.derived_intervals) or "none"
        zone = f", times {self._tz}" if self._tz else ""
        self._print(
            f"run: {event.days} day(s), {event.symbols} symbol(s), base {event.base_interval}, "
            f"derived {derived}{zone}"
        )
        if self._progress is not None:
            self._task = self._progress.add_task("starting", total=event.days, eta="")

    def _day_finished(self, event: DayFinished) -> None:
        self._finished += 1
        elapsed = time.perf_counter() - (self._began or time.perf_counter())
        left = event.days - (event.day_index + 1)
        if left > 0:
            self._eta = f"ETA {clock_text(elapsed / self._finished * left)}"
        else:
            self._eta = f"took {clock_text(elapsed)}"
        result = event.result
        self._print(
            day_line(
                event.day_index, event.days, result, eta=self._eta, pauses=self._pauses, reasons=self._reasons
            )
        )
        if self._verbose:
            self._print(phases_line(result))
        if self._progress is not None:
            self._progress.update(self._task, advance=1, eta=self._eta)

    def _status(self, text: str) -> None:
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def _print(self, text: str) -> None:
        if self._progress is not None:
            self._progress.console.print(text, highlight=False, markup=False, soft_wrap=True)
        else:
            # not a terminal: plain text, written as is (rich's layout costs ~0.5 ms a line)
            stderr.file.write(text + "\n")


class SweepDisplay:
    """A sweep's progress: runs done/failed of the total, the best so far, elapsed and ETA.

    A live line on a terminal; elsewhere a plain line every ``every`` runs and at the end.
    """

    def __init__(self, quiet: bool = False, every: int = 10) -> None:
        self._quiet = quiet
        self._every = every
        self._progress: Progress | None = None
        self._task: Any = None
        self._last = -1

    def __enter__(self) -> SweepDisplay:
        if stderr.is_terminal and not self._quiet:
            self._progress = Progress(
                TextColumn("sweep"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[line]}"),
                TimeElapsedColumn(),
                console=stderr,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("sweep", total=None, line="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def __call__(self, progress: Any) -> None:
        if self._quiet:
            return
        line = self.line(progress)
        if self._progress is not None:
            self._progress.update(self._task, total=progress.total, completed=progress.done, line=line)
        elif progress.done != self._last and (
            progress.done % self._every == 0 or progress.done == progress.total
        ):
            self._last = progress.done
            stderr.file.write(f"sweep {progress.done}/{progress.total} {line}\n")

    def line(self, progress: Any) -> str:
        failed = f"{progress.failed} failed" if progress.failed else "none failed"
        best = "best -"
        if progress.best is not None:
            params = ", ".join(f"{_short(k)}={v}" for k, v in (progress.best_params or {}).items())
            best = f"best {progress.objective} {progress.best:.6g} ({params})"
        eta = progress.eta
        left = f"ETA {clock_text(eta)}" if eta is not None else "ETA -"
        return f"{failed} · {best} · {left}"


def _short(key: str) -> str:
    return key.rsplit(".", 1)[-1]


class ImportProgress:
    """A progress bar of `data import` on a terminal; nothing elsewhere (``advance`` is then None)."""

    def __init__(self) -> None:
        self._bar = (
            Progress(
                TextColumn("import"),
                BarColumn(),
                TaskProgressColumn(),
                TimeElapsedColumn(),
                console=stderr,
                transient=True,
            )
            if stderr.is_terminal
            else None
        )
        self._task: Any = None

    def __enter__(self) -> ImportProgress:
        if self._bar is not None:
            self._bar.__enter__()
            self._task = self._bar.add_task("import", total=1.0)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    @property
    def advance(self) -> Callable[[float], None] | None:
        """The callback the import reports its fraction done to; None without a terminal."""
        return self._update if self._bar is not None else None

    def _update(self, done: float) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)
