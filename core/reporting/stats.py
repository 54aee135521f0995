"""Run statistics: a pure function of the ledger, called once after the loop."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ResultsError

TRADING_DAYS_PER_YEAR = 252


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip of one symbol: from a flat position back to flat."""

    symbol: str
    side: str  # "long" | "short"
    quantity: float  # the largest absolute position held
    entry_ns: int
    entry_price: float  # volume-weighted
    exit_ns: int
    exit_price: float  # volume-weighted
    pnl: float  # net of commissions
    commission: float


@dataclass(frozen=True, slots=True)
class Statistics:
    """A run's figures, computed once after the loop (:func:`compute_statistics`)."""

    initial_cash: float
    final_equity: float
    total_return: float
    max_drawdown: float  # largest peak-to-trough fall of the per-bar equity, a positive fraction
    max_drawdown_peak_ns: int | None
    max_drawdown_trough_ns: int | None
    sharpe: float | None  # annualised, daily returns, no risk-free rate
    days: int
    trades: int
    win_rate: float | None
    exposure: float  # share of equity-curve points with an open position
    profit_factor: float | None
    avg_trade: float | None
    best_trade: float | None
    worst_trade: float | None


def compute_statistics(
    initial_cash: float,
    daily_equity: list[tuple[dt.date, float]],
    curve_ns: np.ndarray,
    curve_equity: np.ndarray,
    curve_exposed: np.ndarray,
    trades: list[Trade],
) -> Statistics:
    """Statistics of a run: its daily equity, per-bar equity curve and round trips."""
    equity = np.asarray(curve_equity, dtype=np.float64)
    final = float(daily_equity[-1][1]) if daily_equity else initial_cash
    drawdown, peak_ns, trough_ns = max_drawdown(np.asarray(curve_ns, dtype=np.int64), equity)
    closes = np.array([initial_cash, *(e for _, e in daily_equity)], dtype=np.float64)
    returns = closes[1:] / closes[:-1] - 1.0 if closes.size > 1 else np.empty(0)
    sharpe = None
    if returns.size >= 2:
        spread = float(np.std(returns, ddof=1))
        if spread > 0:
            sharpe = float(np.mean(returns)) / spread * math.sqrt(TRADING_DAYS_PER_YEAR)
    pnls = [t.pnl for t in trades]
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    return Statistics(
        initial_cash=initial_cash,
        final_equity=final,
        total_return=final / initial_cash - 1.0,
        max_drawdown=drawdown,
        max_drawdown_peak_ns=peak_ns,
        max_drawdown_trough_ns=trough_ns,
        sharpe=sharpe,
        days=len(daily_equity),
        trades=len(trades),
        win_rate=len(wins) / len(trades) if trades else None,
        exposure=float(np.mean(curve_exposed)) if len(curve_exposed) else 0.0,
        profit_factor=sum(wins) / -sum(losses) if losses else None,
        avg_trade=float(np.mean(pnls)) if pnls else None,
        best_trade=max(pnls) if pnls else None,
        worst_trade=min(pnls) if pnls else None,
    )


def max_drawdown(curve_ns: np.ndarray, equity: np.ndarray) -> tuple[float, int | None, int | None]:
    """The largest fall from a running peak, as a fraction of that peak, with its peak and trough times."""
    if not equity.size:
        return 0.0, None, None
    peaks = np.maximum.accumulate(equity)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - equity) / peaks, 0.0)
    trough = int(np.argmax(falls))
    if falls[trough] <= 0:
        return 0.0, None, None
    peak = int(np.flatnonzero(equity[: trough + 1] == peaks[trough])[0])
    return float(falls[trough]), int(curve_ns[peak]), int(curve_ns[trough])


def round_trips(fills: Iterable[Any]) -> list[Trade]:
    """Round trips per symbol from chronological fills (objects or dicts with the Fill fields).

    A trip opens when the position leaves zero and closes when it returns to zero; a
    fill that crosses zero closes the trip and opens the next with the remainder (its
    commission split in proportion).
    """
    open_trips: dict[str, dict[str, Any]] = {}
    trades: list[Trade] = []
    for fill in fills:
        row: dict[str, Any] = fill if isinstance(fill, dict) else {n: getattr(fill, n) for n in _FILL_KEYS}
        symbol, side, quantity = str(row["symbol"]), str(row["side"]), float(row["quantity"])
        price, commission, ts = float(row["price"]), float(row["commission"]), int(row["ts_ns"])
        if not (math.isfinite(quantity) and quantity > 0 and math.isfinite(price)):
            # (files written before orders were checked at submission could hold such fills)
            raise ResultsError(
                f"a {side} fill of {quantity} {symbol} at {price} cannot be booked",
                where=f"fill at {ts}",
                hint="run the config again: orders are now checked when submitted",
            )
        signed = quantity if side == "buy" else -quantity
        while signed:
            trip = open_trips.get(symbol)
            if trip is None:
                trip = open_trips[symbol] = _new_trip(ts, signed)
            position = trip["position"]
            closing = position != 0 and (position > 0) != (signed > 0)
            step = -position if closing and abs(signed) > abs(position) else signed
            share = commission * abs(step) / quantity
            _book(trip, step, price, share, ts)
            signed -= step
            if abs(trip["position"]) < 1e-12:
                trades.append(_close(symbol, trip))
                del open_trips[symbol]
    return trades


_FILL_KEYS = ("symbol", "side", "quantity", "price", "commission", "ts_ns")


def _new_trip(ts: int, signed: float) -> dict[str, Any]:
    return {
        "side": "long" if signed > 0 else "short",
        "position": 0.0,
        "peak": 0.0,
        "entry_ns": ts,
        "in_qty": 0.0,
        "in_value": 0.0,
        "out_qty": 0.0,
        "out_value": 0.0,
        "cash": 0.0,
        "commission": 0.0,
    }


def _book(trip: dict[str, Any], step: float, price: float, commission: float, ts: int) -> None:
    opening = (step > 0) == (trip["side"] == "long")
    if opening:
        trip["in_qty"] += abs(step)
        trip["in_value"] += abs(step) * price
    else:
        trip["out_qty"] += abs(step)
        trip["out_value"] += abs(step) * price
        trip["exit_ns"] = ts
    trip["position"] += step
    trip["peak"] = max(trip["peak"], abs(trip["position"]))
    trip["cash"] -= step * price
    trip["commission"] += commission


def _close(symbol: str, trip: dict[str, Any]) -> Trade:
    return Trade(
        symbol=symbol,
        side=trip["side"],
        quantity=trip["peak"],
        entry_ns=trip["entry_ns"],
        entry_price=trip["in_value"] / trip["in_qty"],
        exit_ns=trip["exit_ns"],
        exit_price=trip["out_value"] / trip["out_qty"],
        pnl=trip["cash"] - trip["commission"],
        commission=trip["commission"],
    )
