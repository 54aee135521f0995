"""`core.data.importer.import_csv`: CSV files in, one Parquet file per UTC year out.

Expected UTC minutes are written by hand (New York is UTC-4 until 2023-11-05 and
UTC-5 after); stored files are read back with pyarrow, not with the importer.
Line numbers count the header as line 1.
"""

from __future__ import annotations

import datetime as dt
import gzip
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cli.errors import exit_code_of
from core.data.importer import ImportReport, import_csv
from core.data.store import ParquetStore
from core.errors import ConfigError, DataError
from tests.conftest import REAL_DATA

HEADER = "timestamp,open,high,low,close,volume"


def utc_us(*parts: int) -> int:
    """Epoch microseconds of a UTC wall time."""
    return int(dt.datetime(*parts, tzinfo=dt.UTC).timestamp()) * 1_000_000


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def bar(
    stamp: str, o: float = 10.0, h: float = 11.0, low: float = 9.0, c: float = 10.5, v: float = 100
) -> str:
    return f"{stamp},{o},{h},{low},{c},{v}"


def folder(root: Path, symbol: str = "MSFT", interval: str = "1m") -> Path:
    return root / "bars" / f"interval={interval}" / f"symbol={symbol}"


def stored(root: Path, symbol: str = "MSFT") -> dict[int, tuple[float, ...]]:
    """UTC microseconds -> (open, high, low, close, volume), read with pyarrow."""
    rows: dict[int, tuple[float, ...]] = {}
    for file in sorted(folder(root, symbol).glob("*.parquet")):
        table = pq.read_table(file)
        assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")
        stamps = table.column("ts").cast(pa.int64()).to_pylist()
        values = zip(
            *(table.column(n).to_pylist() for n in ("open", "high", "low", "close", "volume")), strict=True
        )
        for ts, row in zip(stamps, values, strict=True):
            assert ts not in rows, "a timestamp is stored twice"
            rows[ts] = row
    return rows


def file_bytes(root: Path, symbol: str = "MSFT") -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(folder(root, symbol).glob("*.parquet"))}


def run(root: Path, files: list, symbol: str = "MSFT", **kwargs) -> ImportReport:
    store = ParquetStore(root)
    try:
        return import_csv(store, files, symbol, **kwargs)
    finally:
        store.close()


def lines_of(report: ImportReport) -> dict[int, str]:
    return {row.line: row.reason for row in report.invalid}


# -- time zones ------------------------------------------------------------------------


def test_new_york_naive_times_land_on_utc_minutes_across_the_dst_change(tmp_path):
    csv = write(
        tmp_path / "ny.csv",
        HEADER,
        bar("2023-11-03 09:30:00"),  # EDT, UTC-4
        bar("2023-11-03 15:59:00"),
        bar("2023-11-06 09:30:00"),  # EST, UTC-5
        bar("2023-11-06 16:00:00"),
    )
    report = run(tmp_path / "store", [csv], tz="America/New_York")
    assert sorted(stored(tmp_path / "store")) == [
        utc_us(2023, 11, 3, 13, 30),
        utc_us(2023, 11, 3, 19, 59),
        utc_us(2023, 11, 6, 14, 30),
        utc_us(2023, 11, 6, 21, 0),
    ]
    assert report.first_ns == utc_us(2023, 11, 3, 13, 30) * 1000
    assert report.last_ns == utc_us(2023, 11, 6, 21, 0) * 1000
    assert (report.rows_read, report.rows_imported, report.rows_written) == (4, 4, 4)


def test_aware_timestamps_need_no_tz(tmp_path):
    csv = write(
        tmp_path / "aware.csv",
        HEADER,
        bar("2023-11-03T13:30:00Z"),
        bar("2023-11-06 09:30:00-05:00"),
        bar("2023-11-06T20:01:00+05:30"),
        bar("2023-11-06 09:32:00-0500"),
    )
    run(tmp_path / "store", [csv])
    assert sorted(stored(tmp_path / "store")) == [
        utc_us(2023, 11, 3, 13, 30),
        utc_us(2023, 11, 6, 14, 30),
        utc_us(2023, 11, 6, 14, 31),
        utc_us(2023, 11, 6, 14, 32),
    ]


def test_offsets_win_over_tz(tmp_path):
    csv = write(tmp_path / "a.csv", HEADER, bar("2023-11-06 09:30:00-05:00"), bar("2023-11-06 09:31:00"))
    run(tmp_path / "store", [csv], tz="America/New_York")
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 6, 14, 30), utc_us(2023, 11, 6, 14, 31)]


def test_naive_timestamps_without_tz_fail_and_name_the_option(tmp_path):
    csv = write(tmp_path / "naive.csv", HEADER, bar("2023-11-03 09:30:00"))
    with pytest.raises(DataError) as err:
        run(tmp_path / "store", [csv])
    assert "--tz" in str(err.value)
    assert "--tz UTC" in err.value.hint and "America/New_York" in err.value.hint
    assert err.value.where == f"{csv}:2"
    assert not (tmp_path / "store").exists()


def test_epoch_seconds_and_milliseconds(tmp_path):
    seconds = write(tmp_path / "s.csv", HEADER, bar(str(utc_us(2023, 11, 3, 13, 30) // 1_000_000)))
    millis = write(tmp_path / "ms.csv", HEADER, bar(str(utc_us(2023, 11, 3, 13, 31) // 1000)))
    run(tmp_path / "store", [seconds, millis])
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 3, 13, 30), utc_us(2023, 11, 3, 13, 31)]


def test_dst_gap_is_invalid_and_the_fall_back_hour_is_resolved_by_row_order(tmp_path):
    csv = write(
        tmp_path / "dst.csv",
        HEADER,
        bar("2023-11-05 00:59:00"),  # line 2: EDT
        bar("2023-11-05 01:30:00"),  # line 3: first 01:30, EDT -> 05:30 UTC
        bar("2023-11-05 01:59:00"),  # line 4: EDT -> 05:59
        bar("2023-11-05 01:00:00"),  # line 5: the clock went back, EST -> 06:00
        bar("2023-11-05 01:30:00"),  # line 6: EST -> 06:30
        bar("2023-11-05 02:00:00"),  # line 7: EST -> 07:00
        bar("2024-03-10 02:30:00"),  # line 8: does not exist
        bar("2024-11-03 01:15:00"),  # line 9: ambiguous, nothing tells which
    )
    report = run(tmp_path / "store", [csv], tz="America/New_York")
    assert sorted(stored(tmp_path / "store")) == [
        utc_us(2023, 11, 5, 4, 59),
        utc_us(2023, 11, 5, 5, 30),
        utc_us(2023, 11, 5, 5, 59),
        utc_us(2023, 11, 5, 6, 0),
        utc_us(2023, 11, 5, 6, 30),
        utc_us(2023, 11, 5, 7, 0),
    ]
    assert sorted(lines_of(report)) == [8, 9]
    assert "does not exist" in lines_of(report)[8]
    assert "ambiguous" in lines_of(report)[9]
    assert report.invalid_counts == {"nonexistent local time": 1, "ambiguous local time": 1}


def test_unknown_time_zone_is_refused(tmp_path):
    csv = write(tmp_path / "a.csv", HEADER, bar("2023-11-03 09:30:00"))
    with pytest.raises(ConfigError, match="unknown time zone") as err:
        run(tmp_path / "store", [csv], tz="America/Neu_York")
    assert err.value.where == "--tz"


# -- idempotence and merging -------------------------------------------------------------


def test_reimport_is_idempotent_byte_for_byte(tmp_path):
    csv = write(
        tmp_path / "a.csv",
        HEADER,
        bar("2022-12-30 20:59:00"),
        bar("2023-01-03 14:30:00"),
        bar("2023-01-03 14:31:00"),
    )
    root = tmp_path / "store"
    first = run(root, [csv], tz="UTC")
    before = file_bytes(root)
    second = run(root, [csv], tz="UTC")
    assert file_bytes(root) == before
    assert sorted(before) == ["2022.parquet", "2023.parquet"]
    assert first.rows_written == second.rows_written == len(stored(root)) == 3
    assert (second.rows_new, second.replaced, second.files_written) == (0, 0, [])


def test_exact_duplicates_collapse_to_one_row(tmp_path):
    row = bar("2023-11-03 13:30:00")
    a = write(tmp_path / "a.csv", HEADER, row, row, bar("2023-11-03 13:31:00"))
    b = write(tmp_path / "b.csv", HEADER, row)
    report = run(tmp_path / "store", [a, b], tz="UTC")
    assert report.invalid == []
    assert report.duplicates_collapsed == 2
    assert (report.rows_read, report.rows_imported, report.rows_written) == (4, 2, 2)


def test_overlapping_reimport_replaces_the_overlapped_rows(tmp_path):
    root = tmp_path / "store"
    old = write(tmp_path / "old.csv", HEADER, *(bar(f"2023-11-03 13:3{m}:00", c=10.0) for m in range(5)))
    new = write(tmp_path / "new.csv", HEADER, *(bar(f"2023-11-03 13:3{m}:00", c=10.9) for m in range(3, 7)))
    run(root, [old], tz="UTC")
    report = run(root, [new], tz="UTC")
    rows = stored(root)
    assert sorted(rows) == [utc_us(2023, 11, 3, 13, 30 + m) for m in range(7)]
    assert [rows[utc_us(2023, 11, 3, 13, 30 + m)][3] for m in range(7)] == [10.0] * 3 + [10.9] * 4
    assert (report.replaced, report.rows_new, report.rows_imported, report.rows_written) == (2, 2, 4, 7)


def test_other_years_are_left_untouched_and_other_layouts_replaced(tmp_path):
    root = tmp_path / "store"
    run(root, [write(tmp_path / "a.csv", HEADER, bar("2021-06-01 14:30:00"))], tz="UTC")
    untouched = file_bytes(root)["2021.parquet"]
    # A file of another layout spanning 2022 and 2023, as another tool might leave it.
    table = pa.table(
        {
            "ts": pa.array(
                [utc_us(2022, 6, 1, 14, 30), utc_us(2023, 6, 1, 14, 30)], pa.timestamp("us", tz="UTC")
            ),
            **{n: pa.array([1.0, 1.0]) for n in ("open", "high", "low", "close", "volume")},
        }
    )
    pq.write_table(table, folder(root) / "history.parquet")
    report = run(root, [write(tmp_path / "b.csv", HEADER, bar("2023-06-02 14:30:00"))], tz="UTC")
    assert sorted(file_bytes(root)) == ["2021.parquet", "2022.parquet", "2023.parquet"]
    assert file_bytes(root)["2021.parquet"] == untouched
    assert sorted(stored(root)) == [
        utc_us(2021, 6, 1, 14, 30),
        utc_us(2022, 6, 1, 14, 30),
        utc_us(2023, 6, 1, 14, 30),
        utc_us(2023, 6, 2, 14, 30),
    ]
    assert report.rows_written == 4
    assert report.files_removed == [str(folder(root) / "history.parquet")]


# -- invalid rows --------------------------------------------------------------------------


def test_every_invalid_kind_is_reported_with_its_line(tmp_path):
    csv = write(
        tmp_path / "bad.csv",
        HEADER,  # 1
        bar("2023-11-03 13:30:00"),  # 2 ok
        "",  # 3 empty line, skipped by the reader but counted
        "2023-13-03 13:31:00,10,11,9,10.5,100",  # 4 unparsable timestamp
        "2023-11-03 13:32:00,abc,11,9,10.5,100",  # 5 not a number
        "2023-11-03 13:33:00,10,11,,10.5,100",  # 6 empty value
        "2023-11-03 13:34:00,10,11,9,NaN,100",  # 7 NaN
        "2023-11-03 13:35:00,10,10.4,9,10.5,100",  # 8 high below close
        "2023-11-03 13:36:00,10,11,10.2,10.5,100",  # 9 low above open
        "2023-11-03 13:37:00,10,11,9,10.5,-1",  # 10 negative volume
        "2023-11-03 13:38:00,10,11,9,10.5,100",  # 11 conflicts with 12
        "2023-11-03 13:38:00,10,11,9,10.6,100",  # 12
        "2023-11-03 13:39:00,10,11,9,10.5,100,7",  # 13 one field too many
        bar("2023-11-03 13:40:00"),  # 14 ok
    )
    report = run(tmp_path / "store", [csv], tz="UTC")
    reasons = lines_of(report)
    assert sorted(reasons) == [4, 5, 6, 7, 8, 9, 10, 11, 12, 13]
    assert "cannot be parsed" in reasons[4] and "2023-13-03" in reasons[4]
    assert reasons[5] == "open 'abc' is not a number"
    assert reasons[6] == "low is empty"
    assert reasons[7] == "close is nan"
    assert reasons[8] == "high 10.4 < max(open, close) 10.5"
    assert reasons[9] == "low 10.2 > min(open, close) 10"
    assert reasons[10] == "volume -1 is negative"
    assert f"{csv}:12" in reasons[11] and f"{csv}:11" in reasons[12]
    assert "malformed" in reasons[13]
    assert all(row.file == str(csv) for row in report.invalid)
    assert str(report.invalid[0]) == f"{csv}:4: {reasons[4]}"
    assert report.invalid_counts == {
        "unparsable timestamp": 1,
        "not a number": 2,
        "NaN or infinite": 1,
        "high below open/close": 1,
        "low above open/close": 1,
        "negative volume": 1,
        "conflicting duplicate": 2,
        "malformed row": 1,
    }
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 3, 13, 30), utc_us(2023, 11, 3, 13, 40)]
    assert (report.rows_read, report.rows_imported) == (12, 2)


def test_line_numbers_deep_in_a_large_file(tmp_path):
    """A file large enough for DuckDB's parallel CSV reader; problems far apart."""
    stamps = (np.datetime64("2020-01-01T00:00", "m") + np.arange(700_000)).astype(str)
    lines = [HEADER] + [f"{stamp},10.0,11.0,9.0,10.5,100" for stamp in stamps]
    lines[123_456] = lines[123_456].replace(",10.0,", ",x,", 1)  # line 123457
    lines[400_000] = ""  # line 400001: an empty line
    lines[555_554] += ",1"  # line 555555: too many fields, past the reader's sniffing sample
    lines[654_320] = lines[654_320].rsplit(",", 1)[0] + ",-5"  # line 654321
    csv = write(tmp_path / "big.csv", *lines)
    report = run(tmp_path / "store", [csv], tz="UTC")
    assert [(row.line, row.reason.split(" ")[0]) for row in report.invalid] == [
        (123_457, "open"),
        (555_555, "malformed"),
        (654_321, "volume"),
    ]
    assert report.rows_written == 700_000 - 4


def test_strict_fails_on_an_invalid_row_and_writes_nothing(tmp_path):
    root = tmp_path / "store"
    run(root, [write(tmp_path / "a.csv", HEADER, bar("2023-11-03 13:30:00"))], tz="UTC")
    before = file_bytes(root)
    csv = write(tmp_path / "b.csv", HEADER, bar("2023-11-03 13:31:00"), bar("2023-11-03 13:32:00", v=-1))
    with pytest.raises(DataError) as err:
        run(root, [csv], tz="UTC", strict=True)
    assert exit_code_of(err.value) == 4
    assert err.value.where == f"{csv}:3"
    assert "strict" in str(err.value)
    assert file_bytes(root) == before


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([HEADER], "no data rows"),
        ([HEADER, "nonsense,1,1,1,1,1", "2023-11-03 13:30:00,a,b,c,d,e"], "no usable row"),
        (["ts,open,high,low,close,volume,symbol", bar("2023-11-03 13:30:00") + ",AAPL"], "other symbols"),
    ],
    ids=["header-only", "all-invalid", "other-symbols"],
)
def test_a_file_without_usable_rows_fails_clearly(tmp_path, lines, expected):
    good = write(tmp_path / "good.csv", HEADER, bar("2023-11-03 13:30:00"))
    empty = write(tmp_path / "empty.csv", *lines)
    with pytest.raises(DataError, match=expected) as err:
        run(tmp_path / "store", [good, empty], tz="UTC")
    assert err.value.where == str(empty)
    assert not folder(tmp_path / "store").exists()


def test_missing_columns_name_the_file_and_the_columns_found(tmp_path):
    csv = write(tmp_path / "a.csv", "Date,Price,Size", "2023-11-03,1,2")
    with pytest.raises(DataError) as err:
        run(tmp_path / "store", [csv], tz="UTC")
    assert err.value.where == str(csv)
    assert "open" in err.value.message and "Date, Price, Size" in err.value.message
    assert "timestamp" in err.value.hint


# -- file forms and columns ----------------------------------------------------------------


def test_windows_line_endings_keep_line_numbers(tmp_path):
    csv = tmp_path / "crlf.csv"
    csv.write_bytes(
        b"\r\n".join(
            [HEADER.encode(), bar("2023-11-03 13:30:00").encode(), b"", b"2023-11-03 13:31:00,1,2,x,1,1"]
        )
    )
    report = run(tmp_path / "store", [csv], tz="UTC")
    assert [str(row) for row in report.invalid] == [f"{csv}:4: low 'x' is not a number"]


def test_rows_that_only_conflict_fail_clearly(tmp_path):
    csv = write(
        tmp_path / "a.csv", HEADER, bar("2023-11-03 13:30:00", c=10.5), bar("2023-11-03 13:30:00", c=10.6)
    )
    with pytest.raises(DataError, match="repeats a time with other values") as err:
        run(tmp_path / "store", [csv], tz="UTC")
    assert err.value.where == f"{csv}:2"


def test_gzip_file(tmp_path):
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write("\n".join([HEADER, bar("2023-11-03 13:30:00"), bar("2023-11-03 13:31:00")]) + "\n")
    report = run(tmp_path / "store", [path], tz="UTC")
    assert report.rows_written == 2
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 3, 13, 30), utc_us(2023, 11, 3, 13, 31)]


def test_gzip_line_numbers(tmp_path):
    path = tmp_path / "bars.csv.gz"
    with gzip.open(path, "wt") as out:
        out.write(
            "\n".join([HEADER, bar("2023-11-03 13:30:00"), "", bar("2023-11-03 13:31:00", v=-3)]) + "\n"
        )
    assert [row.line for row in run(tmp_path / "store", [path], tz="UTC").invalid] == [4]


def test_glob_of_several_files(tmp_path):
    (tmp_path / "in").mkdir()
    for day in (3, 6):
        write(tmp_path / "in" / f"2023-11-0{day}.csv", HEADER, bar(f"2023-11-0{day} 14:30:00"))
    report = run(tmp_path / "store", [str(tmp_path / "in" / "*.csv")], tz="UTC")
    assert report.files == [str(tmp_path / "in" / "2023-11-03.csv"), str(tmp_path / "in" / "2023-11-06.csv")]
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 3, 14, 30), utc_us(2023, 11, 6, 14, 30)]


def test_a_pattern_matching_nothing_is_an_error_naming_it(tmp_path):
    pattern = str(tmp_path / "nothing-*.csv")
    with pytest.raises(DataError, match="no file matches") as err:
        run(tmp_path / "store", [pattern], tz="UTC")
    assert err.value.where == pattern


def test_date_and_time_columns(tmp_path):
    csv = write(tmp_path / "a.csv", "Date,Time,Open,High,Low,Close,Volume", "2023-11-06,09:30,10,11,9,10.5,1")
    run(tmp_path / "store", [csv], tz="America/New_York")
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 6, 14, 30)]


def test_a_symbol_column_keeps_the_symbol_rows(tmp_path):
    csv = write(
        tmp_path / "many.csv",
        "Ticker,Timestamp,Open,High,Low,Close,Volume",
        "MSFT," + bar("2023-11-03 13:30:00"),
        "AAPL," + bar("2023-11-03 13:30:00", c=99.0, h=99.0),
        "msft," + bar("2023-11-03 13:31:00"),
        "AAPL," + bar("2023-11-03 13:31:00", v=-1),  # invalid, but not ours: not reported
        "MSFT," + bar("2023-11-03 13:32:00", v=-1),  # line 6
    )
    report = run(tmp_path / "store", [csv], tz="UTC")
    assert report.skipped_other_symbols == 2
    assert [row.line for row in report.invalid] == [6]
    assert sorted(stored(tmp_path / "store")) == [utc_us(2023, 11, 3, 13, 30), utc_us(2023, 11, 3, 13, 31)]


@pytest.mark.parametrize(
    "header",
    [
        "TIMESTAMP,OPEN,HIGH,LOW,CLOSE,VOLUME",
        "DateTime,O,H,L,C,Vol",
        "Date_Time,open,High,low,Close,V",
        "TS,o,h,l,c,v",
    ],
)
def test_header_names_in_any_case_and_short_forms(tmp_path, header):
    csv = write(tmp_path / "a.csv", header, bar("2023-11-03 13:30:00"))
    assert run(tmp_path / "store", [csv], tz="UTC").rows_written == 1


def test_progress_goes_up_to_one(tmp_path):
    seen: list[float] = []
    csvs = [write(tmp_path / f"{i}.csv", HEADER, bar(f"2023-11-03 13:3{i}:00")) for i in range(3)]
    run(tmp_path / "store", csvs, tz="UTC", progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) >= 3


# -- property: what is stored is the sorted set of distinct input rows ----------------------


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    minutes=st.lists(st.integers(0, 3 * 24 * 60), min_size=1, max_size=40, unique=True),
    repeats=st.lists(st.integers(0, 39), max_size=10),
    seed=st.integers(0, 1000),
)
def test_stored_rows_are_the_distinct_input_rows_in_order(tmp_path_factory, minutes, repeats, seed):
    tmp = tmp_path_factory.mktemp("prop")
    rng = random.Random(seed)
    expected = {}
    rows = []
    for m in minutes:
        ts = utc_us(2023, 12, 30, 0, 0) + m * 60_000_000  # crosses into 2024
        o, c = rng.randint(100, 200) / 4, rng.randint(100, 200) / 4
        values = (o, max(o, c) + 0.25, min(o, c) - 0.25, c, float(rng.randint(0, 10)))
        expected[ts] = values
        stamp = dt.datetime.fromtimestamp(ts / 1e6, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        rows.append(",".join([stamp, *map(str, values)]))
    rows += [rows[i % len(rows)] for i in repeats]
    rng.shuffle(rows)
    report = run(tmp / "store", [write(tmp / "p.csv", HEADER, *rows)])
    assert stored(tmp / "store") == expected
    assert report.invalid == []
    assert report.duplicates_collapsed == len(repeats)
    assert [f.name for f in sorted(folder(tmp / "store").glob("*.parquet"))] == sorted(
        {f"{dt.datetime.fromtimestamp(ts / 1e6, dt.UTC).year}.parquet" for ts in expected}
    )


# -- real data ------------------------------------------------------------------------------


@pytest.mark.skipif(not (REAL_DATA / "MSFT_1m_utc.csv").is_file(), reason="../shared/data/real is absent")
def test_real_msft_file(tmp_path):
    report = run(tmp_path / "store", [REAL_DATA / "MSFT_1m_utc.csv"], tz="UTC")
    rows = stored(tmp_path / "store")
    assert report.invalid == []
    assert report.rows_written == len(rows) == 4900  # README: 4900 data rows
    session = [ts for ts in rows if utc_us(2023, 11, 24, 14, 30) <= ts < utc_us(2023, 11, 24, 18, 0)]
    assert len(session) == 210  # README: the 11-24 half day
