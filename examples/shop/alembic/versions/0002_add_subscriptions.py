"""add_subscriptions: subscriptions table with a status enum

Revision ID: bc24c57e0400
Revises: 5cbbcd681ee0
Create Date: 2026-10-06 14:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "bc24c57e0400"
down_revision: str | Sequence[str] | None = "5cbbcd681ee0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DATETIME on SQLite, TIMESTAMP(3) on PostgreSQL (what Prisma uses for DateTime).
TIMESTAMP = sa.DateTime().with_variant(postgresql.TIMESTAMP(precision=3), "postgresql")


def _subscription_status() -> sa.Enum:
    # A native enum type on PostgreSQL. create_type=False because upgrade() and
    # downgrade() create and drop the type themselves, so create_table() must
    # not emit CREATE TYPE a second time. On SQLite the column is plain TEXT
    # and create()/drop() do nothing.
    return sa.Enum(
        "active",
        "past_due",
        "canceled",
        name="SubscriptionStatus",
        create_type=False,
    )


def upgrade() -> None:
    status = _subscription_status()
    status.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "subscriptions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("plan", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Text().with_variant(status, "postgresql"),
            server_default="active",
            nullable=False,
        ),
        sa.Column(
            "created_at",
            TIMESTAMP,
            server_default=sa.text("CURRENT_TIMESTAMP"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name="subscriptions_user_id_fkey",
            ondelete="RESTRICT",
            onupdate="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="subscriptions_pkey"),
        sqlite_autoincrement=True,
    )
    op.create_index("subscriptions_user_id_idx", "subscriptions", ["user_id"])


def downgrade() -> None:
    op.drop_index("subscriptions_user_id_idx", table_name="subscriptions")
    op.drop_table("subscriptions")
    _subscription_status().drop(op.get_bind(), checkfirst=False)
