"""The catalogue of safety rules: ids, severities, why they matter, what to do instead.

Plain data at the bottom of the package, so the policy can validate approvals against rule
ids and the rules, renderers and docs pages (``docs/rules/<id>.md``) share one source.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

Severity = Literal["data-loss", "will-fail", "locking", "compat", "syntax", "info"]
"""How bad a finding is. ``data-loss`` and ``will-fail`` block by default; ``syntax`` always
blocks; ``locking`` and ``compat`` warn; ``info`` is shown, never blocks."""

Blockable = Literal["data-loss", "will-fail", "locking", "compat"]
"""The severities a policy may choose to block (``safety.block``)."""

SEVERITIES: tuple[Severity, ...] = ("data-loss", "will-fail", "locking", "compat", "syntax", "info")
DEFAULT_BLOCK: tuple[Blockable, ...] = ("data-loss", "will-fail")
DEFAULT_CONTRACT_GRACE = 7 * 86400.0
"""Seconds between expand and contract (golden rule 2) when a policy does not say."""


class Rule(Struct, frozen=True):
    id: str
    severity: Severity
    title: str
    why: str
    safe_alternative: str


_RULES = [
    Rule(
        "drop-table",
        "data-loss",
        "Table dropped",
        "Every row of the table is deleted, with no way back but a backup.",
        "Stop writing to the table, back it up or archive it, and drop it in a later, "
        "approved migration once nothing reads it.",
    ),
    Rule(
        "drop-schema",
        "data-loss",
        "Schema dropped",
        "Every table in the schema is deleted with its rows.",
        "Drop the schema's tables one by one in reviewed migrations, or approve explicitly.",
    ),
    Rule(
        "drop-column",
        "data-loss",
        "Column dropped",
        "The column's values are deleted in every row.",
        "Expand, migrate, contract: add the replacement, copy the data, switch the "
        "application, and drop the old column a grace period later, with an approval.",
    ),
    Rule(
        "truncate",
        "data-loss",
        "Table truncated",
        "TRUNCATE deletes every row at once and cannot be filtered.",
        "Delete only the rows meant to go (DELETE ... WHERE), after a backup.",
    ),
    Rule(
        "delete-rows",
        "data-loss",
        "Rows deleted",
        "DELETE in a migration removes customer rows as part of a schema change.",
        "Run data clean-ups as a reviewed, separate job with a backup; keep migrations "
        "to schema changes.",
    ),
    Rule(
        "update-overwrites",
        "data-loss",
        "Existing values overwritten or nulled",
        "UPDATE replaces values that exist today; the old values are gone.",
        "Write into a new column (backfill WHERE new IS NULL), verify, then switch.",
    ),
    Rule(
        "narrowing-type",
        "data-loss",
        "Column type narrowed",
        "The new type cannot hold every existing value exactly: values are rounded, "
        "truncated, or the migration fails halfway through the table.",
        "Add a column of the new type, backfill with an explicit conversion you have "
        "checked, then switch and drop the old column later.",
    ),
    Rule(
        "enum-value-removed",
        "data-loss",
        "Enum recreated without a value in use",
        "Prisma recreates an enum to remove a value; rows still holding it make the "
        "cast fail or must be rewritten first.",
        "Migrate the rows that use the value to another value first, in a separate, "
        "reviewed migration; then remove the value.",
    ),
    Rule(
        "required-column-without-default",
        "will-fail",
        "NOT NULL column added without a default (golden rule 1)",
        "Existing rows have no value for the new column: PostgreSQL refuses the ALTER on "
        "a table with rows.",
        "Add the column with a DEFAULT, or add it nullable, backfill, then SET NOT NULL.",
    ),
    Rule(
        "expand-contract-same-migration",
        "data-loss",
        "Column dropped in the migration that adds its replacement (golden rule 2)",
        "Dropping the old column in the same migration that adds (or fills) the new one "
        "leaves no way back and breaks the application still reading the old column.",
        "Expand now (add and backfill the new column); contract (drop the old one) in a "
        "later migration, after the grace period.",
    ),
    Rule(
        "contract-too-soon",
        "data-loss",
        "Contract before the grace period (golden rule 2)",
        "The column that replaces this one was added recently; old application versions "
        "and rollbacks may still need the column being dropped.",
        "Wait until the grace period has passed; the step runs by itself then.",
    ),
    Rule(
        "rename-as-drop-add",
        "data-loss",
        "Rename in disguise: drop + add (golden rule 3)",
        "A column is dropped and one of a compatible type is added to the same table in "
        "one migration: a rename that a generator wrote as drop + create. The dropped "
        "column's data is lost.",
        "Write ALTER TABLE ... RENAME COLUMN old TO new instead.",
    ),
    Rule(
        "set-not-null-with-nulls",
        "will-fail",
        "SET NOT NULL on a column with NULLs",
        "PostgreSQL checks every row; NULLs make the migration fail.",
        "Backfill the NULLs first (UPDATE ... WHERE col IS NULL), then SET NOT NULL.",
    ),
    Rule(
        "unique-over-duplicates",
        "will-fail",
        "Unique index or constraint over duplicates",
        "Building the unique index fails on the first duplicate.",
        "Remove or merge the duplicates first, in a reviewed data migration.",
    ),
    Rule(
        "index-without-concurrently",
        "locking",
        "Index built or dropped without CONCURRENTLY",
        "CREATE/DROP INDEX blocks writes to the table for the whole build.",
        "Use CREATE INDEX CONCURRENTLY / DROP INDEX CONCURRENTLY in a migration of its own.",
    ),
    Rule(
        "constraint-without-not-valid",
        "locking",
        "Constraint validated while locking",
        "Adding a foreign key or check constraint scans the whole table while holding "
        "a lock that blocks writes.",
        "ADD CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT in a later migration.",
    ),
    Rule(
        "set-not-null-without-check",
        "locking",
        "SET NOT NULL scans under an exclusive lock",
        "SET NOT NULL scans the whole table under ACCESS EXCLUSIVE unless a validated "
        "CHECK (col IS NOT NULL) constraint already proves it.",
        "Add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it, then SET NOT NULL.",
    ),
    Rule(
        "table-rewrite",
        "locking",
        "Table rewritten",
        "The statement rewrites every row under ACCESS EXCLUSIVE: reads and writes wait.",
        "Add a new column, backfill in batches, and switch, instead of rewriting in place.",
    ),
    Rule(
        "unique-constraint-locking",
        "locking",
        "Unique constraint built under ACCESS EXCLUSIVE",
        "ADD CONSTRAINT ... UNIQUE builds its index while blocking reads and writes.",
        "CREATE UNIQUE INDEX CONCURRENTLY, then ADD CONSTRAINT ... UNIQUE USING INDEX.",
    ),
    Rule(
        "rename-column",
        "compat",
        "Column renamed",
        "The deployed application still reads the old name until it is redeployed.",
        "Add the new column, write both, switch reads, drop the old one later; or deploy "
        "the application and the rename together.",
    ),
    Rule(
        "rename-table",
        "compat",
        "Table renamed",
        "The deployed application still reads the old name until it is redeployed.",
        "Create a view with the old name during the transition, or deploy together.",
    ),
    Rule(
        "opaque-statement",
        "info",
        "Statement not analysed",
        "DO blocks and dynamic SQL run code the analysis cannot see into.",
        "Review the block by hand; with `rehearse: true` the run on a copy measures its effect.",
    ),
    Rule(
        "unanalysable-revision",
        "data-loss",
        "Revision not analysed: it cannot be rendered offline",
        "An Alembic revision that reads data (op.get_bind()) or an env.py without offline "
        "mode gives no SQL to judge: whatever it drops or deletes goes unseen by every rule.",
        "Rehearse it (`rehearse: true` measures what it loses on a copy), or review it by "
        "hand and approve it by id; keep data reads out of schema revisions.",
    ),
    Rule(
        "syntax-error",
        "syntax",
        "SQL PostgreSQL cannot parse",
        "The server would reject the migration; nothing of it can run.",
        "Fix the SQL.",
    ),
]

RULES: dict[str, Rule] = {rule.id: rule for rule in _RULES}
