"""Sweep parameters that are lists (``streams.symbols``) and list-section keys, end to end:
each run's stored config holds the point's values, and sweep-report gives them back as lists."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from cli.app import app
from core import api

ROOT = Path(__file__).resolve().parents[1]


def test_list_values_reach_each_run_and_come_back_as_lists(tmp_path):
    for name in ("sma_cross.toml", "strategies.py"):
        shutil.copy(ROOT / "sample_configs" / name, tmp_path / name)
    api.data_sample(tmp_path / "data", ["MSFT", "JPM", "TLT", "SPY"], dt.date(2023, 10, 30), 5)
    grid = tmp_path / "grid.toml"
    grid.write_text(
        '[params]\n"streams.symbols" = [["MSFT", "JPM"], ["TLT"]]\n"indicators.2.period" = [10, 20]\n'
        '[objective]\nstatistic = "total_return"\n'
    )
    runner = CliRunner()
    sweep_dir = tmp_path / "s"
    done = runner.invoke(
        app,
        [
            "sweep",
            str(tmp_path / "sma_cross.toml"),
            "--grid",
            str(grid),
            "--days",
            "2",
            "--sweep-dir",
            str(sweep_dir),
            "--workers",
            "2",
            "-q",
            "--json",
        ],
    )
    assert done.exit_code == 0, done.stderr
    con = duckdb.connect(str(sweep_dir / "sweep.duckdb"), read_only=True)
    try:
        rows = con.execute(
            'SELECT "streams.symbols", "indicators.2.period", results_path FROM runs ORDER BY trial'
        ).fetchall()
    finally:
        con.close()
    points = [(["MSFT", "JPM"], 10), (["MSFT", "JPM"], 20), (["TLT"], 10), (["TLT"], 20)]
    assert [(json.loads(s), p) for s, p, _ in rows] == points
    for (symbols, period), (_, _, path) in zip(points, rows, strict=True):
        config = api.open_results(path).config
        assert config["streams"]["symbols"] == symbols and config["indicators"][2]["period"] == period
    report = runner.invoke(app, ["sweep-report", str(sweep_dir), "--json"])
    document = json.loads(report.stdout)
    assert document["heatmap"]["x_values"] == [["MSFT", "JPM"], ["TLT"]]
    assert all(isinstance(row["params"]["streams.symbols"], list) for row in document["top"])
