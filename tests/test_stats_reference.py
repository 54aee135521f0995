"""Statistics against independent references: empyrical-reloaded on random daily returns,
numpy least squares for alpha and beta, a hand numpy formula for the information ratio,
and hand counts for trades, fills, exposure and drawdown dates.

Every expected value is computed here from the inputs, never by core.reporting.stats.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

import empyrical
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reporting import stats as S
from core.reporting.stats import Trade, compute_statistics

YEAR = 252
D = dt.date


def close(ours: float | None, reference: float) -> bool:
    """Equal to 1e-9, relative for large values, absolute near zero; None where the reference
    is undefined (NaN or infinite) and only there."""
    if not math.isfinite(reference):
        return ours is None
    return ours is not None and abs(ours - reference) <= 1e-9 * max(1.0, abs(reference))


def random_returns(seed: int, n: int) -> np.ndarray:
    """Daily returns with negative, positive and exactly zero days (equity stays positive)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(rng.uniform(-0.002, 0.003), rng.uniform(0.001, 0.04), n)
    returns[rng.random(n) < 0.15] = 0.0
    return np.clip(returns, -0.95, None)


CASES = [(seed, n) for seed in range(6) for n in (2, 3, 5, 21, 60, 252, 500)]

# returns on a 1e-5 grid: many exact zeros and ties, nothing below -90 %
grid_returns = st.lists(st.integers(-9_000, 9_000).map(lambda k: k / 10_000), min_size=2, max_size=500)


def check_against_empyrical(r: np.ndarray) -> None:
    assert close(S.annual_return(r), empyrical.annual_return(r))
    assert close(S.sharpe(r), empyrical.sharpe_ratio(r, risk_free=0))
    assert close(S.sortino(r), empyrical.sortino_ratio(r, required_return=0))
    assert close(S.calmar(r), empyrical.calmar_ratio(r))
    assert close(S.max_drawdown_of_returns(r), -empyrical.max_drawdown(r))


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_return_ratios_equal_empyrical(seed, n):
    check_against_empyrical(random_returns(seed, n))


@settings(max_examples=150, deadline=None)
@given(grid_returns)
def test_return_ratios_equal_empyrical_fuzzed(values):
    check_against_empyrical(np.array(values))


@pytest.mark.parametrize(
    "r",
    [
        np.array([0.01]),  # one day: only the annual return and the drawdown are defined
        np.array([0.0, 0.0, 0.0]),  # flat: no Sharpe, no Sortino, no Calmar
        np.array([0.01, 0.01, 0.01]),  # constant: no dispersion, no downside
        np.array([0.02, 0.03, 0.01]),  # never down: no Sortino, no Calmar
        np.array([-0.01, -0.01, -0.02]),
    ],
)
def test_edge_series_undefined_where_empyrical_is(r):
    check_against_empyrical(r)


def test_no_returns():
    empty = np.empty(0)
    assert S.annual_return(empty) is None and S.sharpe(empty) is None and S.sortino(empty) is None
    assert S.calmar(empty) is None and S.max_drawdown_of_returns(empty) is None
    assert np.isnan(empyrical.annual_return(empty)) and np.isnan(empyrical.max_drawdown(empty))


def lstsq_alpha_beta(r: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    (intercept, slope), *_ = np.linalg.lstsq(np.column_stack([np.ones_like(b), b]), r, rcond=None)
    return (1.0 + intercept) ** YEAR - 1.0, slope


def hand_information_ratio(r: np.ndarray, b: np.ndarray) -> float:
    active = r - b
    mean = sum(active) / len(active)
    tracking = math.sqrt(sum((a - mean) ** 2 for a in active) / (len(active) - 1))
    return mean / tracking * math.sqrt(YEAR)


@pytest.mark.parametrize(("seed", "n"), CASES)
def test_benchmark_figures_equal_references(seed, n):
    b = random_returns(seed + 100, n)
    noise = np.random.default_rng(seed + 200).normal(0.0005, 0.01, n)
    r = np.clip(0.3 + 0.7 * b + noise, -0.9, None) - 0.3  # correlated with the benchmark
    alpha, beta = S.alpha_beta(r, b)
    want_alpha, want_beta = empyrical.alpha_beta(r, b, risk_free=0.0)
    assert close(alpha, want_alpha) and close(beta, want_beta)
    ls_alpha, ls_beta = lstsq_alpha_beta(r, b)
    assert close(alpha, ls_alpha) and close(beta, ls_beta)
    assert close(S.information_ratio(r, b), hand_information_ratio(r, b))
    assert close(S.information_ratio(r, b), empyrical.excess_sharpe(r, b) * math.sqrt(YEAR))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # in empyrical
@settings(max_examples=100, deadline=None)
@given(st.data())
def test_alpha_beta_equal_empyrical_fuzzed(data):
    r = np.array(data.draw(grid_returns))
    b = np.array(data.draw(st.lists(st.integers(-500, 500), min_size=r.size, max_size=r.size))) / 10_000
    alpha, beta = S.alpha_beta(r, b)
    want_alpha, want_beta = empyrical.alpha_beta(r, b, risk_free=0.0)
    assert close(alpha, want_alpha) and close(beta, want_beta)


def test_benchmark_edge_cases():
    r = np.array([0.01, -0.02, 0.03])
    assert S.alpha_beta(r, np.full(3, 0.004)) == (None, None)  # a benchmark without variance
    assert S.alpha_beta(r[:1], r[:1]) == (None, None)
    assert S.information_ratio(r, r) is None  # no tracking error
    with pytest.raises(ValueError, match="one per session"):
        S.alpha_beta(r, r[:2])


def test_buy_and_hold_returns_by_hand():
    # bought at 100 (the first open); closes 101, 99.99, 102.9897
    got = S.buy_and_hold_returns(100.0, np.array([101.0, 99.99, 102.9897]))
    assert got is not None
    assert np.allclose(got, [0.01, -0.01, 0.03], rtol=0, atol=1e-12)


def run_of(r: np.ndarray, opening: float = 100_000.0):
    sessions = [D(2023, 1, 2) + dt.timedelta(days=i) for i in range(r.size)]
    closes = opening * np.cumprod(1.0 + r)
    daily = list(zip(sessions, closes.tolist(), strict=True))
    ns = np.arange(r.size + 1, dtype=np.int64)
    equity = np.concatenate([[opening], closes])
    return daily, ns, equity, np.zeros(r.size + 1, dtype=bool)


@pytest.mark.parametrize(("seed", "n"), CASES[::3])
def test_compute_statistics_equals_empyrical(seed, n):
    r, b = random_returns(seed, n), random_returns(seed + 50, n)
    daily, ns, equity, exposed = run_of(r)
    stats = compute_statistics(100_000.0, daily, ns, equity, exposed, [], benchmark_returns=b, benchmark="SPY")
    assert close(stats.annual_return, empyrical.annual_return(r))
    assert close(stats.sharpe, empyrical.sharpe_ratio(r))
    assert close(stats.sortino, empyrical.sortino_ratio(r))
    assert close(stats.calmar, empyrical.calmar_ratio(r))
    assert close(stats.daily_max_drawdown, -empyrical.max_drawdown(r))
    want_alpha, want_beta = empyrical.alpha_beta(r, b, risk_free=0.0)
    assert close(stats.alpha, want_alpha) and close(stats.beta, want_beta)
    assert close(stats.information_ratio, hand_information_ratio(r, b))
    assert close(stats.benchmark_return, float(np.prod(1.0 + b)) - 1.0)
    assert stats.benchmark == "SPY"
    json.dumps(dataclasses.asdict(stats), allow_nan=False)


def hand_trades() -> list[Trade]:
    pnls = [100.0, -50.0, 30.0, 0.0, -10.0, 80.0]
    return [Trade("AAA", "long", 1, i, 10.0, i + 1, 10.0, p, 0.0) for i, p in enumerate(pnls)]


def test_trade_figures_by_hand():
    # wins 100, 30, 80 (sum 210, mean 70); losses -50, -10 (sum -60, mean -30); one flat trade
    stats = compute_statistics(1000.0, [(D(2023, 1, 2), 1150.0)], np.arange(2), np.array([1000.0, 1150.0]),
                               np.array([False, True]), hand_trades())
    assert stats.trades == 6 and stats.win_rate == pytest.approx(3 / 6)
    assert stats.avg_win == pytest.approx(70.0) and stats.avg_loss == pytest.approx(-30.0)
    assert stats.payoff == pytest.approx(70 / 30)
    assert stats.profit_factor == pytest.approx(210 / 60)
    assert stats.expectancy == pytest.approx(3 / 6 * 70 - 2 / 6 * 30)  # = 150 / 6, the mean P&L
    assert stats.expectancy == pytest.approx(25.0)
    assert (stats.best_trade, stats.worst_trade) == (100.0, -50.0)
    assert stats.pnl == pytest.approx(150.0)


def test_trade_figures_without_trades_or_losses():
    assert S.payoff([]) is None and S.expectancy([]) is None and S.profit_factor([]) is None
    assert S.profit_factor([5.0, 7.0]) is None and S.payoff([5.0, 7.0]) is None  # no loss
    assert S.expectancy([5.0, 7.0]) == pytest.approx(6.0)
    assert S.payoff([-5.0]) is None and S.expectancy([-5.0, -7.0]) == pytest.approx(-6.0)


def fill(ts, side, qty, price, commission, **extra):
    return {"ts_ns": ts, "symbol": "AAA", "side": side, "quantity": qty, "price": price,
            "commission": commission, **extra}


def test_fill_figures_by_hand():
    fills = [fill(1, "buy", 100, 10.0, 1.0), fill(2, "sell", 100, 11.0, 1.5), fill(3, "sell", 50, 12.0, 0.5)]
    daily = [(D(2023, 1, 2), 1000.0), (D(2023, 1, 3), 1200.0)]
    stats = compute_statistics(1000.0, daily, np.arange(2), np.array([1000.0, 1200.0]),
                               np.array([True, False]), [], fills=fills)
    notional = 100 * 10.0 + 100 * 11.0 + 50 * 12.0  # 2700
    assert stats.commissions_paid == pytest.approx(3.0)
    assert stats.traded_notional == pytest.approx(notional)
    assert stats.turnover == pytest.approx(notional / 1100.0)  # mean closing equity (1000 + 1200) / 2
    assert stats.slippage_paid is None  # the fills do not say their price before slippage
    # with it: 100 * |10 - 9.99| + 100 * |11 - 11.01| + 50 * |12 - 12| = 1 + 1 + 0
    priced = [fill(1, "buy", 100, 10.0, 0, reference_price=9.99), fill(2, "sell", 100, 11.0, 0, reference_price=11.01),
              fill(3, "sell", 50, 12.0, 0, reference_price=12.0)]
    assert S.slippage_paid(priced) == pytest.approx(2.0)
    without = compute_statistics(1000.0, daily, np.arange(2), np.array([1000.0, 1200.0]), np.array([True, False]), [])
    assert without.commissions_paid is None and without.turnover is None


def test_exposure_by_hand():
    equity = np.array([100.0, 200.0, 100.0, 50.0])
    cash = np.array([100.0, 50.0, 150.0, 50.0])  # positions' net value: 0, 150, -50, 0
    gross = np.array([0.0, 150.0, -80.0, 20.0])  # e.g. long 50 and short 30 at the third point
    stats = compute_statistics(100.0, [(D(2023, 1, 2), 50.0)], np.arange(4), equity,
                               np.array([False, True, True, True]), [], curve_cash=cash, curve_gross=gross)
    assert stats.exposure == pytest.approx(3 / 4)
    assert stats.net_exposure == pytest.approx((0 + 150 / 200 - 50 / 100 + 0) / 4)
    assert stats.gross_exposure == pytest.approx((0 + 150 / 200 + 80 / 100 + 20 / 50) / 4)
    assert S.share_of_equity(np.ones(2), np.array([1.0, -1.0])) is None  # negative equity: undefined


def test_drawdown_dates_and_duration_by_hand():
    sessions = [D(2023, 1, d) for d in range(2, 9)]  # d1 .. d7 as Jan 2 .. Jan 8
    closes = [110.0, 120.0, 120.0, 100.0, 90.0, 125.0, 130.0]
    # peak 120 last held at Jan 4's close; first close below it Jan 5; lowest Jan 6 (90);
    # back above on Jan 7: 3 sessions (Jan 5, 6, 7); depth 30 / 120
    ns = np.arange(8) * 10
    equity = np.array([100.0, *closes])
    stats = compute_statistics(100.0, list(zip(sessions, closes, strict=True)), ns, equity,
                               np.ones(8, bool), [])
    assert stats.daily_max_drawdown == pytest.approx(0.25)
    assert (stats.daily_drawdown_start, stats.daily_drawdown_trough, stats.daily_drawdown_recovery) == (
        "2023-01-05", "2023-01-06", "2023-01-07")
    assert stats.daily_drawdown_sessions == 3
    # the per-bar drawdown: peak first reached at point 2, trough at 5, back at 120+ at point 6
    assert (stats.max_drawdown_peak_ns, stats.max_drawdown_trough_ns, stats.max_drawdown_recovery_ns) == (20, 50, 60)


def test_drawdown_not_recovered_runs_to_the_end():
    sessions = [D(2023, 1, d) for d in range(2, 7)]
    closes = [110.0, 120.0, 100.0, 90.0, 95.0]  # below 120 from Jan 4 to the last session, Jan 6
    stats = compute_statistics(100.0, list(zip(sessions, closes, strict=True)), np.arange(6),
                               np.array([100.0, *closes]), np.ones(6, bool), [])
    assert (stats.daily_drawdown_start, stats.daily_drawdown_trough) == ("2023-01-04", "2023-01-05")
    assert stats.daily_drawdown_recovery is None and stats.max_drawdown_recovery_ns is None
    assert stats.daily_drawdown_sessions == 3
    assert stats.daily_max_drawdown == pytest.approx(30 / 120)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=40))
def test_drawdown_episode_equals_brute_force(values):
    got = S.drawdown(np.array(values, dtype=float))
    depth, trough = 0.0, None
    for j in range(len(values)):
        for i in range(j + 1):
            fall = (values[i] - values[j]) / values[i]
            if fall > depth:
                depth, trough = fall, j
    assert got.depth == pytest.approx(depth, abs=1e-12)
    assert got.trough == trough
    if trough is not None:
        high = max(values[: trough + 1])
        assert got.peak == max(i for i in range(trough + 1) if values[i] == high)
        later = [k for k in range(trough + 1, len(values)) if values[k] >= high]
        assert got.recovery == (later[0] if later else None)


def figures_are_plain(stats) -> None:
    record = dataclasses.asdict(stats)
    json.dumps(record, allow_nan=False)
    assert all(type(v) in (int, float, str, type(None)) for v in record.values()), record


def test_no_days():
    stats = compute_statistics(100.0, [], np.empty(0, np.int64), np.empty(0), np.empty(0, bool), [], fills=[])
    assert stats.days == 0 and stats.annual_return is None and stats.sharpe is None
    assert stats.daily_max_drawdown is None and stats.turnover is None and stats.commissions_paid == 0.0
    figures_are_plain(stats)


def test_one_day():
    stats = compute_statistics(100.0, [(D(2023, 1, 2), 101.0)], np.arange(2), np.array([100.0, 101.0]),
                               np.array([False, True]), [], benchmark_returns=np.array([0.02]))
    assert stats.sharpe is None and stats.sortino is None and stats.calmar is None
    assert stats.alpha is None and stats.beta is None and stats.information_ratio is None
    assert close(stats.annual_return, empyrical.annual_return(np.array([0.01])))
    assert stats.daily_max_drawdown == 0.0 and stats.daily_drawdown_sessions == 0
    figures_are_plain(stats)


def test_flat_equity():
    daily = [(D(2023, 1, d), 100.0) for d in range(2, 6)]
    stats = compute_statistics(100.0, daily, np.arange(5), np.full(5, 100.0), np.zeros(5, bool), [])
    assert stats.sharpe is None and stats.sortino is None and stats.calmar is None
    assert stats.annual_return == 0.0 and stats.total_return == 0.0 and stats.daily_max_drawdown == 0.0
    figures_are_plain(stats)


def test_negative_equity_leaves_return_ratios_undefined():
    daily = [(D(2023, 1, 2), 50.0), (D(2023, 1, 3), -20.0), (D(2023, 1, 4), 10.0)]
    equity = np.array([100.0, 50.0, -20.0, 10.0])
    stats = compute_statistics(100.0, daily, np.arange(4), equity, np.ones(4, bool), [],
                               curve_cash=np.zeros(4), benchmark_returns=np.array([0.01, 0.02, -0.01]))
    assert stats.sharpe is None and stats.sortino is None and stats.annual_return is None
    assert stats.alpha is None and stats.net_exposure is None
    assert stats.total_return == pytest.approx(-0.9) and stats.max_drawdown == pytest.approx(1.2)
    figures_are_plain(stats)


@settings(max_examples=60, deadline=None)
@given(grid_returns)
def test_statistics_always_plain_json(values):
    r = np.array(values)
    daily, ns, equity, exposed = run_of(r)
    stats = compute_statistics(100_000.0, daily, ns, equity, exposed, hand_trades(), fills=[],
                               benchmark_returns=r[::-1].copy())
    figures_are_plain(stats)
