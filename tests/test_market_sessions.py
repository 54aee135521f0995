"""Sessions on other markets: back-to-back sessions (CME, 24/7), foreign DST, exchange-local times,
extended hours, and inspect-day of a day a symbol has no bars.

Every expected value comes from exchange_calendars, zoneinfo or the bars this file writes itself
(read back with numpy), never from another code path of the project.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from pathlib import Path
from zoneinfo import ZoneInfo

import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config

NS_MIN = 60_000_000_000
UTC = dt.UTC


# -- references -----------------------------------------------------------------------------------
@functools.cache
def calendar(code: str, first: str, last: str):
    """exchange_calendars' own calendar, padded around the dates the tests use."""
    lo = (pd.Timestamp(first) - pd.Timedelta(days=40)).strftime("%Y-%m-%d")
    hi = (pd.Timestamp(last) + pd.Timedelta(days=40)).strftime("%Y-%m-%d")
    return xcals.get_calendar(code, start=lo, end=hi)


def sessions(code: str, first: str, last: str) -> list[pd.Timestamp]:
    return list(calendar(code, first, last).sessions_in_range(first, last))


def open_close(code: str, session, first: str, last: str) -> tuple[int, int]:
    cal = calendar(code, first, last)
    return cal.session_open(session).value, cal.session_close(session).value


def previous(code: str, session, count: int, first: str, last: str) -> list[pd.Timestamp]:
    """The ``count`` sessions before ``session``, oldest first (exchange_calendars' sessions_window)."""
    return list(calendar(code, first, last).sessions_window(session, -(count + 1)))[:-1]


def iso(ns: int) -> str:
    return pd.Timestamp(int(ns), tz="UTC").isoformat()


def local_iso(day: dt.date, hhmm: str, tz: str) -> str:
    hour, minute = map(int, hhmm.split(":"))
    instant = dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo(tz)).astimezone(UTC)
    return instant.isoformat()


def local_ns(day: dt.date, hhmm: str, tz: str) -> int:
    return pd.Timestamp(local_iso(day, hhmm, tz)).value


def minutes(lo: int, hi: int) -> np.ndarray:
    return np.arange(lo, hi, NS_MIN, dtype=np.int64)


# -- a store written by hand ----------------------------------------------------------------------
class Bars:
    """One symbol's stored bars as numpy columns (what the parquet file holds)."""

    def __init__(self, ts: np.ndarray, volume: np.ndarray, rng: np.random.Generator) -> None:
        order = np.argsort(ts)
        self.ts = ts[order].astype(np.int64)
        self.volume = np.asarray(volume, dtype=np.float64)[order]
        n = self.ts.size
        self.close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n))), 4)
        self.open = np.round(np.r_[100.0, self.close[:-1]], 4)
        self.high = np.round(np.maximum(self.open, self.close) * (1.0 + rng.uniform(0, 1e-3, n)), 4)
        self.low = np.round(np.minimum(self.open, self.close) * (1.0 - rng.uniform(0, 1e-3, n)), 4)
        self.high = np.maximum(self.high, np.maximum(self.open, self.close))
        self.low = np.minimum(self.low, np.minimum(self.open, self.close))

    def between(self, lo: int, hi: int) -> np.ndarray:
        """Row mask of bars starting in [lo, hi)."""
        return (self.ts >= lo) & (self.ts < hi)

    def aggregate(self, lo: int, hi: int) -> tuple[float, float, float, float, float]:
        m = self.between(lo, hi)
        return (
            self.open[m][0],
            self.high[m].max(),
            self.low[m].min(),
            self.close[m][-1],
            self.volume[m].sum(),
        )

    def write(self, root: Path, symbol: str) -> None:
        folder = root / "bars" / "interval=1m" / f"symbol={symbol}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "ts": pa.array(self.ts // 1000, type=pa.timestamp("us", tz="UTC")),
                "open": pa.array(self.open, type=pa.float64()),
                "high": pa.array(self.high, type=pa.float64()),
                "low": pa.array(self.low, type=pa.float64()),
                "close": pa.array(self.close, type=pa.float64()),
                "volume": pa.array(self.volume, type=pa.float64()),
            }
        )
        pq.write_table(table, folder / "bars.parquet")


# Very different volume levels session by session: a merged or shifted session shows in rvol.
LEVELS = [300.0, 2000.0, 700.0, 5000.0, 150.0, 1200.0, 3500.0, 450.0, 900.0, 2500.0, 60.0, 8000.0]


def session_store(root: Path, code: str, first: str, last: str, symbols: dict[str, int], seed: int):
    """Bars on every minute [open, close) of each session; ``symbols`` maps a name to the number of
    minutes left out at random per session."""
    rng = np.random.default_rng(seed)
    out = {}
    days = sessions(code, first, last)
    for symbol, holes in symbols.items():
        ts, vol = [], []
        for k, day in enumerate(days):
            lo, hi = open_close(code, day, first, last)
            grid = minutes(lo, hi)
            keep = np.ones(grid.size, bool)
            if holes:
                keep[rng.choice(grid.size, holes, replace=False)] = False
            ts.append(grid[keep])
            level = LEVELS[(k + 3 * len(out)) % len(LEVELS)]
            vol.append(np.round(level * rng.uniform(0.5, 1.5, int(keep.sum()))))
        out[symbol] = Bars(np.concatenate(ts), np.concatenate(vol), rng)
        out[symbol].write(root, symbol)
    return out


def run_in_process(path: Path, data_dir: Path, **kwargs):
    return SessionCoordinator(load_config(write_config(path, data_dir, **kwargs))).run()


def invoke(runner, *args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


# -- 1, 2: back-to-back sessions ------------------------------------------------------------------
# exchange: (store first, store last, run start, run end)
B2B = {
    "CMES": ("2024-01-02", "2024-01-12", "2024-01-09", "2024-01-11"),
    "us_futures": ("2024-01-02", "2024-01-12", "2024-01-09", "2024-01-11"),
    "24/7": ("2024-01-01", "2024-01-10", "2024-01-06", "2024-01-08"),
}


@pytest.fixture(scope="module")
def b2b(tmp_path_factory):
    stores = {}
    for n, (code, (first, last, _, _)) in enumerate(B2B.items()):
        root = tmp_path_factory.mktemp("b2b")
        stores[code] = (root, session_store(root, code, first, last, {"AAA": 0, "BBB": 7}, seed=11 + n))
    return stores


def test_back_to_back_sessions_are_told_apart():
    """The premise of the next tests: each close is the next open in exchange_calendars."""
    for code, (first, last, _, _) in B2B.items():
        days = sessions(code, first, last)
        pairs = [open_close(code, d, first, last) for d in days]
        assert any(c == o2 for (_, c), (o2, _) in zip(pairs[:-1], pairs[1:], strict=True)), code


@pytest.mark.parametrize("code", list(B2B))
def test_back_to_back_history_is_the_n_previous_sessions(tmp_path, b2b, code):
    first, last, start, end = B2B[code]
    root, bars = b2b[code]
    trailing = 3
    result = run_in_process(
        tmp_path / "c.toml",
        root,
        exchange=code,
        start=start,
        end=end,
        symbols=["AAA", "BBB"],
        intervals=["1m"],
        trailing_days=trailing,
    )
    days = sessions(code, start, end)
    assert [d.session for d in result.days] == [d.date() for d in days]
    for day, got in zip(days, result.days, strict=True):
        lo, hi = open_close(code, day, first, last)
        assert (got.market_open_ns, got.market_close_ns) == (lo, hi), day
        assert got.clock_ns == hi, day  # the clock stops at this session's close
        assert got.bars == sum(int(b.between(lo, hi).sum()) for b in bars.values()), day
    today = days[-1]
    lo, hi = open_close(code, today, first, last)
    window = previous(code, today, trailing, first, last)
    spans = [open_close(code, d, first, last) for d in window]
    expected_minutes = sum((b - a) // NS_MIN for a, b in spans)
    for symbol, stored in bars.items():
        view = result.session_data[symbol]
        np.testing.assert_array_equal(view.bars("1m").ts, stored.ts[stored.between(lo, hi)], err_msg=symbol)
        in_history = np.zeros(stored.ts.size, bool)
        for a, b in spans:
            in_history |= stored.between(a, b)
        history = view.history("1m")
        np.testing.assert_array_equal(history.ts, stored.ts[in_history], err_msg=symbol)
        np.testing.assert_array_equal(history.volume, stored.volume[in_history], err_msg=symbol)
        quality = view.quality
        assert quality.history_expected == expected_minutes, symbol
        assert quality.history_present == int(in_history.sum()), symbol
        assert quality.expected_bars == (hi - lo) // NS_MIN, symbol


@pytest.mark.parametrize("code", ["CMES", "24/7"])
def test_back_to_back_one_daily_bar_per_session(tmp_path, b2b, code):
    first, last, start, end = B2B[code]
    root, bars = b2b[code]
    trailing = 3
    result = run_in_process(
        tmp_path / "c.toml",
        root,
        exchange=code,
        start=start,
        end=end,
        symbols=["AAA", "BBB"],
        intervals=["1m", "1d"],
        trailing_days=trailing,
    )
    today = sessions(code, start, end)[-1]
    window = previous(code, today, trailing, first, last)
    for symbol, stored in bars.items():
        view = result.session_data[symbol]
        daily = view.bars("1d")
        lo, hi = open_close(code, today, first, last)
        assert daily.ts.tolist() == [lo], symbol  # one bar, labelled by the open (the evening before)
        got = (daily.open[0], daily.high[0], daily.low[0], daily.close[0], daily.volume[0])
        assert got == pytest.approx(stored.aggregate(lo, hi), rel=1e-12), symbol
        history = view.history("1d")
        spans = [open_close(code, d, first, last) for d in window]
        assert history.ts.tolist() == [a for a, _ in spans], symbol  # N bars, not one merged bar
        for i, (a, b) in enumerate(spans):
            got = (history.open[i], history.high[i], history.low[i], history.close[i], history.volume[i])
            assert got == pytest.approx(stored.aggregate(a, b), rel=1e-12), (symbol, i)


def rvol_reference(stored: Bars, today_span, past_spans) -> tuple[np.ndarray, np.ndarray]:
    """At each present bar b of today: cumulative volume through b over the mean, across the past
    sessions, of each one's cumulative volume over its bars with (end - open) <= (b.end - today's open)."""
    lo, hi = today_span
    m = stored.between(lo, hi)
    ts, vol = stored.ts[m], stored.volume[m]
    offsets = ts + NS_MIN - lo
    past = []
    for a, b in past_spans:
        pm = stored.between(a, b)
        p_offsets = stored.ts[pm] + NS_MIN - a
        cumulative = np.concatenate([[0.0], np.cumsum(stored.volume[pm])])
        past.append(cumulative[np.searchsorted(p_offsets, offsets, side="right")])
    return ts, np.cumsum(vol) / np.mean(past, axis=0)


@pytest.mark.parametrize("period", [2, 3])
@pytest.mark.parametrize("code", ["CMES", "24/7"])
def test_rvol_uses_each_previous_session_separately(tmp_path, b2b, code, period):
    first, last, start, end = B2B[code]
    root, bars = b2b[code]
    extra = f'[[indicators]]\nkind = "rvol"\ninterval = "1m"\nperiod = {period}\n'
    result = run_in_process(
        tmp_path / "c.toml",
        root,
        exchange=code,
        start=end,
        end=end,
        symbols=["AAA", "BBB"],
        intervals=["1m"],
        trailing_days=period + 1,  # one session more than the period: the oldest must not count
        extra=extra,
    )
    today = sessions(code, end, end)[0]
    span = open_close(code, today, first, last)
    past = [open_close(code, d, first, last) for d in previous(code, today, period, first, last)]
    for symbol, stored in bars.items():
        series = result.session_data[symbol].indicator(f"rvol_{period}@1m")
        ts, want = rvol_reference(stored, span, past)
        np.testing.assert_array_equal(series.ts, ts, err_msg=symbol)
        np.testing.assert_allclose(series.values, want, rtol=1e-9, err_msg=symbol)


# -- 3: XLON and XASX across their own DST changes ----------------------------------------------------
# exchange: (store first, store last, run start, run end)
DST = {
    "XLON": ("2024-03-20", "2024-04-05", "2024-03-27", "2024-04-03"),  # Good Friday 03-29, BST 03-31
    "XASX": ("2024-03-27", "2024-04-12", "2024-04-03", "2024-04-10"),  # AEDT ended 04-07
}


@pytest.fixture(scope="module")
def dst_stores(tmp_path_factory):
    """Regular sessions with gaps, plus two hours of bars before the open and after the close
    (a window off by the DST hour would stream some of them)."""
    stores = {}
    rng = np.random.default_rng(23)
    for code, (first, last, _, _) in DST.items():
        root = tmp_path_factory.mktemp(code)
        stores[code] = (root, {})
        for symbol in ("AAA", "BBB"):
            ts = []
            for day in sessions(code, first, last):
                lo, hi = open_close(code, day, first, last)
                grid = minutes(lo - 120 * NS_MIN, hi + 120 * NS_MIN)
                ts.append(grid[rng.random(grid.size) > 0.02])
            ts = np.concatenate(ts)
            stored = Bars(ts, np.round(rng.uniform(100, 1000, ts.size)), rng)
            stored.write(root, symbol)
            stores[code][1][symbol] = stored
    return stores


@pytest.mark.parametrize("code", list(DST))
def test_dst_run_json_days_are_the_calendars(runner, tmp_path, dst_stores, code):
    first, last, start, end = DST[code]
    root, bars = dst_stores[code]
    config = write_config(
        tmp_path / "c.toml",
        root,
        exchange=code,
        start=start,
        end=end,
        symbols=["AAA", "BBB"],
        intervals=["1m", "1d"],
    )
    result = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    days = sessions(code, start, end)
    assert [d["date"] for d in doc["days"]] == [d.date().isoformat() for d in days]
    for day, got in zip(days, doc["days"], strict=True):
        lo, hi = open_close(code, day, first, last)
        assert got["market_open"] == iso(lo), day
        assert got["market_close"] == iso(hi), day
        assert got["clock"] == got["market_close"], day
        assert got["bars"] == sum(int(b.between(lo, hi).sum()) for b in bars.values()), day


@pytest.mark.parametrize("code", list(DST))
def test_dst_each_day_streams_its_open_to_close(tmp_path, dst_stores, code):
    first, last, start, end = DST[code]
    root, bars = dst_stores[code]
    for day in sessions(code, start, end):
        result = run_in_process(
            tmp_path / f"{day.date()}.toml",
            root,
            exchange=code,
            start=str(day.date()),
            end=str(day.date()),
            symbols=["AAA", "BBB"],
            intervals=["1m", "1d"],
            trailing_days=1,
        )
        lo, hi = open_close(code, day, first, last)
        assert result.days[0].clock_ns == hi, day
        (before,) = previous(code, day, 1, first, last)
        b_lo, b_hi = open_close(code, before, first, last)
        for symbol, stored in bars.items():
            view = result.session_data[symbol]
            np.testing.assert_array_equal(
                view.bars("1m").ts, stored.ts[stored.between(lo, hi)], err_msg=f"{day} {symbol}"
            )
            np.testing.assert_array_equal(
                view.history("1m").ts, stored.ts[stored.between(b_lo, b_hi)], err_msg=f"{day} {symbol}"
            )
            daily = view.bars("1d")
            assert daily.ts.tolist() == [lo], (day, symbol)
            assert daily.volume[0] == stored.volume[stored.between(lo, hi)].sum(), (day, symbol)


# -- 4: exchange-local times ----------------------------------------------------------------------------
def test_cmes_evening_time_is_inside_the_session_that_began_that_evening(tmp_path, b2b):
    first, last, start, end = B2B["CMES"]
    root, _ = b2b["CMES"]
    extra = """
[[insert]]
symbol = "BBB"
at = "20:00"

[[scanners]]
name = "evening"
kind = "price_volume"
at = ["20:00"]
universe = ["AAA", "BBB"]
top = 2
"""
    result = run_in_process(
        tmp_path / "c.toml",
        root,
        exchange="CMES",
        start=start,
        end=end,
        symbols=["AAA"],
        intervals=["1m"],
        trailing_days=1,
        extra=extra,
    )
    days = [d.date() for d in sessions("CMES", start, end)]
    want = {d.isoformat(): local_iso(d - dt.timedelta(days=1), "20:00", "America/Chicago") for d in days}
    inserted = [(i["date"], i["symbol"], i["clock"], i["status"]) for i in result.insertions]
    assert inserted == [(d, "BBB", at, "inserted") for d, at in want.items()]
    scans = [(s["date"], s["scanner"], s["time"], s["status"]) for s in result.scans]
    assert scans == [(d, "evening", at, "ok") for d, at in want.items()]
    for d in days:  # the instant really is inside the session's span
        lo, hi = open_close("CMES", pd.Timestamp(d), first, last)
        assert lo < pd.Timestamp(want[d.isoformat()]).value < hi


def test_xnys_1107_on_both_sides_of_the_dst_change(tmp_path, sample_dir):
    extra = """
[[insert]]
symbol = "JPM"
at = "11:07"

[[scanners]]
name = "midday"
kind = "price_volume"
at = ["11:07"]
universe = ["MSFT", "JPM", "TLT"]
top = 3
"""
    result = run_in_process(
        tmp_path / "c.toml",
        sample_dir,
        start="2023-11-02",
        end="2023-11-07",
        symbols=["MSFT"],
        intervals=["1m"],
        extra=extra,
    )
    days = [d.date() for d in sessions("XNYS", "2023-11-02", "2023-11-07")]
    assert dt.date(2023, 11, 3) in days and dt.date(2023, 11, 6) in days  # EDT, then EST
    want = {d.isoformat(): local_iso(d, "11:07", "America/New_York") for d in days}
    assert [(i["date"], i["clock"]) for i in result.insertions] == list(want.items())
    assert [(s["date"], s["time"]) for s in result.scans] == list(want.items())


OUTSIDE = {
    "insert-0300": ('[[insert]]\nsymbol = "JPM"\nat = "03:00"\n', ["insert[0]"]),
    "insert-1800": ('[[insert]]\nsymbol = "JPM"\nat = "18:00"\n', ["insert[0]"]),
    "scanner-0300": (
        '[[scanners]]\nname = "early_bird"\nkind = "price_volume"\nat = ["03:00"]\nuniverse = ["JPM"]\n',
        ["early_bird", "scanners[0]"],
    ),
    "scanner-1800": (
        '[[scanners]]\nname = "night_owl"\nkind = "price_volume"\nat = ["10:00", "18:00"]\n'
        'universe = ["JPM"]\n',
        ["night_owl", "scanners[0]"],
    ),
}


@pytest.mark.parametrize("case", list(OUTSIDE))
def test_a_time_outside_every_session_is_a_config_error(runner, tmp_path, sample_dir, case):
    extra, names = OUTSIDE[case]
    config = write_config(
        tmp_path / "c.toml", sample_dir, start="2023-11-20", end="2023-11-22", symbols=["MSFT"], extra=extra
    )
    checked = invoke(runner, "validate", config, "--json")
    assert checked.exit_code == 3, checked.stdout + checked.stderr
    assert any(name in checked.stdout + checked.stderr for name in names), checked.stdout + checked.stderr
    ran = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert ran.exit_code == 3, ran.stdout + ran.stderr
    assert any(name in ran.stderr for name in names), ran.stderr


# -- 5: extended hours -------------------------------------------------------------------------------------
NY = "America/New_York"
EXT_FIRST, EXT_LAST = "2023-03-01", "2023-11-30"
EXT_SESSIONS = ["2023-03-09", "2023-03-10", "2023-03-13", "2023-11-22", "2023-11-24"]


@pytest.fixture(scope="module")
def extended_store(tmp_path_factory):
    """Bars 04:00-20:00 New York on each session (also after a 13:00 close), thin outside the
    regular hours."""
    root = tmp_path_factory.mktemp("extended")
    rng = np.random.default_rng(5)
    stored = {}
    for symbol in ("AAA", "BBB"):
        ts, vol = [], []
        for text in EXT_SESSIONS:
            day = dt.date.fromisoformat(text)
            lo, hi = open_close("XNYS", pd.Timestamp(day), EXT_FIRST, EXT_LAST)
            grid = minutes(local_ns(day, "04:00", NY), local_ns(day, "20:00", NY))
            regular = (grid >= lo) & (grid < hi)
            keep = np.where(regular, rng.random(grid.size) > 0.01, rng.random(grid.size) < 0.4)
            ts.append(grid[keep])
            vol.append(np.where(regular[keep], 1000.0, 37.0) * rng.uniform(0.5, 1.5, int(keep.sum())))
        stored[symbol] = Bars(np.concatenate(ts), np.round(np.concatenate(vol)), rng)
        stored[symbol].write(root, symbol)
    return root, stored


EXT_RUNS = {
    "dst": ("2023-03-10", "2023-03-13", {"2023-03-10": "20:00", "2023-03-13": "20:00"}),
    "early": ("2023-11-24", "2023-11-24", {"2023-11-24": "17:00"}),
}


@pytest.mark.parametrize("case", list(EXT_RUNS))
def test_extended_hours_run_json_stream_bounds(runner, tmp_path, extended_store, case):
    root, bars = extended_store
    start, end, after_hours = EXT_RUNS[case]
    config = write_config(
        tmp_path / "c.toml",
        root,
        start=start,
        end=end,
        symbols=["AAA", "BBB"],
        intervals=["1m", "1d"],
        hours="extended",
    )
    result = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [d["date"] for d in doc["days"]] == list(after_hours)
    for got, (text, until) in zip(doc["days"], after_hours.items(), strict=True):
        day = dt.date.fromisoformat(text)
        lo, hi = open_close("XNYS", pd.Timestamp(day), EXT_FIRST, EXT_LAST)
        stream_start, stream_end = local_iso(day, "04:00", NY), local_iso(day, until, NY)
        assert got["market_open"] == iso(lo) and got["market_close"] == iso(hi), text
        assert got.get("stream_start") == stream_start, text
        assert got.get("stream_end") == stream_end, text
        assert got["clock"] == stream_end, text
        s_lo, s_hi = pd.Timestamp(stream_start).value, pd.Timestamp(stream_end).value
        assert got["bars"] == sum(int(b.between(s_lo, s_hi).sum()) for b in bars.values()), text


def test_regular_hours_stream_end_is_the_close(runner, tmp_path, extended_store):
    root, _ = extended_store
    config = write_config(
        tmp_path / "c.toml",
        root,
        start="2023-03-10",
        end="2023-03-13",
        symbols=["AAA", "BBB"],
        intervals=["1m"],
    )
    result = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    for got in json.loads(result.stdout)["days"]:
        day = pd.Timestamp(got["date"])
        lo, hi = open_close("XNYS", day, EXT_FIRST, EXT_LAST)
        assert got.get("stream_start") == got["market_open"] == iso(lo), got["date"]
        assert got.get("stream_end") == got["market_close"] == got["clock"] == iso(hi), got["date"]


@pytest.mark.parametrize(
    ("text", "until"), [("2023-03-10", "20:00"), ("2023-03-13", "20:00"), ("2023-11-24", "17:00")]
)
def test_extended_hours_daily_bar_is_the_regular_session(tmp_path, extended_store, text, until):
    root, bars = extended_store
    day = dt.date.fromisoformat(text)
    result = run_in_process(
        tmp_path / "c.toml",
        root,
        start=text,
        end=text,
        symbols=["AAA", "BBB"],
        intervals=["1m", "1d"],
        hours="extended",
    )
    lo, hi = open_close("XNYS", pd.Timestamp(day), EXT_FIRST, EXT_LAST)
    s_lo, s_hi = local_ns(day, "04:00", NY), local_ns(day, until, NY)
    assert result.days[0].clock_ns == s_hi
    for symbol, stored in bars.items():
        view = result.session_data[symbol]
        np.testing.assert_array_equal(
            view.bars("1m").ts, stored.ts[stored.between(s_lo, s_hi)], err_msg=symbol
        )
        daily = view.bars("1d")
        assert daily.ts.tolist() == [lo], symbol
        got = (daily.open[0], daily.high[0], daily.low[0], daily.close[0], daily.volume[0])
        assert got == pytest.approx(stored.aggregate(lo, hi), rel=1e-12), symbol


# -- 6: pre-session gap scan on an extended store, regular hours -----------------------------------------
def test_pre_session_gap_scan_sees_premarket_bars_in_regular_hours(runner, tmp_path):
    data = tmp_path / "data"
    made = invoke(
        runner,
        "data",
        "sample",
        "--exchange",
        "XNYS",
        "--symbols",
        "AAA,BBB,CCC",
        "--start",
        "2023-11-15",
        "--days",
        "6",
        "--data-dir",
        data,
        "--extended",
    )
    assert made.exit_code == 0, made.stderr
    extra = '[[scanners]]\nname = "gappers"\nkind = "gap"\npre_session = true\nuniverse = "all"\ntop = 3\n'
    config = write_config(
        tmp_path / "c.toml",
        data,
        start="2023-11-22",
        end="2023-11-22",
        symbols=["AAA"],
        intervals=["1m"],
        extra=extra,
    )
    result = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(invoke(runner, "inspect", "last-day", "--json", "--results-dir", tmp_path / "r").stdout)
    (scan,) = [s for s in doc["scans"] if s["scanner"] == "gappers"]
    assert scan["status"] == "ok", scan
    # reference: last pre-market close of 11-22 vs the last regular close of 11-21, read from the files
    today, before = dt.date(2023, 11, 22), dt.date(2023, 11, 21)
    lo, _ = open_close("XNYS", pd.Timestamp(today), "2023-11-15", "2023-11-30")
    b_lo, b_hi = open_close("XNYS", pd.Timestamp(before), "2023-11-15", "2023-11-30")
    want = {}
    for symbol in ("AAA", "BBB", "CCC"):
        table = pq.read_table(data / "bars" / "interval=1m" / f"symbol={symbol}").sort_by("ts")
        ts = table.column("ts").cast(pa.int64()).to_numpy() * 1000  # microseconds -> ns
        close = table.column("close").to_numpy()
        pre = (ts >= local_ns(today, "04:00", NY)) & (ts + NS_MIN <= lo)
        prev = (ts >= b_lo) & (ts < b_hi)
        if pre.any():
            last_pre = close[pre][-1]
            prev_close = close[prev][-1]
            want[symbol] = abs(last_pre - prev_close) / prev_close * 100.0
    assert want, "the sample has pre-market bars"
    assert sorted(m["symbol"] for m in scan["matches"]) == sorted(want)
    for match in scan["matches"]:
        assert abs(match["score"]) == pytest.approx(want[match["symbol"]], rel=1e-9)


# -- 7: inspect-day of a day a configured symbol has no bars ----------------------------------------------
GAP_FIRST, GAP_LAST = "2023-11-22", "2023-11-29"


@pytest.fixture(scope="module")
def gap_store(tmp_path_factory):
    """XNYS: AAA every session; BBB missing 2023-11-28; CCC (an IPO) from 2023-11-29 only."""
    root = tmp_path_factory.mktemp("holes")
    rng = np.random.default_rng(3)
    days = sessions("XNYS", GAP_FIRST, GAP_LAST)
    skip = {"AAA": set(), "BBB": {"2023-11-28"}, "CCC": {d.date().isoformat() for d in days[:-1]}}
    stored = {}
    for symbol, missing in skip.items():
        ts = []
        for day in days:
            if day.date().isoformat() in missing:
                continue
            lo, hi = open_close("XNYS", day, GAP_FIRST, GAP_LAST)
            grid = minutes(lo, hi)
            ts.append(grid[rng.random(grid.size) > 0.01])
        ts = np.concatenate(ts)
        stored[symbol] = Bars(ts, np.round(rng.uniform(100, 5000, ts.size)), rng)
        stored[symbol].write(root, symbol)
    return root, stored


def test_inspect_day_where_a_symbol_misses_that_day(runner, tmp_path, gap_store):
    root, _ = gap_store

    def config(name, end):
        return write_config(
            tmp_path / f"{name}.toml",
            root,
            start="2023-11-27",
            end=end,
            symbols=["AAA", "BBB"],
            intervals=["1m", "5m"],
            trailing_days=1,
        )

    ran = invoke(runner, "run", config("whole", "2023-11-29"), "--json", "--results-dir", tmp_path / "whole")
    assert ran.exit_code == 0, ran.stderr
    replay = invoke(runner, "inspect-day", "2023-11-28", "--json", "--results-dir", tmp_path / "whole")
    assert replay.exit_code == 0, replay.stderr
    ran = invoke(runner, "run", config("upto", "2023-11-28"), "--json", "--results-dir", tmp_path / "upto")
    assert ran.exit_code == 0, ran.stderr
    last = invoke(runner, "inspect", "last-day", "--json", "--results-dir", tmp_path / "upto")
    assert last.exit_code == 0, last.stderr
    got, want = json.loads(replay.stdout), json.loads(last.stdout)
    assert got["date"] == want["date"] == "2023-11-28"
    assert list(got["symbols"]) == list(want["symbols"]) == ["AAA", "BBB"]
    assert got["symbols"] == want["symbols"]
    assert got["symbols"]["BBB"]["bars"]["1m"] == []
    assert got["symbols"]["BBB"]["quality"]["present_bars"] == 0
    lo, hi = open_close("XNYS", pd.Timestamp("2023-11-28"), GAP_FIRST, GAP_LAST)
    assert got["symbols"]["BBB"]["quality"]["expected_bars"] == (hi - lo) // NS_MIN


def test_inspect_day_before_a_symbol_has_any_data(runner, tmp_path, gap_store):
    root, bars = gap_store
    config = write_config(
        tmp_path / "c.toml",
        root,
        start="2023-11-27",
        end="2023-11-29",
        symbols=["AAA", "CCC"],
        intervals=["1m"],
        trailing_days=1,
    )
    ran = invoke(runner, "run", config, "--json", "--results-dir", tmp_path / "r")
    assert ran.exit_code == 0, ran.stderr
    replay = invoke(runner, "inspect-day", "2023-11-27", "--json", "--results-dir", tmp_path / "r")
    assert replay.exit_code == 0, replay.stderr
    doc = json.loads(replay.stdout)
    assert doc["date"] == "2023-11-27"
    assert list(doc["symbols"]) == ["AAA", "CCC"]
    lo, hi = open_close("XNYS", pd.Timestamp("2023-11-27"), GAP_FIRST, GAP_LAST)
    assert doc["clock"] == doc["market_close"] == iso(hi)
    ccc = doc["symbols"]["CCC"]
    assert ccc["bars"]["1m"] == []
    assert ccc["quality"]["present_bars"] == 0 and ccc["quality"]["expected_bars"] == (hi - lo) // NS_MIN
    stored = bars["AAA"]
    m = stored.between(lo, hi)
    got = doc["symbols"]["AAA"]["bars"]["1m"]
    assert [pd.Timestamp(b["ts"]).value for b in got] == stored.ts[m].tolist()
    for name in ("open", "high", "low", "close", "volume"):
        assert [b[name] for b in got] == getattr(stored, name)[m].tolist(), name
    quality = doc["symbols"]["AAA"]["quality"]
    assert quality["present_bars"] == int(m.sum()) and quality["expected_bars"] == (hi - lo) // NS_MIN
