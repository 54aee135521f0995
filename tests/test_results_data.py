"""Results as data: typed time columns, the export round trip, the Python API and the README's example.

References are independent of the code under test: DuckDB reading the results file itself,
pyarrow reading the exported Parquet, the exchange's calendar from exchange_calendars.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import duckdb
import exchange_calendars as xcals
import pandas as pd
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from core import api

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "sample_configs"


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    """The sample SMA config and strategy in a folder of their own, with sample data for 6 sessions."""
    folder = tmp_path_factory.mktemp("project")
    configs = folder / "sample_configs"
    configs.mkdir()
    for name in ("sma_cross.toml", "strategies.py"):
        shutil.copy(SAMPLES / name, configs / name)
    api.data_sample(configs / "data", ["MSFT", "JPM", "TLT", "SPY"], dt.date(2023, 10, 30), 10)
    return folder


@pytest.fixture(scope="module")
def results(project):
    return api.run(project / "sample_configs" / "sma_cross.toml", results_dir=project / "results", days=4)


def _stored(path: Path, table: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.sql(f'SELECT * FROM "{table}"').to_arrow_table(), con.execute(f'DESCRIBE "{table}"').fetchall()
    finally:
        con.close()


def same_table(a, b) -> bool:
    """Same columns, types and rows (Parquet may mark a column NOT NULL where DuckDB's Arrow does not)."""
    return (
        a.column_names == b.column_names
        and [f.type for f in a.schema] == [f.type for f in b.schema]
        and a.to_pylist() == b.to_pylist()
    )


def test_times_are_timestamptz_and_days_are_dates(results):
    for table in results.tables:
        _, columns = _stored(results.path, table)
        for name, kind, *_ in columns:
            assert not name.endswith("_ns"), f"{table}.{name} is an integer time"
            if name in ("ts", "bar_ts", "market_open", "market_close", "clock") or name.endswith("_at"):
                assert kind == "TIMESTAMP WITH TIME ZONE", (table, name, kind)
            if name == "date" or name.endswith("_date"):
                assert kind == "DATE", (table, name, kind)
    days = results.days()
    calendar = xcals.get_calendar("XNYS")
    for row in days.itertuples():
        assert row.market_open == calendar.session_open(row.date)
        assert row.market_close == calendar.session_close(row.date)
    assert len(days) == 4 and str(days["market_open"].dt.tz) == "UTC"


@pytest.mark.parametrize("table", ["orders", "fills", "equity", "days", "order_days", "daily_equity"])
def test_exported_parquet_equals_the_results_table(results, tmp_path, table):
    stored, _ = _stored(results.path, table)
    assert stored.num_rows > 0
    exported = api.export(results.path.parent, results.run_id, table, "parquet", tmp_path)
    assert exported.path == tmp_path / f"{results.run_id}.{table}.parquet" and exported.rows == stored.num_rows
    assert same_table(pq.read_table(exported.path), stored)


def test_exported_csv_has_every_row_and_utc_times(results, tmp_path):
    stored, _ = _stored(results.path, "fills")
    exported = api.export(results.path.parent, None, "fills", "csv", tmp_path / "fills.csv")
    table = pacsv.read_csv(exported.path)
    assert table.column_names == stored.column_names and table.num_rows == stored.num_rows
    first = pd.Timestamp(table.column("ts")[0].as_py())
    assert first == pd.Timestamp(stored.column("ts")[0].as_py()) and first.utcoffset() == dt.timedelta(0)


def test_export_errors_name_the_table_and_format(results, tmp_path):
    from core.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'orders'"):
        api.export(results.path.parent, None, "order", "parquet", tmp_path)
    with pytest.raises(ConfigError, match="unknown format"):
        api.export(results.path.parent, None, "orders", "xlsx", tmp_path)


def test_open_results_by_id_file_and_latest(results):
    by_id = api.open_results(results.run_id, results.path.parent)
    by_file = api.open_results(results.path)
    latest = api.open_results(None, results.path.parent)
    assert by_id.path == by_file.path == latest.path == results.path
    orders = by_id.orders()
    con = duckdb.connect(str(results.path), read_only=True)
    try:
        count, filled = con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'filled') FROM orders").fetchone()
    finally:
        con.close()
    assert len(orders) == count and (orders["status"] == "filled").sum() == filled


def readme_example() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-example:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert match, "the README's Python example (marked readme-example) is missing"
    return match.group(1)


def test_the_readme_example_runs(project, monkeypatch, capsys):
    monkeypatch.chdir(project)
    exec(compile(readme_example(), "README.md", "exec"), {})
    printed = capsys.readouterr().out
    assert "sessions" in printed and "trades" in printed
    exported = pq.read_table(project / "orders.parquet")
    results = api.open_results(None, project / "results")
    assert same_table(exported, _stored(results.path, "orders")[0])


def test_backtest_export_on_the_command_line(results, tmp_path):
    import json

    from typer.testing import CliRunner

    from cli.app import app

    runner = CliRunner()
    args = ["export", results.run_id, "--results-dir", str(results.path.parent), "--table", "equity"]
    done = runner.invoke(app, [*args, "-o", str(tmp_path), "--json"])
    assert done.exit_code == 0, done.stderr
    document = json.loads(done.stdout)
    stored, _ = _stored(results.path, "equity")
    assert document["rows"] == stored.num_rows and same_table(pq.read_table(document["path"]), stored)
    wrong = runner.invoke(app, [*args[:-1], "equities"])
    assert wrong.exit_code == 3 and "did you mean 'equity'" in wrong.stderr
    csv = runner.invoke(app, [*args, "--format", "csv", "-o", str(tmp_path / "e.csv")])
    assert csv.exit_code == 0 and pacsv.read_csv(tmp_path / "e.csv").num_rows == stored.num_rows
