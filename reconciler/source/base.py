"""The shapes every migration layout shares: a migration file, the live history, the layout.

The rest of the engine sees only these types. A layout reads its files once (``migrations``,
in an order that applies parents first), resolves the policy's ``revision`` to the set of
migrations that should be applied, reads the database's record of what was applied, and
applies one migration, keeping that record truthful whatever happens.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from msgspec import Struct, field

from reconciler import textfiles
from reconciler.digests import sha256
from reconciler.errors import SourceError

if TYPE_CHECKING:
    from reconciler.db.connection import Database, Queryable
    from reconciler.db.url import Dialect
    from reconciler.policy.model import Timeouts


DECLARED_TYPE = "-- reconciler: existing_type"
"""Starts the comment an Alembic revision's rendered SQL carries before each ``ALTER
COLUMN ... TYPE`` whose ``alter_column`` declares the column's old type (``existing_type``):
``-- reconciler: existing_type "value" VARCHAR(250)``, the column quoted, the type compiled
for the dialect. The SQL is read, never run, so the comment changes no statement; the
safety rules read it (``ops``)."""


class Migration(Struct, frozen=True):
    """One migration as found on disk."""

    id: str
    """Prisma: the folder name (``20261001090000_init``); Alembic: the revision id."""
    name: str
    """A readable name: the folder's slug, or the Alembic revision's message."""
    path: Path
    """``migration.sql`` for Prisma, the revision's ``.py`` file for Alembic."""
    checksum: str
    """Lowercase sha256 hex of the file, as Prisma records it."""
    parents: tuple[str, ...] = ()
    """Ids that must be applied first (Alembic down revisions; Prisma: the previous one)."""

    def read(self) -> str:
        return read_utf8(self.path)


class AppliedMigration(Struct, frozen=True):
    """A migration as the database's history table records it."""

    id: str
    checksum: str | None
    started_at: datetime | None
    finished_at: datetime | None
    state: Literal["applied", "failed"] = "applied"
    logs: str | None = None


class LiveHistory(Struct, frozen=True):
    """What the target database says was applied."""

    applied: Sequence[AppliedMigration] = ()
    """Successfully applied migrations, oldest first."""
    failed: Sequence[AppliedMigration] = ()
    """Migrations that started and never finished: nothing may run until a person resolves."""
    heads: tuple[str, ...] = ()
    """Alembic's ``alembic_version`` rows; for Prisma the newest applied migration."""
    unknown: tuple[str, ...] = ()
    """Ids the database records that the files do not have (deleted or renamed files)."""
    tool_table: bool = True
    """Whether the history table exists at all (a fresh database has none)."""
    notes: Sequence[str] = field(default_factory=tuple)


class Layout(Protocol):
    """A migration tool's files plus its history table in the target database."""

    @property
    def name(self) -> Literal["prisma", "alembic"]: ...

    @property
    def path(self) -> Path: ...

    def migrations(self) -> Sequence[Migration]:
        """Every migration, parents before children."""
        ...

    def desired(self, revision: str) -> Sequence[Migration]:
        """The migrations that must be applied for ``revision`` (``head`` = all), in order;
        raises ``SourceError`` for a revision that does not exist."""
        ...

    def check(self, dialect: Dialect) -> list[str]:
        """Offline problems (missing files, provider mismatch, broken graph); raises none."""
        ...

    def sql(self, migration: Migration, dialect: Dialect) -> str | None:
        """The SQL the migration runs, for analysis; None when it cannot be known offline."""
        ...

    def unanalysable(self, migration: Migration, dialect: Dialect) -> str | None:
        """Why the SQL of a migration that runs some could not be known offline (one line);
        None when ``sql`` gives it, or the migration runs none (an Alembic merge point)."""
        ...

    def read_history(self, db: Database) -> LiveHistory: ...

    def lock(self, db: Database) -> AbstractContextManager[None]:
        """Held while migrating: the tool's own lock, so two migrators never race."""
        ...

    def apply(
        self,
        db: Database,
        migration: Migration,
        timeouts: Timeouts,
        check: TransactionCheck | None = None,
    ) -> None:
        """Apply one migration, in one transaction where the database allows it; on failure
        raise ``MigrationFailed`` after the history says exactly what happened. ``check``
        runs inside that transaction, where the layout owns it."""
        ...


class TransactionCheck(Protocol):
    """Inspects a migration's transaction around its script, before anything commits."""

    def before(self, db: Queryable) -> None:
        """Right after BEGIN, before the script."""
        ...

    def after(self, db: Queryable) -> None:
        """After the script, before COMMIT; raising ``MigrationFailed`` rolls it all back."""
        ...


def read_utf8(path: Path) -> str:
    """A migration's or seed's text; ``SourceError`` naming the file (and the line, when it
    is not UTF-8 as Prisma requires)."""
    try:
        return textfiles.read_utf8(path)
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise SourceError(str(exc)) from None


def sha256_hex(data: bytes) -> str:
    return sha256(data).hexdigest()


def checksum_matches(data: bytes, recorded: str) -> bool:
    """True when ``data`` hashes to ``recorded`` with LF or CRLF line endings (Prisma's rule:
    a checkout on another OS is not an edit)."""
    if sha256_hex(data) == recorded:
        return True
    unix = data.replace(b"\r\n", b"\n")
    return sha256_hex(unix) == recorded or sha256_hex(unix.replace(b"\n", b"\r\n")) == recorded
