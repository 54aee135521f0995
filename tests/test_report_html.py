"""The HTML report: its parts against hand counts, and the page rendered in headless Chromium
(when there is one): every chart drawn, and on a 100-symbol x 250-day run with ~100,000 round
trips a page under 3 MB that renders in under 5 s."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calendars import TradingCalendar
from core import api
from core.reporting import charts, page
from core.reporting.breakdowns import monthly_returns, pnl_by_time_of_day, pnl_by_weekday, yearly_returns
from core.reporting.downsample import min_max_indices
from core.reporting.excursions import trade_excursions
from core.reporting.session_axis import session_axis
from core.reporting.stats import Trade
from tests.conftest import write_config

REPO = Path(__file__).resolve().parents[1]
MINUTE = 60_000_000_000
BROWSERS = [b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)]
needs_browser = pytest.mark.skipif(not BROWSERS, reason="no headless browser here (apt-get install chromium)")


def ns(text: str) -> int:
    return pd.Timestamp(text).value


# -- downsampling -------------------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 5000), pixels=st.integers(1, 300))
def test_min_max_downsampling_keeps_every_pixel_columns_envelope(seed, n, pixels):
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.exponential(1.0, n))  # uneven spacing, as equity points are
    y = np.cumsum(rng.normal(0.0, 1.0, n)) + rng.normal(0.0, 5.0, n) * (rng.random(n) < 0.01)  # spikes
    kept = min_max_indices(x, y, pixels)
    assert np.all(np.diff(kept) > 0) and kept[0] == 0 and kept[-1] == n - 1  # time order, both ends
    if n <= 2 * pixels:
        assert kept.tolist() == list(range(n))
        return
    assert kept.size <= 2 * pixels + 2
    # the pixel column of each point, by the definition (the x range in `pixels` equal parts)
    column = np.minimum(np.floor((x - x[0]) / (x[-1] - x[0]) * pixels), pixels - 1)
    whole = pd.DataFrame({"column": column, "y": y}).groupby("column")["y"].agg(["min", "max"])
    drawn = pd.DataFrame({"column": column[kept], "y": y[kept]}).groupby("column")["y"].agg(["min", "max"])
    pd.testing.assert_frame_equal(drawn, whole)  # every column kept, with the same lowest and highest


# -- session time -------------------------------------------------------------------------------
def test_session_axis_leaves_out_nights_weekends_early_closes_and_lunch_breaks():
    days = [dt.date(2023, 11, 17), dt.date(2023, 11, 20), dt.date(2023, 11, 22), dt.date(2023, 11, 24)]
    axis = session_axis("XNYS", days)
    # NYSE 09:30-16:00 New York (14:30-21:00 UTC in November): 390 minutes; 11-24 closes at 13:00
    x = axis.x_of(
        [
            ns("2023-11-17 14:30Z"),  # Friday's open
            ns("2023-11-17 21:00Z"),  # its close
            ns("2023-11-18 12:00Z"),  # Saturday: still Friday's close
            ns("2023-11-20 14:30Z"),  # Monday's open: right after Friday's close
            ns("2023-11-20 15:00Z"),
            ns("2023-11-24 14:30Z"),  # Friday after Thanksgiving (Wednesday 11-22 in between)
            ns("2023-11-24 18:00Z"),  # its early close
        ]
    )
    assert x.tolist() == [0.0, 390.0, 390.0, 390.0, 420.0, 1170.0, 1380.0]
    assert axis.length == 1380.0 and axis.tz == "America/New_York"
    assert axis.session_of(ns("2023-11-18 12:00Z")) == dt.date(2023, 11, 17)
    dates, first, last = axis.session_spans()
    assert dates == days and first.tolist() == [0, 390, 780, 1170] and last.tolist() == [390, 780, 1170, 1380]
    # Tokyo: 09:00-11:30 and 12:30-15:00 JST (00:00-02:30, 03:30-06:00 UTC): the break takes no room
    tokyo = session_axis("XTKS", [dt.date(2023, 11, 20)])
    assert tokyo.x_of(
        [ns("2023-11-20 02:30Z"), ns("2023-11-20 03:00Z"), ns("2023-11-20 03:30Z")]
    ).tolist() == [150.0, 150.0, 150.0]
    assert tokyo.length == 300.0


# -- excursions ---------------------------------------------------------------------------------
def _store_with_bars(root: Path) -> Path:
    """AAA, 1m bars 14:30..14:35 UTC on 2023-11-20, each bar's low and high chosen by hand."""
    folder = root / "bars" / "interval=1m" / "symbol=AAA"
    folder.mkdir(parents=True)
    starts = pd.date_range("2023-11-20 14:30", periods=6, freq="1min", tz="UTC")
    lows = [90.0, 99.5, 98.0, 99.0, 95.0, 99.0]
    highs = [110.0, 100.5, 101.0, 103.0, 108.0, 101.0]
    table = pa.table(
        {
            "ts": pa.array(starts, pa.timestamp("us", tz="UTC")),
            "open": [100.0] * 6,
            "high": highs,
            "low": lows,
            "close": [100.0] * 6,
            "volume": [1.0] * 6,
        }
    )
    pq.write_table(table, folder / "2023.parquet")
    return root


def _trade(symbol, side, entry, exit_, entry_price=100.0, exit_price=101.0):
    return Trade(symbol, side, 10, ns(entry), entry_price, ns(exit_), exit_price, 0.0, 0.0)


def test_excursions_against_a_hand_count(tmp_path):
    store = _store_with_bars(tmp_path / "data")
    trades = [
        # entered on the 14:31 bar (its fill stamped 14:32, the bar's end), left on the 14:34 bar:
        # it lived through the 14:31, 14:32 and 14:33 bars: lowest low 98, highest high 103
        _trade("AAA", "long", "2023-11-20 14:32Z", "2023-11-20 14:35Z"),
        # a short over the 14:30 and 14:31 bars: highest high 110 against it, lowest low 90 for it
        _trade("AAA", "short", "2023-11-20 14:31Z", "2023-11-20 14:33Z", exit_price=99.0),
        # in and out at once: no bar between, its prices are its path
        _trade("AAA", "long", "2023-11-20 14:33Z", "2023-11-20 14:33Z", exit_price=99.0),
        _trade("BBB", "long", "2023-11-20 14:32Z", "2023-11-20 14:35Z"),  # no bars of BBB: unknown
    ]
    got = trade_excursions(trades, store, "1m")
    assert got is not None
    np.testing.assert_allclose(got.mae, [-2.0, -10.0, -1.0, np.nan])
    np.testing.assert_allclose(got.mfe, [3.0, 10.0, 0.0, np.nan])
    shutil.rmtree(store)
    assert trade_excursions(trades, store, "1m") is None  # the store is gone


# -- breakdowns ---------------------------------------------------------------------------------
def test_monthly_returns_and_pnl_by_time_and_weekday_by_hand():
    daily = [(dt.date(2023, 1, 30), 110.0), (dt.date(2023, 1, 31), 105.0), (dt.date(2023, 2, 1), 126.0)]
    months = monthly_returns(100.0, daily)
    assert [(m.year, m.month) for m in months] == [(2023, 1), (2023, 2)]
    assert [m.value for m in months] == pytest.approx([0.05, 0.2])  # 105/100 - 1, 126/105 - 1
    assert yearly_returns(months)[2023] == pytest.approx(0.26)
    trades = [  # exits in New York time: Mon 09:45, Mon 10:10, Wed 09:31
        Trade("A", "long", 1, 0, 1.0, ns("2023-11-20 14:45Z"), 1.0, 5.0, 0.0),
        Trade("A", "long", 1, 0, 1.0, ns("2023-11-20 15:10Z"), 1.0, -2.0, 0.0),
        Trade("B", "long", 1, 0, 1.0, ns("2023-11-22 14:31Z"), 1.0, 1.5, 0.0),
    ]
    labels, sums = pnl_by_time_of_day(trades, "America/New_York")
    assert labels == ["09:30", "10:00"] and sums.tolist() == [6.5, -2.0]
    labels, sums = pnl_by_weekday(trades, "America/New_York")
    assert labels == ["Mon", "Wed"] and sums.tolist() == [3.0, 1.5]
    # sessions that open the evening before (CME, 17:00 Chicago): the evening's buckets come first
    overnight = [  # exits in Chicago time: 08:40, 17:20, 23:50
        Trade("ES", "long", 1, 0, 1.0, ns("2024-01-03 14:40Z"), 1.0, 1.0, 0.0),
        Trade("ES", "long", 1, 0, 1.0, ns("2024-01-03 23:20Z"), 1.0, 2.0, 0.0),
        Trade("ES", "long", 1, 0, 1.0, ns("2024-01-04 05:50Z"), 1.0, 4.0, 0.0),
    ]
    labels, sums = pnl_by_time_of_day(overnight, "America/Chicago", opens_at=17 * 60)
    assert labels == ["17:00", "23:30", "08:30"] and sums.tolist() == [2.0, 4.0, 1.0]
    assert pnl_by_time_of_day(overnight, "America/Chicago")[0] == ["08:30", "17:00", "23:30"]


# -- the report of a small run ------------------------------------------------------------------
SMA = """
[[indicators]]
kind = "sma"
interval = "1m"
period = 10

[[indicators]]
kind = "sma"
interval = "1m"
period = 30

[execution]
commission_per_share = 0.005
slippage_bps = 1.0

[[strategies]]
name = "sma"
class = "{strategies}:SmaCross"
params = {{ fast = "sma_10@1m", slow = "sma_30@1m", quantity = 100 }}

[benchmark]
symbol = "universe"
"""


def _run(tmp_path: Path, data_dir: Path, extra: str = "", name: str = "c") -> Path:
    config = write_config(
        tmp_path / f"{name}.toml",
        data_dir,
        symbols=["MSFT", "JPM", "TLT"],
        start="2023-11-20",
        end="2023-11-24",
        intervals=["1m", "5m"],
        extra=extra,
    )
    api.run_and_save(api.load_config(config), tmp_path / "results", config_path=config)
    return tmp_path / "results"


def test_report_of_a_run_with_strategies(tmp_path, sample_dir):
    results = _run(tmp_path, sample_dir, SMA.format(strategies=REPO / "sample_configs" / "strategies.py"))
    loaded = api.report(results)
    assert loaded.html == loaded.path.with_suffix(".html")  # beside the results file by default
    text = loaded.html.read_text()
    for element in (
        "header",
        "statistics",
        "equity-chart",
        "drawdown-chart",
        "daily-pnl-chart",
        "monthly-returns",
        "time-of-day-chart",
        "weekday-chart",
        "symbols-chart",
        "candles-0",
        "trades",
    ):
        assert f'id="{element}"' in text, element
    # self-contained: nothing is fetched (Bokeh's script is inline), and the page says where it is
    assert not re.search(r"""<(script|link|img)[^>]*(src|href)=["']?(https?:)?//""", text)
    assert "Bokeh" in text and "entry (America/New_York)" in text
    # the benchmark stored with the run: its statistics, and its curve beside the equity
    assert "Against universe (3 symbols)" in text and "universe (3 symbols) (buy and hold)" in text
    # every round trip listed, each with its MAE and MFE measured from the store
    trades = loaded.trades
    rows = re.findall(r'<tr><td class="l">(\d+)</td><td class="l">(\w+)</td>', text)
    assert len(rows) == len(trades) and 0 < len(trades) <= 500
    newest = max(range(len(trades)), key=lambda i: (trades[i].exit_ns, i))
    assert rows[0] == (str(newest + 1), trades[newest].symbol)
    assert "is gone" not in text
    mae = re.findall(r"<td>(-?\d+\.\d\d) %</td><td>(-?\d+\.\d\d) %</td></tr>", text.split('id="trades"')[1])
    assert len(mae) == len(trades) and all(float(a) <= 0 <= float(f) for a, f in mae)
    # commissions are counted from the fills (0.005 a share, 100 shares, two fills a round trip)
    assert loaded.statistics.commissions_paid == pytest.approx(len(trades) * 2 * 100 * 0.005, rel=0.02)


def test_the_same_run_gives_the_same_page_byte_for_byte(tmp_path, sample_dir):
    results = _run(tmp_path, sample_dir, SMA.format(strategies=REPO / "sample_configs" / "strategies.py"))
    first = api.report(results, html=tmp_path / "a.html").html.read_bytes()
    second = api.report(results, html=tmp_path / "b.html").html.read_bytes()
    assert first == second and b"data-root-id" in first


def test_report_of_a_run_without_strategies_counts_coverage(tmp_path, sample_dir):
    events = """
[[scanners]]
name = "movers"
kind = "top_movers"
pre_session = true
universe = "all"
top = 1

[[insert]]
symbol = "TLT"
at = "11:07"
"""
    config = write_config(
        tmp_path / "c.toml",
        sample_dir,
        symbols=["MSFT", "JPM"],
        start="2023-11-20",
        end="2023-11-24",
        extra=events,
    )
    api.run_and_save(api.load_config(config), tmp_path / "results", config_path=config)
    results = tmp_path / "results"
    (tmp_path / "pages").mkdir()
    loaded = api.report(results, html=tmp_path / "pages")  # a folder: the page is named by the run
    assert loaded.statistics is None and loaded.html == tmp_path / "pages" / f"{loaded.run_id}.html"
    text = loaded.html.read_text()
    assert 'id="bars-chart"' in text and 'id="quality-chart"' in text and 'id="coverage"' in text
    # bars per symbol, counted by hand from the store: regular hours 14:30-21:00 UTC, 11-24 to 18:00
    for symbol in ("MSFT", "JPM", "TLT"):
        frame = pq.read_table(sample_dir / "bars" / "interval=1m" / f"symbol={symbol}").to_pandas()
        calendar = TradingCalendar("XNYS", dt.date(2023, 11, 1), dt.date(2023, 11, 30))
        present = expected = 0
        for day in calendar.sessions_in_range(dt.date(2023, 11, 20), dt.date(2023, 11, 24)):
            plan = calendar.plan(day)
            present += int(((frame.ts >= plan.market_open) & (frame.ts < plan.market_close)).sum())
            expected += (plan.close_ns - plan.open_ns) // MINUTE
        assert f'<td class="l">{symbol}</td><td>{present:,}</td><td>{expected:,}</td>' in text
    # one scan at each open, TLT inserted at 11:07 New York time each session (4 sessions)
    assert "<h2>Scans (4)</h2>" in text and "<h2>Insertions (4)</h2>" in text
    assert (
        '<td class="l">2023-11-20 09:30</td><td class="l">movers</td><td class="l">pre-session</td>' in text
    )
    assert '<td class="l">2023-11-20 11:07</td><td class="l">TLT</td><td class="l">config</td>' in text


def test_report_when_the_bar_store_is_gone(tmp_path, sample_dir):
    data = shutil.copytree(sample_dir, tmp_path / "data")
    results = _run(tmp_path, data, SMA.format(strategies=REPO / "sample_configs" / "strategies.py"))
    shutil.rmtree(data)
    text = api.report(results).html.read_text()
    assert "MAE and MFE show &#x27;-&#x27;: the bar store" in text and "is gone" in text
    assert re.search(r"<td>-</td><td>-</td></tr>", text)


# -- in a browser -------------------------------------------------------------------------------
# Injected into a copy of a page: once the page has loaded, it counts per chart the canvas pixels
# in the chart's data colours (its data-ink), through Bokeh's shadow roots, until every chart has
# some or 300 tries have passed, and writes the counts into the DOM for --dump-dom.
RENDER_CHECK = """<script>
(function () {
  let tries = 0;
  function canvases(root, out) {
    for (const el of root.querySelectorAll("*")) {
      if (el.tagName === "CANVAS") out.push(el);
      if (el.shadowRoot) canvases(el.shadowRoot, out);
    }
    return out;
  }
  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  function inked(chart) {
    const inks = chart.dataset.ink.split(" ").map(rgb);
    let count = 0;
    for (const canvas of canvases(chart, [])) {
      if (!canvas.width || !canvas.height) continue;
      const px = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
      for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] < 200) continue;
        for (const [r, g, b] of inks) {
          if (Math.abs(px[i] - r) < 24 && Math.abs(px[i + 1] - g) < 24 && Math.abs(px[i + 2] - b) < 24) {
            count++;
            break;
          }
        }
      }
    }
    return count;
  }
  function check() {
    const charts = Array.from(document.querySelectorAll("div.chart"));
    const counts = Object.fromEntries(charts.map((c) => [c.id, inked(c)]));
    const drawn = charts.length > 0 && Object.values(counts).every((n) => n >= 50);
    if (drawn || ++tries > 300) {
      const out = document.createElement("pre");
      out.id = "render-check";
      out.textContent = JSON.stringify({drawn: drawn, counts: counts});
      document.body.appendChild(out);
    } else {
      setTimeout(check, 50);
    }
  }
  window.addEventListener("load", () => setTimeout(check, 0));
})();
</script>"""

CHROMIUM_FLAGS = [
    "--headless=new",
    "--disable-gpu",
    "--no-sandbox",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=30000",  # waits for the page's timers (the check above), not a real 30 s
]


def _chromium(args: list[str], profile: Path) -> tuple[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [BROWSERS[0], *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.stdout, time.perf_counter() - started


def rendered(page_path: Path, work: Path) -> tuple[dict, float]:
    """The render check's counts of ``page_path`` in headless Chromium, and the wall time it took
    (the browser's start included)."""
    text = page_path.read_text()
    at = text.rindex("</body>")
    checked = work / f"checked-{page_path.name}"
    checked.write_text(text[:at] + RENDER_CHECK + text[at:])
    dom, seconds = _chromium(["--dump-dom", checked.as_uri()], work / "profile")
    found = re.search(r'<pre id="render-check">(.*?)</pre>', dom)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"')), seconds


@needs_browser
def test_the_render_check_tells_an_empty_chart_from_a_drawn_one(tmp_path):
    empty = charts.figure(name="empty", height=200, sizing_mode="stretch_width")
    empty.line([], [])  # axes and grid, no data
    drawn = charts.figure(name="drawn", height=200, sizing_mode="stretch_width")
    drawn.line([0, 1, 2, 3], [0, 3, 1, 2], color=charts.INK["equity"], line_width=2)
    target = tmp_path / "two.html"
    target.write_text(
        page.render_page(
            "two",
            [
                page.Chart("empty-chart", empty, (charts.INK["equity"],)),
                page.Chart("drawn-chart", drawn, (charts.INK["equity"],)),
            ],
        )
    )
    check, _ = rendered(target, tmp_path)
    assert (
        check["drawn"] is False
        and check["counts"]["empty-chart"] == 0
        and check["counts"]["drawn-chart"] >= 50
    )


@pytest.fixture(scope="session")
def big_report(tmp_path_factory) -> Path:
    """The report of 100 symbols x 250 days with ~100,000 round trips (an SMA(10)/SMA(60) crossover
    on every symbol): the sample ~10 s, the run ~11 s, the report ~3 s on the 2-core machine."""
    root = tmp_path_factory.mktemp("big")
    sample = api.data_sample(root / "data", 100, dt.date(2023, 1, 3), 250)
    extra = """
[[indicators]]
kind = "sma"
interval = "1m"
period = 10

[[indicators]]
kind = "sma"
interval = "1m"
period = 60

[portfolio]
cash = 1000000

[execution]
commission_per_share = 0.005
slippage_bps = 1.0

[[strategies]]
name = "sma"
class = "{strategies}:SmaCross"
params = {{ fast = "sma_10@1m", slow = "sma_60@1m", quantity = 10 }}
""".format(strategies=REPO / "benchmarks" / "fast_strategies.py")
    config = write_config(
        root / "big.toml",
        root / "data",
        symbols=sample.symbols,
        start="2023-01-03",
        end=None,
        days=250,
        intervals=["1m"],
        trailing_days=0,
        extra=extra,
    )
    api.run_and_save(api.load_config(config), root / "results", config_path=config)
    return api.report(root / "results").html


@needs_browser
def test_a_100_symbol_250_day_report_is_small_renders_fast_and_draws_every_chart(big_report, tmp_path):
    trades = int(re.search(r"<h2>Trades \(([\d,]+)\)</h2>", big_report.read_text()).group(1).replace(",", ""))
    assert trades >= 90_000
    assert big_report.stat().st_size < 3_000_000
    _chromium(["--dump-dom", "about:blank"], tmp_path / "profile")  # the browser's first start, unmeasured
    check, seconds = rendered(big_report, tmp_path)
    assert check["drawn"], check["counts"]
    assert len(check["counts"]) >= 9  # equity, underwater, daily P&L, 3 breakdowns, candles
    assert seconds < 5.0, f"{seconds:.2f} s"
    shot = tmp_path / "report.png"
    _chromium([f"--screenshot={shot}", "--window-size=1400,3000", big_report.as_uri()], tmp_path / "profile")
    assert shot.stat().st_size > 50_000
