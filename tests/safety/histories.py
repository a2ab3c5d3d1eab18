"""Prisma histories written in a test, judged as ``lint PATH`` judges a migrations folder:
no database, each file after the ones before it."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path

from reconciler.safety.analyse import judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.source.base import Migration


def static_findings(*files: str, now: datetime) -> list[Finding]:
    """Findings of the last of ``files``, linted statically as one Prisma history folder."""
    batch = []
    for number, sql in enumerate(files):
        mid = f"2026110{number}000000_step"
        path = Path(f"/app/prisma/migrations/{mid}/migration.sql")
        found = Migration(mid, "step", path, hashlib.sha256(sql.encode()).hexdigest())
        batch.append(parse_migration(found, sql, "postgresql"))
    results = judge_batch(batch, None, now=now, grace_seconds=7 * 86400, live_batch=False)
    return results[batch[-1].migration.id]
