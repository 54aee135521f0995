"""Scanners, mid-session insertion and the one pause mechanism."""

from __future__ import annotations

import threading
import time

import numpy as np
import pandas as pd
import pytest

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from core.engine.pause import PauseGate
from tests import scanner_fixtures
from tests.conftest import write_config

DAY = "2023-11-22"
INDICATORS = """
[[indicators]]
kind = "sma"
interval = "5m"
period = 10

[[indicators]]
kind = "vwap"
interval = "1m"

[[indicators]]
kind = "rsi"
interval = "1m"
"""


def utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


def state_of(data, symbol):
    view = data[symbol]
    out = {}
    for interval in data.intervals:
        bars = view.bars(interval)
        out[interval] = np.column_stack([bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume])
    for key in data.indicator_keys:
        series = view.indicator(key)
        out[key] = np.column_stack([series.ts, series.values])
    history = view.history("1m")
    out["history"] = np.column_stack([history.ts, history.close])
    return out, view.quality


def run(tmp_path, data_dir, name, symbols, extra="", coordinator_hook=True, **kwargs):
    config = load_config(
        write_config(
            tmp_path / f"{name}.toml",
            data_dir,
            symbols=symbols,
            start=DAY,
            end=DAY,
            intervals=["1m", "5m", "15m"],
            trailing_days=2,
            extra=INDICATORS + extra,
            **kwargs,
        )
    )
    coordinator = SessionCoordinator(config)
    scanner_fixtures.HOOKS.clear()
    if coordinator_hook:
        scanner_fixtures.HOOKS["coordinator"] = coordinator
    return coordinator, coordinator.run()


def assert_same(a, b):
    (state_a, quality_a), (state_b, quality_b) = a, b
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        np.testing.assert_array_equal(state_a[key], state_b[key], err_msg=key)
    assert quality_a == quality_b


@pytest.mark.parametrize("clock", ["data", "clock"])
def test_inserted_at_1107_equals_configured_from_the_open(tmp_path, sample_dir, clock):
    _, reference = run(tmp_path, sample_dir, "ref", ["MSFT", "JPM"], clock=clock)
    extra = '\n[[insert]]\nsymbol = "JPM"\nat = "11:07"\n'
    _, inserted = run(tmp_path, sample_dir, "ins", ["MSFT"], extra=extra, clock=clock)
    assert inserted.session_data.symbols == ("MSFT", "JPM")
    assert inserted.last_day.insertions[0]["clock"] == "2023-11-22T16:07:00+00:00"  # 11:07 New York
    for symbol in ("MSFT", "JPM"):
        assert_same(state_of(inserted.session_data, symbol), state_of(reference.session_data, symbol))


def test_insertion_requested_from_another_thread_during_a_scan(tmp_path, sample_dir):
    _, reference = run(tmp_path, sample_dir, "ref", ["MSFT", "JPM"])
    extra = """
[[scanners]]
name = "asks"
class = "tests.scanner_fixtures:RequestsWhileScanning"
at = ["10:30"]
params = { symbol = "JPM" }
"""
    coordinator, result = run(tmp_path, sample_dir, "thread", ["MSFT"], extra=extra)
    assert scanner_fixtures.HOOKS["paused_during_scan"] is True
    record = scanner_fixtures.HOOKS["future"].result(timeout=5)
    assert record["symbol"] == "JPM" and record["source"] == "request"
    assert record["clock"] == "2023-11-22T15:30:00+00:00"  # the same boundary, after the scan
    for symbol in ("MSFT", "JPM"):
        assert_same(state_of(result.session_data, symbol), state_of(reference.session_data, symbol))


def test_scan_and_insertion_at_the_same_boundary_resume_once(tmp_path, sample_dir):
    extra = """
[[insert]]
symbol = "JPM"
at = "11:00"

[[scanners]]
name = "rec"
class = "tests.scanner_fixtures:Recording"
at = ["11:00"]
params = { match = ["TLT"] }
add = true
universe = "all"
"""
    _, result = run(tmp_path, sample_dir, "same", ["MSFT"], extra=extra)
    at = "2023-11-22T16:00:00+00:00"
    pauses = [p for p in result.last_day.pauses if p["clock"] == at]
    reasons = [(p["action"], p["reason"]) for p in pauses]
    # documented order: the scan (and what it adds) first, then the scripted insertion
    assert reasons == [
        ("pause", "bar boundary"),
        ("pause", "scan rec"),
        ("pause", "insert TLT"),
        ("resume", "insert TLT"),
        ("resume", "scan rec"),
        ("pause", "insert JPM"),
        ("resume", "insert JPM"),
        ("resume", "bar boundary"),
    ]
    assert sum(1 for p in pauses if p["action"] == "resume" and p["depth"] == 0) == 1
    assert [i["symbol"] for i in result.last_day.insertions] == ["TLT", "JPM"]
    assert result.session_data.symbols == ("MSFT", "TLT", "JPM")


def test_no_bar_delivered_twice_or_lost(tmp_path, sample_dir):
    extra = '\n[[insert]]\nsymbol = "JPM"\nat = "11:07"\n'
    _, result = run(tmp_path, sample_dir, "ins", ["MSFT", "TLT"], extra=extra)
    _, full = run(tmp_path, sample_dir, "ref", ["MSFT", "TLT", "JPM"])
    for symbol in ("MSFT", "TLT", "JPM"):
        ts = result.session_data[symbol].bars("1m").ts
        assert np.unique(ts).size == ts.size
        np.testing.assert_array_equal(ts, full.session_data[symbol].bars("1m").ts)
    # streamed bars: MSFT and TLT all day, JPM only after it joined
    jpm = full.session_data["JPM"].bars("1m").ts
    joined = utc("2023-11-22 16:07")
    late = int(((jpm + 60_000_000_000) > joined).sum())
    streamed = len(full.session_data["MSFT"].bars("1m")) + len(full.session_data["TLT"].bars("1m")) + late
    assert result.days[0].bars == streamed


def test_clock_does_not_move_while_another_thread_holds_the_gate(tmp_path, sample_dir):
    extra = """
[[scanners]]
name = "hold"
class = "tests.scanner_fixtures:HoldsTheGate"
at = ["12:00"]
"""
    _, result = run(tmp_path, sample_dir, "hold", ["MSFT"], extra=extra)
    before, after = scanner_fixtures.HOOKS["clock_while_held"]
    assert before == after == utc("2023-11-22 17:00")
    assert result.days[0].clock_ns == utc("2023-11-22 21:00")
    held = [p for p in result.last_day.pauses if p["reason"] == "ui thread"]
    assert [p["action"] for p in held] == ["pause", "resume"]


def test_nested_pauses_from_two_threads_never_resume_early():
    gate = PauseGate()
    tokens = {}
    barrier = threading.Barrier(2)

    def take(name):
        tokens[name] = gate.pause(name)
        barrier.wait()

    threads = [threading.Thread(target=take, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(gate.reasons) == ["a", "b"]
    released = threading.Event()

    def waiter():
        gate.wait_open()
        released.set()

    threading.Thread(target=waiter).start()
    gate.resume(tokens["a"])
    time.sleep(0.05)
    assert not released.is_set() and gate.is_paused
    gate.resume(tokens["b"])
    assert released.wait(2) and not gate.is_paused
    with pytest.raises(ValueError):
        gate.resume(tokens["b"])


def test_pre_session_scans_run_at_the_open_before_activation_and_see_no_bar(tmp_path, sample_dir):
    extra = """
[[scanners]]
name = "rec"
class = "tests.scanner_fixtures:Recording"
pre_session = true
universe = "all"
add = true
params = { match = ["JPM"] }
"""
    coordinator, result = run(tmp_path, sample_dir, "pre", ["MSFT"], extra=extra)
    seen = scanner_fixtures.HOOKS["seen"]
    assert seen[0]["clock"] == seen[0]["now"] == utc("2023-11-22 14:30")
    assert seen[0]["active"] is False
    assert seen[0]["visible_today"] == 0  # regular-hours data: nothing of today before the open
    # the added symbol was loaded before the first bar: complete from the open
    _, reference = run(tmp_path, sample_dir, "ref", ["MSFT", "JPM"])
    assert_same(state_of(result.session_data, "JPM"), state_of(reference.session_data, "JPM"))
    assert result.last_day.insertions[0]["clock"] == "2023-11-22T14:30:00+00:00"


def test_mid_session_scans_see_only_bars_ended_by_the_clock(tmp_path, sample_dir):
    extra = """
[[scanners]]
name = "rec"
class = "tests.scanner_fixtures:Recording"
every = "30m"
universe = "all"
"""
    run(tmp_path, sample_dir, "mid", ["MSFT"], extra=extra)
    seen = scanner_fixtures.HOOKS["seen"]
    assert len(seen) == 12  # 10:00 .. 15:30 New York
    for record in seen:
        assert record["last_bar_end"] <= record["now"] == record["clock"]
        assert record["active"] is True


def test_failing_scanner_exit_5_with_name_and_day(tmp_path, sample_dir, runner):
    extra = """
[[scanners]]
name = "kaboom"
class = "tests.scanner_fixtures:Broken"
at = ["10:00"]
"""
    config = write_config(tmp_path / "c.toml", sample_dir, symbols=["MSFT"], start=DAY, end=DAY, extra=extra)
    result = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 5
    assert "kaboom" in result.stderr and "2023-11-22" in result.stderr and "exploded" in result.stderr
    assert "Traceback" not in result.stderr
    optional = write_config(
        tmp_path / "o.toml",
        sample_dir,
        symbols=["MSFT"],
        start=DAY,
        end=DAY,
        extra=extra + "optional = true\n",
    )
    result = runner.invoke(app, ["run", str(optional), "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.stderr
    doc = runner.invoke(app, ["inspect", "last-day", "--json", "--results-dir", str(tmp_path / "r")]).stdout
    assert '"status": "failed"' in doc and "exploded" in doc


def test_gap_scanner_cannot_run_pre_session_without_premarket_data(tmp_path, sample_dir):
    extra = """
[[scanners]]
name = "gaps"
kind = "gap"
pre_session = true
universe = "all"
"""
    _, result = run(tmp_path, sample_dir, "gap", ["MSFT"], extra=extra)
    scan = result.last_scans[0]
    assert scan["status"] == "skipped" and "pre-market" in scan["reason"]


def test_top_movers_by_hand(tmp_path, sample_dir):
    import pyarrow.parquet as pq

    extra = """
[[scanners]]
name = "movers"
kind = "top_movers"
pre_session = true
universe = ["MSFT", "JPM", "TLT"]
top = 3
"""
    _, result = run(tmp_path, sample_dir, "movers", ["MSFT"], extra=extra)
    want = {}
    for symbol in ("MSFT", "JPM", "TLT"):
        frame = pq.read_table(sample_dir / "bars" / "interval=1m" / f"symbol={symbol}").to_pandas()
        frame = frame.set_index("ts").sort_index()
        closes = []
        for day in ("2023-11-20", "2023-11-21"):  # the two sessions before 11-22
            lo, hi = pd.Timestamp(f"{day} 14:30", tz="UTC"), pd.Timestamp(f"{day} 21:00", tz="UTC")
            closes.append(frame[(frame.index >= lo) & (frame.index < hi)].close.iloc[-1])
        want[symbol] = abs(closes[1] - closes[0]) / closes[0] * 100
    matches = result.last_scans[0]["matches"]
    assert [m["symbol"] for m in matches] == sorted(want, key=lambda s: -want[s])
    for m in matches:
        assert m["score"] == pytest.approx(want[m["symbol"]], rel=1e-12)


def test_validate_reports_a_class_that_does_not_load(tmp_path, sample_dir, runner):
    extra = '[[strategies]]\nname = "x"\nclass = "tests.strategy_fixtures:Nope"\n'
    config = write_config(tmp_path / "c.toml", sample_dir, symbols=["MSFT"], start=DAY, end=DAY, extra=extra)
    result = runner.invoke(app, ["validate", str(config)])
    assert result.exit_code == 3
    assert "strategies[0].class" in result.stderr and "Nope" in result.stderr
