"""The run's execution record (:class:`Ledger`) and the session's equity curve that feeds it
(:class:`EquityCurve`).

The curve is cheap while the session streams: at each clock stop it notes the time and
how many base rows were revealed, and after fills the changed positions and cash.  The
equity of many stops is then computed in one vectorised pass (:meth:`EquityCurve.flush`)
when the session's columns change and at the close.  ``ctx.equity`` reads the equity at
the clock from marks brought up to date incrementally (:meth:`EquityCurve.equity`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.execution.orders import ORDER_FIELDS, Fill, Order
from core.execution.portfolio import Portfolio
from core.model.bars import BarBlock
from core.model.session_data import SessionData


@dataclass(slots=True)
class Ledger:
    """The run's execution record: every order, fill and equity point, every day's P&L."""

    fills: list[Fill] = field(default_factory=list)
    curve_ns: list[int] = field(default_factory=list)
    curve_equity: list[float] = field(default_factory=list)
    curve_cash: list[float] = field(default_factory=list)
    curve_exposed: list[bool] = field(default_factory=list)
    curve_gross: list[float] = field(default_factory=list)  # sum of |position value| at each point
    daily: list[tuple[Any, float]] = field(default_factory=list)  # (session, equity at the close)
    # (session, order, status, filled_ns, fill_price): each day's orders as they stood at its close
    order_rows: list[tuple[str, Order, str, int | None, float | None]] = field(default_factory=list)

    def add_points(
        self,
        ns: Iterable[int],
        cash: Iterable[float],
        equity: Iterable[float],
        exposed: Iterable[bool],
        gross: Iterable[float],
    ) -> None:
        """Append equity points: per point the clock, the cash, the equity, whether anything was
        held and the gross value held (longs and shorts both counted positive)."""
        self.curve_ns.extend(ns)
        self.curve_cash.extend(cash)
        self.curve_equity.extend(equity)
        self.curve_exposed.extend(exposed)
        self.curve_gross.extend(gross)

    def close_day(self, session: dt.date | None, orders: list[Order], fills: list[Fill]) -> None:
        """Record a session's orders as they stand at its close, its fills, and its closing equity
        (the last equity point)."""
        self.add_orders(session.isoformat() if session else "", orders)
        self.fills.extend(fills)
        self.daily.append((session, float(self.curve_equity[-1])))

    def add_orders(self, session: str, orders: list[Order]) -> None:
        """Record the day's orders as they stand now (a carried order appears again the next day)."""
        self.order_rows.extend((session, o, o.status, o.filled_ns, o.fill_price) for o in orders)

    @property
    def orders(self) -> list[dict[str, Any]]:
        """One dict per recorded order and day: ``date`` then the order's fields at that day's close."""
        return [
            {"date": day, **order.as_dict(), "status": status, "filled_ns": filled, "fill_price": price}
            for day, order, status, filled, price in self.order_rows
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


class EquityCurve:
    """One session's equity at every clock stop, and at the clock, written into a :class:`Ledger`.

    At each stop: cash and positions as they stood after that stop's fills, every
    position marked at its last close by then (no bar after the stop is read); a
    position in a symbol not in the session at its last mark.  Made at the session's
    setup over its base bars; :meth:`sync` after the session's columns change.
    """

    def __init__(self, portfolio: Portfolio, data: SessionData, block: BarBlock, ledger: Ledger) -> None:
        self._portfolio = portfolio
        self._data = data
        self._block = block  # the session's base bars, revealed as the clock moves
        self._ledger = ledger
        self._stop_ns: list[int] = []  # each clock stop of the day ...
        self._stop_rows: list[int] = []  # ... and how many base rows were revealed by then
        self._flushed = 0  # stops already in the ledger
        self.sync()

    def sync(self) -> None:
        """Take the session's columns as they are now: positions and marks per column, and the
        value of positions outside the session (valued once, at their last marks)."""
        symbols, portfolio = self._data.symbols, self._portfolio
        self._symbols = list(symbols)
        self._positions = np.array([portfolio.position(s) for s in symbols], dtype=np.float64)
        self._marks = np.array([portfolio.marks.get(s, 0.0) for s in symbols], dtype=np.float64)
        self._live, self._live_rows = self._marks.copy(), 0  # marks at the clock, from this many rows
        outside = [
            p.quantity * portfolio.marks.get(s, p.average_price)
            for s, p in portfolio.positions.items()
            if p.quantity and s not in self._data
        ]
        self._outside = sum(outside)
        self._outside_gross = sum(abs(value) for value in outside)
        # what fills changed, by stop: cash from that stop on, and (stop, column, quantity) moves
        # over the positions ``_held`` at the first stop not yet in the ledger
        self._cash_from = [(len(self._stop_ns), portfolio.cash)]
        self._moves: list[tuple[int, int, float]] = []
        self._held = self._positions.copy()

    def stop(self, now_ns: int) -> None:
        """The clock stopped at ``now_ns`` (after the fills of the bars that ended then)."""
        self._stop_ns.append(now_ns)
        self._stop_rows.append(self._block.filled)

    def filled(self, columns: list[int]) -> None:
        """Fills at the coming stop changed the positions of ``columns`` (and the cash)."""
        stop, symbols, portfolio = len(self._stop_ns), self._symbols, self._portfolio
        for j in columns:
            self._positions[j] = quantity = portfolio.position(symbols[j])
            self._moves.append((stop, j, quantity))
        self._cash_from.append((stop, portfolio.cash))

    def equity(self) -> float:
        """Cash plus every position at its last close up to the clock."""
        return self._portfolio.cash + float(self._positions @ self._marks_now()) + self._outside

    def flush(self) -> None:
        """Append the equity of the stops not yet in the ledger, in one pass."""
        first, count = self._flushed, len(self._stop_ns) - self._flushed
        if count <= 0:
            return
        marks = self._marks_at(np.asarray(self._stop_rows[first:], dtype=np.int64))
        stops = np.arange(first, first + count)
        starts, amounts = zip(*self._cash_from, strict=True)
        cash = np.array(amounts)[np.searchsorted(np.array(starts), stops, side="right") - 1]
        positions = self._positions_at(first, count)
        equity = cash + np.einsum("ij,ij->i", positions, marks) + self._outside
        gross = np.einsum("ij,ij->i", np.abs(positions), np.abs(marks)) + self._outside_gross
        exposed = np.asarray(positions.any(axis=1) | bool(self._outside), dtype=bool)
        self._ledger.add_points(
            self._stop_ns[first:], cash.tolist(), equity.tolist(), exposed.tolist(), gross.tolist()
        )
        self._flushed = len(self._stop_ns)
        self._cash_from = self._cash_from[-1:]
        self._moves, self._held = [], self._positions.copy()

    def keep_marks(self) -> np.ndarray:
        """Every session symbol's last close up to the clock, into the portfolio's marks (and returned)."""
        marks = self._marks_now()
        for j, symbol in enumerate(self._data.symbols[: marks.size]):
            if marks[j] > 0:
                self._portfolio.marks[symbol] = float(marks[j])
        return marks

    def close(self, now_ns: int, marks: np.ndarray) -> None:
        """The session's last point, at the close: the cash and positions now (after flattening
        and :meth:`sync`), at ``marks`` (from :meth:`keep_marks`, before flattening)."""
        cash = self._portfolio.cash
        equity = cash + float(self._positions @ marks) + self._outside
        gross = float(np.abs(self._positions) @ np.abs(marks)) + self._outside_gross
        exposed = bool(self._positions.any()) or bool(self._outside)
        self._ledger.add_points([now_ns], [cash], [equity], [exposed], [gross])

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
