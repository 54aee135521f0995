"""Slippage paid and gross exposure, against the bars in the store and the run's own cash.

The sample SMA strategy sends market orders (filled at the next bar's open, slipped 1 bp
against it, then commission per share) and holds long positions only.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from core import api

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("costs")
    for name in ("sma_cross.toml", "strategies.py"):
        shutil.copy(ROOT / "sample_configs" / name, folder / name)
    api.data_sample(folder / "data", ["MSFT", "JPM", "TLT", "SPY"], dt.date(2023, 10, 30), 8)
    result = CliRunner().invoke(
        app, ["run", str(folder / "sma_cross.toml"), "--days", "4", "--results-dir", str(folder / "r"), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    return folder, json.loads(result.stdout)


def test_slippage_paid_is_the_distance_from_each_fills_bar_open(run):
    folder, document = run
    con = duckdb.connect(document["results"], read_only=True)
    try:
        fills = con.execute("SELECT symbol, side, quantity, price, bar_ts FROM fills").df()
    finally:
        con.close()
    assert len(fills) > 10
    paid = 0.0
    for symbol, rows in fills.groupby("symbol"):
        bars = pd.read_parquet(folder / "data" / "bars" / "interval=1m" / f"symbol={symbol}").set_index("ts")
        opens = bars["open"].reindex(rows["bar_ts"]).to_numpy()
        assert np.isfinite(opens).all()
        signs = np.where(rows["side"] == "buy", 1.0, -1.0)
        np.testing.assert_allclose(rows["price"].to_numpy(), opens * (1 + signs * 1e-4), rtol=1e-12)
        paid += float(np.sum(np.abs(rows["price"].to_numpy() - opens) * rows["quantity"].to_numpy()))
    assert document["statistics"]["slippage_paid"] == pytest.approx(paid, rel=1e-9)


def test_gross_exposure_of_a_long_only_run_is_its_net_exposure(run):
    _, document = run
    con = duckdb.connect(document["results"], read_only=True)
    try:
        equity, cash, gross = con.execute("SELECT equity, cash, gross FROM equity ORDER BY seq").fetchnumpy().values()
    finally:
        con.close()
    held = equity - cash  # long only: the value held is the gross value
    np.testing.assert_allclose(gross, held, rtol=1e-9, atol=1e-6)
    stats = document["statistics"]
    assert stats["gross_exposure"] == pytest.approx(np.mean(held / equity), rel=1e-9)
    assert stats["gross_exposure"] == pytest.approx(stats["net_exposure"], rel=1e-9)
    assert 0 < stats["gross_exposure"] < 1
