"""Extract formats: every encoding, delimiter and file type reads to the same text frame, and
every bad file is refused with what and where, never a cell value.

Every fixture is built here, in memory: strings encoded to UTF-16 or Windows-1252, workbooks
written by openpyxl, Parquet by pyarrow, zip bombs by zipfile.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import time
import zipfile
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook
from sqlalchemy import select

from factories import load_examples, make_actor, make_police_csv, make_police_row
from hub.auth.policies import Role
from hub.auth.service import actor_of, get_user
from hub.context import Hub
from hub.db.models import LinkageToken, Record
from hub.ingest.formats import MAX_CELL_CHARS, arrowcsv, detect_format, iter_extract, read_extract
from hub.ingest.formats.xlsx import MAX_MEMBERS
from hub.ingest.reader import ExtractUnreadable, read_csv
from hub.ingest.service import Receipt, upload_extract

AGREEMENT = "dsa-police-victimizations"
DATASET = "police_victimizations"
SECRET = "Whitfield"  # a surname in every fixture; no error message may contain it


def make_rows(n: int = 3) -> list[dict[str, str]]:
    # Longitude without a trailing zero: typed formats keep a number, not its CSV spelling.
    return [make_police_row(i, longitude="-87.7") for i in range(1, n + 1)]


def make_text(rows: list[dict[str, str]], delimiter: str = ",", newline: str = "\n") -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(
        buf, fieldnames=list(rows[0]), delimiter=delimiter, lineterminator=newline
    )
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


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


def make_xlsx(rows: list[dict[str, Any]], sheets: tuple[str, ...] = ("Sheet1",)) -> bytes:
    book = Workbook()
    first = book.active
    assert first is not None
    first.title = sheets[0]
    for extra in sheets[1:]:
        book.create_sheet(extra)
    target = book[sheets[-1]]
    target.append(list(rows[0]))
    for row in rows:
        target.append(list(row.values()))
    if len(sheets) > 1:
        first.append(["decoy"])
        first.append(["not this sheet"])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def make_parquet(rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def refused(content: bytes, *where: str, **kw: Any) -> str:
    """The refusal's sentence, after checking it names ``where`` and holds no cell value."""
    with pytest.raises(ExtractUnreadable) as info:
        read_extract(content, **kw)
    message = info.value.detail
    for part in where:
        assert part in message, message
    assert SECRET not in message and "Nuñez" not in message, message
    return message


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
def test_each_encoding_reads_to_the_same_frame_as_utf8(encode: Any) -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Nuñez"
    frame = read_extract(encode(make_text(rows)))
    pd.testing.assert_frame_equal(frame, expected(rows))
    assert frame.loc[1, "victim_last_name"] == "Nuñez"


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"], ids=["comma", "semi", "tab", "pipe"])
def test_each_common_delimiter_is_detected_from_the_header(delimiter: str) -> None:
    rows = make_rows()
    rows[0]["location_description"] = "STREET, ALLEY; OR | YARD"  # other delimiters, quoted
    frame = read_extract(make_text(rows, delimiter).encode())
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_crlf_line_endings_read_like_lf() -> None:
    rows = make_rows()
    frame = read_extract(make_text(rows, newline="\r\n").encode())
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_quoted_value_may_span_lines() -> None:
    rows = make_rows()
    rows[1]["narrative"] = "first line\nsecond line"
    frame = read_extract(make_text(rows, newline="\r\n").encode())
    assert frame.loc[1, "narrative"] == "first line\nsecond line"
    assert len(frame) == 3


def test_empty_and_blank_cells_read_as_none_and_every_column_is_object_text() -> None:
    frame = read_extract(b"a,b,c\n1,,  \n")
    assert frame.loc[0].tolist() == ["1", None, None]
    assert all(dtype == "object" for dtype in frame.dtypes)


def test_an_xlsx_workbook_reads_to_the_same_frame_as_the_csv() -> None:
    rows = make_rows()
    frame = read_extract(make_xlsx([typed(r) for r in rows]), "extract.xlsx")
    pd.testing.assert_frame_equal(frame, expected(rows))
    assert frame.loc[0, "victim_dob"] == "1999-04-17"
    assert frame.loc[0, "incident_datetime"] == "2026-03-14T22:15:00"
    assert frame.loc[0, "weapon_code"] == "12" and frame.loc[0, "fatal"] == "false"


def test_an_xlsx_workbook_is_read_from_the_sheet_named_like_the_dataset() -> None:
    rows = make_rows()
    content = make_xlsx([typed(r) for r in rows], sheets=("Notes", "Police Victimizations"))
    frame = read_extract(content, dataset=DATASET)
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_an_xlsx_workbook_without_that_sheet_is_read_from_its_first_sheet() -> None:
    rows = make_rows()
    frame = read_extract(make_xlsx([typed(r) for r in rows]), dataset=DATASET)
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_parquet_file_reads_to_the_same_frame_as_the_csv() -> None:
    rows = make_rows()
    frame = read_extract(make_parquet([typed(r) for r in rows]))
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_a_parquet_timestamp_at_midnight_keeps_its_time() -> None:
    midnight = dt.datetime(2026, 3, 14)
    frame = read_extract(make_parquet([{"at": midnight, "on": midnight.date()}]))
    assert frame.loc[0].tolist() == ["2026-03-14T00:00:00", "2026-03-14"]


def test_the_format_comes_from_the_bytes_not_the_name() -> None:
    rows = make_rows()
    assert detect_format(make_parquet([typed(r) for r in rows])) == "parquet"
    assert detect_format(make_xlsx([typed(r) for r in rows])) == "xlsx"
    frame = read_extract(make_text(rows).encode(), "extract.xlsx")
    pd.testing.assert_frame_equal(frame, expected(rows))


def test_read_csv_still_reads_a_csv_extract() -> None:
    rows = make_rows()
    pd.testing.assert_frame_equal(read_csv(make_text(rows, ";").encode()), expected(rows))


# --- streaming ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "xlsx", "parquet"])
def test_iter_extract_yields_chunks_that_add_up_to_read_extract(kind: str) -> None:
    rows = make_rows(25)
    content = {
        "csv": lambda: make_text(rows).encode(),
        "xlsx": lambda: make_xlsx([typed(r) for r in rows]),
        "parquet": lambda: make_parquet([typed(r) for r in rows]),
    }[kind]()
    chunks = list(iter_extract(content, chunk_rows=10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert all(list(c.columns) == list(rows[0]) for c in chunks)
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, read_extract(content))


def test_iter_extract_reports_a_bad_line_when_it_reaches_it() -> None:
    content = b"a,b\n" + b"1,2\n" * 30 + b"3\n"
    chunks = iter_extract(content, chunk_rows=10)
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
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(arrowcsv, "BLOCK_BYTES", 4096)  # pyarrow delivers rows before the error
    content = b"a,b\n" + b"1,2\n" * 30_000 + b"3\n" + b"4,5\n" * 10
    chunks = iter_extract(content, chunk_rows=10_000)
    assert [len(next(chunks)) for _ in range(3)] == [10_000] * 3
    with pytest.raises(ExtractUnreadable, match="line 30002"):
        next(chunks)


# --- bad input ------------------------------------------------------------------------------


def test_an_empty_file_is_refused() -> None:
    refused(b"", "empty")
    refused(b"  \r\n", "empty")


def test_a_header_only_file_is_refused() -> None:
    refused(b"a,b\r\n", "header but no rows")


def test_a_repeated_header_is_refused_naming_the_column() -> None:
    refused(b"a,b,a\n1,2,3\n", "repeats", "a")


def test_an_unbalanced_quote_is_reported_at_the_line_where_it_opens() -> None:
    rows = make_rows(4)
    text = make_text(rows).replace(f",{SECRET},", f',"{SECRET},', 1)  # line 2 opens a quote
    message = refused(text.encode(), "line 2, column 15 (victim_last_name)", "never closed")
    assert "quote" in message


def test_a_stray_quote_inside_a_value_is_reported_with_its_line() -> None:
    rows = make_rows(4)
    text = make_text(rows).replace(f",{SECRET},", f',"{SECRET}"x,', 3)
    refused(text.encode(), "line 2", "quote")


def test_a_ragged_line_is_reported_with_its_line_and_counts() -> None:
    text = make_text(make_rows(4)) + f"V9,{SECRET}\n"
    refused(text.encode(), "line 6", "2 values", "25 columns")


def test_a_10_mb_single_line_is_refused_promptly() -> None:
    content = b"id,name\n1," + SECRET.encode() * 1_000_000 + b"\n"
    started = time.perf_counter()
    message = refused(content, "line 2, column 2 (name)", "longer than")
    assert time.perf_counter() - started < 2
    assert f"{MAX_CELL_CHARS:,}" in message


def test_a_10_mb_unclosed_quote_is_refused_promptly_at_its_line() -> None:
    content = b'id,name\n1,ok\n2,"' + SECRET.encode() * 1_000_000 + b"\n3,ok\n"
    started = time.perf_counter()
    refused(content, "line 3, column 2 (name)", "quote")
    assert time.perf_counter() - started < 2


def test_a_10_mb_line_of_many_short_values_is_refused_promptly_as_ragged() -> None:
    content = b"id,name\n" + b"x," * 5_000_000 + b"\n"
    started = time.perf_counter()
    refused(content, "line 2", "values where the header has 2 columns")
    assert time.perf_counter() - started < 2


def test_a_nul_byte_is_refused_with_its_line_and_offset() -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Whit\x00field"
    refused(make_text(rows).encode(), "NUL", "line 3", "offset")


def test_a_nul_character_in_utf16_is_refused_with_its_line() -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Whit\x00field"
    refused(make_text(rows).encode("utf-16"), "NUL", "line 3")


def test_a_mostly_utf8_file_with_a_windows_1252_byte_is_refused_not_misread() -> None:
    rows = make_rows()
    rows[0]["victim_first_name"] = "Zoë"
    head = make_text(rows).encode("utf-8")
    content = head + "V9,Nuñez".encode("cp1252") + b"\n"
    refused(content, "mixes encodings", "line 5", f"offset {len(head) + 5}", "0xF1")


def test_a_broken_utf16_character_is_refused_with_its_line() -> None:
    head = codecs.BOM_UTF16_LE + make_text(make_rows()).encode("utf-16-le")
    content = head + b"\x00\xd8" + ",x\n".encode("utf-16-le")  # a lone surrogate on line 5
    refused(content, "line 5", f"offset {len(head)}", "not UTF-16")


def test_a_byte_defined_in_neither_utf8_nor_windows_1252_is_refused() -> None:
    content = make_text(make_rows()).encode("cp1252").replace(b"Whit", b"Wh\x81t", 1)
    refused(content, "0x81", "line 2")


def test_windows_1252_is_refused_as_not_utf8_when_the_fallback_is_off() -> None:
    content = make_text(make_rows()).replace(SECRET, "Nuñez").encode("cp1252")
    refused(content, "not UTF-8", "line 2", allow_cp1252=False)


def test_an_old_binary_xls_workbook_is_refused() -> None:
    refused(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, ".xls")


def test_a_zip_that_is_not_a_workbook_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("extract.csv", make_text(make_rows()))
    refused(buf.getvalue(), "not an Excel workbook")


def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            zeros = bytes(1 << 20)
            for _ in range(64):
                member.write(zeros)
    content = buf.getvalue()
    assert len(content) < 1 << 20  # 64 MiB of zeros squeezes to well under 1 MiB
    refused(content, "zip bomb", f"to {(64 << 20) + len('<workbook/>'):,} bytes")


def test_an_xlsx_with_too_many_parts_is_refused() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        for i in range(MAX_MEMBERS):
            archive.writestr(f"xl/p{i}.xml", "")
    refused(buf.getvalue(), "parts", f"{MAX_MEMBERS:,}")


def test_a_damaged_workbook_is_refused() -> None:
    content = make_xlsx([typed(r) for r in make_rows()])
    with zipfile.ZipFile(io.BytesIO(content)) as original:
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as damaged:
            for name in original.namelist():
                if name != "xl/worksheets/sheet1.xml":
                    damaged.writestr(name, original.read(name))
    refused(buf.getvalue(), "workbook")


def test_an_xlsx_value_outside_the_named_columns_is_refused_with_row_and_column() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["id", "name"])
    sheet.append(["1", SECRET])
    sheet.append(["2", "ok", SECRET])
    buf = io.BytesIO()
    book.save(buf)
    refused(buf.getvalue(), "row 3", "column C")


def test_an_xlsx_with_an_empty_first_row_is_refused() -> None:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet["A2"] = SECRET
    buf = io.BytesIO()
    book.save(buf)
    refused(buf.getvalue(), "row 1")


def test_a_truncated_parquet_file_is_refused() -> None:
    content = make_parquet([typed(r) for r in make_rows()])
    refused(content[: len(content) // 2], "Parquet", "damaged")


def test_a_parquet_file_with_nested_columns_is_refused_naming_them() -> None:
    refused(make_parquet([{"id": "1", "aliases": [SECRET]}]), "aliases", "nested")


# --- end to end through the upload service --------------------------------------------------


@pytest.fixture
def police_hub(hub: Hub) -> Hub:
    load_examples(hub)
    make_actor(hub, "steward-police", Role.steward, "org:police")
    return hub


def upload(hub: Hub, content: bytes) -> Receipt:
    with hub.session() as s:
        actor = actor_of(get_user(s, "steward-police"))
    return hub.transact(
        lambda s: upload_extract(
            s,
            hub.keys,
            actor,
            agreement_id=AGREEMENT,
            dataset_id=DATASET,
            content=content,
            today=hub.today(),
        )
    )


def stored(hub: Hub) -> tuple[list[tuple[str, Any]], list[tuple[str, str]]]:
    with hub.session() as s:
        records = s.execute(select(Record.record_key, Record.values)).all()
        tokens = s.execute(select(LinkageToken.kind, LinkageToken.token)).all()
    return sorted((k, repr(v)) for k, v in records), sorted((k, t) for k, t in tokens)


def assert_stores_what_utf8_stores(hub: Hub, rows: list[dict[str, str]], content: bytes) -> None:
    first = upload(hub, make_police_csv(rows))
    before = stored(hub)
    second = upload(hub, content)
    assert not second.duplicate and second.upload_id != first.upload_id
    assert second.rows_replaced == len(rows) and second.rows_added == 0
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
