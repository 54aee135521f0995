"""Where a sweep's runs execute: a local process pool or a Dask distributed cluster.

Both take :class:`~core.research.task.RunTask` s one by one and hand back the summaries
as runs finish; the sweep's driver does not know which one it talks to.  Scheduling,
retries and worker failure are the engine's: Dask reschedules a task whose worker died
(up to its ``allowed-failures``) and reports ``KilledWorker`` after; the local pool, when a
worker process dies, starts a new pool and submits again the runs it lost, and a run
whose own worker died :data:`LOCAL_ALLOWED_FAILURES` times is recorded as failed.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import signal
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, Protocol

from core.errors import ConfigError
from core.research.task import RUNNING, RunTask, execute

LOCAL_ALLOWED_FAILURES = 3  # as Dask's distributed.scheduler.allowed-failures
# one thread per worker for the numeric libraries (set before a worker imports them)
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


class Engine(Protocol):
    slots: int  # how many runs it takes at once

    def submit(self, task: RunTask) -> None: ...
    def finished(self) -> Iterator[dict[str, Any]]: ...  # blocks until at least one run finishes
    def pending(self) -> int: ...
    def close(self) -> None: ...


def open_engine(name: str, workers: int | None, address: str | None) -> Engine:
    """``local``: a process pool of ``workers`` (default the cores); ``dask``: the cluster at ``address``."""
    if name == "local":
        if address:
            raise ConfigError(
                "--address is for --engine dask",
                where="--address",
                hint="add --engine dask, or drop --address",
            )
        return LocalEngine(workers or os.cpu_count() or 1)
    if name == "dask":
        return DaskEngine(address, workers)
    raise ConfigError(f"unknown engine {name!r}", where="--engine", hint="local or dask")


class LocalEngine:
    """A pool of worker processes on this machine (started through a fork server)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        for name in _THREAD_VARIABLES:  # inherited by the fork server, then by every worker
            os.environ.setdefault(name, "1")
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(["core.research.task", "core.reporting.recorder"])
        self._pool = self._new_pool()
        self._futures: dict[Future[dict[str, Any]], RunTask] = {}
        self._deaths: dict[str, int] = {}  # key -> times its own worker died under it

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            self.slots, mp_context=self._context, initializer=_watch_driver, initargs=(os.getpid(),)
        )

    def submit(self, task: RunTask) -> None:
        self._futures[self._pool.submit(execute, task)] = task

    def pending(self) -> int:
        return len(self._futures)

    def finished(self) -> Iterator[dict[str, Any]]:
        done, _ = wait(list(self._futures), return_when=FIRST_COMPLETED)
        lost: list[RunTask] = []
        for future in done:
            task = self._futures.pop(future)
            try:
                yield future.result()
            except BrokenProcessPool:
                lost.append(task)
        if lost:
            yield from self._recover(lost)

    def _recover(self, lost: list[RunTask]) -> Iterator[dict[str, Any]]:
        """A worker died: every run in flight is lost with the pool; start again, count the dead one's."""
        lost += list(self._futures.values())
        self._futures.clear()
        culprits = self._dead_workers_runs(lost)
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=True, cancel_futures=True)
        self._pool = self._new_pool()
        for task in lost:
            if task.key in culprits:
                self._deaths[task.key] = self._deaths.get(task.key, 0) + 1
            if self._deaths.get(task.key, 0) >= LOCAL_ALLOWED_FAILURES:
                yield {
                    "key": task.key,
                    "status": "failed",
                    "attempts": self._deaths[task.key],
                    "error": f"its worker process died {self._deaths[task.key]} times while running it "
                    "(killed, or crashed outside Python)",
                    "worker": "",
                    "wall_s": None,
                    "reused": False,
                }
            else:
                self.submit(task)

    def _dead_workers_runs(self, lost: list[RunTask]) -> set[str]:
        """The keys of the runs whose worker died by itself (not stopped by the pool's own clean-up)."""
        dead: set[str] = set()
        for task in lost:
            try:
                marker = json.loads((Path(task.sweep_dir) / RUNNING / task.key).read_text())
            except (OSError, ValueError):
                continue
            process = _process(self._pool, int(marker.get("pid", 0)))
            if process is not None and process.exitcode not in (-signal.SIGTERM, 0, None):
                dead.add(task.key)
        return dead or {task.key for task in lost}  # cannot tell: count them all

    def close(self) -> None:
        """Stop at once: runs in flight are lost (a resumed sweep runs them again)."""
        for process in list(getattr(self._pool, "_processes", {}).values()):
            with contextlib.suppress(Exception):
                process.kill()
        with contextlib.suppress(Exception):
            self._pool.shutdown(wait=False, cancel_futures=True)


def _watch_driver(driver: int) -> None:
    """In a worker: leave when the driver is gone (killed), instead of waiting for work forever.

    A pool's workers hold both ends of their task pipe, so a driver killed with SIGKILL leaves
    them blocked; a thread checks once a second that the driver still exists.
    """
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(driver, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:  # (alive, another user's: cannot happen for our own parent)
                pass

    threading.Thread(target=watch, name="watch-driver", daemon=True).start()


def _process(pool: ProcessPoolExecutor, pid: int) -> Any:
    processes = getattr(pool, "_processes", None) or {}
    return processes.get(pid)


class DaskEngine:
    """The runs as tasks of a Dask distributed cluster (``pip install -e '.[cluster]'``)."""

    def __init__(self, address: str | None, workers: int | None) -> None:
        try:
            from distributed import Client, as_completed
        except ImportError as exc:
            raise ConfigError(
                "--engine dask needs Dask distributed",
                where="--engine",
                hint="pip install -e '.[cluster]'",
            ) from exc
        if not address:
            raise ConfigError(
                "--engine dask needs the scheduler's address",
                where="--address",
                hint="--address tcp://HOST:8786 (start one with `dask scheduler` and `dask worker ADDRESS`)",
            )
        try:
            self._client = Client(address, timeout="20s")
        except OSError as exc:
            raise ConfigError(
                f"cannot reach the Dask scheduler at {address}: {exc}",
                where="--address",
                hint="check the address and that `dask scheduler` runs there",
            ) from exc
        cores = sum(self._client.nthreads().values()) or 1
        self.slots = workers or cores
        self._pending = as_completed()
        self._tasks: dict[Any, RunTask] = {}

    def submit(self, task: RunTask) -> None:
        future = self._client.submit(execute, task, pure=False)
        self._tasks[future.key] = task
        self._pending.add(future)

    def pending(self) -> int:
        return len(self._tasks)

    def finished(self) -> Iterator[dict[str, Any]]:
        future = next(self._pending)
        task = self._tasks.pop(future.key)
        try:
            yield future.result()
        except Exception as exc:  # noqa: BLE001 - KilledWorker and the like: the run is recorded as failed
            yield {
                "key": task.key,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
                "worker": "",
                "wall_s": None,
                "attempts": None,
                "reused": False,
            }

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._client.close()
