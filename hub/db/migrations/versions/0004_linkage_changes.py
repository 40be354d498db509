"""linkage changes: the merges and splits of person ids, run by run

Person ids are kept stable across linkage runs; when a run joins two people or parts one, the
change is recorded here so that an analyst can see why a count moved.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 15:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "linkage_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("person_id", sa.String(length=32), nullable=False),
        sa.Column("other_person_id", sa.String(length=32), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["linkage_runs.id"], name=op.f("fk_linkage_changes_run_id_linkage_runs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkage_changes")),
    )
    for column in ("run_id", "person_id", "other_person_id"):
        op.create_index(op.f(f"ix_linkage_changes_{column}"), "linkage_changes", [column])


def downgrade() -> None:
    for column in ("other_person_id", "person_id", "run_id"):
        op.drop_index(op.f(f"ix_linkage_changes_{column}"), table_name="linkage_changes")
    op.drop_table("linkage_changes")
