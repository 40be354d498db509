"""a swapped-names token: the first name keyed as a surname (``records.t_sw``)

Records stored before this revision have no ``t_sw`` (it cannot be made without the raw data);
they still link on every other token, and gain it when their extract is uploaded again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 15:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.add_column(sa.Column("t_sw", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.drop_column("t_sw")
