"""Walk-forward: optimise on a train window, run the winner on the next test window, roll on.

``--walk-forward "train=60,test=20,step=20[,anchored]"`` counts sessions of the config's
exchange over the config's range: fold ``k`` trains on sessions ``[k*step, k*step+train)``
(anchored: from the first session) and tests on the ``test`` sessions after them; folds
go on while a whole test window fits.  The test runs, each starting with the config's
cash, are stitched into one out-of-sample curve: each fold's equity is scaled so that it
starts where the previous fold's ended (returns compound), and statistics are computed
over the stitched curve as over one run.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core.config import SessionConfig
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.research.table import SweepTable

_SPEC = re.compile(
    r"^\s*train\s*=\s*(\d+)\s*,\s*test\s*=\s*(\d+)\s*,\s*step\s*=\s*(\d+)\s*(,\s*anchored\s*)?$"
)


@dataclass(frozen=True, slots=True)
class WalkForward:
    train: int
    test: int
    step: int
    anchored: bool = False

    @classmethod
    def parse(cls, text: str) -> WalkForward:
        match = _SPEC.match(text)
        if match is None or min(int(match.group(i)) for i in (1, 2, 3)) < 1:
            raise ConfigError(
                f"cannot read the walk-forward {text!r}",
                where="--walk-forward",
                hint='"train=60,test=20,step=20" or with ",anchored" (sessions, each at least 1)',
            )
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), bool(match.group(4)))


@dataclass(slots=True)
class Fold:
    number: int  # from 1
    train: tuple[dt.date, dt.date]
    test: tuple[dt.date, dt.date]
    params: dict[str, Any] | None = None
    train_key: str | None = None
    train_objective: float | None = None
    test_key: str | None = None
    test_run_id: str | None = None
    test_objective: float | None = None
    test_results: str | None = None
    status: str = "pending"

    def train_done(self, table: SweepTable, direction: str) -> None:
        """The train window's best feasible run (from the table: runs of an earlier, resumed sweep count)."""
        best = table.best("train", self.number, direction)
        if best is None:
            self.status = "no feasible train run"
            return
        self.train_objective, self.params, self.train_key = (
            best["objective"],
            table.point_of(best),
            best["key"],
        )

    def test_done(self, table: SweepTable) -> None:
        row = _test_row(table, self.number)
        self.test_key = row.get("key")
        self.test_run_id = row.get("run_id")
        self.test_objective = row.get("objective")
        self.test_results = row.get("results_path")
        self.status = "ok" if row.get("status") == "ok" else f"test run failed: {row.get('error')}"
        self.record(table)

    def record(self, table: SweepTable) -> None:
        table.record_fold(
            {
                "fold": self.number,
                "train_start": self.train[0],
                "train_end": self.train[1],
                "test_start": self.test[0],
                "test_end": self.test[1],
                "params": json.dumps(self.params, sort_keys=True) if self.params is not None else None,
                "train_key": self.train_key,
                "train_objective": self.train_objective,
                "test_key": self.test_key,
                "test_run_id": self.test_run_id,
                "test_objective": self.test_objective,
                "status": self.status,
            }
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "fold": self.number,
            "train": [self.train[0].isoformat(), self.train[1].isoformat()],
            "test": [self.test[0].isoformat(), self.test[1].isoformat()],
            "params": self.params,
            "train_objective": self.train_objective,
            "test_run_id": self.test_run_id,
            "test_objective": self.test_objective,
            "status": self.status,
        }


def _test_row(table: SweepTable, fold: int) -> dict[str, Any]:
    return table.one("SELECT * FROM runs WHERE role = 'test' AND fold = ?", [fold]) or {}


def run_sessions(config: SessionConfig) -> list[dt.date]:
    """The sessions a run of ``config`` covers, from the exchange's calendar."""
    from calendars import TradingCalendar

    session = config.session
    if session.end is not None:
        return TradingCalendar(session.exchange, session.start, session.end).sessions_in_range(
            session.start, session.end
        )
    days = session.days or 1
    calendar = TradingCalendar(
        session.exchange, session.start, session.start + dt.timedelta(days=days * 2 + 30)
    )
    return calendar.sessions_from(session.start, days)


def folds_of(walk: WalkForward, config: SessionConfig) -> list[Fold]:
    """The folds of ``walk`` over the sessions of ``config``."""
    sessions = run_sessions(config)
    folds = []
    k = 0
    while True:
        train_lo = 0 if walk.anchored else k * walk.step
        train_hi = k * walk.step + walk.train
        test_hi = train_hi + walk.test
        if test_hi > len(sessions):
            break
        folds.append(
            Fold(
                k + 1,
                (sessions[train_lo], sessions[train_hi - 1]),
                (sessions[train_hi], sessions[test_hi - 1]),
            )
        )
        k += 1
    if not folds:
        raise ConfigError(
            f"the config's range has {len(sessions)} sessions; one fold needs train + test = "
            f"{walk.train + walk.test}",
            where="--walk-forward",
            hint="widen session.start/end (or --start/--end), or shorten the windows",
        )
    return folds


def stitch(folds: list[Fold], table: SweepTable) -> dict[str, Any] | None:
    """The folds' test runs as one out-of-sample curve (written to the table); its statistics."""
    from core.reporting.results import ResultsStore
    from core.reporting.stats import compute_statistics

    curve_ns: list[np.ndarray] = []
    curve_equity: list[np.ndarray] = []
    curve_exposed: list[np.ndarray] = []
    curve_cash: list[np.ndarray] = []
    curve_gross: list[np.ndarray] | None = []
    fills: list[dict[str, Any]] = []
    daily: list[tuple[int, dt.date, float]] = []
    trades: list[Any] = []
    equity_rows: list[tuple[int, int, float]] = []
    opening: float | None = None
    level: float | None = None
    for fold in folds:
        if fold.status != "ok" or not fold.test_results:
            continue
        path = Path(fold.test_results)
        store = ResultsStore(path.parent)
        tables = store.ledger_tables(path)
        record, _ = store.read(path)
        first = record.days[0]
        cash = (first.equity or 0.0) - (first.pnl or 0.0)
        if opening is None:
            opening = level = cash
        assert level is not None
        scale = level / cash if cash else 1.0
        equity = tables["curve_equity"] * scale
        curve_ns.append(tables["curve_ns"])
        curve_equity.append(equity)
        curve_exposed.append(tables["curve_exposed"])
        curve_cash.append(tables["curve_cash"] * scale)
        if curve_gross is not None and tables["curve_gross"] is not None:
            curve_gross.append(tables["curve_gross"] * scale)
        else:
            curve_gross = None
        # the fold's trades at the stitched size: quantities and commissions scaled as its equity
        fills += [
            {**f, "quantity": f["quantity"] * scale, "commission": f["commission"] * scale}
            for f in tables["fills"]
        ]
        equity_rows += [
            (fold.number, int(t), float(e)) for t, e in zip(tables["curve_ns"], equity, strict=True)
        ]
        for day, value in tables["daily"]:
            daily.append((fold.number, day, float(value) * scale))
        trades += [
            dataclasses.replace(t, pnl=t.pnl * scale, commission=t.commission * scale)
            for t in tables["trades"]
        ]
        if tables["daily"]:
            level = float(tables["daily"][-1][1]) * scale
    if opening is None:
        table.record_oos(iter(()), [], None)
        return None
    statistics = dataclasses.asdict(
        compute_statistics(
            opening,
            [(d, e) for _, d, e in daily],
            np.concatenate(curve_ns),
            np.concatenate(curve_equity),
            np.concatenate(curve_exposed),
            trades,
            fills=fills,
            curve_cash=np.concatenate(curve_cash),
            curve_gross=np.concatenate(curve_gross) if curve_gross else None,
        )
    )
    table.record_oos(iter(equity_rows), daily, statistics)
    return statistics
