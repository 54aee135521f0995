"""The session config: TOML file, then ``BACKTEST_*`` environment, then command line.

- ``models``: the frozen section models and :class:`SessionConfig` with its cross-field checks;
- ``loading``: :func:`load_config` (file -> environment -> flags) and :func:`config_from_json`;
- ``environment``: the ``BACKTEST_*`` variables as a layer of settings;
- ``layers``: laying a layer over the file and remembering who set each value;
- ``messages``: validation errors naming ``file.toml:LINE``, the variable or the flag;
- ``schema``: what the schema holds at a place of the config.

Import the names below from ``core.config``; the modules are its inside.
"""

from core.config.environment import DATA_DIR_VARIABLE, ELSEWHERE, PREFIX
from core.config.layers import Setting
from core.config.loading import config_from_json, load_config, read_config_file
from core.config.models import _SYMBOL as _SYMBOL  # tests/test_store_faults.py: config shares the rule
from core.config.models import (
    MAX_DAYS,
    MAX_PERIOD,
    MAX_TRAILING_DAYS,
    SCANNER_KINDS,
    UNIVERSE,
    BenchmarkSection,
    DataSection,
    ExecutionSection,
    HistoricalSection,
    IndicatorSpec,
    InsertSpec,
    PortfolioSection,
    QualitySection,
    ScannerSpec,
    SessionConfig,
    SessionSection,
    StrategySpec,
    StreamsSection,
)
from core.config.placeholders import placeholders_in

__all__ = [
    "Setting",
    "placeholders_in",
    "DATA_DIR_VARIABLE",
    "ELSEWHERE",
    "MAX_DAYS",
    "MAX_PERIOD",
    "MAX_TRAILING_DAYS",
    "PREFIX",
    "SCANNER_KINDS",
    "UNIVERSE",
    "BenchmarkSection",
    "DataSection",
    "ExecutionSection",
    "HistoricalSection",
    "IndicatorSpec",
    "InsertSpec",
    "PortfolioSection",
    "QualitySection",
    "ScannerSpec",
    "SessionConfig",
    "SessionSection",
    "StrategySpec",
    "StreamsSection",
    "config_from_json",
    "load_config",
    "read_config_file",
]
