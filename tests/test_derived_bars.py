"""Derived bars against an independent pandas resample anchored to the session open."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config


def reference(base, open_ts: pd.Timestamp, close_ts: pd.Timestamp, rule: str) -> pd.DataFrame:
    """OHLCV windows of ``rule`` from the open, the last cut at the close, empty windows dropped."""
    frame = pd.DataFrame(
        {
            "open": base.open,
            "high": base.high,
            "low": base.low,
            "close": base.close,
            "volume": base.volume,
        },
        index=pd.to_datetime(base.ts, utc=True),
    )
    frame = frame[(frame.index >= open_ts) & (frame.index < close_ts)]
    out = frame.resample(rule, origin=open_ts, closed="left", label="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = frame["close"].resample(rule, origin=open_ts, closed="left", label="left").count()
    out = out[counts > 0]
    out["partial"] = (out.index + pd.Timedelta(rule)) > close_ts
    return out


@pytest.mark.parametrize("day", ["2023-11-24", "2023-11-03", "2023-11-06", "2023-11-22"])
@pytest.mark.parametrize("clock", ["data", "clock"])
def test_derived_bars_equal_pandas_resample(tmp_path, sample_dir, day, clock):
    intervals = ["1m", "5m", "15m", "30m", "1h"]
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            sample_dir,
            start=day,
            end=day,
            intervals=intervals,
            symbols=["MSFT", "JPM", "TLT"],
            clock=clock,
        )
    )
    result = SessionCoordinator(config).run()
    data = result.session_data
    plan = data.plan
    for symbol in data.symbols:
        base = data[symbol].bars("1m")
        for label, rule in [("5m", "5min"), ("15m", "15min"), ("30m", "30min"), ("1h", "60min")]:
            want = reference(base, plan.market_open, plan.market_close, rule)
            got = data[symbol].bars(label)
            assert len(got) == len(want), (symbol, label)
            np.testing.assert_array_equal(got.ts, want.index.as_unit("ns").asi8)
            for column in ("open", "high", "low", "close", "volume"):
                np.testing.assert_allclose(getattr(got, column), want[column].to_numpy(), rtol=0, atol=0)
            np.testing.assert_array_equal(got.partial, want["partial"].to_numpy())


def test_early_close_hour_series_ends_with_a_cut_bar(tmp_path, complete_dir):
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            complete_dir,
            start="2023-11-24",
            end="2023-11-24",
            intervals=["1m", "1h"],
        )
    )
    data = SessionCoordinator(config).run().session_data
    hours = data["MSFT"].bars("1h")
    starts = [
        pd.Timestamp(int(t), tz="UTC").tz_convert("America/New_York").strftime("%H:%M") for t in hours.ts
    ]
    assert starts == ["09:30", "10:30", "11:30", "12:30"]
    assert hours.partial.tolist() == [False, False, False, True]  # 12:30-13:00


def test_normal_day_hour_series_ends_at_1530(tmp_path, complete_dir):
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            complete_dir,
            start="2023-11-22",
            end="2023-11-22",
            intervals=["1m", "1h"],
        )
    )
    data = SessionCoordinator(config).run().session_data
    hours = data["JPM"].bars("1h")
    last = pd.Timestamp(int(hours.ts[-1]), tz="UTC").tz_convert("America/New_York")
    assert last.strftime("%H:%M") == "15:30" and hours.partial[-1]
    assert len(hours) == 7


def test_no_derived_bar_before_its_window_ends(tmp_path, sample_dir, monkeypatch):
    """At every clock stop, each visible derived bar ends at or before the clock."""
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            sample_dir,
            start="2023-11-24",
            end="2023-11-24",
            intervals=["1m", "5m", "1h"],
        )
    )
    coordinator = SessionCoordinator(config)
    checks = []
    original = coordinator.clock.advance_to

    def check(ts_ns: int) -> None:
        original(ts_ns)
        data = coordinator.session_data
        for interval in data.intervals:
            block = data.block(interval)
            visible = block.ends[: block.filled]
            checks.append(bool((visible <= ts_ns).all()))
            # and everything that has ended is visible (nothing held back beyond its end)
            due = int(np.searchsorted(block.ends, ts_ns, side="right"))
            checks.append(block.filled <= due)

    monkeypatch.setattr(coordinator.clock, "advance_to", check)
    coordinator.run()
    assert checks and all(checks)


def test_history_derived_bars_match_resample(tmp_path, sample_dir):
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            sample_dir,
            start="2023-11-27",
            end="2023-11-27",
            intervals=["1m", "15m"],
            trailing_days=2,
        )
    )
    data = SessionCoordinator(config).run().session_data
    history = data["MSFT"].history("1m")
    derived = data["MSFT"].history("15m")
    frames = []
    for day in (dt.date(2023, 11, 22), dt.date(2023, 11, 24)):
        open_ts = pd.Timestamp(f"{day} 14:30", tz="UTC")
        close_ts = pd.Timestamp(f"{day} {'18:00' if day.day == 24 else '21:00'}", tz="UTC")
        frames.append(reference(history, open_ts, close_ts, "15min"))
    want = pd.concat(frames)
    np.testing.assert_array_equal(derived.ts, want.index.as_unit("ns").asi8)
    np.testing.assert_array_equal(derived.close, want["close"].to_numpy())
    np.testing.assert_array_equal(derived.volume, want["volume"].to_numpy())


def test_vectorised_history_derivation_equals_window_by_window(sample_dir):
    """The reduceat path and the streaming path agree on real session grids with gaps."""
    from calendars import Interval
    from core.data.store import ParquetStore
    from core.model.bars import BarBlock, derive_block
    from tests.conftest import xnys

    calendar = xnys()
    plans = [calendar.plan(d) for d in (dt.date(2023, 11, 22), dt.date(2023, 11, 24))]
    one = Interval.parse("1m")
    grids = [p.bar_grid(one) for p in plans]
    starts, ends = np.concatenate([g[0] for g in grids]), np.concatenate([g[1] for g in grids])
    rows = ParquetStore(sample_dir).read_bars(one, ["MSFT", "JPM", "TLT"], int(starts[0]), int(ends[-1]))
    base, _ = BarBlock.from_rows(one, starts, ends, rows, 3)
    for label in ("5m", "15m", "1h"):
        interval = Interval.parse(label)
        wgrids = [p.bar_grid(interval) for p in plans]
        ws, we = np.concatenate([g[0] for g in wgrids]), np.concatenate([g[1] for g in wgrids])
        fast = derive_block(base, interval, ws, we)
        slow = BarBlock.empty(interval, ws, we, 3)
        lo, hi = np.searchsorted(starts, ws), np.searchsorted(starts, we)
        for row in range(ws.size):
            base.aggregate_into(slow, row, int(lo[row]), int(hi[row]))
        for name in ("open", "high", "low", "close", "volume", "present"):
            np.testing.assert_array_equal(getattr(fast, name), getattr(slow, name))


def test_daily_bars_one_per_session_for_history_and_today(tmp_path, sample_dir):
    """1d bars: one per session (regular hours), the half day included, never flagged partial."""
    import pyarrow.parquet as pq

    config = load_config(write_config(tmp_path / "c.toml", sample_dir, start="2023-11-27", end="2023-11-27",
                                      intervals=["1m", "1d"], trailing_days=3))
    data = SessionCoordinator(config).run().session_data
    history = data["MSFT"].history("1d")
    frame = pq.read_table(sample_dir / "bars" / "interval=1m" / "symbol=MSFT").to_pandas().set_index("ts").sort_index()
    days = [("2023-11-21", "21:00"), ("2023-11-22", "21:00"), ("2023-11-24", "18:00")]
    assert len(history) == 3 and not history.partial.any()
    for i, (day, close) in enumerate(days):
        part = frame[(frame.index >= pd.Timestamp(f"{day} 14:30", tz="UTC")) & (frame.index < pd.Timestamp(f"{day} {close}", tz="UTC"))]
        assert history.open[i] == part.open.iloc[0] and history.close[i] == part.close.iloc[-1]
        assert history.high[i] == part.high.max() and history.volume[i] == part.volume.sum()
    today = data["MSFT"].bars("1d")
    assert len(today) == 1 and today.volume[0] == data["MSFT"].bars("1m").volume.sum()
