"""Render a validation report as one self-contained HTML page.

No external assets (many city networks block CDNs): the styles are inline and there is no
script. Every piece of text, header names included, is escaped, since a header name comes
from the uploaded file.
"""

from __future__ import annotations

from html import escape

from validators.report import Finding, ValidationReport, describe_rows

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem;
       padding: 0 1rem; color: #1b1b1b; }
h1 { font-size: 1.4rem; margin-bottom: .25rem; }
.verdict { font-weight: 600; padding: .5rem .75rem; border-radius: 4px; display: inline-block; }
.ok { background: #e6f4ea; color: #1e5e2e; }
.rejected { background: #fdecea; color: #8a1c12; }
table { border-collapse: collapse; width: 100%; margin-top: 1rem; }
th, td { text-align: left; vertical-align: top; padding: .4rem .5rem;
         border-bottom: 1px solid #ddd; }
th { background: #f4f4f4; }
td.num { text-align: right; white-space: nowrap; }
.sev-error { color: #8a1c12; font-weight: 600; }
.sev-warning { color: #7a5200; font-weight: 600; }
code { font-size: .9em; }
"""


def _row(f: Finding) -> str:
    rows = "" if f.is_column_finding else describe_rows(f.first_rows, f.failing_rows)
    count = "" if f.is_column_finding else str(f.failing_rows)
    return (
        "<tr>"
        f'<td class="sev-{escape(f.severity)}">{escape(f.severity)}</td>'
        f"<td><code>{escape(f.rule)}</code></td>"
        f"<td>{escape(f.column or '')}</td>"
        f'<td class="num">{escape(count)}</td>'
        f"<td>{escape(rows)}</td>"
        f"<td>{escape(f.message)}</td>"
        "</tr>"
    )


def render_html(report: ValidationReport) -> str:
    """A complete HTML document for ``report`` (UTF-8, no external references)."""
    verdict = "Accepted" if report.ok else "Rejected"
    css_class = "ok" if report.ok else "rejected"
    if report.findings:
        body = (
            "<table><thead><tr><th>Severity</th><th>Rule</th><th>Column</th>"
            "<th>Rows</th><th>Which rows</th><th>What to do</th></tr></thead><tbody>"
            + "".join(_row(f) for f in report.findings)
            + "</tbody></table>"
        )
    else:
        body = "<p>Every check passed.</p>"
    title = f"Validation report: {report.dataset}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{report.rows_checked} data rows checked. Row numbers count data rows from 1; "
        "the header is not a row. No values from the file are shown.</p>"
        f'<p class="verdict {css_class}">{verdict}: {len(report.errors)} error(s), '
        f"{len(report.warnings)} warning(s)</p>"
        f"{body}</body></html>\n"
    )
