"""Properties of derived bars under random gap patterns (Hypothesis)."""

from __future__ import annotations

import datetime as dt

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from calendars import Interval
from core.model.bars import BarBlock, derive_block, window_rows
from tests.conftest import xnys

CAL = xnys()
PLAN = CAL.plan(dt.date(2023, 11, 24))  # a 13:00 early close: the 1h series ends with a cut bar
ONE = Interval.parse("1m")


def random_block(seed: int, missing_rate: float) -> BarBlock:
    rng = np.random.default_rng(seed)
    starts, ends = PLAN.bar_grid(ONE)
    block = BarBlock.empty(ONE, starts, ends, 3)
    n = starts.size
    opens = 100 + rng.normal(0, 1, (n, 3)).cumsum(axis=0)
    closes = opens + rng.normal(0, 0.3, (n, 3))
    block.open, block.close = opens, closes
    block.high = np.maximum(opens, closes) + rng.random((n, 3))
    block.low = np.minimum(opens, closes) - rng.random((n, 3))
    block.volume = rng.integers(1, 1000, (n, 3)).astype(float)
    block.present = rng.random((n, 3)) > missing_rate
    for name in ("open", "high", "low", "close", "volume"):
        getattr(block, name)[~block.present] = np.nan
    block.filled = n
    return block


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31), missing=st.floats(0.0, 0.95), label=st.sampled_from(["5m", "15m", "30m", "1h"]))
def test_volume_conserved_bounds_hold_and_nothing_from_the_future(seed, missing, label):
    base = random_block(seed, missing)
    interval = Interval.parse(label)
    starts, ends = PLAN.bar_grid(interval)
    derived = derive_block(base, interval, starts, ends)
    lo, hi = window_rows(base, starts, ends)
    for j in range(3):
        # volume is conserved
        total = np.nansum(np.where(base.present[:, j], base.volume[:, j], 0))
        assert np.isclose(np.nansum(np.where(derived.present[:, j], derived.volume[:, j], 0)), total)
        for w in range(starts.size):
            rows = np.flatnonzero(base.present[lo[w] : hi[w], j]) + lo[w]
            assert derived.present[w, j] == bool(rows.size)  # an empty window gives no bar
            if not rows.size:
                continue
            # high/low bound every base bar of the window; open/close are its first/last
            assert derived.high[w, j] >= base.high[rows, j].max() - 1e-12
            assert derived.low[w, j] <= base.low[rows, j].min() + 1e-12
            assert derived.open[w, j] == base.open[rows[0], j] and derived.close[w, j] == base.close[rows[-1], j]
            # no look-ahead: every base bar used ends by the derived bar's end
            assert base.ends[rows].max() <= derived.ends[w]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), missing=st.floats(0.0, 0.9))
def test_streaming_window_by_window_equals_the_whole_day(seed, missing):
    """Emitting windows as the clock reaches their end (data- or clock-driven) gives the same bars."""
    base = random_block(seed, missing)
    interval = Interval.parse("15m")
    starts, ends = PLAN.bar_grid(interval)
    whole = derive_block(base, interval, starts, ends)
    lo, hi = window_rows(base, starts, ends)
    streamed = BarBlock.empty(interval, starts, ends, 3)
    for now in base.ends[base.present.any(axis=1)].tolist() + [PLAN.close_ns]:  # data-driven stops
        row = streamed.filled
        while row < streamed.rows and streamed.ends[row] <= now:
            base.aggregate_into(streamed, row, int(lo[row]), int(hi[row]))
            row += 1
    for name in ("open", "high", "low", "close", "volume", "present"):
        np.testing.assert_array_equal(getattr(streamed, name), getattr(whole, name))
