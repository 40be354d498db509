"""The agreement for people: plain-language rendering, plain-language diffs, ODRL export.

Pure functions of :class:`contracts.model.Agreement`:

* :func:`render_markdown`, :func:`render_html` — the agreement as a document a lawyer, a steward
  and a member of the public can read (``render.py``, written out by ``document.py``).
* :func:`diff_agreements`, :func:`format_diff` — what changed between two versions, one
  sentence per change (``diff.py`` walks the canonical forms, ``sentences.py`` words them, and
  ``measure_sentences.py`` the changes to what an aggregate counts).
* :func:`to_odrl` — the agreement as a W3C ODRL 2.2 ``Agreement`` in JSON-LD (``odrl.py``).

``words.py`` holds the vocabulary in words that all of them share; ``aggregate_words.py`` says
what an aggregate counts (measure, value, numerator) in words.
"""

from contracts.readable.diff import Change, diff_agreements, format_diff
from contracts.readable.odrl import to_odrl
from contracts.readable.render import render_html, render_markdown

__all__ = [
    "Change",
    "diff_agreements",
    "format_diff",
    "render_html",
    "render_markdown",
    "to_odrl",
]
