"""person-identifier, full-postcode and address tokens (``records.t_zip``, ``t_pid``, ``t_st``,
``t_stn``, ``t_loc``, ``t_hn``)

Records stored before this revision have none of them (they cannot be made without the raw
data); they still link on every other token, and gain them when their extract is uploaded
again.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 18:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

COLUMNS = ("t_zip", "t_pid", "t_st", "t_stn", "t_loc", "t_hn")


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
