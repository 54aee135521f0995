"""The portfolio: cash, positions, open orders and last marks, the one thing (with each
strategy's ``self.state``) that crosses from one session to the next."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from core.execution.orders import Fill, Order


@dataclass(slots=True)
class Position:
    """What is held of one symbol: signed quantity (negative: short), the average price of the
    open quantity, and the P&L realised so far (commissions deducted)."""

    quantity: float = 0.0
    average_price: float = 0.0  # of the open quantity
    realized: float = 0.0


@dataclass(slots=True)
class Portfolio:
    """Cash, positions and open orders of a run; what crosses days, with the strategies' states.

    The broker changes it as fills are booked (:meth:`apply`) and orders are queued,
    cancelled or expire; strategies read it through their context (``ctx.position``,
    ``ctx.cash``, ``ctx.open_orders``).  ``marks`` holds each symbol's last known close,
    kept at the end of every session (and when a symbol leaves one): it values positions
    of symbols not in the session.  It is stored with the run (:meth:`to_json`) and
    restored from it to resume (:meth:`from_json`).
    """

    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    open_orders: list[Order] = field(default_factory=list)
    marks: dict[str, float] = field(default_factory=dict)  # last known close per symbol
    next_order_id: int = 1
    commissions: float = 0.0

    def position(self, symbol: str) -> float:
        """The signed quantity held of ``symbol`` now (0 when none)."""
        held = self.positions.get(symbol)
        return held.quantity if held else 0.0

    def equity(self) -> float:
        """Cash plus every position at its mark (its average price when it has none).

        The marks are those kept at the last session's end: during a session, read the
        equity at the clock with ``ctx.equity`` instead.
        """
        return self.cash + sum(
            p.quantity * self.marks.get(s, p.average_price) for s, p in self.positions.items()
        )

    def realized(self) -> float:
        """The P&L realised so far over every symbol, commissions deducted."""
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
        """The portfolio as plain JSON values, as stored with the run."""
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
        """The portfolio :meth:`to_json` stored (to resume a run from it)."""
        return cls(
            cash=float(data["cash"]),
            positions={s: Position(**p) for s, p in data.get("positions", {}).items()},
            open_orders=[Order(**o) for o in data.get("open_orders", [])],
            marks={s: float(v) for s, v in data.get("marks", {}).items()},
            next_order_id=int(data.get("next_order_id", 1)),
            commissions=float(data.get("commissions", 0.0)),
        )
