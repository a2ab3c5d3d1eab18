"""The one exception hierarchy of reconciler, typed by what the failure means for the loop.

Every face (CLI, daemon, tests) catches ``ReconcilerError`` and prints ``str(err)``: a single
line a person can act on, already free of secrets. Subclasses say whether retrying can help::

    ReconcilerError                  anything reconciler reports on purpose
    ├── PolicyError                  the policy file is wrong; fix the file (never retried)
    ├── SourceError                  a migration folder or script directory is unusable
    │   └── ProviderMismatch         migration_lock.toml names another database than the target
    ├── DatabaseError                the target or ledger database misbehaved
    │   ├── DatabaseUnavailable      cannot connect; temporary, retried after ``retry_after``
    │   └── MigrationFailed          a migration's SQL failed; its transaction was rolled back
    │       ├── LocksUnavailable     it waited too long for a lock (or deadlocked): run it again
    │       └── DataLossPrevented    it lost data no approval covers: rolled back before COMMIT
    ├── LedgerStateError             the migration ledger needs a person (failed or drifted rows)
    ├── ProviderUnavailable          the identity provider failed; retried later
    │   └── IncompleteListing        a listing stopped short: nothing may be deleted on it
    └── Refused                      an operation refused by a guard (environment, TTY, flags)

``Stalling`` errors need a person before the target can move again; ``Waiting`` ones clear by
themselves and carry a delay. The daemon maps these to Flux-style conditions.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base class: the message is one line, names the file/field/target, and holds no secret."""

    #: Seconds after which retrying may succeed; ``None`` means a person must act first.
    retry_after: float | None = None


class PolicyError(ReconcilerError):
    """The policy cannot be loaded: YAML syntax, unknown key, wrong type, missing variable."""


class SourceError(ReconcilerError):
    """A migration source (Prisma folder, Alembic script directory) cannot be read."""


class ProviderMismatch(SourceError):
    """Prisma's ``migration_lock.toml`` was written for another database engine."""


class DatabaseError(ReconcilerError):
    """The target or ledger database refused an operation."""


class DatabaseUnavailable(DatabaseError):
    """No connection could be made (host down, wrong password, missing database file)."""

    retry_after = 60.0


class MigrationFailed(DatabaseError):
    """A migration's SQL failed; where the database allows it, its transaction rolled back."""


class LocksUnavailable(MigrationFailed):
    """A migration run in one transaction waited longer than ``lock_timeout`` for a lock, or
    lost a deadlock or a serialization conflict: the transaction rolled back whole, and the
    same migration can simply run again once the application lets go of its tables."""

    retry_after = 60.0


class DataLossPrevented(MigrationFailed):
    """Measured inside a migration's transaction, before its COMMIT: it deleted rows (or, on
    SQLite, values) that no approval covers, so it was rolled back whole."""


class LedgerStateError(ReconcilerError):
    """The migration ledger records a failed migration or one unknown to the source."""


class Refused(ReconcilerError):
    """A guard refused the operation; nothing was changed."""


class ProviderUnavailable(ReconcilerError):
    """The identity provider answered with errors, or not at all."""

    retry_after = 60.0


class IncompleteListing(ProviderUnavailable):
    """A listing of users did not complete (an error mid-pagination, a count that disagrees,
    an empty listing against a populated table): it must never drive deletions."""
