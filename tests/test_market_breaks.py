"""Exchanges with a lunch break (XTKS, XHKG) against references computed here.

Every expected value comes from exchange_calendars called directly, pandas
resamples and TA-Lib calls written in this file, or hand counts.  The stores
are written here with pyarrow and hold a bar for EVERY minute from the open to
the close, the lunch-break minutes included, so the tests prove that break
bars are never streamed, aggregated or counted.  Break bars carry an enormous
volume and extreme highs/lows, so a leak shows in any aggregate.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import talib

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config

MINUTE = pd.Timedelta(minutes=1)
FIELDS = ("open", "high", "low", "close", "volume")
AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}

# XTKS: 09:00-11:30 / 12:30-15:00 local, the close moves to 15:30 from 2024-11-05
# (2024-11-04 is a holiday).  XHKG: 09:30-12:00 / 13:00-16:00, 2024-02-09 a half day
# 09:30-12:00 without a break (2024-02-12/13 holidays).
STORE_RANGE = {"XTKS": ("2024-10-15", "2024-11-08"), "XHKG": ("2024-01-29", "2024-02-16")}
SYMBOLS = ["AAA", "BBB"]  # AAA complete, BBB with gaps
LUNCH_DAY = pd.Timestamp("2024-10-30")  # XTKS symbol LUNCH has only break bars on this day


# --------------------------------------------------------------------------- references
@functools.cache
def xcal(code: str):
    return xcals.get_calendar(code, start="2024-01-02", end="2024-12-30")


def hours(code: str, day) -> tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]:
    """(open, break_start, break_end, close) in UTC from exchange_calendars (NaT: no break)."""
    cal, session = xcal(code), pd.Timestamp(day)
    return (
        cal.session_open(session),
        cal.session_break_start(session),
        cal.session_break_end(session),
        cal.session_close(session),
    )


def segments(code: str, day) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """The regular-hours [lo, hi) pieces of a session: morning and afternoon, or one piece."""
    open_, bstart, bend, close = hours(code, day)
    if pd.isna(bstart):
        return [(open_, close)]
    return [(open_, bstart), (bend, close)]


def regular_minutes(code: str, day) -> pd.DatetimeIndex:
    parts = [pd.date_range(lo, hi, freq="1min", inclusive="left") for lo, hi in segments(code, day)]
    return parts[0].append(parts[1:]) if len(parts) > 1 else parts[0]


def previous_sessions(code: str, day, n: int) -> list[pd.Timestamp]:
    return list(xcal(code).sessions_window(pd.Timestamp(day), -(n + 1))[:-1])


def regular_bars(frame: pd.DataFrame, code: str, day) -> pd.DataFrame:
    """The stored bars of one session that fall on its regular minutes."""
    return frame[frame.index.isin(regular_minutes(code, day))]


def resample_session(frame: pd.DataFrame, code: str, day, rule: str) -> pd.DataFrame:
    """Windows of ``rule`` anchored at the open and at the break end, cut at the break and the close."""
    out = []
    for lo, hi in segments(code, day):
        part = frame[(frame.index >= lo) & (frame.index < hi)][list(FIELDS)]
        if part.empty:
            continue
        binned = part.resample(rule, origin=lo, closed="left", label="left")
        agg = binned.agg(AGG)
        agg = agg[binned["close"].count() > 0].copy()
        agg["partial"] = (agg.index + pd.Timedelta(rule)) > hi
        out.append(agg)
    return pd.concat(out)


def ns(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("ns").asi8


def assert_bars_equal(got, want: pd.DataFrame, partial: bool = True) -> None:
    assert len(got) == len(want)
    np.testing.assert_array_equal(got.ts, ns(want.index))
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(got, name), want[name].to_numpy(), err_msg=name)
    if partial:
        np.testing.assert_array_equal(got.partial, want["partial"].to_numpy())


def local_hhmm(ts_ns, tz: str) -> list[str]:
    return [pd.Timestamp(int(t), tz="UTC").tz_convert(tz).strftime("%H:%M") for t in ts_ns]


# --------------------------------------------------------------------------- the stores
def _session_bars(rng: np.random.Generator, code: str, day, price: float) -> pd.DataFrame:
    """Every minute from open to close, break included; break bars are extreme on purpose."""
    open_, bstart, bend, close = hours(code, day)
    index = pd.date_range(open_, close, freq="1min", inclusive="left")
    n = index.size
    closes = price + np.cumsum(rng.normal(0.0, 0.2, n))
    opens = np.concatenate([[price], closes[:-1]]) + rng.normal(0.0, 0.05, n)
    high = np.maximum(opens, closes) + rng.uniform(0.0, 0.3, n)
    low = np.minimum(opens, closes) - rng.uniform(0.0, 0.3, n)
    volume = rng.integers(100, 5000, n).astype(np.float64)
    if not pd.isna(bstart):
        brk = (index >= bstart) & (index < bend)
        high[brk] += 1000.0
        low[brk] -= 50.0
        volume[brk] = 9_000_000.0
    return pd.DataFrame(
        {"open": opens, "high": high, "low": low, "close": closes, "volume": volume}, index=index
    )


def _drop_gaps(rng: np.random.Generator, frame: pd.DataFrame, code: str, day) -> pd.DataFrame:
    """BBB: ~6% of minutes missing, a whole 5m window gone, the first minutes after the break gone."""
    keep = rng.random(len(frame)) > 0.06
    open_, bstart, bend, _ = hours(code, day)
    hole = open_ + pd.Timedelta(minutes=20)
    keep &= ~((frame.index >= hole) & (frame.index < hole + pd.Timedelta(minutes=5)))
    if not pd.isna(bend):
        keep &= ~((frame.index >= bend) & (frame.index < bend + pd.Timedelta(minutes=3)))
    return frame[keep]


def _write(root: Path, symbol: str, frame: pd.DataFrame) -> None:
    target = root / "bars" / "interval=1m" / f"symbol={symbol}"
    target.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "ts": pa.array(frame.index.as_unit("us").asi8, pa.timestamp("us", tz="UTC")),
            **{name: pa.array(frame[name].to_numpy(), pa.float64()) for name in FIELDS},
        }
    )
    pq.write_table(table, target / "part-0.parquet")


def build_store(root: Path, code: str, seed: int) -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    first, last = STORE_RANGE[code]
    sessions = xcal(code).sessions_in_range(first, last)
    symbols = [*SYMBOLS, "LUNCH"] if code == "XTKS" else SYMBOLS
    frames = {}
    for k, symbol in enumerate(symbols):
        parts, price = [], 100.0 + 40 * k
        for day in sessions:
            part = _session_bars(rng, code, day, price)
            price = float(part["close"].iloc[-1])
            if symbol == "BBB":
                part = _drop_gaps(rng, part, code, day)
            if symbol == "LUNCH" and day == LUNCH_DAY:
                open_, bstart, bend, _ = hours(code, day)
                part = part[(part.index >= bstart) & (part.index < bend)]
            parts.append(part)
        frames[symbol] = pd.concat(parts)
        _write(root, symbol, frames[symbol])
    return frames


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, tuple[Path, dict[str, pd.DataFrame]]]:
    out = {}
    for seed, code in enumerate(("XTKS", "XHKG")):
        root = tmp_path_factory.mktemp(f"store_{code}")
        out[code] = (root, build_store(root, code, seed + 11))
    return out


@pytest.fixture(scope="module")
def run(stores, tmp_path_factory):
    """Run one day in-process (cached per arguments); returns session_data."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("configs")

    def _run(code: str, day: str, trailing: int = 1, intervals=("1m",), extra: str = "", start=None):
        """``start``: begin a multi-day run there (history then rolls over from the days streamed)."""
        key = (code, day, trailing, tuple(intervals), extra, start)
        if key not in cache:
            path = folder / f"c{len(cache)}.toml"
            write_config(
                path,
                stores[code][0],
                start=start or day,
                end=day,
                symbols=list(SYMBOLS),
                intervals=list(intervals),
                trailing_days=trailing,
                exchange=code,
                hours="regular",
                clock="data",
                extra=extra,
            )
            cache[key] = SessionCoordinator(load_config(path)).run().session_data
        return cache[key]

    return _run


MODES = ["one-day", "multi-day"]


def first_day(mode: str, code: str, day: str, n: int) -> str | None:
    """None for a one-day run; else a run start one session before the N trailing ones,
    so the last day's history comes from days the run streamed itself."""
    if mode == "one-day":
        return None
    return previous_sessions(code, day, n + 1)[0].date().isoformat()


DAYS = [("XTKS", "2024-10-30"), ("XTKS", "2024-11-06"), ("XHKG", "2024-02-08"), ("XHKG", "2024-02-09")]
DAY_IDS = [f"{c}-{d}" for c, d in DAYS]


# --------------------------------------------------------------------------- 0. the references themselves
def test_reference_hours_by_hand():
    """The calendar facts the other tests rely on, counted by hand."""
    assert len(regular_minutes("XTKS", "2024-11-01")) == 150 + 150  # 09:00-11:30, 12:30-15:00
    assert len(regular_minutes("XTKS", "2024-11-05")) == 150 + 180  # 12:30-15:30
    assert len(regular_minutes("XHKG", "2024-02-08")) == 150 + 180  # 09:30-12:00, 13:00-16:00
    assert len(regular_minutes("XHKG", "2024-02-09")) == 150  # half day, no break
    assert [d.date().isoformat() for d in previous_sessions("XTKS", "2024-11-06", 2)] == [
        "2024-11-01",
        "2024-11-05",
    ]


# --------------------------------------------------------------------------- 1. streamed bars
@pytest.mark.parametrize(("code", "day"), DAYS, ids=DAY_IDS)
def test_streamed_1m_bars_are_the_regular_minutes_only(run, stores, code, day):
    data = run(code, day)
    minutes = regular_minutes(code, day)
    frames = stores[code][1]
    complete = data["AAA"].bars("1m")
    np.testing.assert_array_equal(complete.ts, ns(minutes))
    open_, bstart, bend, close = hours(code, day)
    if not pd.isna(bstart):
        inside = (complete.ts >= bstart.value) & (complete.ts < bend.value)
        assert not inside.any()
    for symbol in SYMBOLS:
        want = regular_bars(frames[symbol], code, day)
        assert_bars_equal(data[symbol].bars("1m"), want, partial=False)
        quality = data[symbol].quality
        assert quality.expected_bars == len(minutes)
        assert quality.present_bars == len(want)


# --------------------------------------------------------------------------- 2. daily bars
def _daily(frame: pd.DataFrame, code: str, day) -> tuple:
    part = regular_bars(frame, code, day)
    return (
        hours(code, day)[0].value,
        part["open"].iloc[0],
        part["high"].max(),
        part["low"].min(),
        part["close"].iloc[-1],
        part["volume"].sum(),
    )


def _assert_daily(bars, rows: list[tuple]) -> None:
    assert len(bars) == len(rows)
    assert not bars.partial.any()
    for i, (ts, o, h, lo, c, v) in enumerate(rows):
        assert (bars.ts[i], bars.open[i], bars.high[i], bars.low[i], bars.close[i], bars.volume[i]) == (
            ts,
            o,
            h,
            lo,
            c,
            v,
        ), i


@pytest.mark.parametrize(("code", "day"), DAYS, ids=DAY_IDS)
def test_daily_bar_is_one_per_session_without_the_break(run, stores, code, day):
    data = run(code, day, intervals=("1m", "1d"))
    for symbol in SYMBOLS:
        _assert_daily(data[symbol].bars("1d"), [_daily(stores[code][1][symbol], code, day)])


@pytest.mark.parametrize(
    ("code", "day"), [("XTKS", "2024-11-06"), ("XHKG", "2024-02-14")], ids=["XTKS", "XHKG-half-day"]
)
@pytest.mark.parametrize("mode", MODES)
def test_daily_history_bars_one_per_trailing_session(run, stores, code, day, mode):
    """Trailing 1d bars too (XHKG: 02-08 with a break, then the 02-09 half day)."""
    data = run(code, day, trailing=2, intervals=("1m", "1d"), start=first_day(mode, code, day, 2))
    for symbol in SYMBOLS:
        frame = stores[code][1][symbol]
        rows = [_daily(frame, code, s) for s in previous_sessions(code, day, 2)]
        _assert_daily(data[symbol].history("1d"), rows)


# --------------------------------------------------------------------------- 3. trailing history
HISTORY_CASES = [
    # (exchange, run day, N, regular minutes in the N previous sessions, by hand)
    ("XTKS", "2024-10-30", 2, 600),
    ("XTKS", "2024-10-31", 3, 900),
    ("XTKS", "2024-11-06", 2, 300 + 330),  # 11-01 closes 15:00, 11-05 at 15:30
    ("XHKG", "2024-02-14", 2, 330 + 150),  # 02-08, 02-09 half day
    ("XHKG", "2024-02-14", 3, 330 + 330 + 150),
]


@pytest.mark.parametrize(
    ("code", "day", "n", "by_hand"), HISTORY_CASES, ids=[f"{c[0]}-{c[1]}-N{c[2]}" for c in HISTORY_CASES]
)
@pytest.mark.parametrize("mode", MODES)
def test_trailing_history_is_n_whole_sessions(run, stores, code, day, n, by_hand, mode):
    data = run(code, day, trailing=n, start=first_day(mode, code, day, n))
    sessions = previous_sessions(code, day, n)
    expected = sum(len(regular_minutes(code, s)) for s in sessions)
    assert expected == by_hand
    for symbol in SYMBOLS:
        frame = stores[code][1][symbol]
        want = pd.concat([regular_bars(frame, code, s) for s in sessions])
        history = data[symbol].history("1m")
        assert_bars_equal(history, want, partial=False)
        quality = data[symbol].quality
        assert quality.history_expected == expected
        assert quality.history_present == len(want)


# --------------------------------------------------------------------------- 4. derived bars
RULES = [("5m", "5min"), ("15m", "15min"), ("1h", "60min")]


@pytest.mark.parametrize(("code", "day"), DAYS, ids=DAY_IDS)
@pytest.mark.parametrize(("label", "rule"), RULES, ids=[r[0] for r in RULES])
def test_derived_bars_equal_resample_per_segment(run, stores, code, day, label, rule):
    data = run(code, day, intervals=("1m", "5m", "15m", "1h"))
    for symbol in SYMBOLS:
        streamed = data[symbol].bars("1m")
        frame = pd.DataFrame(
            {name: getattr(streamed, name) for name in FIELDS}, index=pd.to_datetime(streamed.ts, utc=True)
        )
        assert_bars_equal(data[symbol].bars(label), resample_session(frame, code, day, rule))


@pytest.mark.parametrize(
    ("code", "day", "starts", "partial"),
    [
        ("XTKS", "2024-10-30", ["09:00", "10:00", "11:00", "12:30", "13:30", "14:30"], [0, 0, 1, 0, 0, 1]),
        ("XTKS", "2024-11-06", ["09:00", "10:00", "11:00", "12:30", "13:30", "14:30"], [0, 0, 1, 0, 0, 0]),
        ("XHKG", "2024-02-08", ["09:30", "10:30", "11:30", "13:00", "14:00", "15:00"], [0, 0, 1, 0, 0, 0]),
        ("XHKG", "2024-02-09", ["09:30", "10:30", "11:30"], [0, 0, 1]),
    ],
    ids=DAY_IDS,
)
def test_hour_bars_by_hand(run, code, day, starts, partial):
    data = run(code, day, intervals=("1m", "5m", "15m", "1h"))
    hours_ = data["AAA"].bars("1h")
    assert local_hhmm(hours_.ts, xcal(code).tz.key) == starts
    assert hours_.partial.tolist() == [bool(p) for p in partial]


@pytest.mark.parametrize(
    ("code", "day"), [("XTKS", "2024-11-06"), ("XHKG", "2024-02-14")], ids=["XTKS", "XHKG"]
)
@pytest.mark.parametrize("mode", MODES)
def test_history_5m_bars_equal_resample_per_segment(run, stores, code, day, mode):
    data = run(code, day, trailing=2, intervals=("1m", "5m"), start=first_day(mode, code, day, 2))
    for symbol in SYMBOLS:
        frame = stores[code][1][symbol]
        want = pd.concat(
            [
                resample_session(regular_bars(frame, code, s), code, s, "5min")
                for s in previous_sessions(code, day, 2)
            ]
        )
        assert_bars_equal(data[symbol].history("5m"), want)


# --------------------------------------------------------------------------- 5. indicators
INDICATORS = (
    '[[indicators]]\nkind = "ema"\ninterval = "1m"\nperiod = 9\n\n'
    '[[indicators]]\nkind = "rsi"\ninterval = "1m"\nperiod = 14\n\n'
    '[[indicators]]\nkind = "sma"\ninterval = "5m"\nperiod = 5\n'
)
INDICATOR_DAYS = [("XTKS", "2024-11-06", 2), ("XTKS", "2024-10-31", 3), ("XHKG", "2024-02-14", 2)]


@pytest.mark.parametrize(
    ("code", "day", "n"), INDICATOR_DAYS, ids=[f"{c}-{d}-N{n}" for c, d, n in INDICATOR_DAYS]
)
@pytest.mark.parametrize("mode", MODES)
def test_indicators_equal_talib_over_whole_sessions(run, stores, code, day, n, mode):
    data = run(
        code, day, trailing=n, intervals=("1m", "5m"), extra=INDICATORS, start=first_day(mode, code, day, n)
    )
    sessions = [*previous_sessions(code, day, n), pd.Timestamp(day)]
    for symbol in SYMBOLS:
        frame = stores[code][1][symbol]
        ones = [regular_bars(frame, code, s) for s in sessions]
        fives = [resample_session(part, code, s, "5min") for part, s in zip(ones, sessions, strict=True)]
        for key, parts, compute in (
            ("ema_9@1m", ones, lambda c: talib.EMA(c, 9)),
            ("rsi_14@1m", ones, lambda c: talib.RSI(c, 14)),
            ("sma_5@5m", fives, lambda c: talib.SMA(c, 5)),
        ):
            bars = pd.concat(parts)
            today = len(parts[-1])
            want = compute(bars["close"].to_numpy(dtype=float))[-today:]
            got = data[symbol].indicator(key)
            np.testing.assert_array_equal(got.ts, ns(parts[-1].index), err_msg=key)
            np.testing.assert_allclose(got.values, want, rtol=1e-9, atol=0, equal_nan=True, err_msg=key)


# --------------------------------------------------------------------------- 6. relative volume
@pytest.mark.parametrize("day", ["2024-10-31", "2024-11-06"])
@pytest.mark.parametrize("mode", MODES)
def test_rvol_same_time_of_day_over_whole_sessions(run, stores, day, mode):
    code, period = "XTKS", 2
    extra = f'[[indicators]]\nkind = "rvol"\ninterval = "1m"\nperiod = {period}\n'
    data = run(code, day, trailing=period, extra=extra, start=first_day(mode, code, day, period))
    open_today = hours(code, day)[0]
    past = previous_sessions(code, day, period)
    for symbol in SYMBOLS:
        frame = stores[code][1][symbol]
        today = regular_bars(frame, code, day)
        elapsed = today.index + MINUTE - open_today  # bar end - today's open
        cumulative = today["volume"].cumsum().to_numpy()
        per_session = []
        for s in past:
            bars = regular_bars(frame, code, s)
            offsets = bars.index + MINUTE - hours(code, s)[0]
            per_session.append([bars["volume"][offsets <= e].sum() for e in elapsed])
        mean = np.mean(per_session, axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            want = np.where(mean > 0, cumulative / mean, np.nan)
        got = data[symbol].indicator(f"rvol_{period}@1m")
        np.testing.assert_array_equal(got.ts, ns(today.index))
        np.testing.assert_allclose(got.values, want, rtol=1e-12, equal_nan=True)


# --------------------------------------------------------------------------- 7/8. validate, CLI
def _invoke(runner, *args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_validate_coverage_excludes_the_break_and_warns_on_break_only_day(runner, stores, tmp_path):
    code, (root, frames) = "XTKS", stores["XTKS"]
    symbols = [*SYMBOLS, "LUNCH"]
    config = write_config(
        tmp_path / "c.toml",
        root,
        start="2024-10-28",
        end="2024-11-06",
        symbols=symbols,
        intervals=["1m", "5m"],
        trailing_days=2,
        exchange=code,
    )
    result = _invoke(runner, "validate", config, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["valid"] is True and doc["errors"] == []
    sessions = xcal(code).sessions_in_range("2024-10-28", "2024-11-06")
    assert doc["sessions"] == [s.date().isoformat() for s in sessions]
    for symbol in symbols:
        want = {
            s.date().isoformat(): {
                "present": len(regular_bars(frames[symbol], code, s)),
                "expected": len(regular_minutes(code, s)),
            }
            for s in sessions
        }
        assert doc["coverage"][symbol] == want, symbol
    assert doc["coverage"]["AAA"]["2024-10-30"] == {"present": 300, "expected": 300}  # not 360
    assert doc["coverage"]["AAA"]["2024-11-05"] == {"present": 330, "expected": 330}
    assert doc["coverage"]["LUNCH"]["2024-10-30"] == {"present": 0, "expected": 300}
    assert any("LUNCH" in w and "2024-10-30" in w for w in doc["warnings"]), doc["warnings"]


def test_validate_hong_kong_half_day_exits_zero(runner, stores, tmp_path):
    code, (root, frames) = "XHKG", stores["XHKG"]
    config = write_config(
        tmp_path / "c.toml",
        root,
        start="2024-02-07",
        end="2024-02-14",
        symbols=SYMBOLS,
        intervals=["1m", "1h", "1d"],
        trailing_days=2,
        exchange=code,
    )
    result = _invoke(runner, "validate", config, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["valid"] is True and doc["sessions"] == [
        "2024-02-07",
        "2024-02-08",
        "2024-02-09",
        "2024-02-14",
    ]
    for symbol in SYMBOLS:
        for day, cell in doc["coverage"][symbol].items():
            assert cell == {
                "present": len(regular_bars(frames[symbol], code, day)),
                "expected": len(regular_minutes(code, day)),
            }, (symbol, day)
    assert doc["coverage"]["AAA"]["2024-02-09"] == {"present": 150, "expected": 150}


def test_cli_run_and_inspect_last_day_skip_the_break(runner, stores, tmp_path):
    code, (root, frames) = "XTKS", stores["XTKS"]
    config = write_config(
        tmp_path / "c.toml",
        root,
        start="2024-10-30",
        end="2024-10-30",
        symbols=SYMBOLS,
        intervals=["1m", "1h"],
        trailing_days=2,
        exchange=code,
    )
    results = tmp_path / "res"
    ran = _invoke(runner, "run", config, "--json", "--results-dir", results)
    assert ran.exit_code == 0, ran.stderr
    result = _invoke(runner, "inspect", "last-day", "--json", "--results-dir", results)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    _, bstart, bend, _ = hours(code, "2024-10-30")
    for symbol in SYMBOLS:
        entry = doc["symbols"][symbol]
        stamps = [pd.Timestamp(b["ts"]) for b in entry["bars"]["1m"]]
        assert stamps == list(regular_bars(frames[symbol], code, "2024-10-30").index)
        assert not any(bstart <= t < bend for t in stamps)
        assert entry["quality"]["expected_bars"] == 300
        assert entry["quality"]["present_bars"] == len(stamps)
    hour = doc["symbols"]["AAA"]["bars"]["1h"]
    assert [pd.Timestamp(b["ts"]).tz_convert("Asia/Tokyo").strftime("%H:%M") for b in hour] == [
        "09:00",
        "10:00",
        "11:00",
        "12:30",
        "13:30",
        "14:30",
    ]
    assert [bool(b.get("partial", False)) for b in hour] == [False, False, True, False, False, True]
