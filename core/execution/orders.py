"""Orders and fills: what a strategy submits, what the broker books, and when an order is refused.

An order is checked once, when it is submitted (:func:`order_problem`), never per bar:
a quantity or price that is not a finite number above zero, an unknown side, type or
tif, or a symbol not in the session raises :class:`OrderError` at once (such an order
would otherwise never fill, or poison cash and equity with NaN).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, NamedTuple

from core.errors import SessionError

SIDES = ("buy", "sell")
ORDER_TYPES = ("market", "limit", "stop")
TIFS = ("day", "gtc")


class OrderError(SessionError):
    """An order was refused when submitted (bad quantity, price, side, type, tif or symbol)."""


@dataclass(slots=True)
class Order:
    """One order, as ``ctx.buy`` / ``ctx.sell`` return it; the broker updates it as it fills or ends.

    Read it, never change it: ``status`` is ``open`` until the order is ``filled`` (then
    ``filled_ns`` is the end of the bar it filled on and ``fill_price`` its price),
    ``cancelled`` (by ``ctx.cancel``, or at the close with ``cancel_at_close``) or
    ``expired`` (a ``day`` limit or stop order at the close); ``closed_ns`` is when it was
    cancelled or expired.  Times are UTC nanoseconds; ``submitted_ns`` is the clock when
    it was submitted, and it fills only on a bar that starts at or after that.
    """

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
        """Every field by name (:data:`ORDER_FIELDS`), as stored with the run."""
        return {name: getattr(self, name) for name in ORDER_FIELDS}


class Fill(NamedTuple):
    """One execution of an order, booked into the portfolio when the bar it filled on ended.

    ``price`` includes slippage; ``commission`` is charged on top.  ``bar_ns`` is the start
    of the bar it filled on and ``ts_ns`` the clock time the fill became known (that bar's
    end; the close for a flat-at-close fill), both UTC nanoseconds.  Immutable.
    """

    order_id: int
    symbol: str
    side: str
    quantity: float
    price: float
    commission: float
    ts_ns: int  # the clock time the fill became known (the end of the bar it filled on)
    bar_ns: int  # start of the bar it filled on
    reference_price: float | None = None  # the price before slippage (= price for limit fills)

    def as_dict(self) -> dict[str, Any]:
        """Every field by name, as stored with the run."""
        return self._asdict()


ORDER_FIELDS = tuple(Order.__dataclass_fields__)


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
