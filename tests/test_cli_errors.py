"""Every way a user can get it wrong, seen from the command line.

Each test pins one bad input against the CONTRACT (shared/CONTRACT.md): the exit
code (2 usage, 3 config, 4 data, 5 session or results, 130 interrupted), one
paragraph on stderr that names the file, field, symbol or day at fault, never a
traceback, and with ``--json`` nothing on stdout but (at most) one JSON document.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from cli.app import app
from cli.progress import RunProgress
from core.events import Event, PhaseStarted
from tests.conftest import write_config

EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_DATA = 4
EXIT_SESSION = 5
EXIT_INTERRUPTED = 130


# -- helpers -------------------------------------------------------------------------------------
def error_paragraph(stderr: str) -> str:
    """The error as printed: from the first line that starts the error to the end of stderr.

    Progress lines of a run may come before it; they are not part of the error.
    """
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        text = line.strip().lower()
        if text.startswith("error") or "─ error" in text:
            return "\n".join(lines[i:]).strip()
    return ""


def assert_fails(result: Result, code: int, *names: str, json_out: bool = False) -> str:
    """Exit ``code``, one error paragraph naming each of ``names``, no traceback; returns it."""
    shown = (
        f"exit {result.exit_code}\n--- stdout ---\n{result.stdout}\n--- stderr ---\n{result.stderr}"
    )
    assert result.exit_code == code, shown
    # An exception that escaped the command would be a bare traceback for a real user.
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"{type(result.exception).__name__}: {result.exception}\n{shown}"
    )
    assert "Traceback" not in result.stdout, shown
    assert "Traceback" not in result.stderr, shown
    paragraph = error_paragraph(result.stderr)
    assert paragraph, f"no error message on stderr\n{shown}"
    assert "\n\n" not in paragraph and "\n \n" not in paragraph, f"more than one paragraph\n{shown}"
    for name in names:
        assert name in paragraph, f"{name!r} not named in the error\n{shown}"
    if json_out:
        assert_json_or_empty(result.stdout)
    return paragraph


def assert_json_or_empty(stdout: str) -> None:
    """``--json``: stdout is empty or exactly one JSON document."""
    if stdout.strip():
        try:
            json.loads(stdout)
        except json.JSONDecodeError as exc:
            pytest.fail(f"stdout is not one JSON document ({exc}):\n{stdout}")


def line_of(path: Path, text: str) -> int:
    """1-based number of the first line of ``path`` that contains ``text``."""
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


def files_in(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (dotfiles included) with its bytes."""
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


Keep = Callable[[str, pa.ChunkedArray], pa.ChunkedArray]


def rewrite_store(source: Path, target: Path, keep: Keep) -> Path:
    """Copy the store at ``source`` to ``target``, keeping the rows where ``keep(symbol, ts)``."""
    shutil.copytree(source, target)
    for file in target.glob("bars/interval=*/symbol=*/*.parquet"):
        symbol = file.parent.name.split("=", 1)[1]
        table = pq.read_table(file)
        table = table.filter(keep(symbol, table.column("ts")))
        pq.write_table(table, file)
    return target


def day_start(day: str) -> pa.Scalar:
    """Midnight UTC of ``day`` (before every session of that day in New York)."""
    midnight = dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), tzinfo=dt.UTC)
    return pa.scalar(midnight, pa.timestamp("us", tz="UTC"))


@pytest.fixture
def config(tmp_path: Path, sample_dir: Path) -> Path:
    """A valid config on the sample store (2023-11-22 .. 2023-11-28, MSFT and JPM)."""
    return write_config(tmp_path / "session.toml", sample_dir)


# -- the config file -----------------------------------------------------------------------------
def test_missing_config_file(runner: CliRunner, tmp_path: Path) -> None:
    """A config path that does not exist: exit 3, the path named."""
    missing = tmp_path / "nowhere.toml"
    result = runner.invoke(app, ["validate", str(missing), "--json"])
    assert_fails(result, EXIT_CONFIG, str(missing), json_out=True)


def test_names_are_printed_literally(runner: CliRunner, tmp_path: Path) -> None:
    """A path with ``[draft]`` in it is named in full (the error text is not markup)."""
    missing = tmp_path / "[draft]" / "session.toml"
    result = runner.invoke(app, ["validate", str(missing), "--json"])
    assert_fails(result, EXIT_CONFIG, str(missing), json_out=True)


def test_config_is_a_directory(runner: CliRunner, tmp_path: Path) -> None:
    """A directory given as the config: exit 3, the path named."""
    folder = tmp_path / "configs"
    folder.mkdir()
    result = runner.invoke(app, ["validate", str(folder), "--json"])
    assert_fails(result, EXIT_CONFIG, str(folder), json_out=True)


def test_config_not_utf8(runner: CliRunner, tmp_path: Path) -> None:
    """A config whose bytes are not UTF-8: exit 3, the path named."""
    path = tmp_path / "latin1.toml"
    path.write_bytes(b'[session]\nexchange = "XNYS"\nstart = "2023-11-22"\n# caf\xe9 \xff\xfe\n')
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, str(path), json_out=True)


def test_toml_syntax_error_names_the_line(runner: CliRunner, tmp_path: Path) -> None:
    """Broken TOML: exit 3 and the message points at ``path:line`` of the fault."""
    path = tmp_path / "broken.toml"
    path.write_text('[session]\nexchange = "XNYS"\nstart = 2023-11-22 oops\nend = "2023-11-28"\n')
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, f"{path}:3", json_out=True)


def test_misspelt_key_did_you_mean(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """``trailing_dayz``: exit 3, key and line named, "did you mean 'historical.trailing_days'"."""
    path = write_config(tmp_path / "typo.toml", sample_dir, extra="trailing_dayz = 2\n")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(
        result,
        EXIT_CONFIG,
        "trailing_dayz",
        "did you mean 'historical.trailing_days'",
        f"{path}:{line_of(path, 'trailing_dayz')}",
        json_out=True,
    )


def test_misspelt_section_did_you_mean(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """``[stream]`` for ``[streams]``: exit 3, section and line named, "did you mean 'streams'"."""
    path = write_config(tmp_path / "typo.toml", sample_dir)
    path.write_text(path.read_text().replace("[streams]", "[stream]"))
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(
        result,
        EXIT_CONFIG,
        "'stream'",
        "did you mean 'streams'",
        f"{path}:{line_of(path, '[stream]')}",
        json_out=True,
    )


def test_unknown_exchange_did_you_mean(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """Exchange ``XNYZ``: exit 3, the code named and XNYS suggested."""
    path = write_config(tmp_path / "s.toml", sample_dir, exchange="XNYZ")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, "XNYZ", "did you mean", "XNYS", json_out=True)


def test_start_after_end_in_file(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """``start`` after ``end`` in the file: exit 3, both dates named."""
    path = write_config(tmp_path / "s.toml", sample_dir, start="2023-11-28", end="2023-11-22")
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, "2023-11-28", "2023-11-22", "start", json_out=True)


def test_start_after_end_on_command_line(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    """``--start`` after ``--end``: exit 3, both dates named, nothing run."""
    result = runner.invoke(
        app,
        [
            "run",
            str(config),
            "--start",
            "2023-11-28",
            "--end",
            "2023-11-22",
            "--results-dir",
            str(tmp_path / "results"),
            "--json",
        ],
    )
    assert_fails(result, EXIT_CONFIG, "2023-11-28", "2023-11-22", json_out=True)


@pytest.mark.parametrize(
    ("start", "end"), [("1850-01-02", "1850-01-10"), ("2150-01-02", "2150-01-10")]
)
def test_dates_outside_the_calendar(
    runner: CliRunner, tmp_path: Path, sample_dir: Path, start: str, end: str
) -> None:
    """A date outside the supported calendar range: exit 3, the date and the field named."""
    path = write_config(tmp_path / "s.toml", sample_dir, start=start, end=end)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_CONFIG, start, "session.start", json_out=True)


# -- the data ------------------------------------------------------------------------------------
def test_symbol_without_data(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """A symbol the store does not hold: exit 4, the symbol named."""
    path = write_config(tmp_path / "s.toml", sample_dir, symbols=["MSFT", "NOPE"])
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_DATA, "NOPE", json_out=True)


def test_symbol_whose_data_ends_before_the_run(
    runner: CliRunner, tmp_path: Path, sample_dir: Path
) -> None:
    """TLT's data stops on 2023-11-10, the run starts 2023-11-22: exit 4, TLT named."""
    cutoff = day_start("2023-11-10")
    store = rewrite_store(
        sample_dir,
        tmp_path / "store",
        lambda symbol, ts: pc.less(ts, cutoff) if symbol == "TLT" else pc.is_valid(ts),
    )
    path = write_config(tmp_path / "s.toml", store, symbols=["MSFT", "TLT"])
    result = runner.invoke(
        app, ["run", str(path), "--results-dir", str(tmp_path / "results"), "--json"]
    )
    assert_fails(result, EXIT_DATA, "TLT", "2023-11-22", json_out=True)


def test_day_without_data_for_any_symbol(
    runner: CliRunner, tmp_path: Path, sample_dir: Path
) -> None:
    """2023-11-27 missing for every symbol: exit 4, that date named."""
    first, after = day_start("2023-11-27"), day_start("2023-11-28")
    store = rewrite_store(
        sample_dir,
        tmp_path / "store",
        lambda symbol, ts: pc.or_(pc.less(ts, first), pc.greater_equal(ts, after)),
    )
    path = write_config(tmp_path / "s.toml", store)
    result = runner.invoke(
        app, ["run", str(path), "--results-dir", str(tmp_path / "results"), "--json"]
    )
    assert_fails(result, EXIT_DATA, "2023-11-27", json_out=True)


def test_missing_data_dir(runner: CliRunner, tmp_path: Path) -> None:
    """``[data] dir`` pointing nowhere: exit 4, the directory named."""
    missing = tmp_path / "no-such-data"
    path = write_config(tmp_path / "s.toml", missing)
    result = runner.invoke(app, ["validate", str(path), "--json"])
    assert_fails(result, EXIT_DATA, str(missing), json_out=True)


def test_corrupt_parquet_file(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    """A Parquet file of garbage bytes: exit 4, the data directory (or the file) named."""
    store = tmp_path / "store"
    shutil.copytree(sample_dir, store)
    victim = sorted(store.glob("bars/interval=1m/symbol=MSFT/*.parquet"))[0]
    victim.write_bytes(b"this is not parquet at all" * 100)
    path = write_config(tmp_path / "s.toml", store)
    result = runner.invoke(
        app, ["run", str(path), "--results-dir", str(tmp_path / "results"), "--json"]
    )
    paragraph = assert_fails(result, EXIT_DATA, json_out=True)
    assert str(store) in paragraph or str(victim) in paragraph, result.stderr


# -- results -------------------------------------------------------------------------------------
def test_results_dir_not_writable(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    """Results dir under a regular file (cannot be created): exit 5, the path named."""
    blocker = tmp_path / "afile"
    blocker.write_text("a file, not a folder")
    results = blocker / "results"
    result = runner.invoke(app, ["run", str(config), "--results-dir", str(results), "--json"])
    assert_fails(result, EXIT_SESSION, str(results), json_out=True)


def test_inspect_last_day_without_results(runner: CliRunner, tmp_path: Path) -> None:
    """``inspect last-day`` before any run: a non-zero exit naming the results dir."""
    results = tmp_path / "results"
    result = runner.invoke(app, ["inspect", "last-day", "--results-dir", str(results), "--json"])
    assert result.exit_code != 0, result.stdout
    assert_fails(result, result.exit_code, str(results), json_out=True)


# -- command-line usage --------------------------------------------------------------------------
def test_unknown_option(runner: CliRunner, config: Path) -> None:
    """An option the command does not have: exit 2, the option named."""
    result = runner.invoke(app, ["run", str(config), "--bogus"])
    assert_fails(result, EXIT_USAGE, "--bogus")


def test_bad_clock_value(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    """``--clock sideways``: exit 2, the option named, nothing run."""
    results = tmp_path / "results"
    result = runner.invoke(
        app, ["run", str(config), "--clock", "sideways", "--results-dir", str(results), "--json"]
    )
    assert_fails(result, EXIT_USAGE, "--clock", json_out=True)
    assert not (results / "latest").exists()


def test_inspect_day_not_a_date(runner: CliRunner, tmp_path: Path) -> None:
    """``inspect-day notadate``: exit 2, the bad value named."""
    result = runner.invoke(
        app, ["inspect-day", "notadate", "--results-dir", str(tmp_path / "results"), "--json"]
    )
    assert_fails(result, EXIT_USAGE, "notadate", json_out=True)


# -- environment overrides -----------------------------------------------------------------------
def test_env_data_dir_missing(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    """``BACKTEST_DATA_DIR`` overrides the file; pointing nowhere: exit 4, that dir named."""
    missing = tmp_path / "env-data"
    result = runner.invoke(
        app, ["validate", str(config), "--json"], env={"BACKTEST_DATA_DIR": str(missing)}
    )
    assert_fails(result, EXIT_DATA, str(missing), json_out=True)


def test_data_dir_option_wins_over_env(
    runner: CliRunner, tmp_path: Path, config: Path, sample_dir: Path
) -> None:
    """``--data-dir`` (valid) beats a ``BACKTEST_DATA_DIR`` pointing nowhere: validation passes."""
    env = {"BACKTEST_DATA_DIR": str(tmp_path / "env-data")}
    result = runner.invoke(
        app, ["validate", str(config), "--data-dir", str(sample_dir), "--json"], env=env
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["valid"] is True


def test_missing_data_dir_option_wins_over_env(
    runner: CliRunner, tmp_path: Path, config: Path, sample_dir: Path
) -> None:
    """``--data-dir`` pointing nowhere beats a valid ``BACKTEST_DATA_DIR``: exit 4, it is named."""
    missing = tmp_path / "cli-data"
    result = runner.invoke(
        app,
        ["validate", str(config), "--data-dir", str(missing), "--json"],
        env={"BACKTEST_DATA_DIR": str(sample_dir)},
    )
    assert_fails(result, EXIT_DATA, str(missing), json_out=True)


# -- failed and interrupted runs keep earlier results --------------------------------------------
@pytest.fixture
def previous_run(runner: CliRunner, tmp_path: Path, config: Path) -> Path:
    """A results dir holding one successful two-day run."""
    results = tmp_path / "results"
    result = runner.invoke(
        app, ["run", str(config), "--days", "2", "--results-dir", str(results), "--json"]
    )
    assert result.exit_code == 0, result.stderr
    assert (results / "latest").is_file()
    return results


def test_interrupted_run_keeps_previous_results(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, config: Path, previous_run: Path
) -> None:
    """Ctrl-C while streaming: exit 130; ``latest``, the earlier file and the dir are unchanged."""
    before = files_in(previous_run)
    shown = RunProgress.__call__

    def interrupted(self: RunProgress, event: Event) -> None:
        # the run's own event callback: Ctrl-C lands as the first day's streaming starts
        if isinstance(event, PhaseStarted) and event.name == "streaming":
            raise KeyboardInterrupt
        shown(self, event)

    monkeypatch.setattr(RunProgress, "__call__", interrupted)
    try:
        result = runner.invoke(
            app, ["run", str(config), "--days", "1", "--results-dir", str(previous_run), "--json"]
        )
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped the command instead of exiting 130")
    assert_fails(result, EXIT_INTERRUPTED, "interrupted", json_out=True)
    assert files_in(previous_run) == before


def test_failed_run_keeps_previous_results(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch, config: Path, previous_run: Path
) -> None:
    """A component's setup raising: exit 5 naming the component and the day; results unchanged."""
    before = files_in(previous_run)

    def broken_setup(self):
        raise RuntimeError("the quality feed is down")

    monkeypatch.setattr("core.engine.quality.DataQualityManager.setup", broken_setup)
    result = runner.invoke(
        app, ["run", str(config), "--days", "1", "--results-dir", str(previous_run), "--json"]
    )
    assert_fails(
        result,
        EXIT_SESSION,
        "data-quality manager",
        "2023-11-22",
        "the quality feed is down",
        json_out=True,
    )
    assert files_in(previous_run) == before
