"""``reconciler drift --sql`` on SQLite: the printed ``sync_state`` migration rebuilds the
tables whose columns or keys drifted (SQLite alters little in place), and, added to the
history and applied to an empty database, gives the live ``sqlite_master`` (normalised);
applied to a database holding rows, it keeps them, those of tables referencing a rebuilt one
included. Recorded as applied on the live database (``resolve --applied``), it leaves no
drift there."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.drift.history import write_history

Cli = Callable[..., Result]
SYNC = "20260103000000_sync_state"
HISTORY = {
    "20260101000000_init": """
CREATE TABLE "teams" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "name" TEXT NOT NULL,
    "motto" TEXT,
    "parent_id" INTEGER,
    CONSTRAINT "teams_parent_id_fkey" FOREIGN KEY ("parent_id") REFERENCES "teams" ("id")
        ON DELETE SET NULL ON UPDATE CASCADE
);
CREATE TABLE "users" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "email" TEXT NOT NULL,
    "first" TEXT,
    "last" TEXT,
    "full_name" TEXT GENERATED ALWAYS AS (coalesce("first", '') || ' ' || coalesce("last", ''))
        VIRTUAL,
    "created_at" DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deleted_at" DATETIME
);
CREATE UNIQUE INDEX "users_email_key" ON "users"("email");
CREATE INDEX "users_created_idx" ON "users"("created_at");
CREATE TABLE "memberships" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "since" DATETIME,
    PRIMARY KEY ("team_id", "user_id"),
    CONSTRAINT "memberships_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE,
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE "legacy" ("id" INTEGER PRIMARY KEY, "what" TEXT);
""",
    "20260102000000_views_and_triggers": """
CREATE VIEW "active_users" AS SELECT "id", "email" FROM "users" WHERE "deleted_at" IS NULL;
CREATE VIEW "team_names" AS SELECT "name" FROM "teams";
CREATE TABLE "audit" ("user_id" INTEGER, "at" DATETIME DEFAULT CURRENT_TIMESTAMP);
CREATE TRIGGER "users_audit" AFTER UPDATE ON "users" BEGIN
    INSERT INTO "audit" ("user_id") VALUES (new."id");
END;
""",
}
# Hand changes, as `prisma db push` or a person at the sqlite3 prompt would make them.
DRIFT = """
ALTER TABLE "users" ADD COLUMN "phone" TEXT;
ALTER TABLE "users" RENAME COLUMN "last" TO "surname";
ALTER TABLE "audit" ADD COLUMN "why" TEXT DEFAULT 'x,y';
ALTER TABLE "audit" ADD COLUMN "n" DECIMAL(10, 2);
ALTER TABLE "teams" DROP COLUMN "motto";
DROP INDEX "users_created_idx";
CREATE INDEX "users_live_email_idx" ON "users"(lower("email")) WHERE "deleted_at" IS NULL;
DROP TABLE "legacy";
CREATE TABLE "orders" (
    "id" INTEGER NOT NULL PRIMARY KEY AUTOINCREMENT,
    "user_id" INTEGER NOT NULL,
    "code" TEXT NOT NULL,
    "total" DECIMAL(10, 2),
    UNIQUE ("user_id", "code"),
    CONSTRAINT "orders_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE INDEX "orders_code_idx" ON "orders"("code");
DROP VIEW "active_users";
CREATE VIEW "active_users" AS SELECT "id", "email", "phone" FROM "users"
    WHERE "deleted_at" IS NULL;
CREATE VIEW "big_orders" AS SELECT * FROM "orders" WHERE "total" > 100;
CREATE TABLE "new_memberships" (
    "team_id" INTEGER NOT NULL,
    "user_id" INTEGER NOT NULL,
    "role" TEXT NOT NULL DEFAULT 'member',
    PRIMARY KEY ("team_id", "user_id"),
    CONSTRAINT "memberships_team_id_fkey" FOREIGN KEY ("team_id") REFERENCES "teams" ("id")
        ON DELETE RESTRICT ON UPDATE CASCADE,
    CONSTRAINT "memberships_user_id_fkey" FOREIGN KEY ("user_id") REFERENCES "users" ("id")
        ON DELETE CASCADE ON UPDATE CASCADE
);
INSERT INTO "new_memberships" ("team_id", "user_id") SELECT "team_id", "user_id"
    FROM "memberships";
DROP TABLE "memberships";
ALTER TABLE "new_memberships" RENAME TO "memberships";
"""


def policy(folder: Path, migrations: Path) -> Path:
    """The drifted database, an empty one, and one holding rows, sharing one history."""
    file = folder / "policy.yaml"
    targets = "".join(
        f"  - name: {name}\n    environment: staging\n    database: sqlite:///{name}.db\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n"
        for name in ("shop", "empty", "tenant")
    )
    file.write_text(f"ledger: sqlite:///ledger.db\ntargets:\n{targets}", encoding="utf-8")
    return file


def run(file: Path, script: str) -> None:
    db = sqlite3.connect(file)
    try:
        db.executescript(script)
    finally:
        db.close()


def rows(file: Path, sql: str) -> list[tuple[object, ...]]:
    db = sqlite3.connect(file)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


_HEAD = re.compile(r'^CREATE TABLE ("[^"]+"|\S+) ', re.IGNORECASE)


def master(file: Path) -> list[tuple[str, str, str, str]]:
    """``sqlite_master`` as a comparison should see it: sorted, blanks collapsed, a table's
    own name quoted alike (SQLite quotes it when it renames a table), the tools' tables out."""
    out = []
    for kind, name, table, sql in rows(
        file,
        "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE '\\_%' "
        "ESCAPE '\\'",
    ):
        text = " ".join(str(sql).split())
        text = _HEAD.sub(lambda m: f'CREATE TABLE "{m.group(1).strip(chr(34))}" ', text)
        out.append((str(kind), str(name), str(table), text))
    return sorted(out)


def test_the_sync_state_migration_rebuilds_the_live_sqlite_schema(cli: Cli, tmp_path: Path) -> None:
    migrations = write_history(tmp_path / "migrations", "sqlite", HISTORY)
    config = policy(tmp_path, migrations)
    for name in ("shop", "tenant"):
        assert cli("apply", "-c", config, "-t", name, "-y").exit_code == 0
    seed = """
        INSERT INTO "teams" ("id", "name", "parent_id") VALUES (1, 'a', NULL), (2, 'b', 1);
        INSERT INTO "users" ("id", "email", "first") VALUES (1, 'x@example.com', 'X'),
            (2, 'y@example.com', NULL);
        INSERT INTO "memberships" VALUES (1, 1, NULL), (2, 1, NULL), (2, 2, NULL);
    """
    run(tmp_path / "tenant.db", seed)
    run(tmp_path / "shop.db", DRIFT)

    result = cli("drift", "-c", config, "-t", "shop", "--sql")
    assert result.exit_code == 2, result.output
    sql = result.output
    assert sql.startswith("-- shop: the live schema, from the 2 applied migrations (")
    order = [
        "PRAGMA defer_foreign_keys=ON;",
        "PRAGMA foreign_keys=OFF;",
        'DROP VIEW "active_users";',
        'DROP TABLE "legacy";',
        'CREATE TABLE "orders"',
        'CREATE INDEX "orders_code_idx"',
        'ALTER TABLE "audit" ADD COLUMN "why" TEXT DEFAULT \'x,y\';',  # no rebuild needed
        'ALTER TABLE "audit" ADD COLUMN "n" DECIMAL(10, 2);',
        'CREATE TABLE "new_memberships"',
        'INSERT INTO "new_memberships" ("team_id", "user_id") SELECT "team_id", "user_id" '
        'FROM "memberships";',
        'DROP TABLE "memberships";',
        'ALTER TABLE "new_memberships" RENAME TO "memberships";',
        'CREATE TABLE "new_teams"',
        'INSERT INTO "new_teams" ("id", "name", "parent_id") SELECT',
        'ALTER TABLE "new_users" RENAME TO "users";',
        'CREATE UNIQUE INDEX "users_email_key"',
        'CREATE TRIGGER "users_audit"',  # dropped with its table: made again
        'CREATE INDEX "users_live_email_idx"',
        'CREATE VIEW "active_users"',
        'CREATE VIEW "big_orders"',
        "PRAGMA foreign_keys=ON;",
    ]
    positions = [sql.find(part) for part in order]
    assert -1 not in positions, [p for p, at in zip(order, positions, strict=True) if at < 0]
    assert positions == sorted(positions), sql
    assert "users_created_idx" not in sql  # it went with the rebuilt table
    assert '"full_name"' not in sql.split('INSERT INTO "new_users"')[1].split(";")[0]

    (migrations / SYNC).mkdir()
    (migrations / SYNC / "migration.sql").write_text(sql, encoding="utf-8")
    result = cli("apply", "-c", config, "-t", "empty", "-y")
    assert result.exit_code == 0, result.output
    assert master(tmp_path / "empty.db") == master(tmp_path / "shop.db")

    # On a database holding rows, the rebuilds keep them, and no ON DELETE CASCADE runs
    result = cli("apply", "-c", config, "-t", "tenant", "-y")
    assert result.exit_code == 0, result.output
    assert master(tmp_path / "tenant.db") == master(tmp_path / "shop.db")
    assert rows(tmp_path / "tenant.db", 'SELECT "id", "email", "full_name" FROM "users"') == [
        (1, "x@example.com", "X "),
        (2, "y@example.com", " "),
    ]
    assert rows(tmp_path / "tenant.db", 'SELECT * FROM "memberships" ORDER BY 1, 2') == [
        (1, 1, "member"),
        (2, 1, "member"),
        (2, 2, "member"),
    ]
    assert rows(tmp_path / "tenant.db", 'SELECT * FROM "teams" ORDER BY 1') == [
        (1, "a", None),
        (2, "b", 1),
    ]

    # The live database already has it: recorded, not run; then there is no drift anywhere
    result = cli("resolve", "-c", config, "-t", "shop", "--applied", SYNC)
    assert result.exit_code == 0, result.output
    for name in ("shop", "empty", "tenant"):
        result = cli("drift", "-c", config, "-t", name)
        assert (result.exit_code, result.output) == (
            0,
            f"{name}: no drift (3 migrations replayed)\n",
        )


def test_no_drift_prints_the_comment_alone(cli: Cli, tmp_path: Path) -> None:
    migrations = write_history(tmp_path / "migrations", "sqlite", HISTORY)
    config = policy(tmp_path, migrations)
    assert cli("apply", "-c", config, "-t", "shop", "-y").exit_code == 0
    result = cli("drift", "-c", config, "-t", "shop", "--sql")
    assert (result.exit_code, result.output) == (
        0,
        "-- shop: no drift (2 migrations replayed)\n",
    )


def test_an_index_alone_needs_no_rebuild(cli: Cli, tmp_path: Path) -> None:
    migrations = write_history(tmp_path / "migrations", "sqlite", HISTORY)
    config = policy(tmp_path, migrations)
    assert cli("apply", "-c", config, "-t", "shop", "-y").exit_code == 0
    run(tmp_path / "shop.db", 'CREATE INDEX "users_last_idx" ON "users"("last");')
    result = cli("drift", "-c", config, "-t", "shop", "--sql", "-o", "json")
    assert result.exit_code == 2, result.output
    assert '"sql": "CREATE INDEX \\"users_last_idx\\" ON \\"users\\"(\\"last\\");"' in result.output
