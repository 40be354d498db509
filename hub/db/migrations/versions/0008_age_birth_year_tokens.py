"""birth years an age allows (``records.t_ay``, ``t_ay2``), and birth year and month (``t_ym``)

A field linked as an age (``link_as: age`` with ``age_at``, its date) gives the two birth years
the age allows on that date, hashed as birth years, so a record without a birth date still
agrees or disagrees on the year with others. Records stored before this revision have neither,
and cannot be given them without the raw data: they keep linking on every other token, and a
record the provider later revises (a corrected extract, under an agreement version that links
the age) is stored with them. ``t_ym`` (a birth date's year and month) tells a mistyped day
from another person born the same year; old records gain it the same way.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 13:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

COLUMNS = ("t_ay", "t_ay2", "t_ym")


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
