"""add_subscriptions_canceled_at: subscriptions.canceled_at and users.deleted_at

users.deleted_at supports soft deletion.

Revision ID: 04e502db77de
Revises: 78678c730ea9
Create Date: 2026-11-10 15:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "04e502db77de"
down_revision: str | Sequence[str] | None = "78678c730ea9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# DATETIME on SQLite, TIMESTAMP(3) on PostgreSQL (what Prisma uses for DateTime).
TIMESTAMP = sa.DateTime().with_variant(postgresql.TIMESTAMP(precision=3), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch_op:
        batch_op.add_column(sa.Column("canceled_at", TIMESTAMP, nullable=True))
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("deleted_at", TIMESTAMP, nullable=True))


def downgrade() -> None:
    # SQLite: dropping a column makes batch mode rebuild the table.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("deleted_at")
    with op.batch_alter_table(
        "subscriptions", table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        batch_op.drop_column("canceled_at")
