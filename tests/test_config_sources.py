"""Where a config value comes from — the file, a ``BACKTEST_*`` variable, a command-line flag —
and errors that name that place (README "Session config").

Each group pins one fault of the config layer, with expectations written by hand:

1. every section and key can be set as ``BACKTEST_<SECTION>__<KEY>``, list sections as
   ``BACKTEST_<SECTION>__<N>__<KEY>`` (N from 0, in file order);
2. an unknown ``BACKTEST_*`` variable is an error with a "did you mean";
3. bad JSON in a variable is a config error naming it;
4. an error names ``file.toml:LINE``, the variable or the flag its value came from;
5. counts and amounts have sane bounds, refused at load time with the field named;
6. an interval is one of the lower-case labels, never re-read in another unit.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from calendars import Interval
from cli.app import app
from core.config import SCANNER_KINDS, SessionConfig, load_config
from core.errors import ConfigError
from tests.conftest import write_config
from tests.test_cli_errors import EXIT_CONFIG, EXIT_USAGE, assert_fails, line_of

# Read by other parts of the tool; the tests below leave them alone.
ELSEWHERE = {"BACKTEST_RESULTS_DIR", "BACKTEST_CACHE_DIR", "BACKTEST_DEBUG"}

TABLES = """
[quality]
min_score = 0.5

[[indicators]]
kind = "sma"
interval = "1m"
period = 10

[[scanners]]
name = "gappers"
kind = "gap"
pre_session = true
top = 5

[[scanners]]
name = "movers"
kind = "top_movers"
at = ["10:00"]
top = 3

[portfolio]
cash = 100000

[execution]
commission_per_share = 0.005
slippage_bps = 1.0

[[strategies]]
name = "sma"
class = "tests.strategy_fixtures:Scripted"
params = { fast = "sma_10@1m", quantity = 100 }

[[strategies]]
name = "orb"
class = "strategies.py:Orb"
params = { quantity = 10 }
"""


@pytest.fixture(autouse=True)
def no_outside_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``BACKTEST_*`` config variable of the shell running the tests would change their outcome."""
    for name in list(os.environ):
        if name.upper().startswith("BACKTEST_") and name.upper() not in ELSEWHERE:
            monkeypatch.delenv(name)


@pytest.fixture
def full(tmp_path: Path, sample_dir: Path) -> Path:
    """A config with every section, two scanners and two strategies."""
    return write_config(tmp_path / "full.toml", sample_dir, extra=TABLES)


@pytest.fixture
def plain(tmp_path: Path, sample_dir: Path) -> Path:
    """A config that validates on the sample store (no strategies to import)."""
    return write_config(tmp_path / "plain.toml", sample_dir)


def value_at(config: SessionConfig, dotted: str) -> Any:
    """``config.scanners[1].top`` for ``"scanners.1.top"``; dict keys (params) too."""
    value: Any = config
    for part in dotted.split("."):
        if part.isdigit():
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value[part]
        else:
            value = getattr(value, part)
    return value


def load_error(path: Path, *args: Any, **kwargs: Any) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, *args, **kwargs)
    return caught.value


# -- 1. every section and key from the environment ------------------------------------------------

# (variables, field, expected): one case for each key of every section, values written by hand.
EVERY_KEY: list[tuple[dict[str, str], str, Any]] = [
    ({"BACKTEST_SESSION__EXCHANGE": "XNAS"}, "session.exchange", "XNAS"),
    ({"BACKTEST_SESSION__START": "2023-11-24"}, "session.start", dt.date(2023, 11, 24)),
    ({"BACKTEST_SESSION__END": "2023-11-27"}, "session.end", dt.date(2023, 11, 27)),
    ({"BACKTEST_SESSION__DAYS": "2"}, "session.days", 2),
    ({"BACKTEST_SESSION__CLOCK": "clock"}, "session.clock", "clock"),
    ({"BACKTEST_SESSION__HOURS": "extended"}, "session.hours", "extended"),
    ({"BACKTEST_STREAMS__SYMBOLS": "TLT,MSFT"}, "streams.symbols", ["TLT", "MSFT"]),
    ({"BACKTEST_STREAMS__INTERVALS": "1m,15m"}, "streams.intervals", ["1m", "15m"]),
    ({"BACKTEST_HISTORICAL__TRAILING_DAYS": "3"}, "historical.trailing_days", 3),
    ({"BACKTEST_QUALITY__MIN_SCORE": "0.9"}, "quality.min_score", 0.9),
    ({"BACKTEST_QUALITY__DROP_BELOW": "true"}, "quality.drop_below", True),
    ({"BACKTEST_PORTFOLIO__CASH": "5000"}, "portfolio.cash", 5000.0),
    ({"BACKTEST_EXECUTION__COMMISSION_PER_SHARE": "0.01"}, "execution.commission_per_share", 0.01),
    ({"BACKTEST_EXECUTION__COMMISSION_PER_ORDER": "1.5"}, "execution.commission_per_order", 1.5),
    ({"BACKTEST_EXECUTION__COMMISSION_BPS": "2"}, "execution.commission_bps", 2.0),
    ({"BACKTEST_EXECUTION__SLIPPAGE_BPS": "3"}, "execution.slippage_bps", 3.0),
    ({"BACKTEST_EXECUTION__FLAT_AT_CLOSE": "true"}, "execution.flat_at_close", True),
    ({"BACKTEST_BENCHMARK__SYMBOL": "SPY"}, "benchmark.symbol", "SPY"),
    ({"BACKTEST_INDICATORS__0__KIND": "ema"}, "indicators.0.kind", "ema"),
    ({"BACKTEST_INDICATORS__0__INTERVAL": "5m"}, "indicators.0.interval", "5m"),
    ({"BACKTEST_INDICATORS__0__PERIOD": "20"}, "indicators.0.period", 20),
    ({"BACKTEST_INDICATORS__0__FAST": "5"}, "indicators.0.fast", 5),
    ({"BACKTEST_INDICATORS__0__SLOW": "40"}, "indicators.0.slow", 40),
    ({"BACKTEST_INDICATORS__0__SIGNAL": "7"}, "indicators.0.signal", 7),
    ({"BACKTEST_INDICATORS__0__NBDEV": "2.5"}, "indicators.0.nbdev", 2.5),
    ({"BACKTEST_INDICATORS__0__K": "4"}, "indicators.0.k", 4),
    ({"BACKTEST_INDICATORS__0__D": "5"}, "indicators.0.d", 5),
    ({"BACKTEST_SCANNERS__1__NAME": "risers"}, "scanners.1.name", "risers"),
    ({"BACKTEST_SCANNERS__1__KIND": "relative_volume"}, "scanners.1.kind", "relative_volume"),
    (
        {
            "BACKTEST_SCANNERS__2__NAME": "mine",
            "BACKTEST_SCANNERS__2__CLASS": "my_scanners.py:Mine",
            "BACKTEST_SCANNERS__2__PRE_SESSION": "true",
        },
        "scanners.2.class_",
        "{cwd}/my_scanners.py:Mine",  # a path from the environment: relative to the working directory
    ),
    ({"BACKTEST_SCANNERS__1__PRE_SESSION": "true"}, "scanners.1.pre_session", True),
    ({"BACKTEST_SCANNERS__1__AT": "09:45,10:30"}, "scanners.1.at", [dt.time(9, 45), dt.time(10, 30)]),
    ({"BACKTEST_SCANNERS__1__EVERY": "30m"}, "scanners.1.every", "30m"),
    ({"BACKTEST_SCANNERS__1__UNIVERSE": "all"}, "scanners.1.universe", "all"),
    ({"BACKTEST_SCANNERS__0__UNIVERSE": "MSFT,JPM"}, "scanners.0.universe", ["MSFT", "JPM"]),
    ({"BACKTEST_SCANNERS__1__TOP": "7"}, "scanners.1.top", 7),
    ({"BACKTEST_SCANNERS__1__ADD": "true"}, "scanners.1.add", True),
    (
        {"BACKTEST_SCANNERS__1__ADD": "true", "BACKTEST_SCANNERS__1__REMOVE": "true"},
        "scanners.1.remove",
        True,
    ),
    ({"BACKTEST_SCANNERS__1__OPTIONAL": "true"}, "scanners.1.optional", True),
    ({"BACKTEST_SCANNERS__0__PARAMS__MIN_GAP": "0.02"}, "scanners.0.params", {"min_gap": 0.02}),
    ({"BACKTEST_INSERT__0__SYMBOL": "JPM", "BACKTEST_INSERT__0__AT": "11:07"}, "insert.0.symbol", "JPM"),
    ({"BACKTEST_INSERT__0__SYMBOL": "JPM", "BACKTEST_INSERT__0__AT": "11:07"}, "insert.0.at", dt.time(11, 7)),
    ({"BACKTEST_STRATEGIES__0__NAME": "fast"}, "strategies.0.name", "fast"),
    (
        {"BACKTEST_STRATEGIES__0__CLASS": "tests.strategy_fixtures:Peeks"},
        "strategies.0.class_",
        "tests.strategy_fixtures:Peeks",
    ),
    ({"BACKTEST_STRATEGIES__1__PARAMS__QUANTITY": "50"}, "strategies.1.params", {"quantity": 50}),
    (
        {"BACKTEST_STRATEGIES__0__PARAMS__FAST": "sma_20@1m"},
        "strategies.0.params",
        {"fast": "sma_20@1m", "quantity": 100},
    ),
    ({"BACKTEST_DATA__DIR": "elsewhere"}, "data.dir", "{cwd}/elsewhere"),
]


@pytest.mark.parametrize(("variables", "field", "expected"), EVERY_KEY, ids=[case[1] for case in EVERY_KEY])
def test_every_key_can_be_set_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    full: Path,
    variables: dict[str, str],
    field: str,
    expected: Any,
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    if isinstance(expected, str):
        expected = expected.replace("{cwd}", str(tmp_path.resolve()))
    assert value_at(load_config(full), field) == expected


def test_every_key_of_the_schema_has_a_case_above() -> None:
    """A key added to the config later gets its environment case too."""
    covered = set()
    for variables, _, _ in EVERY_KEY:
        for name in variables:
            parts = [p.lower() for p in name.removeprefix("BACKTEST_").split("__") if not p.isdigit()]
            covered.add(".".join(parts[:2]))
    keys = set()
    for section, info in SessionConfig.model_fields.items():
        annotation = info.annotation
        model = getattr(annotation, "__args__", (annotation,))[0]
        for name, field in model.model_fields.items():
            keys.add(f"{section}.{field.alias or name}")
    assert keys - covered == set()


def test_portfolio_and_execution_from_the_environment(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    """The README's own examples of the form: BACKTEST_PORTFOLIO__CASH, BACKTEST_EXECUTION__SLIPPAGE_BPS."""
    monkeypatch.setenv("BACKTEST_PORTFOLIO__CASH", "5000")
    monkeypatch.setenv("BACKTEST_EXECUTION__SLIPPAGE_BPS", "3")
    config = load_config(full)
    assert config.portfolio.cash == 5000.0
    assert config.execution.slippage_bps == 3.0
    assert config.execution.commission_per_share == 0.005  # the file's other keys stay


def test_strategy_param_by_number_leaves_the_others(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_STRATEGIES__0__PARAMS__QUANTITY", "50")
    config = load_config(full)
    assert config.strategies[0].params == {"fast": "sma_10@1m", "quantity": 50}
    assert config.strategies[1].params == {"quantity": 10}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("MSFT", ["MSFT"]), ("MSFT, JPM", ["MSFT", "JPM"]), ('["JPM", "TLT"]', ["JPM", "TLT"])],
)
def test_list_values(monkeypatch: pytest.MonkeyPatch, full: Path, value: str, expected: list[str]) -> None:
    monkeypatch.setenv("BACKTEST_STREAMS__SYMBOLS", value)
    assert load_config(full).streams.symbols == expected


def test_whole_section_as_json_merges_into_the_file(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_EXECUTION", '{"slippage_bps": 2, "flat_at_close": true}')
    execution = load_config(full).execution
    assert (execution.commission_per_share, execution.slippage_bps, execution.flat_at_close) == (
        0.005,
        2.0,
        True,
    )


def test_a_key_wins_over_its_section_json(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESSION", '{"clock": "data", "hours": "extended"}')
    monkeypatch.setenv("BACKTEST_SESSION__CLOCK", "clock")
    session = load_config(full).session
    assert (session.clock, session.hours) == ("clock", "extended")


def test_environment_days_replaces_the_file_end(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    """As ``--end`` replaces the file's days, a layer's days replaces the file's end."""
    monkeypatch.setenv("BACKTEST_SESSION__DAYS", "2")
    session = load_config(full).session
    assert (session.end, session.days) == (None, 2)


def test_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESSION__CLOCK", "")
    assert load_config(full).session.clock == "data"


def test_new_table_skipping_a_number_is_refused(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_INSERT__1__SYMBOL", "JPM")
    error = load_error(full)
    assert error.where == "BACKTEST_INSERT__1__SYMBOL"
    assert error.message == "insert has 0 table(s), so a new one is number 0, not 1"


def test_table_named_instead_of_numbered(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    """Tables are addressed by number; naming the strategy suggests its number."""
    monkeypatch.setenv("BACKTEST_STRATEGIES__ORB__PARAMS__QUANTITY", "50")
    error = load_error(full)
    assert error.where == "BACKTEST_STRATEGIES__ORB__PARAMS__QUANTITY"
    assert "did you mean BACKTEST_STRATEGIES__1__PARAMS__QUANTITY?" in error.message


def test_cli_reads_portfolio_from_the_environment(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, plain: Path
) -> None:
    """``validate`` refuses a negative cash set in the environment, naming the variable."""
    monkeypatch.setenv("BACKTEST_PORTFOLIO__CASH", "-5")
    result = runner.invoke(app, ["validate", str(plain), "--json"])
    paragraph = assert_fails(result, EXIT_CONFIG, "BACKTEST_PORTFOLIO__CASH", "portfolio.cash", json_out=True)
    assert f"{plain}:" not in paragraph


# -- 2. unknown variables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("BACKTEST_SESION__CLOCK", "BACKTEST_SESSION__CLOCK"),
        ("BACKTEST_SESSION__CLOKC", "BACKTEST_SESSION__CLOCK"),
        ("BACKTEST_SESSION_CLOCK", "BACKTEST_SESSION__CLOCK"),
        ("BACKTEST_PORTFOLIO__CASHH", "BACKTEST_PORTFOLIO__CASH"),
        ("BACKTEST_STRATEGY__0__PARAMS__QUANTITY", "BACKTEST_STRATEGIES__0__PARAMS__QUANTITY"),
        ("BACKTEST_DATADIR", "BACKTEST_DATA_DIR"),
        ("BACKTEST_RESULT_DIR", "BACKTEST_RESULTS_DIR"),
    ],
)
def test_misspelt_variable_did_you_mean(
    monkeypatch: pytest.MonkeyPatch, full: Path, name: str, meant: str
) -> None:
    monkeypatch.setenv(name, "clock")
    error = load_error(full)
    assert error.where == name
    assert error.message == f"unknown environment variable (did you mean {meant}?)"


def test_unknown_variable_without_a_guess(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_WHATEVER", "1")
    error = load_error(full)
    assert (error.where, error.message) == ("BACKTEST_WHATEVER", "unknown environment variable")
    assert "BACKTEST_<SECTION>__<KEY>" in error.hint


def test_cli_misspelt_variable(runner: CliRunner, monkeypatch: pytest.MonkeyPatch, plain: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESION__CLOCK", "clock")
    result = runner.invoke(app, ["validate", str(plain), "--json"])
    assert_fails(
        result, EXIT_CONFIG, "BACKTEST_SESION__CLOCK", "did you mean BACKTEST_SESSION__CLOCK?", json_out=True
    )


def test_variables_of_the_rest_of_the_tool_are_no_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, full: Path
) -> None:
    """Regression guard (passes before the change too): the variables grep finds in the repo."""
    monkeypatch.setenv("BACKTEST_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("BACKTEST_CACHE_DIR", os.environ.get("BACKTEST_CACHE_DIR", str(tmp_path / "cache")))
    monkeypatch.setenv("BACKTEST_DEBUG", "0")
    monkeypatch.setenv("BACKTEST_DATA_DIR", str(tmp_path / "store"))
    assert load_config(full).data.dir == str((tmp_path / "store").resolve())


def test_data_dir_variable_wins_over_the_data_section(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, full: Path
) -> None:
    monkeypatch.setenv("BACKTEST_DATA__DIR", str(tmp_path / "section"))
    monkeypatch.setenv("BACKTEST_DATA_DIR", str(tmp_path / "variable"))
    assert load_config(full).data.dir == str((tmp_path / "variable").resolve())


# -- 3. bad JSON ----------------------------------------------------------------------------------


def test_bad_json_section(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESSION", "{bad json")
    error = load_error(full)
    assert error.where == "BACKTEST_SESSION"
    assert error.message == (
        "session: not valid JSON (Expecting property name enclosed in double quotes at character 2)"
    )


def test_bad_json_list(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    """A list value that starts as JSON is JSON: not silently one odd symbol."""
    monkeypatch.setenv("BACKTEST_STREAMS__SYMBOLS", '["MSFT",')
    error = load_error(full)
    assert error.where == "BACKTEST_STREAMS__SYMBOLS"
    assert error.message.startswith("streams.symbols: not valid JSON")


def test_json_of_the_wrong_shape(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESSION", '["clock"]')
    error = load_error(full)
    assert (error.where, error.message) == (
        "BACKTEST_SESSION",
        "session: expected a JSON object, got list '[\"clock\"]'",
    )


def test_cli_bad_json_is_a_config_error(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, plain: Path
) -> None:
    monkeypatch.setenv("BACKTEST_SESSION", "{bad json")
    result = runner.invoke(app, ["validate", str(plain), "--json"])
    paragraph = assert_fails(result, EXIT_CONFIG, "BACKTEST_SESSION", "not valid JSON", json_out=True)
    assert "internal error" not in paragraph


# -- 4. errors name where the value came from --------------------------------------------------------

FLAGS = {
    "session.start": "--start",
    "session.end": "--end",
    "session.clock": "--clock",
    "data.dir": "--data-dir",
}


def test_bad_value_in_the_file_names_its_line(tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(tmp_path / "c.toml", sample_dir, clock="sideways")
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'sideways')}"
    assert error.message == "session.clock: Input should be 'data' or 'clock' (got 'sideways')"


def test_bad_value_from_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, full: Path
) -> None:
    monkeypatch.setenv("BACKTEST_SESSION__CLOCK", "sideways")
    error = load_error(full)
    assert error.where == "BACKTEST_SESSION__CLOCK"
    assert error.message == "session.clock: Input should be 'data' or 'clock' (got 'sideways')"
    assert error.hint == "fix or unset BACKTEST_SESSION__CLOCK"


def test_bad_value_from_a_flag_names_the_flag(full: Path) -> None:
    error = load_error(full, {"session": {"clock": "sideways"}}, flags=FLAGS)
    assert error.where == "--clock"
    assert error.message == "session.clock: Input should be 'data' or 'clock' (got 'sideways')"
    assert error.hint == "fix --clock"


def test_override_without_a_flag_is_named_by_its_key(full: Path) -> None:
    assert load_error(full, {"session": {"clock": "sideways"}}).where == "override session.clock"


def test_start_flag_after_end_in_the_file(full: Path) -> None:
    """A check of two fields names both places: the flag and the file's line."""
    error = load_error(full, {"session": {"start": dt.date(2023, 12, 1)}}, flags=FLAGS)
    assert error.where == f"--start and {full}:{line_of(full, 'end = ')}"
    assert error.message == "session.start 2023-12-01 is after session.end 2023-11-28"


def test_start_and_end_flags(full: Path) -> None:
    overrides = {"session": {"start": dt.date(2023, 12, 1), "end": dt.date(2023, 11, 24)}}
    assert load_error(full, overrides, flags=FLAGS).where == "--start and --end"


def test_end_flag_replaces_the_file_days(tmp_path: Path, sample_dir: Path) -> None:
    """Regression guard: ``--end`` replaces the file's ``days``."""
    path = write_config(tmp_path / "c.toml", sample_dir, end=None, days=3)
    session = load_config(path, {"session": {"end": dt.date(2023, 11, 27)}}).session
    assert (session.end, session.days) == (dt.date(2023, 11, 27), None)


def test_bad_value_in_a_variable_of_a_table(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SCANNERS__1__TOP", "0")
    error = load_error(full)
    assert (error.where, error.message) == (
        "BACKTEST_SCANNERS__1__TOP",
        "scanners.1.top is 0; it must be at least 1",
    )


def test_bad_value_in_the_second_table_names_its_line(tmp_path: Path, sample_dir: Path) -> None:
    """``top = 0`` in the second [[scanners]]: that line, not the first scanner's ``top``."""
    path = write_config(tmp_path / "c.toml", sample_dir, extra=TABLES.replace("top = 3", "top = 0"))
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'top = 0')}"


def test_unknown_key_in_section_json(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_SESSION", '{"clok": "clock"}')
    error = load_error(full)
    assert error.where == "BACKTEST_SESSION"
    assert error.message == "unknown key 'session.clok' (did you mean 'session.clock'?)"


def test_cli_env_error_names_the_variable_not_the_file(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, plain: Path
) -> None:
    monkeypatch.setenv("BACKTEST_SESSION__CLOCK", "sideways")
    result = runner.invoke(app, ["validate", str(plain), "--json"])
    paragraph = assert_fails(result, EXIT_CONFIG, "BACKTEST_SESSION__CLOCK", "session.clock", json_out=True)
    assert f"{plain}:" not in paragraph


def test_paths_are_relative_to_their_source(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sample_dir: Path
) -> None:
    """Regression guard: the file's paths from the config's folder, an override's from the working directory."""
    folder = tmp_path / "configs"
    folder.mkdir()
    path = write_config(folder / "c.toml", Path("store"), extra=TABLES)
    monkeypatch.chdir(tmp_path)
    config = load_config(path)
    assert config.data.dir == str(folder.resolve() / "store")
    assert config.strategies[1].class_ == f"{folder.resolve()}/strategies.py:Orb"
    flagged = load_config(path, {"data": {"dir": "cli-store"}})
    assert flagged.data.dir == str(tmp_path.resolve() / "cli-store")


# -- 5. bounds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("snippet", "line_text", "message"),
    [
        ("[portfolio]\ncash = -5", "cash = -5", "portfolio.cash is -5; it must be more than 0"),
        ("[portfolio]\ncash = inf", "cash = inf", "portfolio.cash must be a finite number, not inf"),
        ("[portfolio]\ncash = nan", "cash = nan", "portfolio.cash must be a finite number, not nan"),
        (
            "[execution]\ncommission_per_share = -0.01",
            "commission_per_share",
            "execution.commission_per_share is -0.01; it must be at least 0",
        ),
        (
            "[execution]\ncommission_bps = 20000",
            "commission_bps",
            "execution.commission_bps is 20,000; it must be at most 10,000",
        ),
        (
            "[execution]\nslippage_bps = 10000",
            "slippage_bps",
            "execution.slippage_bps is 10,000; it must be less than 10,000",
        ),
        (
            '[[scanners]]\nname = "g"\nkind = "gap"\npre_session = true\ntop = 0',
            "top = 0",
            "scanners.0.top is 0; it must be at least 1",
        ),
        (
            '[[indicators]]\nkind = "macd"\ninterval = "1m"\nfast = 1000000000',
            "fast = ",
            "indicators.0.fast is 1,000,000,000; it must be at most 100,000",
        ),
    ],
)
def test_out_of_range_values_are_refused(
    tmp_path: Path, sample_dir: Path, snippet: str, line_text: str, message: str
) -> None:
    path = write_config(tmp_path / "c.toml", sample_dir, extra=snippet)
    error = load_error(path)
    assert (error.where, error.message) == (f"{path}:{line_of(path, line_text)}", message)


def test_huge_days_in_the_file(tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(tmp_path / "c.toml", sample_dir, end=None, days=10**15)
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'days = ')}"
    assert error.message == "session.days is 1,000,000,000,000,000; it must be at most 100,000"
    assert "session.end" in error.hint


def test_huge_trailing_days_from_the_environment(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_HISTORICAL__TRAILING_DAYS", "1000000")
    error = load_error(full)
    assert error.where == "BACKTEST_HISTORICAL__TRAILING_DAYS"
    assert error.message == "historical.trailing_days is 1,000,000; it must be at most 5,000"


def test_cli_huge_days(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(tmp_path / "c.toml", sample_dir, end=None, days=10**15)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, "session.days", "100,000", f"{path}:", json_out=True)


# -- 6. intervals are exact lower-case labels -----------------------------------------------------


@pytest.mark.parametrize(("text", "minutes"), [("1m", 1), ("15m", 15), ("1h", 60), ("1d", 1440), (" 5m ", 5)])
def test_interval_labels(text: str, minutes: int) -> None:
    assert Interval.parse(text).minutes == minutes


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "1M",
            "unknown interval '1M': M is not a unit (months are not supported); intervals are m, h or d "
            "in lower case, e.g. 1m; use one of 1m, 2m, 3m, 5m, 10m, 15m, 30m, 1h, 1d",
        ),
        ("1H", "unknown interval '1H': intervals are m, h or d in lower case, e.g. 1m (did you mean '1h'?)"),
        ("1D", "unknown interval '1D': intervals are m, h or d in lower case, e.g. 1m (did you mean '1d'?)"),
        ("2w", "unknown interval '2w'; use one of 1m, 2m, 3m, 5m, 10m, 15m, 30m, 1h, 1d"),
    ],
)
def test_interval_case_is_never_guessed(text: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Interval.parse(text)
    assert str(caught.value) == message


def test_upper_case_interval_in_the_file(tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(tmp_path / "c.toml", sample_dir, intervals=["1M", "5m"])
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'intervals = ')}"
    assert error.message.startswith("streams.intervals: unknown interval '1M'")
    assert "lower case" in error.hint


def test_upper_case_indicator_interval(tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(
        tmp_path / "c.toml", sample_dir, extra='[[indicators]]\nkind = "sma"\ninterval = "5M"'
    )
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'interval = ')}"
    assert error.message.startswith("indicators.0.interval: unknown interval '5M'")


def test_upper_case_scanner_every(tmp_path: Path, sample_dir: Path) -> None:
    """``every = "30M"`` is not read as 30 minutes either."""
    path = write_config(
        tmp_path / "c.toml", sample_dir, extra='[[scanners]]\nname = "s"\nkind = "gap"\nevery = "30M"'
    )
    error = load_error(path)
    assert error.where == f"{path}:{line_of(path, 'every = ')}"
    assert error.message == "scanner 's': every must be minutes or hours in lower case, e.g. '30m' or '1h'"


def test_upper_case_interval_from_the_environment(monkeypatch: pytest.MonkeyPatch, full: Path) -> None:
    monkeypatch.setenv("BACKTEST_STREAMS__INTERVALS", "1m,5M")
    assert load_error(full).where == "BACKTEST_STREAMS__INTERVALS"


def test_cli_import_refuses_an_upper_case_interval(runner: CliRunner, tmp_path: Path) -> None:
    """``data import --interval 1M``: exit 2, nothing stored as 1m bars."""
    source = tmp_path / "bars.csv"
    source.write_text("Timestamp,Open,High,Low,Close,Volume\n2023-11-24 14:30:00,10,11,9,10.5,100\n")
    store = tmp_path / "store"
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
            "--interval",
            "1M",
            "--data-dir",
            str(store),
        ],
    )
    assert_fails(result, EXIT_USAGE, "--interval", "lower case")
    assert not list(store.rglob("*.parquet"))


def test_cli_import_lower_case_interval_still_works(runner: CliRunner, tmp_path: Path) -> None:
    """Regression guard for the other caller of Interval.parse on the command line."""
    source = tmp_path / "bars.csv"
    source.write_text("Timestamp,Open,High,Low,Close,Volume\n2023-11-24 14:30:00,10,11,9,10.5,100\n")
    store = tmp_path / "store"
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
            "--interval",
            "5m",
            "--data-dir",
            str(store),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert list((store / "bars" / "interval=5m").rglob("*.parquet"))


# -- 7. the config names what the engine implements ----------------------------------------------


def test_scanner_kinds_are_the_engines_built_in_scanners() -> None:
    """The config refuses unknown scanner kinds without importing the engine (config sits below
    it), so its list and the engine's registry must name the same kinds, in the same order."""
    from core.engine.scanners import BUILT_IN

    assert tuple(BUILT_IN) == SCANNER_KINDS


def test_unknown_scanner_kind_says_which_kinds_exist(tmp_path: Path, sample_dir: Path) -> None:
    path = write_config(
        tmp_path / "c.toml", sample_dir, extra='[[scanners]]\nname = "g"\nkind = "gapp"\npre_session = true'
    )
    error = load_error(path)
    assert "scanner 'g': unknown kind 'gapp'; did you mean 'gap'?" in error.message
    assert "kinds: top_movers, gap, relative_volume, price_volume" in error.message
    assert error.where == f"{path}:{line_of(path, 'gapp')}"
