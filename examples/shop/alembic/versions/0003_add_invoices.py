"""add_invoices: invoices table

Revision ID: 6aee811e5a25
Revises: bc24c57e0400
Create Date: 2026-10-13 10:15:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "6aee811e5a25"
down_revision: str | Sequence[str] | None = "bc24c57e0400"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DATETIME on SQLite, TIMESTAMP(3) on PostgreSQL (what Prisma uses for DateTime).
TIMESTAMP = sa.DateTime().with_variant(postgresql.TIMESTAMP(precision=3), "postgresql")


def upgrade() -> None:
    op.create_table(
        "invoices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("amount_cents", sa.Integer(), nullable=False),
        sa.Column("currency", sa.Text(), server_default="usd", nullable=False),
        sa.Column(
            "issued_at",
            TIMESTAMP,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.Column("paid_at", TIMESTAMP, nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"],
            ["subscriptions.id"],
            name="invoices_subscription_id_fkey",
            ondelete="RESTRICT",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="invoices_pkey"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("invoices")
