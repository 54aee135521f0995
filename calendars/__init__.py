"""Trading calendars, the simulated clock and time units and formats (``calendars.timefmt``).

The only importer of exchange_calendars.
"""

from calendars.clock import ClockError, SimClock
from calendars.errors import CalendarError, DateOutOfBounds, UnknownExchange
from calendars.intervals import NS_PER_MINUTE, NS_PER_SECOND, Interval
from calendars.intervals import SUPPORTED as SUPPORTED_INTERVALS
from calendars.trading_calendar import SessionPlan, TradingCalendar, exchange_names, history_grid

__all__ = [
    "NS_PER_MINUTE",
    "NS_PER_SECOND",
    "SUPPORTED_INTERVALS",
    "CalendarError",
    "ClockError",
    "DateOutOfBounds",
    "Interval",
    "SessionPlan",
    "SimClock",
    "TradingCalendar",
    "UnknownExchange",
    "exchange_names",
    "history_grid",
]
