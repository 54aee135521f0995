"""`validate` catches what `run` would otherwise hit first, naming the table, param, symbol or day.

Each case exits 3 (config) or 4 (data) before any session runs; the hours checks warn.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.app import app
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
STRATEGIES = ROOT / "sample_configs" / "strategies.py"
SMA = f'[[strategies]]\nname = "sma"\nclass = "{STRATEGIES}:SmaCross"\n'


def indicators(*periods: int) -> str:
    return "".join(f'[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = {p}\n' for p in periods)


def validate(runner, config: Path) -> tuple[int, dict]:
    outcome = runner.invoke(app, ["validate", str(config), "--json"])
    return outcome.exit_code, json.loads(outcome.stdout)


def messages(document: dict, key: str) -> str:
    return " | ".join(str(p) for p in document[key])


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [
        # the strategy reads sma_10@1m and sma_30@1m; only sma_10 is configured
        (indicators(10) + SMA, 3, ["sma_30@1m", "strategies[0]"]),
        # a misspelt param: qty for quantity
        (indicators(10, 30) + SMA + "params = { qty = 5 }\n", 3, ["qty", "quantity"]),
        # a misspelt scanner choice
        (
            '[[scanners]]\nname = "movers"\nkind = "top_movers"\npre_session = true\n'
            'params = { direction = "dwn" }\n',
            3,
            ["dwn", "down", "scanners[0]"],
        ),
        # an [[insert]] symbol the store does not have
        ('[[insert]]\nsymbol = "ZZZZ"\nat = "11:00"\n', 4, ["ZZZZ", "insert[0]"]),
        # a scanner universe naming a symbol the store does not have
        (
            '[[scanners]]\nname = "pv"\nkind = "price_volume"\nat = ["11:00"]\nuniverse = ["MSFT", "MSFTT"]\n',
            4,
            ["MSFTT", "did you mean 'MSFT'"],
        ),
    ],
)
def test_validate_refuses_what_run_would_hit(tmp_path, sample_dir, runner, extra, code, words):
    config = write_config(tmp_path / "c.toml", sample_dir, symbols=["MSFT"], intervals=["1m"], extra=extra)
    exit_code, document = validate(runner, config)
    assert exit_code == code and document["valid"] is False
    text = messages(document, "errors")
    for word in words:
        assert word in text


def test_the_sample_strategies_validate(tmp_path, sample_dir, runner):
    config = write_config(tmp_path / "c.toml", sample_dir, symbols=["MSFT"], intervals=["1m"], extra=indicators(10, 30) + SMA)
    exit_code, document = validate(runner, config)
    assert exit_code == 0, document["errors"]


def test_new_york_data_on_the_london_calendar_warns(tmp_path, sample_dir, runner):
    """New York bars (14:30-21:00 UTC in November) on XLON (08:00-16:30 UTC): 120 of 390 a day
    fall inside London's session, the other 270 between its sessions."""
    config = write_config(
        tmp_path / "c.toml", sample_dir, exchange="XLON", start="2023-11-21", end="2023-11-22", symbols=["MSFT"], intervals=["1m"], trailing_days=0
    )
    exit_code, document = validate(runner, config)
    assert exit_code == 0
    text = messages(document, "warnings")
    assert "MSFT" in text and "XLON" in text and "between" in text


def test_new_york_data_on_its_own_calendar_does_not_warn_about_hours(tmp_path, sample_dir, runner):
    config = write_config(tmp_path / "c.toml", sample_dir, start="2023-11-21", end="2023-11-22", symbols=["MSFT"], intervals=["1m"])
    exit_code, document = validate(runner, config)
    assert exit_code == 0 and "between" not in messages(document, "warnings")


def test_extended_hours_on_regular_only_data_warns(tmp_path, sample_dir, runner):
    config = write_config(tmp_path / "c.toml", sample_dir, hours="extended", symbols=["MSFT"], intervals=["1m"])
    exit_code, document = validate(runner, config)
    assert exit_code == 0
    assert "no pre-market or after-hours" in messages(document, "warnings")


def test_extended_hours_on_extended_data_does_not_warn(tmp_path, runner):
    data = tmp_path / "ext"
    made = runner.invoke(
        app, ["data", "sample", "--symbols", "MSFT", "--start", "2023-11-20", "--days", "4", "--data-dir", str(data), "--extended"]
    )
    assert made.exit_code == 0, made.stderr
    config = write_config(tmp_path / "c.toml", data, hours="extended", start="2023-11-21", end="2023-11-22", symbols=["MSFT"], intervals=["1m"])
    exit_code, document = validate(runner, config)
    assert exit_code == 0
    assert "no pre-market or after-hours" not in messages(document, "warnings")
    assert "between" not in messages(document, "warnings")
