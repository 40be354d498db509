"""Extract formats: every encoding, delimiter and file type reads to the same text frame, from
bytes, a file on disk or a file object alike, streamed in chunks that are not kept.

Bad files are in ``test_bad_input.py``. Every fixture is built here, in memory or in
``tmp_path``: strings encoded to UTF-16 or Windows-1252, workbooks written by openpyxl, Parquet
by pyarrow.
"""

from __future__ import annotations

import codecs
import datetime as dt
import gc
import hashlib
import io
import weakref
import zipfile
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from ingest_sources import (
    SECRET,
    MakeSource,
    make_parquet,
    make_rows,
    make_text,
    make_xlsx,
)
from sqlalchemy import select

from factories import (
    load_examples,
    make_actor,
    make_police_csv,
    make_police_row,
    upload_as_police_steward,
)
from hub.auth.policies import Role
from hub.context import Hub
from hub.db.models import Record
from hub.ingest.formats import (
    ExtractUnreadable,
    arrowcsv,
    detect_format,
    iter_extract,
    open_extract,
    read_extract,
    xlsx,
)
from hub.ingest.formats.source import SCAN_BLOCK

AGREEMENT = "dsa-police-victimizations"
DATASET = "police_victimizations"


def expected(rows: list[dict[str, str]]) -> pd.DataFrame:
    return read_extract(make_text(rows).encode("utf-8"))


def typed(row: dict[str, str]) -> dict[str, Any]:
    """The row as a spreadsheet or Parquet writer would type it."""
    out: dict[str, Any] = dict(row)
    out["incident_datetime"] = dt.datetime.fromisoformat(row["incident_datetime"])
    out["victim_dob"] = dt.date.fromisoformat(row["victim_dob"])
    for name in ("weapon_code", "community_area", "victim_age", "victim_home_zip"):
        out[name] = int(row[name])
    for name in ("latitude", "longitude"):
        out[name] = float(row[name])
    for name in ("fatal", "juvenile_flag", "domestic_related", "officer_involved"):
        out[name] = row[name] == "true"
    return out


# --- formats that read to the same frame ----------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        pytest.param(lambda t: t.encode("utf-8"), id="utf-8"),
        pytest.param(lambda t: codecs.BOM_UTF8 + t.encode("utf-8"), id="utf-8-with-bom"),
        pytest.param(lambda t: t.encode("utf-16"), id="utf-16-with-bom"),
        pytest.param(lambda t: codecs.BOM_UTF16_LE + t.encode("utf-16-le"), id="utf-16-le"),
        pytest.param(lambda t: codecs.BOM_UTF16_BE + t.encode("utf-16-be"), id="utf-16-be"),
        pytest.param(lambda t: t.encode("cp1252"), id="windows-1252"),
        pytest.param(lambda t: t.encode("latin-1"), id="latin-1"),
    ],
)
def test_each_encoding_reads_to_the_same_frame_as_utf8(encode: Any, as_source: MakeSource) -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Nuñez"
    frame = read_extract(as_source(encode(make_text(rows))))
    pd.testing.assert_frame_equal(frame, expected(rows))
    assert frame.loc[1, "victim_last_name"] == "Nuñez"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semi", "tab", "pipe"])
def test_each_common_delimiter_is_detected_from_the_header(
    delimiter: str, as_source: MakeSource
) -> None:
    rows = make_rows()
    rows[0]["location_description"] = "STREET, ALLEY; OR | YARD"  # other delimiters, quoted
    frame = read_extract(as_source(make_text(rows, delimiter).encode()))
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_crlf_line_endings_read_like_lf() -> None:
    rows = make_rows()
    frame = read_extract(make_text(rows, newline="\r\n").encode())
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_quoted_value_may_span_lines(as_source: MakeSource) -> None:
    rows = make_rows()
    rows[1]["narrative"] = "first line\nsecond line"
    frame = read_extract(as_source(make_text(rows, newline="\r\n").encode()))
    assert frame.loc[1, "narrative"] == "first line\nsecond line"
    assert len(frame) == 3


def test_empty_and_blank_cells_read_as_none_and_every_column_is_object_text() -> None:
    frame = read_extract(b"a,b,c\n1,,  \n")
    assert frame.loc[0].tolist() == ["1", None, None]
    assert all(dtype == "object" for dtype in frame.dtypes)


def test_an_xlsx_workbook_reads_to_the_same_frame_as_the_csv(as_source: MakeSource) -> None:
    rows = make_rows()
    frame = read_extract(as_source(make_xlsx([typed(r) for r in rows])))
    pd.testing.assert_frame_equal(frame, expected(rows))
    assert frame.loc[0, "victim_dob"] == "1999-04-17"
    assert frame.loc[0, "incident_datetime"] == "2026-03-14T22:15:00"
    assert frame.loc[0, "weapon_code"] == "12" and frame.loc[0, "fatal"] == "false"


def test_an_xlsx_workbook_is_read_from_the_sheet_named_like_the_dataset(
    as_source: MakeSource,
) -> None:
    rows = make_rows()
    content = make_xlsx([typed(r) for r in rows], sheets=("Notes", "Police Victimizations"))
    extract = open_extract(as_source(content), dataset=DATASET)
    pd.testing.assert_frame_equal(pd.concat(extract.chunks()), expected(rows))
    assert extract.notes == [
        "The workbook has 2 sheets; sheet 'Police Victimizations' was read (it is named like "
        "the dataset)."
    ]


def test_an_xlsx_workbook_without_that_sheet_is_read_from_its_first_sheet() -> None:
    rows = make_rows()
    frame = read_extract(make_xlsx([typed(r) for r in rows]), dataset=DATASET)
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_parquet_file_reads_to_the_same_frame_as_the_csv(as_source: MakeSource) -> None:
    rows = make_rows()
    frame = read_extract(as_source(make_parquet([typed(r) for r in rows])))
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_parquet_timestamp_at_midnight_keeps_its_time() -> None:
    midnight = dt.datetime(2026, 3, 14)
    frame = read_extract(make_parquet([{"at": midnight, "on": midnight.date()}]))
    assert frame.loc[0].tolist() == ["2026-03-14T00:00:00", "2026-03-14"]


def test_the_format_comes_from_the_bytes_not_the_name() -> None:
    rows = make_rows()
    assert detect_format(make_parquet([typed(r) for r in rows])) == "parquet"
    assert detect_format(make_xlsx([typed(r) for r in rows])) == "xlsx"
    frame = read_extract(make_text(rows).encode())
    pd.testing.assert_frame_equal(frame, expected(rows))


# --- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx", "parquet"])
def test_iter_extract_yields_chunks_that_add_up_to_read_extract(
    kind: str, as_source: MakeSource
) -> None:
    rows = make_rows(25)
    content = {
        "csv": lambda: make_text(rows).encode(),
        "xlsx": lambda: make_xlsx([typed(r) for r in rows]),
        "parquet": lambda: make_parquet([typed(r) for r in rows]),
    }[kind]()
    chunks = list(iter_extract(as_source(content), chunk_rows=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert all(list(c.columns) == list(rows[0]) for c in chunks)
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_extract(content))


def test_iter_extract_reports_a_bad_line_when_it_reaches_it(as_source: MakeSource) -> None:
    content = b"a,b\n" + b"1,2\n" * 30 + b"3\n"
    chunks = iter_extract(as_source(content), chunk_rows=10)
    assert len(next(chunks)) == 10
    with pytest.raises(ExtractUnreadable, match="line 32"):
        list(chunks)


def test_the_fast_reader_and_the_csv_module_read_the_same_frame() -> None:
    rows = make_rows(30)
    rows[4]["victim_middle_initial"] = "   "
    plain = make_text(rows).encode()  # no quotes: pyarrow reads it
    quoted = make_text(rows).replace(",STREET,", ',"STREET",').encode()  # the csv module does
    assert b'"' not in plain and b'"' in quoted
    pd.testing.assert_frame_equal(read_extract(plain), read_extract(quoted))
    assert read_extract(plain).loc[4, "victim_middle_initial"] is None
    for fast, slow in zip(
        iter_extract(plain, chunk_rows=7), iter_extract(quoted, chunk_rows=7), strict=True
    ):
        pd.testing.assert_frame_equal(fast, slow)


def test_a_late_bad_line_in_a_plain_file_is_reported_after_the_good_chunks(
    monkeypatch: pytest.MonkeyPatch, as_source: MakeSource
) -> None:
    monkeypatch.setattr(arrowcsv, "BLOCK_BYTES", 4096)  # pyarrow delivers rows before the error
    content = b"a,b\n" + b"1,2\n" * 30_000 + b"3\n" + b"4,5\n" * 10
    chunks = iter_extract(as_source(content), chunk_rows=10_000)
    assert [len(next(chunks)) for _ in range(3)] == [10_000] * 3
    with pytest.raises(ExtractUnreadable, match="line 30002"):
        next(chunks)


@pytest.mark.parametrize("encoding", ["cp1252", "utf-16"])
def test_the_fast_reader_transcodes_like_the_csv_module(encoding: str) -> None:
    rows = make_rows(30)
    rows[3]["victim_last_name"] = "Nuñez"
    plain = make_text(rows).encode(encoding)
    quoted = make_text(rows).replace(",STREET,", ',"STREET",').encode(encoding)
    pd.testing.assert_frame_equal(read_extract(plain), read_extract(quoted))
    assert read_extract(plain).loc[3, "victim_last_name"] == "Nuñez"


def test_the_reader_keeps_no_chunk_it_has_handed_over(as_source: MakeSource) -> None:
    rows = make_rows(40)
    for content in (
        make_text(rows).encode(),  # pyarrow
        make_text(rows).replace(",STREET,", ',"STREET",').encode(),  # the csv module
        make_parquet([typed(r) for r in rows]),
    ):
        chunks = open_extract(as_source(content)).chunks(10)
        first = weakref.ref(next(chunks))
        assert first() is None  # freed at once: no reference left, not even in a cycle
        second = next(chunks)
        assert len(second) == 10 and list(second.index) == list(range(10))
        chunks.close()


# --- opening: what is known before any row ---------------------------------------------------


def test_open_extract_knows_format_hash_size_and_header_before_any_row(
    as_source: MakeSource,
) -> None:
    rows = make_rows(5)
    for content, kind in (
        (make_text(rows).encode(), "csv"),
        (make_xlsx([typed(r) for r in rows]), "xlsx"),
        (make_parquet([typed(r) for r in rows]), "parquet"),
    ):
        extract = open_extract(as_source(content))
        assert extract.format == kind
        assert extract.sha256 == hashlib.sha256(content).hexdigest()
        assert extract.size == len(content)
        assert extract.header == list(rows[0])
        assert (extract.encoding, extract.delimiter) == (
            ("utf-8", ",") if kind == "csv" else (None, None)
        )
        assert extract.notes == []


@pytest.mark.parametrize(
    ("content", "encoding", "notes"),
    [
        pytest.param(
            "a;b\n1;Nuñez\n".encode("cp1252"),
            "cp1252",
            [
                "The file was not UTF-8 and was read as Windows-1252.",
                "Values were read as separated by semicolons.",
            ],
            id="windows-1252",
        ),
        pytest.param(
            "a\tb\n1\tNuñez\n".encode("utf-16"),
            "utf-16",
            [
                "The file was read as UTF-16 (it starts with a UTF-16 byte-order mark).",
                "Values were read as separated by tabs.",
            ],
            id="utf-16",
        ),
        pytest.param(
            codecs.BOM_UTF8 + "a|b\n1|Nuñez\n".encode(),
            "utf-8",
            ["Values were read as separated by pipes."],
            id="utf-8",
        ),
    ],
)
def test_notes_say_how_a_csv_was_read(content: bytes, encoding: str, notes: list[str]) -> None:
    extract = open_extract(content)
    assert extract.encoding == encoding and extract.notes == notes
    assert next(extract.chunks()).loc[0].tolist() == ["1", "Nuñez"]


def test_a_workbook_without_a_sheet_named_like_the_dataset_says_which_it_read() -> None:
    rows = make_rows()
    content = make_xlsx([typed(r) for r in rows], sheets=("Summary", "Data"))
    extract = open_extract(content, dataset=DATASET)
    assert extract.notes == [
        "The workbook has 2 sheets; the first was read (no sheet is named like the dataset)."
    ]
    assert "Summary" not in extract.notes[0] and "Data" not in extract.notes[0]


@pytest.mark.parametrize("dataset", [DATASET, None])
def test_a_note_never_quotes_a_sheet_name_that_is_not_the_datasets(dataset: str | None) -> None:
    # A sheet's name is the agency's free text (here a surname); notes are stored in the report.
    content = make_xlsx([typed(r) for r in make_rows()], sheets=(SECRET, f"{SECRET} 2", "x"))
    extract = open_extract(content, dataset=dataset)
    assert extract.notes[0].startswith("The workbook has 3 sheets; the first was read")
    assert all(SECRET not in note for note in extract.notes), extract.notes


def test_a_workbook_is_checked_and_opened_once_for_its_header_and_first_read(
    monkeypatch: pytest.MonkeyPatch, as_source: MakeSource
) -> None:
    calls = {"check_archive": 0, "load_workbook": 0}

    def counted(name: str, real: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    check = counted("check_archive", xlsx.check_archive)
    monkeypatch.setattr("hub.ingest.formats.extract.check_archive", check)
    monkeypatch.setattr(xlsx, "load_workbook", counted("load_workbook", xlsx.load_workbook))
    rows = make_rows(7)
    extract = open_extract(as_source(make_xlsx([typed(r) for r in rows])))
    first = pd.concat(extract.chunks(3), ignore_index=True)
    assert calls == {"check_archive": 1, "load_workbook": 1}
    again = pd.concat(extract.chunks(4), ignore_index=True)  # a later call opens it again
    assert calls == {"check_archive": 1, "load_workbook": 2}
    pd.testing.assert_frame_equal(first, expected(rows))
    pd.testing.assert_frame_equal(again, expected(rows))


def test_a_workbook_dropped_before_its_rows_are_read_is_closed(
    monkeypatch: pytest.MonkeyPatch, as_source: MakeSource
) -> None:
    closed: list[object] = []
    real_close = xlsx.Sheet.close

    def close(sheet: xlsx.Sheet) -> None:
        closed.append(sheet)
        real_close(sheet)

    monkeypatch.setattr(xlsx.Sheet, "close", close)
    content = make_xlsx([typed(r) for r in make_rows()])
    extract = open_extract(as_source(content))
    del extract
    gc.collect()
    assert len(closed) == 1
    read = open_extract(as_source(content))
    assert sum(len(c) for c in read.chunks()) == 3  # its rows closed the sheet as they ended
    del read
    gc.collect()
    assert len(closed) == 1


def test_chunks_read_the_extract_again_from_the_start(as_source: MakeSource) -> None:
    extract = open_extract(as_source(make_text(make_rows(12)).encode()))
    first = pd.concat(extract.chunks(5), ignore_index=True)
    again = pd.concat(extract.chunks(7), ignore_index=True)
    pd.testing.assert_frame_equal(first, again)
    assert len(first) == 12


def test_a_file_object_is_read_from_its_start_whatever_its_position() -> None:
    content = make_text(make_rows()).encode()
    handle = io.BytesIO(content)
    handle.seek(0, io.SEEK_END)  # as a spool is left after writing
    pd.testing.assert_frame_equal(read_extract(handle), read_extract(content))
    assert not handle.closed


def test_a_large_file_is_read_in_blocks_never_whole(tmp_path: Path) -> None:
    content = b"id,text\n" + b"".join(
        b"%d,%s\n" % (i, b"x" * 200) for i in range(2 * SCAN_BLOCK // 200)
    )
    assert len(content) > 2 * SCAN_BLOCK
    reads: list[int] = []

    class CountingFile(io.FileIO):
        def readinto(self, buffer: Any) -> int:
            count = super().readinto(buffer)
            reads.append(count or 0)
            return count or 0

    path = tmp_path / "large.csv"
    path.write_bytes(content)
    with CountingFile(path) as handle:
        extract = open_extract(handle)
        assert sum(len(c) for c in extract.chunks(20_000)) == content.count(b"\n") - 1
    assert max(reads) <= SCAN_BLOCK < len(content)


def test_a_str_is_refused_as_ambiguous() -> None:
    with pytest.raises(TypeError, match="pathlib.Path"):
        open_extract("a,b\n1,2\n")  # type: ignore[arg-type]


# --- end to end through the upload service --------------------------------------------------


@pytest.fixture
def police_hub(hub: Hub) -> Hub:
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return hub


upload = upload_as_police_steward


def stored(hub: Hub) -> list[tuple[Any, ...]]:
    """Every stored record (values and linkage tokens), without what names the upload."""
    columns = [c for c in Record.__table__.columns if c.name not in {"id", "upload_id"}]
    with hub.session() as s:
        rows = s.execute(select(*columns)).all()
    return sorted(tuple(repr(v) for v in row) for row in rows)


def assert_stores_what_utf8_stores(hub: Hub, rows: list[dict[str, str]], content: bytes) -> None:
    first = upload(hub, make_police_csv(rows))
    before = stored(hub)
    second = upload(hub, content)
    assert not second.duplicate and second.upload_id != first.upload_id
    assert second.rows_received == len(rows) and second.rows_added == 0
    assert stored(hub) == before


def test_a_windows_1252_police_extract_uploads_the_same_rows_as_utf8(police_hub: Hub) -> None:
    rows = [make_police_row(i, victim_last_name="Nuñez") for i in range(1, 4)]
    content = make_police_csv(rows).decode().encode("cp1252")
    assert_stores_what_utf8_stores(police_hub, rows, content)


def test_a_utf16_semicolon_police_extract_uploads_the_same_rows_as_utf8(police_hub: Hub) -> None:
    rows = [make_police_row(i, victim_last_name="Nuñez") for i in range(1, 4)]
    content = make_text(rows, ";", "\r\n").encode("utf-16")
    assert_stores_what_utf8_stores(police_hub, rows, content)


def test_an_xlsx_police_extract_uploads_the_same_rows_as_utf8(police_hub: Hub) -> None:
    rows = make_rows()
    assert_stores_what_utf8_stores(police_hub, rows, make_xlsx([typed(r) for r in rows]))


def test_a_parquet_police_extract_uploads_the_same_rows_as_utf8(police_hub: Hub) -> None:
    rows = make_rows()
    assert_stores_what_utf8_stores(police_hub, rows, make_parquet([typed(r) for r in rows]))


def test_an_unreadable_upload_stores_nothing(police_hub: Hub) -> None:
    before = stored(police_hub)
    with pytest.raises(ExtractUnreadable, match="zip bomb"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr("xl/workbook.xml", bytes(8 << 20))
        upload(police_hub, buf.getvalue())
    assert stored(police_hub) == before
