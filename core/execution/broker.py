"""Simulated execution: orders, fills, the portfolio that crosses days.

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

Orders are checked when submitted (:func:`order_problem`), never per bar: a
quantity or price that is not a finite number above zero, an unknown side, type
or tif, or a symbol not in the session raises :class:`OrderError` at once
(such an order would otherwise never fill, or poison cash and equity with NaN).
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

from core.errors import SessionError
from core.model.bars import BarBlock

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop")
TIFS = ("day", "gtc")


class OrderError(SessionError):
    """An order was refused when submitted (bad quantity, price, side, type, tif or symbol)."""


@dataclass(frozen=True, slots=True)
class Costs:
    commission_per_share: float = 0.0
    commission_per_order: float = 0.0
    commission_bps: float = 0.0
    slippage_bps: float = 0.0

    def commission(self, quantity: float, price: float) -> float:
        if not (self.commission_per_share or self.commission_per_order or self.commission_bps):
            return 0.0
        return (
            self.commission_per_share * quantity
            + self.commission_per_order
            + self.commission_bps * 1e-4 * quantity * price
        )

    def slipped(self, price: float, side: str) -> float:
        if not self.slippage_bps:
            return price
        factor = self.slippage_bps * 1e-4
        return price * (1.0 + factor) if side == "buy" else price * (1.0 - factor)


@dataclass(slots=True)
class Order:
    id: int
    symbol: str
    side: str  # "buy" | "sell"
    quantity: float
    type: str  # "market" | "limit" | "stop"
    submitted_ns: int
    limit: float | None = None
    stop: float | None = None
    tif: str = "day"  # "day" | "gtc"
    cancel_at_close: bool = False
    status: str = "open"  # open | filled | cancelled | expired
    filled_ns: int | None = None
    fill_price: float | None = None
    tag: str = ""
    closed_ns: int | None = None  # when it was cancelled or expired

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in ORDER_FIELDS}


class Fill(NamedTuple):
    """One execution (immutable; a tuple, cheap to create)."""

    order_id: int
    symbol: str
    side: str
    quantity: float
    price: float
    commission: float
    ts_ns: int  # the clock time the fill became known (the end of the bar it filled on)
    bar_ns: int  # start of the bar it filled on

    def as_dict(self) -> dict[str, Any]:
        return self._asdict()


ORDER_FIELDS = tuple(Order.__dataclass_fields__)


@dataclass(slots=True)
class Position:
    quantity: float = 0.0
    average_price: float = 0.0  # of the open quantity
    realized: float = 0.0


@dataclass(slots=True)
class Portfolio:
    """Cash, positions and open orders; the one thing (with strategy state) that crosses days."""

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: list[Order] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # last known close per symbol
    next_order_id: int = 1
    commissions: float = 0.0

    def position(self, symbol: str) -> float:
        held = self.positions.get(symbol)
        return held.quantity if held else 0.0

    def equity(self) -> float:
        return self.cash + sum(
            p.quantity * self.marks.get(s, p.average_price) for s, p in self.positions.items()
        )

    def unrealized(self) -> float:
        return sum(
            p.quantity * (self.marks.get(s, p.average_price) - p.average_price)
            for s, p in self.positions.items()
        )

    def realized(self) -> float:
        return sum(p.realized for p in self.positions.values())

    def apply(self, fill: Fill) -> None:
        """Book a fill: cash, position, average price, realised P&L (commission included)."""
        signed = fill.quantity if fill.side == "buy" else -fill.quantity
        self.cash -= signed * fill.price + fill.commission
        self.commissions += fill.commission
        held = self.positions.get(fill.symbol)
        if held is None:
            held = self.positions[fill.symbol] = Position()
        held.realized -= fill.commission
        if held.quantity == 0 or (held.quantity > 0) == (signed > 0):
            total = held.quantity + signed
            held.average_price = (held.average_price * held.quantity + fill.price * signed) / total
            held.quantity = total
            return
        closing = min(abs(signed), abs(held.quantity))
        direction = 1.0 if held.quantity > 0 else -1.0
        held.realized += closing * direction * (fill.price - held.average_price)
        held.quantity += signed
        if abs(held.quantity) < 1e-12:
            held.quantity, held.average_price = 0.0, 0.0
        elif (held.quantity > 0) != (direction > 0):
            held.average_price = fill.price  # flipped: the remainder opened at this price

    def to_json(self) -> dict[str, Any]:
        return {
            "cash": self.cash,
            "positions": {s: asdict(p) for s, p in self.positions.items()},
            "open_orders": [o.as_dict() for o in self.open_orders],
            "marks": self.marks,
            "next_order_id": self.next_order_id,
            "commissions": self.commissions,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Portfolio:
        return cls(
            cash=float(data["cash"]),
            positions={s: Position(**p) for s, p in data.get("positions", {}).items()},
            open_orders=[Order(**o) for o in data.get("open_orders", [])],
            marks={s: float(v) for s, v in data.get("marks", {}).items()},
            next_order_id=int(data.get("next_order_id", 1)),
            commissions=float(data.get("commissions", 0.0)),
        )


class Broker:
    """Accepts orders during a session and fills them against the bars that arrive."""

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
        """Check an order and queue it; raises :class:`OrderError` naming the order and its fault."""
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

    def on_bar(
        self, symbol: str, start_ns: int, end_ns: int, o: float, h: float, low: float, c: float
    ) -> list[Fill]:
        """A bar of ``symbol`` has ended: fill what it triggers, then mark the position."""
        filled = []
        for order in [o for o in self.portfolio.open_orders if o.symbol == symbol]:
            fill = self._try(order, start_ns, end_ns, o, h, low)
            if fill is not None:
                filled.append(fill)
        self.portfolio.marks[symbol] = c
        return filled

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
        price = self._trigger(order, o, h, low)
        return None if price is None else self._fill(order, price, start_ns, end_ns)

    def _trigger(self, order: Order, o: float, h: float, low: float) -> float | None:
        buy = order.side == "buy"
        if order.type == "market":
            return self.costs.slipped(o, order.side)
        if order.type == "limit":
            assert order.limit is not None
            if buy and low <= order.limit:
                return min(order.limit, o)
            if not buy and h >= order.limit:
                return max(order.limit, o)
            return None
        assert order.stop is not None
        if buy and h >= order.stop:
            return self.costs.slipped(max(order.stop, o), "buy")
        if not buy and low <= order.stop:
            return self.costs.slipped(min(order.stop, o), "sell")
        return None

    def _fill(self, order: Order, price: float, start_ns: int, end_ns: int) -> Fill:
        fill = Fill(
            order.id,
            order.symbol,
            order.side,
            order.quantity,
            price,
            self.costs.commission(order.quantity, price),
            end_ns,
            start_ns,
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
                self._fill(order, self.costs.slipped(mark, side), now_ns, now_ns)
        for order in list(self.portfolio.open_orders):
            if order.cancel_at_close or (order.type != "market" and order.tif == "day"):
                order.status = "cancelled" if order.cancel_at_close else "expired"
                order.closed_ns = now_ns
                self.portfolio.open_orders.remove(order)


def describe_order(symbol: Any, side: Any, quantity: Any, type: Any, limit: Any, stop: Any, tif: Any) -> str:
    """An order as a trader reads it: ``buy 100 MSFT limit 101.5, tif day``."""
    text = f"{side} {_show(quantity)} {symbol} {type}"
    if limit is not None:
        text += f" limit {_show(limit)}"
    if stop is not None:
        text += f" stop {_show(stop)}"
    return f"{text}, tif {tif}"


def _show(value: Any) -> str:
    """A number as plain text (``nan``, ``-5``, ``101.25``; numpy scalars too), else its repr."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)  # nan, inf: 'nan', 'inf'
    return repr(value)


def order_problem(
    symbol: Any,
    side: Any,
    quantity: Any,
    type: Any,
    limit: Any,
    stop: Any,
    tif: Any,
    cancel_at_close: Any = False,
    symbols: Collection[str] | None = None,
) -> tuple[str, str] | None:
    """What is wrong with an order, as ``(problem, hint)``, or None when it may be queued.

    ``symbols``: the session's symbols (None: any symbol is accepted).
    """
    if side not in SIDES:
        return f"side must be buy or sell, not {side!r}", "use ctx.buy(...) or ctx.sell(...)"
    if type not in ORDER_TYPES:
        return f"type must be market, limit or stop, not {type!r}", "type='market' (the default)"
    if tif not in TIFS:
        return f"tif must be day or gtc, not {tif!r}", "tif='day' (the default) or tif='gtc'"
    if not isinstance(cancel_at_close, bool):
        return f"cancel_at_close must be True or False, not {cancel_at_close!r}", ""
    if not _positive(quantity):
        return f"the quantity must be a finite number above 0, not {_show(quantity)}", _quantity_hint(
            quantity
        )
    fault = _price_problem("limit", limit, type) or _price_problem("stop", stop, type)
    if fault is not None:
        return fault
    if not isinstance(symbol, str) or (symbols is not None and symbol not in symbols):
        return (
            f"{symbol!r} is not in this session",
            f"trade the session's symbols ({_listed(symbols or ())}); a symbol inserted mid-session "
            "can be traded once on_insertion reported it",
        )
    return None


def _listed(names: Collection[str], most: int = 12) -> str:
    """Names for a message: sorted, the first ``most`` of them and how many more."""
    ordered = sorted(names)
    if not ordered:
        return "none"
    more = f" and {len(ordered) - most} more" if len(ordered) > most else ""
    return ", ".join(ordered[:most]) + more


def _quantity_hint(quantity: Any) -> str:
    """How to fix a refused quantity, by what is wrong with it."""
    if not isinstance(quantity, numbers.Real) or isinstance(quantity, bool):
        return "pass the number of shares as an int or float"
    if not math.isfinite(float(quantity)):
        return (
            "a NaN or infinite quantity often comes from an indicator that is not ready yet: check it first"
        )
    if quantity < 0:
        return "the side says the direction: ctx.sell(symbol, qty) with qty > 0 sells"
    return "skip the order when there is nothing to trade"


def _price_problem(name: str, price: Any, type: str) -> tuple[str, str] | None:
    """The ``limit``/``stop`` price: required (finite, above 0) by its order type, refused by others."""
    if type != name:
        if price is None:
            return None
        note = " (stop-limit orders are not supported)" if type in ORDER_TYPES[1:] else ""
        return (
            f"a {type} order takes no {name} price{note}",
            f"type={name!r} for a {name} order, or leave {name}= out",
        )
    if price is None:
        return f"a {type} order needs its price", f"ctx.buy(symbol, qty, type={type!r}, {name}=price)"
    if not _positive(price):
        return (
            f"the {name} price must be a finite number above 0, not {_show(price)}",
            "a NaN price often comes from an indicator that is not ready yet: check it first",
        )
    return None


def _positive(value: Any) -> bool:
    """A real number (not a bool), finite and above zero."""
    if type(value) is float or type(value) is int:  # the usual case, without the slower ABC check
        return 0 < value < math.inf  # (NaN compares false)
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    number = float(value)
    return math.isfinite(number) and number > 0
