"""``resolve``: a person's word on a failed migration, as ``prisma migrate resolve`` takes it.

After a failed migration was fixed (reconciler rolled its transaction back, so nothing of it
is in effect), ``--rolled-back`` marks the failed row so the next run applies the fixed file.
``--applied`` records that a person applied it by hand.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from reconciler.db.connection import connect
from reconciler.errors import Refused
from reconciler.source import open_layout
from reconciler.source.prisma import PrismaLayout

if TYPE_CHECKING:
    from reconciler.policy.model import Target


def resolve_failed(target: Target, migration: str, how: Literal["rolled-back", "applied"]) -> None:
    layout = open_layout(target.migrations)
    if not isinstance(layout, PrismaLayout):
        raise Refused(
            f"resolve is for Prisma's history table; target {target.name!r} uses Alembic, "
            "which records no failed migrations (fix the revision and run again)"
        )
    db = connect(target.database)
    try:
        if not layout.resolve(db, migration, how):
            raise Refused(f"{target.name}: no failed migration named {migration!r} to resolve")
    finally:
        db.close()
