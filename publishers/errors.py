"""Errors raised by the release engine.

::

    PublisherError                 base; the hub maps it to its own HTTP error
    ├── ReleaseRefused             the request cannot be answered as asked (no such aggregate,
    │                              a dimension without a public key set, an empty window, ...)
    └── RowsMismatch               the rows the hub handed over do not match the narrow
                                   interface (a missing column, a null person_id)

Messages are sentences for the person who asked, and never contain a data value.
"""

from __future__ import annotations


class PublisherError(Exception):
    """Base of every error the release engine raises on purpose."""


class ReleaseRefused(PublisherError):
    """The release (or preview) cannot be computed as requested; the message says why."""


class RowsMismatch(PublisherError):
    """The rows handed to the engine do not follow the interface described in ``release.py``."""
