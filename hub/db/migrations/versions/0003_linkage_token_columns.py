"""linkage tokens as 64-bit columns on records

Tokens move from one row per token (``linkage_tokens``) to sixteen BIGINT columns on
``records`` (see ``hub.pseudonymize.TOKEN_COLUMNS``): a million-row upload then writes a million
rows, not fifteen million, and linkage reads one narrow table. ``records.values`` becomes plain
JSON on PostgreSQL (cheaper to bulk-load than JSONB), and records lose their foreign keys (see
``FOREIGN_KEYS``). Existing tokens cannot be converted without the raw data, so the migration
refuses to run over stored tokens: clear the records and upload the extracts again.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 22:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TOKEN_COLUMNS = (
    "t_fn",
    "t_fn2",
    "t_fi",
    "t_fsx",
    "t_mn",
    "t_ln",
    "t_ln2",
    "t_ln3",
    "t_lsx",
    "t_dob",
    "t_dob2",
    "t_by",
    "t_md",
    "t_md2",
    "t_sex",
    "t_zip3",
)

#: Dropped: a per-row foreign key check costs about 15 µs on PostgreSQL, 15 s per million rows.
FOREIGN_KEYS = (
    ("fk_records_dataset_id_datasets", "dataset_id", "datasets", "id"),
    ("fk_records_upload_id_uploads", "upload_id", "uploads", "id"),
    (
        "fk_records_agreement_version_id_agreement_versions",
        "agreement_version_id",
        "agreement_versions",
        "id",
    ),
)


def upgrade() -> None:
    held = op.get_bind().execute(sa.text("SELECT count(*) FROM linkage_tokens")).scalar_one()
    if held:
        raise RuntimeError(
            f"linkage_tokens holds {held} tokens in the old format; they cannot be converted "
            "without the raw data. Export what you need, clear records and re-upload."
        )
    op.drop_table("linkage_tokens")
    with op.batch_alter_table("records") as batch:
        batch.drop_index("ix_records_dataset_id")
        for fk in FOREIGN_KEYS:
            batch.drop_constraint(fk[0], type_="foreignkey")
        for name in TOKEN_COLUMNS:
            batch.add_column(sa.Column(name, sa.BigInteger(), nullable=True))
        batch.alter_column(
            "values",
            existing_type=sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            type_=sa.JSON(),
            postgresql_using='"values"::json',
        )


def downgrade() -> None:
    with op.batch_alter_table("records") as batch:
        batch.alter_column(
            "values",
            existing_type=sa.JSON(),
            type_=sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
            postgresql_using='"values"::jsonb',
        )
        for name in reversed(TOKEN_COLUMNS):
            batch.drop_column(name)
        batch.create_index("ix_records_dataset_id", ["dataset_id"])
        for name, column, table, remote in FOREIGN_KEYS:
            batch.create_foreign_key(name, table, [column], [remote])
    op.create_table(
        "linkage_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("record_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("token", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.ForeignKeyConstraint(
            ["record_id"],
            ["records.id"],
            name=op.f("fk_linkage_tokens_record_id_records"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_linkage_tokens")),
    )
    op.create_index("ix_linkage_tokens_kind_token", "linkage_tokens", ["kind", "token"])
    op.create_index(
        op.f("ix_linkage_tokens_record_id"), "linkage_tokens", ["record_id"], unique=False
    )
