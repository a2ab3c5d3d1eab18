"""A Prisma history for the drift tests: every kind of object the comparison reads, built
by migrations on a real database, and the means to drift it by hand inside a transaction
that is rolled back, so one replay serves a whole test module."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from reconciler.db.connection import Database, connect
from reconciler.drift.catalog import Schema, read_schema
from reconciler.drift.compare import compare
from reconciler.drift.replay import apply_in_order
from reconciler.policy import Target
from reconciler.source import open_layout

POSTGRES = {
    "20260101000000_init": """
CREATE EXTENSION IF NOT EXISTS "citext";
CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN');
CREATE TABLE "teams" (
    "id" SERIAL NOT NULL,
    "name" TEXT NOT NULL,
    "parent_id" INTEGER,
    CONSTRAINT "teams_pkey" PRIMARY KEY ("id")
);
ALTER TABLE "teams" ADD CONSTRAINT "teams_parent_id_fkey" FOREIGN KEY ("parent_id")
    REFERENCES "teams"("id") ON DELETE SET NULL ON UPDATE CASCADE;
CREATE TABLE "users" (
    "id" SERIAL NOT NULL,
    "email" CITEXT NOT NULL,
    "role" "Role" NOT NULL DEFAULT 'USER',
    "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" TIMESTAMP(3),
    "first" TEXT,
    "last" TEXT,
    "full_name" TEXT GENERATED ALWAYS AS (coalesce("first", '') || ' ' || coalesce("last", ''))
        STORED,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE TABLE "memberships" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "since" DATE,
    CONSTRAINT "memberships_pkey" PRIMARY KEY ("team_id", "user_id")
);
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_team_id_fkey" FOREIGN KEY ("team_id")
    REFERENCES "teams"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "memberships" ADD CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id")
    REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
CREATE TABLE "grants" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "scope" TEXT NOT NULL CONSTRAINT "grants_scope_check" CHECK ("scope" <> ''),
    CONSTRAINT "grants_membership_fkey" FOREIGN KEY ("team_id", "user_id")
        REFERENCES "memberships"("team_id", "user_id") ON DELETE CASCADE ON UPDATE CASCADE
);
""",
    "20260102000000_indexes_and_views": """
CREATE INDEX "users_live_idx" ON "users"("created_at") WHERE "deleted_at" IS NULL;
CREATE INDEX "users_lower_email_idx" ON "users"(lower("email"::text));
CREATE SEQUENCE "invoice_number_seq" START 1000;
CREATE VIEW "active_users" AS SELECT "id", "email" FROM "users" WHERE "deleted_at" IS NULL;
ALTER TABLE "users" ADD COLUMN "score" INTEGER NOT NULL DEFAULT 0
    CONSTRAINT "users_score_check" CHECK ("score" >= 0);
ALTER TYPE "Role" ADD VALUE 'OWNER';
""",
}


def write_history(folder: Path, provider: str, migrations: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "migration_lock.toml").write_text(f'provider = "{provider}"\n', encoding="utf-8")
    for name, sql in migrations.items():
        (folder / name).mkdir()
        (folder / name / "migration.sql").write_text(sql.lstrip(), encoding="utf-8")
    return folder


def migrate(target: Target) -> None:
    """Apply every migration of ``target`` to its database, as ``apply`` would."""
    layout = open_layout(target.migrations)
    db = connect(target.database)
    try:
        apply_in_order(db, layout, layout.migrations(), target.timeouts)
    finally:
        db.close()


class _Undo(Exception):
    """Ends the transaction a hand change was made in, by rolling it back."""


@contextmanager
def _rolled_back(db: Database) -> Iterator[None]:
    try:
        with db.transaction():
            yield
            raise _Undo
    except _Undo:
        pass


def drift_after(db: Database, statements: list[str], expected: Schema) -> list[str]:
    """What the comparison says after ``statements`` ran on ``db``; they are rolled back."""
    messages: list[str] = []
    with _rolled_back(db):
        for statement in statements:
            db.execute(statement)
        messages = [d.message for d in compare(read_schema(db), expected)]
    return messages
