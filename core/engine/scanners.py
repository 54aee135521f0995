"""Scanners: what they see, the built-ins, and how custom ones are loaded.

A scanner runs pre-session (at the open, before activation) and/or during
the session at exchange-local times or every N minutes.  It sees a
:class:`ScanView` of its universe holding only bars that ended at or before
the clock: the trailing sessions, today's bars so far and, when the data has
them, pre-market bars.  It returns ranked :class:`Match` es; the coordinator
may add the top ones to the session (and remove ones it added that no longer
match).

Write your own::

    from core.engine.scanners import Match, Scanner, ScanView

    class CheapAndBusy(Scanner):
        '''Symbols under max_price with the most volume so far.'''

        def scan(self, view: ScanView) -> list[Match]:
            price, volume = view.last_price(), view.volume_so_far()
            ok = price <= float(self.params.get("max_price", 20))
            return view.ranked(volume, ok, reason="volume so far")

and name it in the config: ``class = "my_scanners.py:CheapAndBusy"``.

Declare the params it takes (``defaults``, and ``choices`` for allowed values)
and they are checked before the first session (:func:`check_scanner`)::

        defaults = {"max_price": 20.0}

A scanner whose ``scan`` raises (``sys.exit`` included) fails the run naming
it, the day and the clock, unless the config marks it ``optional``.
"""

from __future__ import annotations

import copy
import importlib
import importlib.util
import math
import sys
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from calendars import SessionPlan
from core.config import ScannerSpec
from core.engine.components import Component, LifecycleError, State, StreamQueues
from core.errors import ConfigError, SessionError
from core.execution.strategy import Finding, check_params, moment, suggest
from core.model.bars import BarBlock, SymbolBars
from core.reporting.snapshot import iso


@dataclass(frozen=True, slots=True)
class Match:
    """One ranked scan result."""

    symbol: str
    score: float
    reason: str = ""


class ScanView:
    """A universe's bars as of the clock; nothing here ends after ``now_ns``."""

    def __init__(
        self,
        symbols: list[str],
        plan: SessionPlan,
        now_ns: int,
        today: BarBlock,
        history: BarBlock | None,
        cache: _DayCache | None = None,
    ) -> None:
        self.symbols = symbols
        self.plan = plan
        self.now_ns = now_ns
        self.pre_session = now_ns <= plan.open_ns
        self._visible = int(np.searchsorted(today.ends, now_ns, side="right"))
        self._today = today.slice_rows(0, self._visible)
        self._history = history
        self._cache = cache or _DayCache(today, history, plan)
        self.limit: int | None = None  # how many matches are kept (the scanner's top)

    # -- today so far ---------------------------------------------------
    @property
    def has_bars_today(self) -> np.ndarray:
        return np.asarray(self._today.present.any(axis=0))

    def last_price(self) -> np.ndarray:
        """Close of each symbol's latest bar so far today (pre-market included), NaN if none."""
        if not self._visible:
            return np.full(len(self.symbols), np.nan)
        return self._cache.last_close[self._visible - 1]

    def volume_so_far(self) -> np.ndarray:
        """Cumulative volume of today's bars so far (pre-market included)."""
        if not self._visible:
            return np.zeros(len(self.symbols))
        return self._cache.today_volume[self._visible - 1]

    def today(self, symbol: str) -> SymbolBars:
        return self._today.column(self.symbols.index(symbol))

    # -- history ----------------------------------------------------------
    def sessions(self) -> list[BarBlock]:
        """The trailing sessions, oldest first (regular hours)."""
        return self._history.sessions() if self._history is not None else []

    def session_close(self, back: int = 1) -> np.ndarray:
        """Each symbol's last close ``back`` sessions ago (1 = the previous session)."""
        sessions = self.sessions()
        if len(sessions) < back:
            return np.full(len(self.symbols), np.nan)
        block = sessions[-back]
        present = block.present
        last = present.shape[0] - 1 - np.argmax(present[::-1], axis=0)
        price = block.close[last, np.arange(len(self.symbols))]
        return np.where(present.any(axis=0), price, np.nan)

    def relative_volume(self, lookback: int = 5) -> np.ndarray:
        """Volume so far today over the mean volume by the same time of day, trailing sessions."""
        elapsed = max(0, self.now_ns - self.plan.open_ns)
        past = []
        for ends, cumulative in self._cache.session_volume[-lookback:]:
            due = int(np.searchsorted(ends, elapsed, side="right"))
            past.append(cumulative[due - 1] if due else np.zeros(len(self.symbols)))
        if not past:
            return np.full(len(self.symbols), np.nan)
        due_today = int(np.searchsorted(self._cache.regular_ends, self.now_ns, side="right"))
        today = self._cache.regular_volume[due_today - 1] if due_today else np.zeros(len(self.symbols))
        mean = np.mean(past, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(mean > 0, today / mean, np.nan)

    # -- ranking ----------------------------------------------------------
    def ranked(self, score: np.ndarray, keep: np.ndarray | None = None, reason: str = "") -> list[Match]:
        """The best ``limit`` matches by ``score`` (highest first, ties by symbol); NaN never matches."""
        ok = ~np.isnan(score)
        if keep is not None:
            ok &= keep
        candidates = np.flatnonzero(ok)
        order = np.lexsort((self._cache.name_rank(self.symbols)[candidates], -score[candidates]))
        best = candidates[order[: self.limit]]
        return [Match(self.symbols[j], float(score[j]), reason) for j in best.tolist()]


class _DayCache:
    """Cumulative volumes computed once per day and universe, read by every scan of the day."""

    def __init__(self, today: BarBlock, history: BarBlock | None, plan: SessionPlan) -> None:
        volume = np.where(today.present, today.volume, 0.0)
        self.today_volume = np.cumsum(volume, axis=0)
        # the latest close at or before each row: forward-filled by the row of the last bar
        rows = np.where(today.present, np.arange(today.rows)[:, None], -1)
        latest = np.maximum.accumulate(rows, axis=0)
        closes = today.close[np.clip(latest, 0, None), np.arange(today.width)]
        self.last_close = np.where(latest >= 0, closes, np.nan)
        regular = today.starts >= plan.open_ns
        self.regular_ends = today.ends[regular]
        self.regular_volume = np.cumsum(volume[regular], axis=0)
        self._ranks: dict[tuple[str, ...], np.ndarray] = {}
        self.session_volume = [
            (block.ends - block.starts[0], np.cumsum(np.where(block.present, block.volume, 0.0), axis=0))
            for block in (history.sessions() if history is not None else [])
            if block.rows
        ]

    def name_rank(self, symbols: list[str]) -> np.ndarray:
        """Each symbol's position in alphabetical order (the tie-break of rankings)."""
        key = tuple(symbols)
        if key not in self._ranks:
            ranks = np.empty(len(symbols), dtype=np.int64)
            ranks[np.argsort(np.array(symbols))] = np.arange(len(symbols))
            self._ranks[key] = ranks
        return self._ranks[key]


class Scanner:
    """Base class: ``params`` come from the scanner's ``[scanners.params]`` table, over ``defaults``."""

    needs_history = 2  # trailing sessions the scanner reads at least
    # The params it takes and their defaults (the type of each default is the type expected;
    # an int is accepted for a float).  Not declared: any params, unchecked.
    defaults: ClassVar[dict[str, Any]] = {}
    choices: ClassVar[dict[str, Collection[Any]]] = {}  # allowed values of some params

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        self.name = name
        self.params = {**copy.deepcopy(self.defaults), **params}

    def scan(self, view: ScanView) -> list[Match]:
        """Return ranked matches from ``view``; called at each scheduled time."""
        raise NotImplementedError

    def _filters(self, view: ScanView) -> np.ndarray:
        """The common price and volume filters (min_price, max_price, min_volume).

        A filter at its neutral value (0, inf; the built-ins' defaults) is not applied, so a
        symbol without a price yet today is kept unless a price filter is set.
        """
        price, volume = view.last_price(), view.volume_so_far()
        keep = np.ones(len(view.symbols), dtype=bool)
        low, high = float(self.params.get("min_price", 0.0)), float(self.params.get("max_price", math.inf))
        least = float(self.params.get("min_volume", 0.0))
        with np.errstate(invalid="ignore"):
            if low > 0:
                keep &= price >= low
            if high < math.inf:
                keep &= price <= high
            if least > 0:
                keep &= volume >= least
        return keep


# The common filters every built-in takes (neutral defaults: no filtering).
_FILTERS: dict[str, Any] = {"min_price": 0.0, "max_price": math.inf, "min_volume": 0.0}
_DIRECTIONS = ("up", "down", "abs")


def check_scanner(cls: type[Scanner], name: str, params: dict[str, Any]) -> list[Finding]:
    """What is wrong with ``[[scanners]]`` ``name`` (class ``cls``, ``params``) before it runs:
    unknown params (with a "did you mean"), values of the wrong type or outside ``choices``."""
    return check_params(f"scanner {name!r}", cls, Scanner, params)


class CannotRun(Exception):
    """A scanner has no data to work on at this time (reported, not a failure)."""


def _directed(change: np.ndarray, direction: str) -> np.ndarray:
    """The score of a change: itself (up), its negation (down) or its size (abs)."""
    return {"up": change, "down": -change}.get(direction, np.abs(change))


class TopMovers(Scanner):
    """Largest moves over the previous session (close vs the close before); direction up/down/abs."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "direction": "abs", "min_change": -math.inf}
    choices: ClassVar[dict[str, Collection[Any]]] = {"direction": _DIRECTIONS}

    def scan(self, view: ScanView) -> list[Match]:
        before, last = view.session_close(2), view.session_close(1)
        score = _directed((last - before) / before * 100.0, self.params["direction"])
        keep = self._filters(view) if not view.pre_session else np.ones(len(view.symbols), bool)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_change"])  # (NaN never matches anyway)
        return view.ranked(score, keep, reason="previous-session change %")


class Gap(Scanner):
    """Gap vs the previous close: pre-market price before the open, last price after it."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "direction": "abs", "min_gap": -math.inf}
    choices: ClassVar[dict[str, Collection[Any]]] = {"direction": _DIRECTIONS}

    def scan(self, view: ScanView) -> list[Match]:
        price = view.last_price()
        if view.pre_session and not view.has_bars_today.any():
            raise CannotRun("no pre-market bars in the data, so no gap can be measured before the open")
        previous = view.session_close(1)
        score = _directed((price - previous) / previous * 100.0, self.params["direction"])
        keep = self._filters(view)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_gap"])
        return view.ranked(score, keep, reason="gap % vs previous close")


class RelativeVolume(Scanner):
    """Volume so far today against the same time of day over the trailing sessions."""

    defaults: ClassVar[dict[str, Any]] = {**_FILTERS, "lookback": 5, "min_rvol": 0.0}

    def __init__(self, name: str, params: dict[str, Any]) -> None:
        super().__init__(name, params)
        self.needs_history = int(self.params["lookback"])

    def scan(self, view: ScanView) -> list[Match]:
        lookback = self.needs_history
        score = view.relative_volume(lookback)
        keep = self._filters(view)
        with np.errstate(invalid="ignore"):
            keep &= score >= float(self.params["min_rvol"])  # (relative volume is never below 0)
        return view.ranked(score, keep, reason=f"relative volume ({lookback} sessions)")


class PriceVolume(Scanner):
    """Price and volume filters, ranked by volume so far."""

    needs_history = 0
    defaults: ClassVar[dict[str, Any]] = dict(_FILTERS)

    def scan(self, view: ScanView) -> list[Match]:
        return view.ranked(view.volume_so_far(), self._filters(view), reason="volume so far")


BUILT_IN: dict[str, type[Scanner]] = {
    "top_movers": TopMovers,
    "gap": Gap,
    "relative_volume": RelativeVolume,
    "price_volume": PriceVolume,
}


def load_scanner_class(reference: str, base_dir: Path) -> type[Scanner]:
    """``module:Class`` or ``path/to/file.py:Class`` (relative to the config file)."""
    return load_class(reference, base_dir, "scanners.class", Scanner)


def load_class(reference: str, base_dir: Path, field_name: str, base: type[Any]) -> Any:
    """A user class named ``module:Class`` or ``file.py:Class``, checked to subclass ``base``."""
    if ":" not in reference:
        raise ConfigError(f"{reference!r} must be 'module:Class' or 'file.py:Class'", where=field_name)
    target, name = reference.rsplit(":", 1)
    module = _import(target, base_dir, reference, field_name)
    cls = getattr(module, name, None)
    if cls is None:
        classes = sorted(
            k
            for k, v in vars(module).items()
            if isinstance(v, type) and issubclass(v, base) and v is not base
        )
        close = suggest(name, classes)
        raise ConfigError(
            f"cannot load {reference!r}: {_origin(module, target)} has no {name!r}"
            + (f" (did you mean {close!r}?)" if close else ""),
            where=field_name,
            hint=f"{base.__name__} subclasses there: {', '.join(classes) or 'none'}",
        )
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise ConfigError(
            f"{reference!r} is not a subclass of {base.__module__}.{base.__name__}", where=field_name
        )
    return cls


def _import(target: str, base_dir: Path, reference: str, field_name: str) -> Any:
    """The module ``target`` (a dotted name, or a .py file relative to ``base_dir``), run now.

    Importing runs the user's module: anything it raises (sys.exit included, not
    KeyboardInterrupt) is a config error naming the file and the exception.
    """
    source, name = target, ""
    try:
        if target.endswith(".py"):
            path = (base_dir / target).resolve()
            source = str(path)
            if not path.is_file():
                raise FileNotFoundError(f"no such file: {path}")
            spec = importlib.util.spec_from_file_location(f"backtest_user_{path.stem}", path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            name = spec.name
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            return module
        return importlib.import_module(target)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        sys.modules.pop(name, None)  # a half-run module must not be found by a later import
        raise ConfigError(
            f"cannot load {reference!r}: importing {source} {_raised(exc)}",
            where=field_name,
            hint=f"a module on PYTHONPATH or a .py file relative to the config that imports cleanly "
            f"(`{_rerun(source, target)}` shows the traceback)",
        ) from exc


def _rerun(source: str, target: str) -> str:
    """The command that imports the module alone, to see its traceback."""
    return f"python {source}" if source.endswith(".py") else f'python -c "import {target}"'


def _raised(exc: BaseException) -> str:
    """How an import failed, as a sentence's end."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    if isinstance(exc, SyntaxError):
        return f"failed: SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"failed: {type(exc).__name__}: {exc}"


def _origin(module: Any, target: str) -> str:
    """Where a loaded module came from: its file, else its name."""
    return str(getattr(module, "__file__", None) or target)


# -- the component ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScheduledScanner:
    spec: ScannerSpec
    scanner: Scanner


class ScannerManager(Component):
    """Runs the configured scanners pre-session and at their times during the session.

    Reads the day's universe bars from the coordinator's queues; each scan sees
    them only up to the clock.  Results are recorded; what to add or remove is
    returned to the coordinator, which inserts through its one pause mechanism.
    """

    name = "scanner manager"

    def __init__(
        self, specs: list[ScannerSpec], base_dir: Path, queues: StreamQueues, extended: bool = False
    ) -> None:
        super().__init__()
        self._queues = queues
        self._extended = extended  # `at` times may then fall in the pre-market or after-hours
        self._scanners = [ScheduledScanner(spec, _build(spec, base_dir, n)) for n, spec in enumerate(specs)]
        self.scans: list[dict[str, Any]] = []
        self._added: dict[str, set[str]] = {}
        self._times: dict[int, list[ScheduledScanner]] = {}

    @property
    def configured(self) -> bool:
        return bool(self._scanners)

    @property
    def history_sessions(self) -> int:
        """Trailing sessions the scanners read."""
        return max((s.scanner.needs_history for s in self._scanners), default=0)

    def _on_teardown(self) -> None:
        self.scans = []
        self._added = {}
        self._times = {}

    def _on_setup(self) -> None:
        plan = self._queues.plan
        if plan is None:
            raise LifecycleError(f"{self.name}: no session loaded")
        self._times = {}
        for item in self._scanners:
            for now in _scan_times(item.spec, plan, self._extended):
                self._times.setdefault(now, []).append(item)

    def times(self) -> np.ndarray:
        """Clock times (UTC ns) of today's mid-session scans."""
        return np.array(sorted(self._times), dtype=np.int64)

    def run_pre_session_scans(self, now_ns: int, session_symbols: list[str]) -> list[ScanOutcome]:
        """Pre-session scans; the session is not active yet, so no pause is needed."""
        if self.state is not State.READY:
            raise LifecycleError(f"{self.name}: pre-session scans before setup()")
        chosen = [s for s in self._scanners if s.spec.pre_session]
        return [self._run(item, now_ns, "pre-session", session_symbols) for item in chosen]

    def due(self, now_ns: int) -> list[ScheduledScanner]:
        return list(self._times.get(now_ns, []))

    def run(self, item: ScheduledScanner, now_ns: int, session_symbols: list[str]) -> ScanOutcome:
        return self._run(item, now_ns, "mid-session", session_symbols)

    def _run(
        self, item: ScheduledScanner, now_ns: int, phase: str, session_symbols: list[str]
    ) -> ScanOutcome:
        spec = item.spec
        universe = self._queues.universe
        assert universe is not None and self._queues.plan is not None
        symbols = _universe_of(spec, universe.symbols, session_symbols)
        view = universe.view(symbols, self._queues.plan, now_ns)
        view.limit = spec.top
        record: dict[str, Any] = {
            "time": iso(now_ns),
            "scanner": spec.name,
            "phase": phase,
            "universe": len(symbols),
        }
        outcome = ScanOutcome(record)
        try:
            matches = item.scanner.scan(view)[: spec.top]
        except CannotRun as exc:
            record.update(status="skipped", reason=str(exc), matches=[])
            self.scans.append(record)
            return outcome
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # user code: sys.exit included
            reason = f"it called sys.exit({exc.code!r})" if isinstance(exc, SystemExit) else None
            reason = reason or f"{type(exc).__name__}: {exc}"
            record.update(status="failed", reason=reason, matches=[])
            self.scans.append(record)
            if not spec.optional:
                raise SessionError(
                    f"{phase} scan() failed {moment(now_ns, self._queues.plan)}: {reason}",
                    where=f"scanner {spec.name!r}",
                    hint="fix the scanner (`backtest --debug run ...` shows the traceback), or mark it "
                    "optional = true to report and go on",
                ) from exc
            return outcome
        record.update(
            status="ok",
            matches=[{"symbol": m.symbol, "score": m.score, "reason": m.reason} for m in matches],
        )
        if spec.add:
            mine = self._added.setdefault(spec.name, set())
            outcome.add = [m.symbol for m in matches if m.symbol not in session_symbols]
            mine.update(outcome.add)
            if spec.remove:
                matched = {m.symbol for m in matches}
                outcome.remove = sorted(s for s in mine if s not in matched and s in session_symbols)
                mine.difference_update(outcome.remove)
        record.update(added=outcome.add, removed=outcome.remove)
        self.scans.append(record)
        return outcome


@dataclass(slots=True)
class ScanOutcome:
    """One scan's record, and the symbols the coordinator should add or remove."""

    record: dict[str, Any]
    add: list[str] = field(default_factory=list)
    remove: list[str] = field(default_factory=list)


class UniverseData:
    """Every scanned symbol's bars for the day (streamed hours plus pre-market) and history."""

    def __init__(self, symbols: list[str], day: BarBlock, history: BarBlock | None) -> None:
        self.symbols = symbols
        self.day = day
        self.history = history
        self._index = {s: j for j, s in enumerate(symbols)}
        self._cache: _DayCache | None = None

    def view(self, symbols: list[str], plan: SessionPlan, now_ns: int) -> ScanView:
        if symbols == self.symbols:
            if self._cache is None:
                self._cache = _DayCache(self.day, self.history, plan)
            return ScanView(symbols, plan, now_ns, self.day, self.history, self._cache)
        columns = [self._index[s] for s in symbols]
        history = self.history.take_columns(columns) if self.history is not None else None
        return ScanView(symbols, plan, now_ns, self.day.take_columns(columns), history)


def _universe_of(spec: ScannerSpec, loaded: list[str], session_symbols: list[str]) -> list[str]:
    if spec.universe == "all":
        return loaded
    if spec.universe == "session":
        inside = set(session_symbols)
        return [s for s in loaded if s in inside]
    known = set(loaded)
    return [s for s in spec.universe if s in known]


def _scan_times(spec: ScannerSpec, plan: SessionPlan, extended: bool = False) -> list[int]:
    """Mid-session times of a scanner on one day (UTC ns).

    ``at``: the instant of that exchange-local time inside the session's streamed
    hours (it may lie on the previous calendar date), if the day has one; ``every``:
    every N minutes after the open, before the close.
    """
    times = {t for t in (plan.local_time_ns(at, extended) for at in spec.at) if t is not None}
    step = spec.every_minutes
    if step:
        times.update(range(plan.open_ns + step * 60_000_000_000, plan.close_ns, step * 60_000_000_000))
    return sorted(times)


def _build(spec: ScannerSpec, base_dir: Path, index: int) -> Scanner:
    """The configured scanner (``[[scanners]]`` number ``index``); a constructor that fails names
    the scanner (for a built-in, its params are at fault)."""
    cls = BUILT_IN[spec.kind] if spec.kind is not None else load_scanner_class(spec.class_ or "", base_dir)
    try:
        return cls(spec.name, spec.params)
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
        if spec.kind is not None:  # ours: only its params can be at fault
            found = check_scanner(cls, spec.name, spec.params)
            raise ConfigError(
                "; ".join(f.message for f in found) or f"scanner {spec.name!r} rejects its params: {reason}",
                where=f"scanners[{index}].params",
                hint=f"{spec.kind} takes: {', '.join(sorted(cls.defaults))}",
            ) from exc
        raise SessionError(
            f"{cls.__name__}(name, params) failed: {reason}",
            where=f"scanner {spec.name!r}",
            hint="fix the scanner's __init__ (`backtest --debug run ...` shows the traceback)",
        ) from exc
