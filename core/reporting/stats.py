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
    """A run's figures, computed once after the loop (:func:`compute_statistics`).

    Ratios over returns use the daily returns of the session closes (the first from the
    initial cash), annualised over 252 sessions a year as empyrical does, with no risk-free
    rate.  A figure the run does not define (too few sessions, returns without dispersion,
    no losing trade, an equity that reached zero, no fills or benchmark handed in) is None.
    The fields after ``worst_trade`` were added later: they default to None.
    """

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
    exposure: float  # share of equity-curve points with an open position (time exposure)
    profit_factor: float | None
    avg_trade: float | None
    best_trade: float | None
    worst_trade: float | None
    pnl: float | None = None  # final equity - initial cash
    annual_return: float | None = None  # compound annual growth of the daily returns
    sortino: float | None = None  # annualised; downside deviation below a required return of 0
    calmar: float | None = None  # annual_return / daily_max_drawdown
    max_drawdown_recovery_ns: int | None = None  # first curve point back at the peak (None: not recovered)
    daily_max_drawdown: float | None = None  # largest fall of the session closes, a positive fraction
    daily_drawdown_start: str | None = None  # its first session closing below the peak (ISO date)
    daily_drawdown_trough: str | None = None  # its session with the lowest close
    daily_drawdown_recovery: str | None = None  # first session closing back at the peak (None: not recovered)
    daily_drawdown_sessions: int | None = None  # from its start to its recovery (or the last session)
    avg_win: float | None = None  # mean P&L of the winning trades
    avg_loss: float | None = None  # mean P&L of the losing trades (negative)
    payoff: float | None = None  # avg_win / |avg_loss|
    expectancy: float | None = None  # win rate * avg_win - loss rate * |avg_loss| (= mean P&L per trade)
    gross_exposure: float | None = None  # mean of |positions' value| / equity over the curve points
    net_exposure: float | None = None  # mean of (equity - cash) / equity over the curve points
    commissions_paid: float | None = None  # sum of the fills' commissions
    slippage_paid: float | None = None  # sum of |fill price - price before slippage| * quantity
    traded_notional: float | None = None  # sum of quantity * price over the fills
    turnover: float | None = None  # traded_notional / mean session closing equity
    benchmark: str | None = None  # what the benchmark returns are of, as the caller named it
    benchmark_return: float | None = None  # the benchmark's total return over the run's sessions
    alpha: float | None = None  # annualised: (1 + mean(r - beta * b)) ** 252 - 1
    beta: float | None = None  # cov(r, b) / var(b) of the daily returns
    information_ratio: float | None = None  # annualised: mean(r - b) / std(r - b) * sqrt(252)


def compute_statistics(
    initial_cash: float,
    daily_equity: list[tuple[dt.date, float]],
    curve_ns: np.ndarray,
    curve_equity: np.ndarray,
    curve_exposed: np.ndarray,
    trades: list[Trade],
    *,
    fills: Iterable[Any] | None = None,
    curve_cash: np.ndarray | None = None,
    curve_gross: np.ndarray | None = None,
    benchmark_returns: np.ndarray | None = None,
    benchmark: str | None = None,
) -> Statistics:
    """Statistics of a run: its daily equity, per-bar equity curve and round trips.

    Optional: the run's ``fills`` (commissions, slippage, turnover), the curve's cash and
    gross position value per point (net and gross exposure), and a benchmark's daily returns
    over the same sessions (alpha, beta, information ratio; see :func:`buy_and_hold_returns`).
    """
    equity = np.asarray(curve_equity, dtype=np.float64)
    ns = np.asarray(curve_ns, dtype=np.int64)
    final = float(daily_equity[-1][1]) if daily_equity else initial_cash
    drawdown_, peak_ns, trough_ns = max_drawdown(ns, equity)
    recovery = drawdown(equity).recovery
    closes = np.array([e for _, e in daily_equity], dtype=np.float64)
    returns = session_returns(initial_cash, closes)
    pnls = [float(t.pnl) for t in trades]
    wins = [p for p in pnls if p > 0]
    return Statistics(
        initial_cash=initial_cash,
        final_equity=final,
        total_return=final / initial_cash - 1.0,
        max_drawdown=drawdown_,
        max_drawdown_peak_ns=peak_ns,
        max_drawdown_trough_ns=trough_ns,
        sharpe=sharpe(returns) if returns is not None else None,
        days=len(daily_equity),
        trades=len(trades),
        win_rate=len(wins) / len(trades) if trades else None,
        exposure=float(np.mean(curve_exposed)) if len(curve_exposed) else 0.0,
        profit_factor=profit_factor(pnls),
        avg_trade=float(np.mean(pnls)) if pnls else None,
        best_trade=max(pnls) if pnls else None,
        worst_trade=min(pnls) if pnls else None,
        pnl=final - initial_cash,
        max_drawdown_recovery_ns=int(ns[recovery]) if recovery is not None else None,
        **_return_figures(returns, [d for d, _ in daily_equity]),
        **_trade_figures(pnls),
        **_exposure_figures(equity, curve_cash, curve_gross),
        **_fill_figures(fills, closes),
        **_benchmark_figures(returns, benchmark_returns, benchmark, len(daily_equity)),
    )


def _return_figures(returns: np.ndarray | None, sessions: list[dt.date]) -> dict[str, Any]:
    """Annual return, Sortino, Calmar and the drawdown of the session closes, with its sessions."""
    if returns is None or not returns.size:
        return {}
    fall = drawdown(wealth(returns))
    figures: dict[str, Any] = {
        "annual_return": annual_return(returns),
        "sortino": sortino(returns),
        "calmar": calmar(returns),
        "daily_max_drawdown": fall.depth,
        "daily_drawdown_sessions": 0,
    }
    if fall.peak is not None and fall.trough is not None:
        # wealth point i > 0 is the close of session i - 1 (point 0 the opening), so the
        # first session below the peak is sessions[peak]
        recovered = fall.recovery is not None
        end = fall.recovery if fall.recovery is not None else len(sessions)
        figures.update(
            daily_drawdown_start=_iso_date(sessions[fall.peak]),
            daily_drawdown_trough=_iso_date(sessions[fall.trough - 1]),
            daily_drawdown_recovery=_iso_date(sessions[end - 1]) if recovered else None,
            daily_drawdown_sessions=end - fall.peak,
        )
    return figures


def _trade_figures(pnls: list[float]) -> dict[str, Any]:
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    return {
        "avg_win": float(np.mean(wins)) if wins else None,
        "avg_loss": float(np.mean(losses)) if losses else None,
        "payoff": payoff(pnls),
        "expectancy": expectancy(pnls),
    }


def _exposure_figures(
    equity: np.ndarray, cash: np.ndarray | None, gross: np.ndarray | None
) -> dict[str, Any]:
    held = None if cash is None else equity - np.asarray(cash, dtype=np.float64)  # positions' net value
    return {
        "gross_exposure": None if gross is None else share_of_equity(np.abs(gross), equity),
        "net_exposure": None if held is None else share_of_equity(held, equity),
    }


def _fill_figures(fills: Iterable[Any] | None, closes: np.ndarray) -> dict[str, Any]:
    if fills is None:
        return {}
    rows = [_fill_row(f) for f in fills]
    notional = traded_notional(rows)
    average = float(np.mean(closes)) if closes.size else 0.0
    return {
        "commissions_paid": commissions_paid(rows),
        "slippage_paid": slippage_paid(rows),
        "traded_notional": notional,
        "turnover": _finite(notional / average) if average > 0 else None,
    }


def _benchmark_figures(
    returns: np.ndarray | None, benchmark_returns: np.ndarray | None, name: str | None, sessions: int
) -> dict[str, Any]:
    if benchmark_returns is None:
        return {"benchmark": name} if name is not None else {}
    bench = np.asarray(benchmark_returns, dtype=np.float64)
    if bench.shape != (sessions,):
        raise ValueError(f"{bench.size} benchmark returns for {sessions} sessions: give one per session")
    figures: dict[str, Any] = {
        "benchmark": name,
        "benchmark_return": _finite(float(np.prod(1.0 + bench)) - 1.0),
    }
    if returns is not None:
        alpha, beta = alpha_beta(returns, bench)
        figures.update(alpha=alpha, beta=beta, information_ratio=information_ratio(returns, bench))
    return figures


# -- returns ------------------------------------------------------------------------------------
def session_returns(initial: float, closes: np.ndarray) -> np.ndarray | None:
    """Daily simple returns of closing values, the first measured from ``initial``.

    None when a return would be measured from a value that is zero or negative (an equity
    that reached zero has no return after it) or a value is not finite.
    """
    values = np.concatenate([[initial], np.asarray(closes, dtype=np.float64)])
    if not np.all(np.isfinite(values)) or np.any(values[:-1] <= 0):
        return None
    return values[1:] / values[:-1] - 1.0


def buy_and_hold_returns(entry_price: float, closes: np.ndarray) -> np.ndarray | None:
    """The daily returns of holding a symbol bought at ``entry_price`` (the first session's
    open) through the session ``closes``: a benchmark over the same sessions as the run."""
    return session_returns(entry_price, closes)


def wealth(returns: np.ndarray) -> np.ndarray:
    """The value of 1 compounded by ``returns``, starting with the 1 (as empyrical anchors drawdowns)."""
    return np.concatenate([[1.0], np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))])


def annual_return(returns: np.ndarray) -> float | None:
    """Compound annual growth rate of daily returns, 252 sessions a year (empyrical's
    ``annual_return``); None without returns or when the compounded value went negative."""
    if not returns.size:
        return None
    ending = float(np.cumprod(1.0 + returns)[-1])
    if not ending >= 0:
        return None
    years = returns.size / TRADING_DAYS_PER_YEAR
    return _finite(_power(ending, 1.0 / years) - 1.0)


def sharpe(returns: np.ndarray) -> float | None:
    """Annualised Sharpe ratio of daily returns, no risk-free rate: mean / sample standard
    deviation * sqrt(252); None with fewer than two returns or when all are equal."""
    if returns.size < 2 or returns.max() == returns.min():
        return None
    spread = float(np.std(returns, ddof=1))
    if not spread > 0:
        return None
    return _finite(float(np.mean(returns)) / spread * math.sqrt(TRADING_DAYS_PER_YEAR))


def sortino(returns: np.ndarray) -> float | None:
    """Annualised Sortino ratio of daily returns (empyrical's ``sortino_ratio``, required return
    0): mean * 252 / (sqrt(mean(min(r, 0)^2)) * sqrt(252)); None with fewer than two returns or
    no return below 0."""
    if returns.size < 2:
        return None
    below = np.minimum(returns, 0.0)
    downside = math.sqrt(float(np.mean(np.square(below)))) * math.sqrt(TRADING_DAYS_PER_YEAR)
    if downside == 0:
        return None
    return _finite(float(np.mean(returns)) * TRADING_DAYS_PER_YEAR / downside)


def max_drawdown_of_returns(returns: np.ndarray) -> float | None:
    """The largest fall of :func:`wealth` from a running peak, a positive fraction (empyrical's
    ``max_drawdown``, which is negative); None without returns."""
    return drawdown(wealth(returns)).depth if returns.size else None


def calmar(returns: np.ndarray) -> float | None:
    """:func:`annual_return` / :func:`max_drawdown_of_returns` (empyrical's ``calmar_ratio``);
    None without a drawdown."""
    depth = max_drawdown_of_returns(returns)
    growth = annual_return(returns)
    if not depth or growth is None:
        return None
    return _finite(growth / depth)


def alpha_beta(returns: np.ndarray, benchmark: np.ndarray) -> tuple[float | None, float | None]:
    """Alpha and beta of daily returns against a benchmark's, no risk-free rate (empyrical's
    ``alpha_beta``): beta = cov(r, b) / var(b); alpha = (1 + mean(r - beta * b)) ** 252 - 1,
    the regression's daily intercept annualised.  None with fewer than two returns or a
    benchmark without variance (below 1e-30, empyrical's threshold)."""
    _same_sessions(returns, benchmark)
    if returns.size < 2:
        return None, None
    centred = benchmark - np.mean(benchmark)
    variance = float(np.mean(np.square(centred)))
    if variance < 1e-30:
        return None, None
    beta = float(np.mean(centred * returns)) / variance
    intercept = float(np.mean(returns - beta * benchmark))
    return _finite(_power(1.0 + intercept, TRADING_DAYS_PER_YEAR) - 1.0), _finite(beta)


def information_ratio(returns: np.ndarray, benchmark: np.ndarray) -> float | None:
    """Annualised information ratio: mean active return / tracking error (sample standard
    deviation of r - b) * sqrt(252); None as :func:`sharpe` is."""
    _same_sessions(returns, benchmark)
    return sharpe(returns - benchmark)


def _same_sessions(returns: np.ndarray, benchmark: np.ndarray) -> None:
    if returns.shape != benchmark.shape:
        raise ValueError(
            f"{benchmark.size} benchmark returns for {returns.size} returns: give one per session"
        )


# -- drawdowns ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Drawdown:
    """The largest fall of a series of values from a running peak, by position in the series."""

    depth: float  # (peak - trough) / peak, a positive fraction; 0.0 if never below a peak
    peak: int | None  # the last point at the peak before the trough
    trough: int | None
    recovery: int | None  # the first point after the trough back at the peak (None: not recovered)


def drawdown(values: np.ndarray) -> Drawdown:
    """The largest fall of ``values`` from a running peak (a peak at or below 0 has no fall)."""
    values = np.asarray(values, dtype=np.float64)
    if not values.size:
        return Drawdown(0.0, None, None, None)
    peaks = np.maximum.accumulate(values)
    with np.errstate(divide="ignore", invalid="ignore"):
        falls = np.where(peaks > 0, (peaks - values) / peaks, 0.0)
    trough = int(np.argmax(falls))
    if not falls[trough] > 0:
        return Drawdown(0.0, None, None, None)
    peak = int(np.flatnonzero(values[: trough + 1] == peaks[trough])[-1])
    back = np.flatnonzero(values[trough + 1 :] >= values[peak])
    return Drawdown(float(falls[trough]), peak, trough, trough + 1 + int(back[0]) if back.size else None)


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


# -- trades, fills and exposure -----------------------------------------------------------------
def profit_factor(pnls: list[float]) -> float | None:
    """Gross profit / gross loss of trades' P&L; None without a losing trade."""
    losses = -sum(p for p in pnls if p < 0)
    return sum(p for p in pnls if p > 0) / losses if losses else None


def payoff(pnls: list[float]) -> float | None:
    """Mean winning P&L / |mean losing P&L|; None without both a winner and a loser."""
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    if not wins or not losses:
        return None
    return (sum(wins) / len(wins)) / abs(sum(losses) / len(losses))


def expectancy(pnls: list[float]) -> float | None:
    """win rate * mean win - loss rate * |mean loss|, the mean P&L per trade (a flat trade
    counts in neither); None without trades."""
    if not pnls:
        return None
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    won = len(wins) / len(pnls) * (sum(wins) / len(wins)) if wins else 0.0
    lost = len(losses) / len(pnls) * abs(sum(losses) / len(losses)) if losses else 0.0
    return won - lost


def commissions_paid(fills: Iterable[dict[str, Any]]) -> float:
    """Sum of the fills' commissions."""
    return float(sum(float(f["commission"]) for f in fills))


def traded_notional(fills: Iterable[dict[str, Any]]) -> float:
    """Sum of |quantity * price| over the fills."""
    return float(sum(abs(float(f["quantity"]) * float(f["price"])) for f in fills))


def slippage_paid(fills: Iterable[dict[str, Any]]) -> float | None:
    """Sum of |fill price - price before slippage| * quantity; None unless every fill carries
    its price before slippage (``reference_price``: fills do not record it yet)."""
    total = 0.0
    for f in fills:
        reference = f.get("reference_price")
        if reference is None:
            return None
        total += abs(float(f["price"]) - float(reference)) * abs(float(f["quantity"]))
    return total


def share_of_equity(values: np.ndarray, equity: np.ndarray) -> float | None:
    """Mean of ``values / equity`` over the curve points (gross or net exposure); None without
    points or when an equity is zero or negative (no share is defined)."""
    equity = np.asarray(equity, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if not equity.size or values.shape != equity.shape or np.any(equity <= 0):
        return None
    return _finite(float(np.mean(values / equity)))


def _fill_row(fill: Any) -> dict[str, Any]:
    """A fill as a dict (fills come as ``Fill`` tuples in memory and as dicts from a results file)."""
    if isinstance(fill, dict):
        return fill
    return {n: getattr(fill, n) for n in (*_FILL_KEYS, "reference_price") if hasattr(fill, n)}


def _power(base: float, exponent: float) -> float:
    # numpy's power overflows to inf (then None) where Python's ** raises OverflowError
    with np.errstate(over="ignore"):
        return float(np.power(np.float64(base), exponent))


def _finite(value: float) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _iso_date(session: Any) -> str | None:
    return session.isoformat() if session is not None else None


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
