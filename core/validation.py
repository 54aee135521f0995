"""First-time validation: run once before the loop; registers nothing.

Checks the config against the calendar and the store: exchange known, dates
inside the calendar, data present for every symbol, day and interval asked
for; chooses the base interval and lists the derived ones.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from calendars import CalendarError, Interval, SessionPlan, TradingCalendar
from calendars.intervals import SUPPORTED
from core.config import SessionConfig
from core.errors import ConfigError, DataError
from core.store import ParquetStore

# Calendar rules are trusted within these dates; outside them a date is refused.
FIRST_SUPPORTED = dt.date(1970, 1, 1)
LAST_SUPPORTED = dt.date(2099, 12, 31)


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding; ``exit_code`` says how the command line reports it."""

    message: str
    where: str = ""
    hint: str = ""
    exit_code: int = 3

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

    @property
    def exit_code(self) -> int:
        return max((p.exit_code for p in self.errors), default=0)

    def raise_if_invalid(self) -> None:
        if self.errors:
            first = self.errors[0]
            more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
            cls = DataError if first.exit_code == 4 else ConfigError
            raise cls(first.message + more, where=first.where, hint=first.hint)


def validate(
    config: SessionConfig,
    days_limit: int | None = None,
    store: ParquetStore | None = None,
    prefetch: Callable[[ValidationReport], None] | None = None,
    replay: bool = False,
) -> ValidationReport:
    """Check ``config`` and its data; never registers, loads or streams anything.

    ``replay``: the config replays days of a run that validated as a whole; a symbol
    with no bars on them is then a warning, as it was in that run, not an error.

    ``store``: the run's own store, so that its connection (and DuckDB's cache of the
    files' metadata) serves the run too; without one, a store is opened and closed here.
    ``prefetch``: called once the base interval and sessions are known and valid, before
    the data's coverage is counted; a run reads its first days there, and the count
    then comes from those rows instead of a query of its own.
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
    _check_classes(config, report)
    if store is not None:
        _check_store(config, store, report, prefetch, replay)
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
            local = pd.Timestamp(ns, tz="UTC").tz_convert(plan.tz)
            day = (local.date() - plan.session).days
            note = {-1: " (previous day)", 1: " (next day)"}.get(day, "")
            ends.append(f"{local:%H:%M}{note}")
        spans.append("-".join(ends))
    return ", ".join(spans) + f" {plan.tz}"


def _check_classes(config: SessionConfig, report: ValidationReport) -> None:
    """Scanner and strategy classes must load (imports only; nothing is registered), and their
    params and the indicators a strategy reads must match what the class declares."""
    from core.scanners import BUILT_IN, Scanner, check_scanner, load_class
    from core.strategy import Strategy, check_strategy

    keys = {key for spec in config.indicators for key in spec.definition().keys}
    for n, scanner in enumerate(config.scanners):
        where = f"scanners[{n}]"
        if scanner.kind is not None:
            cls: type | None = BUILT_IN[scanner.kind]
        else:
            cls = _load(load_class, scanner.class_, f"{where}.class", Scanner, report)
        if cls is not None:
            for finding in check_scanner(cls, scanner.name, dict(scanner.params)):
                _report_finding(report, where, finding)
    for n, strategy in enumerate(config.strategies):
        where = f"strategies[{n}]"
        cls = _load(load_class, strategy.class_, f"{where}.class", Strategy, report)
        if cls is not None:
            for finding in check_strategy(cls, strategy.name, dict(strategy.params), keys):
                _report_finding(report, where, finding)


def _load(
    load_class: Callable[..., type], reference: str | None, where: str, base: type, report: ValidationReport
) -> type | None:
    """The class ``reference`` names, or None with the error reported."""
    try:
        return load_class(reference or "", Path.cwd(), where, base)
    except ConfigError as exc:
        report.errors.append(Problem(exc.message, where=where, hint=exc.hint))
        return None


def _report_finding(report: ValidationReport, where: str, finding: object) -> None:
    """A class's finding about its config table: an error (exit 3) at the param it names."""
    param = getattr(finding, "param", "")
    report.errors.append(
        Problem(
            str(getattr(finding, "message", finding)),
            where=f"{where}.params.{param}" if param else where,
            hint=str(getattr(finding, "hint", "")),
        )
    )


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
    prefetch: Callable[[ValidationReport], None] | None = None,
    replay: bool = False,
) -> None:
    try:
        store.check_root()
    except DataError as exc:
        report.errors.append(Problem(exc.message, where=exc.where, hint=exc.hint, exit_code=4))
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
                exit_code=4,
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
                exit_code=4,
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
    if report.sessions:
        if prefetch is not None and not report.errors:
            prefetch(report)
        _check_coverage(config, store, base, report, replay)


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
                exit_code=4,
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
    config: SessionConfig, store: ParquetStore, base: Interval, report: ValidationReport, replay: bool
) -> None:
    calendar = report.calendar
    assert calendar is not None
    symbols = list(config.streams.symbols)
    plans = [calendar.plan(day) for day in report.sessions]
    # regular hours without a lunch break, where the run streams bars: one window per span
    windows = [(plan_index, span) for plan_index, p in enumerate(plans) for span in p.segments_ns()]
    per_span = store.count_in_windows(base, symbols, [span for _, span in windows])
    counts = np.zeros((len(plans), len(symbols)), dtype=np.int64)
    np.add.at(counts, np.array([i for i, _ in windows], dtype=np.int64), per_span)
    for j, symbol in enumerate(symbols):
        report.coverage[symbol] = {
            plan.session: (int(counts[i, j]), plan.expected_bars(base)) for i, plan in enumerate(plans)
        }
        if counts[:, j].sum() == 0 and not replay:
            first, last = report.sessions[0], report.sessions[-1]
            report.errors.append(
                Problem(
                    f"symbol {symbol} has no {base} bars in regular hours from {first} to {last}",
                    where=str(store.symbol_dir(base, symbol)),
                    hint="check the dates of its files with `backtest data info`",
                    exit_code=4,
                )
            )
    for i, plan in enumerate(plans):
        if counts[i].sum() == 0:
            report.errors.append(
                Problem(
                    f"no {base} bars on {plan.session} for any symbol",
                    where=str(plan.session),
                    hint="import that day or leave it out of the run (session.start/end, --start/--end)",
                    exit_code=4,
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
