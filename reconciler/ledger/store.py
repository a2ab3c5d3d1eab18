"""Open the ledger, keep its schema current, and record runs and steps.

Each record is committed as soon as it is written, so a run killed at any instant leaves a
ledger that says how far it got (a step still ``running`` was interrupted).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    create_engine,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from reconciler.db.locks import LEDGER_MIGRATIONS
from reconciler.db.url import DatabaseUrl
from reconciler.errors import DatabaseUnavailable
from reconciler.ledger import models
from reconciler.ledger.records import (
    BackupInfo,
    DecisionRecord,
    LiveRun,
    RehearsalInfo,
    RunRecord,
    StepRecord,
)
from reconciler.secrets import redact

log = logging.getLogger("reconciler.ledger")
MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0004"
"""The newest ledger revision; opening a ledger at this revision skips Alembic entirely."""
PRUNE_BATCH = 2000
"""Runs deleted per transaction by ``prune``."""
CLAIMED = "processing"
"""The outcome of a webhook delivery being processed (claimed, not yet settled)."""
WEBHOOK_CLAIM_TIMEOUT = 600.0
"""Seconds after which a delivery claimed and never settled (its process died) is taken
over by the next attempt: Svix retries after 5 s, 5 min, 30 min, then hours."""

# The two writes of every migration applied, built once: a statement made afresh on each call
# costs SQLAlchemy its construction and cache key again (0.4 to 0.9 ms a write, against 0.15
# to 0.25 ms for these).
_START_STEP = insert(models.Step).values(
    run_id=bindparam("run_id"),
    target=bindparam("target"),
    action=bindparam("action"),
    migration=bindparam("migration"),
    checksum=bindparam("checksum"),
    started_at=bindparam("started_at"),
    outcome="running",
)
_FINISH_STEP = (
    update(models.Step)
    .where(models.Step.id == bindparam("step_id"))
    .values(
        finished_at=bindparam("finished_at"),
        duration_seconds=bindparam("duration_seconds"),
        outcome=bindparam("outcome"),
        error=bindparam("error"),
    )
)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


class Ledger:
    """reconciler's own store; one per process, shared by every target."""

    def __init__(self, url: DatabaseUrl) -> None:
        self.url = url
        if url.dialect == "sqlite":
            url.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url.sqlalchemy_url(), pool_size=2)
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url.sqlalchemy_url(), pool_pre_ping=True, pool_size=2)
        try:
            self._upgrade()
        except LedgerLocked as exc:
            self.engine.dispose()
            raise LedgerLocked(f"ledger {url.redacted}: {exc}") from None
        except SQLAlchemyError as exc:
            self.engine.dispose()
            reason = redact(str(getattr(exc, "orig", exc)).strip().splitlines()[0])
            raise DatabaseUnavailable(f"ledger {url.redacted}: {reason}") from None

    def _upgrade(self) -> None:
        """Bring the ledger's schema to ``HEAD``, one replica at a time.

        Replicas started together on a fresh ledger would each create the same tables (and
        all but one fail on the catalog's unique indexes), so the migration runs under a lock:
        on PostgreSQL a session-level advisory lock of our namespace on the ledger's database,
        released after; on SQLite the write lock of ``BEGIN IMMEDIATE`` around the whole
        upgrade. Whoever waited reads the revision again under the lock, finds it at ``HEAD``
        and goes on. A ledger already at ``HEAD`` takes no lock at all."""
        with self.engine.connect() as conn:
            if _revision(conn) == HEAD:
                return
            if conn.dialect.name == "postgresql":
                _upgrade_under_advisory_lock(conn)
            else:
                _upgrade_under_write_lock(conn)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------

    def start_run(
        self,
        target: str,
        concern: str,
        trigger: str,
        source: str,
        commit: str | None = None,
        started_at: datetime | None = None,
    ) -> int:
        return self._insert_run(
            target=target,
            concern=concern,
            trigger=trigger,
            source=source,
            source_commit=commit,
            started_at=started_at or _now(),
        )

    def finish_run(self, run_id: int, outcome: str, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(models.Run)
                .where(models.Run.id == run_id)
                .values(finished_at=_now(), outcome=outcome, message=redact(message))
            )

    def run(
        self, target: str, concern: str, trigger: str, source: str, commit: str | None = None
    ) -> LiveRun:
        """A run that reaches the ledger when it first has something to record (a step, a
        decision, a backup) or when it ends: a run that only looked costs one write."""
        return LiveRun(self, target, concern, trigger, source, commit, _now())

    def record_run(self, run: LiveRun, outcome: str, message: str) -> int:
        """A whole run in one write: it started, recorded nothing, and ended."""
        return self._insert_run(
            target=run.target,
            concern=run.concern,
            trigger=run.trigger,
            source=run.source,
            source_commit=run.commit,
            started_at=run.started_at,
            finished_at=_now(),
            outcome=outcome,
            message=redact(message),
        )

    def _insert_run(self, **values: object) -> int:
        with self.engine.begin() as conn:
            key = conn.execute(insert(models.Run).values(**values)).inserted_primary_key
        assert key is not None
        return int(key[0])

    def last_run(self, target: str, concern: str = "schema") -> RunRecord | None:
        runs = self.runs(target, concern, limit=1)
        return runs[0] if runs else None

    def runs(self, target: str, concern: str = "schema", limit: int = 20) -> list[RunRecord]:
        query = (
            select(models.Run)
            .where(models.Run.target == target, models.Run.concern == concern)
            .order_by(models.Run.id.desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                RunRecord(
                    r.id,
                    r.target,
                    r.concern,
                    r.trigger,
                    r.source,
                    r.source_commit,
                    _utc(r.started_at) or _now(),
                    _utc(r.finished_at),
                    r.outcome,
                    r.message,
                )
                for r in session.scalars(query)
            ]

    # -- retention --------------------------------------------------------------------

    def prune(
        self, *, runs: float, quiet: float, webhooks: float, now: datetime | None = None
    ) -> tuple[int, int]:
        """Delete runs finished more than ``runs`` seconds ago, and quiet ones (that changed
        nothing: no step, no backup, no rehearsal, no user changed) more than ``quiet`` ago,
        with what they recorded; webhook deliveries received more than ``webhooks`` ago. The
        newest run of each target and concern stays, whatever its age. Works in batches, so
        the ledger is never locked for long. Returns (runs, deliveries) deleted."""
        now = now or _now()
        run, identity = models.Run, models.IdentityRun
        changed_users = (
            identity.created + identity.updated + identity.soft_deleted + identity.deleted
        )
        did_something = or_(
            select(models.Step.id).where(models.Step.run_id == run.id).exists(),
            select(models.BackupRecord.id).where(models.BackupRecord.run_id == run.id).exists(),
            select(models.RehearsalRecord.id)
            .where(models.RehearsalRecord.run_id == run.id)
            .exists(),
            select(identity.run_id).where(identity.run_id == run.id, changed_users > 0).exists(),
        )
        newest = select(func.max(run.id)).group_by(run.target, run.concern)
        old = and_(
            run.finished_at.is_not(None),
            run.id.not_in(newest),
            or_(
                run.finished_at < now - timedelta(seconds=runs),
                and_(run.finished_at < now - timedelta(seconds=quiet), ~did_something),
            ),
        )
        removed = 0
        while True:
            with self.engine.begin() as conn:
                ids = list(conn.execute(select(run.id).where(old).limit(PRUNE_BATCH)).scalars())
                if not ids:
                    break
                for child in (
                    models.Step,
                    models.FindingRecord,
                    models.RehearsalRecord,
                    models.IdentityRun,
                ):
                    conn.execute(delete(child).where(child.run_id.in_(ids)))
                conn.execute(
                    update(models.BackupRecord)
                    .where(models.BackupRecord.run_id.in_(ids))
                    .values(run_id=None)
                )
                conn.execute(delete(run).where(run.id.in_(ids)))
            removed += len(ids)
        with self.engine.begin() as conn:
            deliveries = conn.execute(
                delete(models.WebhookEvent).where(
                    models.WebhookEvent.received_at < now - timedelta(seconds=webhooks)
                )
            ).rowcount
        return removed, int(deliveries or 0)

    # -- findings ---------------------------------------------------------------------

    def record_decisions(self, run_id: int, target: str, decisions: list[DecisionRecord]) -> None:
        """Every finding of every pending step, with the gate's decision on it."""
        now = _now()
        rows = [
            {
                "run_id": run_id,
                "target": target,
                "migration": d.migration,
                "checksum": d.checksum,
                "rule": d.rule,
                "severity": d.severity,
                "location": d.location,
                "message": redact(d.message),
                "decision": d.decision,
                "approval_reason": d.approval_reason,
                "approved_by": d.approved_by,
                "approval_expires": d.approval_expires,
                "recorded_at": now,
            }
            for d in decisions
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(models.FindingRecord), rows)

    def decisions(self, run_id: int) -> list[dict[str, object]]:
        query = select(models.FindingRecord).where(models.FindingRecord.run_id == run_id)
        with Session(self.engine) as session:
            return [
                {
                    "migration": f.migration,
                    "rule": f.rule,
                    "severity": f.severity,
                    "decision": f.decision,
                    "approval_reason": f.approval_reason,
                    "location": f.location,
                    "message": f.message,
                }
                for f in session.scalars(query.order_by(models.FindingRecord.id))
            ]

    # -- backups and rehearsals -------------------------------------------------------

    def record_backup(self, backup: BackupInfo) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(models.BackupRecord).values(
                    id=backup.id,
                    target=backup.target,
                    driver=backup.driver,
                    location=backup.location,
                    reason=backup.reason,
                    run_id=backup.run_id,
                    created_at=backup.created_at,
                    size_bytes=backup.size_bytes,
                    sha256=backup.sha256,
                    census=backup.census,
                    verified=backup.verified,
                )
            )

    def mark_verified(self, backup_id: str, ok: bool, message: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(models.BackupRecord)
                .where(models.BackupRecord.id == backup_id)
                .values(verified=ok, verified_at=_now(), verification=redact(message))
            )

    def mark_deleted(self, backup_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(models.BackupRecord)
                .where(models.BackupRecord.id == backup_id)
                .values(deleted_at=_now())
            )

    def backups(self, target: str, *, include_deleted: bool = False) -> list[BackupInfo]:
        query = select(models.BackupRecord).where(models.BackupRecord.target == target)
        if not include_deleted:
            query = query.where(models.BackupRecord.deleted_at.is_(None))
        with Session(self.engine) as session:
            ordered = query.order_by(models.BackupRecord.created_at.desc())
            return [_backup_info(b) for b in session.scalars(ordered)]

    def backup(self, backup_id: str) -> BackupInfo | None:
        with Session(self.engine) as session:
            record = session.get(models.BackupRecord, backup_id)
            return None if record is None else _backup_info(record)

    def record_rehearsal(
        self, run_id: int, target: str, backup_id: str | None, steps: list[RehearsalInfo]
    ) -> None:
        now = _now()
        rows = [
            {
                "run_id": run_id,
                "target": target,
                "backup_id": backup_id,
                "migration": s.migration,
                "checksum": s.checksum,
                "duration_seconds": s.seconds,
                "outcome": s.outcome,
                "losses": s.losses,
                "error": redact(s.error) if s.error else None,
                "recorded_at": now,
            }
            for s in steps
        ]
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(models.RehearsalRecord), rows)

    def rehearsals(self, run_id: int) -> list[RehearsalInfo]:
        query = (
            select(models.RehearsalRecord)
            .where(models.RehearsalRecord.run_id == run_id)
            .order_by(models.RehearsalRecord.id)
        )
        with Session(self.engine) as session:
            return [
                RehearsalInfo(
                    r.migration,
                    r.checksum,
                    r.duration_seconds,
                    r.outcome,
                    list(r.losses or []),
                    r.error,
                )
                for r in session.scalars(query)
            ]

    # -- identity ---------------------------------------------------------------------

    def record_identity(
        self, run_id: int, target: str, counts: dict[str, int | None], dry_run: bool
    ) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(models.IdentityRun).values(
                    run_id=run_id,
                    target=target,
                    dry_run=dry_run,
                    **{k: v for k, v in counts.items() if v is not None},
                )
            )

    def identity_runs(self, target: str, limit: int = 10) -> list[dict[str, object]]:
        query = (
            select(models.IdentityRun)
            .where(models.IdentityRun.target == target)
            .order_by(models.IdentityRun.run_id.desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            return [
                {c.name: getattr(r, c.name) for c in models.IdentityRun.__table__.columns}
                for r in session.scalars(query)
            ]

    def claim_webhook(
        self,
        event_id: str,
        target: str,
        user_key: str,
        kind: str,
        event_time: datetime,
        *,
        abandoned_after: float = WEBHOOK_CLAIM_TIMEOUT,
        now: datetime | None = None,
    ) -> bool:
        """Take a delivery to process it: True for exactly one of any number of deliveries
        of one ``event_id``, however many arrive at once (the primary key decides, across
        replicas too). False when it is taken already, unless its taker has held it for
        ``abandoned_after`` seconds without settling or releasing it (a process that died
        mid-way): that claim is taken over."""
        now = now or _now()
        values = {
            "target": target,
            "user_key": user_key,
            "type": kind,
            "event_time": event_time,
            "received_at": now,
            "outcome": CLAIMED,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(models.WebhookEvent).values(id=event_id, **values))
            return True
        except IntegrityError:
            pass
        abandoned = now - timedelta(seconds=abandoned_after)
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(models.WebhookEvent)
                .where(
                    models.WebhookEvent.id == event_id,
                    models.WebhookEvent.outcome == CLAIMED,
                    models.WebhookEvent.received_at < abandoned,
                )
                .values(**values)
            )
        return taken.rowcount == 1

    def settle_webhook(self, event_id: str, outcome: str) -> None:
        """Record what became of a claimed delivery; it is received now, when its change is
        made (what ``webhook_keys_since`` compares a listing's start with)."""
        with self.engine.begin() as conn:
            conn.execute(
                update(models.WebhookEvent)
                .where(models.WebhookEvent.id == event_id)
                .values(outcome=outcome, received_at=_now())
            )

    def release_webhook(self, event_id: str) -> None:
        """Give a claimed delivery up (it failed): Svix's next attempt processes it."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(models.WebhookEvent).where(
                    models.WebhookEvent.id == event_id, models.WebhookEvent.outcome == CLAIMED
                )
            )

    def webhook_seen(self, event_id: str) -> bool:
        with Session(self.engine) as session:
            return session.get(models.WebhookEvent, event_id) is not None

    def latest_event_time(self, target: str, user_key: str) -> datetime | None:
        query = select(func.max(models.WebhookEvent.event_time)).where(
            models.WebhookEvent.target == target,
            models.WebhookEvent.user_key == user_key,
            models.WebhookEvent.outcome == "applied",
        )
        with Session(self.engine) as session:
            return _utc(session.scalar(query))

    def webhook_deletions_since(self, target: str, since: datetime) -> int:
        """``user.deleted`` events applied since ``since``: what webhooks spent of the
        deletion guard's budget."""
        query = select(func.count()).where(
            models.WebhookEvent.target == target,
            models.WebhookEvent.type == "user.deleted",
            models.WebhookEvent.received_at >= since,
            models.WebhookEvent.outcome == "applied",
        )
        with Session(self.engine) as session:
            return int(session.scalar(query) or 0)

    def webhook_keys_since(self, target: str, since: datetime) -> list[str]:
        """Users a webhook changed after ``since``: newer than a listing that began then."""
        query = (
            select(models.WebhookEvent.user_key)
            .where(
                models.WebhookEvent.target == target,
                models.WebhookEvent.received_at >= since,
                models.WebhookEvent.outcome == "applied",
            )
            .distinct()
        )
        with Session(self.engine) as session:
            return list(session.scalars(query))

    # -- steps ------------------------------------------------------------------------

    def start_step(
        self, run_id: int, target: str, action: str, migration: str, checksum: str | None
    ) -> int:
        values = {
            "run_id": run_id,
            "target": target,
            "action": action,
            "migration": migration,
            "checksum": checksum,
            "started_at": _now(),
        }
        with self.engine.begin() as conn:
            key = conn.execute(_START_STEP, values).inserted_primary_key
        assert key is not None
        return int(key[0])

    def finish_step(
        self, step_id: int, outcome: str, duration: float, error: str | None = None
    ) -> None:
        values = {
            "step_id": step_id,
            "finished_at": _now(),
            "duration_seconds": duration,
            "outcome": outcome,
            "error": redact(error) if error else None,
        }
        with self.engine.begin() as conn:
            conn.execute(_FINISH_STEP, values)

    def steps(self, run_id: int) -> list[StepRecord]:
        query = select(models.Step).where(models.Step.run_id == run_id).order_by(models.Step.id)
        with Session(self.engine) as session:
            return [
                StepRecord(
                    s.id,
                    s.run_id,
                    s.migration,
                    s.checksum,
                    _utc(s.started_at) or _now(),
                    _utc(s.finished_at),
                    s.duration_seconds,
                    s.outcome,
                    s.error,
                )
                for s in session.scalars(query)
            ]


def _backup_info(b: models.BackupRecord) -> BackupInfo:
    return BackupInfo(
        b.id,
        b.target,
        b.driver,
        b.location,
        b.reason,
        b.run_id,
        _utc(b.created_at) or _now(),
        b.size_bytes,
        b.sha256,
        b.census,
        b.verified,
        _utc(b.verified_at),
        b.verification,
        _utc(b.deleted_at),
    )


def _revision(conn: Connection) -> str | None:
    """The ledger's revision; None before its first migration. Ends the transaction."""
    try:
        return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except SQLAlchemyError:
        return None  # no table yet (a lost connection fails again at the next statement)
    finally:
        conn.rollback()


def _migrate(conn: Connection) -> None:
    """Alembic's upgrade to head, on ``conn`` inside the transaction it is in."""
    from alembic import command  # only when the ledger's schema must move
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


MIGRATION_LOCK_WAIT = 120.0
"""Seconds a replica waits for another one migrating the ledger. The ledger's migrations
take a second or two; a holder far beyond that is stuck (a session left idle holding the
lock), and a replica that waited without end would start nothing and say nothing."""


class LedgerLocked(DatabaseUnavailable):
    """Another session held the ledger's migration lock for longer than a migration takes."""


def _upgrade_under_advisory_lock(conn: Connection) -> None:
    key = {"key": LEDGER_MIGRATIONS}
    if not conn.execute(text("SELECT pg_try_advisory_lock(:key)"), key).scalar():
        log.info("another replica is migrating the ledger: waiting for it")
        wait = f"{int(MIGRATION_LOCK_WAIT * 1000)}ms"
        try:
            conn.execute(text("SELECT set_config('lock_timeout', :wait, true)"), {"wait": wait})
            conn.execute(text("SELECT pg_advisory_lock(:key)"), key)
        except OperationalError as exc:
            if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                raise
            conn.rollback()
            raise LedgerLocked(_lock_holders(conn)) from None
    conn.commit()  # the lock is the session's: it outlives the transaction
    try:
        if _revision(conn) != HEAD:  # whoever held the lock may have brought it to head
            with conn.begin():
                _migrate(conn)
    finally:
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:key)"), key)
            conn.commit()
        except SQLAlchemyError:
            conn.invalidate()  # closed, not pooled: the lock goes with the session


def _lock_holders(conn: Connection) -> str:
    """The refusal, naming the sessions that hold the lock, so they can be found and ended."""
    high, low = (LEDGER_MIGRATIONS >> 32) & 0xFFFFFFFF, LEDGER_MIGRATIONS & 0xFFFFFFFF
    rows = conn.execute(
        text(
            "SELECT l.pid, coalesce(a.application_name, ''), coalesce(a.state, '') "
            "FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = :high AND l.objid = :low"
        ),
        {"high": high, "low": low},
    ).all()
    holders = ", ".join(f"pid {pid} ({name or 'no name'}, {state})" for pid, name, state in rows)
    return (
        f"the ledger's migration lock has been held for over {MIGRATION_LOCK_WAIT:g}s by "
        f"{holders or 'another session'}; a ledger migration takes seconds: end that session "
        "(pg_terminate_backend) if it is stuck, then start again"
    )


def _upgrade_under_write_lock(conn: Connection) -> None:
    # pysqlite sends no BEGIN ahead of DDL, so without ours each CREATE TABLE would commit
    # by itself. BEGIN IMMEDIATE takes the write lock now (waiting up to busy_timeout for
    # another opener's upgrade), so the revision read below is the one the upgrade moves.
    # Another opener's upgrade may hold the lock for longer than a write's usual wait on a
    # loaded machine (Alembic loads its scripts under it): wait as long as PostgreSQL's
    # openers wait for theirs, then go back to the usual wait.
    conn.exec_driver_sql(f"PRAGMA busy_timeout={int(MIGRATION_LOCK_WAIT * 1000)}")
    try:
        conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except SQLAlchemyError:
            current = None
        if current != HEAD:
            _migrate(conn)
        conn.commit()
    finally:
        with suppress(SQLAlchemyError):  # never in the way of the error that got us here
            conn.exec_driver_sql(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")


SQLITE_BUSY_MS = 10_000
"""How long a ledger statement on SQLite waits for another writer before it fails."""


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    # The wait first: switching a new file to WAL takes its lock, which another opener may
    # hold at that moment.
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
