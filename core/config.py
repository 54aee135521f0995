"""The session config: TOML file, then ``BACKTEST_*`` environment, then command line.

Parsed once, at the boundary, into frozen models; everything downstream takes
typed values.  Unknown keys are refused with a "did you mean" hint and the
line of the file they sit on.
"""

from __future__ import annotations

import datetime as dt
import difflib
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from calendars import Interval
from core.errors import ConfigError

if TYPE_CHECKING:
    from core.indicators import IndicatorDef

_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SessionSection(_Section):
    exchange: str = "XNYS"
    start: dt.date
    end: dt.date | None = None
    days: int | None = Field(default=None, ge=1)
    clock: Literal["data", "clock"] = "data"
    hours: Literal["regular", "extended"] = "regular"

    @model_validator(mode="after")
    def _end_or_days(self) -> SessionSection:
        if self.end is not None and self.days is not None:
            raise ValueError("set either session.end or session.days, not both")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"session.start {self.start} is after session.end {self.end}")
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
    trailing_days: int = Field(default=0, ge=0, le=5000)


class QualitySection(_Section):
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_below: bool = False


class IndicatorSpec(_Section):
    """One ``[[indicators]]`` table; which keys apply depends on ``kind`` (README)."""

    kind: str
    interval: str = "1m"
    period: int | None = Field(default=None, ge=1, le=100_000)
    fast: int = Field(default=12, ge=1)
    slow: int = Field(default=26, ge=1)
    signal: int = Field(default=9, ge=1)
    nbdev: float = Field(default=2.0, gt=0)
    k: int = Field(default=3, ge=1)
    d: int = Field(default=3, ge=1)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        from core.indicators import KINDS, unknown_kind_hint

        kind = value.strip().lower()
        if kind not in KINDS:
            raise ValueError(f"unknown indicator kind {value!r}; {unknown_kind_hint(kind)}")
        return kind

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return Interval.parse(value).label

    def definition(self) -> IndicatorDef:
        from core.indicators import KINDS, IndicatorDef

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
    top: int = Field(default=10, ge=1)
    add: bool = False  # add the top matches to the session
    remove: bool = False  # remove symbols this scanner added once they no longer match
    optional: bool = False  # a failure is reported and the run goes on
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self) -> ScannerSpec:
        from core.scanners import BUILT_IN

        if (self.kind is None) == (self.class_ is None):
            raise ValueError(f"scanner {self.name!r}: set exactly one of kind or class")
        if self.kind is not None and self.kind not in BUILT_IN:
            close = difflib.get_close_matches(self.kind, list(BUILT_IN), n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"scanner {self.name!r}: unknown kind {self.kind!r}; {hint}kinds: {', '.join(BUILT_IN)}"
            )
        if not (self.pre_session or self.at or self.every):
            raise ValueError(f"scanner {self.name!r}: say when it runs (pre_session, at or every)")
        if self.every is not None and not self.every_minutes:
            raise ValueError(f"scanner {self.name!r}: every must be minutes or hours, e.g. '30m' or '1h'")
        if self.remove and not self.add:
            raise ValueError(f"scanner {self.name!r}: remove needs add = true")
        if isinstance(self.universe, list):
            for symbol in self.universe:
                if not _SYMBOL.match(symbol):
                    raise ValueError(f"scanner {self.name!r}: bad universe symbol {symbol!r}")
        return self

    @property
    def every_minutes(self) -> int | None:
        match = re.fullmatch(r"\s*(\d+)\s*(m|h)\s*", (self.every or "").lower())
        if not match:
            return None
        return int(match.group(1)) * (60 if match.group(2) == "h" else 1) or None


class PortfolioSection(_Section):
    cash: float = Field(default=100_000.0, gt=0)


class ExecutionSection(_Section):
    """Costs and end-of-day behaviour of the simulated broker (core/broker.py)."""

    commission_per_share: float = Field(default=0.0, ge=0)
    commission_per_order: float = Field(default=0.0, ge=0)
    commission_bps: float = Field(default=0.0, ge=0)
    slippage_bps: float = Field(default=0.0, ge=0)
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
                raise ValueError(
                    f"indicators[{n}] ({spec.kind}) uses interval {spec.interval}, which is not in "
                    f"streams.intervals {self.streams.intervals}; add it there"
                )
        names = [scanner.name for scanner in self.scanners]
        if len(set(names)) != len(names):
            raise ValueError("scanner names must be unique")
        keys = [key for spec in self.indicators for key in spec.definition().keys]
        twice = sorted({key for key in keys if keys.count(key) > 1})
        if twice:
            raise ValueError(f"indicators configured twice: {', '.join(twice)}")
        return self

    def canonical_json(self) -> str:
        """Stable text of the config: same config, same text, same run id."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def config_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]


class _EnvLayer(BaseSettings):
    """``BACKTEST_*`` variables: ``BACKTEST_SESSION__CLOCK=clock``, ``BACKTEST_DATA_DIR=...``."""

    model_config = SettingsConfigDict(env_prefix="BACKTEST_", env_nested_delimiter="__", extra="ignore")
    session: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)
    streams: dict[str, Any] = Field(default_factory=dict)
    historical: dict[str, Any] = Field(default_factory=dict)
    quality: dict[str, Any] = Field(default_factory=dict)
    data_dir: str | None = None


def environment_overrides() -> dict[str, Any]:
    """The config keys set through ``BACKTEST_*`` environment variables."""
    layer = _EnvLayer()
    found: dict[str, Any] = {}
    for section in ("session", "data", "streams", "historical", "quality"):
        values = {key: _env_value(value) for key, value in getattr(layer, section).items()}
        if values:
            found[section] = values
    data_dir = layer.data_dir or found.get("data", {}).get("dir")
    if data_dir:
        found.setdefault("data", {})["dir"] = str(Path(data_dir).expanduser().resolve())
    return found


def _env_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    if isinstance(value, str) and "," in value:
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


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


def load_config(path: Path, overrides: dict[str, Any] | None = None) -> SessionConfig:
    """Read ``path``, apply the environment then ``overrides`` (command line), validate.

    ``data.dir`` comes back absolute: relative to the config file when it
    came from the file, relative to the working directory when it came from
    ``BACKTEST_DATA_DIR`` or ``--data-dir``.
    """
    path = Path(path)
    document, text = read_config_file(path)
    merged = _deep_merge(document, environment_overrides())
    overrides = overrides or {}
    merged = _deep_merge(merged, overrides)
    if overrides.get("session", {}).get("end") is not None:
        merged["session"].pop("days", None)  # --end replaces the file's days
    if overrides.get("data", {}).get("dir") is not None:
        merged["data"]["dir"] = str(Path(overrides["data"]["dir"]).expanduser().resolve())
    data_dir = Path(str(merged.get("data", {}).get("dir", DataSection().dir))).expanduser()
    if not data_dir.is_absolute():
        data_dir = path.resolve().parent / data_dir
    merged["data"] = {**merged.get("data", {}), "dir": str(data_dir.resolve())}
    for table in [*(merged.get("scanners", []) or []), *(merged.get("strategies", []) or [])]:
        reference = table.get("class") if isinstance(table, dict) else None
        if isinstance(reference, str) and ".py:" in reference and not Path(reference).is_absolute():
            table["class"] = str(path.resolve().parent / reference)  # relative to the config file
    try:
        return SessionConfig.model_validate(merged)
    except ValidationError as exc:
        raise _config_error(exc, path, text) from exc


def config_from_json(text: str) -> SessionConfig:
    """A config stored by a run (its canonical JSON)."""
    return SessionConfig.model_validate_json(text)


def _deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in top.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _config_error(exc: ValidationError, path: Path, text: str) -> ConfigError:
    """The first validation error, with its field, line and a hint."""
    problems = []
    first_line: int | None = None
    hint = "see sample_configs/ for a complete example"
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        field = ".".join(loc) or "config"
        if error["type"] == "extra_forbidden":
            key = loc[-1]
            known = _known_keys(loc[:-1])
            close = difflib.get_close_matches(key, known, n=1)
            message = f"unknown key {field!r}"
            if close:
                message += f" (did you mean {'.'.join([*loc[:-1], close[0]])!r}?)"
            hint = f"valid keys here: {', '.join(sorted(known))}"
        elif error["type"] == "missing":
            message = f"missing required key {field!r}"
        else:
            message = f"{field}: {error['msg'].removeprefix('Value error, ')}"
        problems.append(message)
        line = _line_of_key(text, loc)
        first_line = first_line or line
    where = f"{path}:{first_line}" if first_line else str(path)
    return ConfigError("; ".join(problems), where=where, hint=hint)


def _known_keys(loc: list[str]) -> list[str]:
    model: type[BaseModel] = SessionConfig
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        inner = getattr(annotation, "__args__", (annotation,))
        candidates = [a for a in inner if isinstance(a, type) and issubclass(a, BaseModel)]
        if not candidates:
            return []
        model = candidates[0]
    return list(model.model_fields)


def _line_of_key(text: str, loc: list[str]) -> int | None:
    """Line of the deepest key of ``loc`` in the TOML text, inside its table when known."""
    names = [part for part in loc if not part.isdigit()]
    if not names:
        return None
    lines = text.splitlines()

    def header(name: str) -> re.Pattern[str]:
        return re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*\]\]?\s*(#.*)?$")

    if len(names) == 1:  # a top-level name is usually a table: [stream]
        for number, line in enumerate(lines, start=1):
            if header(names[0]).match(line):
                return number
    table_line = 0
    if len(names) > 1:
        for number, line in enumerate(lines, start=1):
            if header(names[0]).match(line):
                table_line = number
                break
    key = re.compile(rf"^\s*{re.escape(names[-1])}\s*=")
    for number, line in enumerate(lines[table_line:], start=table_line + 1):
        if key.match(line):
            return number
    return table_line or None
