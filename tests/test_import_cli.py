"""`backtest data import` end to end: the CLI, exit codes, and the real data through it."""

from __future__ import annotations

import json

import pytest

from cli.app import app
from tests.conftest import REAL_DATA, write_config

CSV = """Timestamp,Open,High,Low,Close,Volume
2023-11-24 14:30:00,10,11,9,10.5,100
2023-11-24 14:31:00,10.5,11,8.5,9,100
2023-11-24 14:32:00,10,9,9.5,10,100
2023-11-24 14:33:00,10,11,9,10,-5
"""


def test_strict_import_fails_with_exit_4_and_names_the_line(runner, tmp_path):
    source = tmp_path / "bars.csv"
    source.write_text(CSV)
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(source),
            "--symbol",
            "AAA",
            "--tz",
            "UTC",
            "--data-dir",
            str(tmp_path / "store"),
            "--strict",
        ],
    )
    assert result.exit_code == 4
    assert f"{source}:4" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "store" / "bars").exists() or not any((tmp_path / "store").rglob("*.parquet"))


def test_lenient_import_reports_each_bad_line(runner, tmp_path):
    source = tmp_path / "bars.csv"
    source.write_text(CSV)
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(source),
            "--symbol",
            "AAA",
            "--tz",
            "UTC",
            "--data-dir",
            str(tmp_path / "store"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["rows_imported"] == 2
    lines = sorted(row["line"] for row in doc["invalid"])
    assert lines == [4, 5]  # high below the open/close; negative volume


def test_naive_timestamps_without_tz_exit_4(runner, tmp_path):
    source = tmp_path / "bars.csv"
    source.write_text(CSV)
    result = runner.invoke(
        app, ["data", "import", str(source), "--symbol", "AAA", "--data-dir", str(tmp_path / "store")]
    )
    assert result.exit_code == 4 and "--tz" in result.stderr


@pytest.mark.skipif(not REAL_DATA.is_dir(), reason="../shared/data/real is absent")
def test_real_files_imported_then_run_match_the_readme(runner, tmp_path):
    store = tmp_path / "store"
    for ticker in ("MSFT", "JPM", "TLT", "FXY"):
        result = runner.invoke(
            app,
            [
                "data",
                "import",
                str(REAL_DATA / f"{ticker}_1m_utc.csv"),
                "--symbol",
                ticker,
                "--tz",
                "UTC",
                "--data-dir",
                str(store),
            ],
        )
        assert result.exit_code == 0, result.stderr
    config = write_config(
        tmp_path / "c.toml",
        store,
        symbols=["MSFT", "JPM", "TLT", "FXY"],
        start="2023-11-22",
        end="2023-11-28",
        trailing_days=1,
    )
    result = runner.invoke(app, ["run", str(config), "--json", "--results-dir", str(tmp_path / "r")])
    assert result.exit_code == 0, result.stderr
    days = json.loads(result.stdout)["days"]
    # README: 390 (210 on 11-24) for MSFT, JPM, TLT; FXY 130, 43, 75, 132
    assert [(d["date"], d["bars"]) for d in days] == [
        ("2023-11-22", 3 * 390 + 130),
        ("2023-11-24", 3 * 210 + 43),
        ("2023-11-27", 3 * 390 + 75),
        ("2023-11-28", 3 * 390 + 132),
    ]
    assert days[1]["clock"] == "2023-11-24T18:00:00+00:00"
    doc = json.loads(
        runner.invoke(app, ["inspect", "last-day", "--json", "--results-dir", str(tmp_path / "r")]).stdout
    )
    assert doc["symbols"]["FXY"]["quality"]["score"] == 132 / 390
