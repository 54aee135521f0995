"""What a strategy's callbacks receive: the :class:`Batch` of bars that just ended and its own
:class:`StrategyContext`, which reads the session up to the clock and trades.

Nothing here reveals a bar or a value that ends after the clock: batches hold the
bars that ended at it, the context's series hold the bars that have ended, and
``bar_at`` / ``value_at`` of a later bar raise :class:`LookAheadError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from typing import Any, NamedTuple, Protocol

import numpy as np

from calendars import Interval, SessionPlan, SimClock
from calendars.timefmt import iso_us, local_iso
from core.errors import SessionError
from core.execution.broker import Broker
from core.execution.orders import Order
from core.execution.params import did_you_mean
from core.model.bars import BarBlock, SymbolBars
from core.model.session_data import IndicatorSeries, SessionData


class LookAheadError(SessionError):
    """A strategy asked for a bar or value that ends after the clock."""


def moment(now_ns: int, plan: SessionPlan | None) -> str:
    """``on <session> at <local ISO> <tz> (<UTC ISO>)``: a clock time as errors show it."""
    if plan is None:
        return f"at {iso_us(now_ns)}"
    return f"on {plan.session.isoformat()} at {local_iso(now_ns, plan.tz)} {plan.tz} ({iso_us(now_ns)})"


def _local_and_utc(ts_ns: int, plan: SessionPlan | None) -> str:
    """``<local ISO> (<UTC ISO>)``, or the UTC ISO time alone without a session."""
    if plan is None:
        return iso_us(ts_ns)
    return f"{local_iso(ts_ns, plan.tz)} ({iso_us(ts_ns)})"


def missing_indicator(key: str, configured: Iterable[str]) -> SessionError:
    """The error for reading an indicator key the config does not compute."""
    keys = sorted(configured)
    return SessionError(
        f"indicator {key!r} is not configured{did_you_mean(key, keys)}; "
        f"configured: {', '.join(keys) or 'none'}",
        hint="add an [[indicators]] table that computes it (keys read <kind>_<period>@<interval>), "
        "or read one of the configured keys",
    )


class Bar(NamedTuple):
    """One symbol's bar: its start (UTC ns) and prices, as ``batch[symbol]`` and ``ctx.bar_at`` give it."""

    symbol: str
    ts_ns: int  # the bar's start
    open: float
    high: float
    low: float
    close: float
    volume: float


class Batch:
    """The bars of one interval that ended at one clock time, one per symbol, as arrays.

    A strategy gets one in ``on_bars`` (base bars) and ``on_derived_bars``; it holds only
    the symbols that have a bar ending now (a symbol with a gap is left out), on the
    interval ``interval`` (``"1m"``), ended at the clock ``now_ns`` (UTC ns).  Position
    ``j`` of every array (``close[j]``, ``indicator(key)[j]``) is the symbol
    ``symbols[j]``, whose column in the session is ``columns[j]`` (its position in
    ``ctx.symbols``).  The arrays are made on first use, as copies: writing into one
    changes no bar or value of the session (the strategies called with the same batch
    share them).
    """

    def __init__(
        self, data: SessionData, block: BarBlock, row: int, now_ns: int, columns: np.ndarray | None = None
    ) -> None:
        """The bars of ``block``'s row ``row``, ended at ``now_ns``; ``columns`` given: every
        column of the block has a bar in this row (the engine passes one shared array)."""
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
        """The bars' start (UTC ns); they ended at ``now_ns``, the clock."""
        return int(self._block.starts[self._row])

    @cached_property
    def symbols(self) -> list[str]:
        """The symbols that have a bar in this batch, in column order."""
        names = self._data.symbols
        return [names[j] for j in self.columns.tolist()]

    @cached_property
    def open(self) -> np.ndarray:
        """Each symbol's open."""
        return self._pick(self._block.open)

    @cached_property
    def high(self) -> np.ndarray:
        """Each symbol's high."""
        return self._pick(self._block.high)

    @cached_property
    def low(self) -> np.ndarray:
        """Each symbol's low."""
        return self._pick(self._block.low)

    @cached_property
    def close(self) -> np.ndarray:
        """Each symbol's close."""
        return self._pick(self._block.close)

    @cached_property
    def volume(self) -> np.ndarray:
        """Each symbol's volume."""
        return self._pick(self._block.volume)

    def __len__(self) -> int:
        return len(self.symbols)

    def __iter__(self) -> Iterator[Bar]:
        """Each symbol's :class:`Bar` (one object per symbol: the arrays are faster)."""
        for j, symbol in enumerate(self.symbols):
            yield self._bar(j, symbol)

    def __getitem__(self, symbol: str) -> Bar:
        """``symbol``'s :class:`Bar` in this batch (ValueError when it has none)."""
        return self._bar(self.symbols.index(symbol), symbol)

    def _bar(self, j: int, symbol: str) -> Bar:
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
        """The indicator's value at this bar for each symbol of the batch (NaN while not ready).

        ``key`` must be configured and on this batch's interval (``sma_20@1m`` in
        ``on_bars`` of 1m bars).
        """
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


class _Owner(Protocol):
    """The strategy a context belongs to (only its ``state`` is read)."""

    state: dict[str, Any]


class StrategyContext:
    """A strategy's view of the session at the clock, and its hands on the broker.

    Each strategy gets its own context for the session, passed to every callback.
    Reading: the session's symbols, today's bars and indicator values that have ended,
    history; nothing here ends after the clock.  Trading: :meth:`buy`, :meth:`sell`,
    :meth:`cancel`; orders are checked when submitted and fill on a later bar (see
    :mod:`core.execution.broker`).  The portfolio: :meth:`position`, :attr:`cash`,
    :attr:`equity`, :attr:`open_orders`.
    """

    def __init__(
        self,
        data: SessionData,
        clock: SimClock,
        broker: Broker,
        owner: _Owner,
        equity: Callable[[], float],
    ) -> None:
        """The context of strategy ``owner`` for today's session; ``equity`` values the
        portfolio at the clock."""
        self._data = data
        self._clock = clock
        self._broker = broker
        self._owner = owner
        self._equity = equity

    @property
    def state(self) -> dict[str, Any]:
        """The strategy's ``self.state``: what it keeps from day to day (saved with the run)."""
        return self._owner.state

    @property
    def now_ns(self) -> int:
        """The clock (UTC ns): the end of the bars just delivered."""
        return self._clock.now_ns

    @property
    def session(self) -> SessionPlan:
        """Today's session: its date, exchange time zone, open and close."""
        plan = self._data.plan
        assert plan is not None
        return plan

    @property
    def symbols(self) -> tuple[str, ...]:
        """The session's symbols now, in column order (they change when a symbol joins or leaves)."""
        return self._data.symbols

    # -- reading ------------------------------------------------------------
    def bars(self, symbol: str, interval: str) -> SymbolBars:
        """Today's bars of ``symbol`` on ``interval`` that have ended by the clock."""
        return self._data[symbol].bars(interval)

    def history(self, symbol: str, interval: str) -> SymbolBars | None:
        """``symbol``'s bars on ``interval`` of the trailing days before today (None: none loaded)."""
        return self._data[symbol].history(interval)

    def indicator(self, symbol: str, key: str) -> IndicatorSeries:
        """One symbol's values of indicator ``key`` for the bars that have ended."""
        if key not in self._data.indicators:
            raise missing_indicator(key, self._data.indicators)
        return self._data[symbol].indicator(key)

    def bar_at(self, symbol: str, interval: str, ts_ns: int) -> Bar:
        """The bar of ``symbol`` starting at ``ts_ns``; one that has not ended yet is look-ahead
        (:class:`LookAheadError`)."""
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
        """The value of indicator ``key`` for ``symbol``'s bar starting at ``ts_ns``; a bar that
        has not ended yet is look-ahead (:class:`LookAheadError`)."""
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
        """Submit an order to buy ``quantity`` of ``symbol`` now; returns it (open).

        kwargs: ``type`` market (default) | limit | stop, ``limit=``, ``stop=``, ``tif`` day
        (default) | gtc, ``cancel_at_close``, ``tag`` (see :meth:`Broker.submit`).  A market
        order fills at the open of the symbol's next bar.  A bad order raises
        :class:`~core.execution.orders.OrderError`, which ends the run.
        """
        return self._broker.submit(symbol, "buy", quantity, self.now_ns, **kwargs)

    def sell(self, symbol: str, quantity: float, **kwargs: Any) -> Order:
        """Submit an order to sell ``quantity`` (above 0) of ``symbol`` now; as :meth:`buy`.

        Selling more than is held goes short.
        """
        return self._broker.submit(symbol, "sell", quantity, self.now_ns, **kwargs)

    def cancel(self, order_id: int) -> bool:
        """Cancel an open order now; False when no open order has that id."""
        return self._broker.cancel(order_id, self.now_ns)

    def position(self, symbol: str) -> float:
        """The signed quantity held of ``symbol`` now (0 when none; fills so far included)."""
        held = self._broker.portfolio.positions.get(symbol)
        return held.quantity if held is not None else 0.0

    @property
    def open_orders(self) -> list[Order]:
        """The orders not yet filled, cancelled or expired (a copy of the list)."""
        return list(self._broker.portfolio.open_orders)

    @property
    def cash(self) -> float:
        """The cash now: after every fill so far and its commission."""
        return self._broker.portfolio.cash

    @property
    def equity(self) -> float:
        """Cash plus every position at its last close up to the clock."""
        return self._equity()
