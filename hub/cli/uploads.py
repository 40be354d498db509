"""``ovphub uploads ...``: what a data steward sees of their agency's uploads (the same views as
``GET /api/v1/uploads...``), and the progress line of ``ovphub upload``.

Stewards see their own agency's receipts, reports and the releases that used them; admins see
every agency's; analysts and legal staff are refused.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, TextIO

import typer

from hub.cli.common import acting, emit, handles_errors

uploads_app = typer.Typer(
    help="Your agency's upload receipts, validation reports, and the releases that used them.",
    no_args_is_help=True,
)

UploadId = Annotated[str, typer.Argument(help="An upload id, from a receipt or `uploads list`")]


class ProgressLine:
    """``ovphub upload``'s progress on stderr: rows done and rows/s, redrawn in place at most
    every ``interval`` seconds; :meth:`close` ends the line. Called as ``progress(rows_done)``
    by the upload service after each chunk."""

    def __init__(self, stream: TextIO | None = None, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.interval = interval
        self.started = time.monotonic()
        self._drawn_at: float | None = None
        self._rows = 0

    def __call__(self, rows_done: int) -> None:
        self._rows = rows_done
        now = time.monotonic()
        if self._drawn_at is None or now - self._drawn_at >= self.interval:
            self._draw(now)

    def _draw(self, now: float) -> None:
        elapsed = max(now - self.started, 1e-9)
        self.stream.write(
            f"\r{self._rows:,} rows  {self._rows / elapsed:,.0f} rows/s  {elapsed:,.1f} s "
        )
        self.stream.flush()
        self._drawn_at = now

    def close(self, rows_done: int | None = None) -> None:
        """Draw the final count if given (``rows_done``: the upload succeeded) and end the line;
        without one (an error) just end the line, if one was drawn."""
        if rows_done is not None:
            self._rows = rows_done
            self._draw(time.monotonic())
        if self._drawn_at is not None:
            self.stream.write("\n")
            self.stream.flush()


@uploads_app.command("list")
@handles_errors
def uploads_list() -> None:
    """Receipts of your agency's uploads, oldest first (admins: every agency's)."""
    from hub.ingest.views import list_receipts_view

    with acting() as (hub, actor), hub.session() as s:
        receipts = list_receipts_view(s, actor)
    emit(receipts)


@uploads_app.command("show")
@handles_errors
def uploads_show(
    upload_id: UploadId,
    html: Annotated[
        Path | None,
        typer.Option(help="Also write the validation report as a self-contained HTML page here"),
    ] = None,
) -> None:
    """One receipt with its validation report (rule names and row numbers, never values)."""
    from hub.ingest.views import render_report_html, upload_view

    with acting() as (hub, actor), hub.session() as s:
        shown = upload_view(s, actor, upload_id)
    if html is not None:
        page = render_report_html(shown["report"]["report"], shown["dataset"])
        html.write_text(page, encoding="utf-8")
        typer.echo(f"wrote the HTML report to {html}", err=True)
    emit(shown)


@uploads_app.command("releases")
@handles_errors
def uploads_releases(
    upload: Annotated[
        str | None, typer.Option(help="Only releases that used this upload id")
    ] = None,
) -> None:
    """Which releases used your agency's data: aggregate, recipient, privacy loss, agreements,
    and the uploads each one used (admins: every release)."""
    from hub.ingest.views import releases_using

    with acting() as (hub, actor), hub.session() as s:
        used = releases_using(s, actor, upload)
    emit(used)
