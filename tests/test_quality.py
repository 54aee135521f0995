"""Data quality: hand counts against the quality manager, without look-ahead."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config

MINUTE = pd.Timedelta(minutes=1)


def write_bars(root, symbol: str, starts: list[pd.Timestamp], price: float = 100.0, rows=None) -> None:
    """A store file of ``symbol`` with one bar per start (or the given raw rows)."""
    n = len(starts)
    table = pa.table(
        rows
        or {
            "ts": pa.array([s.as_unit("us") for s in starts], pa.timestamp("us", tz="UTC")),
            "open": np.full(n, price),
            "high": np.full(n, price + 1),
            "low": np.full(n, price - 1),
            "close": np.full(n, price),
            "volume": np.full(n, 10.0),
        }
    )
    folder = root / "bars" / "interval=1m" / f"symbol={symbol}"
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part.parquet")


def session_minutes(day: str, open_: str = "14:30", minutes: int = 390) -> list[pd.Timestamp]:
    start = pd.Timestamp(f"{day} {open_}", tz="UTC")
    return [start + i * MINUTE for i in range(minutes)]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(missing=st.sets(st.integers(0, 209), max_size=120), stride=st.integers(1, 7))
def test_running_score_equals_hand_count(tmp_path_factory, missing, stride):
    """At every clock stop: present bars ended by then over expected bars ended by then."""
    root = tmp_path_factory.mktemp("q")
    minutes = session_minutes("2023-11-24", minutes=210)  # the 13:00 early close
    present = [m for i, m in enumerate(minutes) if i not in missing]
    extra = [pd.Timestamp("2023-11-24 18:00", tz="UTC"), pd.Timestamp("2023-11-24 12:00", tz="UTC")]
    write_bars(root, "AAA", present + extra)  # plus a closing-auction and a pre-market bar
    config = load_config(
        write_config(
            root / "c.toml",
            root,
            symbols=["AAA"],
            start="2023-11-24",
            end="2023-11-24",
            trailing_days=0,
            clock="clock",
        )
    )
    coordinator = SessionCoordinator(config)
    checks = []
    original = coordinator.clock.advance_to

    def check(ts_ns: int) -> None:
        original(ts_ns)
        if len(checks) % stride:
            checks.append(True)
            return
        coordinator.processor.on_clock(ts_ns)  # deliver first, as the stream does
        now = pd.Timestamp(ts_ns, tz="UTC")
        due = [m for m in minutes if m + MINUTE <= now]
        hand_present = sum(1 for m in present if m + MINUTE <= now)
        record = coordinator.quality.scores_at(ts_ns)["AAA"]
        hand = hand_present / len(due) if due else 1.0
        checks.append(
            record.expected_bars == len(due)
            and record.present_bars == hand_present
            and abs(record.score - hand) < 1e-15
        )

    coordinator.clock.advance_to = check
    result = coordinator.run()
    assert checks and all(checks)
    final = result.session_data["AAA"].quality
    assert final.present_bars == 210 - len(missing) and final.expected_bars == 210
    runs, longest = 0, 0
    for i in range(210):
        runs = runs + 1 if i in missing else 0
        longest = max(longest, runs)
    assert final.largest_gap == longest


def test_sparse_symbol_score_and_after_hours_never_streamed(tmp_path):
    """An FXY-like thin name on the early close: 43 of 210 bars, and nothing at or after 13:00."""
    minutes = session_minutes("2023-11-24", minutes=210)
    chosen = minutes[::4][:43]
    after = [pd.Timestamp("2023-11-24 18:00", tz="UTC") + i * MINUTE for i in range(0, 200, 7)]
    write_bars(tmp_path, "THIN", chosen + after)
    write_bars(tmp_path, "FULL", minutes + after)
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            tmp_path,
            symbols=["THIN", "FULL"],
            start="2023-11-24",
            end="2023-11-24",
            trailing_days=0,
        )
    )
    result = SessionCoordinator(config).run()
    data = result.session_data
    assert data["THIN"].quality.score == 43 / 210
    assert len(data["FULL"].bars("1m")) == 210
    assert data["FULL"].bars("1m").ts.max() < pd.Timestamp("2023-11-24 18:00", tz="UTC").value
    assert result.days[0].bars == 253


def test_history_duplicates_and_ohlc_violations_are_counted(tmp_path):
    history = session_minutes("2023-11-22")
    today = session_minutes("2023-11-24", minutes=210)
    starts = history + [history[10]] + today  # one duplicate in the history
    n = len(starts)
    high = np.full(n, 101.0)
    high[20] = 99.0  # below open/close: a violation
    rows = {
        "ts": pa.array([s.as_unit("us") for s in starts], pa.timestamp("us", tz="UTC")),
        "open": np.full(n, 100.0),
        "high": high,
        "low": np.full(n, 99.0),
        "close": np.full(n, 100.0),
        "volume": np.full(n, 5.0),
    }
    write_bars(tmp_path, "AAA", starts, rows=rows)
    config = load_config(
        write_config(
            tmp_path / "c.toml",
            tmp_path,
            symbols=["AAA"],
            start="2023-11-24",
            end="2023-11-24",
            trailing_days=1,
        )
    )
    record = SessionCoordinator(config).run().session_data["AAA"].quality
    assert record.history_duplicates == 1 and record.history_violations == 1
    assert record.history_score == 1.0 and record.history_expected == 390
    assert record.violations == 0 and record.duplicates == 0 and record.score == 1.0


def test_min_score_warns_and_drop_below_leaves_symbol_out(tmp_path, runner):
    write_bars(tmp_path, "GOOD", session_minutes("2023-11-22") + session_minutes("2023-11-24", minutes=210))
    thin = session_minutes("2023-11-22")[::3] + session_minutes("2023-11-24", minutes=210)
    write_bars(tmp_path, "THIN", thin)
    for drop, kept in ((False, ["GOOD", "THIN"]), (True, ["GOOD"])):
        extra = f"[quality]\nmin_score = 0.9\ndrop_below = {'true' if drop else 'false'}\n"
        config = write_config(
            tmp_path / f"c{drop}.toml",
            tmp_path,
            symbols=["GOOD", "THIN"],
            start="2023-11-24",
            end="2023-11-24",
            trailing_days=1,
            extra=extra,
        )
        results = tmp_path / f"r{drop}"
        run = runner.invoke(app, ["run", str(config), "--json", "--results-dir", str(results)])
        assert run.exit_code == 0, run.stderr
        assert "THIN" in run.stderr and "0.3333" in run.stderr  # the warning names symbol and score
        doc = json.loads(
            runner.invoke(app, ["inspect", "last-day", "--json", "--results-dir", str(results)]).stdout
        )
        assert list(doc["symbols"]) == kept
        if drop:
            assert doc["dropped"]["THIN"]["dropped"] is True
            assert doc["dropped"]["THIN"]["history_score"] == 130 / 390
            assert json.loads(run.stdout)["days"][0]["bars"] == 210
            assert (
                "dropped" in runner.invoke(app, ["inspect", "last-day", "--results-dir", str(results)]).stdout
            )
        else:
            assert doc["dropped"] == {}
