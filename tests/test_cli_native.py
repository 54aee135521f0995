"""The command line as a user meets it: version, help, completion, --debug anywhere, init,
quiet and verbose, the live day line, and times in the exchange's zone, named.

Start-up *time* is measured by benchmarks/startup_bench.py, not here; what the help path
imports is checked here (it is what makes it fast).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from rich.console import Console
from typer.main import get_command
from typer.testing import CliRunner

import cli.progress
from cli.app import app, hoist_debug
from cli.progress import WIDTH, RunProgress, day_line
from core.events import BarsStreamed, DayFinished, DayResult, PauseChanged, PhaseStarted, RunStarted
from tests.conftest import write_config

ROOT = Path(__file__).resolve().parents[1]
NY = "America/New_York"


def invoke(runner: CliRunner, *args: object):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def no_debug(monkeypatch: pytest.MonkeyPatch) -> None:
    """BACKTEST_DEBUG off, and restored after the test (--debug sets it in this process)."""
    monkeypatch.setenv("BACKTEST_DEBUG", "0")


# -- version, help, completion -------------------------------------------------------------------
@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(runner: CliRunner, flag: str) -> None:
    result = invoke(runner, flag)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == f"backtest {version('backtest')}\n"


@pytest.mark.parametrize(
    "command", [[], ["run"], ["inspect"], ["inspect", "last-day"], ["data", "import"], ["init"]]
)
def test_h_is_help_everywhere(runner: CliRunner, command: list[str]) -> None:
    short = invoke(runner, *command, "-h")
    long = invoke(runner, *command, "--help")
    assert short.exit_code == 0 and long.exit_code == 0, short.stderr
    assert short.stdout == long.stdout and short.stdout.startswith("Usage: backtest")


def _commands(group, path=()):
    """Every leaf command of the app, as its words (``("data", "import")``)."""
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def test_every_command_has_an_example(runner: CliRunner) -> None:
    commands = list(_commands(get_command(app)))
    assert ("init",) in commands and ("data", "import") in commands and len(commands) >= 13
    for words in commands:
        shown = invoke(runner, *words, "-h")
        assert shown.exit_code == 0, words
        assert f"Example: backtest {' '.join(words)}" in shown.stdout, (
            f"{' '.join(words)} -h:\n{shown.stdout}"
        )


def test_shell_completion(runner: CliRunner) -> None:
    assert "--install-completion" in invoke(runner, "--help").stdout
    script = invoke(runner, "--show-completion", "bash")
    assert script.exit_code == 0 and "_backtest_completion" in script.stdout
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BACKTEST_", "_BACKTEST"))}
    completed = subprocess.run(
        [sys.executable, "-c", "from cli.app import app; app(prog_name='backtest')"],
        env=env | {"_BACKTEST_COMPLETE": "complete_bash", "COMP_WORDS": "backtest ru", "COMP_CWORD": "1"},
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert completed.stdout.split() == ["run", "runs"], completed.stderr


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["run", "--help"]])
def test_the_help_path_imports_no_engine(args: list[str]) -> None:
    """`--help` and `--version` import Typer and the command line's own modules: not core, the
    calendars, pandas, numpy, DuckDB, or Rich's tables (what made `--help` take a second)."""
    code = (
        "import sys\n"
        "from cli.entry import main\n"
        f"sys.argv = ['backtest', *{args!r}]\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(' '.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    loaded = set(done.stderr.split())
    assert "cli.app" in loaded
    heavy = {"core", "calendars", "pandas", "numpy", "duckdb", "pyarrow", "cli.render", "rich.table"}
    assert not heavy & loaded, sorted(heavy & loaded)


# -- --debug after the subcommand ----------------------------------------------------------------
def test_hoist_debug() -> None:
    assert hoist_debug(["run", "c.toml", "--debug"]) == ["--debug", "run", "c.toml"]
    assert hoist_debug(["--debug", "run", "c.toml"]) == ["--debug", "run", "c.toml"]
    assert hoist_debug(["data", "--debug", "info"]) == ["--debug", "data", "info"]
    assert hoist_debug(["run", "--", "--debug"]) == ["run", "--", "--debug"]  # after --: an argument
    assert hoist_debug(["run", "c.toml"]) == ["run", "c.toml"]


@pytest.mark.parametrize("where", ["after", "before"])
def test_debug_shows_the_traceback_before_or_after_the_command(
    runner: CliRunner, tmp_path: Path, no_debug: None, where: str
) -> None:
    missing = tmp_path / "nowhere.toml"
    args = ["validate", missing, "--debug"] if where == "after" else ["--debug", "validate", missing]
    result = invoke(runner, *args)
    assert result.exit_code == 3, result.stderr
    assert "Traceback" in result.stderr and "ConfigError" in result.stderr
    assert "config file not found" in result.stderr


def test_without_debug_no_traceback(runner: CliRunner, tmp_path: Path, no_debug: None) -> None:
    result = invoke(runner, "validate", tmp_path / "nowhere.toml")
    assert result.exit_code == 3 and "Traceback" not in result.stderr
    assert "config file not found" in result.stderr


def test_debug_after_the_command_in_the_console_script(tmp_path: Path) -> None:
    """The installed entry point (not CliRunner): `backtest run X --debug`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKTEST_")}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from cli.entry import main; main()",
            "run",
            str(tmp_path / "x.toml"),
            "--debug",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        check=False,
    )
    assert done.returncode == 3 and "Traceback" in done.stderr, done.stderr


# -- init ----------------------------------------------------------------------------------------
def test_init_then_validate_and_run(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    made = invoke(runner, "init", project)
    assert made.exit_code == 0, made.stderr
    assert {p.name for p in project.iterdir()} == {"backtest.toml", "strategy.py", "data"}
    assert "backtest run" in made.stdout and str(project / "backtest.toml") in made.stdout

    checked = invoke(runner, "validate", project / "backtest.toml", "-q")
    assert checked.exit_code == 0 and checked.stdout == "", checked.stdout + checked.stderr

    results = tmp_path / "results"
    ran = invoke(runner, "run", project / "backtest.toml", "--results-dir", results, "--json")
    assert ran.exit_code == 0, ran.stderr
    doc = json.loads(ran.stdout)
    assert len(doc["days"]) == 20 and doc["days"][0]["date"] == "2023-11-02"
    assert doc["days"][0]["market_open"] == "2023-11-02T13:30:00+00:00"  # JSON stays UTC
    assert doc["statistics"]["trades"] > 0  # the skeleton strategy trades

    shown = invoke(runner, "run", project / "backtest.toml", "--results-dir", results, "--days", "3")
    assert shown.exit_code == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("run ") and "3 session(s)" in lines[0]
    assert lines[1].startswith("P&L ") and all(
        w in lines[1] for w in ("return", "max drawdown", "trades", "win rate")
    )
    drawdown = next(line for line in lines if "max drawdown" in line and "->" in line)
    assert NY in drawdown  # peak and trough times in the exchange's zone, named


def test_init_refuses_to_overwrite(runner: CliRunner, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    assert invoke(runner, "init", project).exit_code == 0
    before = {p: p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()}
    again = invoke(runner, "init", project)
    assert again.exit_code == 2, again.stdout + again.stderr
    assert "backtest.toml" in again.stderr and "nothing was written" in again.stderr
    assert "Hint:" in again.stderr
    assert {p: p.read_bytes() for p in sorted(project.rglob("*")) if p.is_file()} == before


def test_init_refuses_any_one_of_its_files(runner: CliRunner, tmp_path: Path) -> None:
    """A folder holding only a strategy.py of the user's: refused, and nothing else written."""
    (tmp_path / "strategy.py").write_text("# mine\n")
    refused = invoke(runner, "init", tmp_path)
    assert refused.exit_code == 2 and "strategy.py" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["strategy.py"]
    assert (tmp_path / "strategy.py").read_text() == "# mine\n"


def test_init_into_a_file_is_refused(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "afile"
    target.write_text("x")
    refused = invoke(runner, "init", target)
    assert refused.exit_code == 2 and "not a directory" in refused.stderr


# -- quiet and verbose ---------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path: Path, sample_dir: Path) -> Path:
    return write_config(tmp_path / "c.toml", sample_dir, start="2023-11-22", end="2023-11-27")


def test_run_quiet_normal_verbose(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    def run(*flags: str):
        result = invoke(runner, "run", config, "--results-dir", tmp_path / "r", *flags)
        assert result.exit_code == 0, result.stderr
        return result

    quiet, normal, verbose = run("-q"), run(), run("--verbose")
    # quiet: no progress; the run line, the P&L line (here: none) and where the results went
    assert quiet.stderr == ""
    assert len(quiet.stdout.splitlines()) == 3 and quiet.stdout.splitlines()[-1].startswith("results: ")
    # normal: a line per day on stderr, the days table, no engine timings
    assert [line[:8] for line in normal.stderr.splitlines() if line.startswith("day ")] == [
        "day 1/3 ",
        "day 2/3 ",
        "day 3/3 ",
    ]
    assert "days (times America/New_York)" in normal.stdout
    assert "bars/s" not in normal.stdout + normal.stderr and "phases" not in normal.stderr
    # verbose: the phases of each day and the engine table
    assert normal.stderr.count("day ") == verbose.stderr.count("day ")
    assert verbose.stderr.count("  phases 1 teardown") == 3 and "bars/s (streaming)" in verbose.stdout


def test_quiet_and_verbose_exclude_each_other(runner: CliRunner, config: Path) -> None:
    result = invoke(runner, "run", config, "-q", "-v")
    assert result.exit_code == 2 and "exclude each other" in result.stderr


def test_validate_quiet(runner: CliRunner, tmp_path: Path, sample_dir: Path) -> None:
    good = write_config(tmp_path / "good.toml", sample_dir)
    assert invoke(runner, "validate", good, "--quiet").stdout == ""
    bad = write_config(tmp_path / "bad.toml", sample_dir, symbols=["MSFT", "NOPE"])
    result = invoke(runner, "validate", bad, "-q")
    assert result.exit_code == 4 and result.stdout == ""
    assert "NOPE" in result.stderr and result.stderr.lower().startswith("error")


# -- the live day line ---------------------------------------------------------------------------
def _day(session: dt.date, **fields) -> DayResult:
    values = {
        "market_open_ns": 0,
        "market_close_ns": 0,
        "clock_ns": 0,
        "bars": 23_400,
        "symbols": 60,
        "phase_seconds": {"teardown": 0.01, "initialization": 0.05, "streaming": 0.1, "end": 0.02},
    }
    return DayResult(session=session, **(values | fields))


def test_day_line_fits_100_columns_with_extreme_figures() -> None:
    result = _day(
        dt.date(2023, 3, 17),
        bars=12_345_678,
        pnl=-12_345_678.9,
        equity=1_234_567_890.0,
        early_close=True,
        dropped=["VERYLONGSYMBOL1", "VERYLONGSYMBOL2", "VERYLONGSYMBOL3"],
    )
    line = day_line(9_999, 10_000, result, eta="ETA 123:45:59", pauses=12, reasons=["scan gappers"] * 3)
    assert len(line) <= WIDTH and line.endswith("…")
    assert line.startswith(
        "day 10000/10000 2023-03-17  12,345,678 bars  P&L -12,345,678.90  equity 1,234,567,890"
    )


def test_day_lines_of_a_real_run_fit_100_columns(runner: CliRunner, tmp_path: Path, config: Path) -> None:
    result = invoke(runner, "run", config, "--results-dir", tmp_path / "r")
    days = [line for line in result.stderr.splitlines() if line.startswith("day ")]
    assert len(days) == 3 and all(len(line) <= WIDTH for line in days), days
    assert "early close" in days[1] and "ETA " in days[0] and "took " in days[2]


def _events(progress: RunProgress) -> None:
    """Two days; the first pauses twice (one episode a scan, one an insertion)."""
    day1, day2 = dt.date(2023, 11, 22), dt.date(2023, 11, 24)
    progress(RunStarted(2, 2, "1m", ["5m"]))
    for phase in (1, 2, 3):
        progress(PhaseStarted(0, 2, day1, phase))
    progress(BarsStreamed(0, day1, 1, 390, 780))
    for reasons in (["bar boundary", "scan gappers"], ["bar boundary", "insert JPM"]):
        for depth, reason in enumerate(reasons, 1):
            progress(PauseChanged(1, "pause", reason, depth))
        for depth, reason in reversed(list(enumerate(reasons))):
            progress(PauseChanged(1, "resume", reason, depth))
    progress(BarsStreamed(0, day1, 2, 780, 780))
    progress(PhaseStarted(0, 2, day1, 4))
    progress(DayFinished(0, 2, _day(day1, bars=780)))  # no strategies: no P&L, room for the notes
    progress(PhaseStarted(1, 2, day2, 1))


def test_pauses_fold_into_the_day_line(capsys: pytest.CaptureFixture[str]) -> None:
    with RunProgress() as progress:
        _events(progress)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0].startswith("run: 2 day(s)")
    assert len(lines) == 2, lines  # no line of its own for a pause or a resume
    assert lines[1].startswith("day 1/2 2023-11-22  780 bars  0.18 s  ETA ")
    assert lines[1].endswith("paused 2x (scan gappers, insert JPM)")


def test_live_line_shows_no_stale_values(monkeypatch: pytest.MonkeyPatch) -> None:
    """On a terminal: once the next day starts, the status no longer shows the last day's bars."""
    screen = io.StringIO()
    monkeypatch.setattr(cli.progress, "stderr", Console(file=screen, force_terminal=True, width=WIDTH))
    with RunProgress() as progress:
        _events(progress)
        task = progress._progress.tasks[0]  # type: ignore[union-attr]
        assert task.description == "day 2/2 2023-11-24 tearing down"
        assert "780" not in task.description and task.completed == 1
        assert task.fields["eta"].startswith("ETA ")
    assert "day 1/2 2023-11-22  780 bars" in screen.getvalue()


# -- times: the exchange's, its zone named -------------------------------------------------------
def test_inspect_and_run_show_exchange_time_with_the_zone(
    runner: CliRunner, tmp_path: Path, config: Path
) -> None:
    results = tmp_path / "r"
    ran = invoke(runner, "run", config, "--results-dir", results)
    assert "09:30-13:00" in ran.stdout and "09:30-16:00" in ran.stdout  # the early close, in New York
    assert "14:30" not in ran.stdout  # no UTC hours
    shown = invoke(runner, "inspect", "last-day", "--results-dir", results)
    assert shown.exit_code == 0, shown.stderr
    head = shown.stdout.splitlines()[0]
    assert head.startswith("2023-11-27 XNYS  open 09:30  close 16:00  clock 16:00 America/New_York"), head
    assert "+00:00" not in shown.stdout and "bars (times America/New_York)" in shown.stdout
