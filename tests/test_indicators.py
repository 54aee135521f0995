"""Indicators against TA-Lib called here on bars read and resampled by the test itself."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import talib

from core.config import load_config
from core.data.validation import validate
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config

DAY = "2023-11-28"
# The three sessions before 11-28 (Thanksgiving skipped) and their UTC hours, by hand.
SESSIONS = [
    ("2023-11-22", "14:30", "21:00"),
    ("2023-11-24", "14:30", "18:00"),
    ("2023-11-27", "14:30", "21:00"),
    ("2023-11-28", "14:30", "21:00"),
]

TALIB_CASES = [
    # (config lines, key, interval, reference)
    ('kind = "sma"\ninterval = "5m"\nperiod = 20', "sma_20@5m", "5m", lambda b: talib.SMA(b.close, 20)),
    ('kind = "ema"\ninterval = "1m"\nperiod = 9', "ema_9@1m", "1m", lambda b: talib.EMA(b.close, 9)),
    ('kind = "wma"\ninterval = "5m"\nperiod = 10', "wma_10@5m", "5m", lambda b: talib.WMA(b.close, 10)),
    ('kind = "rsi"\ninterval = "1m"', "rsi_14@1m", "1m", lambda b: talib.RSI(b.close, 14)),
    (
        'kind = "atr"\ninterval = "5m"',
        "atr_14@5m",
        "5m",
        lambda b: talib.ATR(b.high, b.low, b.close, 14),
    ),
    (
        'kind = "bbands"\ninterval = "5m"',
        "bbands_20@5m.upper",
        "5m",
        lambda b: talib.BBANDS(b.close, 20, 2.0, 2.0)[0],
    ),
    (
        'kind = "bbands"\ninterval = "1m"\nperiod = 30',
        "bbands_30@1m.lower",
        "1m",
        lambda b: talib.BBANDS(b.close, 30, 2.0, 2.0)[2],
    ),
    ('kind = "macd"\ninterval = "1m"', "macd_12_26_9@1m.signal", "1m", lambda b: talib.MACD(b.close)[1]),
    (
        'kind = "macd"\ninterval = "5m"\nfast = 5\nslow = 13\nsignal = 4',
        "macd_5_13_4@5m.hist",
        "5m",
        lambda b: talib.MACD(b.close, 5, 13, 4)[2],
    ),
    (
        'kind = "stoch"\ninterval = "5m"',
        "stoch_5_3_3@5m.d",
        "5m",
        lambda b: talib.STOCH(b.high, b.low, b.close, 5, 3, 0, 3, 0)[1],
    ),
    ('kind = "obv"\ninterval = "1m"', "obv@1m", "1m", lambda b: talib.OBV(b.close, b.volume)),
    ('kind = "adx"\ninterval = "5m"', "adx_14@5m", "5m", lambda b: talib.ADX(b.high, b.low, b.close, 14)),
    ('kind = "cci"\ninterval = "1m"', "cci_20@1m", "1m", lambda b: talib.CCI(b.high, b.low, b.close, 20)),
    (
        'kind = "willr"\ninterval = "5m"',
        "willr_14@5m",
        "5m",
        lambda b: talib.WILLR(b.high, b.low, b.close, 14),
    ),
    (
        'kind = "mfi"\ninterval = "1m"',
        "mfi_14@1m",
        "1m",
        lambda b: talib.MFI(b.high, b.low, b.close, b.volume, 14),
    ),
    ('kind = "roc"\ninterval = "5m"', "roc_10@5m", "5m", lambda b: talib.ROC(b.close, 10)),
    ('kind = "mom"\ninterval = "1m"', "mom_10@1m", "1m", lambda b: talib.MOM(b.close, 10)),
]


def reference_bars(data_dir, symbol: str, rule: str | None) -> tuple[pd.DataFrame, int]:
    """Regular-hours bars of the four sessions (resampled from the open when ``rule``), and today's count."""
    table = pq.read_table(data_dir / "bars" / "interval=1m" / f"symbol={symbol}")
    frame = table.to_pandas().set_index("ts").sort_index()
    parts = []
    for day, open_, close in SESSIONS:
        lo, hi = pd.Timestamp(f"{day} {open_}", tz="UTC"), pd.Timestamp(f"{day} {close}", tz="UTC")
        part = frame[(frame.index >= lo) & (frame.index < hi)][["open", "high", "low", "close", "volume"]]
        if rule:
            agg = part.resample(rule, origin=lo, closed="left", label="left")
            counts = agg["close"].count()
            part = agg.agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})[
                counts > 0
            ]
        parts.append(part)
    return pd.concat(parts), len(parts[-1])


@pytest.fixture(scope="module")
def day_result(sample_dir, tmp_path_factory):
    extra = "\n".join(f"[[indicators]]\n{lines}\n" for lines, *_ in TALIB_CASES)
    extra += '\n[[indicators]]\nkind = "vwap"\ninterval = "1m"\n'
    extra += '\n[[indicators]]\nkind = "hod"\ninterval = "5m"\n'
    extra += '\n[[indicators]]\nkind = "lod"\ninterval = "1m"\n'
    extra += '\n[[indicators]]\nkind = "orh"\ninterval = "1m"\nperiod = 30\n'
    extra += '\n[[indicators]]\nkind = "orl"\ninterval = "5m"\nperiod = 15\n'
    extra += '\n[[indicators]]\nkind = "rvol"\ninterval = "5m"\nperiod = 3\n'
    path = tmp_path_factory.mktemp("ind") / "c.toml"
    config = load_config(
        write_config(
            path, sample_dir, start=DAY, end=DAY, trailing_days=3, intervals=["1m", "5m"], extra=extra
        )
    )
    return SessionCoordinator(config).run().session_data


@pytest.mark.parametrize(
    ("lines", "key", "interval", "compute"), TALIB_CASES, ids=[c[1] for c in TALIB_CASES]
)
@pytest.mark.parametrize("symbol", ["MSFT", "JPM"])
def test_equals_talib_over_history_and_day(day_result, sample_dir, symbol, lines, key, interval, compute):
    bars, today = reference_bars(
        sample_dir, symbol, None if interval == "1m" else interval.replace("m", "min")
    )
    columns = {c: bars[c].to_numpy(dtype=float) for c in ("open", "high", "low", "close", "volume")}
    want = compute(pd.DataFrame(columns).to_records(index=False).view(np.recarray))[-today:]
    got = day_result[symbol].indicator(key)
    assert len(got) == today
    np.testing.assert_array_equal(got.ts, bars.index[-today:].as_unit("ns").asi8)
    np.testing.assert_allclose(got.values, want, rtol=1e-9, atol=1e-12, equal_nan=True)
    assert got.ready


def test_session_helpers_by_hand(day_result, sample_dir):
    bars, today = reference_bars(sample_dir, "MSFT", None)
    day = bars.iloc[-today:]
    typical = (day.high + day.low + day.close) / 3
    vwap = (typical * day.volume).cumsum() / day.volume.cumsum()
    np.testing.assert_allclose(day_result["MSFT"].indicator("vwap@1m").values, vwap.to_numpy(), rtol=1e-12)
    np.testing.assert_array_equal(day_result["MSFT"].indicator("lod@1m").values, day.low.cummin().to_numpy())
    open_ = pd.Timestamp(f"{DAY} 14:30", tz="UTC")
    in_range = day[day.index < open_ + pd.Timedelta(minutes=30)]
    orh = day_result["MSFT"].indicator("orh_30@1m")
    known = day.index + pd.Timedelta(minutes=1) >= open_ + pd.Timedelta(minutes=30)
    np.testing.assert_array_equal(np.isnan(orh.values), ~known)
    assert orh.value == in_range.high.max()
    five, today5 = reference_bars(sample_dir, "MSFT", "5min")
    day5 = five.iloc[-today5:]
    np.testing.assert_array_equal(
        day_result["MSFT"].indicator("hod_5m" if False else "hod@5m").values, day5.high.cummax().to_numpy()
    )
    orl = day_result["MSFT"].indicator("orl_15@5m")
    assert orl.value == day5[day5.index < open_ + pd.Timedelta(minutes=15)].low.min()


def test_relative_volume_by_hand(day_result, sample_dir):
    five, today = reference_bars(sample_dir, "JPM", "5min")
    past = []
    for day, open_, close in SESSIONS[:-1]:
        lo = pd.Timestamp(f"{day} {open_}", tz="UTC")
        session = five[(five.index >= lo) & (five.index < pd.Timestamp(f"{day} {close}", tz="UTC"))]
        offsets = ((session.index - lo) / pd.Timedelta(minutes=5)).astype(int)
        cumulative = np.zeros(78)
        cumulative[offsets] = session.volume.to_numpy()
        cumulative = np.cumsum(cumulative)  # the half day stays flat after its close
        past.append(cumulative)
    mean = np.mean(past, axis=0)
    day = five.iloc[-today:]
    lo = pd.Timestamp(f"{DAY} 14:30", tz="UTC")
    offsets = ((day.index - lo) / pd.Timedelta(minutes=5)).astype(int)
    mine = np.cumsum(day.volume.to_numpy())
    np.testing.assert_allclose(
        day_result["JPM"].indicator("rvol_3@5m").values, mine / mean[offsets], rtol=1e-12
    )


def test_values_revealed_only_up_to_the_clock(sample_dir, tmp_path, monkeypatch):
    extra = '[[indicators]]\nkind = "sma"\ninterval = "5m"\nperiod = 3\n'
    config = load_config(
        write_config(tmp_path / "c.toml", sample_dir, start=DAY, end=DAY, intervals=["1m", "5m"], extra=extra)
    )
    coordinator = SessionCoordinator(config)
    seen = []
    original = coordinator.clock.advance_to

    def check(ts_ns):
        original(ts_ns)
        series = coordinator.session_data["MSFT"].indicator("sma_3@5m")
        seen.append(bool((series.ts + 5 * 60_000_000_000 <= ts_ns).all()))

    monkeypatch.setattr(coordinator.clock, "advance_to", check)
    coordinator.run()
    assert seen and all(seen)


def test_readiness_and_validation_warning(complete_dir, tmp_path):
    extra = '[[indicators]]\nkind = "sma"\ninterval = "5m"\nperiod = 200\n'
    short = load_config(
        write_config(
            tmp_path / "a.toml",
            complete_dir,
            start=DAY,
            end=DAY,
            trailing_days=1,
            intervals=["1m", "5m"],
            extra=extra,
        )
    )
    report = validate(short)
    assert any("sma_200@5m" in str(w) and "not ready" in str(w) for w in report.warnings)
    data = SessionCoordinator(short).run().session_data
    series = data["MSFT"].indicator("sma_200@5m")
    assert np.isnan(series.values[0])  # 78 history bars + the first bar < 200
    assert not series.ready or len(series) >= 122  # ready only once 122 bars of the day are in
    long = load_config(
        write_config(
            tmp_path / "b.toml",
            complete_dir,
            start=DAY,
            end=DAY,
            trailing_days=4,
            intervals=["1m", "5m"],
            extra=extra,
        )
    )
    assert not any("sma_200" in str(w) for w in validate(long).warnings)
    data = SessionCoordinator(long).run().session_data
    # 11-21, 11-22, 11-27 (78 each) and the 11-24 half day (42): 276 >= 199
    assert not np.isnan(data["MSFT"].indicator("sma_200@5m").values[0])


def test_unknown_kind_and_interval_are_config_errors(sample_dir, tmp_path):
    from core.errors import ConfigError

    bad = write_config(tmp_path / "a.toml", sample_dir, extra='[[indicators]]\nkind = "smaa"\n')
    with pytest.raises(ConfigError, match="did you mean 'sma'"):
        load_config(bad)
    bad = write_config(
        tmp_path / "b.toml", sample_dir, extra='[[indicators]]\nkind = "sma"\ninterval = "15m"\n'
    )
    with pytest.raises(ConfigError, match="15m"):
        load_config(bad)
