"""Deleting records, with what hangs on them.

``records`` and ``person_links`` carry no foreign keys (see the models), so nothing cascades:
every deletion of records goes through :func:`delete_records`, which deletes their person links
in the same statement sequence.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.db.models import PersonLink, Record


def delete_records(session: Session, *where: Any) -> None:
    """Delete the records matching ``where`` (SQLAlchemy criteria on :class:`Record`) and
    their person links."""
    doomed = select(Record.id).where(*where)
    session.execute(
        delete(PersonLink)
        .where(PersonLink.record_id.in_(doomed))
        .execution_options(synchronize_session=False)
    )
    session.execute(delete(Record).where(*where).execution_options(synchronize_session=False))
