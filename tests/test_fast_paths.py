"""The shortcuts taken for speed give exactly what the plain paths give.

- BarBlock keeps open..volume as views of one [5, n, k] array (one copy reveals a row of
  every field) and drops that array whenever a field becomes an array of its own;
- the loader builds the next day's history from today's block instead of the rows;
- validation counts the data's coverage from the run's first read instead of a query.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from calendars import Interval
from core.data.loader import DayLoader
from core.data.store import ParquetStore
from core.model.bars import FIELDS, BarBlock, concat_blocks
from tests.conftest import SAMPLE_SYMBOLS, xnys

M1 = Interval.parse("1m")


def _loader(store: ParquetStore, sessions: list[dt.date], trailing: int, **kwargs) -> DayLoader:
    return DayLoader(store, xnys(), M1, SAMPLE_SYMBOLS, sessions, trailing, False, **kwargs)


def _same(a: BarBlock, b: BarBlock, duplicates: bool = True) -> None:
    np.testing.assert_array_equal(a.starts, b.starts)
    np.testing.assert_array_equal(a.ends, b.ends)
    for name in (*FIELDS, "present"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.filled == b.filled
    if duplicates:
        np.testing.assert_array_equal(a.duplicates, b.duplicates)


def _fields_are_views(block: BarBlock) -> None:
    assert block.ohlcv is not None
    for i, name in enumerate(FIELDS):
        assert np.shares_memory(block.ohlcv[i], getattr(block, name)), name
        np.testing.assert_array_equal(block.ohlcv[i], getattr(block, name))


@pytest.mark.parametrize("trailing", [1, 2, 3])
@pytest.mark.parametrize("row_budget", [3_000, 1_500_000])  # several chunks of days, or one
def test_history_from_the_previous_days_blocks_equals_history_from_the_rows(sample_dir, trailing, row_budget):
    store = ParquetStore(sample_dir)
    sessions = xnys().sessions_in_range(dt.date(2023, 11, 1), dt.date(2023, 11, 30))
    cached = _loader(store, sessions, trailing, row_budget=row_budget)
    plain = _loader(store, sessions, trailing, row_budget=row_budget)
    reused = 0
    for session in sessions:
        reused += all(day in cached._recent for day in cached.trailing_sessions(session))
        got = cached.history(session)
        plain._recent.clear()
        _same(got, plain.history(session))
        cached.day(session)
        _same(cached.day(session), plain.day(session))
    assert reused >= len(sessions) - trailing  # the shortcut was taken
    store.close()


def test_coverage_counted_from_the_last_read_equals_the_query(sample_dir):
    calendar = xnys()
    plans = [
        calendar.plan(s) for s in calendar.sessions_in_range(dt.date(2023, 11, 20), dt.date(2023, 11, 28))
    ]
    windows = [(p.open_ns, p.close_ns) for p in plans]
    wanted = ["TLT", "MSFT"]  # a subset, in another order than the read's
    plain = ParquetStore(sample_dir)
    expected = plain.count_in_windows(M1, wanted, windows)
    store = ParquetStore(sample_dir)
    store.read_bars(M1, SAMPLE_SYMBOLS, plans[0].bounds_ns(True)[0] - 86_400_000_000_000, windows[-1][1])
    assert store.last_read.covers(M1, wanted, windows[0][0], windows[-1][1])  # no query
    np.testing.assert_array_equal(store.count_in_windows(M1, wanted, windows), expected)
    assert expected.sum() > 0
    # a read that ends before the last window: counted by the query, same answer
    store.read_bars(M1, SAMPLE_SYMBOLS, windows[0][0], windows[-2][1])
    assert not store.last_read.covers(M1, wanted, windows[0][0], windows[-1][1])
    np.testing.assert_array_equal(store.count_in_windows(M1, wanted, windows), expected)
    plain.close()
    store.close()
    assert store.last_read is None  # closing forgets the rows


def test_blocks_keep_their_fields_as_views_of_one_array_or_none(sample_dir):
    loader = _loader(ParquetStore(sample_dir), [dt.date(2023, 11, 22)], 2)
    day = loader.day(dt.date(2023, 11, 22))
    history = loader.history(dt.date(2023, 11, 22))
    for block in (
        day,
        history,
        day.take_columns([2, 0]),
        day.slice_rows(10, 50),
        concat_blocks(history.sessions()),
        BarBlock.empty(M1, day.starts, day.ends, 3),
    ):
        _fields_are_views(block)
    _same(concat_blocks(history.sessions()), history, duplicates=False)  # (slices carry no duplicates)
    # revealed one row at a time (the fast path) or all at once: the same block
    one_by_one = BarBlock.empty(M1, day.starts, day.ends, day.width)
    for row in range(day.rows):
        one_by_one.reveal(day, row + 1)
    at_once = BarBlock.empty(M1, day.starts, day.ends, day.width)
    at_once.reveal(day, day.rows)
    _same(one_by_one, at_once)
    _same(at_once, day, duplicates=False)
    # a widened block keeps one 3-D array its fields are views of (none goes stale); reveal still copies
    wide = BarBlock.empty(M1, day.starts, day.ends, day.width)
    wide.reveal(day, 5)
    wide.add_column()
    _fields_are_views(wide)
    source = day.take_columns([0, 1, 2])
    source.add_column(day, 1)
    wide.reveal(source, day.rows)
    _same(wide.slice_rows(5, day.rows), source.slice_rows(5, day.rows))
    wide.drop_column(3)
    _fields_are_views(wide)
    assert wide.width == 3


@pytest.mark.parametrize("more_history", [0, 2])
def test_a_loader_taking_over_rows_already_read_equals_one_reading_them(sample_dir, more_history):
    """Validation's first read handed to the run's loader: used whole (no query), or with the
    sessions before it that scanners also read queried alone; the same blocks either way."""
    sessions = xnys().sessions_in_range(dt.date(2023, 11, 20), dt.date(2023, 11, 28))
    store = ParquetStore(sample_dir)
    _loader(store, sessions, 1).prefetch()
    first = store.last_read
    trailing = 1 + more_history
    taker = _loader(store, sessions, trailing, kept_days=1, first_read=first)
    plain = _loader(ParquetStore(sample_dir), sessions, trailing, kept_days=1)
    for session in sessions:
        _same(taker.history(session), plain.history(session))
        _same(taker.trim(taker.history(session)), plain.trim(plain.history(session)))
        _same(taker.day(session), plain.day(session))
    assert (store.last_read is first) == (more_history == 0)  # no query of its own when whole
    store.close()
