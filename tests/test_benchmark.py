"""[benchmark]: buy-and-hold over the run's sessions, and alpha, beta and information ratio against it.

References: the symbols' bars read with pandas straight from the Parquet store, the sessions'
hours from exchange_calendars, alpha and beta from numpy least squares.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from core import api

ROOT = Path(__file__).resolve().parents[1]
SYMBOLS = ["MSFT", "JPM", "TLT", "SPY"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    for name in ("sma_cross.toml", "strategies.py"):
        shutil.copy(ROOT / "sample_configs" / name, folder / name)
    api.data_sample(folder / "data", SYMBOLS, dt.date(2023, 10, 30), 12)
    return folder


def config_with(folder: Path, symbol: str) -> Path:
    text = (folder / "sma_cross.toml").read_text()
    path = folder / f"bench_{symbol}.toml"
    path.write_text(text.replace("[portfolio]", f'[benchmark]\nsymbol = "{symbol}"\n\n[portfolio]'))
    return path


def held_values(folder: Path, symbol: str, sessions: list[str]) -> np.ndarray:
    """close / entry at each session's close: the first regular bar's open, each session's last regular close."""
    bars = pd.read_parquet(folder / "data" / "bars" / "interval=1m" / f"symbol={symbol}")
    calendar = xcals.get_calendar("XNYS")
    entry, values, last = None, [], np.nan
    for session in sessions:
        open_, close = calendar.session_open(session), calendar.session_close(session)
        day = bars[(bars["ts"] >= open_) & (bars["ts"] < close)].sort_values("ts")
        if entry is None:
            entry = float(day["open"].iloc[0])
        if len(day):
            last = float(day["close"].iloc[-1])
        values.append(last / entry)
    return np.array(values)


def run(folder: Path, symbol: str, tmp_path: Path) -> tuple[dict, Path]:
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(config_with(folder, symbol)), "--days", "8", "--results-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    return document, Path(document["results"])


@pytest.mark.parametrize("symbol", ["SPY", "universe"])
def test_benchmark_is_buy_and_hold_and_alpha_beta_are_least_squares(folder, tmp_path, symbol):
    document, path = run(folder, symbol, tmp_path)
    sessions = [day["date"] for day in document["days"]]
    held = SYMBOLS if symbol == "universe" else [symbol]
    want = np.mean([held_values(folder, s, sessions) for s in held], axis=0)
    con = duckdb.connect(str(path), read_only=True)
    try:
        stored = con.execute("SELECT date::VARCHAR, value FROM benchmark ORDER BY date").fetchall()
        daily = [e for (e,) in con.execute("SELECT equity FROM daily_equity ORDER BY date").fetchall()]
    finally:
        con.close()
    assert [d for d, _ in stored] == sessions
    np.testing.assert_allclose([v for _, v in stored], want, rtol=1e-12)
    stats = document["statistics"]
    assert stats["benchmark_return"] == pytest.approx(want[-1] - 1.0, rel=1e-12)
    cash = 100_000.0
    strategy = np.diff(np.concatenate([[cash], daily])) / np.concatenate([[cash], daily])[:-1]
    bench = np.diff(np.concatenate([[1.0], want])) / np.concatenate([[1.0], want])[:-1]
    design = np.column_stack([np.ones_like(bench), bench])
    (intercept, slope), *_ = np.linalg.lstsq(design, strategy, rcond=None)
    assert stats["beta"] == pytest.approx(slope, rel=1e-9, abs=1e-12)
    assert stats["alpha"] == pytest.approx((1 + intercept) ** 252 - 1, rel=1e-9, abs=1e-12)
    active = strategy - bench
    assert stats["information_ratio"] == pytest.approx(active.mean() / active.std(ddof=1) * np.sqrt(252), rel=1e-9)
    assert stats["benchmark"] == ("universe (4 symbols)" if symbol == "universe" else "SPY")


def test_a_benchmark_symbol_missing_from_the_store_is_a_data_error(folder, tmp_path):
    result = CliRunner().invoke(app, ["validate", str(config_with(folder, "QQQ"))])
    assert result.exit_code == 4
    assert "QQQ" in result.stderr and "benchmark.symbol" in result.stderr


def test_a_benchmark_that_is_no_symbol_is_a_config_error(folder):
    result = CliRunner().invoke(app, ["validate", str(config_with(folder, "s p y"))])
    assert result.exit_code == 3 and "benchmark" in result.stderr


def test_without_a_benchmark_the_figures_are_absent(folder, tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(folder / "sma_cross.toml"), "--days", "3", "--results-dir", str(tmp_path), "--json"])
    stats = json.loads(result.stdout)["statistics"]
    assert stats["benchmark"] is None and stats["alpha"] is None and stats["beta"] is None
