"""Verify, on the live database: a migration loses no data that no approval covers.

The rules judge each statement before anything runs, and the rehearsal measures a copy, but
neither sees everything the live run does: rows written since the copy was taken, a DELETE
inside a DO block or a trigger, a foreign key that cascades. So the check runs inside the
migration's own transaction, after its script and before its COMMIT, where a loss can still
be undone: the migration is rolled back whole and stops the target (``VerifyFailed``).

- PostgreSQL: the server's per-session counters of deleted rows
  (``pg_stat_get_xact_tuples_deleted``, as ``pg_stat_xact_user_tables`` shows them), read
  before and after the script; no table is scanned.
- SQLite: the census (row and non-null counts of every table) before and after, so a column
  dropped by a table rebuild is seen too.

Prisma migrations run it in the one transaction they run in; Alembic revisions in the
transaction ``env.py`` opens (through SQLAlchemy's begin and commit events). A Prisma script
with its own COMMIT, or one that cannot run in a transaction, has nothing left to roll back:
the rehearsal is what measures those.
"""

from __future__ import annotations

from reconciler.db.connection import Queryable
from reconciler.errors import DataLossPrevented
from reconciler.observe.census import TOOL_TABLES, Census, Loss, deleted_tuples, losses, take_census
from reconciler.plan.model import Step
from reconciler.policy.model import Safety
from reconciler.safety.gate import covers_loss, loss_approval


class LossCheck:
    """The ``TransactionCheck`` of one step: what its transaction lost, against what its
    approvals allow."""

    def __init__(self, step: Step, safety: Safety) -> None:
        self.step, self.safety = step, safety
        self._deleted: dict[str, int] = {}
        self._census: Census | None = None

    def before(self, db: Queryable) -> None:
        if db.dialect == "postgresql":
            self._deleted = deleted_tuples(db)
        else:
            self._census = take_census(db, checksums=False)

    def after(self, db: Queryable) -> None:
        if db.dialect == "postgresql":
            found = [
                Loss(table, None, count - self._deleted.get(table, 0), "rows-deleted")
                for table, count in sorted(deleted_tuples(db).items())
                if count > self._deleted.get(table, 0) and table not in TOOL_TABLES
            ]
        else:
            assert self._census is not None
            after = take_census(db, checksums=False)
            found = renames_explained(self.step, losses(self._census, after), self._census, after)
        unapproved = [
            loss for loss in found if not covers_loss(self.step.verdict, self.safety, loss.table)
        ]
        if unapproved:
            raise DataLossPrevented(
                "verify: "
                + "; ".join(loss.describe() for loss in unapproved)
                + ", which no approval covers; if intended, approve it: "
                + loss_approval(self.step.migration, unapproved)
            )


def renames_explained(step: Step, found: list[Loss], before: Census, after: Census) -> list[Loss]:
    """``found`` without what the step's own renames explain. A census knows names only,
    so ``RENAME COLUMN name TO full_name`` reads as ``name`` dropped: when the migration
    renames on that table (its ``rename-column`` / ``rename-table`` findings) and a new
    column (table) holds as many values (rows) as the one gone, nothing was lost."""
    columns_renamed = {f.table for f in step.findings if f.rule == "rename-column"}
    tables_renamed = {f.table for f in step.findings if f.rule == "rename-table"}
    new_tables = [after.tables[t].rows for t in after.tables if t not in before.tables]
    kept: list[Loss] = []
    for loss in found:
        if loss.kind == "column-dropped" and loss.table in columns_renamed:
            old, new = before.tables[loss.table].non_null, after.tables[loss.table].non_null
            fresh = [n for c, n in new.items() if c not in old]
            if loss.amount in fresh:
                continue
        renamed_table = loss.kind == "table-dropped" and loss.table in tables_renamed
        if renamed_table and loss.amount in new_tables:
            new_tables.remove(loss.amount)
            continue
        kept.append(loss)
    return kept


def loss_check(step: Step, safety: Safety) -> LossCheck | None:
    """The check for ``step``; None when the policy does not block data loss."""
    return LossCheck(step, safety) if "data-loss" in safety.block else None
