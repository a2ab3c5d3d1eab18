"""SQLAlchemy 2 models of the ledger's tables (see the package docstring for their roles)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    concern: Mapped[str] = mapped_column(String(32))
    """``schema`` today; ``identity`` and ``backup`` later."""
    trigger: Mapped[str] = mapped_column(String(32))
    """``cli``, ``schedule``, ``webhook``, ``api``."""
    source: Mapped[str] = mapped_column(Text)
    """The policy file, or ``git-url@ref:path``."""
    source_commit: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str | None] = mapped_column(String(32))
    """A condition reason: ``InSync``, ``ApplyFailed``, ``FailedMigration`` ..."""
    message: Mapped[str | None] = mapped_column(Text)


class Step(Base):
    __tablename__ = "steps"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    action: Mapped[str] = mapped_column(String(32))
    migration: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    duration_seconds: Mapped[float | None]
    outcome: Mapped[str] = mapped_column(String(16))
    """``running``, ``applied``, ``failed``."""
    error: Mapped[str | None] = mapped_column(Text)


class FindingRecord(Base):
    """A rule's verdict on a step, and what the gate decided: ``blocked``, ``approved``
    (with the approval's reason and approver), ``waiting`` or ``noted``."""

    __tablename__ = "findings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    migration: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))
    rule: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(Text)
    message: Mapped[str] = mapped_column(Text)
    decision: Mapped[str] = mapped_column(String(16))
    approval_reason: Mapped[str | None] = mapped_column(Text)
    approved_by: Mapped[str | None] = mapped_column(String(255))
    approval_expires: Mapped[date | None] = mapped_column(Date)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BackupRecord(Base):
    """A backup a driver took: where it is, its sha256 and size, and whether a restore of it
    matched the live census (``verified``: None until checked)."""

    __tablename__ = "backups"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    driver: Mapped[str] = mapped_column(String(16))
    location: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("runs.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    census: Mapped[dict[str, object] | None] = mapped_column(JSON)
    verified: Mapped[bool | None] = mapped_column(Boolean)
    verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    verification: Mapped[str | None] = mapped_column(Text)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RehearsalRecord(Base):
    """One pending migration run on a copy: how long it took and what data it lost."""

    __tablename__ = "rehearsals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), index=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    backup_id: Mapped[str | None] = mapped_column(String(128))
    migration: Mapped[str] = mapped_column(String(255))
    checksum: Mapped[str] = mapped_column(String(64))
    duration_seconds: Mapped[float | None]
    outcome: Mapped[str] = mapped_column(String(16))
    losses: Mapped[list[str] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    recorded_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class IdentityRun(Base):
    """Counts of one identity reconcile: what the listing held and what was changed."""

    __tablename__ = "identity_runs"

    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    target: Mapped[str] = mapped_column(String(63), index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean)
    listed: Mapped[int | None]
    provider_count: Mapped[int | None]
    missing: Mapped[int | None]
    changed: Mapped[int | None]
    orphans: Mapped[int | None]
    created: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    soft_deleted: Mapped[int] = mapped_column(default=0)
    deleted: Mapped[int] = mapped_column(default=0)
    conflicts: Mapped[int] = mapped_column(default=0)


class WebhookEvent(Base):
    """A verified webhook delivery, kept to process each once and to order events per user;
    ``outcome`` is ``processing`` while an attempt holds it."""

    __tablename__ = "webhook_events"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    """The ``svix-id`` of the delivery."""
    target: Mapped[str] = mapped_column(String(63), index=True)
    user_key: Mapped[str] = mapped_column(String(255), index=True)
    type: Mapped[str] = mapped_column(String(64))
    event_time: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(32))
