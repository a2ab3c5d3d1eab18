"""backups and rehearsals

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "backups",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("target", sa.String(63), nullable=False, index=True),
        sa.Column("driver", sa.String(16), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id")),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger),
        sa.Column("sha256", sa.String(64)),
        sa.Column("census", sa.JSON),
        sa.Column("verified", sa.Boolean),
        sa.Column("verified_at", sa.DateTime(timezone=True)),
        sa.Column("verification", sa.Text),
        sa.Column("deleted_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "rehearsals",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), nullable=False, index=True),
        sa.Column("target", sa.String(63), nullable=False, index=True),
        sa.Column("backup_id", sa.String(128)),
        sa.Column("migration", sa.String(255), nullable=False),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("duration_seconds", sa.Float),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("losses", sa.JSON),
        sa.Column("error", sa.Text),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("rehearsals")
    op.drop_table("backups")
