"""the halves of a first name and a surname (``records.t_fh1``/``t_fh2``, ``t_lh1``/``t_lh2``)

Each half of the first name's first word, and of the whole surname, hashed with the name's
length (``hub.pseudonymize.name_halves``): a name mistyped by one letter keeps one half whole,
so linkage can tell a typo from another name where Soundex cannot. Records stored before this
revision have none, and cannot be given them without the raw data: they keep linking on every
other name token, and a record the provider later sends again is stored with them. Sent again
unchanged, such a record now differs in its tokens, so the receipt counts it as replaced, not
unchanged, and it has no person id until the next linkage run.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 06:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

COLUMNS = ("t_fh1", "t_fh2", "t_lh1", "t_lh2")


def upgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        for name in reversed(COLUMNS):
            batch.drop_column(name)
