"""A small document model written out as Markdown or as self-contained HTML.

The rendering builds one :class:`Document` and both writers read it, so the Markdown and the HTML
always say the same thing. Every piece of text is plain text: the writers escape it (Markdown
with backslashes, HTML with entities), so a title such as ``<script>`` in an agreement shows as
those characters and never becomes markup. The HTML has no scripts and no external assets, and
its Content-Security-Policy forbids loading any.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

__all__ = [
    "Block",
    "Bullets",
    "Document",
    "Facts",
    "Paragraph",
    "Section",
    "Table",
    "to_html",
    "to_markdown",
]


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Facts:
    """Label–value pairs: "Effective: 2025-07-01"."""

    rows: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = Paragraph | Bullets | Facts | Table


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)
    children: list[Section] = field(default_factory=list)


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)


# --- Markdown -----------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*\[\]<>|#&~])")
_MD_LONE_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")
_MD_LINE_START = re.compile(r"^(\s*)([-+=~]|\d+[.)])(?=\s|$)")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def md_escape(text: str) -> str:
    """Plain text safe inside a Markdown line: no markup, no raw HTML, no line breaks.

    Underscores inside words (``victim_dob``) are left alone, since CommonMark never reads them
    as emphasis; those at a word's edge are escaped."""
    text = _MD_SPECIAL.sub(r"\\\1", _one_line(text))
    text = _MD_LONE_UNDERSCORE.sub(r"\\_", text)
    return _MD_LINE_START.sub(r"\1\\\2", text)


def _md_blocks(blocks: list[Block]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            out.append(md_escape(block.text))
        elif isinstance(block, Bullets):
            out.append("\n".join(f"- {md_escape(item)}" for item in block.items))
        elif isinstance(block, Facts):
            out.append("\n".join(f"- **{md_escape(k)}:** {md_escape(v)}" for k, v in block.rows))
        else:
            lines = [
                "| " + " | ".join(md_escape(h) for h in block.header) + " |",
                "|" + "---|" * len(block.header),
            ]
            lines += ["| " + " | ".join(md_escape(c) for c in row) + " |" for row in block.rows]
            out.append("\n".join(lines))
    return out


def _md_section(section: Section, level: int) -> list[str]:
    out = [f"{'#' * level} {md_escape(section.title)}", *_md_blocks(section.blocks)]
    for child in section.children:
        out += _md_section(child, min(level + 1, 6))
    return out


def to_markdown(document: Document) -> str:
    parts = [f"# {md_escape(document.title)}", *_md_blocks(document.blocks)]
    for section in document.sections:
        parts += _md_section(section, 2)
    return "\n\n".join(parts) + "\n"


# --- HTML ---------------------------------------------------------------------------------------

_CSS = """
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1b1b;
background:#fff;margin:0}
main{max-width:52rem;margin:0 auto;padding:1.5rem}
h1{font-size:1.8rem;line-height:1.2}h2{border-bottom:1px solid #ccc;margin-top:2rem}
h3{margin-top:1.5rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}
dd{margin:0}table{border-collapse:collapse;width:100%}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3}nav ol{columns:2}
@media print{nav{display:none}}
"""


def _h(text: str) -> str:
    return html.escape(text, quote=True)


def _slug(text: str, used: set[str]) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"
    slug, n = base, 2
    while slug in used:
        slug, n = f"{base}-{n}", n + 1
    used.add(slug)
    return slug


def _html_blocks(blocks: list[Block]) -> list[str]:
    out: list[str] = []
    for block in blocks:
        if isinstance(block, Paragraph):
            out.append(f"<p>{_h(block.text)}</p>")
        elif isinstance(block, Bullets):
            items = "".join(f"<li>{_h(item)}</li>" for item in block.items)
            out.append(f"<ul>{items}</ul>")
        elif isinstance(block, Facts):
            rows = "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in block.rows)
            out.append(f"<dl>{rows}</dl>")
        else:
            head = "".join(f'<th scope="col">{_h(h)}</th>' for h in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{_h(c)}</td>" for c in row) + "</tr>" for row in block.rows
            )
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    return out


def _html_section(section: Section, level: int, used: set[str]) -> list[str]:
    slug = _slug(section.title, used)
    tag = f"h{min(level, 6)}"
    out = [f'<section id="{slug}">', f"<{tag}>{_h(section.title)}</{tag}>"]
    out += _html_blocks(section.blocks)
    for child in section.children:
        out += _html_section(child, level + 1, used)
    out.append("</section>")
    return out


def to_html(document: Document) -> str:
    """A complete HTML page: inline style only, no scripts, nothing loaded from elsewhere."""
    used: set[str] = set()
    body = [f"<h1>{_h(document.title)}</h1>", *_html_blocks(document.blocks)]
    sections: list[str] = []
    toc: list[str] = []
    for section in document.sections:
        lines = _html_section(section, 2, used)
        slug = lines[0].split('"')[1]
        toc.append(f'<li><a href="#{slug}">{_h(section.title)}</a></li>')
        sections += lines
    if toc:
        body.append(f'<nav aria-label="Contents"><h2>Contents</h2><ol>{"".join(toc)}</ol></nav>')
    body += sections
    head = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        f"<title>{_h(document.title)}</title>",
        f"<style>{_CSS.strip()}</style>",
        "</head>",
        "<body>",
        "<main>",
    ]
    return "\n".join([*head, *body, "</main>", "</body>", "</html>"]) + "\n"
