"""add_users_clerk_id: users.clerk_id with a unique index

Revision ID: 1be6392c3219
Revises: 6aee811e5a25
Create Date: 2026-10-20 16:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "1be6392c3219"
down_revision: str | Sequence[str] | None = "6aee811e5a25"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("clerk_id", sa.Text(), nullable=True))
        batch_op.create_index("users_clerk_id_key", ["clerk_id"], unique=True)


def downgrade() -> None:
    # SQLite: dropping a column makes batch mode rebuild the table.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_index("users_clerk_id_key")
        batch_op.drop_column("clerk_id")
