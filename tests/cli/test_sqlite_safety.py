"""Safety on the embedded default: Prisma's SQLite table rebuild is read for what it does."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import PRISMA_SQLITE

# What `prisma migrate dev` writes for SQLite when users.name is removed: a rebuild.
REBUILD = """-- RedefineTables
PRAGMA defer_foreign_keys=ON;
PRAGMA foreign_keys=OFF;
CREATE TABLE "new_users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "clerk_id" TEXT,
    "first_name" TEXT,
    "last_name" TEXT,
    "deleted_at" DATETIME
);
INSERT INTO "new_users" ("clerk_id", "created_at", "deleted_at", "email", "first_name", "id", \
"last_name") SELECT "clerk_id", "created_at", "deleted_at", "email", "first_name", "id", \
"last_name" FROM "users";
DROP TABLE "users";
ALTER TABLE "new_users" RENAME TO "users";
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE UNIQUE INDEX "users_clerk_id_key" ON "users"("clerk_id");
PRAGMA foreign_keys=ON;
PRAGMA defer_foreign_keys=OFF;
""".replace("\\\n", "")


def test_rebuild_that_leaves_a_column_out_is_a_column_drop(
    cli: Callable[..., Result], write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    safety: {contract_grace: 0s}\n"
    )
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        conn.executemany(
            "INSERT INTO users (email, name) VALUES (?, ?)",
            [("a@x", "Ann"), ("b@x", "Bob"), ("c@x", None)],
        )
    step = tmp_path / "migrations" / "20261201000000_drop_users_name" / "migration.sql"
    step.parent.mkdir()
    step.write_text(REBUILD)

    plan = cli("plan", "-c", policy)
    assert "drop-column [BLOCKS]" in plan.stdout
    assert "drops users.name: 2 non-null values lost" in plan.stdout
    assert "drop-table" not in plan.stdout

    applied = cli("apply", "-c", policy, "--yes")
    assert applied.exit_code == 3
    with sqlite3.connect(tmp_path / "shop.db") as conn:
        names = [r[1] for r in conn.execute("PRAGMA table_info(users)")]
    assert "name" in names, "a blocked step must not run"
