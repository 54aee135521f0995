"""The simulated broker: it queues the orders strategies submit and fills them on the bars
that arrive, booking each fill into the :class:`~core.execution.portfolio.Portfolio`.

Fill rules (no look-ahead: an order only ever fills on a bar that STARTS at or
after the clock time it was submitted, and only on a bar that exists):

- market: at the open of the symbol's next bar (the next session's first bar
  when submitted at the close, unless ``cancel_at_close``), slippage against you;
- limit buy/sell: when a bar trades through the limit (low <= limit for a buy,
  high >= limit for a sell), at the limit or at the bar's open if that is better
  (a gap through the limit);
- stop buy/sell: when a bar trades through the stop, at the stop or at the open
  if that is worse (a gap through the stop), slippage against you;
- ``day`` limit and stop orders expire at the close; ``gtc`` ones carry over.
- commissions: per share + per order + bps of notional; slippage in bps.
- ``flat_at_close``: every position is closed at the close at each symbol's
  last close (a market-on-close), with slippage and commission.

Orders are checked when submitted (:func:`~core.execution.orders.order_problem`),
never per bar.  ``Order``, ``Fill``, ``OrderError`` and ``Portfolio`` are importable
from here too (their homes: :mod:`core.execution.orders`, :mod:`core.execution.portfolio`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass

from core.execution.orders import (
    ORDER_FIELDS,
    Fill,
    Order,
    OrderError,
    describe_order,
    order_problem,
)
from core.execution.portfolio import Portfolio, Position
from core.model.bars import BarBlock

__all__ = [
    "ORDER_FIELDS",
    "Broker",
    "Costs",
    "Fill",
    "Order",
    "OrderError",
    "Portfolio",
    "Position",
]


@dataclass(frozen=True, slots=True)
class Costs:
    """What trading costs: commissions (per share, per order, in bps of notional) and slippage
    (in bps of the price, against you, on market and stop fills)."""

    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    commission_bps: float = 0.0
    slippage_bps: float = 0.0

    def commission(self, quantity: float, price: float) -> float:
        """The commission of one fill of ``quantity`` at ``price``."""
        if not (self.commission_per_share or self.commission_per_order or self.commission_bps):
            return 0.0
        return (
            self.commission_per_share * quantity
            + self.commission_per_order
            + self.commission_bps * 1e-4 * quantity * price
        )

    def slipped(self, price: float, side: str) -> float:
        """``price`` moved against a ``side`` order by the slippage."""
        if not self.slippage_bps:
            return price
        factor = self.slippage_bps * 1e-4
        return price * (1.0 + factor) if side == "buy" else price * (1.0 - factor)


class Broker:
    """Accepts orders during a session and fills them against the bars that arrive.

    One broker per session, over the run's portfolio: the strategy manager makes it at
    the session's setup (carrying the open GTC and market orders), hands it the bars of
    each clock stop (:meth:`on_row`) before the strategies see them, and closes the day
    (:meth:`close_session`).  Strategies reach it through ``ctx.buy`` / ``ctx.sell`` /
    ``ctx.cancel``.
    """

    def __init__(
        self,
        portfolio: Portfolio,
        costs: Costs,
        symbols: Callable[[], Collection[str]] | None = None,
    ) -> None:
        """``symbols``: the session's symbols now (orders for others are refused); None: any."""
        self.portfolio = portfolio
        self.costs = costs
        self._symbols = symbols
        self._ids = itertools.count(portfolio.next_order_id)
        self.orders: list[Order] = []  # every order of this session (new and carried)
        self.fills: list[Fill] = []

    def submit(
        self,
        symbol: str,
        side: str,
        quantity: float,
        now_ns: int,
        type: str = "market",
        limit: float | None = None,
        stop: float | None = None,
        tif: str = "day",
        cancel_at_close: bool = False,
        tag: str = "",
    ) -> Order:
        """Check an order submitted at the clock ``now_ns`` and queue it; returns the open order.

        ``type`` market (the default), limit (needs ``limit``) or stop (needs ``stop``);
        ``tif`` day (a limit or stop order expires at the close) or gtc (carries over);
        ``cancel_at_close`` cancels whatever is left at the close (a market order too,
        which otherwise fills at the next session's first bar); ``tag`` is stored with
        it.  It fills on a later bar (see the module docstring), never on one that started
        before ``now_ns``.  A bad order raises :class:`OrderError` at once, naming the
        order and its fault.
        """
        symbols = self._symbols() if self._symbols is not None else None
        fault = order_problem(symbol, side, quantity, type, limit, stop, tif, cancel_at_close, symbols)
        if fault is not None:
            problem, hint = fault
            described = describe_order(symbol, side, quantity, type, limit, stop, tif)
            raise OrderError(f"order refused ({described}): {problem}", hint=hint)
        limit = None if limit is None else float(limit)
        stop = None if stop is None else float(stop)
        order = Order(
            next(self._ids),
            symbol,
            side,
            float(quantity),
            type,
            now_ns,
            limit,
            stop,
            tif,
            cancel_at_close,
            tag=tag,
        )
        return self._queue(order)

    def _queue(self, order: Order) -> Order:
        """Queue an order already known to be valid."""
        self.portfolio.next_order_id = order.id + 1
        self.portfolio.open_orders.append(order)
        self.orders.append(order)
        return order

    def cancel(self, order_id: int, now_ns: int | None = None) -> bool:
        """Cancel an open order (at clock ``now_ns``); False when no open order has that id."""
        for order in self.portfolio.open_orders:
            if order.id == order_id:
                order.status, order.closed_ns = "cancelled", now_ns
                self.portfolio.open_orders.remove(order)
                return True
        return False

    def on_row(self, block: BarBlock, row: int, columns: Mapping[str, int]) -> list[int]:
        """Row ``row`` of ``block`` (a column per symbol, ``columns`` maps them) has ended: fill
        what it triggers.

        Orders are tried in submission order; a symbol without a bar in the row fills
        nothing.  Returns the columns that had fills.
        """
        hit = []
        start_ns, end_ns = int(block.starts[row]), int(block.ends[row])
        for order in list(self.portfolio.open_orders):  # a copy: fills leave the list
            j = columns.get(order.symbol)
            if j is None or not block.present[row, j]:
                continue
            bar = float(block.open[row, j]), float(block.high[row, j]), float(block.low[row, j])
            if self._try(order, start_ns, end_ns, *bar) is not None:
                hit.append(j)
        return hit

    def _try(self, order: Order, start_ns: int, end_ns: int, o: float, h: float, low: float) -> Fill | None:
        """Fill ``order`` on a bar ``[start_ns, end_ns)`` if the bar triggers it (never a bar that
        started before the order was submitted)."""
        if start_ns < order.submitted_ns:
            return None
        reference = self._trigger(order, o, h, low)
        if reference is None:
            return None
        price = reference if order.type == "limit" else self.costs.slipped(reference, order.side)
        return self._fill(order, price, start_ns, end_ns, reference)

    def _trigger(self, order: Order, o: float, h: float, low: float) -> float | None:
        """The price ``order`` fills at on a bar (open, high, low), before slippage; None: not triggered.

        Market and stop fills then slip against the order; limit fills do not."""
        buy = order.side == "buy"
        if order.type == "market":
            return o
        if order.type == "limit":
            assert order.limit is not None
            if buy and low <= order.limit:
                return min(order.limit, o)
            if not buy and h >= order.limit:
                return max(order.limit, o)
            return None
        assert order.stop is not None
        if buy and h >= order.stop:
            return max(order.stop, o)
        if not buy and low <= order.stop:
            return min(order.stop, o)
        return None

    def _fill(self, order: Order, price: float, start_ns: int, end_ns: int, reference: float) -> Fill:
        fill = Fill(
            order.id,
            order.symbol,
            order.side,
            order.quantity,
            price,
            self.costs.commission(order.quantity, price),
            end_ns,
            start_ns,
            reference,
        )
        order.status, order.filled_ns, order.fill_price = "filled", end_ns, price
        self.portfolio.open_orders.remove(order)
        self.portfolio.apply(fill)
        self.fills.append(fill)
        return fill

    def close_session(self, now_ns: int, flat: bool) -> None:
        """At the close: optional market-on-close flattening, then expire day orders."""
        if flat:
            for symbol, held in list(self.portfolio.positions.items()):
                if held.quantity == 0 or symbol not in self.portfolio.marks:
                    continue
                side = "sell" if held.quantity > 0 else "buy"
                # (not submit(): a symbol that left the session mid-day is flattened too)
                quantity = abs(held.quantity)
                order = self._queue(
                    Order(next(self._ids), symbol, side, quantity, "market", now_ns, tag="flat at close")
                )
                mark = self.portfolio.marks[symbol]
                self._fill(order, self.costs.slipped(mark, side), now_ns, now_ns, mark)
        for order in list(self.portfolio.open_orders):
            if order.cancel_at_close or (order.type != "market" and order.tif == "day"):
                order.status = "cancelled" if order.cancel_at_close else "expired"
                order.closed_ns = now_ns
                self.portfolio.open_orders.remove(order)
