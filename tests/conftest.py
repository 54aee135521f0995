"""Shared fixtures: a synthetic store built by the tests, config writers, a CLI runner."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from calendars import TradingCalendar
from core.data.sample import SampleSpec, write_sample
from core.data.store import ParquetStore

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_DATA = SHARED / "data" / "real"

# Around the 2023 DST change (11-05) and Thanksgiving (11-23 closed, 11-24 early close).
SAMPLE_FIRST = dt.date(2023, 10, 23)
SAMPLE_LAST = dt.date(2023, 12, 1)
SAMPLE_SYMBOLS = ["MSFT", "JPM", "TLT"]


def xnys() -> TradingCalendar:
    return TradingCalendar("XNYS", dt.date(2023, 9, 1), dt.date(2023, 12, 31))


def make_store(root: Path, symbols: list[str], first: dt.date, last: dt.date, **kwargs) -> Path:
    calendar = xnys()
    plans = [calendar.plan(s) for s in calendar.sessions_in_range(first, last)]
    write_sample(ParquetStore(root), SampleSpec(symbols, plans, **kwargs))
    return root


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with gaps (the default sample)."""
    return make_store(tmp_path_factory.mktemp("store"), SAMPLE_SYMBOLS, SAMPLE_FIRST, SAMPLE_LAST)


@pytest.fixture(scope="session")
def complete_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with every regular-hours minute present."""
    return make_store(
        tmp_path_factory.mktemp("complete"), SAMPLE_SYMBOLS, SAMPLE_FIRST, SAMPLE_LAST, gaps=False
    )


def write_config(
    path: Path,
    data_dir: Path,
    *,
    start: str = "2023-11-22",
    end: str | None = "2023-11-28",
    days: int | None = None,
    symbols: list[str] | None = None,
    intervals: list[str] | None = None,
    trailing_days: int = 1,
    clock: str = "data",
    hours: str = "regular",
    exchange: str = "XNYS",
    extra: str = "",
) -> Path:
    """A session config TOML at ``path``."""
    symbols = symbols or ["MSFT", "JPM"]
    intervals = intervals or ["1m", "5m"]
    lines = [
        "[session]",
        f'exchange = "{exchange}"',
        f'start = "{start}"',
        f'end = "{end}"' if end else f"days = {days or 1}",
        f'clock = "{clock}"',
        f'hours = "{hours}"',
        "",
        "[data]",
        f'dir = "{data_dir}"',
        "",
        "[streams]",
        "symbols = [" + ", ".join(f'"{s}"' for s in symbols) + "]",
        "intervals = [" + ", ".join(f'"{i}"' for i in intervals) + "]",
        "",
        "[historical]",
        f"trailing_days = {trailing_days}",
        "",
        extra,
    ]
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
