"""How a sweep picks the points it runs: the grid's product, or Optuna's random and TPE samplers.

A search is asked for points and told how each went; it never runs anything.  Random and
TPE go through Optuna's ask-and-tell interface with the study kept in a journal file, so
a resumed sweep continues its study: trials told before the interruption stay, trials
asked but never told (lost in flight) are marked failed and asked again with the same
parameters.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from core.research.space import Parameter, SweepSpec

SEARCHES = ("grid", "random", "tpe")


class Search(Protocol):
    def ask(self) -> tuple[int, dict[str, Any]] | None: ...  # (trial number, point), None: none now
    def tell(self, trial: int, objective: float | None, violations: list[float]) -> None: ...
    @property
    def finished(self) -> bool: ...
    @property
    def total(self) -> int: ...


class GridSearch:
    """Every point of the grid, in order."""

    def __init__(self, spec: SweepSpec) -> None:
        self._points = spec.grid()
        self.total = spec.grid_size
        self._asked = 0
        self._told = 0

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        point = next(self._points, None)
        if point is None:
            return None
        self._asked += 1
        return self._asked - 1, point

    def tell(self, trial: int, objective: float | None, violations: list[float]) -> None:
        self._told += 1

    @property
    def finished(self) -> bool:
        return self._told >= self.total


class OptunaSearch:
    """``trials`` points from an Optuna sampler (``random`` or ``tpe``), its study in ``journal``."""

    def __init__(
        self, spec: SweepSpec, sampler: str, trials: int, seed: int, journal: Path, study_name: str
    ) -> None:
        import optuna
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._optuna = optuna
        self._parameters = spec.parameters
        self._distributions = {p.name: _distribution(p) for p in spec.parameters}
        storage = JournalStorage(JournalFileBackend(str(journal)))
        self.study = optuna.create_study(
            study_name=study_name,
            storage=storage,
            direction="maximize" if spec.objective.direction == "maximize" else "minimize",
            load_if_exists=True,
        )
        lost = set(self.study.user_attrs.get("lost", []))
        earlier = [t for t in self.study.get_trials(deepcopy=False) if t.number not in lost]
        for trial in earlier:
            if trial.state == optuna.trial.TrialState.RUNNING:  # asked, never told: lost in flight
                self.study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
                lost.add(trial.number)
                self.study.enqueue_trial(trial.params, skip_if_exists=False)
        self.study.set_user_attr("lost", sorted(lost))
        self._lost = lost
        self._asked = len([t for t in earlier if t.state != optuna.trial.TrialState.RUNNING])
        self._told = self._asked
        # a resumed study draws on from a seed of its own, not the first draws again
        offset = seed + self._asked
        # Optuna 5 takes constraints on the trial (set_constraint); Optuna 4 through the sampler
        self._set_constraint = hasattr(optuna.trial.Trial, "set_constraint")
        constraints = None
        if spec.constraints and not self._set_constraint:
            constraints = lambda t: t.user_attrs.get("violations", [0.0])  # noqa: E731
        if sampler == "random":
            self.study.sampler = optuna.samplers.RandomSampler(seed=offset)
        else:
            self.study.sampler = optuna.samplers.TPESampler(
                seed=offset, constant_liar=True, constraints_func=constraints
            )
        self.total = trials
        self._trials: dict[int, Any] = {}

    def ask(self) -> tuple[int, dict[str, Any]] | None:
        if self._asked >= self.total:
            return None
        trial = self.study.ask(self._distributions)
        self._trials[trial.number] = trial
        self._asked += 1
        point = {p.name: _decode(p, trial.params[p.name]) for p in self._parameters}
        return trial.number, point

    def tell(self, trial: int, objective: float | None, violations: list[float]) -> None:
        asked = self._trials.pop(trial)
        self._told += 1
        for number, violation in enumerate(violations):
            if self._set_constraint:
                asked.set_constraint(f"c{number}", violation)
        if violations and not self._set_constraint:
            asked.set_user_attr("violations", violations)
        if objective is None:
            self.study.tell(asked, state=self._optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(asked, objective)

    @property
    def finished(self) -> bool:
        return self._told >= self.total


def _distribution(parameter: Parameter) -> Any:
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    if parameter.is_range:
        assert parameter.low is not None and parameter.high is not None and parameter.step is not None
        if parameter.integer:
            return IntDistribution(int(parameter.low), int(parameter.high), step=int(parameter.step))
        return FloatDistribution(parameter.low, parameter.high, step=parameter.step)
    return CategoricalDistribution([_encode(v) for v in parameter.values])


def _encode(value: Any) -> Any:
    """A value as an Optuna choice (lists and tables as JSON text)."""
    return value if isinstance(value, str | int | float | bool) else "json:" + json.dumps(value)


def _decode(parameter: Parameter, value: Any) -> Any:
    if isinstance(value, str) and value.startswith("json:"):
        return json.loads(value[5:])
    if parameter.is_range and not parameter.integer:
        return round(float(value), 12)
    return value
