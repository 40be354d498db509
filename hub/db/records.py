"""Deleting records, with what hangs on them, and the per-dataset lock that orders it.

``records`` and ``person_links`` carry no foreign keys (see the models), so nothing cascades:
every deletion of records goes through :func:`delete_records`, which deletes their person links
in the same statement sequence.

On PostgreSQL every writer of a dataset's records takes :func:`lock_datasets` first: an upload,
a retention purge and a key rotation exclusively, a linkage run shared (only to write its links,
so uploads wait seconds, not the whole run). So a linkage run never writes a link for a record
deleted after it checked the record was there, and uploads of one dataset never interleave.
Each caller locks once per transaction, all its datasets at once, in id order, so two lockers
cannot deadlock on these rows. SQLite serializes every writer anyway.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.db.models import DatasetRegistration, PersonLink, Record


def lock_datasets(session: Session, dataset_ids: Iterable[str], *, shared: bool = False) -> None:
    """Lock the datasets' registrations until the transaction ends (PostgreSQL; a no-op on
    SQLite), in id order. Call it once per transaction, with every dataset the transaction
    will write (see the module docstring). Every dataset with records has a registration: a
    record is stored only for a dataset an agreement governs, and registrations are never
    deleted."""
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(set(dataset_ids))
    if ids:
        session.execute(
            select(DatasetRegistration.id)
            .where(DatasetRegistration.id.in_(ids))
            .order_by(DatasetRegistration.id)
            .with_for_update(read=shared)
        )


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
