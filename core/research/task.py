"""One run of a sweep, as a worker lives it: what travels to the worker and what comes back.

A :class:`RunTask` carries the run's effective config (canonical JSON), where its results
go and the text of its strategy and scanner files; :func:`execute` runs it on whichever
process or machine the engine picked and returns a small summary (never the run's rows:
those stay in its results file), so the driver's memory does not grow with the runs.

The sweep directory must be on a path every worker sees (a shared filesystem): each run
writes its results file and its summary (``summaries/<key>.json``) there.  A run whose
summary and results file exist is not run again, whoever asks.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SUMMARIES = "summaries"
RUNNING = "running"
RUNS = "runs"


@dataclass(frozen=True, slots=True)
class RunTask:
    """Everything a worker needs for one run."""

    key: str  # the run's sweep key: a digest of its effective config and days
    config_json: str
    sweep_dir: str
    sources: tuple[tuple[str, bytes], ...]  # (path, content) of each strategy/scanner file
    days_limit: int | None = None


def execute(task: RunTask) -> dict[str, Any]:
    """Run ``task`` (or return its summary if it already ran) and return the summary.

    Anything the run raises is caught and returned as ``status = "failed"`` with the error;
    only a dying process escapes (the engine sees it and retries or records it).
    """
    from core import faults
    from core.data.store import limit_threads

    limit_threads(1)
    sweep = Path(task.sweep_dir)
    done = summary_of(sweep, task.key)
    if done is not None and done.get("status") == "ok" and Path(done.get("results_path", "")).exists():
        return {**done, "reused": True}
    attempts = _mark_running(sweep, task.key)
    started = time.perf_counter()
    summary: dict[str, Any] = {
        "key": task.key,
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "attempts": attempts,
        "reused": False,
    }
    try:
        faults.pause_point("sweep-run")
        _place_sources(task.sources)
        summary.update(_run(task, sweep))
    except Exception as exc:  # noqa: BLE001 - a failing run is recorded, and the sweep goes on
        summary.update(status="failed", error=_describe(exc))
    summary["wall_s"] = round(time.perf_counter() - started, 6)
    _write_json(sweep / SUMMARIES / f"{task.key}.json", summary)
    with contextlib.suppress(OSError):
        (sweep / RUNNING / task.key).unlink()
    return summary


def summary_of(sweep: Path, key: str) -> dict[str, Any] | None:
    """The stored summary of run ``key`` (None: it has not finished)."""
    try:
        return json.loads((sweep / SUMMARIES / f"{key}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _run(task: RunTask, sweep: Path) -> dict[str, Any]:
    from core.config import config_from_json
    from core.reporting.recorder import run_and_save

    config = config_from_json(task.config_json)
    outcome = run_and_save(config, sweep / RUNS, days_limit=task.days_limit)
    stats = asdict(outcome.statistics) if outcome.statistics is not None else None
    return {
        "status": "ok",
        "error": None,
        "run_id": outcome.run_id,
        "results_path": str(outcome.results_path),
        "days": len(outcome.result.days),
        "statistics": stats,
    }


def _describe(exc: BaseException) -> str:
    where = getattr(exc, "where", None)
    text = f"{type(exc).__name__}: {exc}" + (f" ({where})" if where else "")
    if not hasattr(exc, "where"):  # not one of ours: where in the code it came from
        frames = traceback.extract_tb(exc.__traceback__)
        if frames:
            last = frames[-1]
            text += f" at {Path(last.filename).name}:{last.lineno}"
    return text


def _mark_running(sweep: Path, key: str) -> int:
    """Note that this run started here; the count of attempts so far (a worker died: more than 1)."""
    marker = sweep / RUNNING / key
    attempts = 1
    with contextlib.suppress(OSError, ValueError):
        attempts = int(json.loads(marker.read_text())["attempts"]) + 1
    _write_json(marker, {"attempts": attempts, "pid": os.getpid(), "host": socket.gethostname()})
    return attempts


def _place_sources(sources: tuple[tuple[str, bytes], ...]) -> None:
    """Make each strategy/scanner file the driver sent present here, at its path, with its content.

    A worker that sees the driver's files (a shared filesystem, the same machine) finds them
    as they are; one that lacks a file gets it written there.  A different file at that path
    is an error: the run would not be the run the driver asked for.
    """
    for name, content in sources:
        path = Path(name)
        try:
            present = path.read_bytes()
        except FileNotFoundError:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_bytes(path, content)
            continue
        if present != content:
            raise RuntimeError(
                f"{path} on this worker differs from the driver's copy: the run would use other code "
                "(make the workers see the same files, or let them get the driver's by removing theirs)"
            )


def _write_json(path: Path, value: dict[str, Any]) -> None:
    _write_bytes(path, json.dumps(value, sort_keys=True).encode())


def _write_bytes(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{socket.gethostname()}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    tmp.replace(path)
