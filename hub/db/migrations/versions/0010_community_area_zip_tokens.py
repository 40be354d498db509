"""a home community area and the ZIPs it spans (``records.t_ca``, ``t_az1``-``t_az3``)

A field linked as a community area (``link_as: community_area``) gives the area (``t_ca``) and
the ZIPs it spans, from the crosswalk shipped with the hub, hashed as ZIPs: a record that holds a
home area, not a home ZIP (a violence-intervention program's participants), then agrees or
disagrees with another agency's home ZIP, and with another record's area. Records stored before
this revision have none, and cannot be given them without the raw data: they keep linking on
every other token, and a record the provider later revises, under an agreement version that
links the area, is stored with them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 03:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

COLUMNS = ("t_ca", "t_az1", "t_az2", "t_az3")


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
