"""Migration sources: where a target's migrations come from and how a database records them.

A *layout* couples the two halves of a migration tool: its files on disk (read offline) and
its history table inside the target database (read and written live). ``prisma`` and
``alembic`` are the two layouts; ``open_layout`` picks one from the policy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.source.base import AppliedMigration, Layout, LiveHistory, Migration

if TYPE_CHECKING:
    from reconciler.policy.model import Migrations


def open_layout(spec: Migrations) -> Layout:
    """The layout named by the policy, its files read and checked offline."""
    if spec.layout == "prisma":
        from reconciler.source.prisma import PrismaLayout

        return PrismaLayout(spec.path)
    from reconciler.source.alembic import AlembicLayout

    return AlembicLayout(spec.path)


__all__ = ["AppliedMigration", "Layout", "LiveHistory", "Migration", "open_layout"]
