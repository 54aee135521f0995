"""A BarBlock holds its bars once: ``open`` .. ``volume`` are views of its ``[5, n, k]`` ``ohlcv``.

After every operation that makes or changes a block, each field shares memory with the
matching row of ``ohlcv`` and holds the same values, so no field can go stale (the bug this
pins: a widened block kept an old ``ohlcv`` beside new field arrays). Expected values are
written by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from calendars import Interval
from core.data.store import BarRows
from core.model.bars import FIELDS, BarBlock, concat_blocks, derive_block

M1 = Interval.parse("1m")
M2 = Interval.parse("2m")
MINUTE = 60_000_000_000
STARTS = np.arange(4, dtype=np.int64) * MINUTE
ENDS = STARTS + MINUTE


def assert_fields_are_views(block: BarBlock) -> None:
    assert block.ohlcv.shape == (len(FIELDS), block.rows, block.width)
    for i, name in enumerate(FIELDS):
        field = getattr(block, name)
        assert np.shares_memory(field, block.ohlcv[i]), name
        np.testing.assert_array_equal(field, block.ohlcv[i], err_msg=name)


def rows(symbol: list[int], minute: list[int], close: list[float]) -> BarRows:
    """Stored rows with open = close - 1, high = close + 1, low = close - 2, volume = 10 * close."""
    c = np.asarray(close, dtype=np.float64)
    return BarRows(
        np.asarray(symbol, dtype=np.int32),
        np.asarray(minute, dtype=np.int64) * MINUTE,
        c - 1,
        c + 1,
        c - 2,
        c,
        c * 10,
    )


@pytest.fixture
def full() -> BarBlock:
    """Two columns; column 0 has bars at minutes 0, 1, 3, column 1 at minutes 1, 2."""
    block, off_grid = BarBlock.from_rows(
        M1, STARTS, ENDS, rows([0, 0, 1, 1, 0], [0, 1, 1, 2, 3], [10, 11, 20, 21, 13]), 2
    )
    assert off_grid == 0
    return block


def test_empty():
    block = BarBlock.empty(M1, STARTS, ENDS, 3)
    assert_fields_are_views(block)
    assert np.isnan(block.ohlcv).all() and not block.present.any()


def test_from_rows(full):
    assert_fields_are_views(full)
    np.testing.assert_array_equal(full.close, [[10, np.nan], [11, 20], [np.nan, 21], [13, np.nan]])
    np.testing.assert_array_equal(full.volume[:, 1], [np.nan, 200, 210, np.nan])


def test_on_fields_holds_the_array_itself():
    ohlcv = np.zeros((5, 4, 2))
    block = BarBlock.on_fields(M1, STARTS, ENDS, ohlcv, np.ones((4, 2), bool))
    assert block.ohlcv is ohlcv
    assert_fields_are_views(block)


def test_on_fields_refuses_an_array_of_another_shape():
    with pytest.raises(ValueError, match=r"needs ohlcv of shape \(5, 4, 2\)"):
        BarBlock.on_fields(M1, STARTS, ENDS, np.zeros((5, 4, 3)), np.ones((4, 2), bool))


def test_slice_rows(full):
    part = full.slice_rows(1, 3)
    assert_fields_are_views(part)
    assert np.shares_memory(part.ohlcv, full.ohlcv)  # a view: no copy
    np.testing.assert_array_equal(part.close, [[11, 20], [np.nan, 21]])


def test_take_columns(full):
    taken = full.take_columns([1, 0])
    assert_fields_are_views(taken)
    np.testing.assert_array_equal(taken.close[1], [20, 11])
    np.testing.assert_array_equal(taken.duplicates, [0, 0])


def test_add_empty_column(full):
    full.add_column()
    assert_fields_are_views(full)
    assert full.width == 3
    assert np.isnan(full.ohlcv[:, :, 2]).all() and not full.present[:, 2].any()
    np.testing.assert_array_equal(full.duplicates, [0, 0, 0])


def test_add_column_from_a_source(full):
    source, _ = BarBlock.from_rows(M1, STARTS, ENDS, rows([0, 1], [2, 2], [30, 40]), 2)
    full.add_column(source, 1)
    assert_fields_are_views(full)
    np.testing.assert_array_equal(full.close[:, 2], [np.nan, np.nan, 40, np.nan])
    np.testing.assert_array_equal(full.present[:, 2], [False, False, True, False])


def test_drop_column(full):
    full.drop_column(0)
    assert_fields_are_views(full)
    np.testing.assert_array_equal(full.close[:, 0], [np.nan, 20, 21, np.nan])
    assert full.present.shape == (4, 1)


def test_reveal_one_row_and_several(full):
    target = BarBlock.empty(M1, STARTS, ENDS, 2)
    target.reveal(full, 1)
    assert_fields_are_views(target)
    target.reveal(full, 4)
    assert_fields_are_views(target)
    np.testing.assert_array_equal(target.ohlcv, full.ohlcv)
    assert target.filled == 4


def test_reveal_into_a_widened_block_copies_every_field(full):
    """The old two-representation block dropped its ohlcv on widening; reveal then took another path."""
    target = BarBlock.empty(M1, STARTS, ENDS, 1)
    target.reveal(full.take_columns([0]), 1)
    target.add_column()
    assert_fields_are_views(target)
    target.reveal(full, 4)
    np.testing.assert_array_equal(target.close[1:], [[11, 20], [np.nan, 21], [13, np.nan]])
    np.testing.assert_array_equal(target.close[0], [10, np.nan])  # revealed before the widening


def test_concat_blocks(full):
    joined = concat_blocks([full.slice_rows(0, 2), full.slice_rows(2, 4)])
    assert_fields_are_views(joined)
    np.testing.assert_array_equal(joined.ohlcv, full.ohlcv)
    assert_fields_are_views(concat_blocks([full]))


def test_derive_block(full):
    derived = derive_block(full, M2, STARTS[::2], STARTS[::2] + 2 * MINUTE)
    assert_fields_are_views(derived)
    np.testing.assert_array_equal(derived.open, [[9, 19], [12, 20]])
    np.testing.assert_array_equal(derived.close, [[11, 20], [13, 21]])
    np.testing.assert_array_equal(derived.high, [[12, 21], [14, 22]])
    np.testing.assert_array_equal(derived.volume, [[210, 200], [130, 210]])


def test_a_write_through_a_field_is_a_write_into_ohlcv(full):
    full.close[0, 0] = 99.0
    assert full.ohlcv[3, 0, 0] == 99.0


def test_assigning_a_field_copies_into_ohlcv(full):
    """The stale-block bug: ``block.close = array`` used to rebind the field beside the old ohlcv."""
    before = full.ohlcv
    full.close = np.full((4, 2), 7.0)
    assert full.ohlcv is before
    assert_fields_are_views(full)
    np.testing.assert_array_equal(full.ohlcv[3], np.full((4, 2), 7.0))


def test_assigning_a_field_of_another_width_is_refused(full):
    with pytest.raises(ValueError, match=r"BarBlock.close is \[n, k\] = \(4, 2\), not \(4, 3\)"):
        full.close = np.zeros((4, 3))
    assert_fields_are_views(full)
