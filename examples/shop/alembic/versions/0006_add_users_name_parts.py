"""add_users_name_parts: users.first_name and users.last_name

Expand step of an expand/contract change: the new columns are nullable and
users.name stays in place until every reader has moved over.

Revision ID: 78678c730ea9
Revises: 6006f5654468
Create Date: 2026-11-03 11:30:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "78678c730ea9"
down_revision: str | Sequence[str] | None = "6006f5654468"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("first_name", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("last_name", sa.Text(), nullable=True))


def downgrade() -> None:
    # SQLite: dropping a column makes batch mode rebuild the table.
    with op.batch_alter_table("users", table_kwargs={"sqlite_autoincrement": True}) as batch_op:
        batch_op.drop_column("last_name")
        batch_op.drop_column("first_name")
