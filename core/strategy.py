"""Strategies: the user contract, what they may read, and the manager that drives them.

Write one::

    from core.strategy import Batch, Strategy, StrategyContext

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
positions, open orders) and ``self.state``, a mapping the strategy owns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from calendars import Interval, SessionPlan, SimClock
from core.bars import BarBlock, SymbolBars
from core.broker import ORDER_FIELDS, Broker, Costs, Fill, Order, Portfolio
from core.components import Component
from core.errors import SessionError
from core.session_data import IndicatorSeries, SessionData


class LookAheadError(SessionError):
    """A strategy asked for a bar or value that ends after the clock."""


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
        values = self._indicators.get(key) or self._data.indicator_values(key)  # (the latter explains)
        if values.interval != self.interval:
            raise SessionError(
                f"{key} is on {values.interval} bars, this batch is {self.interval}", where=key
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
        return self._data[symbol].indicator(key)

    def bar_at(self, symbol: str, interval: str, ts_ns: int) -> Bar:
        """The bar starting at ``ts_ns``; a bar that has not ended yet is look-ahead."""
        self._guard(ts_ns, Interval.parse(interval), f"{interval} bar of {symbol}")
        bars = self.bars(symbol, interval)
        hits = np.flatnonzero(bars.ts == ts_ns)
        if not hits.size:
            raise SessionError(f"no {interval} bar of {symbol} starts at {ts_ns}", where=symbol)
        i = int(hits[0])
        return Bar(
            symbol, ts_ns, *(float(getattr(bars, f)[i]) for f in ("open", "high", "low", "close", "volume"))
        )

    def value_at(self, symbol: str, key: str, ts_ns: int) -> float:
        """The indicator value of the bar starting at ``ts_ns``; later bars are look-ahead."""
        interval = Interval.parse(key.split("@", 1)[1].split(".", 1)[0])
        self._guard(ts_ns, interval, f"{key} of {symbol}")
        series = self.indicator(symbol, key)
        hits = np.flatnonzero(series.ts == ts_ns)
        if not hits.size:
            raise SessionError(f"no {key} value of {symbol} at {ts_ns}", where=symbol)
        return float(series.values[int(hits[0])])

    def _guard(self, ts_ns: int, interval: Interval, what: str) -> None:
        if ts_ns + interval.nanoseconds > self.now_ns:
            raise LookAheadError(
                f"look-ahead: the {what} starting at {ts_ns} ends after the clock {self.now_ns}",
                hint="read bars that have ended: ctx.bars(...) holds exactly those",
            )

    # -- trading ------------------------------------------------------------
    def buy(self, symbol: str, quantity: float, **kwargs: Any) -> Order:
        """Buy ``quantity``; kwargs: type market|limit|stop, limit, stop, tif day|gtc, cancel_at_close."""
        return self._broker.submit(symbol, "buy", quantity, self.now_ns, **kwargs)

    def sell(self, symbol: str, quantity: float, **kwargs: Any) -> Order:
        return self._broker.submit(symbol, "sell", quantity, self.now_ns, **kwargs)

    def cancel(self, order_id: int) -> bool:
        return self._broker.cancel(order_id)

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

    def __init__(self, name: str, params: dict[str, Any], state: dict[str, Any]) -> None:
        self.name = name
        self.params = dict(params)
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
        self.broker = Broker(self.portfolio, self._costs)
        self.broker.orders.extend(self.portfolio.open_orders)  # carried GTC / market orders
        self._strategies = [cls(name, params, self.states[name]) for name, cls, params in self._classes]
        self._wants_derived = any(
            type(s).on_derived_bars is not Strategy.on_derived_bars for s in self._strategies
        )
        self._ctx = StrategyContext(self._data, self._clock, self.broker, {}, self.equity)
        self._block = self._data.block(self._base.label)
        self._sync_columns()
        for strategy in self._strategies:
            self._ctx.state = strategy.state
            strategy.on_session_start(self._ctx)

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
                strategy.on_bars(ctx, batch)
        if not self._wants_derived:
            return
        for derived_block, derived_rows in derived:
            for row in derived_rows:
                if np.count_nonzero(derived_block.present[row]):
                    batch = Batch(self._data, derived_block, row, now_ns)
                    for strategy in self._strategies:
                        ctx.state = strategy.state
                        strategy.on_derived_bars(ctx, derived_block.interval.label, batch)

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
            self._ctx.state = strategy.state
            getattr(strategy, method)(self._ctx, record)

    def _on_session_end(self) -> None:
        if not self._strategies or self.broker is None or self._ctx is None:
            return
        self._flush_curve()
        marks = self._keep_marks()
        self.broker.close_session(self._clock.now_ns, self._flat)
        self._sync_columns()
        for strategy in self._strategies:
            self._ctx.state = strategy.state
            strategy.on_session_end(self._ctx)
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


def load_strategy_class(reference: str, base_dir: Path) -> type[Strategy]:
    """``module:Class`` or ``path/to/file.py:Class``."""
    from core.scanners import load_class

    cls = load_class(reference, base_dir, "strategies.class", Strategy)
    return cls
