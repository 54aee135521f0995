"""Trading calendars and the simulated clock (the only importer of exchange_calendars)."""

from calendars.clock import ClockError, SimClock
from calendars.errors import CalendarError, DateOutOfBounds, UnknownExchange
from calendars.intervals import SUPPORTED as SUPPORTED_INTERVALS
from calendars.intervals import Interval
from calendars.trading_calendar import SessionPlan, TradingCalendar, exchange_names, history_grid

__all__ = [
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
