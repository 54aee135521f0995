"""Results you can trust: run ids, the list of runs, faithful day replays, one row per order.

Expectations come from the results files read with DuckDB here, from the test strategy's
own count of what it submitted, and from exchange_calendars; never from another path of
the code under test.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import exchange_calendars as xcals
import pandas as pd
import pyarrow.parquet as pq
import pytest

from cli.app import app
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
DAYS = ("2023-11-20", "2023-11-21", "2023-11-22", "2023-11-24", "2023-11-27")

PROBE = '''
from core.execution.strategy import Strategy


class Probe(Strategy):
    """Orders of every kind the orders table must tell apart, counted in self.state."""

    def on_session_start(self, ctx):
        self.bar = 0

    def on_bars(self, ctx, batch):
        self.bar += 1
        symbol, close = batch.symbols[0], float(batch.close[0])
        count = self.state.setdefault("submitted", 0)
        if self.bar == 1:
            ctx.buy(symbol, 1, type="limit", limit=close * 0.5, tif="gtc")   # never fills: open at the end
            ctx.buy(symbol, 1, type="limit", limit=close * 0.5)              # a day order: expires
            count += 2
        if self.bar == 10:
            ctx.buy(symbol, 1, type="limit", limit=close * 1.5, tif="gtc")   # fills on the next bar
            count += 1
        if self.bar == 20:
            self.cancel_me = ctx.buy(symbol, 1, type="limit", limit=close * 0.5, tif="gtc").id
            count += 1
        if self.bar == 30:
            ctx.cancel(self.cancel_me)                                        # cancelled at the 30th bar's end
        if ctx.now_ns == ctx.session.close_ns:
            ctx.buy(symbol, 1)                                                # market at the close: next open
            count += 1
        self.state["submitted"] = count
'''


def probe_config(tmp_path: Path, data_dir: Path, end: str = "2023-11-27") -> Path:
    (tmp_path / "probe.py").write_text(PROBE)
    extra = '[[strategies]]\nname = "probe"\nclass = "probe.py:Probe"\n'
    return write_config(
        tmp_path / "c.toml", data_dir, start=DAYS[0], end=end, symbols=["MSFT"], intervals=["1m"], extra=extra
    )


def run(runner, config: Path, results: Path, *more: str):
    outcome = runner.invoke(app, ["run", str(config), "--results-dir", str(results), "--json", *more])
    assert outcome.exit_code == 0, outcome.stderr
    return json.loads(outcome.stdout)


def query(path: str | Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def store(tmp_path, complete_dir) -> Path:
    """A private copy of the complete store (some tests change a file)."""
    return Path(shutil.copytree(complete_dir, tmp_path / "store"))


# -- the run id ---------------------------------------------------------------------------------
def test_same_inputs_same_id_and_bytes(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    first = run(runner, config, tmp_path / "r")
    before = Path(first["results"]).read_bytes()
    second = run(runner, config, tmp_path / "r")
    assert second["run_id"] == first["run_id"]
    assert Path(second["results"]).read_bytes() == before


def test_editing_the_strategy_changes_the_id_and_keeps_both_results(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    first = run(runner, config, tmp_path / "r")
    source = tmp_path / "probe.py"
    source.write_text(source.read_text().replace("close * 1.5", "close * 1.4"))
    second = run(runner, config, tmp_path / "r")
    assert second["run_id"] != first["run_id"]
    assert Path(first["results"]).exists() and Path(second["results"]).exists()
    listed = json.loads(runner.invoke(app, ["runs", "--results-dir", str(tmp_path / "r"), "--json"]).stdout)
    ids = [r["run_id"] for r in listed["runs"]]
    assert set(ids) == {first["run_id"], second["run_id"]}
    newest = listed["runs"][0]
    assert newest["run_id"] == second["run_id"] and newest["latest"] is True
    assert newest["config"] == str(config.resolve()) and newest["strategies"] == ["probe"]
    assert newest["days"] == len(DAYS) and newest["first"] == DAYS[0] and newest["last"] == DAYS[-1]
    assert newest["status"] == "complete" and newest["symbols"] == ["MSFT"]


def test_changing_a_stored_value_changes_the_id(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    first = run(runner, config, tmp_path / "r")
    path = next((store / "bars" / "interval=1m" / "symbol=MSFT").glob("*.parquet"))
    table = pq.read_table(path).to_pandas()
    table.loc[table.index[5], "close"] = table.loc[table.index[5], "close"] + 0.01
    pq.write_table(pq.read_table(path).from_pandas(table, preserve_index=False), path)
    second = run(runner, config, tmp_path / "r")
    assert second["run_id"] != first["run_id"]


def test_runs_lists_nothing_before_a_run(tmp_path, runner):
    outcome = runner.invoke(app, ["runs", "--results-dir", str(tmp_path / "none"), "--json"])
    assert outcome.exit_code == 0 and json.loads(outcome.stdout)["runs"] == []


# -- one row per order (issue 16) ---------------------------------------------------------------
def test_orders_table_has_one_row_per_order_with_its_final_status(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    path = run(runner, config, tmp_path / "r")["results"]
    (states,) = query(path, "SELECT strategy_states_json FROM carry")[0]
    submitted = json.loads(states)["probe"]["submitted"]
    assert submitted == 5 * len(DAYS)  # by the strategy's own count: 2 + 1 + 1 + 1 a day
    total, distinct = query(path, "SELECT count(*), count(DISTINCT id) FROM orders")[0]
    assert total == distinct == submitted
    schedule = xcals.get_calendar("XNYS").schedule.loc[DAYS[0] : DAYS[-1]]
    closes = {s.date().isoformat(): c for s, c in schedule["close"].items()}
    opens = {s.date().isoformat(): o for s, o in schedule["open"].items()}
    rows = query(
        path,
        """SELECT id, type, tif, status, submitted_date::VARCHAR, filled_date::VARCHAR,
                  epoch_ns(expired_at), expired_date::VARCHAR, last_date::VARCHAR, epoch_ns(cancelled_at),
                  cancelled_date::VARCHAR FROM orders ORDER BY id""",
    )
    fills = {order_id for (order_id,) in query(path, "SELECT order_id FROM fills")}
    cancelled = [row for row in rows if row[3] == "cancelled"]
    assert len(cancelled) == len(DAYS)
    for *_, cancelled_ns, cancelled_day in cancelled:  # at the end of the day's 30th minute
        assert pd.Timestamp(cancelled_ns, tz="UTC") == opens[cancelled_day] + pd.Timedelta(minutes=30)
    for order_id, kind, tif, status, submitted_day, filled_day, expired_ns, expired_day, last, *_ in rows:
        if status == "cancelled":
            continue
        if kind == "limit" and tif == "gtc" and status != "filled":
            assert status == "open" and last == DAYS[-1]  # alive to the end of the run
        elif kind == "limit" and tif == "day":
            assert status == "expired" and expired_day == submitted_day
            assert pd.Timestamp(expired_ns, tz="UTC") == closes[submitted_day]  # at that day's close
        elif kind == "market" and submitted_day != DAYS[-1]:
            nxt = DAYS[DAYS.index(submitted_day) + 1]
            assert status == "filled" and filled_day == nxt  # sent at the close, filled at the next open
        elif kind == "market":
            assert status == "open"  # sent at the run's last close: nothing left to fill it
        else:
            assert status == "filled" and filled_day == submitted_day
        assert (status == "filled") == (order_id in fills)
    per_day = query(path, "SELECT count(*) FROM order_days")[0][0]
    assert per_day > total  # orders open across a close: one state per day alive


# -- inspect-day as the run lived it ------------------------------------------------------------
def test_inspect_day_equals_the_runs_own_orders_and_fills_of_that_day(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    path = run(runner, config, tmp_path / "r")["results"]
    day = DAYS[2]
    refused = runner.invoke(app, ["inspect-day", day, "--results-dir", str(tmp_path / "r"), "--json"])
    assert refused.exit_code == 2 and "probe.py" in refused.stderr and "--run-code" in refused.stderr
    assert refused.stdout == ""  # the strategy file named by the results was not run
    shown = runner.invoke(app, ["inspect-day", day, "--results-dir", str(tmp_path / "r"), "--json", "--run-code"])
    assert shown.exit_code == 0, shown.stderr
    document = json.loads(shown.stdout)
    want_orders = query(
        path, f"SELECT id, status, fill_price FROM order_days WHERE date = '{day}' ORDER BY id"
    )
    got_orders = [(o["id"], o["status"], o["fill_price"]) for o in document["orders"]]
    assert got_orders == want_orders
    close = xcals.get_calendar("XNYS").session_close(day).value
    open_ = xcals.get_calendar("XNYS").session_open(day).value
    want_fills = query(
        path,
        f"SELECT order_id, epoch_ns(ts), price, quantity FROM fills WHERE epoch_ns(ts) > {open_} "
        f"AND epoch_ns(ts) <= {close} ORDER BY ts, order_id",
    )
    got_fills = [
        (f["order_id"], pd.Timestamp(f["time"]).value, f["price"], f["quantity"]) for f in document["fills"]
    ]
    assert got_fills == want_fills and want_fills
    assert document["replay"] == {"date": day, "faithful": True, "reasons": []}


def test_inspect_day_says_when_the_code_changed_since(tmp_path, store, runner):
    config = probe_config(tmp_path, store)
    run(runner, config, tmp_path / "r")
    source = tmp_path / "probe.py"
    source.write_text(source.read_text() + "\n# edited\n")
    shown = runner.invoke(app, ["inspect-day", DAYS[1], "--results-dir", str(tmp_path / "r"), "--json", "--run-code"])
    replay = json.loads(shown.stdout)["replay"]
    assert replay["faithful"] is False and "code changed" in " ".join(replay["reasons"])
    text = runner.invoke(app, ["inspect-day", DAYS[1], "--results-dir", str(tmp_path / "r"), "--run-code"])
    assert "NOT faithful" in text.stdout


@pytest.mark.parametrize(("day", "why"), [("2023-11-23", "holiday"), ("2023-11-29", "after the run")])
def test_inspect_day_outside_the_run_is_a_usage_error_naming_its_range(tmp_path, store, runner, day, why):
    config = probe_config(tmp_path, store)
    run(runner, config, tmp_path / "r")
    shown = runner.invoke(app, ["inspect-day", day, "--results-dir", str(tmp_path / "r")])
    assert shown.exit_code == 2, why
    assert day in shown.stderr and DAYS[0] in shown.stderr and DAYS[-1] in shown.stderr


# -- exit codes --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "command", [["inspect", "last-day"], ["inspect-day", "2023-11-22"], ["report"], ["report", "--json"]]
)
def test_before_any_run_says_no_runs_yet_with_exit_4(tmp_path, runner, command):
    outcome = runner.invoke(app, [*command, "--results-dir", str(tmp_path / "empty")])
    assert outcome.exit_code == 4
    assert "no runs yet" in outcome.stderr and outcome.stdout == ""


def test_readme_lists_every_exit_code_of_the_table():
    from cli.errors import EXIT_CODES, EXIT_INTERRUPTED

    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| exit |") :].split("\n\n")[0]
    for code in {code for _, code in EXIT_CODES} | {0, EXIT_INTERRUPTED}:
        assert f"| {code} |" in table
