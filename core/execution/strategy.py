"""Strategies: the user contract, what they may read, and the manager that drives them.

Write one::

    from core.execution.strategy import Batch, Strategy, StrategyContext

    class Momentum(Strategy):
        '''Buys 100 shares when the close is above its 20-bar SMA, sells when below.'''

        def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
            sma = batch.indicator("sma_20@1m")
            for j, symbol in enumerate(batch.symbols):
                held = ctx.position(symbol)
                if batch.close[j] > sma[j] and held == 0:
                    ctx.buy(symbol, 100)
                elif batch.close[j] < sma[j] and held > 0:
                    ctx.sell(symbol, held)

Callbacks (all optional), in the order a day calls them:

- ``on_session_start(ctx)`` after PHASE 2, before the first bar;
- ``on_bars(ctx, batch)`` once per clock time at which base bars ended (all
  symbols whose bar ended then, in one batch);
- ``on_derived_bars(ctx, interval, batch)`` when derived bars end;
- ``on_scan(ctx, record)`` and ``on_insertion(ctx, record)`` mid-session (a symbol
  joined, or left with ``record["status"] == "removed"``: the columns of later batches change);
- ``on_session_end(ctx)`` at the close, after day orders expired.

A strategy object lives for one session (per-day state is torn down like
every component).  What crosses days is explicit: the portfolio (cash,
positions, open orders) and ``self.state``, a mapping the strategy owns.  It
is saved with the run as JSON, so it must hold only str, int, float, bool,
None, lists and str-keyed dicts; it is checked at the end of every day.

Declare what the strategy takes, and it is checked before the first session
(``backtest validate`` too; see :func:`check_strategy`)::

    class Momentum(Strategy):
        defaults = {"key": "sma_20@1m", "quantity": 100.0}   # params and their defaults
        choices = {}                                           # allowed values, per param

        @classmethod
        def indicators(cls, params):                           # indicator keys it reads
            return [params["key"]]

``self.params`` holds the defaults overlaid with the config's params.  A class
that declares no ``defaults`` takes any params, unchecked.

Failures: anything a callback raises (``sys.exit`` included; not
KeyboardInterrupt) ends the run as a :class:`StrategyError` naming the
strategy, the callback, the day and the clock; an order that cannot be valid
(NaN quantity, a price <= 0, a symbol not in the session, ...) is refused when
submitted (:class:`~core.execution.broker.OrderError`).
"""

from __future__ import annotations

import copy
import difflib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd

from calendars import Interval, SessionPlan, SimClock
from core.engine.components import Component
from core.errors import BacktestError, SessionError
from core.execution.broker import ORDER_FIELDS, Broker, Costs, Fill, Order, OrderError, Portfolio
from core.model.bars import BarBlock, SymbolBars
from core.model.session_data import IndicatorSeries, SessionData


class LookAheadError(SessionError):
    """A strategy asked for a bar or value that ends after the clock."""


class StrategyError(SessionError):
    """A strategy failed: a callback raised or exited, or its state cannot be saved."""


# errors that keep their class when a callback's failure is given its context
_KEPT_ERRORS: tuple[type[SessionError], ...] = (OrderError, LookAheadError)


def moment(now_ns: int, plan: SessionPlan | None) -> str:
    """``on <session> at <local ISO> <tz> (<UTC ISO>)``: a clock time as errors show it."""
    utc = pd.Timestamp(int(now_ns), tz="UTC")
    if plan is None:
        return f"at {utc.isoformat()}"
    local = utc.tz_convert(plan.tz)
    return f"on {plan.session.isoformat()} at {local.isoformat()} {plan.tz} ({utc.isoformat()})"


def _local_and_utc(ts_ns: int, plan: SessionPlan | None) -> str:
    """``<local ISO> (<UTC ISO>)``, or the UTC ISO time alone without a session."""
    utc = pd.Timestamp(int(ts_ns), tz="UTC")
    if plan is None:
        return utc.isoformat()
    return f"{utc.tz_convert(plan.tz).isoformat()} ({utc.isoformat()})"


def suggest(word: str, options: Iterable[str]) -> str | None:
    """The option ``word`` most likely meant: a close spelling, or an abbreviation (qty: quantity)."""
    choices = [o for o in options if isinstance(o, str)]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if close:
        return close[0]
    abbreviated = [o for o in choices if word and o.startswith(word[0]) and _subsequence(word, o)]
    return min(abbreviated, key=len) if abbreviated else None


def _subsequence(short: str, long: str) -> bool:
    """Whether every character of ``short`` appears in ``long`` in order."""
    rest = iter(long)
    return all(char in rest for char in short)


def _did_you_mean(word: str, options: Iterable[str]) -> str:
    close = suggest(word, options)
    return f" (did you mean {close!r}?)" if close else ""


def missing_indicator(key: str, configured: Iterable[str]) -> SessionError:
    """The error for reading an indicator key the config does not compute."""
    keys = sorted(configured)
    return SessionError(
        f"indicator {key!r} is not configured{_did_you_mean(key, keys)}; "
        f"configured: {', '.join(keys) or 'none'}",
        hint="add an [[indicators]] table that computes it (keys read <kind>_<period>@<interval>), "
        "or read one of the configured keys",
    )


class Bar(NamedTuple):
    symbol: str
    ts_ns: int  # the bar's start
    open: float
    high: float
    low: float
    close: float
    volume: float


class Batch:
    """The bars of one interval that ended at one clock time, one per symbol, as arrays.

    ``columns`` are the symbols' columns in SessionData; the price arrays and the
    symbol names are gathered on first use (most strategies read only a few).
    """

    def __init__(
        self, data: SessionData, block: BarBlock, row: int, now_ns: int, columns: np.ndarray | None = None
    ) -> None:
        # ``columns`` given: every column of the block has a bar in this row
        self._whole = columns is not None
        self.columns = np.flatnonzero(block.present[row]) if columns is None else columns
        self.now_ns = now_ns
        self.interval = block.interval.label
        self._indicators = data.indicators
        self._data = data
        self._block = block
        self._row = row

    @property
    def ts_ns(self) -> int:
        """The bars' start (UTC ns)."""
        return int(self._block.starts[self._row])

    @cached_property
    def symbols(self) -> list[str]:
        names = self._data.symbols
        return [names[j] for j in self.columns.tolist()]

    @cached_property
    def open(self) -> np.ndarray:
        return self._pick(self._block.open)

    @cached_property
    def high(self) -> np.ndarray:
        return self._pick(self._block.high)

    @cached_property
    def low(self) -> np.ndarray:
        return self._pick(self._block.low)

    @cached_property
    def close(self) -> np.ndarray:
        return self._pick(self._block.close)

    @cached_property
    def volume(self) -> np.ndarray:
        return self._pick(self._block.volume)

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self) -> Iterator[Bar]:
        for j, symbol in enumerate(self.symbols):
            yield Bar(
                symbol,
                self.ts_ns,
                float(self.open[j]),
                float(self.high[j]),
                float(self.low[j]),
                float(self.close[j]),
                float(self.volume[j]),
            )

    def __getitem__(self, symbol: str) -> Bar:
        j = self.symbols.index(symbol)
        return Bar(
            symbol,
            self.ts_ns,
            float(self.open[j]),
            float(self.high[j]),
            float(self.low[j]),
            float(self.close[j]),
            float(self.volume[j]),
        )

    def indicator(self, key: str) -> np.ndarray:
        """The indicator's value at this bar for each symbol of the batch (NaN while not ready)."""
        values = self._indicators.get(key)
        if values is None:
            raise missing_indicator(key, self._indicators)
        if values.interval != self.interval:
            raise SessionError(
                f"indicator {key!r} is on {values.interval} bars, this batch holds {self.interval} bars",
                hint=f"read it in on_derived_bars for {values.interval}, or with ctx.indicator(symbol, key)",
            )
        return self._pick(values.values)

    def _pick(self, values: np.ndarray) -> np.ndarray:
        """This batch's row of a ``[rows, symbols]`` array, as a copy of the batch's columns."""
        row = values[self._row]
        return row.copy() if self._whole else row[self.columns]  # all columns: no gather needed


class StrategyContext:
    """What a strategy may read and do at the clock; nothing here ends after it."""

    def __init__(
        self,
        data: SessionData,
        clock: SimClock,
        broker: Broker,
        state: dict[str, Any],
        equity: Callable[[], float] | None = None,
    ) -> None:
        self._data = data
        self._clock = clock
        self._broker = broker
        self.state = state
        self._equity = equity or broker.portfolio.equity

    @property
    def now_ns(self) -> int:
        return self._clock.now_ns

    @property
    def session(self) -> SessionPlan:
        plan = self._data.plan
        assert plan is not None
        return plan

    @property
    def symbols(self) -> tuple[str, ...]:
        return self._data.symbols

    # -- reading ------------------------------------------------------------
    def bars(self, symbol: str, interval: str) -> SymbolBars:
        """Today's bars of ``interval`` that have ended."""
        return self._data[symbol].bars(interval)

    def history(self, symbol: str, interval: str) -> SymbolBars | None:
        return self._data[symbol].history(interval)

    def indicator(self, symbol: str, key: str) -> IndicatorSeries:
        """One symbol's values of indicator ``key`` for the bars that have ended."""
        if key not in self._data.indicators:
            raise missing_indicator(key, self._data.indicators)
        return self._data[symbol].indicator(key)

    def bar_at(self, symbol: str, interval: str, ts_ns: int) -> Bar:
        """The bar starting at ``ts_ns``; a bar that has not ended yet is look-ahead."""
        self._guard(ts_ns, Interval.parse(interval), f"the {interval} bar of {symbol}")
        bars = self.bars(symbol, interval)
        hits = np.flatnonzero(bars.ts == ts_ns)
        if not hits.size:
            raise SessionError(
                f"no {interval} bar of {symbol} starts at {self._when(ts_ns)}",
                hint="ctx.bars(symbol, interval).ts holds the starts of the bars that exist (gaps have none)",
            )
        i = int(hits[0])
        return Bar(
            symbol, ts_ns, *(float(getattr(bars, f)[i]) for f in ("open", "high", "low", "close", "volume"))
        )

    def value_at(self, symbol: str, key: str, ts_ns: int) -> float:
        """The indicator value of the bar starting at ``ts_ns``; later bars are look-ahead."""
        values = self._data.indicators.get(key)
        if values is None:
            raise missing_indicator(key, self._data.indicators)
        self._guard(ts_ns, Interval.parse(values.interval), f"the {key} value of {symbol} for the bar")
        series = self.indicator(symbol, key)
        hits = np.flatnonzero(series.ts == ts_ns)
        if not hits.size:
            raise SessionError(
                f"no {key} value of {symbol} for a bar starting at {self._when(ts_ns)}",
                hint="ctx.indicator(symbol, key).ts holds the starts of the bars that have values",
            )
        return float(series.values[int(hits[0])])

    def _guard(self, ts_ns: int, interval: Interval, asked: str) -> None:
        """Refuse a read of a bar (or its value) that has not ended at the clock."""
        end = ts_ns + interval.nanoseconds
        if end > self.now_ns:
            raise LookAheadError(
                f"look-ahead: asked for {asked} starting {self._when(ts_ns)} ({interval.label}), "
                f"which ends {self._when(end)}, after the clock {self._when(self.now_ns)}",
                hint="read bars that have ended: ctx.bars(...) and ctx.indicator(...) hold exactly those",
            )

    def _when(self, ts_ns: int) -> str:
        """A time as errors show it: exchange-local and UTC ISO."""
        return _local_and_utc(ts_ns, self._data.plan)

    # -- trading ------------------------------------------------------------
    def buy(self, symbol: str, quantity: float, **kwargs: Any) -> Order:
        """Buy ``quantity``; kwargs: type market|limit|stop, limit, stop, tif day|gtc, cancel_at_close."""
        return self._broker.submit(symbol, "buy", quantity, self.now_ns, **kwargs)

    def sell(self, symbol: str, quantity: float, **kwargs: Any) -> Order:
        return self._broker.submit(symbol, "sell", quantity, self.now_ns, **kwargs)

    def cancel(self, order_id: int) -> bool:
        """Cancel an open order now; False when no open order has that id."""
        return self._broker.cancel(order_id, self.now_ns)

    def position(self, symbol: str) -> float:
        held = self._broker.portfolio.positions.get(symbol)
        return held.quantity if held is not None else 0.0

    @property
    def open_orders(self) -> list[Order]:
        return list(self._broker.portfolio.open_orders)

    @property
    def cash(self) -> float:
        return self._broker.portfolio.cash

    @property
    def equity(self) -> float:
        """Cash plus every position at its last close up to the clock."""
        return self._equity()


class Strategy:
    """Base class; override the callbacks you need (see the module docstring)."""

    # The params it takes and their defaults (the type of each default is the type expected;
    # an int is accepted for a float, None accepts anything).  Not declared: params unchecked.
    defaults: ClassVar[dict[str, Any]] = {}
    # Allowed values of some params, e.g. {"side": ("long", "short")}.
    choices: ClassVar[dict[str, Collection[Any]]] = {}

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        """The indicator keys it reads, given its params (the defaults overlaid with the config's)."""
        return []

    def __init__(self, name: str, params: dict[str, Any], state: dict[str, Any]) -> None:
        self.name = name
        self.params = {**copy.deepcopy(self.defaults), **params}
        self.state = state  # yours; carried from day to day (and saved with the run)

    def on_session_start(self, ctx: StrategyContext) -> None:
        """Called once the session is loaded, before the first bar."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        """Called once per clock time at which base bars ended."""

    def on_derived_bars(self, ctx: StrategyContext, interval: str, batch: Batch) -> None:
        """Called when bars of a derived interval end."""

    def on_scan(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        """Called after each scan."""

    def on_insertion(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        """Called after a symbol joined (or left) the session."""

    def on_session_end(self, ctx: StrategyContext) -> None:
        """Called at the close, after day orders expired."""


# -- declared params, checked before any session ------------------------------------------------
@dataclass(frozen=True, slots=True)
class Finding:
    """One problem with a strategy's or scanner's params, found before any session runs.

    ``param`` names the param at fault ("" when the finding is not about one param).
    """

    message: str
    hint: str = ""
    param: str = ""

    def __str__(self) -> str:
        return f"{self.message}. Hint: {self.hint}" if self.hint else self.message


def check_strategy(
    cls: type[Strategy], name: str, params: dict[str, Any], indicator_keys: set[str]
) -> list[Finding]:
    """What is wrong with ``[[strategies]]`` ``name`` (class ``cls``, ``params``) before it runs.

    Unknown params (with a "did you mean"), values of the wrong type or outside the
    declared choices, and declared indicator keys missing from ``indicator_keys`` (the
    keys the config computes).  Pure: nothing is instantiated, only ``cls.indicators``
    is called.
    """
    what = f"strategy {name!r}"
    findings = check_params(what, cls, Strategy, params)
    if any(f.param in cls.defaults for f in findings):
        return findings  # a value of the wrong type or choice: the keys it names would mislead
    merged = {**copy.deepcopy(cls.defaults), **params}
    try:
        wanted = cls.indicators(merged)
        keys = [wanted] if isinstance(wanted, str) else list(wanted)
    except (Exception, SystemExit) as exc:  # user code: reported as a finding, never a crash
        findings.append(
            Finding(
                f"{what}: {cls.__name__}.indicators(params) raised {type(exc).__name__}: {exc}",
                hint="it must return the indicator keys the strategy reads, as a list of str",
            )
        )
        return findings
    configured = sorted(indicator_keys)
    for key in keys:
        if not isinstance(key, str):
            findings.append(
                Finding(
                    f"{what}: {cls.__name__}.indicators(params) returned {key!r}, not a key",
                    hint="return keys such as 'sma_20@1m'",
                )
            )
        elif key not in indicator_keys:
            findings.append(
                Finding(
                    f"{what} reads indicator {key!r}, which the config does not compute"
                    f"{_did_you_mean(key, configured)}",
                    hint="add an [[indicators]] table for it, or change the param that names it; "
                    f"configured: {', '.join(configured) or 'none'}",
                )
            )
    return findings


def check_params(what: str, cls: type, base: type, params: Mapping[str, Any]) -> list[Finding]:
    """Findings about ``params`` against ``cls.defaults`` and ``cls.choices``.

    ``what`` names the strategy or scanner in messages; ``base`` is the base class whose
    empty ``defaults`` mean "not declared" (then any param is accepted, unchecked).
    """
    defaults: dict[str, Any] = getattr(cls, "defaults", {})
    choices: dict[str, Collection[Any]] = getattr(cls, "choices", {})
    declared = _declares(cls, base)
    findings = []
    for key, value in params.items():
        if declared and key not in defaults:
            takes = ", ".join(sorted(defaults)) or "no params"
            findings.append(
                Finding(
                    f"{what}: unknown param {key!r}{_did_you_mean(key, defaults)}",
                    hint=f"{cls.__name__} takes: {takes}",
                    param=key,
                )
            )
            continue
        if key in defaults and not _same_kind(value, defaults[key]):
            findings.append(
                Finding(
                    f"{what}: param {key!r} is {_kind(value)} ({value!r}); {cls.__name__} expects "
                    f"{_kind(defaults[key])}, like its default {defaults[key]!r}",
                    hint=f"write {key} = {defaults[key]!r} in the config's TOML form (no quotes for numbers)",
                    param=key,
                )
            )
            continue
        allowed = choices.get(key)
        if allowed is not None and not _among(value, allowed):
            listed = ", ".join(repr(a) for a in allowed)
            findings.append(
                Finding(
                    f"{what}: param {key!r} is {value!r}, not one of {listed}"
                    f"{_did_you_mean(str(value), [str(a) for a in allowed])}",
                    hint=f"{key} takes one of {listed}",
                    param=key,
                )
            )
    return findings


def _declares(cls: type, base: type) -> bool:
    """Whether ``cls`` (or a class between it and ``base``) declares its ``defaults``."""
    below = (klass for klass in cls.__mro__ if klass is not base and klass is not object)
    return any("defaults" in vars(klass) for klass in below)


def _same_kind(value: Any, default: Any) -> bool:
    """Whether ``value`` has the type of ``default`` (int for float is fine; bool is never a number)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(value, bool) and isinstance(default, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def _among(value: Any, allowed: Collection[Any]) -> bool:
    try:
        return value in allowed
    except TypeError:  # an unhashable value against a set: it cannot be one of them
        return False


def _kind(value: Any) -> str:
    """A value's type as a config author reads it."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return f"a {type(value).__name__}"


# -- what crosses days must be saveable ------------------------------------------------------------
def unsaveable(state: Any) -> str | None:
    """Where ``state`` cannot be written as JSON (e.g. ``state["last"] holds a datetime.datetime``),
    or None when it can."""
    try:
        json.dumps(state)
    except (TypeError, ValueError, RecursionError) as exc:
        return _first_unsaveable(state, "state", set()) or f"state: {exc}"
    return None


def _first_unsaveable(value: Any, path: str, seen: set[int]) -> str | None:
    """The path of the first value json cannot write (walked in the order json writes)."""
    if value is None or isinstance(value, (str, int, float)):  # (bool is an int)
        return None
    if isinstance(value, (dict, list, tuple)):
        if id(value) in seen:
            return f"{path} contains itself"
        seen = seen | {id(value)}
    if isinstance(value, dict):
        for key, item in value.items():
            if not (key is None or isinstance(key, (str, int, float))):
                return f"{path} has the key {key!r}, a {_type_name(key)} (JSON keys are strings)"
            label = json.dumps(key) if isinstance(key, str) else repr(key)
            found = _first_unsaveable(item, f"{path}[{label}]", seen)
            if found:
                return found
        return None
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = _first_unsaveable(item, f"{path}[{i}]", seen)
            if found:
                return found
        return None
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{path} holds a {_type_name(value)} ({shown})"


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


@dataclass(slots=True)
class Ledger:
    """The run's execution record: every order, fill and equity point, every day's P&L."""

    fills: list[Fill] = field(default_factory=list)
    curve_ns: list[int] = field(default_factory=list)
    curve_equity: list[float] = field(default_factory=list)
    curve_cash: list[float] = field(default_factory=list)
    curve_exposed: list[bool] = field(default_factory=list)
    daily: list[tuple[Any, float]] = field(default_factory=list)  # (session, equity at the close)
    # (session, order, status, filled_ns, fill_price): each day's orders as they stood at its close
    order_rows: list[tuple[str, Order, str, int | None, float | None]] = field(default_factory=list)

    @classmethod
    def empty(cls) -> Ledger:
        return cls()

    def add_orders(self, session: str, orders: list[Order]) -> None:
        """Record the day's orders as they stand now (a carried order appears again the next day)."""
        self.order_rows.extend((session, o, o.status, o.filled_ns, o.fill_price) for o in orders)

    @property
    def orders(self) -> list[dict[str, Any]]:
        """One dict per recorded order and day: ``date`` then the order's fields at that day's close."""
        return self.orders_of(None)

    def orders_of(self, session: str | None) -> list[dict[str, Any]]:
        """:attr:`orders` of one day (an ISO date), or of every day with None."""
        return [
            {"date": day, **order.as_dict(), "status": status, "filled_ns": filled, "fill_price": price}
            for day, order, status, filled, price in self.order_rows
            if session is None or day == session
        ]

    def order_columns(self) -> dict[str, list[Any]]:
        """:attr:`orders` column by column (``date`` and every order field), without a dict per row."""
        rows = self.order_rows
        columns: dict[str, list[Any]] = {"date": [row[0] for row in rows]}
        for name in ORDER_FIELDS:
            columns[name] = [getattr(row[1], name) for row in rows]
        columns["status"] = [row[2] for row in rows]
        columns["filled_ns"] = [row[3] for row in rows]
        columns["fill_price"] = [row[4] for row in rows]
        return columns

    def fill_columns(self) -> dict[str, list[Any]]:
        """The fills column by column."""
        return {name: [getattr(f, name) for f in self.fills] for name in Fill._fields}


class StrategyManager(Component):
    """Drives the strategies on each batch and fills their orders against the bars that arrive."""

    name = "strategy manager"

    def __init__(
        self,
        classes: list[tuple[str, type[Strategy], dict[str, Any]]],
        data: SessionData,
        clock: SimClock,
        portfolio: Portfolio,
        costs: Costs,
        flat_at_close: bool,
        base: Interval,
        states: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        super().__init__()
        self._classes = classes
        self._data = data
        self._clock = clock
        self.portfolio = portfolio
        self._costs = costs
        self._flat = flat_at_close
        self._base = base
        self.states: dict[str, dict[str, Any]] = {
            name: dict((states or {}).get(name, {})) for name, _, _ in classes
        }
        self.ledger = Ledger.empty()
        self._reset()

    @property
    def active(self) -> bool:
        return bool(self._classes)

    def _reset(self) -> None:
        self._strategies: list[Strategy] = []
        self._names: dict[int, str] = {}  # id(strategy) -> its config name (errors name it)
        self._wants_derived = False
        self.broker: Broker | None = None
        self._ctx: StrategyContext | None = None
        self._positions = np.zeros(0)
        self._marks = np.zeros(0)  # per column, the mark before today's bars (0: never seen)
        self._live, self._live_rows = np.zeros(0), 0  # marks at the clock, from this many rows
        self._outside = 0.0  # positions of symbols not in the session, at their last marks
        self._all = np.zeros(0, dtype=np.int64)
        # the equity curve is computed in one pass over the day's stops (see _flush_curve)
        self._stop_ns: list[int] = []  # each clock stop of the day ...
        self._stop_rows: list[int] = []  # ... and how many base rows were revealed by then
        # what fills changed, by stop: cash from that stop on, and (stop, column, quantity) moves
        # over positions that were ``_held`` at the first stop not yet in the ledger
        self._cash_from: list[tuple[int, float]] = []
        self._moves: list[tuple[int, int, float]] = []
        self._held = np.zeros(0)
        self._flushed = 0  # stops already in the ledger

    def _on_teardown(self) -> None:
        self._reset()

    def _on_setup(self) -> None:
        if not self._classes:
            return
        data = self._data
        self.broker = Broker(self.portfolio, self._costs, lambda: data.columns)  # (the live columns)
        self.broker.orders.extend(self.portfolio.open_orders)  # carried GTC / market orders
        self._strategies = [self._create(name, cls, params) for name, cls, params in self._classes]
        self._wants_derived = any(
            type(s).on_derived_bars is not Strategy.on_derived_bars for s in self._strategies
        )
        self._ctx = StrategyContext(self._data, self._clock, self.broker, {}, self.equity)
        self._block = self._data.block(self._base.label)
        self._sync_columns()
        for strategy in self._strategies:
            self._call(strategy, "on_session_start")

    def _create(self, name: str, cls: type[Strategy], params: dict[str, Any]) -> Strategy:
        """Today's instance of one configured strategy (its constructor is user code too)."""
        try:
            strategy = cls(name, params, self.states[name])
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise self._failure(name, "__init__", exc) from exc
        self._names[id(strategy)] = name
        return strategy

    def _call(self, strategy: Strategy, callback: str, *args: Any) -> None:
        """Call ``strategy.<callback>(ctx, *args)``; whatever it raises (sys.exit included, not
        KeyboardInterrupt) becomes an error naming the strategy, the callback, the day and the clock."""
        ctx = self._ctx
        assert ctx is not None
        ctx.state = strategy.state
        try:
            getattr(strategy, callback)(ctx, *args)
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            raise self._failure(self._names[id(strategy)], callback, exc) from exc

    def _failure(self, name: str, callback: str, exc: BaseException) -> SessionError:
        """The run-ending error for ``exc`` raised by strategy ``name`` in ``callback``."""
        when = moment(self._clock.now_ns, self._data.plan) if self._clock.is_set else ""
        hint = "fix the strategy; `backtest --debug run ...` shows the traceback"
        if isinstance(exc, BacktestError):  # ours, raised for something the strategy asked
            detail = f"{exc.where}: {exc.message}" if exc.where else exc.message
            hint = exc.hint or hint
        elif isinstance(exc, SystemExit):
            detail = f"it called sys.exit({exc.code!r})"
            hint = "a strategy must not end the process: raise an exception to stop the run"
        else:
            detail = f"{type(exc).__name__}: {exc}"
        kind = type(exc) if isinstance(exc, _KEPT_ERRORS) else StrategyError
        return kind(f"{callback} failed {when}: {detail}", where=f"strategy {name!r}", hint=hint)

    def _sync_columns(self) -> None:
        """Positions and marks of the session's columns; positions outside it are valued once."""
        symbols = self._data.symbols
        self._symbol_list = list(symbols)
        self._columns = self._data.columns
        self._all = np.arange(len(symbols))
        self._all.flags.writeable = False  # every full batch's columns: shared, so nobody may change it
        self._positions = np.array([self.portfolio.position(s) for s in symbols], dtype=np.float64)
        self._marks = np.array([self.portfolio.marks.get(s, 0.0) for s in symbols], dtype=np.float64)
        self._live, self._live_rows = self._marks.copy(), 0  # see _marks_now
        self._outside = sum(
            p.quantity * self.portfolio.marks.get(s, p.average_price)
            for s, p in self.portfolio.positions.items()
            if p.quantity and s not in self._data
        )
        self._cash_from = [(len(self._stop_ns), self.portfolio.cash)]
        self._moves, self._held = [], self._positions.copy()

    def on_symbol_added(self, symbol: str) -> None:
        if self._ctx is not None:
            self._flush_curve()  # the stops so far, on the columns they had
            self._sync_columns()

    def before_symbol_removed(self, symbol: str, column: int) -> None:
        if self._ctx is not None:
            self._flush_curve()
            self._keep_marks()  # the leaving symbol's last close values it from now on

    def on_symbol_removed(self, symbol: str, column: int) -> None:
        if self._ctx is not None:
            self._sync_columns()

    def on_clock(self, now_ns: int, rows: range, derived: list[tuple[BarBlock, range]]) -> None:
        """Bars ending at ``now_ns`` arrived (base ``rows``, derived rows): fill, then call strategies."""
        ctx = self._ctx
        if ctx is None:
            return
        block = self._block
        if self.portfolio.open_orders:
            for row in rows:
                self._fill_orders(block, row)
        self._stop_ns.append(now_ns)
        self._stop_rows.append(block.filled)
        present, everyone = block.present, self._all
        for row in rows:
            arrived = np.count_nonzero(present[row])
            if not arrived:
                continue
            batch = Batch(self._data, block, row, now_ns, everyone if arrived == everyone.size else None)
            for strategy in self._strategies:
                ctx.state = strategy.state
                try:  # (free unless it raises; the call itself stays direct on this hot path)
                    strategy.on_bars(ctx, batch)
                except KeyboardInterrupt:
                    raise
                except BaseException as exc:
                    raise self._failure(self._names[id(strategy)], "on_bars", exc) from exc
        if not self._wants_derived:
            return
        for derived_block, derived_rows in derived:
            for row in derived_rows:
                if np.count_nonzero(derived_block.present[row]):
                    batch = Batch(self._data, derived_block, row, now_ns)
                    for strategy in self._strategies:
                        self._call(strategy, "on_derived_bars", derived_block.interval.label, batch)

    def _fill_orders(self, block: BarBlock, row: int) -> None:
        assert self.broker is not None
        hit = self.broker.on_row(block, row, self._columns)
        if hit:
            stop, symbols = len(self._stop_ns), self._symbol_list
            for j in hit:
                self._positions[j] = quantity = self.portfolio.position(symbols[j])
                self._moves.append((stop, j, quantity))
            self._cash_from.append((stop, self.portfolio.cash))

    def _marks_at(self, revealed: np.ndarray) -> np.ndarray:
        """Marks per stop (rows) and column: the close of the last bar among the first
        ``revealed[i]`` base rows, else the mark from before today."""
        k = self._positions.size
        upto = int(revealed.max()) if revealed.size else 0
        if not upto:
            return np.broadcast_to(self._marks, (revealed.size, k))
        block = self._block
        present = block.present[:upto, :k]
        last = np.where(present, np.arange(upto)[:, None], -1)
        np.maximum.accumulate(last, axis=0, out=last)
        at = last[np.maximum(revealed - 1, 0)]
        at[revealed == 0] = -1
        closes = np.take_along_axis(block.close[:upto, :k], np.maximum(at, 0), axis=0)
        return np.where(at >= 0, closes, self._marks)

    def _marks_now(self) -> np.ndarray:
        """Marks at the clock: :meth:`_marks_at` of the rows revealed so far, brought up to date
        from the rows revealed since the last call only (cheap when read at every bar)."""
        block, k, upto = self._block, self._positions.size, self._block.filled
        if upto > self._live_rows:
            present = block.present[self._live_rows : upto, :k]
            seen = present.any(axis=0)
            last = upto - 1 - np.argmax(present[::-1], axis=0)
            self._live = np.where(seen, block.close[last, np.arange(k)], self._live)
            self._live_rows = upto
        return self._live

    def equity(self) -> float:
        """Cash plus every position at its last close up to the clock."""
        return self.portfolio.cash + float(self._positions @ self._marks_now()) + self._outside

    def _flush_curve(self) -> None:
        """Append the equity curve of the stops not yet in the ledger, in one pass.

        At each stop: cash and positions as they stood after that stop's fills, every
        position marked at its last close by then (no bar after the stop is read).
        """
        first, count = self._flushed, len(self._stop_ns) - self._flushed
        if count <= 0:
            return
        marks = self._marks_at(np.asarray(self._stop_rows[first:], dtype=np.int64))
        stops = np.arange(first, first + count)
        starts, amounts = zip(*self._cash_from, strict=True)
        cash = np.array(amounts)[np.searchsorted(np.array(starts), stops, side="right") - 1]
        positions = self._positions_at(first, count)
        equity = cash + np.einsum("ij,ij->i", positions, marks) + self._outside
        exposed = np.asarray(positions.any(axis=1) | bool(self._outside), dtype=bool)
        ledger = self.ledger
        ledger.curve_ns.extend(self._stop_ns[first:])
        ledger.curve_cash.extend(cash.tolist())
        ledger.curve_equity.extend(equity.tolist())
        ledger.curve_exposed.extend(exposed.tolist())
        self._flushed = len(self._stop_ns)
        self._cash_from = self._cash_from[-1:]
        self._moves, self._held = [], self._positions.copy()

    def _positions_at(self, first: int, count: int) -> np.ndarray:
        """Positions per stop (rows ``first ..``) and column: ``_held``, then each move from its stop on."""
        k = self._held.size
        if not self._moves:
            return np.broadcast_to(self._held, (count, k))
        latest = {(stop - first, j): quantity for stop, j, quantity in self._moves}  # the last move wins
        rows, columns = (np.array(side, dtype=np.int64) for side in zip(*latest, strict=True))
        moved = np.zeros((count, k), dtype=bool)
        moved[rows, columns] = True
        values = np.zeros((count, k))
        values[rows, columns] = list(latest.values())
        since = np.where(moved, np.arange(count)[:, None], -1)  # the row of each column's last move
        np.maximum.accumulate(since, axis=0, out=since)
        taken = np.take_along_axis(values, np.maximum(since, 0), axis=0)
        return np.where(since >= 0, taken, self._held)

    def _keep_marks(self) -> np.ndarray:
        """Every session symbol's last close up to the clock, into the portfolio's marks (and returned)."""
        marks = self._marks_now()
        for j, symbol in enumerate(self._data.symbols[: marks.size]):
            if marks[j] > 0:
                self.portfolio.marks[symbol] = float(marks[j])
        return marks

    def notify(self, method: str, record: dict[str, Any]) -> None:
        """on_scan / on_insertion to every strategy."""
        if self._ctx is None:
            return
        for strategy in self._strategies:
            self._call(strategy, method, record)

    def _on_session_end(self) -> None:
        if not self._strategies or self.broker is None or self._ctx is None:
            return
        self._flush_curve()
        marks = self._keep_marks()
        self.broker.close_session(self._clock.now_ns, self._flat)
        self._sync_columns()
        for strategy in self._strategies:
            self._call(strategy, "on_session_end")
        self._keep_states()
        # one more point: the close, after flattening, at the same marks
        ledger, cash = self.ledger, self.portfolio.cash
        ledger.curve_ns.append(self._clock.now_ns)
        ledger.curve_cash.append(cash)
        ledger.curve_equity.append(cash + float(self._positions @ marks) + self._outside)
        ledger.curve_exposed.append(bool(self._positions.any()) or bool(self._outside))
        session = plan.session.isoformat() if (plan := self._data.plan) else ""
        self.ledger.add_orders(session, self.broker.orders)
        self.ledger.fills.extend(self.broker.fills)
        self.ledger.daily.append((plan.session if plan else None, float(self.ledger.curve_equity[-1])))

    def _keep_states(self) -> None:
        """Take each strategy's state for the next day, checked now: a state that cannot be saved
        as JSON would otherwise lose the whole run when it is written at the end."""
        for strategy in self._strategies:
            name = self._names[id(strategy)]
            state = strategy.state
            if not isinstance(state, dict):
                raise self._state_error(name, f"self.state is a {_type_name(state)}, not a dict")
            self.states[name] = state  # (the strategy may have bound self.state to a new dict)
            problem = unsaveable(state)
            if problem is not None:
                raise self._state_error(name, problem)

    def _state_error(self, name: str, problem: str) -> StrategyError:
        day = plan.session.isoformat() if (plan := self._data.plan) else "the session"
        return StrategyError(
            f"its state cannot be saved as JSON at the end of {day}: {problem}",
            where=f"strategy {name!r}",
            hint="self.state crosses days and is saved with the run: keep str, int, float, bool, "
            "None, lists and str-keyed dicts in it (a datetime as .isoformat(), a numpy number as "
            "float(...)); keep other objects on the strategy (self._x) for the day",
        )


def load_strategy_class(reference: str, base_dir: Path) -> type[Strategy]:
    """``module:Class`` or ``path/to/file.py:Class``."""
    from core.engine.scanners import load_class

    cls = load_class(reference, base_dir, "strategies.class", Strategy)
    return cls
