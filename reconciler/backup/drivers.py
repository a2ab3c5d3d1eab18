"""Choose a target's backup driver from its policy."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.backup.base import BackupDriver
    from reconciler.policy.model import Target


def open_driver(target: Target) -> BackupDriver:
    spec = target.backup
    assert spec is not None
    if spec.driver == "pg_dump":
        from reconciler.backup.pg_dump import PgDumpDriver

        return PgDumpDriver(target.name, target.database, spec.dir)
    if spec.driver == "sqlite":
        from reconciler.backup.sqlite import SqliteDriver

        return SqliteDriver(target.name, target.database, spec.dir)
    from reconciler.backup.neon import NeonDriver

    assert spec.neon is not None
    driver: BackupDriver = NeonDriver(target.name, target.database, spec.neon)
    return driver
