"""Reading an upload form in memory, within the upload limit.

Starlette's form parser spools every file part over 1 MiB to a temporary file on disk, and an
extract holds names and birth dates, which must never reach a disk in plaintext (invariant 1).
So the upload route reads its own body: the request stream goes through python-multipart's
streaming parser into memory, and the request is refused as soon as the file passes
``HUB_MAX_UPLOAD_BYTES`` — before reading at all when ``Content-Length`` already says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from .errors import MalformedRequest, UploadTooLarge

FILE_FIELD = "file"
TEXT_FIELDS = ("agreement_id", "dataset_id")
#: Room in ``Content-Length`` for boundaries, part headers and the two short text fields.
FORM_OVERHEAD = 64 * 1024
TEXT_LIMIT = 1024

#: The form as OpenAPI sees it (the route parses the body itself, so FastAPI cannot infer it).
UPLOAD_FORM_OPENAPI = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": [FILE_FIELD, *TEXT_FIELDS],
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "The extract (CSV, UTF-8, header row)",
                        },
                        "agreement_id": {
                            "type": "string",
                            "description": "Agreement id, e.g. dsa-police-victimizations",
                        },
                        "dataset_id": {
                            "type": "string",
                            "description": "Dataset id, e.g. police_victimizations",
                        },
                    },
                }
            }
        },
    }
}

HOW = (
    "send multipart/form-data with a file part named `file` and the fields `agreement_id` and "
    "`dataset_id`"
)


@dataclass(frozen=True)
class ExtractForm:
    agreement_id: str
    dataset_id: str
    content: bytes


def too_large(limit: int) -> UploadTooLarge:
    return UploadTooLarge(
        f"the file is larger than the hub's upload limit of {limit:,} bytes; nothing was "
        "stored. Split the extract (for example by date range) and upload the parts, or ask the "
        "hub administrator to raise HUB_MAX_UPLOAD_BYTES",
        limit=limit,
    )


@dataclass
class _Collector:
    """python-multipart callbacks that keep the parts in memory, counting against the limit."""

    limit: int
    file: bytearray | None = None
    text: dict[str, str] = field(default_factory=dict)
    ended: bool = False
    _header_name: bytearray = field(default_factory=bytearray)
    _header_value: bytearray = field(default_factory=bytearray)
    _disposition: bytes = b""
    _name: str = ""
    _is_file: bool = False
    _data: bytearray = field(default_factory=bytearray)

    def on_part_begin(self) -> None:
        self._disposition, self._name, self._is_file = b"", "", False
        self._data = bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if bytes(self._header_name).lower() == b"content-disposition":
            self._disposition = bytes(self._header_value)
        self._header_name, self._header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise MalformedRequest(f"a form part has no name; {HOW}")
        self._name = options[b"name"].decode("utf-8", "replace")
        self._is_file = b"filename" in options

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._data += data[start:end]
        if self._is_file and len(self._data) > self.limit:
            raise too_large(self.limit)
        if not self._is_file and len(self._data) > TEXT_LIMIT:
            raise MalformedRequest(f"the form field {self._name!r} is too long; {HOW}")

    def on_part_end(self) -> None:
        if self._is_file and self._name == FILE_FIELD:
            if self.file is not None:
                raise MalformedRequest(f"the form holds more than one file; {HOW}")
            self.file = self._data
        elif not self._is_file and self._name in TEXT_FIELDS:
            self.text[self._name] = self._data.decode("utf-8", "replace").strip()
        self._data = bytearray()

    def on_end(self) -> None:
        self.ended = True

    def form(self) -> ExtractForm:
        if not self.ended:
            raise MalformedRequest(f"the upload ended before the form was complete; {HOW}")
        missing = [n for n in TEXT_FIELDS if not self.text.get(n)]
        if self.file is None:
            missing.insert(0, FILE_FIELD)
        if missing:
            raise MalformedRequest(f"the form lacks {', '.join(missing)}; {HOW}", missing=missing)
        assert self.file is not None
        return ExtractForm(self.text["agreement_id"], self.text["dataset_id"], bytes(self.file))


async def read_extract_form(request: Request, limit: int) -> ExtractForm:
    """The upload form, parsed in memory; :class:`UploadTooLarge` past ``limit`` file bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        raise too_large(limit)
    content_type, params = parse_options_header(request.headers.get("content-type"))
    if content_type != b"multipart/form-data" or not params.get(b"boundary"):
        raise MalformedRequest(f"the upload is not a multipart form; {HOW}")
    collector = _Collector(limit)
    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": collector.on_part_begin,
            "on_header_field": collector.on_header_field,
            "on_header_value": collector.on_header_value,
            "on_header_end": collector.on_header_end,
            "on_headers_finished": collector.on_headers_finished,
            "on_part_data": collector.on_part_data,
            "on_part_end": collector.on_part_end,
            "on_end": collector.on_end,
        },
    )
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except FormParserError:
        raise MalformedRequest(f"the multipart body could not be parsed; {HOW}") from None
    return collector.form()
