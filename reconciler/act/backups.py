"""Backups as the pipeline uses them: take, prove by a restore, record, prune.

A backup counts only once a restore of it matched the live data: the census (row counts,
non-null counts, small-table checksums) of a scratch copy must equal the census of the
live database at the moment of the backup. For ``pg_dump`` that moment is exact: the
census is taken inside the very snapshot pg_dump dumps (``pg_export_snapshot``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from reconciler.backup import Artifact, BackupDriver, BackupError, open_driver
from reconciler.db.connection import connect
from reconciler.ledger import BackupInfo
from reconciler.observe.census import Census, TableCensus, differences, take_census

if TYPE_CHECKING:
    from reconciler.db.url import DatabaseUrl
    from reconciler.ledger import Ledger
    from reconciler.policy.model import Target


@dataclass(frozen=True)
class BackupResult:
    artifact: Artifact
    verified: bool | None
    message: str
    pruned: tuple[str, ...] = ()


def take_backup(
    target: Target,
    ledger: Ledger,
    *,
    reason: str,
    run_id: int | None = None,
    driver: BackupDriver | None = None,
    protect: Collection[str] = (),
) -> BackupResult:
    """Take, verify (when the policy says so), record and prune (never the backups named in
    ``protect``); raises ``BackupError`` when the backup cannot be taken or fails
    verification (recorded as failed)."""
    assert target.backup is not None
    driver = driver or open_driver(target)
    artifact, census = _take(driver, target, reason)
    ledger.record_backup(
        BackupInfo(
            artifact.id,
            target.name,
            driver.name,
            artifact.location,
            reason,
            run_id,
            artifact.created_at,
            artifact.size_bytes,
            artifact.sha256,
            census.to_json() if census else None,
        )
    )
    verified: bool | None = None
    message = "not verified (verify: none)"
    if target.backup.verify == "restore":
        problems = verify(driver, artifact, census, target)
        verified = not problems
        message = (
            "restored into a scratch database; census identical"
            if verified
            else "; ".join(problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else "")
        )
        ledger.mark_verified(artifact.id, verified, message)
        if not verified:
            raise BackupError(f"backup {artifact.id} failed verification: {message}")
    pruned = prune(target, driver, ledger, protect=protect)
    return BackupResult(artifact, verified, message, tuple(pruned))


def _take(driver: BackupDriver, target: Target, reason: str) -> tuple[Artifact, Census | None]:
    consistent = getattr(driver, "take_with_census", None)
    if consistent is not None:
        artifact, census = consistent(reason)
        return artifact, census
    # Drivers without a shared snapshot: the census of the live database just before.
    census = _live_census(target)
    return driver.take(reason), census


def _live_census(target: Target) -> Census:
    db = connect(target.database, application_name="reconciler-census")
    try:
        return take_census(db)
    finally:
        db.close()


def verify(
    driver: BackupDriver, artifact: Artifact, census: Census | None, target: Target
) -> list[str]:
    """Problems found restoring ``artifact`` and comparing it with ``census``. The restore
    checks the stored file's integrity first (sha256), once."""
    expected = census or _live_census(target)
    try:
        with driver.copy(artifact) as scratch_url:
            db = connect(scratch_url, application_name="reconciler-verify")
            try:
                copy = take_census(db, like=expected)
            finally:
                db.close()
    except BackupError as exc:
        return [f"restore failed: {exc}"]
    return differences(expected, copy)


def census_from_json(data: dict[str, object] | None) -> Census | None:
    """The census a ledger record holds; ``{}`` is the census of an empty database (the
    backup before a first migration), not a missing one."""
    if data is None:
        return None
    tables = {}
    for name, raw in data.items():
        entry = raw if isinstance(raw, dict) else {}
        tables[name] = TableCensus(
            int(entry.get("rows", 0)), dict(entry.get("non_null", {})), entry.get("checksum")
        )
    return Census(tables)


def prune(
    target: Target,
    driver: BackupDriver,
    ledger: Ledger,
    now: datetime | None = None,
    protect: Collection[str] = (),
) -> list[str]:
    """Delete backups beyond ``keep.last`` or older than ``keep.max_age``; never the newest
    verified one, so there is always a proven way back, nor one in ``protect`` (in use)."""
    assert target.backup is not None
    keep = target.backup.keep
    now = now or datetime.now(UTC)
    records = ledger.backups(target.name)
    newest_verified = next((b.id for b in records if b.verified), None)
    oldest_allowed = now - timedelta(seconds=keep.max_age)
    removed: list[str] = []
    for index, record in enumerate(records):
        if record.id == newest_verified or record.id in protect:
            continue
        if index >= keep.last or record.created_at < oldest_allowed:
            driver.delete(
                Artifact(
                    record.id, record.target, record.driver, record.location, record.created_at
                )
            )
            ledger.mark_deleted(record.id)
            removed.append(record.id)
    return removed


def describe_backup(result: BackupResult) -> str:
    artifact = result.artifact
    size = f", {artifact.size_bytes:,} bytes" if artifact.size_bytes is not None else ""
    state = {True: "verified", False: "FAILED verification", None: "not verified"}[result.verified]
    pruned = f"; pruned {len(result.pruned)} old backup(s)" if result.pruned else ""
    return f"backup {artifact.id} ({artifact.driver}{size}) {state}: {result.message}{pruned}"


def artifact_of(info: BackupInfo) -> Artifact:
    return Artifact(
        info.id,
        info.target,
        info.driver,
        info.location,
        info.created_at,
        info.size_bytes,
        info.sha256,
    )


def restored_differences(info: BackupInfo, to: DatabaseUrl) -> tuple[list[str], Census] | None:
    """How the database at ``to``, just restored from backup ``info``, differs from the
    census recorded with that backup (tables, row and non-null counts, checksums), and its
    census; None when the backup recorded none. A restore is reported only once this is
    empty."""
    expected = census_from_json(info.census)
    if expected is None:
        return None
    db = connect(to, application_name="reconciler-restore")
    try:
        restored = take_census(db, like=expected)
    finally:
        db.close()
    return differences(expected, restored), restored
