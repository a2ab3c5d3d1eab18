"""identity runs and webhook events

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identity_runs",
        sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("target", sa.String(63), nullable=False, index=True),
        sa.Column("dry_run", sa.Boolean, nullable=False),
        sa.Column("listed", sa.Integer),
        sa.Column("provider_count", sa.Integer),
        sa.Column("missing", sa.Integer),
        sa.Column("changed", sa.Integer),
        sa.Column("orphans", sa.Integer),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("soft_deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("deleted", sa.Integer, nullable=False, server_default="0"),
        sa.Column("conflicts", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "webhook_events",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("target", sa.String(63), nullable=False, index=True),
        sa.Column("user_key", sa.String(255), nullable=False, index=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("event_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("webhook_events")
    op.drop_table("identity_runs")
