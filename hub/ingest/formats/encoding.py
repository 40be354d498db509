"""A CSV's text encoding, found in one streaming pass without holding the file.

Encodings, in the order they are tried:

* UTF-16 (LE or BE) when the file starts with its byte-order mark;
* UTF-8, with or without a BOM, checked strictly over the whole file;
* Windows-1252 (which covers Latin-1's printable characters) when the file is not UTF-8, holds
  no well-formed UTF-8 multi-byte character at all, and has none of the five bytes
  Windows-1252 leaves undefined. A file that is mostly UTF-8 with a stray Windows-1252 byte is
  refused with the byte's line and offset rather than read as mojibake. The fallback can be
  turned off (``allow_cp1252=False``), in which case such files are refused as "not UTF-8".

A file holding a NUL byte (a NUL character, in UTF-16) is refused: it is not text.

A probe (:class:`ByteProbe` or :class:`Utf16Probe`, from :func:`probe_for`) is fed the file
block by block while the same pass hashes it, and records only first offsets and flags, so
memory stays at one block. Its ``decide`` method then names the codec or raises
:class:`~hub.ingest.formats.base.ExtractUnreadable`; line numbers for that message are found
by reading the file again up to the offset (only when there is an error to report).
"""

from __future__ import annotations

import codecs
from typing import Protocol

from hub.ingest.formats.base import ExtractUnreadable
from hub.ingest.formats.source import Source, read_blocks

#: Bytes Windows-1252 does not define; a file holding one is in neither UTF-8 nor cp1252.
CP1252_UNDEFINED = b"\x81\x8d\x8f\x90\x9d"
_REPLACEMENT = "\ufffd".encode()  # U+FFFD itself, spelled in UTF-8


class Probe(Protocol):
    """What one streaming pass learns about a CSV's bytes."""

    #: Whether a double quote occurs anywhere (the fast reader needs there to be none).
    quoted: bool
    #: Whether the file holds nothing but whitespace after its byte-order mark, if any (ASCII
    #: whitespace for single-byte text); the one "the file is empty" check rests on it.
    blank: bool

    def feed(self, block: bytes) -> None: ...

    def finish(self) -> None: ...

    def decide(self, source: Source, *, allow_cp1252: bool = True) -> str: ...


def probe_for(head: bytes) -> Probe:
    """The probe for a file starting with ``head``."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return Utf16Probe()
    return ByteProbe()


class ByteProbe:
    """UTF-8 or Windows-1252: NUL bytes, strict UTF-8, cp1252's undefined bytes, quotes."""

    def __init__(self) -> None:
        self.quoted = False
        self.blank = True
        self.size = 0
        self.nul_at: int | None = None
        #: First byte that is not UTF-8 (offset and value).
        self.bad_at: int | None = None
        self.bad_byte = 0
        #: Whether a well-formed multi-byte UTF-8 character occurs anywhere.
        self.utf8_character = False
        #: First byte Windows-1252 leaves undefined (offset and value).
        self.undefined_at: int | None = None
        self.undefined_byte = 0
        self.utf8_bom = False
        self._strict = codecs.getincrementaldecoder("utf-8")()
        self._lenient = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._tail = b""

    def feed(self, block: bytes) -> None:
        start = self.size
        body = block
        if start == 0:
            self.utf8_bom = block.startswith(codecs.BOM_UTF8)
            if self.utf8_bom:
                body = block[len(codecs.BOM_UTF8) :]  # a byte-order mark alone is still empty
        self.size += len(block)
        if self.blank and body:
            self.blank = body.isspace()
        if not self.quoted:
            self.quoted = b'"' in block
        if self.nul_at is None and (nul := block.find(b"\x00")) >= 0:
            self.nul_at = start + nul
        ascii_only = block.isascii()
        if not ascii_only and self.undefined_at is None:
            found = [i for i in map(block.find, _UNDEFINED_BYTES) if i >= 0]
            if found:
                self.undefined_at = start + min(found)
                self.undefined_byte = block[min(found)]
        if self.bad_at is None:
            if not ascii_only or self._strict.getstate()[0]:
                self._decode(block, start)
        elif not self.utf8_character and not ascii_only:
            self._look_for_utf8(block)

    def _decode(self, block: bytes, start: int, final: bool = False) -> None:
        pending = self._strict.getstate()[0]
        try:
            text = self._strict.decode(block, final=final)
        except UnicodeDecodeError as exc:
            self.bad_at = start - len(pending) + exc.start
            self.bad_byte = exc.object[exc.start]
            # Look again at the whole block, with what the decoder held back, for a
            # well-formed character before or after the bad byte.
            self._look_for_utf8(pending + block)
            return
        if not text.isascii():
            self.utf8_character = True

    def _look_for_utf8(self, block: bytes) -> None:
        text = self._lenient.decode(block)
        if not text.replace("\ufffd", "").isascii() or _REPLACEMENT in self._tail + block:
            self.utf8_character = True
        self._tail = block[-2:]

    def finish(self) -> None:
        if self.bad_at is None:
            self._decode(b"", self.size, final=True)

    def decide(self, source: Source, *, allow_cp1252: bool = True) -> str:
        if self.nul_at is not None:
            line, column = byte_position(source, self.nul_at)
            raise ExtractUnreadable(
                f"line {line}, byte {column} (offset {self.nul_at}): the file contains a NUL "
                "byte, so it is not a text CSV; export it again as CSV (UTF-8), or as UTF-16 "
                "with a byte-order mark"
            )
        bad = self.bad_at
        if bad is None:
            return "utf-8-sig"
        if self.utf8_bom or self.utf8_character:
            line, column = byte_position(source, bad)
            raise ExtractUnreadable(
                f"line {line}, byte {column} (offset {bad}): the file mixes encodings: it is "
                f"UTF-8 up to there, but byte 0x{self.bad_byte:02X} is not UTF-8 (it looks like "
                "Windows-1252); export the whole extract as UTF-8"
            )
        if not allow_cp1252:
            line, _ = byte_position(source, bad)
            raise ExtractUnreadable(
                f"the file is not UTF-8: byte {bad} (line {line}) cannot be decoded; "
                "export the extract as UTF-8"
            )
        if self.undefined_at is not None:
            first = self.undefined_at
            line, column = byte_position(source, first)
            raise ExtractUnreadable(
                f"line {line}, byte {column} (offset {first}): byte 0x{self.undefined_byte:02X} "
                "is neither UTF-8 nor Windows-1252; export the extract as UTF-8"
            )
        return "cp1252"


_UNDEFINED_BYTES = [bytes([b]) for b in CP1252_UNDEFINED]


class Utf16Probe:
    """UTF-16 with a byte-order mark: a whole number of code units, decodable, no NUL."""

    def __init__(self) -> None:
        self.quoted = False
        self.blank = True  # until a character other than whitespace is decoded
        self.size = 0
        self.bad_at: int | None = None
        self.nul_line: int | None = None
        self._decoder = codecs.getincrementaldecoder("utf-16")()
        self._lines = 1

    def feed(self, block: bytes) -> None:
        start = self.size
        self.size += len(block)
        if self.bad_at is None:
            self._decode(block, start)

    def _decode(self, block: bytes, start: int, final: bool = False) -> None:
        pending = len(self._decoder.getstate()[0])
        try:
            text = self._decoder.decode(block, final=final)
        except UnicodeDecodeError as exc:
            self.bad_at = start - pending + exc.start
            self.blank = False  # bytes that are not UTF-16 are not an empty file
            return
        if self.blank and text.strip():
            self.blank = False
        if self.nul_line is None and (nul := text.find("\x00")) >= 0:
            self.nul_line = self._lines + text.count("\n", 0, nul)
        if not self.quoted:
            self.quoted = '"' in text
        self._lines += text.count("\n")

    def finish(self) -> None:
        if self.size % 2:
            self.blank = False  # cut short or not UTF-16, which decide() reports
        elif self.bad_at is None:
            self._decode(b"", self.size, final=True)

    def decide(self, source: Source, *, allow_cp1252: bool = True) -> str:
        if self.size % 2:
            raise ExtractUnreadable(
                "the file starts like UTF-16 but has an odd number of bytes, so it is cut short "
                "or not UTF-16; export it again"
            )
        if self.bad_at is not None:
            line = text_line(source, "utf-16", self.bad_at)
            raise ExtractUnreadable(
                f"line {line} (offset {self.bad_at}): the file starts like UTF-16 but bytes "
                "there are not UTF-16; export the extract again as UTF-8"
            )
        if self.nul_line is not None:
            raise ExtractUnreadable(
                f"line {self.nul_line}: the file contains a NUL character, so it is not a text "
                "CSV; export it again as CSV"
            )
        return "utf-16"


# --- positions, found again only when an error needs them -----------------------------------


def byte_position(source: Source, offset: int) -> tuple[int, int]:
    """(line, byte column), both 1-based, of byte ``offset`` in single-byte-newline text."""
    line, line_start, seen = 1, 0, 0
    with source.open() as stream:
        for block in read_blocks(stream):
            part = block[: offset - seen]
            if newlines := part.count(b"\n"):
                line += newlines
                line_start = seen + part.rfind(b"\n") + 1
            seen += len(block)
            if seen >= offset:
                break
    return line, offset - line_start + 1


def text_line(source: Source, encoding: str, offset: int) -> int:
    """The 1-based line holding byte ``offset`` of the file decoded with ``encoding``."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    line, seen = 1, 0
    with source.open() as stream:
        for block in read_blocks(stream):
            line += decoder.decode(block[: offset - seen]).count("\n")
            seen += len(block)
            if seen >= offset:
                break
    return line
