"""Store health: bad values written by other tools are named by `check_store`, refused or
warned about by `validate`, and never streamed to a strategy.

Each case is a store of MSFT 1m bars, one file per day (2023-11-20, -21, -22: 390
regular-hours bars each, 14:30-20:59 UTC), with one defect written with pyarrow into
the 2023-11-21 file (or next to it).  The run is 2023-11-21 .. 2023-11-22 with one
trailing session, so it reads all three files.  Expected counts are counted by hand
from the defect written.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calendars import Interval
from cli.app import app
from cli.errors import exit_code_of
from core.config import load_config
from core.data.checks import KINDS, check_store
from core.data.store import BarRows
from core.data.validation import ValidationReport, validate
from core.engine.coordinator import RunResult, SessionCoordinator
from core.errors import DataError
from core.execution.strategy import Batch, Strategy, StrategyContext
from core.model.bars import BarBlock
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
DAYS = ("2023-11-20", "2023-11-21", "2023-11-22")
BAD_DAY = "2023-11-21.parquet"
ROWS = 390
Columns = dict[str, Any]

# -- what a strategy sees ----------------------------------------------------------------

SEEN: dict[str, list[np.ndarray]] = {"prices": [], "volumes": []}


class Recorder(Strategy):
    """Keeps every price and volume it is given, base and derived bars alike."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        self._keep(batch)

    def on_derived_bars(self, ctx: StrategyContext, interval: str, batch: Batch) -> None:
        self._keep(batch)

    def _keep(self, batch: Batch) -> None:
        SEEN["prices"].append(np.concatenate([batch.open, batch.high, batch.low, batch.close]))
        SEEN["volumes"].append(np.array(batch.volume, dtype=np.float64))


RECORDER = '[[strategies]]\nname = "recorder"\nclass = "tests.test_data_check:Recorder"\n'

# -- the store ---------------------------------------------------------------------------


def day_columns(day: str, base: float = 370.0) -> Columns:
    """390 regular-hours bars of one day: open = base + i/100, high/low = open +/- 0.5,
    close = open + 0.1, volume 1000."""
    start = dt.datetime.fromisoformat(day).replace(hour=14, minute=30, tzinfo=dt.UTC)
    opens = base + np.arange(ROWS) / 100
    return {
        "ts": pa.array([start + dt.timedelta(minutes=i) for i in range(ROWS)], pa.timestamp("us", tz="UTC")),
        "open": opens,
        "high": opens + 0.5,
        "low": opens - 0.5,
        "close": opens + 0.1,
        "volume": np.full(ROWS, 1000.0),
    }


def folder(root: Path, symbol: str = "MSFT") -> Path:
    return root / "bars" / "interval=1m" / f"symbol={symbol}"


def write_store(root: Path, files: dict[str, Columns | bytes]) -> Path:
    """MSFT's files: columns written with pyarrow, or raw bytes as they are."""
    target = folder(root)
    target.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, bytes):
            (target / name).write_bytes(content)
        else:
            pq.write_table(pa.table(content), target / name)
    return root


def clean_files() -> dict[str, Columns | bytes]:
    return {f"{day}.parquet": day_columns(day) for day in DAYS}


# -- the defects -------------------------------------------------------------------------


def set_values(column: str, values: dict[int, Any]) -> Callable[[dict], None]:
    """Rows of the bad day's ``column`` set to ``values`` (None: null)."""

    def change(files: dict) -> None:
        data = list(np.asarray(files[BAD_DAY][column], dtype=object))
        for row, value in values.items():
            data[row] = value
        files[BAD_DAY][column] = pa.array(data, pa.float64())

    return change


def drop_volume(files: dict) -> None:
    del files[BAD_DAY]["volume"]


def string_open(files: dict) -> None:
    files[BAD_DAY]["open"] = pa.array([f"{v:.2f}" for v in files[BAD_DAY]["open"]])


def integer_ts(files: dict) -> None:
    files[BAD_DAY]["ts"] = pa.array(files[BAD_DAY]["ts"].cast(pa.int64()))


def integer_volume(files: dict) -> None:
    files[BAD_DAY]["volume"] = pa.array(files[BAD_DAY]["volume"].astype(np.int64))


def decimal_close(files: dict) -> None:
    files[BAD_DAY]["close"] = pa.array(files[BAD_DAY]["close"].round(2), pa.float64()).cast(pa.decimal128(10, 2))


def symbol_column(files: dict) -> None:
    files[BAD_DAY]["symbol"] = pa.array(["JPM"] * ROWS)


def high_below_low(files: dict) -> None:
    bad = files[BAD_DAY]
    bad["high"] = bad["high"].copy()
    bad["high"][11] = bad["low"][11] - 1.0


def off_minute(files: dict) -> None:
    bad = files[BAD_DAY]
    stamps = bad["ts"].to_pylist()
    stamps[0] += dt.timedelta(seconds=30)  # 14:30:30 instead of 14:30
    bad["ts"] = pa.array(stamps, pa.timestamp("us", tz="UTC"))


def first_two_rows(close_shift: float) -> Callable[[dict], None]:
    """Another file holding the bad day's first two minutes again (closes shifted)."""

    def change(files: dict) -> None:
        extra = {name: column[:2] for name, column in day_columns("2023-11-21").items()}
        extra["close"] = extra["close"] + close_shift
        files["extra.parquet"] = extra

    return change


def other_symbols_file(files: dict) -> None:
    files["2023-11-22.parquet"] = day_columns("2023-11-22", base=150.0)  # a JPM-like file


def garbage(files: dict) -> None:
    files[BAD_DAY] = b"PAR1 this is not a parquet file PAR1"


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    change: Callable[[dict], None]
    kind: str
    severity: str
    count: int
    file: str = BAD_DAY
    row: int | None = None
    column: str | None = None
    value: str | None = None
    runs: bool = True  # the run, validation's verdict ignored, reads the store


CASES = [
    Case("nan_close", set_values("close", {10: float("nan"), 20: float("nan")}), "non_finite_price", "error", 2, row=10, column="close", value="nan"),
    Case("inf_open", set_values("open", {5: float("inf")}), "non_finite_price", "error", 1, row=5, column="open", value="inf"),
    Case("null_close", set_values("close", {3: None}), "null_value", "error", 1, row=3, column="close", value="null"),
    Case("huge_high", set_values("high", {7: 1e308}), "absurd_price", "error", 1, row=7, column="high", value="1e+308"),
    Case("negative_low", set_values("low", {8: -1.0}), "non_positive_price", "error", 1, row=8, column="low", value="-1.0"),
    Case("negative_volume", set_values("volume", {9: -5.0}), "negative_volume", "error", 1, row=9, column="volume", value="-5.0"),
    Case("nan_volume", set_values("volume", {12: float("nan")}), "non_finite_volume", "error", 1, row=12, column="volume", value="nan"),
    Case("no_volume_column", drop_volume, "missing_column", "error", 1, column="volume", value="absent"),
    Case("string_open", string_open, "wrong_type", "error", 1, column="open", value="string"),
    Case("integer_ts", integer_ts, "wrong_type", "error", 1, column="ts", value="int64", runs=False),
    Case("integer_volume", integer_volume, "not_double", "warning", 1, column="volume", value="int64"),
    Case("decimal_close", decimal_close, "not_double", "warning", 1, column="close", value="decimal128(10, 2)"),
    Case("symbol_column", symbol_column, "other_symbol", "error", 390, row=0, column="symbol", value="JPM"),
    Case("high_below_low", high_below_low, "high_below_low", "warning", 1, row=11, column="high"),
    Case("off_minute", off_minute, "off_minute", "warning", 1, row=0, column="ts"),
    Case("duplicate_conflict", first_two_rows(1.0), "duplicate_conflict", "error", 2, file="extra.parquet", row=0),
    Case("duplicate_exact", first_two_rows(0.0), "duplicate_exact", "warning", 2, file="extra.parquet", row=0),
    Case("other_symbol", other_symbols_file, "other_symbol", "error", 390, file="2023-11-22.parquet", row=0, column="close"),
    Case("unreadable", garbage, "unreadable", "error", 1, runs=False),
]


def build(tmp_path: Path, case: Case | None) -> tuple[Path, Path]:
    """The store with ``case``'s defect (none: clean) and a config running it with the recorder."""
    files = clean_files()
    if case is not None:
        case.change(files)
    root = write_store(tmp_path / "data", files)
    config = write_config(
        tmp_path / "run.toml",
        root,
        start="2023-11-21",
        end="2023-11-22",
        symbols=["MSFT"],
        intervals=["1m", "5m"],
        trailing_days=1,
        extra=RECORDER,
    )
    return root, config


def finding(document: dict, file: str, kind: str) -> dict:
    """The problem ``kind`` of ``file`` in a check_store document (fails when absent)."""
    (series,) = [s for s in document["symbols"] if s["symbol"] == "MSFT"]
    (entry,) = [f for f in series["files"] if f["file"].endswith("/" + file)]
    found = [p for p in entry["problems"] if p["kind"] == kind]
    assert found, f"{kind} not reported for {file}: {entry['problems']}"
    return found[0]


def cli_validate(runner, config: Path) -> tuple[int, dict]:
    outcome = runner.invoke(app, ["validate", str(config), "--json"])
    return outcome.exit_code, json.loads(outcome.stdout)


# -- check_store ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_check_store_names_the_defect(tmp_path, case):
    root, _ = build(tmp_path, case)
    health = check_store(root)
    document = health.as_dict()
    json.dumps(document, allow_nan=False)  # one JSON document, no NaN in it
    problem = finding(document, case.file, case.kind)
    assert (problem["severity"], problem["count"]) == (case.severity, case.count)
    example = problem["examples"][0]
    assert example["file"] == f"bars/interval=1m/symbol=MSFT/{case.file}"
    assert (example["row"], example["column"]) == (case.row, case.column)
    if case.value is not None:
        assert example["value"] == case.value
    assert health.ok is (case.severity != "error")
    # a minute stored twice is reported in both files holding it; every other file is clean
    flagged = {case.file, BAD_DAY} if case.kind.startswith("duplicate") else {case.file}
    if len(flagged) == 2:
        assert finding(document, BAD_DAY, case.kind)["count"] == case.count
    others = [f for s in document["symbols"] for f in s["files"] if f["file"].rsplit("/", 1)[1] not in flagged]
    assert others and all(f["severity"] is None for f in others)


def test_check_store_of_a_clean_store(tmp_path):
    root, _ = build(tmp_path, None)
    health = check_store(root)
    assert health.ok and health.errors == 0 and health.warnings == 0
    document = health.as_dict()
    assert document["summary"] == {"symbols": 1, "files": 3, "rows": 3 * ROWS, "errors": 0, "warnings": 0}
    assert [(row.file.rsplit("/", 1)[1], row.rows, row.severity) for row in health.table()] == [
        (f"{day}.parquet", ROWS, None) for day in DAYS
    ]


def test_examples_give_the_row_ts_and_value(tmp_path):
    """Two NaN closes at rows 10 and 20 of the 2023-11-21 file: 14:40 and 14:50 UTC."""
    root, _ = build(tmp_path, CASES[0])
    problem = finding(check_store(root).as_dict(), BAD_DAY, "non_finite_price")
    assert [(e["row"], e["ts"], e["value"]) for e in problem["examples"]] == [
        (10, "2023-11-21T14:40:00+00:00", "nan"),
        (20, "2023-11-21T14:50:00+00:00", "nan"),
    ]


def test_a_symbol_asked_for_without_files_is_an_error(tmp_path):
    root, _ = build(tmp_path, None)
    health = check_store(root, symbols=["MSFT", "MSFTT"])
    assert not health.ok
    (missing,) = [h for h in health.files if h.symbol == "MSFTT"]
    assert [f.kind for f in missing.findings] == ["missing_symbol"]


@pytest.mark.parametrize("case", [None, CASES[0]], ids=["clean", "nan_close"])
def test_data_check_command_exits_4_on_errors_and_names_them(tmp_path, runner, case):
    root, _ = build(tmp_path, case)
    outcome = runner.invoke(app, ["data", "check", "--data-dir", str(root), "--json"])
    document = json.loads(outcome.stdout)
    if case is None:
        assert outcome.exit_code == 0 and document["ok"] is True
    else:
        assert outcome.exit_code == 4 and document["ok"] is False
        assert finding(document, case.file, case.kind)["count"] == case.count
    text = runner.invoke(app, ["data", "check", "--data-dir", str(root), "--symbol", "MSFT"])
    assert text.exit_code == outcome.exit_code and "MSFT" in text.stdout


def test_check_store_refuses_a_missing_data_directory(tmp_path):
    with pytest.raises(DataError):
        check_store(tmp_path / "nowhere")


# -- validate ------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_validate_refuses_errors_and_warns_about_the_rest(tmp_path, runner, case):
    _, config = build(tmp_path, case)
    code, document = cli_validate(runner, config)
    if case.severity == "error":
        assert code == 4 and document["valid"] is False
        found = [e for e in document["errors"] if case.file in e]
    else:
        assert code == 0 and document["valid"] is True, document["errors"]
        found = [w for w in document["warnings"] if case.file in w]
    assert found, document
    assert any(f"MSFT: {case.file}: " in message and KINDS[case.kind].title in message for message in found)


def test_validate_counts_an_off_minute_bar_as_missing(tmp_path, runner):
    """The 14:30 bar of 2023-11-21 stored at 14:30:30: the run drops it, so 389 of 390."""
    _, config = build(tmp_path, next(c for c in CASES if c.name == "off_minute"))
    code, document = cli_validate(runner, config)
    assert code == 0
    assert document["coverage"]["MSFT"] == {
        "2023-11-21": {"present": 389, "expected": 390},
        "2023-11-22": {"present": 390, "expected": 390},
    }


def test_validate_counts_a_minute_stored_twice_once(tmp_path, runner):
    _, config = build(tmp_path, next(c for c in CASES if c.name == "duplicate_exact"))
    code, document = cli_validate(runner, config)
    assert code == 0 and document["coverage"]["MSFT"]["2023-11-21"] == {"present": 390, "expected": 390}


def test_validate_of_the_clean_store(tmp_path, runner):
    _, config = build(tmp_path, None)
    code, document = cli_validate(runner, config)
    assert code == 0 and document["errors"] == [] and document["warnings"] == []


def test_validate_in_process_names_symbol_file_and_example(tmp_path):
    _, config = build(tmp_path, CASES[0])
    report = validate(load_config(config))
    assert exit_code_of(report.error()) == 4
    (error,) = [str(p) for p in report.errors]
    assert "MSFT" in error and BAD_DAY in error and "2 rows with a NaN or infinite price" in error
    assert "row 10 (2023-11-21T14:40:00+00:00): close = nan" in error


def test_another_symbols_file_is_refused_when_the_run_reads_only_its_day(tmp_path, runner):
    """The run is 2023-11-22 alone, without history: the symbol's own files lie outside it."""
    root, _ = build(tmp_path, next(c for c in CASES if c.name == "other_symbol"))
    config = write_config(tmp_path / "one.toml", root, start="2023-11-22", end="2023-11-22", symbols=["MSFT"], intervals=["1m"], trailing_days=0)
    code, document = cli_validate(runner, config)
    assert code == 4
    (error,) = document["errors"]
    assert "MSFT: 2023-11-22.parquet: 390 rows of another symbol" in error


def test_a_naive_ts_column_is_refused_under_new_york_time(tmp_path):
    """ts written as TIMESTAMP without time zone (UTC wall times): read in the process's zone,
    so under TZ=America/New_York a run would lose 300 of each day's 390 bars."""
    files = clean_files()
    for columns in files.values():
        assert isinstance(columns, dict)
        columns["ts"] = columns["ts"].cast(pa.timestamp("us"))
    root = write_store(tmp_path / "data", files)
    config = write_config(tmp_path / "run.toml", root, start="2023-11-21", end="2023-11-22", symbols=["MSFT"], intervals=["1m"])
    script = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from core.config import load_config\n"
        "from core.data.checks import KINDS, check_store\n"
        "from core.data.validation import validate\n"
        "from cli.errors import exit_code_of\n"
        "health = check_store(Path(sys.argv[1])).as_dict()\n"
        "report = validate(load_config(Path(sys.argv[2])))\n"
        "print(json.dumps({'zone': time.tzname[0], 'health': health, 'exit': exit_code_of(report.error()) if report.error() else 0,\n"
        "                  'errors': [str(p) for p in report.errors]}))\n"
    )
    env = {**os.environ, "TZ": "America/New_York"}
    done = subprocess.run(
        [sys.executable, "-c", script, str(root), str(config)], capture_output=True, text=True, env=env, cwd=ROOT, check=True
    )
    result = json.loads(done.stdout)
    assert result["zone"] == "EST"
    for day in DAYS:
        problem = finding(result["health"], f"{day}.parquet", "naive_timestamp")
        assert (problem["severity"], problem["count"]) == ("error", ROWS)
        assert "--tz" in problem["hint"]
    assert result["exit"] == 4
    assert len(result["errors"]) == 3 and all("TIMESTAMP without time zone" in e for e in result["errors"])


# -- the run -------------------------------------------------------------------------------


def run_ignoring_validation(config: Path, monkeypatch) -> RunResult:
    """Run as if validation had been skipped: its errors do not stop the run."""
    monkeypatch.setattr(ValidationReport, "raise_if_invalid", lambda self: None)
    SEEN["prices"].clear()
    SEEN["volumes"].clear()
    return SessionCoordinator(load_config(config)).run()


def assert_only_usable_values_seen() -> None:
    prices = np.concatenate(SEEN["prices"])
    volumes = np.concatenate(SEEN["volumes"])
    assert prices.size and np.isfinite(prices).all() and (prices > 0).all() and (prices <= 1e9).all()
    assert np.isfinite(volumes).all() and (volumes >= 0).all()


@pytest.mark.parametrize("case", [c for c in CASES if c.runs], ids=lambda c: c.name)
def test_a_run_never_streams_an_unusable_value(tmp_path, monkeypatch, case):
    _, config = build(tmp_path, case)
    run_ignoring_validation(config, monkeypatch)
    assert_only_usable_values_seen()


@pytest.mark.parametrize(
    ("name", "placed", "invalid", "off_grid"),
    [
        ("nan_close", 388, 2, 0),  # rows 10 and 20 of 2023-11-21 left out
        ("null_close", 389, 1, 0),
        ("huge_high", 389, 1, 0),
        ("negative_volume", 389, 1, 0),
        ("no_volume_column", 0, 390, 0),  # every volume of 2023-11-21 reads as null
        ("off_minute", 389, 0, 1),  # off the grid, not invalid
    ],
)
def test_rows_left_out_count_as_missing(tmp_path, monkeypatch, name, placed, invalid, off_grid):
    """2023-11-21 as the run placed it is the trailing history of 2023-11-22 (clean)."""
    _, config = build(tmp_path, next(c for c in CASES if c.name == name))
    result = run_ignoring_validation(config, monkeypatch)
    assert (result.rows_unusable, result.rows_off_grid) == (invalid, off_grid)
    assert result.session_data is not None
    quality = result.session_data.quality("MSFT")
    assert quality is not None and quality.present_bars == ROWS
    assert (quality.history_present, quality.history_expected) == (placed, ROWS)


def test_a_clean_run_streams_every_bar(tmp_path, monkeypatch):
    _, config = build(tmp_path, None)
    result = run_ignoring_validation(config, monkeypatch)
    assert result.rows_unusable == 0 and result.rows_off_grid == 0
    assert_only_usable_values_seen()


# -- the guard itself ----------------------------------------------------------------------


def test_from_rows_leaves_unusable_rows_off_the_grid():
    """Six rows on six grid minutes: a NaN close, an open of -1, a high of 2e9, a null low
    and an infinite volume leave theirs absent; only the first row is placed."""
    starts = np.arange(6, dtype=np.int64) * 60_000_000_000
    rows = BarRows(
        symbol=np.zeros(6, np.int32),
        ts=starts.copy(),
        open=np.array([10.0, 10.0, -1.0, 10.0, 10.0, 10.0]),
        high=np.array([11.0, 11.0, 11.0, 2e9, 11.0, 11.0]),
        low=np.ma.masked_array(np.full(6, 9.0), mask=[False, False, False, False, True, False]),
        close=np.array([10.0, np.nan, 10.0, 10.0, 10.0, 10.0]),
        volume=np.array([1.0, 1.0, 1.0, 1.0, 1.0, np.inf]),
    )
    block, off_grid = BarBlock.from_rows(Interval.parse("1m"), starts, starts + 60_000_000_000, rows, 1)
    assert (off_grid, block.invalid) == (0, 5)
    assert block.present[:, 0].tolist() == [True, False, False, False, False, False]
    assert np.isnan(block.close[1:, 0]).all() and block.close[0, 0] == 10.0
