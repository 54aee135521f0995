"""Statistics against hand-worked examples (the HTML report: tests/test_report_html.py)."""

from __future__ import annotations

import datetime as dt
import statistics as pystats

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.reporting.stats import compute_statistics, max_drawdown, round_trips

D = dt.date


def fill(ts, symbol, side, qty, price, commission=0.0):
    return {"ts_ns": ts, "symbol": symbol, "side": side, "quantity": qty, "price": price, "commission": commission}


def test_drawdown_by_hand():
    # peak 120 at t=2, trough 90 at t=4: (120 - 90) / 120 = 0.25; the later dip 130 -> 117 is 0.10
    ns = np.arange(7)
    equity = np.array([100.0, 110.0, 120.0, 100.0, 90.0, 130.0, 117.0])
    assert max_drawdown(ns, equity) == (0.25, 2, 4)
    assert max_drawdown(ns, np.array([1.0, 2.0, 3.0])) == (0.0, None, None)


def test_sharpe_return_and_exposure_by_hand():
    daily = [(D(2023, 11, 1), 101.0), (D(2023, 11, 2), 99.99), (D(2023, 11, 3), 102.9897)]
    # returns: 101/100 - 1 = 0.01; 99.99/101 - 1 = -0.01; 102.9897/99.99 - 1 = 0.03
    returns = [0.01, -0.01, 0.03]
    want = pystats.mean(returns) / pystats.stdev(returns) * 252**0.5
    stats = compute_statistics(100.0, daily, np.arange(4), np.array([100.0, 101, 99.99, 102.9897]),
                               np.array([True, False, False, True]), [])
    assert stats.sharpe == pytest.approx(want, rel=1e-9)
    assert stats.total_return == pytest.approx(0.029897)
    assert stats.exposure == 0.5 and stats.trades == 0 and stats.win_rate is None


def test_round_trips_partial_exit_flip_and_commission_split():
    fills = [
        fill(1, "AAA", "buy", 100, 10.0, 1.0),
        fill(2, "AAA", "sell", 40, 11.0, 1.0),  # partial exit
        fill(3, "AAA", "sell", 100, 12.0, 2.0),  # closes 60 (1.2 commission), opens a 40 short (0.8)
        fill(4, "AAA", "buy", 40, 11.5, 1.0),  # closes the short
        fill(5, "BBB", "buy", 10, 50.0),
        fill(6, "BBB", "sell", 10, 49.0),
    ]
    long_trip, short_trip, loser = round_trips(fills)
    # long: in 100 @ 10; out 40 @ 11 and 60 @ 12 -> exit avg 11.6; pnl 160 - (1 + 1 + 1.2) = 156.8
    assert (long_trip.side, long_trip.quantity, long_trip.exit_price) == ("long", 100, pytest.approx(11.6))
    assert long_trip.pnl == pytest.approx(156.8) and long_trip.commission == pytest.approx(3.2)
    # short: 40 @ 12 covered @ 11.5 -> 20 - (0.8 + 1) = 18.2
    assert (short_trip.side, short_trip.entry_ns, short_trip.exit_ns) == ("short", 3, 4)
    assert short_trip.pnl == pytest.approx(18.2)
    assert loser.pnl == pytest.approx(-10.0)
    stats = compute_statistics(1000.0, [(D(2023, 11, 1), 1165.0)], np.arange(2), np.array([1000.0, 1165.0]),
                               np.array([True, True]), [long_trip, short_trip, loser])
    assert stats.win_rate == pytest.approx(2 / 3)
    assert stats.profit_factor == pytest.approx((156.8 + 18.2) / 10.0)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=60))
def test_drawdown_equals_brute_force(values):
    equity = np.array(values)
    brute = max(((equity[i] - equity[j]) / equity[i] for i in range(len(values)) for j in range(i, len(values))),
                default=0.0)
    got, _, _ = max_drawdown(np.arange(len(values)), equity)
    assert 0.0 <= got < 1.0
    assert got == pytest.approx(max(brute, 0.0), abs=1e-12)
