"""What strategies, scanners and their modules get wrong, refused early and reported in one paragraph.

Bad orders, exits and exceptions in callbacks, state that cannot be saved, look-ahead,
missing indicators, declared params (checked before any session) and modules that fail
on import.  Runs go end to end through ``backtest run`` (or the coordinator), each
under a deadline: some of these used to hang forever.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from core.engine.scanners import Match, Scanner, ScanView
from core.execution.strategy import Batch, Strategy, StrategyContext
from tests.conftest import write_config

DAY = "2023-11-22"  # the first bar ends at 09:31 New York, 14:31 UTC
FIRST_CLOCK_LOCAL = "2023-11-22T09:31:00-05:00"
FIRST_CLOCK_UTC = "2023-11-22T14:31:00+00:00"
HERE = "tests.test_strategy_inputs"
REPO = Path(__file__).resolve().parents[1]


class Hang(BaseException):
    """Raised by the deadline; a BaseException so that no ``except Exception`` turns it into an exit code."""


@contextlib.contextmanager
def deadline(seconds: int = 15) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""

    def expire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s: it hangs")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- strategies and scanners the configs below name (as tests.test_strategy_inputs:Class) ----------
class SubmitsOnce(Strategy):
    """At the first bar, submits params.side params.qty params.symbol with params.kwargs."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        if self.state.get("done"):
            return
        self.state["done"] = True
        submit = ctx.buy if self.params.get("side", "buy") == "buy" else ctx.sell
        submit(self.params.get("symbol", "MSFT"), self.params["qty"], **self.params.get("kwargs", {}))


class Fails(Strategy):
    """Raises params.error ("exit" is sys.exit(0)) in the callback params.callback."""

    def _maybe(self, callback: str) -> None:
        if self.params["callback"] != callback:
            return
        error = self.params.get("error", "exit")
        if error == "exit":
            sys.exit(0)
        if error == "interrupt":
            raise KeyboardInterrupt
        raise RuntimeError("the strategy broke")

    def on_session_start(self, ctx: StrategyContext) -> None:
        self._maybe("on_session_start")

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        self._maybe("on_bars")

    def on_insertion(self, ctx: StrategyContext, record: dict[str, Any]) -> None:
        self._maybe("on_insertion")

    def on_session_end(self, ctx: StrategyContext) -> None:
        self._maybe("on_session_end")


class KeepsDatetime(Strategy):
    """Leaves a datetime in its state at the end of the day."""

    def on_session_end(self, ctx: StrategyContext) -> None:
        self.state["last"] = dt.datetime(2023, 11, 22, 16, 0)


class KeepsNumpyInt(Strategy):
    """Leaves a numpy integer deep inside its state."""

    def on_session_end(self, ctx: StrategyContext) -> None:
        self.state["regime"] = {"MSFT": np.int64(1)}


class ReadsSma5(Strategy):
    """Reads sma_5@1m, which the config below does not compute."""

    def on_bars(self, ctx: StrategyContext, batch: Batch) -> None:
        batch.indicator("sma_5@1m")


class ExitingScanner(Scanner):
    needs_history = 0

    def scan(self, view: ScanView) -> list[Match]:
        sys.exit(3)


class Undeclared(Strategy):
    """Declares nothing: its params are not checked."""


class BadIndicators(Strategy):
    defaults = {"n": 5}

    @classmethod
    def indicators(cls, params: dict[str, Any]) -> list[str]:
        raise KeyError("n")


# -- helpers ---------------------------------------------------------------------------------------
def config_with(tmp_path: Path, data_dir: Path, body: str, *, end: str = DAY, name: str = "c") -> Path:
    """A one-symbol-pair, regular-hours config from ``DAY`` with ``body`` appended."""
    return write_config(
        tmp_path / f"{name}.toml",
        data_dir,
        symbols=["MSFT", "JPM"],
        start=DAY,
        end=end,
        trailing_days=0,
        intervals=["1m"],
        extra=body,
    )


def strategy_table(cls: str, params: str = "{}", name: str = "probe") -> str:
    return f'[[strategies]]\nname = "{name}"\nclass = "{HERE}:{cls}"\nparams = {params}\n'


def run_cli(runner, config: Path, tmp_path: Path, *args: str):
    with deadline():
        return runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "results"), *args])


def assert_names_the_moment(text: str, *, strategy: str = "probe", callback: str = "on_bars") -> None:
    """The paragraph names the strategy, the callback, the day and the clock (local and UTC)."""
    assert f"strategy '{strategy}'" in text, text
    assert callback in text, text
    assert DAY in text, text
    if callback == "on_bars":
        assert FIRST_CLOCK_LOCAL in text and FIRST_CLOCK_UTC in text, text
        assert "America/New_York" in text, text


# -- 1. orders are checked when submitted --------------------------------------------------------
BAD_ORDERS = [
    # (params of SubmitsOnce, what the message must say about the order)
    ("{ qty = nan }", "buy nan MSFT market"),
    ("{ qty = inf }", "buy inf MSFT market"),
    ('{ qty = -5, side = "sell" }', "sell -5 MSFT market"),
    ("{ qty = 0 }", "buy 0 MSFT market"),
    ('{ qty = 10, kwargs = { type = "limit", limit = nan } }', "buy 10 MSFT limit limit nan"),
    ('{ qty = 10, kwargs = { type = "limit", limit = -1.5 } }', "buy 10 MSFT limit limit -1.5"),
    ('{ qty = 10, kwargs = { type = "limit", limit = 0 } }', "buy 10 MSFT limit limit 0"),
    ('{ qty = 10, kwargs = { type = "stop", stop = inf } }', "buy 10 MSFT stop stop inf"),
    ('{ qty = 10, kwargs = { type = "limit" } }', "buy 10 MSFT limit"),
    ('{ qty = 10, symbol = "ZZZ" }', "buy 10 ZZZ market"),
    ('{ qty = 10, kwargs = { type = "limt" } }', "buy 10 MSFT limt"),
    ('{ qty = 10, kwargs = { tif = "week" } }', "tif week"),
]


@pytest.mark.parametrize(("params", "order"), BAD_ORDERS, ids=[p for p, _ in BAD_ORDERS])
def test_a_bad_order_ends_the_run_with_exit_5_naming_strategy_day_clock_and_order(
    tmp_path, sample_dir, runner, params, order
):
    config = config_with(tmp_path, sample_dir, strategy_table("SubmitsOnce", params))
    result = run_cli(runner, config, tmp_path)
    assert result.exit_code == 5, result.output
    assert "internal error" not in result.stderr
    assert order in result.stderr
    assert_names_the_moment(result.stderr)
    assert "Hint:" in result.stderr
    assert not list((tmp_path / "results").glob("*.duckdb"))  # nothing half-written is kept


def test_a_bad_order_is_an_order_error_from_the_coordinator(tmp_path, sample_dir):
    from core.errors import SessionError
    from core.execution.broker import OrderError

    body = strategy_table("SubmitsOnce", "{ qty = nan }")
    coordinator = SessionCoordinator(load_config(config_with(tmp_path, sample_dir, body)))
    with deadline(), pytest.raises(OrderError) as info:
        coordinator.run()
    assert isinstance(info.value, SessionError)  # exit 5
    assert "quantity" in str(info.value) and "nan" in str(info.value)


def test_a_good_order_still_fills(tmp_path, sample_dir):
    body = strategy_table("SubmitsOnce", '{ qty = 10, kwargs = { type = "limit", limit = 1000.0 } }')
    with deadline():
        result = SessionCoordinator(load_config(config_with(tmp_path, sample_dir, body))).run()
    assert [(f.symbol, f.quantity) for f in result.ledger.fills] == [("MSFT", 10.0)]


# -- 2. anything a callback raises, sys.exit included -------------------------------------------
@pytest.mark.parametrize("callback", ["on_session_start", "on_bars", "on_insertion", "on_session_end"])
@pytest.mark.parametrize("error", ["exit", "raise"])
def test_a_failing_callback_ends_the_run_with_exit_5_naming_it(tmp_path, sample_dir, runner, callback, error):
    body = strategy_table("Fails", f'{{ callback = "{callback}", error = "{error}" }}')
    body += '[[insert]]\nsymbol = "TLT"\nat = "10:00"\n'
    result = run_cli(runner, config_with(tmp_path, sample_dir, body), tmp_path)
    assert result.exit_code == 5, result.output
    assert "internal error" not in result.stderr
    assert_names_the_moment(result.stderr, callback=callback)
    assert ("sys.exit(0)" if error == "exit" else "RuntimeError: the strategy broke") in result.stderr
    assert not list((tmp_path / "results").glob("*.duckdb"))


def test_keyboard_interrupt_in_a_callback_is_not_wrapped(tmp_path, sample_dir, runner):
    body = strategy_table("Fails", '{ callback = "on_bars", error = "interrupt" }')
    config = config_with(tmp_path, sample_dir, body)
    with deadline(), pytest.raises(KeyboardInterrupt):
        SessionCoordinator(load_config(config)).run()
    assert run_cli(runner, config, tmp_path).exit_code == 130


def test_a_custom_scanner_calling_sys_exit_ends_the_run_with_exit_5(tmp_path, sample_dir, runner):
    body = f'[[scanners]]\nname = "quits"\nclass = "{HERE}:ExitingScanner"\nat = ["10:00"]\n'
    result = run_cli(runner, config_with(tmp_path, sample_dir, body), tmp_path)
    assert result.exit_code == 5, result.output
    text = result.stderr
    assert "scanner 'quits'" in text and "scan" in text and "sys.exit(3)" in text
    assert DAY in text and "2023-11-22T10:00:00-05:00" in text and "2023-11-22T15:00:00+00:00" in text


# -- 3. state that cannot be saved fails at the end of the day ----------------------------------
@pytest.mark.parametrize(
    ("cls", "path", "kind"),
    [
        ("KeepsDatetime", 'state["last"]', "datetime"),
        ("KeepsNumpyInt", 'state["regime"]["MSFT"]', "numpy.int64"),
    ],
)
def test_state_that_is_not_json_fails_at_the_end_of_the_first_day(
    tmp_path, sample_dir, runner, cls, path, kind
):
    from core.execution.strategy import StrategyError

    config = config_with(tmp_path, sample_dir, strategy_table(cls), end="2023-11-27")
    with deadline(), pytest.raises(StrategyError) as info:
        SessionCoordinator(load_config(config)).run()
    text = str(info.value)
    assert "strategy 'probe'" in text and path in text and kind in text and DAY in text
    result = run_cli(runner, config, tmp_path)
    assert result.exit_code == 5 and path in result.stderr and "internal error" not in result.stderr


# -- 4. look-ahead shows times, symbol and interval ----------------------------------------------
def test_look_ahead_shows_iso_times_symbol_and_interval(tmp_path, sample_dir, runner):
    body = '[[strategies]]\nname = "peek"\nclass = "tests.strategy_fixtures:Peeks"\n'
    result = run_cli(runner, config_with(tmp_path, sample_dir, body), tmp_path)
    assert result.exit_code == 5, result.output
    text = result.stderr
    assert "look-ahead" in text and "1m bar of MSFT" in text
    assert FIRST_CLOCK_UTC in text and FIRST_CLOCK_LOCAL in text  # the bar's start and the clock
    assert "2023-11-22T14:32:00+00:00" in text  # its end
    assert "1700" not in text  # no raw nanoseconds
    assert_names_the_moment(text, strategy="peek")


# -- 5. a missing indicator names the strategy, the moment and the keys there are -----------------
def test_reading_an_indicator_not_configured_names_strategy_moment_and_keys(tmp_path, sample_dir, runner):
    body = '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 10\n' + strategy_table("ReadsSma5")
    result = run_cli(runner, config_with(tmp_path, sample_dir, body), tmp_path)
    assert result.exit_code == 5, result.output
    text = result.stderr
    assert "'sma_5@1m'" in text and "sma_10@1m" in text and "did you mean" in text
    assert_names_the_moment(text)


# -- 6. declared params and indicators, checked before any session --------------------------------
def _sample(name: str) -> type[Strategy]:
    from core.execution.strategy import load_strategy_class

    return load_strategy_class(f"strategies.py:{name}", REPO / "sample_configs")


def test_check_strategy_finds_unknown_params_wrong_types_and_missing_indicators():
    from core.execution.strategy import Finding, check_strategy

    sma = _sample("SmaCross")
    keys = {"sma_10@1m", "sma_30@1m", "sma_10@5m"}
    assert check_strategy(sma, "sma", {"fast": "sma_10@1m", "quantity": 100}, keys) == []  # int for float

    [unknown] = check_strategy(sma, "sma", {"qty": 100}, keys)
    assert isinstance(unknown, Finding) and unknown.param == "qty"
    assert "strategy 'sma'" in unknown.message and "did you mean 'quantity'" in unknown.message
    assert "quantity" in unknown.hint

    [typed] = check_strategy(sma, "sma", {"quantity": "100"}, keys)
    assert typed.param == "quantity" and "string" in typed.message
    [flag] = check_strategy(sma, "sma", {"threshold": True}, keys)
    assert flag.param == "threshold"

    [missing] = check_strategy(sma, "sma", {"slow": "sma_30@5m"}, keys)
    assert "'sma_30@5m'" in missing.message and "did you mean" in missing.message
    assert "sma_10@1m" in missing.hint and "sma_10@5m" in missing.hint  # the configured keys

    orb = _sample("OpeningRangeBreakout")
    assert check_strategy(orb, "orb", {"minutes": 30}, {"orh_30@1m", "orl_30@1m"}) == []
    found = check_strategy(orb, "orb", {"minutes": 15}, {"orh_30@1m", "orl_30@1m"})
    assert [f.message.split("'")[3] for f in found] == ["orh_15@1m", "orl_15@1m"]
    [integer] = check_strategy(orb, "orb", {"minutes": 15.5}, {"orh_30@1m", "orl_30@1m"})
    assert integer.param == "minutes" and "integer" in integer.message


def test_check_strategy_leaves_undeclared_params_alone_and_reports_a_failing_indicators():
    from core.execution.strategy import check_strategy

    assert check_strategy(Undeclared, "u", {"anything": object()}, set()) == []
    [finding] = check_strategy(BadIndicators, "b", {}, set())
    assert "KeyError" in finding.message and "strategy 'b'" in finding.message


def test_findings_are_small_frozen_values():
    import dataclasses

    from core.execution.strategy import Finding

    finding = Finding("m", "h")
    assert (finding.message, finding.hint) == ("m", "h")
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.message = "x"  # type: ignore[misc]


def test_the_sample_configs_pass_their_own_checks():
    from core.execution.strategy import check_strategy

    for name in ("sma_cross", "orb"):
        config = load_config(REPO / "sample_configs" / f"{name}.toml")
        keys = {key for spec in config.indicators for key in spec.definition().keys}
        for spec in config.strategies:
            cls = _sample(spec.class_.split(":")[1])
            assert check_strategy(cls, spec.name, dict(spec.params), keys) == [], name


def test_declared_defaults_fill_the_params():
    sma = _sample("SmaCross")
    strategy = sma("sma", {"quantity": 5}, {})
    assert strategy.params == {"fast": "sma_10@1m", "slow": "sma_30@1m", "quantity": 5, "threshold": 1e-6}
    assert sma.indicators(strategy.params) == ["sma_10@1m", "sma_30@1m"]


def test_check_scanner_finds_bad_params_of_every_built_in():
    from core.engine.scanners import BUILT_IN, check_scanner

    for kind, cls in BUILT_IN.items():
        assert {"min_price", "max_price", "min_volume"} <= set(cls.defaults), kind
        assert check_scanner(cls, "s", {"min_price": 5, "max_price": 100.0, "min_volume": 1000}) == []
        [typo] = check_scanner(cls, "s", {"min_prise": 5})
        assert typo.param == "min_prise" and "did you mean 'min_price'" in typo.message

    [direction] = check_scanner(BUILT_IN["top_movers"], "movers", {"direction": "dwn"})
    assert direction.param == "direction" and "scanner 'movers'" in direction.message
    assert "'dwn'" in direction.message and "did you mean 'down'" in direction.message
    assert check_scanner(BUILT_IN["top_movers"], "m", {"direction": "down", "min_change": 2}) == []
    assert check_scanner(BUILT_IN["gap"], "g", {"direction": "up", "min_gap": 1.5}) == []
    [lookback] = check_scanner(BUILT_IN["relative_volume"], "r", {"lookback": "5"})
    assert lookback.param == "lookback"
    [rvol] = check_scanner(BUILT_IN["relative_volume"], "r", {"min_rvol": "2"})
    assert rvol.param == "min_rvol"
    assert check_scanner(ExitingScanner, "custom", {"whatever": 1}) == []  # declares nothing


# -- 7. a module that fails on import is a config error ---------------------------------------------
@pytest.mark.parametrize(
    ("source", "said"),
    [
        ('raise RuntimeError("boom")\n', "RuntimeError: boom"),
        ("import sys\nsys.exit(1)\n", "sys.exit(1)"),
        ("1 / 0\n", "ZeroDivisionError"),
    ],
)
@pytest.mark.parametrize("command", ["run", "validate"])
def test_a_strategy_module_failing_on_import_is_exit_3_naming_file_and_error(
    tmp_path, sample_dir, runner, source, said, command
):
    module = tmp_path / "broken_strategy.py"
    module.write_text(source)
    body = f'[[strategies]]\nname = "b"\nclass = "{module}:Anything"\n'
    config = config_with(tmp_path, sample_dir, body)
    options = ["--results-dir", str(tmp_path / "r")] if command == "run" else []
    with deadline():
        result = runner.invoke(app, [command, str(config), *options])
    assert result.exit_code == 3, result.output
    assert str(module) in result.stderr and said in result.stderr
    assert "internal error" not in result.stderr


def test_load_class_failures_are_config_errors(tmp_path):
    from core.engine.scanners import Scanner
    from core.errors import ConfigError
    from core.plugins import load_class

    (tmp_path / "exits.py").write_text("import sys\nsys.exit(2)\n")
    with pytest.raises(ConfigError, match=r"exits\.py.*sys\.exit\(2\)"):
        load_class("exits.py:X", tmp_path, "scanners.class", Scanner)
    assert "backtest_user_exits" not in sys.modules  # a half-run module is not left behind

    (tmp_path / "fine.py").write_text("from core.engine.scanners import Scanner\nclass Mine(Scanner):\n    pass\n")
    with pytest.raises(ConfigError, match="did you mean 'Mine'"):
        load_class("fine.py:Mien", tmp_path, "scanners.class", Scanner)
