"""Bad extracts, at the reader: each is refused with what was wrong and where, never a cell value,
whether it comes as bytes, as a file on disk, or as a file object (the upload spool's reader).

Every fixture is built here, in memory or in ``tmp_path``: text encoded to UTF-16 or
Windows-1252, workbooks written by openpyxl, Parquet by pyarrow, zip bombs by zipfile. Hostile
values that are not errors (formula-like cells, a column named like SQL) must read back as
ordinary data: neutralizing them is the CSV writer's job, not the reader's.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections.abc import Mapping
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_sources import (
    SECRET,
    MakeSource,
    SpoolLike,
    UnknownLength,
    make_parquet,
    make_rows,
    make_text,
    make_workbook,
)

from hub.errors import UploadRejected
from hub.ingest.formats import (
    MAX_CELL_CHARS,
    ExtractSource,
    ExtractTooLarge,
    ExtractUnreadable,
    open_extract,
    read_extract,
)
from hub.ingest.formats.encoding import probe_for
from hub.ingest.formats.source import Source
from hub.ingest.formats.xlsx import MAX_MEMBERS


def make_zip(members: Mapping[str, bytes | str], method: int = zipfile.ZIP_STORED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buf.getvalue()


def refused(source: ExtractSource, *where: str, **kw: Any) -> str:
    """The refusal's sentence, after checking it names ``where`` and holds no cell value."""
    with pytest.raises(ExtractUnreadable) as info:
        read_extract(source, **kw)
    message = info.value.detail
    for part in where:
        assert part in message, message
    assert SECRET not in message and "Nuñez" not in message, message
    assert isinstance(info.value, UploadRejected)
    return message


# --- structure ------------------------------------------------------------------------------


def test_an_empty_file_is_refused(as_source: MakeSource) -> None:
    refused(as_source(b""), "empty")
    refused(as_source(b"  \r\n"), "empty")
    refused(as_source(codecs.BOM_UTF8 + b" \n"), "the file is empty")
    refused(as_source(" \r\n".encode("utf-16")), "the file is empty")
    refused(as_source(codecs.BOM_UTF16_LE), "the file is empty")


def test_blank_first_64_kib_before_the_header_is_a_blank_first_line_not_an_empty_file(
    as_source: MakeSource,
) -> None:
    content = b"\n" * 70_000 + make_text(make_rows()).encode()
    message = refused(as_source(content), "line 1 is empty")
    assert "file is empty" not in message


def test_a_header_only_file_is_refused(as_source: MakeSource) -> None:
    refused(as_source(b"a,b\r\n"), "header but no rows")


def test_a_repeated_header_is_refused_naming_the_positions(as_source: MakeSource) -> None:
    message = refused(as_source(b"a,b,a\n1,2,3\n"), "columns 1 and 3 of the header")
    assert message.startswith("columns 1 and 3 of the header have the same name;"), message
    message = refused(as_source(b"a,b,a,b,a\n1,2,3,4,5\n"), "columns 1, 3 and 5", "columns 2 and 4")
    assert "'a'" not in message and "'b'" not in message


def test_a_name_repeated_in_row_1_of_a_headerless_file_is_never_quoted(
    as_source: MakeSource,
) -> None:
    # Exported without a header, row 1 is data: a surname twice reads as a repeated name.
    row = ["V1", SECRET, "1999-04-17", SECRET]
    later = ["V2", "Johnson", "2001-01-02", "Johnson"]
    text = "\n".join(",".join(r) for r in (row, later)) + "\n"
    refused(as_source(text.encode()), "columns 2 and 4 of the header have the same name")
    refused(as_source(make_workbook(row, later)), "columns 2 and 4 of the header")
    table = pa.Table.from_arrays([pa.array([v]) for v in later], names=row)
    buf = io.BytesIO()
    pq.write_table(table, buf)
    refused(as_source(buf.getvalue()), "columns 2 and 4 of the header")


def test_an_unbalanced_quote_is_reported_at_the_line_where_it_opens(as_source: MakeSource) -> None:
    text = make_text(make_rows(4)).replace(f",{SECRET},", f',"{SECRET},', 1)  # line 2 opens
    message = refused(as_source(text.encode()), "line 2, column 15 (victim_last_name)")
    assert "never closed" in message and "quote" in message


def test_a_stray_quote_inside_a_value_is_reported_with_its_line(as_source: MakeSource) -> None:
    text = make_text(make_rows(4)).replace(f",{SECRET},", f',"{SECRET}"x,', 3)
    refused(as_source(text.encode()), "line 2", "quote")


def test_a_ragged_line_is_reported_with_its_line_and_counts(as_source: MakeSource) -> None:
    text = make_text(make_rows(4)) + f"V9,{SECRET}\n"
    refused(as_source(text.encode()), "line 6", "2 values", "25 columns")


class CountedReads(SpoolLike):
    """A file object (as the upload spool's reader is) that counts the bytes read from it."""

    def __init__(self, content: bytes) -> None:
        super().__init__(content)
        self.size = len(content)
        self.bytes_read = 0

    def readinto(self, buffer: Any) -> int:
        count = super().readinto(buffer)
        self.bytes_read += count
        return count


#: Whole-file reads a refusal may cost: the scan that hashes, pyarrow's attempt (which reads
#: ahead), the csv module's pass, the re-read of the faulty line for its message, and slack.
#: Speed itself is bench/bench_reader.py's business; this bounds the work, not the clock.
READS_PER_REFUSAL = 5


def refused_with_bounded_reading(content: bytes, *where: str) -> str:
    """:func:`refused` on ``content``, after checking the refusal read the file a bounded
    number of times over, never once per line or per value."""
    source = CountedReads(content)
    message = refused(source, *where)
    assert source.bytes_read <= READS_PER_REFUSAL * source.size, source.bytes_read / source.size
    return message


TEN_MB_ONE_VALUE = b"id,name\n1," + SECRET.encode() * 1_000_000 + b"\n"
TEN_MB_UNCLOSED_QUOTE = b'id,name\n1,ok\n2,"' + SECRET.encode() * 1_000_000 + b"\n3,ok\n"
TEN_MB_OF_SHORT_VALUES = b"id,name\n" + b"x," * 5_000_000 + b"\n"


def test_a_10_mb_single_line_is_refused_as_too_long_a_value(as_source: MakeSource) -> None:
    message = refused(as_source(TEN_MB_ONE_VALUE), "line 2, column 2 (name)", "longer than")
    assert f"{MAX_CELL_CHARS:,}" in message


def test_a_10_mb_unclosed_quote_is_refused_at_its_line(as_source: MakeSource) -> None:
    refused(as_source(TEN_MB_UNCLOSED_QUOTE), "line 3, column 2 (name)", "quote")


def test_a_10_mb_line_of_many_short_values_is_refused_as_ragged(as_source: MakeSource) -> None:
    refused(as_source(TEN_MB_OF_SHORT_VALUES), "line 2", "values where the header has 2 columns")


@pytest.mark.parametrize(
    ("content", "where"),
    [
        (TEN_MB_ONE_VALUE, "longer than"),
        (TEN_MB_UNCLOSED_QUOTE, "quote"),
        (TEN_MB_OF_SHORT_VALUES, "values where the header has 2 columns"),
    ],
    ids=["one-value", "unclosed-quote", "short-values"],
)
def test_a_10_mb_bad_line_is_refused_after_a_bounded_number_of_reads(
    content: bytes, where: str
) -> None:
    refused_with_bounded_reading(content, where)


def test_an_old_binary_xls_workbook_is_refused(as_source: MakeSource) -> None:
    refused(as_source(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64), ".xls")


def test_a_gzipped_file_is_refused(as_source: MakeSource) -> None:
    refused(as_source(b"\x1f\x8b\x08\x00" + b"\x00" * 64), "gzip")


# --- encodings ------------------------------------------------------------------------------


def test_a_nul_byte_is_refused_with_its_line_and_offset(as_source: MakeSource) -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Whit\x00field"
    refused(as_source(make_text(rows).encode()), "NUL", "line 3", "offset")


def test_a_nul_character_in_utf16_is_refused_with_its_line(as_source: MakeSource) -> None:
    rows = make_rows()
    rows[1]["victim_last_name"] = "Whit\x00field"
    refused(as_source(make_text(rows).encode("utf-16")), "NUL", "line 3")


def test_a_mostly_utf8_file_with_a_windows_1252_byte_is_refused_not_misread(
    as_source: MakeSource,
) -> None:
    rows = make_rows()
    rows[0]["victim_first_name"] = "Zoë"
    head = make_text(rows).encode("utf-8")
    content = head + "V9,Nuñez".encode("cp1252") + b"\n"
    message = refused(as_source(content), "mixes encodings", "line 5", f"offset {len(head) + 5}")
    assert "0xF1" in message


def test_a_windows_1252_byte_before_the_first_utf8_character_is_still_mixed(
    as_source: MakeSource,
) -> None:
    rows = make_rows(2)
    rows[0]["victim_last_name"] = "Nuñez"
    rows[1]["victim_first_name"] = "Zoë"
    lines = make_text(rows).split("\n")
    content = "\n".join(lines[:2]).encode("cp1252") + ("\n" + "\n".join(lines[2:])).encode()
    refused(as_source(content), "mixes encodings", "line 2", "0xF1")


@pytest.mark.parametrize(
    ("blocks", "encoding"),
    [
        pytest.param([b"id,name\n1,Nu\xc3", b"\xb1ez\n"], "utf-8-sig", id="utf-8"),
        pytest.param([b"id,name\n1,Nu\xf1", b"ez\n"], "cp1252", id="windows-1252"),
        pytest.param([codecs.BOM_UTF16_LE + b"a\x00\n", b"\x00b\x00\n\x00"], "utf-16", id="utf-16"),
    ],
)
def test_a_character_split_between_read_blocks_is_decoded_whole(
    blocks: list[bytes], encoding: str
) -> None:
    probe = probe_for(blocks[0])
    for block in blocks:
        probe.feed(block)
    probe.finish()
    assert probe.decide(Source(b"".join(blocks))) == encoding


def test_a_broken_utf16_character_is_refused_with_its_line(as_source: MakeSource) -> None:
    head = codecs.BOM_UTF16_LE + make_text(make_rows()).encode("utf-16-le")
    content = head + b"\x00\xd8" + ",x\n".encode("utf-16-le")  # a lone surrogate on line 5
    refused(as_source(content), "line 5", f"offset {len(head)}", "not UTF-16")


def test_a_utf16_file_with_an_odd_number_of_bytes_is_refused(as_source: MakeSource) -> None:
    refused(as_source(make_text(make_rows()).encode("utf-16") + b"\x00"), "odd number of bytes")


def test_a_byte_defined_in_neither_utf8_nor_windows_1252_is_refused(as_source: MakeSource) -> None:
    content = make_text(make_rows()).encode("cp1252").replace(b"Whit", b"Wh\x81t", 1)
    refused(as_source(content), "0x81", "line 2")


def test_windows_1252_is_refused_as_not_utf8_when_the_fallback_is_off(
    as_source: MakeSource,
) -> None:
    content = make_text(make_rows()).replace(SECRET, "Nuñez").encode("cp1252")
    refused(as_source(content), "not UTF-8", "line 2", allow_cp1252=False)


# --- workbooks and Parquet ------------------------------------------------------------------


def test_an_xlsx_zip_bomb_is_refused_before_it_is_opened(as_source: MakeSource) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        with archive.open("xl/worksheets/sheet1.xml", "w") as member:
            zeros = bytes(1 << 20)
            for _ in range(64):
                member.write(zeros)
    content = buf.getvalue()
    assert len(content) < 1 << 20  # 64 MiB of zeros squeezes to well under 1 MiB
    refused(as_source(content), "zip bomb", f"to {(64 << 20) + len('<workbook/>'):,} bytes")


def test_an_xlsx_with_too_many_parts_is_refused(as_source: MakeSource) -> None:
    members: dict[str, bytes | str] = {"xl/workbook.xml": "<workbook/>"}
    members.update({f"xl/p{i}.xml": "" for i in range(MAX_MEMBERS)})
    refused(as_source(make_zip(members)), "parts", f"{MAX_MEMBERS:,}")


def test_a_zip_that_is_not_a_workbook_is_refused(as_source: MakeSource) -> None:
    content = make_zip({"extract.csv": make_text(make_rows())})
    refused(as_source(content), "not an Excel workbook")


def test_a_zip_with_a_damaged_directory_is_refused(as_source: MakeSource) -> None:
    refused(as_source(b"PK\x03\x04" + b"\x00" * 100), "directory is damaged")


def test_a_damaged_workbook_is_refused(as_source: MakeSource) -> None:
    content = make_workbook(["id", "name"], ["1", SECRET])
    with zipfile.ZipFile(io.BytesIO(content)) as original:
        kept = {
            name: original.read(name)
            for name in original.namelist()
            if name != "xl/worksheets/sheet1.xml"
        }
    refused(as_source(make_zip(kept)), "workbook")


def test_an_xlsx_value_outside_the_named_columns_is_refused_with_row_and_column(
    as_source: MakeSource,
) -> None:
    content = make_workbook(["id", "name"], ["1", SECRET], ["2", "ok", SECRET])
    refused(as_source(content), "row 3", "column C")


def test_an_xlsx_with_an_empty_first_row_is_refused(as_source: MakeSource) -> None:
    content = make_workbook([None], [SECRET])
    refused(as_source(content), "row 1")


def test_an_xlsx_error_never_quotes_a_sheet_name_that_is_not_the_datasets(
    as_source: MakeSource,
) -> None:
    # A sheet's name is the agency's free text (here a surname); the dataset's own is quoted.
    dataset = "police_victimizations"
    content = make_workbook(["id", "name"], ["1", "ok", "x"], sheets=(SECRET,))
    refused(as_source(content), "the sheet, row 2, column C", dataset=dataset)
    refused(as_source(make_workbook([None], ["1"], sheets=(SECRET,))), "the sheet has no header")
    content = make_workbook([None], ["1"], sheets=(SECRET, "Police Victimizations"))
    refused(as_source(content), "sheet 'Police Victimizations' has no header", dataset=dataset)


def test_a_truncated_parquet_file_is_refused(as_source: MakeSource) -> None:
    content = make_parquet([{"id": "1", "name": SECRET}] * 3)
    refused(as_source(content[: len(content) // 2]), "Parquet", "damaged")


def test_a_parquet_file_with_nested_columns_is_refused_naming_them(as_source: MakeSource) -> None:
    refused(as_source(make_parquet([{"id": "1", "aliases": [SECRET]}])), "aliases", "nested")


# --- size -----------------------------------------------------------------------------------


def test_a_file_over_the_size_limit_is_refused_with_its_size_and_the_limit(
    as_source: MakeSource,
) -> None:
    content = make_text(make_rows(40)).encode()
    with pytest.raises(ExtractTooLarge) as info:
        open_extract(as_source(content), max_bytes=len(content) - 1)
    message = info.value.detail
    assert f"{len(content):,} bytes" in message and f"{len(content) - 1:,} bytes" in message
    assert info.value.status_code == 413 and isinstance(info.value, ExtractUnreadable)
    assert SECRET not in message


def test_a_file_at_the_size_limit_is_read(as_source: MakeSource) -> None:
    content = make_text(make_rows(40)).encode()
    extract = open_extract(as_source(content), max_bytes=len(content))
    assert sum(len(c) for c in extract.chunks(7)) == 40


def test_the_size_limit_is_checked_before_the_file_is_parsed(as_source: MakeSource) -> None:
    bomb = make_zip({"xl/workbook.xml": bytes(8 << 20)}, zipfile.ZIP_DEFLATED)
    with pytest.raises(ExtractTooLarge):
        open_extract(as_source(bomb), max_bytes=len(bomb) // 2)
    with pytest.raises(ExtractTooLarge):
        open_extract(as_source(b"a,b\n1,\x00\n"), max_bytes=4)


def test_a_stream_of_unknown_length_is_refused_once_reading_passes_the_limit() -> None:
    content = b"a,b\n" + b"1,2\n" * 5_000_000  # 20 MB: more than two read blocks
    stream = UnknownLength(content)
    with pytest.raises(ExtractTooLarge) as info:
        open_extract(stream, max_bytes=1 << 20)
    assert "larger than" in info.value.detail and f"{1 << 20:,} bytes" in info.value.detail
    assert stream.tell() < len(content)  # it stopped reading: not the whole file


# --- hostile values that are only data ------------------------------------------------------


@pytest.mark.parametrize("value", ["=HYPERLINK(1)", "+1+1", "-2+3", "@SUM(A1)", "=1;2"])
def test_formula_like_values_read_back_unchanged(as_source: MakeSource, value: str) -> None:
    rows = make_rows(2)
    rows[1]["victim_last_name"] = value
    frame = read_extract(as_source(make_text(rows).encode()))
    assert frame.loc[1, "victim_last_name"] == value
    frame = read_extract(as_source(make_workbook(["id", "name"], ["1", value])))
    assert frame.loc[0, "name"] == value
    frame = read_extract(as_source(make_parquet([{"id": "1", "name": value}])))
    assert frame.loc[0, "name"] == value


SQL_NAME = 'name"; DROP TABLE records;--'


def test_a_column_named_like_sql_is_read_as_an_ordinary_column_name(
    as_source: MakeSource,
) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([["id", SQL_NAME], ["1", "ok"]])
    for content in (
        buf.getvalue().encode(),
        make_workbook(["id", SQL_NAME], ["1", "ok"]),
        make_parquet([{"id": "1", SQL_NAME: "ok"}]),
    ):
        extract = open_extract(as_source(content))
        assert extract.header == ["id", SQL_NAME]
        frame = next(extract.chunks())
        assert list(frame.columns) == ["id", SQL_NAME] and frame.loc[0, SQL_NAME] == "ok"


def test_an_unquoted_column_name_with_a_quote_in_it_is_read_as_written(
    as_source: MakeSource,
) -> None:
    frame = read_extract(as_source(f"id,{SQL_NAME}\n1,ok\n".encode()))
    assert list(frame.columns) == ["id", SQL_NAME]
