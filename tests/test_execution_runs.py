"""Whole runs with strategies: no look-ahead in fills, a split run equals the whole run, and the
benchmarks' fast SmaCross trades exactly as the sample one."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from tests.conftest import write_config

REPO = Path(__file__).resolve().parents[1]


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), rate=st.sampled_from([0.02, 0.1]))
def test_every_fill_comes_from_a_bar_starting_at_or_after_submission(
    tmp_path_factory, sample_dir, seed, rate
):
    path = tmp_path_factory.mktemp("p") / "c.toml"
    extra = (
        '[[strategies]]\nname = "r"\nclass = "tests.strategy_fixtures:RandomOrders"\n'
        f"[strategies.params]\nseed = {seed}\nrate = {rate}\n"
    )
    config = load_config(
        write_config(
            path,
            sample_dir,
            symbols=["MSFT", "JPM", "TLT"],
            start="2023-11-22",
            end="2023-11-27",
            trailing_days=0,
            intervals=["1m"],
            extra=extra,
        )
    )
    result = SessionCoordinator(config).run()
    orders = {o["id"]: o for o in result.ledger.orders}
    assert result.ledger.fills
    for fill in result.ledger.fills:
        assert fill.bar_ns >= orders[fill.order_id]["submitted_ns"]
        assert fill.ts_ns == fill.bar_ns + 60_000_000_000  # known only once its bar ended
        assert fill.ts_ns > orders[fill.order_id]["submitted_ns"]


def _sma_config(tmp_path, data_dir, name, start, end):
    extra = """
[[indicators]]
kind = "sma"
interval = "1m"
period = 10

[[indicators]]
kind = "sma"
interval = "1m"
period = 30

[execution]
commission_per_share = 0.005
slippage_bps = 1.0

[[strategies]]
name = "sma"
class = "sample_configs/strategies.py:SmaCross"
params = { fast = "sma_10@1m", slow = "sma_30@1m", quantity = 100 }
"""
    extra = extra.replace("sample_configs/strategies.py", str(REPO / "sample_configs" / "strategies.py"))
    return write_config(
        tmp_path / f"{name}.toml",
        data_dir,
        symbols=["MSFT", "JPM", "TLT"],
        start=start,
        end=end,
        trailing_days=1,
        intervals=["1m"],
        extra=extra,
    )


def _ledger(path):
    con = duckdb.connect(str(path), read_only=True)
    try:
        fills = con.execute("SELECT * FROM fills ORDER BY ts, order_id").fetchall()
        daily = con.execute("SELECT * FROM daily_equity ORDER BY date").fetchall()
        equity = con.execute("SELECT ts, equity, cash, exposed FROM equity ORDER BY seq").fetchall()
        carry = con.execute("SELECT * FROM carry").fetchall()
    finally:
        con.close()
    return fills, daily, equity, carry


def test_split_run_equals_whole_run(tmp_path, sample_dir, runner):
    whole = _sma_config(tmp_path, sample_dir, "whole", "2023-11-14", "2023-11-28")
    first = _sma_config(tmp_path, sample_dir, "first", "2023-11-14", "2023-11-21")
    second = _sma_config(tmp_path, sample_dir, "second", "2023-11-22", "2023-11-28")
    out = {}
    for name, config, resume in (("whole", whole, None), ("first", first, None), ("second", second, "first")):
        args = ["run", str(config), "--json", "--results-dir", str(tmp_path / name)]
        if resume:
            args += ["--resume-from", str(out[resume])]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.stderr
        out[name] = json.loads(result.stdout)["results"]
    w_fills, w_daily, w_equity, w_carry = _ledger(out["whole"])
    f_fills, f_daily, f_equity, _ = _ledger(out["first"])
    s_fills, s_daily, s_equity, s_carry = _ledger(out["second"])
    assert len(w_fills) > 20
    # order ids continue in the resumed run, so the fills match field for field
    assert w_fills == f_fills + s_fills
    assert w_daily == f_daily + s_daily
    assert w_equity == f_equity + s_equity
    assert w_carry == s_carry  # same final portfolio and strategy state


def test_report_command_prints_statistics_and_writes_html(tmp_path, sample_dir, runner):
    config = _sma_config(tmp_path, sample_dir, "rep", "2023-11-20", "2023-11-24")
    run = runner.invoke(app, ["run", str(config), "--json", "--results-dir", str(tmp_path / "r")])
    assert run.exit_code == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["statistics"]["trades"] >= 1 and all("pnl" in day for day in doc["days"])
    # the daily P&L adds up to the change in equity
    assert sum(day["pnl"] for day in doc["days"]) == pytest.approx(doc["days"][-1]["equity"] - 100_000.0)
    report = runner.invoke(app, ["report", "--results-dir", str(tmp_path / "r"), "--json"])
    assert report.exit_code == 0, report.stderr
    stats = json.loads(report.stdout)
    assert stats["final_equity"] == pytest.approx(doc["statistics"]["final_equity"])
    assert stats["trades"] == doc["statistics"]["trades"]
    html = (tmp_path / "r" / f"{doc['run_id']}.html").read_text()
    assert 'id="equity-chart"' in html and 'id="drawdown-chart"' in html
    human = runner.invoke(app, ["report", doc["run_id"], "--results-dir", str(tmp_path / "r")])
    assert human.exit_code == 0 and "max drawdown" in human.stdout
    inspect = runner.invoke(app, ["inspect", "last-day", "--json", "--results-dir", str(tmp_path / "r")])
    day = json.loads(inspect.stdout)
    # the last day's orders and fills are the results file's own rows of that day
    con = duckdb.connect(doc["results"], read_only=True)
    try:
        want_orders = con.execute(
            "SELECT id, status FROM order_days WHERE date = '2023-11-24' ORDER BY id"
        ).fetchall()
        close = doc["days"][-1]["market_close"]
        want_fills = con.execute(
            "SELECT order_id, price FROM fills WHERE ts > ?::TIMESTAMPTZ - INTERVAL 1 DAY "
            "AND ts <= ?::TIMESTAMPTZ ORDER BY ts, order_id",
            [close, close],
        ).fetchall()
    finally:
        con.close()
    assert [(o["id"], o["status"]) for o in day["orders"]] == want_orders and want_orders
    assert [(f["order_id"], f["price"]) for f in day["fills"]] == want_fills and want_fills


def test_report_without_strategies_says_so(tmp_path, sample_dir, runner):
    config = write_config(
        tmp_path / "c.toml", sample_dir, symbols=["MSFT"], start="2023-11-22", end="2023-11-22"
    )
    assert runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r")]).exit_code == 0
    report = runner.invoke(app, ["report", "--results-dir", str(tmp_path / "r")])
    assert report.exit_code == 0 and "no strategies" in report.stderr
    document = json.loads(
        runner.invoke(app, ["report", "--results-dir", str(tmp_path / "r"), "--json"]).stdout
    )
    # what the run has, counted by hand: one day, MSFT, its regular-hours bars in the store
    frame = pq.read_table(sample_dir / "bars" / "interval=1m" / "symbol=MSFT").to_pandas()
    day = frame[
        (frame.ts >= pd.Timestamp("2023-11-22 14:30", tz="UTC"))
        & (frame.ts < pd.Timestamp("2023-11-22 21:00", tz="UTC"))
    ]
    assert document["strategies"] is False and document["days"] == 1 and document["symbols"] == ["MSFT"]
    assert document["bars"] == len(day) and document["orders"] == {"total": 0}


# a scanner adds JPM and TLT at 09:37 New York and removes JPM at 10:30, every day
SCANNED = """
[[scanners]]
name = "phased"
class = "tests.scanner_fixtures:Phased"
at = ["09:37", "10:30"]
universe = ["JPM", "TLT"]
add = true
remove = true

[scanners.params]
early = ["JPM", "TLT"]
late = ["TLT"]
"""


@pytest.mark.parametrize("universe", ["fixed", "scanned"])
def test_the_benchmarks_fast_sma_cross_trades_exactly_as_the_sample(tmp_path, sample_dir, universe):
    """benchmarks/fast_strategies.py:SmaCross (numpy over the batch, what the benchmarks run) and
    sample_configs/strategies.py:SmaCross (written to be read) on the same bars: the same orders
    field for field (ids, statuses and times included), the same fills, the same equity curve and
    the same state left for the next day; with symbols joining and leaving mid-session too."""
    results = {}
    for variant, module in (
        ("sample", "sample_configs/strategies.py"),
        ("fast", "benchmarks/fast_strategies.py"),
    ):
        body = "".join(
            f'[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = {period}\n' for period in (10, 30)
        )
        body += "[execution]\ncommission_per_share = 0.005\nslippage_bps = 1.0\n"
        body += SCANNED if universe == "scanned" else ""
        body += f'[[strategies]]\nname = "sma"\nclass = "{REPO / module}:SmaCross"\n'
        body += 'params = { fast = "sma_10@1m", slow = "sma_30@1m", quantity = 100 }\n'
        config = write_config(
            tmp_path / f"{variant}.toml",
            sample_dir,
            symbols=["MSFT"] if universe == "scanned" else ["MSFT", "JPM", "TLT"],
            start="2023-11-17",
            end="2023-11-28",
            trailing_days=1,
            intervals=["1m"],
            extra=body,
        )
        results[variant] = SessionCoordinator(load_config(config)).run()
    sample, fast = results["sample"].ledger, results["fast"].ledger
    assert sample is not None and fast is not None
    traded = {f.symbol for f in sample.fills}
    assert len(sample.fills) > 100 and traded == {"MSFT", "JPM", "TLT"}  # the comparison means something
    if universe == "scanned":
        assert [r["status"] for r in results["sample"].insertions if r["symbol"] == "JPM"][-1] == "removed"
    assert sample.orders == fast.orders
    assert sample.fills == fast.fills
    assert (sample.curve_ns, sample.curve_equity, sample.curve_cash, sample.curve_exposed) == (
        fast.curve_ns,
        fast.curve_equity,
        fast.curve_cash,
        fast.curve_exposed,
    )
    assert sample.daily == fast.daily
    assert results["sample"].strategy_states == results["fast"].strategy_states
