"""The session config as frozen models: one per section, and :class:`SessionConfig` over them.

Each model checks its own fields; :class:`SessionConfig` checks what spans sections
(indicators on streamed intervals, unique scanner names, no indicator twice) before
any work starts.  A cross-field error names every field it is about (see
:func:`_invalid`), so that ``core.config.messages`` can say where each value came from.
Build a config with :func:`core.config.load_config`.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from calendars import Interval
from core.model.indicators import KINDS, IndicatorDef, unknown_kind_hint
from core.model.symbols import SYMBOL_RE as _SYMBOL  # the one rule, shared with import and the store

# The built-in scanner kinds (README: Scanners). The engine's registry
# (core.engine.scanners.BUILT_IN) implements exactly these; a test checks that they agree.
SCANNER_KINDS = ("top_movers", "gap", "relative_volume", "price_volume")

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
    """``[session]``: the exchange, the span of sessions (``end`` or ``days``), the clock and hours."""

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
    """``[data]``: the store's folder (absolute once loaded)."""

    dir: str = "data"


class StreamsSection(_Section):
    """``[streams]``: the symbols of the session and the intervals streamed to strategies."""

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
    """``[historical]``: how many sessions of history precede each day."""

    trailing_days: int = Field(default=0, ge=0, le=MAX_TRAILING_DAYS)


class QualitySection(_Section):
    """``[quality]``: the score below which a symbol is warned about, or dropped for the day."""

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
        kind = value.strip().lower()
        if kind not in KINDS:
            raise ValueError(f"unknown indicator kind {value!r}; {unknown_kind_hint(kind)}")
        return kind

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: str) -> str:
        return Interval.parse(value).label

    def definition(self) -> IndicatorDef:
        """The indicator this table configures, with the kind's default period when none is set."""
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
    kind: str | None = None  # a built-in (SCANNER_KINDS)
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
        if (self.kind is None) == (self.class_ is None):
            raise _invalid(f"scanner {self.name!r}: set exactly one of kind or class", "kind", "class")
        if self.kind is not None and self.kind not in SCANNER_KINDS:
            close = difflib.get_close_matches(self.kind, SCANNER_KINDS, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise _invalid(
                f"scanner {self.name!r}: unknown kind {self.kind!r}; {hint}kinds: {', '.join(SCANNER_KINDS)}",
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
        """``every`` in minutes (``"1h"`` is 60), or None when it is unset or malformed."""
        # case-sensitive like intervals: "30M" is refused, never read as 30 minutes
        match = re.fullmatch(r"\s*(\d+)\s*(m|h)\s*", self.every or "")
        if not match:
            return None
        return int(match.group(1)) * (60 if match.group(2) == "h" else 1) or None


class PortfolioSection(_Section):
    """``[portfolio]``: the starting cash."""

    cash: float = Field(default=100_000.0, gt=0)


class ExecutionSection(_Section):
    """Costs and end-of-day behaviour of the simulated broker (core/execution/broker.py)."""

    commission_per_share: float = Field(default=0.0, ge=0)
    commission_per_order: float = Field(default=0.0, ge=0)
    commission_bps: float = Field(default=0.0, ge=0, le=10_000)  # at most 100% of the traded value
    slippage_bps: float = Field(default=0.0, ge=0, lt=10_000)  # 100% would sell at a price of zero
    flat_at_close: bool = False


UNIVERSE = "universe"


class BenchmarkSection(_Section):
    """``[benchmark]``: buy-and-hold of ``symbol`` over the run's sessions (``"universe"``: an
    equal-weight basket of ``streams.symbols``), to measure the run against."""

    symbol: str | None = None

    @field_validator("symbol")
    @classmethod
    def _symbol_or_universe(cls, value: str | None) -> str | None:
        if value is None or value == UNIVERSE:
            return value
        if not _SYMBOL.match(value):
            raise ValueError(f"{value!r} is neither a symbol nor {UNIVERSE!r}")
        return value


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
    benchmark: BenchmarkSection = BenchmarkSection()

    @property
    def intervals(self) -> list[Interval]:
        """The streamed intervals, parsed."""
        return [Interval.parse(label) for label in self.streams.intervals]

    @model_validator(mode="after")
    def _checks_across_sections(self) -> SessionConfig:
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
