"""What a sweep varies and what it looks for: the ``--grid PARAMS.toml`` file.

::

    constraints = ["trades >= 50", "max_drawdown <= 0.25"]   # (before any table)

    [params]
    "strategies.sma.params.quantity" = [50, 100]      # a key of the config, dotted
    "indicators.0.period" = { min = 5, max = 20, step = 5 }
    fast = [5, 10, 20]                                # fills ${fast} in the config

    [objective]
    statistic = "sharpe"          # any statistic of a run
    direction = "maximize"        # or "minimize"

A key names its place the way the config is written: a section's key
(``historical.trailing_days``), a strategy by its name (``strategies.sma.params.fast``),
a list section's table by its number from 0 (``indicators.0.period``).  A name without a
dot is a placeholder: the config writes ``${fast}`` where the value goes.  Values are a
list, or a ``{min, max, step}`` range (both ends included).
"""

from __future__ import annotations

import itertools
import json
import math
import operator
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Setting
from core.errors import ConfigError

DIRECTIONS = ("maximize", "minimize")
_OPERATORS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq}
_CONSTRAINT = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(>=|<=|==|>|<)\s*([-+0-9.eE]+)\s*$")


@dataclass(frozen=True, slots=True)
class Parameter:
    """One thing a sweep varies: a config key (dotted) or a ``${placeholder}``, and its values."""

    name: str
    values: tuple[Any, ...]
    low: float | None = None  # a {min, max, step} range: its ends and step (for the samplers)
    high: float | None = None
    step: float | None = None

    @property
    def placeholder(self) -> bool:
        return "." not in self.name

    @property
    def is_range(self) -> bool:
        return self.step is not None

    @property
    def integer(self) -> bool:
        return all(isinstance(v, int) and not isinstance(v, bool) for v in self.values)


@dataclass(frozen=True, slots=True)
class Constraint:
    """``statistic OP bound``: a run that misses it is kept but is not a candidate for the best."""

    statistic: str
    op: str
    bound: float

    def holds(self, statistics: dict[str, Any]) -> bool:
        value = statistics.get(self.statistic)
        return value is not None and bool(_OPERATORS[self.op](value, self.bound))

    def violation(self, statistics: dict[str, Any]) -> float:
        """How far the run is from meeting it (<= 0: met), for Optuna's constrained samplers."""
        value = statistics.get(self.statistic)
        if value is None:
            return 1.0
        if self.op in (">=", ">"):
            return float(self.bound - value) + (0.0 if self.op == ">=" else 1e-12)
        if self.op in ("<=", "<"):
            return float(value - self.bound) + (0.0 if self.op == "<=" else 1e-12)
        return abs(float(value) - self.bound)

    def __str__(self) -> str:
        return f"{self.statistic} {self.op} {self.bound:g}"


@dataclass(frozen=True, slots=True)
class Objective:
    statistic: str = "sharpe"
    direction: str = "maximize"

    def better(self, a: float, b: float | None) -> bool:
        """Whether objective value ``a`` beats ``b`` (None: no value yet)."""
        if b is None:
            return True
        return a > b if self.direction == "maximize" else a < b


@dataclass(frozen=True, slots=True)
class SweepSpec:
    """A parsed grid file: parameters, objective and constraints."""

    path: Path
    parameters: tuple[Parameter, ...]
    objective: Objective
    constraints: tuple[Constraint, ...]

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def grid(self) -> Iterator[dict[str, Any]]:
        """Every combination, the first parameter varying slowest."""
        for combination in itertools.product(*(p.values for p in self.parameters)):
            yield dict(zip(self.names, combination, strict=True))

    @property
    def grid_size(self) -> int:
        return math.prod(len(p.values) for p in self.parameters)

    def feasible(self, statistics: dict[str, Any]) -> bool:
        return all(c.holds(statistics) for c in self.constraints)

    def objective_of(self, statistics: dict[str, Any]) -> float | None:
        value = statistics.get(self.objective.statistic)
        return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def read_spec(path: Path, statistics: tuple[str, ...]) -> SweepSpec:
    """Parse ``path``; ``statistics`` are the names an objective or constraint may use."""
    where = str(path)
    if not path.is_file():
        raise ConfigError("grid file not found", where=where, hint="pass --grid PARAMS.toml")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read the grid file: {exc}", where=where, hint="fix the TOML") from exc
    unknown = sorted(set(document) - {"params", "objective", "constraints"})
    if unknown:
        raise ConfigError(
            f"unknown key {unknown[0]!r} in the grid file",
            where=where,
            hint="the grid file has [params], [objective] and constraints = [...] (before any table)",
        )
    table = document.get("params")
    if not isinstance(table, dict) or not table:
        raise ConfigError(
            "the grid file varies nothing",
            where=f"{where} [params]",
            hint='add [params] with a key and its values, e.g. "strategies.sma.params.quantity" = [50, 100]',
        )
    parameters = tuple(_parameter(name, values, where) for name, values in table.items())
    objective = _objective(document.get("objective", {}), where, statistics)
    raw = document.get("constraints", [])
    if isinstance(document.get("objective"), dict) and "constraints" in document["objective"]:
        raw = [*raw, *document["objective"]["constraints"]]
    if not isinstance(raw, list):
        raise ConfigError("constraints must be a list of strings", where=f"{where} constraints")
    constraints = tuple(_constraint(text, where, statistics) for text in raw)
    return SweepSpec(path, parameters, objective, constraints)


def _parameter(name: str, values: Any, where: str) -> Parameter:
    field = f"{where} [params] {name}"
    if isinstance(values, dict):
        return _range(name, values, field)
    if not isinstance(values, list) or not values:
        raise ConfigError(
            f"{name} needs a non-empty list of values or a {{min, max, step}} range",
            where=field,
            hint=f"{name} = [1, 2, 3]  or  {name} = {{ min = 1, max = 3, step = 1 }}",
        )
    texts = [json.dumps(v, sort_keys=True) for v in values]
    if len(set(texts)) != len(texts):
        raise ConfigError(f"{name} lists a value twice", where=field, hint="list each value once")
    return Parameter(name, tuple(values))


def _range(name: str, spec: dict[str, Any], field: str) -> Parameter:
    if set(spec) != {"min", "max", "step"} or not all(
        isinstance(spec[k], int | float) and not isinstance(spec[k], bool) for k in spec
    ):
        raise ConfigError(
            f"a range needs numbers min, max and step (it has {', '.join(sorted(spec)) or 'nothing'})",
            where=field,
            hint=f"{name} = {{ min = 5, max = 20, step = 5 }}",
        )
    low, high, step = spec["min"], spec["max"], spec["step"]
    if step <= 0 or high < low:
        raise ConfigError(
            f"the range {low}..{high} step {step} is empty", where=field, hint="min <= max and step > 0"
        )
    count = math.floor((high - low) / step + 1e-9) + 1
    if count > 100_000:
        raise ConfigError(f"the range has {count} values", where=field, hint="use a larger step")
    integer = all(isinstance(spec[k], int) for k in spec)
    values = tuple(low + i * step if integer else round(low + i * step, 12) for i in range(count))
    return Parameter(name, values, low=low, high=values[-1], step=step)


def _objective(table: Any, where: str, statistics: tuple[str, ...]) -> Objective:
    field = f"{where} [objective]"
    if not isinstance(table, dict):
        raise ConfigError("[objective] must be a table", where=field)
    extra = sorted(set(table) - {"statistic", "direction", "constraints"})
    if extra:
        raise ConfigError(
            f"unknown key {extra[0]!r} in [objective]", where=field, hint="statistic, direction"
        )
    objective = Objective(str(table.get("statistic", "sharpe")), str(table.get("direction", "maximize")))
    _check_statistic(objective.statistic, f"{field} statistic", statistics)
    if objective.direction not in DIRECTIONS:
        raise ConfigError(
            f"direction {objective.direction!r} is neither maximize nor minimize", where=f"{field} direction"
        )
    return objective


def _constraint(text: Any, where: str, statistics: tuple[str, ...]) -> Constraint:
    match = _CONSTRAINT.match(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(
            f"cannot read the constraint {text!r}",
            where=f"{where} constraints",
            hint='write "statistic OP number", e.g. "trades >= 50" (OP: >=, <=, >, <, ==)',
        )
    name, op, bound = match.groups()
    _check_statistic(name, f"{where} constraints", statistics)
    return Constraint(name, op, float(bound))


def _check_statistic(name: str, where: str, statistics: tuple[str, ...]) -> None:
    if name not in statistics:
        from core.plugins import suggest

        close = suggest(name, statistics)
        raise ConfigError(
            f"no statistic {name!r}" + (f" (did you mean {close!r}?)" if close else ""),
            where=where,
            hint=f"statistics: {', '.join(statistics)}",
        )


def variant_settings(
    parameters: tuple[Parameter, ...], point: dict[str, Any], document: dict[str, Any], where: str
) -> list[Setting]:
    """The config keys of ``point`` as a layer of settings over ``document`` (the config file's)."""
    settings = []
    for parameter in parameters:
        if parameter.placeholder:
            continue
        path = _key_path(parameter.name, document, where)
        settings.append(Setting(path, point[parameter.name], f"sweep parameter {parameter.name} ({where})"))
    return settings


def _key_path(name: str, document: dict[str, Any], where: str) -> tuple[str | int, ...]:
    """``strategies.sma.params.fast`` -> ("strategies", 0, "params", "fast") (a table by name or number)."""
    parts = name.split(".")
    path: list[str | int] = []
    node: Any = document
    for i, part in enumerate(parts):
        if isinstance(node, list):
            index = _table_index(node, part, ".".join(parts[:i]), where, name)
            path.append(index)
            node = node[index]
        else:
            path.append(part)
            node = node.get(part) if isinstance(node, dict) else None
    return tuple(path)


def _table_index(tables: list[Any], part: str, section: str, where: str, name: str) -> int:
    if part.isdigit():
        if int(part) >= len(tables):
            raise ConfigError(
                f"{name}: the config has {len(tables)} [[{section}]] table(s), numbered from 0",
                where=f"{where} [params] {name}",
            )
        return int(part)
    names = [t.get("name") for t in tables if isinstance(t, dict)]
    if part not in names:
        from core.plugins import suggest

        close = suggest(part, [n for n in names if isinstance(n, str)])
        raise ConfigError(
            f"{name}: no [[{section}]] named {part!r}" + (f" (did you mean {close!r}?)" if close else ""),
            where=f"{where} [params] {name}",
            hint=f"{section} by name: {', '.join(map(str, names)) or 'none named'}; or by number from 0",
        )
    return names.index(part)
