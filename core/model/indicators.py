"""Indicators: TA-Lib for the math, session-anchored helpers of our own.

Each configured indicator is computed once per session, vectorised, over the
trailing history of its interval followed by the day's bars (the same
aggregation path live bars take), then revealed by the interval's cursor: a
value is visible only once its bar has ended.  TA-Lib functions are causal,
so the value of a bar never depends on a later bar; the values are what an
O(1)-per-bar update would have produced.

Keys (CONTRACT.md): ``<kind>_<period>@<interval>``, ``<kind>@<interval>`` for
parameterless kinds, ``.<output>`` for multi-output kinds.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import talib
from talib import abstract

from calendars import NS_PER_MINUTE
from core.model.bars import FIELDS, BarBlock


@dataclass(frozen=True, slots=True)
class Kind:
    """What one indicator kind needs and gives."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ("",)  # "" = the single output
    function: str | None = None  # TA-Lib function; None: computed here
    default_period: int | None = None
    description: str = ""


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("sma", ("close",), function="SMA", default_period=20, description="simple moving average"),
        Kind("ema", ("close",), function="EMA", default_period=20, description="exponential MA"),
        Kind("wma", ("close",), function="WMA", default_period=20, description="weighted MA"),
        Kind("rsi", ("close",), function="RSI", default_period=14, description="RSI (Wilder)"),
        Kind("atr", ("high", "low", "close"), function="ATR", default_period=14, description="ATR (Wilder)"),
        Kind("adx", ("high", "low", "close"), function="ADX", default_period=14, description="ADX"),
        Kind("cci", ("high", "low", "close"), function="CCI", default_period=20, description="CCI"),
        Kind(
            "willr", ("high", "low", "close"), function="WILLR", default_period=14, description="Williams %R"
        ),
        Kind("mfi", ("high", "low", "close", "volume"), function="MFI", default_period=14, description="MFI"),
        Kind("roc", ("close",), function="ROC", default_period=10, description="rate of change, %"),
        Kind("mom", ("close",), function="MOM", default_period=10, description="momentum"),
        Kind(
            "bbands",
            ("close",),
            ("upper", "middle", "lower"),
            function="BBANDS",
            default_period=20,
            description="Bollinger bands (nbdev, default 2)",
        ),
        Kind(
            "macd",
            ("close",),
            ("macd", "signal", "hist"),
            function="MACD",
            description="MACD (fast 12, slow 26, signal 9)",
        ),
        Kind(
            "stoch",
            ("high", "low", "close"),
            ("k", "d"),
            function="STOCH",
            default_period=5,
            description="slow stochastic (period = fast %K, k = slow %K, d = %D)",
        ),
        Kind("obv", ("close", "volume"), function="OBV", description="on-balance volume"),
        Kind("vwap", ("high", "low", "close", "volume"), description="session VWAP of (h+l+c)/3"),
        Kind("hod", ("high",), description="high of day so far"),
        Kind("lod", ("low",), description="low of day so far"),
        Kind("orh", ("high",), default_period=30, description="opening-range high over N minutes"),
        Kind("orl", ("low",), default_period=30, description="opening-range low over N minutes"),
        Kind(
            "rvol",
            ("volume",),
            default_period=5,
            description="relative volume: cumulative volume vs the same time of day, N sessions",
        ),
    )
}


def unknown_kind_hint(kind: str) -> str:
    close = difflib.get_close_matches(kind, list(KINDS), n=1)
    listed = ", ".join(KINDS)
    return f"did you mean {close[0]!r}? kinds: {listed}" if close else f"kinds: {listed}"


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    """One configured indicator, fully parameterised."""

    kind: str
    interval: str
    period: int | None = None
    fast: int = 12
    slow: int = 26
    signal: int = 9
    nbdev: float = 2.0
    k: int = 3
    d: int = 3

    @property
    def spec(self) -> Kind:
        return KINDS[self.kind]

    @property
    def base_key(self) -> str:
        if self.kind == "macd":
            return f"macd_{self.fast}_{self.slow}_{self.signal}@{self.interval}"
        if self.kind == "stoch":
            return f"stoch_{self.period}_{self.k}_{self.d}@{self.interval}"
        if self.kind == "bbands" and self.nbdev != 2.0:
            return f"bbands_{self.period}_{self.nbdev:g}@{self.interval}"
        if self.period is None:
            return f"{self.kind}@{self.interval}"
        return f"{self.kind}_{self.period}@{self.interval}"

    @property
    def keys(self) -> list[str]:
        outputs = self.spec.outputs
        if outputs == ("",):
            return [self.base_key]
        return [f"{self.base_key}.{name}" for name in outputs]

    @property
    def lookback(self) -> int:
        """Bars of input needed before the first value (TA-Lib's lookback; ours for helpers)."""
        return _lookback(self)

    def _talib_parameters(self) -> dict[str, float | int]:
        if self.kind == "macd":
            return {"fastperiod": self.fast, "slowperiod": self.slow, "signalperiod": self.signal}
        if self.kind == "stoch":
            return {"fastk_period": self.period or 5, "slowk_period": self.k, "slowd_period": self.d}
        if self.kind == "bbands":
            return {"timeperiod": self.period or 20, "nbdevup": self.nbdev, "nbdevdn": self.nbdev}
        if self.kind == "obv":
            return {}
        return {"timeperiod": self.period or 14}


@functools.cache
def _lookback(definition: IndicatorDef) -> int:
    if definition.spec.function is None:
        return 0
    function = abstract.Function(definition.spec.function)  # type: ignore[attr-defined]
    function.parameters = definition._talib_parameters()
    return int(function.lookback)


@functools.cache
def _talib_call(
    definition: IndicatorDef,
) -> tuple[Callable[..., np.ndarray | tuple[np.ndarray, ...]], dict[str, float | int]]:
    """The TA-Lib function and its keyword arguments (looked up once per definition)."""
    assert definition.spec.function is not None
    return getattr(talib, definition.spec.function), definition._talib_parameters()


@dataclass(slots=True)
class IndicatorValues:
    """Today's values of one indicator output: one row per bar of its interval, a column per symbol."""

    key: str
    interval: str
    values: np.ndarray  # float64 [rows, symbols]; NaN where no bar or not ready


@dataclass(frozen=True, slots=True)
class SymbolInputs:
    """One symbol's input series for an interval: trailing history then today's bars."""

    series: dict[str, np.ndarray]  # field -> values, oldest first
    history: int  # how many of them are history
    rows: np.ndarray  # today's block rows the remaining values belong to


def symbol_inputs(
    history: BarBlock | None, today: BarBlock, fields: tuple[str, ...] = FIELDS
) -> list[SymbolInputs]:
    """Per symbol column, the concatenated history + today series of ``fields`` (what TA-Lib reads)."""
    past = _split_columns(history, fields) if history is not None else None
    now = _split_columns(today, (*fields, "rows"))
    out = []
    for j in range(today.width):
        series = {
            name: np.concatenate([past[name][j], now[name][j]]) if past is not None else now[name][j]
            for name in fields
        }
        before = len(past["rows"][j]) if past is not None else 0
        out.append(SymbolInputs(series, before, now["rows"][j]))
    return out


def _split_columns(block: BarBlock, fields: tuple[str, ...]) -> dict[str, list[np.ndarray]]:
    """Each field's present values, compacted per symbol column in one gather ("rows": their rows)."""
    columns, rows = np.nonzero(block.present.T)  # sorted by column, then row
    bounds = np.concatenate([[0], np.cumsum(np.bincount(columns, minlength=block.width))]).tolist()
    spans = list(zip(bounds[:-1], bounds[1:], strict=True))
    split: dict[str, list[np.ndarray]] = {"rows": [rows[a:b] for a, b in spans]}
    for name in fields:
        if name != "rows":
            values = getattr(block, name)[rows, columns]
            split[name] = [values[a:b] for a, b in spans]
    return split


def compute_day(
    definition: IndicatorDef,
    history: BarBlock | None,
    today: BarBlock,
    session_history: list[BarBlock] | None = None,
    inputs: list[SymbolInputs] | None = None,
    regular: tuple[int, int] | None = None,
) -> list[IndicatorValues]:
    """Every output of ``definition`` for every symbol over one session.

    ``session_history``: the trailing sessions one by one (for rvol); ``regular``: today's
    ``[open, close)`` in UTC ns (rvol compares regular hours only; default: the whole block).
    """
    outputs = [np.full((today.rows, today.width), np.nan) for _ in definition.keys]
    if definition.spec.function is not None:
        function, parameters = _talib_call(definition)
        names = definition.spec.inputs
        for j, mine in enumerate(inputs if inputs is not None else symbol_inputs(history, today)):
            if not mine.rows.size:
                continue
            args = [np.ascontiguousarray(mine.series[name], dtype=np.float64) for name in names]
            result = function(*args, **parameters)
            for out, values in zip(outputs, result if isinstance(result, tuple) else (result,), strict=True):
                out[mine.rows, j] = values[mine.history :]
    else:
        _session_helper(definition, today, outputs, session_history or [], regular)
    return [
        IndicatorValues(key, definition.interval, out)
        for key, out in zip(definition.keys, outputs, strict=True)
    ]


def _session_helper(
    definition: IndicatorDef,
    today: BarBlock,
    outputs: list[np.ndarray],
    sessions: list[BarBlock],
    regular: tuple[int, int] | None,
) -> None:
    present = today.present
    out = outputs[0]
    if definition.kind == "vwap":
        typical = (today.high + today.low + today.close) / 3.0
        weight = np.where(present, today.volume, 0.0)
        pv = np.cumsum(np.where(present, typical * weight, 0.0), axis=0)
        volume = np.cumsum(weight, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:] = np.where(present & (volume > 0), pv / volume, np.nan)
    elif definition.kind in ("hod", "lod"):
        field_ = today.high if definition.kind == "hod" else today.low
        running = (np.fmax if definition.kind == "hod" else np.fmin).accumulate(field_, axis=0)
        out[:] = np.where(present, running, np.nan)
    elif definition.kind in ("orh", "orl"):
        minutes = definition.period or 30
        if not today.rows:
            return
        range_end = int(today.starts[0]) + minutes * NS_PER_MINUTE
        in_range = today.ends <= range_end
        field_ = today.high if definition.kind == "orh" else today.low
        extreme = (np.fmax if definition.kind == "orh" else np.fmin).reduce(
            np.where(in_range[:, None], field_, np.nan), axis=0
        )
        done = today.ends >= range_end  # known once the range has ended
        out[:] = np.where(present & done[:, None], extreme[None, :], np.nan)
    elif definition.kind == "rvol" and today.rows:
        hours = regular or (int(today.starts[0]), int(today.ends[-1]))
        _relative_volume(today, sessions[-(definition.period or 5) :], hours, out)


def _relative_volume(
    today: BarBlock, sessions: list[BarBlock], regular: tuple[int, int], out: np.ndarray
) -> None:
    """Cumulative volume since the open over its mean at the same time into the trailing sessions.

    Each trailing session counts on its own (sessions come from the calendar, so a lunch
    break does not halve one and back-to-back sessions do not merge): its cumulative
    volume over the bars that ended within the same time since its open as today's bar.
    Defined on today's regular-hours bars only (the history is regular hours).
    """
    if not sessions:
        return
    open_ns, close_ns = regular
    in_hours = ((today.starts >= open_ns) & (today.starts < close_ns))[:, None]
    present = today.present & in_hours
    cumulative = np.cumsum(np.where(present, today.volume, 0.0), axis=0)
    elapsed = today.ends - open_ns
    past = []
    for block in sessions:
        volume = np.where(block.present, block.volume, 0.0)
        running = np.vstack([np.zeros((1, block.width)), np.cumsum(volume, axis=0)])
        due = np.searchsorted(block.ends - block.starts[0], elapsed, side="right")
        past.append(running[due])
    mean = np.mean(past, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:] = np.where(present & (mean > 0), cumulative / mean, np.nan)
