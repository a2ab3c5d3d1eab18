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

Prisma migrations run it in the one transaction they run in; a Prisma script with its own
``BEGIN ... COMMIT``, or with a statement PostgreSQL refuses inside a transaction block, runs
in parts (``source.sql.script_parts``), and each transaction of it is checked before its own
COMMIT; only the statements that cannot run in a transaction (``CREATE INDEX CONCURRENTLY``,
``VACUUM``), which delete no rows, run unchecked (``DROP DATABASE``, which would, is
refused). Alembic revisions run it in the transaction ``env.py`` opens (through SQLAlchemy's
begin and commit events), on every connection the server says is the target's.

Rows this apply run's own migrations wrote (``observe.run_rows``) are not customer data: a
step the plan let run because its tables hold only such rows (``Finding.run_only``) has
those tables locked (``SHARE``: no one else writes them until it commits) and measured again
before its script, and what it then loses from them is accepted. A row anyone else wrote
meanwhile refuses the step as any loss does. Each checked transaction adds its ids to the
run's record before its COMMIT.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.errors import DatabaseError, DataLossPrevented, LocksUnavailable
from reconciler.observe.census import TOOL_TABLES, Census, Loss, deleted_tuples, losses, take_census
from reconciler.safety.gate import covers_loss, loss_approval
from reconciler.safety.run_rows import EVERY

if TYPE_CHECKING:
    from reconciler.db.connection import Queryable
    from reconciler.observe.run_rows import RunRows
    from reconciler.plan.model import Step
    from reconciler.policy.model import Safety


class LossCheck:
    """The ``TransactionCheck`` of one step: what its transaction lost, against what its
    approvals allow."""

    def __init__(self, step: Step, safety: Safety, run: RunRows | None = None) -> None:
        self.step, self.safety, self.run = step, safety, run
        self._deleted: dict[str, int] = {}
        self._census: Census | None = None
        self._run_only: set[str] = set()
        """Tables measured, in this transaction, to hold only the run's rows."""

    def before(self, db: Queryable) -> None:
        if db.dialect == "postgresql":
            if self.run is not None:
                self.run.begin(db)
                self._run_only = self._measure_run_rows(db, self.run)
            self._deleted = deleted_tuples(db)
        else:
            self._census = take_census(db, checksums=False)

    def _measure_run_rows(self, db: Queryable, run: RunRows) -> set[str]:
        """Lock and measure again the tables the plan found to hold only the run's rows;
        ``DataLossPrevented`` when one now holds a row someone else wrote that no approval
        lets the step lose."""
        named = {t for f in self.step.findings for t in f.run_only}
        if not named:
            return set()
        tables = sorted((named - {EVERY}) | (set(run.holding(db)) if EVERY in named else set()))
        try:
            run.lock(db, tables)
        except DatabaseError as exc:
            raise LocksUnavailable(f"verify: locking {', '.join(tables)}: {exc}") from None
        own = {t for t in tables if run.rows_of(db, t) is not None}
        foreign = [
            t for t in tables if t not in own and not covers_loss(self.step.verdict, self.safety, t)
        ]
        if foreign:
            raise DataLossPrevented(
                f"verify: {', '.join(foreign)} now hold{'s' if len(foreign) == 1 else ''} rows "
                "that this run's migrations did not write (the plan found only theirs), which "
                "no approval covers; if intended, approve it: "
                + loss_approval(self.step.migration, foreign)
            )
        return own

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
            loss
            for loss in found
            if loss.table not in self._run_only
            and not covers_loss(self.step.verdict, self.safety, loss.table)
        ]
        if unapproved:
            raise DataLossPrevented(
                "verify: "
                + "; ".join(loss.describe() for loss in unapproved)
                + ", which no approval covers; if intended, approve it: "
                + loss_approval(self.step.migration, (loss.table for loss in unapproved))
            )
        if self.run is not None and db.dialect == "postgresql":
            self.run.end(db)


def renames_explained(step: Step, found: list[Loss], before: Census, after: Census) -> list[Loss]:
    """``found`` without what the step's own renames explain. A census knows names only,
    so ``RENAME COLUMN name TO full_name`` reads as ``name`` dropped: it is not a loss when
    the migration renames exactly that column (table) and the new name holds as many
    values (rows) as the old one did."""
    columns = {
        (f.table, *f.renamed) for f in step.findings if f.rule == "rename-column" and f.renamed
    }
    tables = {f.renamed for f in step.findings if f.rule == "rename-table" and f.renamed}
    kept: list[Loss] = []
    for loss in found:
        if loss.kind == "column-dropped":
            new = after.tables[loss.table].non_null
            targets = [n for t, old, n in columns if t == loss.table and old == loss.column]
            if any(new.get(name) == loss.amount for name in targets):
                continue
        if loss.kind == "table-dropped":
            targets = [n for old, n in tables if old == loss.table]
            if any(n in after.tables and after.tables[n].rows == loss.amount for n in targets):
                continue
        kept.append(loss)
    return kept


def loss_check(step: Step, safety: Safety, run: RunRows | None = None) -> LossCheck | None:
    """The check for ``step``; None when the policy does not block data loss. ``run``: the
    apply run's record of the rows its migrations wrote, which the check extends."""
    return LossCheck(step, safety, run) if "data-loss" in safety.block else None
