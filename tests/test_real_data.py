"""Real minute bars from ../shared/data/real (skipped when absent).

Counts come from that folder's README (written from the source files), not
from this code.  The CSVs are loaded into a store by the test itself.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import REAL_DATA, write_config

pytestmark = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data/real is absent")

TICKERS = ["MSFT", "JPM", "TLT", "FXY"]
# regular-session rows per UTC date, from the README's tables
RTH = {
    "MSFT": {"2023-11-22": 390, "2023-11-24": 210, "2023-11-27": 390, "2023-11-28": 390},
    "JPM": {"2023-11-22": 390, "2023-11-24": 210, "2023-11-27": 390, "2023-11-28": 390},
    "TLT": {"2023-11-22": 390, "2023-11-24": 210, "2023-11-27": 390, "2023-11-28": 390},
    "FXY": {"2023-11-22": 130, "2023-11-24": 43, "2023-11-27": 75, "2023-11-28": 132},
}


@pytest.fixture(scope="module")
def real_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("real")
    for ticker in TICKERS:
        frame = pd.read_csv(REAL_DATA / f"{ticker}_1m_utc.csv")
        ts = pd.to_datetime(frame["timestamp"]).dt.tz_localize("UTC")
        table = pa.table(
            {
                "ts": pa.array(ts.dt.as_unit("us"), pa.timestamp("us", tz="UTC")),
                **{c: pa.array(frame[c].astype(float)) for c in ("open", "high", "low", "close", "volume")},
            }
        )
        folder = root / "bars" / "interval=1m" / f"symbol={ticker}"
        folder.mkdir(parents=True)
        pq.write_table(table, folder / "2023.parquet")
    return root


def test_regular_session_counts_per_symbol_and_day(tmp_path, real_store):
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            real_store,
            symbols=TICKERS,
            start="2023-11-22",
            end="2023-11-28",
            trailing_days=1,
        )
    )
    days = []
    coordinator = SessionCoordinator(config, on_event=lambda e: None)
    original = coordinator._end_session

    def record(plan, index):
        original(plan, index)
        data = coordinator.session_data
        days.append(
            (
                plan.session,
                {s: len(data[s].bars("1m")) for s in data.symbols},
                {s: data[s].bars("1m").ts.max() for s in data.symbols},
                {s: data[s].quality for s in data.symbols},
            )
        )

    coordinator._end_session = record
    result = coordinator.run()
    assert [d.session for d in result.days] == [
        dt.date(2023, 11, 22),
        dt.date(2023, 11, 24),
        dt.date(2023, 11, 27),
        dt.date(2023, 11, 28),
    ]  # Thanksgiving skipped
    for session, counts, last_ts, quality in days:
        key = session.isoformat()
        assert counts == {t: RTH[t][key] for t in TICKERS}, key
        expected = 210 if key == "2023-11-24" else 390
        assert quality["FXY"].score == pytest.approx(RTH["FXY"][key] / expected)
        assert quality["FXY"].expected_bars == expected
        assert quality["FXY"].present_bars == RTH["FXY"][key]
        if key == "2023-11-24":
            close = pd.Timestamp("2023-11-24 18:00", tz="UTC").value
            assert max(last_ts.values()) < close  # the files hold after-hours rows; none streamed
    assert result.days[1].clock_ns == pd.Timestamp("2023-11-24 18:00", tz="UTC").value


def test_dst_opens(tmp_path, real_store):
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            real_store,
            symbols=["MSFT", "JPM"],
            start="2023-11-03",
            end="2023-11-06",
            trailing_days=0,
        )
    )
    result = SessionCoordinator(config).run()
    assert [pd.Timestamp(d.market_open_ns, tz="UTC") for d in result.days] == [
        pd.Timestamp("2023-11-03 13:30", tz="UTC"),
        pd.Timestamp("2023-11-06 14:30", tz="UTC"),
    ]
    assert [d.bars for d in result.days] == [780, 780]


@pytest.mark.parametrize("day", ["2023-11-24", "2023-11-03", "2023-11-06", "2023-11-22"])
def test_derived_bars_on_real_data_equal_pandas_resample(tmp_path, real_store, day):
    """Derived 5m/15m/1h of the real bars (FXY's gaps included) against a resample from the open."""
    import numpy as np

    from tests.test_derived_bars import reference

    config = load_config(write_config(tmp_path / "c.toml", real_store, symbols=TICKERS, start=day, end=day,
                                      trailing_days=0, intervals=["1m", "5m", "15m", "1h"]))
    data = SessionCoordinator(config).run().session_data
    plan = data.plan
    for symbol in TICKERS:
        base = data[symbol].bars("1m")
        for label, rule in (("5m", "5min"), ("15m", "15min"), ("1h", "60min")):
            want = reference(base, plan.market_open, plan.market_close, rule)
            got = data[symbol].bars(label)
            np.testing.assert_array_equal(got.ts, want.index.as_unit("ns").asi8)
            for column in ("open", "high", "low", "close", "volume"):
                np.testing.assert_array_equal(getattr(got, column), want[column].to_numpy())
            np.testing.assert_array_equal(got.partial, want["partial"].to_numpy())
