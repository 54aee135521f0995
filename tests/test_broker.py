"""Fill rules against hand-worked examples (core/execution/broker.py), bar by bar as the strategy
manager hands bars to the broker, then through whole runs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from calendars import Interval
from cli.app import app
from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from core.errors import SessionError
from core.execution.broker import Broker, Costs, Fill, Portfolio
from core.model.bars import BarBlock
from tests.conftest import write_config

M = 60_000_000_000
ONE_MINUTE = Interval.parse("1m")


def broker(cash=10_000.0, **costs) -> Broker:
    return Broker(Portfolio(cash=cash), Costs(**costs))


def bar_ends(b: Broker, start_ns: int, end_ns: int, o: float, h: float, low: float, c: float) -> list[Fill]:
    """A bar of AAA ``[start_ns, end_ns)`` ends: hand it to the broker the way the strategy
    manager does (one row of a block, a column per symbol) and return the fills it made."""
    ohlcv = np.array([o, h, low, c, 10.0], dtype=np.float64).reshape(5, 1, 1)
    block = BarBlock.on_fields(
        ONE_MINUTE,
        np.array([start_ns], dtype=np.int64),
        np.array([end_ns], dtype=np.int64),
        ohlcv,
        np.ones((1, 1), dtype=bool),
        filled=1,
    )
    before = len(b.fills)
    hit = b.on_row(block, 0, {"AAA": 0})
    fills = b.fills[before:]
    assert hit == [0] * len(fills)  # the column of each fill
    return fills


def test_market_fills_at_the_next_bar_open_not_an_earlier_bar():
    b = broker()
    b.submit("AAA", "buy", 10, now_ns=5 * M)
    assert bar_ends(b, 4 * M, 5 * M, 99.0, 101.0, 98.0, 100.0) == []  # started before the order
    (fill,) = bar_ends(b, 5 * M, 6 * M, 100.5, 101.0, 100.0, 100.8)
    assert (fill.price, fill.bar_ns, fill.ts_ns) == (100.5, 5 * M, 6 * M)
    assert b.portfolio.cash == 10_000.0 - 1005.0
    assert b.portfolio.position("AAA") == 10


def test_a_symbol_without_a_bar_in_the_row_fills_nothing():
    b = broker()
    b.submit("AAA", "buy", 10, now_ns=0)
    block = BarBlock.on_fields(
        ONE_MINUTE,
        np.array([0], dtype=np.int64),
        np.array([M], dtype=np.int64),
        np.full((5, 1, 2), 100.0),
        np.array([[False, True]]),  # AAA (column 0) has a gap here, BBB a bar
        filled=1,
    )
    assert b.on_row(block, 0, {"AAA": 0, "BBB": 1}) == [] and b.fills == []
    assert [o.status for o in b.portfolio.open_orders] == ["open"]


@pytest.mark.parametrize(
    ("side", "limit", "bar", "price"),
    [
        ("buy", 99.0, (100.0, 100.5, 98.5, 99.5), 99.0),  # low touches: at the limit
        ("buy", 99.0, (98.0, 98.5, 97.0, 98.2), 98.0),  # gap down through it: the better open
        ("buy", 97.0, (100.0, 100.5, 98.5, 99.5), None),  # never reached
        ("sell", 101.0, (100.0, 101.5, 99.5, 101.2), 101.0),
        ("sell", 101.0, (102.0, 102.5, 101.5, 102.2), 102.0),  # gap up: the better open
    ],
)
def test_limit_orders(side, limit, bar, price):
    b = broker()
    b.submit("AAA", side, 10, now_ns=0, type="limit", limit=limit)
    fills = bar_ends(b, 0, M, *bar)
    assert [f.price for f in fills] == ([price] if price is not None else [])


@pytest.mark.parametrize(
    ("side", "stop", "bar", "price"),
    [
        ("buy", 101.0, (100.0, 101.5, 99.5, 101.2), 101.0),  # trades through: at the stop
        ("buy", 101.0, (102.0, 102.5, 101.5, 102.2), 102.0),  # gap up: the worse open
        ("sell", 99.0, (100.0, 100.5, 98.5, 99.5), 99.0),
        ("sell", 99.0, (98.0, 98.5, 97.0, 98.2), 98.0),  # gap down: the worse open
        ("sell", 95.0, (100.0, 100.5, 98.5, 99.5), None),
    ],
)
def test_stop_orders(side, stop, bar, price):
    b = broker()
    b.submit("AAA", side, 10, now_ns=0, type="stop", stop=stop)
    fills = bar_ends(b, 0, M, *bar)
    assert [f.price for f in fills] == ([price] if price is not None else [])


def test_commissions_slippage_and_pnl_to_the_cent():
    b = broker(
        cash=100_000.0,
        commission_per_share=0.01,
        commission_per_order=1.0,
        commission_bps=1.0,
        slippage_bps=10.0,
    )
    b.submit("AAA", "buy", 100, now_ns=0)
    (buy,) = bar_ends(b, 0, M, 50.0, 51.0, 49.0, 50.5)
    # by hand: 50 * 1.001 = 50.05; commission 100*0.01 + 1 + 1e-4 * 100 * 50.05 = 2.5005
    assert buy.price == pytest.approx(50.05, abs=1e-12) and buy.commission == pytest.approx(2.5005, abs=1e-12)
    b.submit("AAA", "sell", 100, now_ns=M)
    (sell,) = bar_ends(b, M, 2 * M, 52.0, 52.5, 51.5, 52.2)
    # 52 * 0.999 = 51.948; commission 1 + 1 + 0.519480 = 2.51948
    assert sell.price == pytest.approx(51.948, abs=1e-12) and sell.commission == pytest.approx(
        2.51948, abs=1e-12
    )
    p = b.portfolio
    realized = round(100 * (51.948 - 50.05) - 2.5005 - 2.51948, 2)  # 184.78
    assert round(p.realized(), 2) == realized == 184.78
    assert round(p.cash, 2) == round(100_000 + realized, 2) and round(p.equity(), 2) == round(p.cash, 2)


def test_partial_close_and_flip_keep_average_prices():
    p = Portfolio(cash=0.0)
    b = Broker(p, Costs())
    for side, qty, price, now in (
        ("buy", 10, 100.0, 0),
        ("buy", 10, 110.0, 1),
        ("sell", 15, 120.0, 2),
        ("sell", 10, 90.0, 3),
    ):
        b.submit("AAA", side, qty, now_ns=now * M)
        bar_ends(b, now * M, (now + 1) * M, price, price, price, price)
    held = p.positions["AAA"]
    # average 105 on 20; sell 15 at 120 -> +225; sell 10 at 90: close 5 (-75), open short 5 at 90
    assert held.realized == pytest.approx(150.0) and held.quantity == -5 and held.average_price == 90.0


def write_day_bars(root, symbol, day, minutes=390, skip=(), base=100.0):
    """Bars with open = base + i/10, high = open + .5, low = open - .5, close = open + .05."""
    start = pd.Timestamp(f"{day} 14:30", tz="UTC")
    rows = [i for i in range(minutes) if i not in skip]
    opens = np.array([base + i / 10 for i in rows])
    return pd.DataFrame(
        {
            "ts": [start + pd.Timedelta(minutes=i) for i in rows],
            "open": opens,
            "high": opens + 0.5,
            "low": opens - 0.5,
            "close": opens + 0.05,
            "volume": np.full(len(rows), 10.0),
        }
    )


def make_store(root, frames):
    for symbol, parts in frames.items():
        frame = pd.concat(parts)
        folder = root / "bars" / "interval=1m" / f"symbol={symbol}"
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pandas(frame, preserve_index=False)
        pq.write_table(
            table.cast(
                pa.schema(
                    [
                        ("ts", pa.timestamp("us", tz="UTC")),
                        *[(c, pa.float64()) for c in ("open", "high", "low", "close", "volume")],
                    ]
                )
            ),
            folder / "x.parquet",
        )
    return root


def toml_value(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return repr(value)


def coordinator_for(tmp_path, store, body, symbols=("AAA",), end="2023-11-24", intervals=("1m",)):
    """A coordinator for ``symbols`` from 2023-11-22 to ``end``, no trailing days, ``body`` appended."""
    path = write_config(
        tmp_path / "c.toml",
        store,
        symbols=list(symbols),
        start="2023-11-22",
        end=end,
        trailing_days=0,
        intervals=list(intervals),
        extra=body,
    )
    return SessionCoordinator(load_config(path))


def scripted(tmp_path, store, orders, symbols=("AAA",), extra="", end="2023-11-24"):
    body = f'[portfolio]\ncash = 100000\n{extra}\n[[strategies]]\nname = "s"\n'
    body += 'class = "tests.strategy_fixtures:Scripted"\n[strategies.params]\n'
    body += f"orders = {toml_value(orders)}\n"
    return coordinator_for(tmp_path, store, body, symbols, end).run()


@pytest.fixture
def store(tmp_path):
    return make_store(
        tmp_path / "store",
        {
            "AAA": [
                write_day_bars(None, "AAA", "2023-11-22"),
                write_day_bars(None, "AAA", "2023-11-24", 210, base=200),
            ],
            "BBB": [
                write_day_bars(None, "BBB", "2023-11-22", skip={5, 6}),
                write_day_bars(None, "BBB", "2023-11-24", 210, base=300),
            ],
        },
    )


def test_run_market_next_open_gap_and_across_the_close(tmp_path, store):
    orders = [
        ["2023-11-22 14:35", "AAA", "buy", 100],  # -> bar 14:35, open 100.5
        ["2023-11-22 14:35", "BBB", "buy", 10],  # BBB has no 14:35 and 14:36 bars -> 14:37, open 100.7
        ["2023-11-22 21:00", "AAA", "sell", 100],  # at the close -> next session's first bar, open 200.0
        ["2023-11-22 21:00", "BBB", "sell", 10, {"cancel_at_close": True}],  # cancelled at the close
    ]
    result = scripted(tmp_path, store, orders, symbols=("AAA", "BBB"))
    fills = [
        (f.symbol, f.side, f.price, pd.Timestamp(f.bar_ns, tz="UTC").strftime("%m-%d %H:%M"))
        for f in result.ledger.fills
    ]
    assert fills == [
        ("AAA", "buy", 100.5, "11-22 14:35"),
        ("BBB", "buy", pytest.approx(100.7), "11-22 14:37"),
        ("AAA", "sell", 200.0, "11-24 14:30"),
    ]
    statuses = {o["id"]: o["status"] for o in result.ledger.orders}
    assert statuses == {1: "filled", 2: "filled", 3: "filled", 4: "cancelled"}
    p = result.portfolio
    assert round(p.cash, 2) == round(100_000 - 100 * 100.5 - 10 * 100.7 + 100 * 200.0, 2)
    # marked at BBB's last close of 11-24: open 300 + 209/10 + .05
    assert round(p.equity(), 2) == round(p.cash + 10 * (300 + 20.9 + 0.05), 2)
    assert result.ledger.daily[0][1] == pytest.approx(
        100_000 - 100 * 100.5 - 10 * 100.7 + 100 * (100 + 38.9 + 0.05) + 10 * (100 + 38.9 + 0.05)
    )


def test_positions_and_cash_cross_days_while_session_data_is_cleared(tmp_path, store):
    from tests import strategy_fixtures

    strategy_fixtures.SEEN.clear()
    result = scripted(tmp_path, store, [["2023-11-22 15:00", "AAA", "buy", 100]])
    ends = strategy_fixtures.SEEN["session_end"]
    assert [e[2] for e in ends] == [100, 100]  # still held on day 2
    assert ends[0][1] == ends[1][1] == pytest.approx(100_000 - 100 * (100 + 3.0))
    assert result.session_data.plan.session.isoformat() == "2023-11-24"
    assert len(result.session_data["AAA"].bars("1m")) == 210  # only day 2's bars: day 1 was cleared


def test_strategy_reading_beyond_the_clock_fails(tmp_path, store, runner):
    for cls, extra in (
        ("Peeks", ""),
        ("PeeksIndicator", '[[indicators]]\nkind = "sma"\ninterval = "5m"\nperiod = 5\n'),
    ):
        body = extra + f'[[strategies]]\nname = "p"\nclass = "tests.strategy_fixtures:{cls}"\n'
        config = write_config(
            tmp_path / f"{cls}.toml",
            store,
            symbols=["AAA"],
            start="2023-11-22",
            end="2023-11-22",
            trailing_days=0,
            intervals=["1m", "5m"],
            extra=body,
        )
        with pytest.raises(SessionError, match="look-ahead"):
            SessionCoordinator(load_config(config)).run()
        result = runner.invoke(app, ["run", str(config), "--results-dir", str(tmp_path / "r")])
        assert result.exit_code == 5 and "look-ahead" in result.stderr


def test_equity_curve_and_ctx_equity_mark_every_position_at_its_last_close(tmp_path, store):
    """Every equity point (and ctx.equity) equals cash + each position at the last close that ended
    by then, recomputed here from the stored bars and the fills; BBB joins at 09:37 New York."""
    from tests import strategy_fixtures

    strategy_fixtures.SEEN.clear()
    orders = [
        ["2023-11-22 14:35", "AAA", "buy", 100],
        ["2023-11-22 14:40", "BBB", "buy", 10],  # BBB is in the session from 14:37
        ["2023-11-22 16:00", "BBB", "sell", 10],
        ["2023-11-24 15:00", "AAA", "sell", 40],
    ]
    body = '[portfolio]\ncash = 100000\n[[insert]]\nsymbol = "BBB"\nat = "09:37"\n'
    body += "[execution]\ncommission_per_order = 1.0\n"
    body += '[[strategies]]\nname = "s"\nclass = "tests.strategy_fixtures:EquityWatch"\n'
    body += f"[strategies.params]\norders = {toml_value(orders)}\n"
    result = coordinator_for(tmp_path, store, body).run()
    assert len(result.ledger.fills) == 4
    reference = equity_reference(store, result.ledger.fills, 100_000.0, ["AAA", "BBB"])

    ledger = result.ledger
    assert len(ledger.curve_ns) == 390 + 210 + 2  # every stop of both days and each close
    for clock, equity in zip(ledger.curve_ns, ledger.curve_equity, strict=True):
        assert equity == pytest.approx(reference(clock), abs=1e-6), pd.Timestamp(clock, tz="UTC")
    seen = strategy_fixtures.SEEN["equity"]
    assert len(seen) > 590
    for clock, equity in seen:
        assert equity == pytest.approx(reference(clock), abs=1e-6), pd.Timestamp(clock, tz="UTC")


def _sine_bars(symbol_period: int, phase: float, base: float) -> pd.DataFrame:
    start = pd.Timestamp("2023-11-22 14:30", tz="UTC")
    i = np.arange(390)
    close = base + 5 * np.sin(2 * np.pi * i / symbol_period + phase)
    return pd.DataFrame(
        {
            "ts": [start + pd.Timedelta(minutes=int(k)) for k in i],
            "open": close,
            "high": close + 0.1,
            "low": close - 0.1,
            "close": close,
            "volume": np.full(390, 10.0),
        }
    )


def test_a_symbol_leaving_mid_session_with_derived_bars_and_a_strategy(tmp_path):
    """A scanner adds BBB and CCC at 09:37 and removes BBB at 10:30, with 5m bars derived:
    the run completes, every block loses the column, SmaCross is told and never trades BBB
    after it left, and every equity point values the BBB position at its last close."""
    from tests import strategy_fixtures

    store = make_store(
        tmp_path / "store",
        {
            "AAA": [_sine_bars(60, 0.0, 100.0)],
            "BBB": [_sine_bars(45, 4.14, 200.0)],  # rising at 10:30: long when it leaves
            "CCC": [_sine_bars(30, 2.0, 300.0)],
        },
    )
    repo = Path(__file__).resolve().parents[1]
    body = (
        '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 3\n'
        '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 8\n'
        '[[indicators]]\nkind = "sma"\ninterval = "5m"\nperiod = 2\n'
        '[[scanners]]\nname = "phased"\nclass = "tests.scanner_fixtures:Phased"\n'
        'at = ["09:37", "10:30"]\nuniverse = ["BBB", "CCC"]\nadd = true\nremove = true\n'
        '[scanners.params]\nearly = ["BBB", "CCC"]\nlate = ["CCC"]\n'
        f'[[strategies]]\nname = "sma"\nclass = "{repo / "sample_configs" / "strategies.py"}:SmaCross"\n'
        '[strategies.params]\nfast = "sma_3@1m"\nslow = "sma_8@1m"\nquantity = 1\n'
    )
    strategy_fixtures.SEEN.clear()
    coordinator = coordinator_for(tmp_path, store, body, end="2023-11-22", intervals=("1m", "5m"))
    result = coordinator.run()
    data = result.session_data
    assert data.symbols == ("AAA", "CCC")
    assert all(data.block(label).width == 2 for label in ("1m", "5m"))
    assert all(block.width == 2 for block in coordinator.queues.derived.values())
    left = pd.Timestamp("2023-11-22 15:30", tz="UTC").value
    removal = [r for r in result.insertions if r["symbol"] == "BBB" and r["status"] == "removed"]
    assert len(removal) == 1 and pd.Timestamp(removal[0]["clock"]).value == left
    orders = result.ledger.orders
    assert not [o for o in orders if o["symbol"] == "BBB" and o["submitted_ns"] >= left]
    assert [o for o in orders if o["symbol"] == "CCC" and o["submitted_ns"] > left]
    # equity: positions at their last close by the clock; BBB's frozen at its close when it left
    symbols = ["AAA", "BBB", "CCC"]
    cash = coordinator.config.portfolio.cash
    reference = equity_reference(store, result.ledger.fills, cash, symbols, {"BBB": left})

    held_bbb = sum(
        (f.quantity if f.side == "buy" else -f.quantity) for f in result.ledger.fills if f.symbol == "BBB"
    )
    assert held_bbb != 0  # the test means something: BBB is still held after it left
    for clock, equity in zip(result.ledger.curve_ns, result.ledger.curve_equity, strict=True):
        assert equity == pytest.approx(reference(clock), abs=1e-6), pd.Timestamp(clock, tz="UTC")


def test_batch_values_are_copies_that_do_not_reach_the_day(tmp_path, store):
    """Indicator and price rows handed to a strategy are its own: writable, sharing no memory
    with SessionData (whose arrays hold bars and values beyond the clock)."""
    from tests import strategy_fixtures

    strategy_fixtures.SEEN.clear()
    body = '[[indicators]]\nkind = "sma"\ninterval = "1m"\nperiod = 5\n'
    body += '[[strategies]]\nname = "s"\nclass = "tests.strategy_fixtures:KeepsRows"\n'
    result = coordinator_for(tmp_path, store, body, symbols=("AAA", "BBB"), end="2023-11-22").run()
    data = result.session_data
    day = [
        data.indicator_values("sma_5@1m").values,
        *(getattr(data.block("1m"), f) for f in ("open", "close")),
    ]
    rows = strategy_fixtures.SEEN["rows"]
    assert len(rows) == 390 and any(len(r[0]) == 1 for r in rows) and any(len(r[0]) == 2 for r in rows)
    for kept in rows:
        for row in kept:
            assert row.flags.writeable
            assert not any(np.shares_memory(row, array) for array in day)


def equity_reference(store, fills, cash, symbols, left=None):
    """clock -> cash + each position at the close of its last bar ended by then (by the time it
    left the session, for the symbols in ``left``), recomputed from the stored bars and the fills."""
    frames = {
        s: pd.read_parquet(store / "bars" / "interval=1m" / f"symbol={s}").sort_values("ts") for s in symbols
    }
    ends = {  # each bar's end, UTC ns
        s: f["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype(np.int64) + 60_000_000_000
        for s, f in frames.items()
    }

    def at(clock: int) -> float:
        value, held = cash, dict.fromkeys(symbols, 0.0)
        for fill in fills:
            if fill.ts_ns <= clock:
                signed = fill.quantity if fill.side == "buy" else -fill.quantity
                value -= signed * fill.price + fill.commission
                held[fill.symbol] += signed
        for symbol, quantity in held.items():
            if quantity:
                until = min(clock, (left or {}).get(symbol, clock))
                last = np.searchsorted(ends[symbol], until, side="right") - 1
                value += quantity * float(frames[symbol]["close"].iloc[last])
        return value

    return at
