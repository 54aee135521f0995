"""The per-day flow of DESIGN.md, proved on the coordinator itself."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from core.config import load_config
from core.engine.coordinator import SessionCoordinator
from core.events import PhaseFinished, PhaseStarted, RunStarted
from core.lifecycle import Component
from tests.conftest import write_config

D = dt.date


def utc(text: str) -> int:
    return pd.Timestamp(text, tz="UTC").value


class Recorder(Component):
    """Logs every lifecycle call with the session SessionData holds at that moment."""

    name = "recorder"

    def __init__(self, coordinator_ref: list[SessionCoordinator], log: list[tuple]) -> None:
        super().__init__()
        self._ref = coordinator_ref
        self.log = log

    def _where(self) -> tuple:
        data = self._ref[0].session_data
        return (data.plan.session if data.plan else None, len(data))

    def _on_teardown(self) -> None:
        self.log.append(("teardown", *self._where()))

    def _on_setup(self) -> None:
        self.log.append(("setup", *self._where()))

    def _on_session_end(self) -> None:
        self.log.append(("on_session_end", *self._where()))


def _coordinator(tmp_path, data_dir, **kwargs):
    config = load_config(write_config(tmp_path / "c.toml", data_dir, **kwargs))
    log: list[tuple] = []
    ref: list[SessionCoordinator] = []
    events: list = []
    coordinator = SessionCoordinator(
        config, components=[Recorder(ref, log)], on_event=lambda e: events.append((e, _state(ref)))
    )
    ref.append(coordinator)
    return coordinator, log, events


def _state(ref):
    c = ref[0]
    data = c.session_data
    bars = sum(len(data[s].bars("1m")) for s in data.symbols) if data.plan and "1m" in data.intervals else 0
    return {
        "session": data.plan.session if data.plan else None,
        "symbols": len(data),
        "bars": bars,
        "clock": c.clock.now_ns if c.clock.is_set else None,
        "active": data.active,
    }


def test_lifecycle_order_per_day(tmp_path, sample_dir):
    coordinator, log, _ = _coordinator(tmp_path, sample_dir)
    coordinator.run()
    days = [D(2023, 11, 22), D(2023, 11, 24), D(2023, 11, 27), D(2023, 11, 28)]
    # SessionData is cleared before the components are torn down (PHASE 1), loaded before
    # setup (PHASE 2) and still full at on_session_end (PHASE 4).
    expected = []
    for day in days:
        expected += [("teardown", None, 0), ("setup", day, 2), ("on_session_end", day, 2)]
    assert log == expected


def test_data_kept_after_phase4_and_cleared_only_in_next_phase1(tmp_path, sample_dir):
    coordinator, _, events = _coordinator(tmp_path, sample_dir)
    result = coordinator.run()
    by_key = {
        (type(e).__name__, e.day_index, e.phase): state
        for e, state in events
        if isinstance(e, PhaseStarted | PhaseFinished)
    }
    for n, day in enumerate(result.days):
        after_end = by_key[("PhaseFinished", n, 4)]
        assert after_end["session"] == day.session and after_end["symbols"] == 2
        assert after_end["bars"] == day.bars > 0
        assert after_end["active"] is False
        if n + 1 < len(result.days):
            before_teardown = by_key[("PhaseStarted", n + 1, 1)]
            assert before_teardown == after_end  # nothing happened between the two days
            after_teardown = by_key[("PhaseFinished", n + 1, 1)]
            assert after_teardown["session"] is None and after_teardown["symbols"] == 0
    # the last day survives the run
    data = result.session_data
    assert data.plan.session == D(2023, 11, 28)
    assert sum(len(data[s].bars("1m")) for s in data.symbols) == result.days[-1].bars


# final clock, first clock -- written by hand from the NYSE hours (UTC)
CLOCK_CASES = [
    ("2023-11-22", "2023-11-22 14:30", "2023-11-22 21:00"),
    ("2023-11-24", "2023-11-24 14:30", "2023-11-24 18:00"),  # early close
    ("2023-11-03", "2023-11-03 13:30", "2023-11-03 20:00"),  # EDT
    ("2023-11-06", "2023-11-06 14:30", "2023-11-06 21:00"),  # EST
]


@pytest.mark.parametrize("clock_mode", ["data", "clock"])
@pytest.mark.parametrize(("day", "open_", "close"), CLOCK_CASES)
def test_clock_at_open_after_phase1_and_exactly_at_close(
    tmp_path, sample_dir, monkeypatch, day, open_, close, clock_mode
):
    coordinator, _, events = _coordinator(tmp_path, sample_dir, start=day, end=day, clock=clock_mode)
    seen: list[int] = []
    original = coordinator.clock.advance_to

    def recording_advance(ts_ns: int) -> None:
        seen.append(ts_ns)
        original(ts_ns)

    monkeypatch.setattr(coordinator.clock, "advance_to", recording_advance)
    result = coordinator.run()
    after_teardown = next(s for e, s in events if isinstance(e, PhaseFinished) and e.phase == 1)
    assert after_teardown["clock"] == utc(open_)
    assert result.days[0].clock_ns == utc(close)
    assert max(seen) == utc(close)  # never later
    assert seen == sorted(seen)


def test_two_days_across_dst(tmp_path, sample_dir):
    coordinator, _, events = _coordinator(tmp_path, sample_dir, start="2023-11-03", end="2023-11-06")
    result = coordinator.run()
    opens = [s["clock"] for e, s in events if isinstance(e, PhaseFinished) and e.phase == 1]
    assert opens == [utc("2023-11-03 13:30"), utc("2023-11-06 14:30")]
    assert [d.clock_ns for d in result.days] == [utc("2023-11-03 20:00"), utc("2023-11-06 21:00")]


def _all_bars(data):
    out = {}
    for symbol in data.symbols:
        for interval in data.intervals:
            bars = data[symbol].bars(interval)
            out[(symbol, interval)] = np.column_stack(
                [bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume, bars.partial]
            )
    return out


@pytest.mark.parametrize("store", ["complete_dir", "sample_dir"])
def test_data_and_clock_driven_give_identical_session_data(tmp_path, request, store):
    data_dir = request.getfixturevalue(store)
    results = {}
    for mode in ("data", "clock"):
        config = load_config(
            write_config(tmp_path / f"{mode}.toml", data_dir, clock=mode, intervals=["1m", "5m", "1h"])
        )
        result = SessionCoordinator(config).run()
        results[mode] = (
            _all_bars(result.session_data),
            [d.bars for d in result.days],
            [d.clock_ns for d in result.days],
        )
    data_bars, data_counts, data_clocks = results["data"]
    clock_bars, clock_counts, clock_clocks = results["clock"]
    assert data_counts == clock_counts and data_clocks == clock_clocks
    assert data_bars.keys() == clock_bars.keys()
    for key in data_bars:
        np.testing.assert_array_equal(data_bars[key], clock_bars[key])


def test_complete_data_streams_every_regular_minute(tmp_path, complete_dir):
    config = load_config(write_config(tmp_path / "c.toml", complete_dir))
    result = SessionCoordinator(config).run()
    # hand count: 390 per full day, 210 on the early close, two symbols
    assert [d.bars for d in result.days] == [780, 420, 780, 780]


def test_validation_registers_nothing(tmp_path, sample_dir):
    config = load_config(write_config(tmp_path / "c.toml", sample_dir))
    log: list[tuple] = []
    ref: list[SessionCoordinator] = []
    events: list = []  # each event with the lifecycle log as it stood then

    def on_event(event):
        events.append((event, _state(ref), list(log)))

    coordinator = SessionCoordinator(config, components=[Recorder(ref, log)], on_event=on_event)
    ref.append(coordinator)
    report = coordinator.run().report
    assert report.valid and report.base_interval == "1m" and report.derived_intervals == ["5m"]
    # the run's first event comes right after validation: nothing was registered before it
    first, state, logged = events[0]
    assert isinstance(first, RunStarted)
    assert state["symbols"] == 0 and state["session"] is None
    assert state["clock"] is None
    assert logged == []


def test_regular_hours_stream_nothing_outside_open_close(tmp_path):
    from tests.conftest import make_store

    store = make_store(tmp_path / "ext", ["MSFT"], D(2023, 11, 20), D(2023, 11, 28), extended=True)
    for hours, first, last in [
        ("regular", "2023-11-24 14:30", "2023-11-24 17:59"),
        ("extended", "2023-11-24 09:00", "2023-11-24 21:59"),
    ]:
        config = load_config(
            write_config(
                tmp_path / f"{hours}.toml",
                store,
                symbols=["MSFT"],
                start="2023-11-24",
                end="2023-11-24",
                hours=hours,
            )
        )
        result = SessionCoordinator(config).run()
        bars = result.session_data["MSFT"].bars("1m")
        assert bars.ts.min() >= utc(first) and bars.ts.max() <= utc(last)
        if hours == "extended":
            assert bars.ts.min() < utc("2023-11-24 14:30") and bars.ts.max() >= utc("2023-11-24 18:00")
            assert result.days[0].clock_ns == utc("2023-11-24 22:00")
        else:
            assert result.days[0].clock_ns == utc("2023-11-24 18:00")


def test_failing_setup_tears_everything_down_and_names_component(tmp_path, sample_dir):
    from core.errors import SessionError

    class Broken(Component):
        name = "broken thing"

        def _on_setup(self) -> None:
            raise RuntimeError("no way")

    config = load_config(write_config(tmp_path / "c.toml", sample_dir))
    coordinator = SessionCoordinator(config, components=[Broken()])
    with pytest.raises(SessionError, match="broken thing") as info:
        coordinator.run()
    assert "2023-11-22" in str(info.value)
    assert all(c.state.value == "initial" for c in coordinator.components)


def test_component_lifecycle_refuses_illegal_transitions():
    from core.errors import LifecycleError

    component = Component()
    component.teardown()
    component.teardown()  # idempotent
    with pytest.raises(LifecycleError):
        component.on_session_end()
    component.setup()
    with pytest.raises(LifecycleError):
        component.setup()
    component.on_session_end()
    component.teardown()
    assert component.state.value == "initial"


def test_trailing_history_counts_trading_sessions(tmp_path, complete_dir):
    config = load_config(
        write_config(tmp_path / "c.toml", complete_dir, start="2023-11-27", end="2023-11-27", trailing_days=3)
    )
    result = SessionCoordinator(config).run()
    history = result.session_data["MSFT"].history("1m")
    # 11-21 and 11-22 full days, 11-24 half day: 390 + 390 + 210 (Thanksgiving skipped)
    assert len(history) == 990
    days = sorted({pd.Timestamp(int(t), tz="UTC").date() for t in history.ts})
    assert days == [D(2023, 11, 21), D(2023, 11, 22), D(2023, 11, 24)]


def test_longest_missing_run_per_column():
    from core.engine.quality import longest_runs

    flags = np.array([[1, 0, 0], [1, 0, 1], [0, 0, 1], [1, 0, 1], [1, 1, 0], [1, 0, 1]], dtype=bool)
    # by hand: column 0 runs 2 and 3 -> 3; column 1 one run of 1; column 2 runs 3 and 1 -> 3
    assert longest_runs(flags).tolist() == [3, 1, 3]
    assert longest_runs(np.zeros((0, 2), dtype=bool)).tolist() == [0, 0]
