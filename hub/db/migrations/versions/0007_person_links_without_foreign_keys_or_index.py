"""person_links without foreign keys or the person_id index

PostgreSQL checked both foreign keys of ``person_links`` once per row: 3.9 s of the 5.4 s a
400,000-link COPY took here (the check locks each referenced ``records`` row, which writes to
it). The index on ``person_id`` cost 8 of the 11.5 s that inserting 2,000,000 links took, and
served no query: none looks a person up; releases and link rates read every link.

Links are written only by the linkage run, under its datasets' shared lock and only for records
still there; a record's link is deleted with it by :func:`hub.db.records.delete_records`, which
both paths that delete records use (corrections in ``hub.ingest.store``, retention purges).
Tests check that no link outlives its record. ``records`` has no foreign keys for the same
reason.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 07:50:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

RECORD_FK = "fk_person_links_record_id_records"
RUN_FK = "fk_person_links_run_id_linkage_runs"
PERSON_INDEX = "ix_person_links_person_id"


def upgrade() -> None:
    with op.batch_alter_table("person_links") as batch:
        batch.drop_index(PERSON_INDEX)
        batch.drop_constraint(RECORD_FK, type_="foreignkey")
        batch.drop_constraint(RUN_FK, type_="foreignkey")


def downgrade() -> None:
    # Links whose record is gone would make the constraint fail: drop them first.
    op.execute("DELETE FROM person_links WHERE record_id NOT IN (SELECT id FROM records)")
    with op.batch_alter_table("person_links") as batch:
        batch.create_foreign_key(RECORD_FK, "records", ["record_id"], ["id"], ondelete="CASCADE")
        batch.create_foreign_key(RUN_FK, "linkage_runs", ["run_id"], ["id"])
        batch.create_index(PERSON_INDEX, ["person_id"], unique=False)
