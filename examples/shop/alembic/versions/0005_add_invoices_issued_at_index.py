"""add_invoices_issued_at_index: index on invoices.issued_at

Revision ID: 6006f5654468
Revises: 1be6392c3219
Create Date: 2026-10-27 09:45:00.000000

"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "6006f5654468"
down_revision: str | Sequence[str] | None = "1be6392c3219"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("invoices_issued_at_idx", "invoices", ["issued_at"])


def downgrade() -> None:
    op.drop_index("invoices_issued_at_idx", table_name="invoices")
