"""The command line end to end: validate, run, inspect, data (stdout and stderr apart)."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from cli.app import app
from tests.conftest import write_config


def invoke(runner, *args, **kwargs):
    result = runner.invoke(app, [str(a) for a in args], **kwargs)
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    return result


def test_validate_json(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", sample_dir, intervals=["1m", "5m", "15m"])
    result = invoke(runner, "validate", config, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["valid"] is True
    assert doc["base_interval"] == "1m"
    assert doc["derived_intervals"] == ["5m", "15m"]
    assert doc["errors"] == [] and isinstance(doc["warnings"], list)
    assert doc["sessions"] == ["2023-11-22", "2023-11-24", "2023-11-27", "2023-11-28"]


def test_validate_human(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", sample_dir)
    result = invoke(runner, "validate", config)
    assert result.exit_code == 0
    assert "valid" in result.stdout and "base interval" in result.stdout


@pytest.fixture
def ran(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", sample_dir, intervals=["1m", "5m", "1h"])
    results = tmp_path / "results"
    result = invoke(runner, "run", config, "--json", "--results-dir", results)
    assert result.exit_code == 0, result.stderr
    return config, results, json.loads(result.stdout), result


def test_run_json_document(ran):
    _, results, doc, result = ran
    assert set(doc) >= {"run_id", "results", "days", "totals"}
    assert [d["date"] for d in doc["days"]] == [
        "2023-11-22",
        "2023-11-24",
        "2023-11-27",
        "2023-11-28",
    ]
    early = doc["days"][1]
    assert early["market_open"] == "2023-11-24T14:30:00+00:00"
    assert early["market_close"] == early["clock"] == "2023-11-24T18:00:00+00:00"
    for day in doc["days"]:
        assert set(day) >= {"date", "market_open", "market_close", "clock", "bars"}
        assert day["clock"] == day["market_close"]
    totals = doc["totals"]
    assert totals["days"] == 4 and totals["bars"] == sum(d["bars"] for d in doc["days"])
    assert totals["seconds"] > 0 and totals["bars_per_second"] > 0
    assert (results / "latest").read_text().strip() == f"{doc['run_id']}.duckdb"
    assert "day 4/4" in result.stderr  # progress went to stderr


def test_run_human_summary(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", sample_dir)
    result = invoke(runner, "run", config, "--days", "2", "--results-dir", tmp_path / "r", "--verbose")
    assert result.exit_code == 0, result.stderr
    assert "bars/s" in result.stdout and "early close" in result.stdout  # engine timings: --verbose
    assert "3 streaming" in result.stderr


def test_inspect_last_day_json(runner, ran, sample_dir):
    _, results, run_doc, _ = ran
    result = invoke(runner, "inspect", "last-day", "--results-dir", results, "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["run_id"] == run_doc["run_id"]
    assert doc["date"] == "2023-11-28" and doc["exchange"] == "XNYS"
    assert doc["clock"] == doc["market_close"] == "2023-11-28T21:00:00+00:00"
    assert doc["session_active"] is False
    msft = doc["symbols"]["MSFT"]
    assert set(msft["bars"]) == {"1m", "5m", "1h"}
    # the first stored MSFT minute of the day at or after the 14:30 UTC open, read here
    stored = pq.read_table(sample_dir / "bars" / "interval=1m" / "symbol=MSFT").to_pandas()["ts"]
    first = stored[(stored >= pd.Timestamp("2023-11-28 14:30", tz="UTC"))].min()
    assert msft["bars"]["1m"][0]["ts"] == first.isoformat()
    assert msft["bars"]["1h"][-1]["ts"] == "2023-11-28T20:30:00+00:00"
    assert msft["bars"]["1h"][-1]["partial"] is True
    assert "partial" not in msft["bars"]["1h"][0]
    quality = msft["quality"]
    assert quality["present_bars"] == len(msft["bars"]["1m"]) and quality["expected_bars"] == 390
    assert quality["score"] == pytest.approx(quality["present_bars"] / 390)
    assert doc["scans"] == [] and doc["insertions"] == []


def test_inspect_filters(runner, ran):
    _, results, _, _ = ran
    result = invoke(
        runner,
        "inspect",
        "last-day",
        "--results-dir",
        results,
        "--json",
        "--symbol",
        "JPM",
        "--interval",
        "5m",
    )
    doc = json.loads(result.stdout)
    assert list(doc["symbols"]) == ["JPM"] and list(doc["symbols"]["JPM"]["bars"]) == ["5m"]
    result = invoke(runner, "inspect", "last-day", "--results-dir", results)
    assert result.exit_code == 0 and "MSFT" in result.stdout and "quality" in result.stdout


def test_inspect_day_of_last_day_equals_last_day(runner, ran):
    _, results, _, _ = ran
    last = invoke(runner, "inspect", "last-day", "--results-dir", results, "--json")
    replay = invoke(runner, "inspect-day", "2023-11-28", "--results-dir", results, "--json")
    default = invoke(runner, "inspect-day", "--results-dir", results, "--json")
    assert replay.exit_code == 0, replay.stderr
    assert replay.stdout == last.stdout == default.stdout


def test_inspect_day_replays_an_earlier_day(runner, ran, tmp_path, sample_dir):
    _, results, _, _ = ran
    replay = json.loads(
        invoke(runner, "inspect-day", "2023-11-24", "--results-dir", results, "--json").stdout
    )
    # a run that ends on 11-24 must show the same day
    config = write_config(
        tmp_path / "d.toml",
        sample_dir,
        start="2023-11-22",
        end="2023-11-24",
        intervals=["1m", "5m", "1h"],
    )
    other = tmp_path / "other"
    assert invoke(runner, "run", config, "--results-dir", other, "--json").exit_code == 0
    last = json.loads(invoke(runner, "inspect", "last-day", "--results-dir", other, "--json").stdout)
    assert replay["symbols"] == last["symbols"]
    assert replay["clock"] == last["clock"] == "2023-11-24T18:00:00+00:00"


def test_same_inputs_give_identical_results(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", sample_dir)
    outputs = []
    for n in range(2):
        results = tmp_path / f"r{n}"
        assert invoke(runner, "run", config, "--results-dir", results).exit_code == 0
        outputs.append(invoke(runner, "inspect", "last-day", "--results-dir", results, "--json").stdout)
    assert outputs[0] == outputs[1]


def test_cli_overrides_and_env(runner, tmp_path, sample_dir):
    config = write_config(tmp_path / "c.toml", tmp_path / "nowhere")
    env = {"BACKTEST_DATA_DIR": str(sample_dir), "BACKTEST_SESSION__CLOCK": "clock"}
    result = invoke(
        runner,
        "run",
        config,
        "--json",
        "--results-dir",
        tmp_path / "r",
        "--start",
        "2023-11-24",
        "--days",
        "1",
        env=env,
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert [d["date"] for d in doc["days"]] == ["2023-11-24"]


def test_data_sample_is_deterministic_and_info_lists_it(runner, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for target in (first, second):
        result = invoke(
            runner,
            "data",
            "sample",
            "--symbols",
            "3",
            "--days",
            "3",
            "--start",
            "2023-11-22",
            "--data-dir",
            target,
            "--seed",
            "3",
        )
        assert result.exit_code == 0, result.stderr
    files = sorted(p.relative_to(first) for p in first.rglob("*.parquet"))
    assert len(files) == 3
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes()
    info = invoke(runner, "data", "info", "--data-dir", first, "--json")
    doc = json.loads(info.stdout)
    assert [s["symbol"] for s in doc["series"]] == ["S0000", "S0001", "S0002"]
    assert all(s["interval"] == "1m" and s["rows"] > 700 for s in doc["series"])


def test_data_sample_honours_holidays_and_early_closes(runner, tmp_path):
    import duckdb

    target = tmp_path / "s"
    invoke(
        runner,
        "data",
        "sample",
        "--symbols",
        "AAA",
        "--days",
        "4",
        "--start",
        "2023-11-22",
        "--data-dir",
        target,
        "--no-gaps",
    )
    rows = duckdb.sql(
        f"SELECT (epoch_ns(ts) // 86400000000000) AS day, count(*), epoch_ns(max(ts)) FROM "
        f"read_parquet('{target}/bars/interval=1m/symbol=AAA/*.parquet') GROUP BY day ORDER BY day"
    ).fetchall()
    counts = [r[1] for r in rows]
    assert counts == [390, 210, 390, 390]  # 11-22, 11-24 (13:00 close), 11-27, 11-28; no 11-23


def test_help_explains(runner):
    for args in (
        ["--help"],
        ["run", "--help"],
        ["inspect", "last-day", "--help"],
        ["data", "sample", "--help"],
        ["inspect-day", "--help"],
    ):
        result = invoke(runner, *args)
        assert result.exit_code == 0 and "Usage" in result.stdout
