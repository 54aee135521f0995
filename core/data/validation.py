"""First-time validation: run once before the loop; registers nothing.

Checks the config against the calendar and the store: exchange known, dates
inside the calendar, data present for every symbol, day and interval asked
for; chooses the base interval and lists the derived ones.

The data a run will read (its symbols, its dates with their trailing history,
the base interval) gets the store health checks of ``core.data.checks``, cheaply:
the files' footers (schema, row-group statistics) and the rows the run reads
first (read here, as the run's loader would, and left in the store's
``last_read`` for the run to take over) are screened; only a symbol they point
at is read again, to name the file, count and give an example.  What
would corrupt a run is an error (exit 4), the rest a warning (severities in
``core.data.checks``).  Coverage counts bars as the run places them: on the bar
grid, a minute stored twice once.

The checks of user classes (scanners, strategies: they import user code and know
the engine) are not made here: the caller hands them in (``check_classes``, in
practice ``core.engine.assembly.check_classes``), and they run where they always
ran, once the calendar is known.
"""

from __future__ import annotations

import datetime as dt
import difflib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np

from calendars import CalendarError, Interval, SessionPlan, TradingCalendar
from calendars.intervals import SUPPORTED
from calendars.timefmt import local_hhmm, local_iso
from core.config import UNIVERSE, SessionConfig
from core.data import checks as datacheck
from core.data.loader import DayLoader
from core.data.store import BarRows, ParquetStore, StoreRead
from core.errors import BacktestError, ConfigError, DataError
from core.model.bars import FIELDS, PRICES, usable_rows

# Calendar rules are trusted within these dates; outside them a date is refused.
FIRST_SUPPORTED = dt.date(1970, 1, 1)
LAST_SUPPORTED = dt.date(2099, 12, 31)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding; ``kind`` is the error it is (the command line maps it to an exit code)."""

    message: str
    where: str = ""
    hint: str = ""
    kind: type[BacktestError] = ConfigError  # or DataError: the data is missing or invalid

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}. Hint: {self.hint}" if self.hint else text


@dataclass(slots=True)
class ValidationReport:
    """What validation found; ``valid`` when there are no errors."""

    exchange: str
    symbols: list[str]
    requested_intervals: list[str]
    sessions: list[dt.date] = field(default_factory=list)
    base_interval: str | None = None
    derived_intervals: list[str] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    coverage: dict[str, dict[dt.date, tuple[int, int]]] = field(default_factory=dict)
    calendar: TradingCalendar | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    def error(self) -> BacktestError | None:
        """The report as one error, None when valid: a DataError when any problem is about the
        data (the first of those), else a ConfigError of the first problem."""
        if not self.errors:
            return None
        first = next((p for p in self.errors if p.kind is DataError), self.errors[0])
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return first.kind(first.message + more, where=first.where, hint=first.hint)

    def raise_if_invalid(self) -> None:
        error = self.error()
        if error is not None:
            raise error


ClassCheck = Callable[[SessionConfig], list[Problem]]  # see validate(check_classes=)


def validate(
    config: SessionConfig,
    days_limit: int | None = None,
    store: ParquetStore | None = None,
    replay: bool = False,
    *,
    check_classes: ClassCheck | None = None,
) -> ValidationReport:
    """Check ``config`` and its data; never registers, builds or streams anything.

    ``replay``: the config replays days of a run that validated as a whole; a symbol
    with no bars on them is then a warning, as it was in that run, not an error.

    ``store``: the run's own store, so that its connection (and DuckDB's cache of the
    files' metadata) serves the run too; without one, a store is opened and closed here.
    The first days a run reads are read here (the coverage is counted from them); with
    the run's store they stay in ``store.last_read`` for its loader to take over.

    ``check_classes``: the checks of the config's scanner and strategy classes
    (``core.engine.assembly.check_classes``); called once the calendar is known, its
    problems reported as errors.  Without it, the classes are not checked.
    """
    report = ValidationReport(
        exchange=config.session.exchange,
        symbols=list(config.streams.symbols),
        requested_intervals=list(config.streams.intervals),
    )
    calendar = _calendar(config, report)
    if calendar is None:
        return report
    report.calendar = calendar
    report.sessions = _sessions(config, calendar, days_limit, report)
    _check_times(config, calendar, report)
    if check_classes is not None:
        report.errors += check_classes(config)
    if store is not None:
        _check_store(config, store, report, replay)
        return report
    own = ParquetStore(Path(config.data.dir))
    try:
        _check_store(config, own, report, replay=replay)
    finally:
        own.close()
    return report


def _calendar(config: SessionConfig, report: ValidationReport) -> TradingCalendar | None:
    session = config.session
    last = session.end or session.start + dt.timedelta(days=7 * ((session.days or 1) // 5 + 2))
    for label, day in (("session.start", session.start), ("session.end", session.end)):
        if day is not None and not (FIRST_SUPPORTED <= day <= LAST_SUPPORTED):
            report.errors.append(
                Problem(
                    f"{day} is outside the supported calendar range {FIRST_SUPPORTED} .. {LAST_SUPPORTED}",
                    where=label,
                    hint="choose dates the exchange calendar covers",
                )
            )
            return None
    # Cover the trailing history too: ~7 calendar days hold >= 5 sessions, plus holidays.
    back = dt.timedelta(days=config.historical.trailing_days * 7 // 5 + 15)
    try:
        return TradingCalendar(session.exchange, max(session.start - back, FIRST_SUPPORTED), last)
    except CalendarError as exc:
        report.errors.append(Problem(exc.message, where="session.exchange", hint=exc.hint))
        return None


def _sessions(
    config: SessionConfig,
    calendar: TradingCalendar,
    days_limit: int | None,
    report: ValidationReport,
) -> list[dt.date]:
    session = config.session
    if session.end is not None:
        sessions = calendar.sessions_in_range(session.start, session.end)
    else:
        sessions = calendar.sessions_from(session.start, session.days or 1)
    if days_limit is not None:
        sessions = sessions[:days_limit]
    if not sessions:
        report.errors.append(
            Problem(
                f"no {session.exchange} sessions between {session.start} and {session.end}",
                where="session.start",
                hint="the range holds only weekends or holidays",
            )
        )
    return sessions


def _check_times(config: SessionConfig, calendar: TradingCalendar, report: ValidationReport) -> None:
    """Every exchange-local ``at`` time (insertions, scanners) must fall inside some session.

    A time inside no session of the run would never fire: an error, not a silent no-op.
    One that misses some sessions (an early close, a half day) is a warning naming them.
    """
    if not report.sessions:
        return
    extended = config.session.hours == "extended"
    times = [(f"insert[{n}].at", spec.at) for n, spec in enumerate(config.insert)]
    times += [
        (f"scanners[{n}].at ({spec.name})", at)
        for n, spec in enumerate(config.scanners)
        for at in spec.at
    ]
    if not times:
        return
    plans = [calendar.plan(day) for day in report.sessions]
    for where, at in times:
        missed = [plan.session for plan in plans if plan.local_time_ns(at, extended) is None]
        if not missed:
            continue
        hours = _local_hours(plans[0], extended)
        if len(missed) == len(plans):
            report.errors.append(
                Problem(
                    f"{at.isoformat('minutes')} ({calendar.tz}) is outside every "
                    f"{calendar.exchange} session of the run, so it would never fire",
                    where=where,
                    hint=f"an exchange-local time inside the session ({report.sessions[0]}: {hours})",
                )
            )
        else:
            listed = ", ".join(str(day) for day in missed[:5]) + (" ..." if len(missed) > 5 else "")
            report.warnings.append(
                Problem(
                    f"{at.isoformat('minutes')} ({calendar.tz}) is outside the session on "
                    f"{len(missed)} of {len(plans)} days ({listed}); nothing happens then",
                    where=where,
                )
            )


def _local_hours(plan: SessionPlan, extended: bool) -> str:
    """A session's streamed hours in exchange-local time (``17:00 (previous day)-16:00 America/Chicago``)."""
    spans = []
    for lo, hi in plan.segments_ns(extended):
        ends = []
        for ns in (lo, hi):
            day = (dt.date.fromisoformat(local_iso(ns, plan.tz)[:10]) - plan.session).days
            note = {-1: " (previous day)", 1: " (next day)"}.get(day, "")
            ends.append(f"{local_hhmm(ns, plan.tz)}{note}")
        spans.append("-".join(ends))
    return ", ".join(spans) + f" {plan.tz}"


def choose_base_interval(
    requested: list[Interval], stored: dict[str, set[str]], symbols: list[str]
) -> tuple[Interval | None, list[Interval]]:
    """The largest stored interval (for every symbol) dividing each requested one.

    Returns the base and the requested intervals that cannot be derived from it.
    """
    candidates = [
        Interval.parse(label) for label in SUPPORTED if label in stored and set(symbols) <= stored[label]
    ]
    usable = [c for c in candidates if all(c.divides(r) for r in requested)]
    if usable:
        return max(usable), []
    best = max(candidates, key=lambda c: sum(c.divides(r) for r in requested), default=None)
    if best is None:
        return None, requested
    return best, [r for r in requested if not best.divides(r)]


def _check_store(
    config: SessionConfig,
    store: ParquetStore,
    report: ValidationReport,
    replay: bool = False,
) -> None:
    try:
        store.check_root()
    except DataError as exc:
        report.errors.append(Problem(exc.message, where=exc.where, hint=exc.hint, kind=DataError))
        return
    stored = store.available()
    symbols = list(config.streams.symbols)
    missing = [s for s in symbols if not any(s in syms for syms in stored.values())]
    for symbol in missing:
        report.errors.append(
            Problem(
                f"no data for symbol {symbol}",
                where=str(store.symbol_dir("1m", symbol)),
                hint="import it with `backtest data import` or remove it from streams.symbols",
                kind=DataError,
            )
        )
    if missing:
        return
    requested = config.intervals
    base, underivable = choose_base_interval(requested, stored, symbols)
    if base is None:
        have = {label: sorted(syms) for label, syms in stored.items()}
        report.errors.append(
            Problem(
                "no interval is stored for every symbol",
                where="streams.symbols",
                hint=f"stored: {have}",
                kind=DataError,
            )
        )
        return
    if underivable:
        report.errors.append(
            Problem(
                f"cannot derive {', '.join(map(str, underivable))} from the stored {base} bars",
                where="streams.intervals",
                hint=f"request multiples of {base}, or store a finer interval",
            )
        )
        return
    report.base_interval = base.label
    report.derived_intervals = [r.label for r in requested if r != base]
    _check_other_symbols(config, store, base, stored.get(base.label, set()), report)
    if not report.sessions:
        return
    screen = _DataScreen(config, store, base, report)
    # The footers are read on a thread while the run's first days are read (DuckDB leaves
    # the GIL); files they show cannot be read as bar data explain a failed read.
    with screen.reading_footers():
        try:
            screen.read_first_days(stored.get(base.label, set()))
        except Exception:
            if not screen.wait_for_footers():
                raise
    if screen.fatal:  # no further query of these files would mean anything (or succeed)
        screen.report_findings(report)
        return
    screen.screen_rows()
    _check_coverage(config, store, base, report, replay, screen)
    screen.report_findings(report)


def _check_lookbacks(config: SessionConfig, calendar: TradingCalendar, report: ValidationReport) -> None:
    """Warn when the trailing history cannot fill an indicator's lookback before the open."""
    if not config.indicators or not report.sessions:
        return
    trailing = calendar.previous_sessions(report.sessions[0], config.historical.trailing_days)
    for spec in config.indicators:
        definition = spec.definition()
        sessions = definition.period or 5
        if definition.kind == "rvol" and len(trailing) < sessions:
            report.warnings.append(
                Problem(
                    f"{definition.base_key} averages {sessions} trailing sessions but "
                    f"historical.trailing_days gives {len(trailing)}, so it averages those",
                    where=definition.base_key,
                    hint=f"set historical.trailing_days = {sessions} or lower the period",
                )
            )
        interval = Interval.parse(definition.interval)
        available = sum(calendar.plan(day).expected_bars(interval) for day in trailing)
        needed = definition.lookback  # the day's first bar completes the window
        if available < needed:
            report.warnings.append(
                Problem(
                    f"{definition.base_key} needs {needed} bars of history to be ready at the open; "
                    f"{len(trailing)} trailing session(s) give at most {available}, so it is not ready "
                    "at the open",
                    where=definition.base_key,
                    hint="raise historical.trailing_days or shorten the period",
                )
            )


def _check_other_symbols(
    config: SessionConfig, store: ParquetStore, base: Interval, stored: set[str], report: ValidationReport
) -> None:
    """Symbols an ``[[insert]]`` or a scanner's universe list names must be in the store
    (at the base interval), or the run would fail mid-session."""
    named = [(f"insert[{n}].symbol", spec.symbol) for n, spec in enumerate(config.insert)]
    if config.benchmark.symbol not in (None, UNIVERSE):
        named.append(("benchmark.symbol", config.benchmark.symbol))
    for n, spec in enumerate(config.scanners):
        if isinstance(spec.universe, list):
            named += [(f"scanners[{n}].universe ({spec.name})", symbol) for symbol in spec.universe]
    for where, symbol in named:
        if symbol in stored:
            continue
        close = difflib.get_close_matches(symbol, sorted(stored), n=1)
        report.errors.append(
            Problem(
                f"{symbol} has no {base} bars in the store ({store.symbol_dir(base, symbol)})",
                where=where,
                hint=(f"did you mean {close[0]!r}? " if close else "")
                + "import it with `backtest data import` or remove it",
                kind=DataError,
            )
        )


HOURS_SAMPLE = 5  # sessions whose surroundings are checked for bars outside the exchange's hours


def _check_hours(
    config: SessionConfig,
    store: ParquetStore,
    base: Interval,
    report: ValidationReport,
    inside: np.ndarray,
) -> None:
    """Warn when the data does not look like this exchange's: most bars fall between its
    sessions (another exchange's or another time zone's data), or extended hours are asked
    of a store without pre-market or after-hours bars.

    Looks at the first few sessions of the run and the nights between them (the rows a run
    reads first, so a run answers it from memory); ``inside``: each symbol's bars in the
    regular hours of those sessions.
    """
    calendar = report.calendar
    assert calendar is not None
    symbols = list(config.streams.symbols)
    sessions = report.sessions[:HOURS_SAMPLE]
    if config.historical.trailing_days or len(sessions) == 1:
        sessions = calendar.previous_sessions(sessions[0], 1) + sessions
    plans = [calendar.plan(day) for day in sessions]
    nights = [(a.bounds_ns(True)[1], b.bounds_ns(True)[0]) for a, b in zip(plans, plans[1:], strict=False)]
    nights = [(lo, hi) for lo, hi in nights if hi > lo]
    if nights:
        outside = store.count_in_windows(base, symbols, nights).sum(axis=0)
        first, last = sessions[0], sessions[-1]
        for j, symbol in enumerate(symbols):
            if outside[j] > inside[j]:
                report.warnings.append(
                    Problem(
                        f"most of {symbol}'s bars around {first} .. {last} ({outside[j]:,} against "
                        f"{inside[j]:,} inside the sessions) fall between {calendar.exchange}'s sessions "
                        f"({_local_hours(plans[-1], config.session.hours == 'extended')}), so the run "
                        "would leave them out",
                        where=symbol,
                        hint="is the data another exchange's, or imported in the wrong time zone "
                        "(`data import --tz`)? check session.exchange",
                    )
                )
    if config.session.hours == "extended":
        run_plans = [p for p in plans if p.session in set(report.sessions)]
        extra = [
            span
            for p in run_plans
            for span in ((p.bounds_ns(True)[0], p.open_ns), (p.close_ns, p.bounds_ns(True)[1]))
            if span[1] > span[0]
        ]
        if extra and not store.count_in_windows(base, symbols, extra).any():
            report.warnings.append(
                Problem(
                    f"hours = \"extended\" but the store has no pre-market or after-hours {base} bars "
                    f"for {', '.join(symbols[:5])} on {run_plans[0].session} .. {run_plans[-1].session}: "
                    "the run streams those hours empty",
                    where="session.hours",
                    hint="import extended-hours data, or use hours = \"regular\"",
                )
            )


def _check_coverage(
    config: SessionConfig,
    store: ParquetStore,
    base: Interval,
    report: ValidationReport,
    replay: bool,
    screen: _DataScreen,
) -> None:
    calendar = report.calendar
    assert calendar is not None
    symbols = list(config.streams.symbols)
    plans = [calendar.plan(day) for day in report.sessions]
    counts, off_grid, repeats = _grid_counts(store, base, plans, screen.files, len(symbols), screen.held)
    for j in np.flatnonzero(off_grid | repeats).tolist():
        screen.suspects.add(symbols[j])  # the detail names the files (off-minute or duplicated rows)
    expected = [plan.expected_bars(base) for plan in plans]
    for j, symbol in enumerate(symbols):
        report.coverage[symbol] = {
            plan.session: (int(counts[i, j]), expected[i]) for i, plan in enumerate(plans)
        }
        if counts[:, j].sum() == 0 and not replay:
            first, last = report.sessions[0], report.sessions[-1]
            report.errors.append(
                Problem(
                    f"symbol {symbol} has no {base} bars in regular hours from {first} to {last}",
                    where=str(store.symbol_dir(base, symbol)),
                    hint="check the dates of its files with `backtest data info`",
                    kind=DataError,
                )
            )
    for i, plan in enumerate(plans):
        if counts[i].sum() == 0:
            report.errors.append(
                Problem(
                    f"no {base} bars on {plan.session} for any symbol",
                    where=str(plan.session),
                    hint="import that day or leave it out of the run (session.start/end, --start/--end)",
                    kind=DataError,
                )
            )
        else:
            for j in np.flatnonzero(counts[i] == 0).tolist():
                report.warnings.append(
                    Problem(f"{symbols[j]} has no bars on {plan.session}", where=symbols[j])
                )
    _check_hours(config, store, base, report, counts[:HOURS_SAMPLE].sum(axis=0))
    _check_lookbacks(config, calendar, report)
    trailing = config.historical.trailing_days
    if trailing:
        first_needed = calendar.previous_sessions(report.sessions[0], trailing)
        if first_needed:
            begin = calendar.plan(first_needed[0]).open_ns
            for symbol, first_ns in store.first_bar_ns(base, symbols).items():
                if first_ns > begin:
                    report.warnings.append(
                        Problem(
                            f"trailing window of {trailing} sessions starts {first_needed[0]}, "
                            f"before {symbol}'s data begins",
                            where=symbol,
                            hint="lower historical.trailing_days or import older data",
                        )
                    )


COVERAGE_SESSIONS = 20  # sessions counted at a time (one query each when the run has not read them)


@dataclass(slots=True)
class _Held:
    """The rows a run read first (``[start, end)``, ``symbol`` indexing the run's symbols), and
    which of them it can use (None: all, or not looked at)."""

    rows: BarRows
    start: int
    end: int
    usable: np.ndarray | None = None

    def covers(self, lo: int, hi: int) -> bool:
        return self.start <= lo and hi <= self.end

    def between(self, lo: int, hi: int) -> tuple[BarRows, np.ndarray | None]:
        """The rows starting in ``[lo, hi)`` (views) and their usable mask."""
        a, b = np.searchsorted(self.rows.ts, [lo, hi], side="left")
        part = BarRows(*(getattr(self.rows, name)[a:b] for name in BarRows.__slots__))
        return part, None if self.usable is None else self.usable[a:b]


def _rows_held(last: StoreRead | None, interval: Interval, symbols: list[str]) -> _Held | None:
    """The rows of the store's last read (the run's first chunk) of ``symbols``; None when
    there was none of this interval (the row screen is then skipped and coverage queried;
    the loader still keeps unusable rows off the grid).  The rows are read, never changed.
    """
    if last is None or last.interval != str(interval) or not set(symbols) <= set(last.symbols):
        return None
    start, end, rows, read_symbols = last.start_ns, last.end_ns, last.rows, last.symbols
    if read_symbols != symbols:  # the run also reads symbols of insertions and scanners
        wanted = {s: i for i, s in enumerate(symbols)}
        remap = np.array([wanted.get(s, -1) for s in read_symbols], dtype=np.int64)[rows.symbol]
        keep = remap >= 0
        rows = BarRows(remap[keep].astype(np.int32), *(getattr(rows, n)[keep] for n in BarRows.__slots__[1:]))
    return _Held(rows, start, end)


def _grid_counts(
    store: ParquetStore,
    base: Interval,
    plans: list[SessionPlan],
    files: list[tuple[Path, int]],
    k: int,
    held: _Held | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Base bars present per (session, symbol) as the run places them (on the grid of the
    regular hours, with usable values, a minute held twice once), and per symbol the rows
    inside the regular hours that the run leaves out for their time: off the bar grid (a ts
    not on the minute) or repeating a minute already held.

    COVERAGE_SESSIONS sessions at a time: from the rows the run already read when they
    cover them, else from one query of their bar starts over ``files`` (path, symbol index).
    """
    counts = np.zeros((len(plans), k), dtype=np.int64)
    off_grid = np.zeros(k, dtype=np.int64)
    repeats = np.zeros(k, dtype=np.int64)
    for first in range(0, len(plans), COVERAGE_SESSIONS):
        batch = plans[first : first + COVERAGE_SESSIONS]
        lo, hi = batch[0].open_ns, batch[-1].close_ns
        if held is not None and held.covers(lo, hi):
            rows, usable = held.between(lo, hi)
            ts, sym = rows.ts, rows.symbol
        else:
            ts, sym = _stored_starts(store, base, files, lo, hi)
            usable = None
        found = _count_on_grid(ts, sym, usable, batch, base, k)
        counts[first : first + len(batch)] = found[0]
        off_grid += found[1]
        repeats += found[2]
    return counts, off_grid, repeats


def _stored_starts(
    store: ParquetStore, base: Interval, files: list[tuple[Path, int]], lo: int, hi: int
) -> tuple[np.ndarray, np.ndarray]:
    """Bar starts in ``[lo, hi)`` of ``files`` and each one's symbol index, sorted by start
    (the query a count of rows in windows makes: one per COVERAGE_SESSIONS sessions)."""
    if not files:
        return np.empty(0, np.int64), np.empty(0, np.int32)
    names = [str(path) for path, _ in files]
    sql = f"""
        SELECT (?::INTEGER[])[list_position(?::VARCHAR[], filename)] AS sym, epoch_ns(ts) AS t
        FROM {datacheck.parquet_source([path for path, _ in files])}
        WHERE ts >= make_timestamptz(?::BIGINT) AND ts < make_timestamptz(?::BIGINT)
    """
    params: list[object] = [[owner for _, owner in files], names, lo // 1000, hi // 1000]
    try:
        cols = store.connection.execute(sql, params).fetchnumpy()
    except duckdb.Error as exc:
        raise DataError(
            f"cannot read {base} bars: {str(exc).splitlines()[0]}",
            where=str(store.root),
            hint="a Parquet file may be corrupt; `backtest data check` names it",
        ) from exc
    # each file's rows come sorted: a stable sort only merges them
    order = np.argsort(cols["t"], kind="stable")
    return cols["t"][order].astype(np.int64), np.ma.getdata(cols["sym"])[order].astype(np.int32)


def _count_on_grid(
    ts: np.ndarray,
    sym: np.ndarray,
    usable: np.ndarray | None,
    plans: list[SessionPlan],
    base: Interval,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``_grid_counts`` of some sessions from rows sorted by start, placed as
    ``BarBlock.from_rows`` places them.  A segment's grid starts at the segment's start, one
    bar every interval (``bar_grid``), so a row's place is arithmetic on its segment's slice
    of the rows: no search over the grid."""
    step = base.nanoseconds
    cells, kept, off_grid = [], [], np.zeros(k, dtype=np.int64)
    offset, bounds = 0, [0]
    for plan in plans:
        for n, (lo, hi) in enumerate(plan.segments_ns()):
            # a 1d bar is one bar per session, at the open
            size = (1 if n == 0 else 0) if base.is_daily else -(-(hi - lo) // step)
            a, b = np.searchsorted(ts, [lo, hi], side="left")
            slot = (ts[a:b] - lo) // step  # (a multiply checks the rest: cheaper than divmod)
            on = (slot * step + lo == ts[a:b]) & (slot < size)
            segment_sym = sym[a:b]
            if not on.all():
                off_grid += np.bincount(segment_sym[~on], minlength=k)
                slot, segment_sym = slot[on], segment_sym[on]
            cells.append((slot + offset) * k + segment_sym)
            if usable is not None:
                kept.append(usable[a:b][on])
            offset += size
        bounds.append(offset)
    cell = np.concatenate(cells) if cells else np.empty(0, np.int64)
    stored = np.bincount(cell, minlength=offset * k).reshape(offset, k)
    placed = stored if usable is None else np.bincount(cell[np.concatenate(kept)], minlength=offset * k)
    present = placed.reshape(offset, k) > 0
    # rows beyond the first at a minute: on-grid rows less the minutes they fill
    repeats = stored.sum(axis=0) - (stored > 0).sum(axis=0)
    edges = np.array(bounds)
    counts = np.zeros((len(plans), k), dtype=np.int64)
    filled = edges[1:] > edges[:-1]  # (reduceat needs rows in each session; all have some)
    if offset:
        counts[filled] = np.add.reduceat(present, edges[:-1][filled], axis=0, dtype=np.int64)
    return counts, off_grid, repeats


class _DataScreen:
    """The store health checks of ``core.data.checks`` on what a run will read, cheaply.

    1. The footers of the symbols' files (read on a thread while the run's first days
       are read): schema problems are reported as they are; the row-group statistics of
       the rows in the run's span (nulls, min/max) and the price ranges of whole files
       (another symbol's file) flag symbols.
    2. The rows the run read first (NaN never shows in statistics): values a run cannot
       use, high/low inconsistent with open/close.
    3. Coverage (``_grid_counts``): rows off the grid, minutes stored twice.

    Then each flagged symbol's files are checked in the span (``datacheck.check_series``):
    the findings name the file, the count and an example.  A clean store costs the
    footers and a few vector operations on rows already in memory.
    """

    def __init__(self, config: SessionConfig, store: ParquetStore, base: Interval, report: ValidationReport):
        calendar = report.calendar
        assert calendar is not None
        self._config = config
        self._store = store
        self._base = base
        self._calendar = calendar
        self._sessions = report.sessions
        self.symbols = list(config.streams.symbols)
        # the run reads from the first trailing session (pre-market included for scanners)
        first = calendar.previous_sessions(report.sessions[0], config.historical.trailing_days)[:1]
        self.span = (
            calendar.plan((first or report.sessions)[0]).bounds_ns(True)[0],
            calendar.plan(report.sessions[-1]).bounds_ns(True)[1],
        )
        self.footers: dict[str, list[datacheck.Footer]] = {}
        self.suspects: set[str] = set()
        self.held: _Held | None = None
        self.findings: list[tuple[str, datacheck.FileHealth]] = []
        self._reader: threading.Thread | None = None
        self._failure: BaseException | None = None

    @contextmanager
    def reading_footers(self) -> Iterator[None]:
        """Read and screen the footers on a thread for the duration of the block."""
        self._reader = threading.Thread(target=self._read_footers, name="footers", daemon=True)
        self._reader.start()
        try:
            yield
        finally:
            self.wait_for_footers()
        if self._failure is not None:
            raise self._failure

    def wait_for_footers(self) -> bool:
        """Wait for the footers; whether they show a file that cannot be read as bar data."""
        if self._reader is not None:
            self._reader.join()
        return self.fatal

    def _read_footers(self) -> None:
        try:
            for symbol in self.symbols:
                files = datacheck.parquet_files(self._store.symbol_dir(self._base, symbol))
                found = [datacheck.read_footer(path, self.span, stats=True) for path in files]
                self.footers[symbol] = found
                self._screen_footers(symbol, found)
        except BaseException as exc:  # noqa: BLE001 - raised in the caller's thread
            self._failure = exc

    @property
    def files(self) -> list[tuple[Path, int]]:
        """The readable files of the run's symbols and each one's index in ``symbols``."""
        return [
            (footer.path, j)
            for j, symbol in enumerate(self.symbols)
            for footer in self.footers.get(symbol, [])
            if footer.schema is not None
        ]

    @property
    def fatal(self) -> bool:
        """Whether some file cannot be read as bar data (an error in a footer: unreadable,
        a column missing or of a wrong type, a naive ts)."""
        return any(h.severity == datacheck.ERROR for _, h in self.findings)

    def _screen_footers(self, symbol: str, footers: list[datacheck.Footer]) -> None:
        for footer in footers:
            found = datacheck.footer_findings(footer, self._store.root)
            for finding in found:
                if finding.kind == "naive_timestamp":
                    finding.count = footer.rows_in_span
            if found:
                rows = footer.rows if footer.schema else None
                label, name = self._base.label, footer.path.name
                health = datacheck.FileHealth(label, symbol, footer.path, name, rows, found)
                self.findings.append((symbol, health))
            if datacheck.footer_suspect(footer, symbol):
                self.suspects.add(symbol)
        ranges = {f.path: (f.rows, *f.close_range) for f in footers if f.close_range is not None and f.rows}
        spanned = {f.path for f in footers if f.rows_in_span}
        if spanned & set(datacheck.foreign_files(ranges)):
            self.suspects.add(symbol)

    def read_first_days(self, stored: set[str]) -> None:
        """Read the days a run reads first, as its loader would (its symbols, pre-market rows
        when it scans); what scanners read beyond ``trailing_days`` the run reads itself.
        ``stored``: the store's symbols at the base interval."""
        calendar, sessions = self._calendar, self._sessions
        DayLoader.for_run(self._config, self._store, calendar, self._base, sessions, stored=stored).prefetch()

    def screen_rows(self) -> None:
        """Flag the symbols whose rows already read hold a value the run cannot use, or high
        and low inconsistent with open and close (vector operations, no query)."""
        self.held = _rows_held(self._store.last_read, self._base, self.symbols)
        if self.held is None or not len(self.held.rows):
            return
        rows = self.held.rows
        o, h, lo, c = (np.ma.getdata(getattr(rows, name)) for name in PRICES)
        with np.errstate(invalid="ignore"):
            flagged = (h < np.fmax(o, c)) | (lo > np.fmin(o, c))
        # The footers' statistics flag nulls, infinities, prices <= 0 or absurd and negative
        # volumes; NaN never shows there, and a sum is NaN when a value is: five sums (cheaper
        # than usable_rows' ten min/max) decide whether the rows are looked at one by one.
        with np.errstate(invalid="ignore", over="ignore"):
            sums = [getattr(rows, name).sum() for name in FIELDS]
        if self.suspects or not all(np.isfinite(total) for total in sums):
            self.held.usable = usable_rows(rows)
        if self.held.usable is not None:
            flagged |= ~self.held.usable
        for j in np.unique(rows.symbol[flagged]).tolist():
            self.suspects.add(self.symbols[j])

    def report_findings(self, report: ValidationReport) -> None:
        """Check each flagged symbol's files in the span; every finding becomes a Problem."""
        for symbol in sorted(self.suspects):
            paths = [f.path for f in self.footers.get(symbol, []) if f.schema is not None]
            for health in datacheck.check_series(
                self._store.connection, self._store.root, self._base.label, symbol, paths, self.span
            ):
                health.findings = [f for f in health.findings if f.kind not in datacheck.FOOTER_KINDS]
                if health.findings:
                    health.file = health.path.name
                    self.findings.append((symbol, health))
        for symbol, health in self.findings:
            for finding in health.findings:
                problem = _data_problem(symbol, health, finding)
                (report.errors if finding.severity == datacheck.ERROR else report.warnings).append(problem)


def _data_problem(symbol: str, health: datacheck.FileHealth, finding: datacheck.Finding) -> Problem:
    """``SYM: FILE: 2 rows with a NaN or infinite price, e.g. row 3 (ts): close = nan``."""
    return Problem(
        f"{symbol}: {health.file}: {finding.text}",
        where=str(health.path),
        hint=finding.hint,
        kind=DataError,
    )
