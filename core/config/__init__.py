"""The session config: TOML file, then ``BACKTEST_*`` environment, then command line.

Parsed once, at the boundary, into frozen models; everything downstream takes
typed values.  Each value set above the file remembers who set it (an
environment variable, a command-line flag), so an error names that variable or
flag, and ``file.toml:LINE`` for a value of the file.  Unknown keys and unknown
``BACKTEST_*`` variables are refused with a "did you mean".

The environment (README "Session config"):

- ``BACKTEST_<SECTION>__<KEY>=value`` sets one key of a table section:
  ``BACKTEST_SESSION__CLOCK=clock``, ``BACKTEST_PORTFOLIO__CASH=5000``;
- ``BACKTEST_<SECTION>__<N>__<KEY>=value`` sets a key of the N-th table (from
  0, in file order) of a list section (indicators, scanners, insert,
  strategies): ``BACKTEST_STRATEGIES__0__PARAMS__QUANTITY=50``; N equal to the
  number of tables adds one;
- ``BACKTEST_<SECTION>='<JSON>'`` (also ``..__<N>``, ``..__PARAMS``) sets a
  whole section, table or params: an object is merged into the file's, an
  array replaces the file's list;
- a value is read as its field expects: a list as ``MSFT,JPM`` or JSON, a
  param as a JSON scalar (``50``, ``true``) or else as text; an empty value
  counts as unset;
- ``BACKTEST_DATA_DIR`` is ``BACKTEST_DATA__DIR`` (and wins over it); the
  variables of :data:`ELSEWHERE` belong to other parts of the tool; any other
  ``BACKTEST_*`` variable is an error.

A layer (environment, command line) that sets one of ``session.end`` and
``session.days`` replaces the other from the layers below it.
"""

from __future__ import annotations

import copy
import datetime as dt
import difflib
import hashlib
import json
import os
import re
import tomllib
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from calendars import SUPPORTED_INTERVALS, Interval
from core.errors import ConfigError
from core.model.symbols import SYMBOL_RE as _SYMBOL  # the one rule, shared with import and the store

if TYPE_CHECKING:
    from core.model.indicators import IndicatorDef


# The largest counts a config may ask for: far beyond any real use, small enough that a typo
# (days = 10**15) is refused at load time instead of hanging a run.
MAX_DAYS = 100_000  # sessions, about 400 years
MAX_TRAILING_DAYS = 5_000  # sessions of history before each day, about 20 years
MAX_PERIOD = 100_000  # bars of an indicator window


def _invalid(message: str, *fields: str) -> PydanticCustomError:
    """A cross-field error that remembers which fields (dotted, relative to the model) it is about.

    The fields let the error name where each value came from (file line, variable, flag).
    """
    return PydanticCustomError("invalid_combination", "{message}", {"message": message, "fields": fields})


class _Section(BaseModel):
    # inf and nan are valid TOML floats but no valid cash, cost or score
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SessionSection(_Section):
    exchange: str = "XNYS"
    start: dt.date
    end: dt.date | None = None
    days: int | None = Field(default=None, ge=1, le=MAX_DAYS)
    clock: Literal["data", "clock"] = "data"
    hours: Literal["regular", "extended"] = "regular"

    @model_validator(mode="after")
    def _end_or_days(self) -> SessionSection:
        if self.end is not None and self.days is not None:
            raise _invalid("set either session.end or session.days, not both", "end", "days")
        if self.end is not None and self.end < self.start:
            raise _invalid(f"session.start {self.start} is after session.end {self.end}", "start", "end")
        return self


class DataSection(_Section):
    dir: str = "data"


class StreamsSection(_Section):
    symbols: list[str] = Field(min_length=1)
    intervals: list[str] = Field(default_factory=lambda: ["1m"], min_length=1)

    @field_validator("symbols")
    @classmethod
    def _symbols(cls, value: list[str]) -> list[str]:
        for symbol in value:
            if not _SYMBOL.match(symbol):
                raise ValueError(f"symbol {symbol!r} may use letters, digits, '.', '_' and '-' only")
        if len(set(value)) != len(value):
            raise ValueError("symbols are listed twice")
        return value

    @field_validator("intervals")
    @classmethod
    def _intervals(cls, value: list[str]) -> list[str]:
        labels = [Interval.parse(text).label for text in value]
        if len(set(labels)) != len(labels):
            raise ValueError("intervals are listed twice")
        return labels


class HistoricalSection(_Section):
    trailing_days: int = Field(default=0, ge=0, le=MAX_TRAILING_DAYS)


class QualitySection(_Section):
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_below: bool = False


class IndicatorSpec(_Section):
    """One ``[[indicators]]`` table; which keys apply depends on ``kind`` (README)."""

    kind: str
    interval: str = "1m"
    period: int | None = Field(default=None, ge=1, le=MAX_PERIOD)
    fast: int = Field(default=12, ge=1, le=MAX_PERIOD)
    slow: int = Field(default=26, ge=1, le=MAX_PERIOD)
    signal: int = Field(default=9, ge=1, le=MAX_PERIOD)
    nbdev: float = Field(default=2.0, gt=0)
    k: int = Field(default=3, ge=1, le=MAX_PERIOD)
    d: int = Field(default=3, ge=1, le=MAX_PERIOD)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        from core.model.indicators import KINDS, unknown_kind_hint

        kind = value.strip().lower()
        if kind not in KINDS:
            raise ValueError(f"unknown indicator kind {value!r}; {unknown_kind_hint(kind)}")
        return kind

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return Interval.parse(value).label

    def definition(self) -> IndicatorDef:
        from core.model.indicators import KINDS, IndicatorDef

        kind = KINDS[self.kind]
        period = self.period if self.period is not None else kind.default_period
        return IndicatorDef(
            kind=self.kind,
            interval=self.interval,
            period=period,
            fast=self.fast,
            slow=self.slow,
            signal=self.signal,
            nbdev=self.nbdev,
            k=self.k,
            d=self.d,
        )


class InsertSpec(_Section):
    """A scripted mid-session insertion: ``symbol`` joins at ``at`` (exchange-local) every day."""

    symbol: str
    at: dt.time

    @field_validator("symbol")
    @classmethod
    def _symbol(cls, value: str) -> str:
        if not _SYMBOL.match(value):
            raise ValueError(f"symbol {value!r} may use letters, digits, '.', '_' and '-' only")
        return value


class ScannerSpec(_Section):
    """One ``[[scanners]]`` table (README: Scanners)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    kind: str | None = None  # a built-in: top_movers, gap, relative_volume, price_volume
    class_: str | None = Field(default=None, alias="class")  # or "module:Class" / "file.py:Class"
    pre_session: bool = False
    at: list[dt.time] = Field(default_factory=list)  # exchange-local times during the session
    every: str | None = None  # "30m": every 30 minutes from the open
    universe: list[str] | Literal["session", "all"] = "session"
    top: int = Field(default=10, ge=1, le=100_000)
    add: bool = False  # add the top matches to the session
    remove: bool = False  # remove symbols this scanner added once they no longer match
    optional: bool = False  # a failure is reported and the run goes on
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ScannerSpec:
        from core.engine.scanners import BUILT_IN

        if (self.kind is None) == (self.class_ is None):
            raise _invalid(f"scanner {self.name!r}: set exactly one of kind or class", "kind", "class")
        if self.kind is not None and self.kind not in BUILT_IN:
            close = difflib.get_close_matches(self.kind, list(BUILT_IN), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _invalid(
                f"scanner {self.name!r}: unknown kind {self.kind!r}; {hint}kinds: {', '.join(BUILT_IN)}",
                "kind",
            )
        if not (self.pre_session or self.at or self.every):
            raise _invalid(
                f"scanner {self.name!r}: say when it runs (pre_session, at or every)",
                "pre_session",
                "at",
                "every",
            )
        if self.every is not None and not self.every_minutes:
            raise _invalid(
                f"scanner {self.name!r}: every must be minutes or hours in lower case, e.g. '30m' or '1h'",
                "every",
            )
        if self.remove and not self.add:
            raise _invalid(f"scanner {self.name!r}: remove needs add = true", "remove", "add")
        if isinstance(self.universe, list):
            for symbol in self.universe:
                if not _SYMBOL.match(symbol):
                    raise _invalid(f"scanner {self.name!r}: bad universe symbol {symbol!r}", "universe")
        return self

    @property
    def every_minutes(self) -> int | None:
        # case-sensitive like intervals: "30M" is refused, never read as 30 minutes
        match = re.fullmatch(r"\s*(\d+)\s*(m|h)\s*", self.every or "")
        if not match:
            return None
        return int(match.group(1)) * (60 if match.group(2) == "h" else 1) or None


class PortfolioSection(_Section):
    cash: float = Field(default=100_000.0, gt=0)


class ExecutionSection(_Section):
    """Costs and end-of-day behaviour of the simulated broker (core/execution/broker.py)."""

    commission_per_share: float = Field(default=0.0, ge=0)
    commission_per_order: float = Field(default=0.0, ge=0)
    commission_bps: float = Field(default=0.0, ge=0, le=10_000)  # at most 100% of the traded value
    slippage_bps: float = Field(default=0.0, ge=0, lt=10_000)  # 100% would sell at a price of zero
    flat_at_close: bool = False


class StrategySpec(_Section):
    """One ``[[strategies]]`` table: a Strategy subclass and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str
    class_: str = Field(alias="class")  # "module:Class" or "file.py:Class" (relative to the config)
    params: dict[str, Any] = Field(default_factory=dict)


class SessionConfig(_Section):
    """A whole session config, validated; build it with :func:`load_config`."""

    session: SessionSection
    data: DataSection = DataSection()
    streams: StreamsSection
    historical: HistoricalSection = HistoricalSection()
    quality: QualitySection = QualitySection()
    indicators: list[IndicatorSpec] = Field(default_factory=list)
    scanners: list[ScannerSpec] = Field(default_factory=list)
    insert: list[InsertSpec] = Field(default_factory=list)
    portfolio: PortfolioSection = PortfolioSection()
    execution: ExecutionSection = ExecutionSection()
    strategies: list[StrategySpec] = Field(default_factory=list)

    @property
    def intervals(self) -> list[Interval]:
        return [Interval.parse(label) for label in self.streams.intervals]

    @model_validator(mode="after")
    def _indicators_on_streamed_intervals(self) -> SessionConfig:
        for n, spec in enumerate(self.indicators):
            if spec.interval not in self.streams.intervals:
                raise _invalid(
                    f"indicators[{n}] ({spec.kind}) uses interval {spec.interval}, which is not in "
                    f"streams.intervals {self.streams.intervals}; add it there",
                    f"indicators.{n}.interval",
                    "streams.intervals",
                )
        names = [scanner.name for scanner in self.scanners]
        if len(set(names)) != len(names):
            raise _invalid("scanner names must be unique", "scanners")
        keys = [key for spec in self.indicators for key in spec.definition().keys]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise _invalid(f"indicators configured twice: {', '.join(twice)}", "indicators")
        return self

    def canonical_json(self) -> str:
        """Stable text of the config: same config, same text, same run id."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]


# -- reading the file -----------------------------------------------------------------------------


def read_config_file(path: Path) -> tuple[dict[str, Any], str]:
    """The TOML document at ``path`` and its text; errors name the file and line."""
    if not path.exists():
        raise ConfigError("config file not found", where=str(path), hint="check the path")
    if path.is_dir():
        raise ConfigError("config path is a directory", where=str(path), hint="pass a .toml file")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config: {exc}", where=str(path)) from exc
    try:
        return tomllib.loads(text), text
    except tomllib.TOMLDecodeError as exc:
        line = _line_of_toml_error(str(exc))
        where = f"{path}:{line}" if line else str(path)
        raise ConfigError(f"TOML syntax error: {exc}", where=where, hint="fix the TOML syntax") from exc


def _line_of_toml_error(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None


# -- loading: file, environment, command line ----------------------------------------------------


def load_config(
    path: Path,
    overrides: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
) -> SessionConfig:
    """Read ``path``, apply the ``BACKTEST_*`` environment then ``overrides`` (command line), validate.

    ``overrides`` is nested like the file (``{"session": {"clock": "clock"}}``);
    ``flags`` maps a dotted key of it to the flag that set it
    (``{"session.clock": "--clock"}``), so that an error about that value names
    the flag.  An override without a flag is named ``override session.clock``.

    ``data.dir`` comes back absolute: relative to the config file when it
    came from the file, relative to the working directory when it came from
    the environment (``BACKTEST_DATA_DIR``) or ``--data-dir``.  A class given
    as ``file.py:Class`` is relative to the config file likewise.
    """
    path = Path(path)
    document, text = read_config_file(path)
    merged = copy.deepcopy(document)
    sources: dict[_Key, str] = {}  # who set a value above the file; anything else is the file's
    _apply(merged, sources, _environment_settings(os.environ, document))
    _apply(merged, sources, _override_settings(overrides or {}, flags or {}))
    _anchor_paths(merged, sources, path)
    try:
        return SessionConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, path, text, sources) from exc


def config_from_json(text: str) -> SessionConfig:
    """A config stored by a run (its canonical JSON)."""
    return SessionConfig.model_validate_json(text)


_Key = tuple[str | int, ...]  # a place in the config: ("strategies", 0, "params", "quantity")


@dataclass(frozen=True, slots=True)
class _Setting:
    """One value set above the file: where in the config, the value, and who set it."""

    path: _Key
    value: Any
    source: str  # the variable or flag an error about this value names


def _apply(document: dict[str, Any], sources: dict[_Key, str], settings: list[_Setting]) -> None:
    """Lay one layer's ``settings`` over ``document``; ``sources`` learns who set what."""
    _replace_end_or_days(document, settings)
    for setting in settings:
        _assign(document, sources, setting)


def _replace_end_or_days(document: dict[str, Any], settings: list[_Setting]) -> None:
    """A layer setting ``end`` drops the ``days`` of the layers below, and the other way round.

    Otherwise ``--end`` on a config with ``days`` would be an error instead of what the user meant.
    """
    keys: set[str | int] = set()
    for setting in settings:
        if setting.path == ("session",) and isinstance(setting.value, dict):
            keys |= {key for key, value in setting.value.items() if value is not None}
        elif len(setting.path) == 2 and setting.path[0] == "session" and setting.value is not None:
            keys.add(setting.path[1])
    session = document.get("session")
    if not isinstance(session, dict):
        return
    for key, other in (("end", "days"), ("days", "end")):
        if key in keys and other not in keys:
            session.pop(other, None)


def _assign(document: dict[str, Any], sources: dict[_Key, str], setting: _Setting) -> None:
    """Set one value: an object is merged into the object there, anything else replaces it."""
    container: Any = document
    for depth, part in enumerate(setting.path[:-1]):
        # the dict or list below, made when missing (a new table of a list section)
        want: type = list if isinstance(setting.path[depth + 1], int) else dict
        child = _entry(container, part)
        if not isinstance(child, want):
            child = want()
            _put(container, part, child, setting, depth)
        container = child
    last = setting.path[-1]
    current = _entry(container, last)
    if isinstance(setting.value, dict) and isinstance(current, dict):
        _put(container, last, _deep_merge(current, setting.value), setting, len(setting.path) - 1)
        for leaf in _leaves(setting.value):
            _record(sources, setting.path + leaf, setting.source)
    else:
        _put(container, last, setting.value, setting, len(setting.path) - 1)
        _record(sources, setting.path, setting.source)


def _entry(container: Any, part: str | int) -> Any:
    if isinstance(part, int):
        return container[part] if part < len(container) else None
    return container.get(part)


def _put(container: Any, part: str | int, value: Any, setting: _Setting, depth: int) -> None:
    """``container[part] = value``; for a list, the next number appends and a larger one is an error."""
    if not isinstance(part, int) or part < len(container):
        container[part] = value
    elif part == len(container):
        container.append(value)
    else:
        field = ".".join(str(p) for p in setting.path[:depth])
        raise ConfigError(
            f"{field} has {len(container)} table(s), so a new one is number {len(container)}, not {part}",
            where=setting.source,
            hint=f"[[{field}]] tables are numbered from 0 in file order; the next number adds one",
        )


def _leaves(value: dict[str, Any]) -> Iterator[_Key]:
    """The paths of the non-object values inside ``value`` (a list is one value)."""
    for key, item in value.items():
        if isinstance(item, dict) and item:
            yield from ((key, *leaf) for leaf in _leaves(item))
        else:
            yield (key,)


def _record(sources: dict[_Key, str], path: _Key, source: str) -> None:
    """``source`` set the value at ``path``, and so everything below it."""
    for known in [key for key in sources if key[: len(path)] == path]:
        del sources[known]
    sources[path] = source


def _source_of(sources: dict[_Key, str], loc: _Key) -> str | None:
    """Who set the value at ``loc`` (the deepest setting above it), or None: the file."""
    for end in range(len(loc), 0, -1):
        found = sources.get(loc[:end])
        if found is not None:
            return found
    return None


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _override_settings(overrides: dict[str, Any], flags: dict[str, str]) -> list[_Setting]:
    """The command line's values, each named by its flag (``session.clock`` -> ``--clock``)."""
    settings = []
    for leaf in _leaves(overrides):
        value: Any = overrides
        for part in leaf:
            value = value[part]
        if value == {}:
            continue
        settings.append(_Setting(leaf, value, _flag_of(leaf, flags)))
    return settings


def _flag_of(path: _Key, flags: dict[str, str]) -> str:
    for end in range(len(path), 0, -1):
        dotted = ".".join(str(part) for part in path[:end])
        if dotted in flags:
            return flags[dotted]
    return "override " + ".".join(str(part) for part in path)


def _anchor_paths(document: dict[str, Any], sources: dict[_Key, str], config: Path) -> None:
    """Make ``data.dir`` and ``file.py:Class`` paths absolute.

    A path of the file is relative to the file's folder (the config travels with
    its data and strategies); one from the environment or the command line is
    relative to the working directory, as paths typed in a shell are.
    """
    folder = config.resolve().parent

    def base(key: _Key) -> Path:
        return folder if _source_of(sources, key) is None else Path.cwd()

    data = document.setdefault("data", {})
    if isinstance(data, dict):
        data_dir = Path(str(data.get("dir", DataSection().dir))).expanduser()
        data["dir"] = str((base(("data", "dir")) / data_dir).resolve())
    for section in ("scanners", "strategies"):
        tables = document.get(section)
        for n, table in enumerate(tables if isinstance(tables, list) else []):
            reference = table.get("class") if isinstance(table, dict) else None
            if isinstance(reference, str) and ".py:" in reference and not Path(reference).is_absolute():
                table["class"] = str(base((section, n, "class")) / reference)


# -- the environment --------------------------------------------------------------------------------

PREFIX = "BACKTEST_"
DATA_DIR_VARIABLE = "BACKTEST_DATA_DIR"  # the same as BACKTEST_DATA__DIR, and wins over it
# Read by other parts of the tool, never by the config: not an error here.
ELSEWHERE = {
    "BACKTEST_RESULTS_DIR": "the default results directory (cli)",
    "BACKTEST_CACHE_DIR": "the exchange calendar cache (calendars)",
    "BACKTEST_DEBUG": "tracebacks on errors (cli, --debug)",
    "BACKTEST_TEST_PAUSE_AT": "fault tests: pause at a named point (core/faults.py)",
}


@dataclass(frozen=True, slots=True)
class _Node:
    """What the schema holds at one place, as far as reading a variable's text goes.

    ``model``: a section or table (JSON object); ``tables``: a list section
    (JSON array, or a number N to go into the N-th table); ``dict``: free keys
    (params); ``any``: a value under free keys; ``list``: a list of values
    (``MSFT,JPM`` or JSON), or one of ``words``; ``scalar``: one value, as text.
    """

    kind: Literal["model", "tables", "dict", "any", "list", "scalar"]
    model: type[BaseModel] | None = None
    words: tuple[str, ...] = ()


def _node(annotation: Any) -> _Node:
    """The :class:`_Node` of a field's annotation (``int | None`` is ``int``'s)."""
    union = get_origin(annotation) in (Union, types.UnionType)
    args = [arg for arg in (get_args(annotation) if union else (annotation,)) if arg is not type(None)]
    for arg in args:
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return _Node("model", arg)
        inner = get_args(arg)
        if get_origin(arg) is list and isinstance(inner[0], type) and issubclass(inner[0], BaseModel):
            return _Node("tables", inner[0])
    if any(get_origin(arg) is dict for arg in args):
        return _Node("dict")
    if any(arg is Any for arg in args):
        return _Node("any")
    if any(get_origin(arg) is list for arg in args):
        words = tuple(str(w) for arg in args if get_origin(arg) is Literal for w in get_args(arg))
        return _Node("list", words=words)
    return _Node("scalar")


def _fields(model: type[BaseModel]) -> dict[str, Any]:
    """The keys of ``model`` as written in a config (``class``, not ``class_``) and their annotations."""
    return {(info.alias or name): info.annotation for name, info in model.model_fields.items()}


def _environment_settings(environ: Mapping[str, str], document: dict[str, Any]) -> list[_Setting]:
    """The config values of the ``BACKTEST_*`` variables, whole sections before their keys."""
    settings = []
    for name, raw in environ.items():
        upper = name.upper()
        if not upper.startswith(PREFIX) or upper in ELSEWHERE:
            continue
        if upper == DATA_DIR_VARIABLE:
            path: _Key = ("data", "dir")
            node = _Node("scalar")
        else:
            path, node = _schema_path(name, upper.removeprefix(PREFIX).split("__"), document)
        if raw == "":  # unset, as CI templates leave it
            continue
        settings.append(_Setting(path, _env_value(name, path, raw, node, document), name))
    return sorted(settings, key=_order)


def _order(setting: _Setting) -> tuple[Any, ...]:
    """Sections before their keys (``BACKTEST_SESSION`` then ``BACKTEST_SESSION__CLOCK``), tables by
    number (a new table 1 after table 0), ``BACKTEST_DATA_DIR`` after ``BACKTEST_DATA__DIR`` (it wins)."""
    parts = tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in setting.path)
    return parts, setting.source.upper() == DATA_DIR_VARIABLE  # a prefix sorts first


def _schema_path(name: str, parts: list[str], document: dict[str, Any]) -> tuple[_Key, _Node]:
    """The config place a variable names (``SESSION``, ``CLOCK`` -> ``("session", "clock")``)."""
    node = _Node("model", SessionConfig)
    path: list[str | int] = []
    for part in parts:
        if node.kind == "model" and node.model is not None:
            fields = _fields(node.model)
            key = next((key for key in fields if key.upper() == part), None)
            if key is None:
                raise _unknown_variable(name, document)
            path.append(key)
            node = _node(fields[key])
        elif node.kind == "tables" and part.isdigit():
            path.append(int(part))
            node = _Node("model", node.model)
        elif node.kind in ("dict", "any"):
            path.append(_free_key(document, tuple(path), part))
            node = _Node("any")
        else:  # a name where a number goes, or a key below a single value
            raise _unknown_variable(name, document)
    return tuple(path), node


def _free_key(document: dict[str, Any], path: _Key, part: str) -> str:
    """A params key: spelt as the file spells it (``fastPeriod``), else in lower case."""
    here = _lookup(document, path)
    if isinstance(here, dict):
        for key in here:
            if isinstance(key, str) and key.upper() == part:
                return key
    return part.lower()


def _lookup(document: Any, path: _Key) -> Any:
    """The value at ``path`` in the file, or None."""
    for part in path:
        if isinstance(part, int):
            document = document[part] if isinstance(document, list) and part < len(document) else None
        else:
            document = document.get(part) if isinstance(document, dict) else None
    return document


def _env_value(name: str, path: _Key, raw: str, node: _Node, document: dict[str, Any]) -> Any:
    """A variable's text read as its field expects; a type comes from the field, never a guess."""
    field = ".".join(str(part) for part in path)
    if node.kind in ("model", "dict"):
        return _json(name, field, raw, dict)
    if node.kind == "tables":
        return _json(name, field, raw, list)
    if node.kind == "list":
        if raw.strip() in node.words:  # universe = "all"
            return raw.strip()
        if raw.lstrip().startswith("["):
            return _json(name, field, raw, list)
        return [item.strip() for item in raw.split(",") if item.strip()]
    if node.kind == "any":
        if raw.lstrip()[:1] in ("[", "{"):
            return _json(name, field, raw, (list, dict))
        if isinstance(_lookup(document, path), str):  # the file has text here: keep text ("007")
            return raw
        try:
            return json.loads(raw)  # 50, 0.5, true, "text"
        except json.JSONDecodeError:
            return raw
    return raw  # pydantic reads "5000", "true", "2023-11-22", "11:07" as the field's type


def _json(name: str, field: str, raw: str, expected: type | tuple[type, ...]) -> Any:
    """``raw`` as JSON of the ``expected`` type; otherwise an error naming the variable."""
    wanted = "array" if expected is list else "object" if expected is dict else "object or array"
    example = '["MSFT", "JPM"]' if expected is list else '{"key": "value"}'
    hint = f"write a JSON {wanted}, e.g. {name}='{example}'"
    if expected is dict and field.count(".") < 2:
        hint += f", or set one key: {name}__<KEY>=value"
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"{field or 'config'}: not valid JSON ({exc.msg} at character {exc.pos + 1})"
        raise ConfigError(problem, where=name, hint=hint) from None
    if not isinstance(value, expected):
        raise ConfigError(
            f"{field}: expected a JSON {wanted}, got {type(value).__name__} {raw.strip()!r}",
            where=name,
            hint=hint,
        )
    return value


def _unknown_variable(name: str, document: dict[str, Any]) -> ConfigError:
    guess = _guess_variable(name.upper(), document)
    did_you_mean = f" (did you mean {guess}?)" if guess else ""
    return ConfigError(
        f"unknown environment variable{did_you_mean}",
        where=name,
        hint=(
            "config variables are BACKTEST_<SECTION>__<KEY> (BACKTEST_SESSION__CLOCK=clock) and "
            "BACKTEST_<SECTION>__<N>__<KEY> for the N-th [[table]] from 0 "
            f"(BACKTEST_STRATEGIES__0__PARAMS__QUANTITY=50); the tool also reads {DATA_DIR_VARIABLE}, "
            f"{', '.join(ELSEWHERE)}; fix the name or unset it"
        ),
    )


def _guess_variable(name: str, document: dict[str, Any]) -> str | None:
    """The variable ``name`` was most likely meant to be: by whole name, else part by part."""
    rest = name.removeprefix(PREFIX)
    close = difflib.get_close_matches(rest, _simple_names(), n=1, cutoff=0.8)
    if close:
        return PREFIX + close[0]
    parts = _fix_parts(rest.split("__"), document)
    guess = PREFIX + "__".join(parts) if parts else None
    return guess if guess != name else None


def _simple_names() -> list[str]:
    """Every variable of a section or a section's key (without the table number of list sections)."""
    names = [DATA_DIR_VARIABLE.removeprefix(PREFIX), *(n.removeprefix(PREFIX) for n in ELSEWHERE)]
    for section, annotation in _fields(SessionConfig).items():
        names.append(section.upper())
        node = _node(annotation)
        if node.kind == "model" and node.model is not None:
            names += [f"{section}__{key}".upper() for key in _fields(node.model)]
    return names


def _fix_parts(parts: list[str], document: dict[str, Any]) -> list[str] | None:
    """``parts`` with each misspelt key replaced by the closest one, a table's name by its number."""
    node = _Node("model", SessionConfig)
    fixed: list[str] = []
    for part in parts:
        if node.kind == "model" and node.model is not None:
            fields = {key.upper(): annotation for key, annotation in _fields(node.model).items()}
            close = [part] if part in fields else difflib.get_close_matches(part, list(fields), n=1)
            if not close:
                return None
            fixed.append(close[0])
            node = _node(fields[close[0]])
        elif node.kind == "tables":
            number = part if part.isdigit() else _number_of_table(document, fixed[0].lower(), part)
            if number is None:
                return None
            fixed.append(number)
            node = _Node("model", node.model)
        elif node.kind in ("dict", "any"):
            fixed.append(part)
            node = _Node("any")
        else:
            return None
    return fixed


def _number_of_table(document: dict[str, Any], section: str, name: str) -> str | None:
    """The number of the table of ``section`` named ``name`` (``STRATEGIES__SMA`` -> ``0``)."""
    tables = document.get(section)
    for n, table in enumerate(tables if isinstance(tables, list) else []):
        label = table.get("name") if isinstance(table, dict) else None
        if isinstance(label, str) and re.sub(r"[^A-Z0-9]", "_", label.upper()) == name:
            return str(n)
    return None


# -- errors ---------------------------------------------------------------------------------------

# Hints for fields whose rules a user cannot guess from the message (keys without table numbers).
_LOWER_CASE_INTERVALS = f"intervals are m, h or d in lower case: {', '.join(SUPPORTED_INTERVALS)}"
_FIELD_HINTS = {
    "session.days": (
        f"days counts trading sessions (about 252 a year, at most {MAX_DAYS:,}); "
        "for a long span set session.end instead"
    ),
    "historical.trailing_days": (
        f"trailing_days counts sessions of history before each day (about 252 a year, "
        f"at most {MAX_TRAILING_DAYS:,})"
    ),
    "portfolio.cash": "the starting cash: a positive, finite amount",
    "execution.commission_bps": "basis points of the traded value: 1 bp = 0.01%, 10,000 bp = 100%",
    "execution.slippage_bps": "basis points of the price: 1 bp = 0.01%; 10,000 bp would sell at zero",
    "streams.intervals": _LOWER_CASE_INTERVALS,
    "indicators.interval": _LOWER_CASE_INTERVALS,
}
_BOUNDS = {
    "less_than_equal": ("at most", "le"),
    "less_than": ("less than", "lt"),
    "greater_than_equal": ("at least", "ge"),
    "greater_than": ("more than", "gt"),
}


def _config_error(exc: ValidationError, path: Path, text: str, sources: dict[_Key, str]) -> ConfigError:
    """The validation errors as one paragraph: fields, where each value came from, a hint."""
    problems: list[str] = []
    where = ""
    hint = ""
    for error in exc.errors():
        loc: _Key = tuple(error["loc"])
        origins = _origins(error, loc, sources, path, text)
        problem = _problem(error, loc)
        if not problems:
            where = " and ".join(origins)
            hint = _hint(error, loc, origins, sources)
        elif " and ".join(origins) != where:
            problem += f" ({' and '.join(origins)})"
        problems.append(problem)
    return ConfigError("; ".join(problems), where=where, hint=hint)


def _origins(error: Any, loc: _Key, sources: dict[_Key, str], path: Path, text: str) -> list[str]:
    """Where the values of an error came from: ``file.toml:LINE``, a variable or a flag."""
    fields = (error.get("ctx") or {}).get("fields")
    places = [loc + _dotted(field) for field in fields] if fields else [loc]
    origins: list[str] = []
    for place in places:
        line = _line_of_key(text, place)
        origin = _source_of(sources, place) or (f"{path}:{line}" if line else str(path))
        if origin not in origins:
            origins.append(origin)
    return origins


def _dotted(field: str) -> _Key:
    return tuple(int(part) if part.isdigit() else part for part in field.split("."))


def _problem(error: Any, loc: _Key) -> str:
    """One error in words, naming its field."""
    field = ".".join(str(part) for part in loc) or "config"
    kind = error["type"]
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(str(loc[-1]), _known_keys(loc[:-1]), n=1)
        suggestion = f" (did you mean {'.'.join(str(p) for p in (*loc[:-1], close[0]))!r}?)" if close else ""
        return f"unknown key {field!r}{suggestion}"
    if kind == "missing":
        return f"missing required key {field!r}"
    if kind in _BOUNDS:
        words, bound = _BOUNDS[kind]
        return f"{field} is {_shown(error['input'])}; it must be {words} {_shown(error['ctx'][bound])}"
    if kind == "finite_number":
        return f"{field} must be a finite number, not {error['input']}"
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "invalid_combination":  # the message names its fields
        return message
    value = error.get("input")
    shown = kind != "value_error" and isinstance(value, str | int | float | bool | dt.date | dt.time)
    return f"{field}: {message}" + (f" (got {value!r})" if shown else "")


def _shown(value: Any) -> str:
    """A number as people write it: 100,000 and 0, not 100000 and 0.0."""
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():  # from a variable
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _hint(error: Any, loc: _Key, origins: list[str], sources: dict[_Key, str]) -> str:
    """The field's own rule if it has one, then how to mend the place the value came from."""
    if error["type"] == "extra_forbidden":
        return f"valid keys here: {', '.join(sorted(_known_keys(loc[:-1])))}"
    rule = _FIELD_HINTS.get(".".join(str(part) for part in loc if isinstance(part, str)), "")
    above = [origin for origin in origins if origin in sources.values()]
    variables = [origin for origin in above if origin.upper().startswith(PREFIX)]
    flags = [origin for origin in above if origin not in variables]
    mends = [
        f"fix or unset {' or '.join(variables)}" if variables else "",
        f"fix {' or '.join(flags)}" if flags else "",
        "" if above or rule else "see sample_configs/ for a complete example",
    ]
    return "; ".join(part for part in (rule, *mends) if part)


def _known_keys(loc: _Key) -> list[str]:
    """The keys valid at ``loc`` (for a "did you mean")."""
    node = _Node("model", SessionConfig)
    for part in loc:
        if node.kind == "tables" and isinstance(part, int):
            node = _Node("model", node.model)
        elif node.kind == "model" and node.model is not None and str(part) in _fields(node.model):
            node = _node(_fields(node.model)[str(part)])
        else:
            return []
    return list(_fields(node.model)) if node.kind == "model" and node.model is not None else []


_HEADER = re.compile(r"^\s*\[\[?\s*([A-Za-z0-9_.\-]+)\s*\]\]?\s*(#.*)?$")


def _line_of_key(text: str, loc: _Key) -> int | None:
    """Line of the deepest key of ``loc`` in the TOML text, inside its table when known.

    ``("scanners", 1, "top")`` is looked for inside the second ``[[scanners]]`` table.
    """
    names = [part for part in loc if isinstance(part, str)]
    if not names:
        return None
    lines = text.splitlines()
    number = loc[1] if len(loc) > 1 and isinstance(loc[1], int) else 0
    start, end = _table_block(lines, names[0], number)
    if len(names) == 1:  # a top-level name is usually a table: [stream]
        return start or _key_line(lines, names[0], 0, len(lines))
    return _key_line(lines, names[-1], start, end) or start or None


def _table_block(lines: list[str], name: str, number: int) -> tuple[int, int]:
    """The header line (1-based) of the ``number``-th table ``name`` and the line its table ends at.

    ``(0, len(lines))`` when there is no such header: the whole text is searched.
    """
    headers = [(n, match.group(1)) for n, line in enumerate(lines) if (match := _HEADER.match(line))]
    own = [n for n, header in headers if header == name]
    if number >= len(own):
        return 0, len(lines)
    start = own[number] + 1
    end = next((n for n, _ in headers if n >= start), len(lines))
    return start, end


def _key_line(lines: list[str], key: str, start: int, end: int) -> int | None:
    """The first line in ``lines[start:end]`` setting ``key`` (inline tables too), 1-based."""
    patterns = [rf"^\s*{re.escape(key)}\s*=", rf"[{{,]\s*{re.escape(key)}\s*="]
    for pattern in patterns:
        for number in range(start, end):
            if re.search(pattern, lines[number]):
                return number + 1
    return None
