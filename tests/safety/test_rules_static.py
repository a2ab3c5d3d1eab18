"""The safety rules on migration text alone: pglast parsing, the rules, the gate. No database.

Every rule of the rulebook has cases that must flag and cases that must not, written the way
migrations really look: Prisma's generated SQL (``-- AlterTable`` sections, warning headers,
the enum recreation), ``alembic upgrade --sql`` output, and hand-written SQL. Rules that need
figures get them from hand-built ``Facts``, exactly what ``gather_facts`` would return.
"""

from __future__ import annotations

import dataclasses
import hashlib
import textwrap
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pydantic import ValidationError

from reconciler.observe.facts import Facts, TableFacts
from reconciler.policy.model import Approval, Safety
from reconciler.rulebook import RULES
from reconciler.safety.analyse import judge_batch, measurable, parse_migration
from reconciler.safety.findings import Finding
from reconciler.safety.gate import Verdict, covers_loss, gate_step
from reconciler.safety.rules import Expansion
from reconciler.source.alembic import AlembicLayout
from reconciler.source.base import Migration
from tests.schema.alembic_scripts import add_revision, create_table, script_dir

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
GRACE = 7 * 86400
MID = "20261120120000_change"

Triple = tuple[str, str, int]


def sql_text(text: str) -> str:
    """``text`` dedented, without the leading newline: line 1 is the first line written."""
    return textwrap.dedent(text).lstrip("\n")


def migration(sql: str, mid: str = MID) -> Migration:
    return Migration(
        mid,
        mid.split("_", 1)[-1],
        Path(f"/app/prisma/migrations/{mid}/migration.sql"),
        hashlib.sha256(sql.encode()).hexdigest(),
    )


def judged(
    sql: str,
    *,
    facts: Facts | None = None,
    before: tuple[str, ...] = (),
    history: tuple[Expansion, ...] = (),
) -> list[Finding]:
    """The findings of the migration ``sql``, after the earlier migrations ``before`` of the
    same batch, as ``judge_batch`` gives them."""
    batch = [
        parse_migration(migration(text, f"2026111{i}000000_before"), text, "postgresql")
        for i, text in enumerate(before)
    ]
    batch.append(parse_migration(migration(sql), sql, "postgresql"))
    results = judge_batch(batch, facts, now=NOW, grace_seconds=GRACE, history=history)
    return results[MID]


def triples(findings: list[Finding]) -> list[Triple]:
    return [(f.rule, f.severity, f.line) for f in findings]


def table(
    rows: int, columns: dict[str, str], counts: dict[tuple[Any, ...], int] | None = None
) -> TableFacts:
    return TableFacts(True, rows, 8192 * 6, columns, counts or {})


def prisma_warning(text: str) -> str:
    """The comment Prisma writes above a migration it warns about (six lines)."""
    return f"/*\n  Warnings:\n\n  - {text}\n\n*/\n"


USERS_COLUMNS = {
    "id": "int4",
    "email": "text",
    "name": "text",
    "nickname": "varchar",
    "age": "int4",
    "plan": "text",
    "bio": "text",
}


def users(rows: int = 300, **counts: int) -> Facts:
    """Live facts for a ``users`` table; ``counts`` keys like ``non_null__name=300``."""
    keyed: dict[tuple[Any, ...], int] = {}
    for key, value in counts.items():
        kind, column = key.split("__")
        keyed[(kind, column)] = value
    return Facts({"users": table(rows, USERS_COLUMNS, keyed)})


@dataclass(frozen=True)
class Case:
    rule: str
    sql: str
    expected: list[Triple]
    facts: Facts | None = None
    before: tuple[str, ...] = ()
    history: tuple[Expansion, ...] = field(default_factory=tuple)


PRISMA_ENUM_RECREATION = prisma_warning(
    "The values [GUEST] on the enum `Role` will be removed. If these variants are still "
    "used in the database, this will fail."
) + sql_text(
    """
    -- AlterEnum
    BEGIN;
    CREATE TYPE "Role_new" AS ENUM ('USER', 'ADMIN');
    ALTER TABLE "users" ALTER COLUMN "role" DROP DEFAULT;
    ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING ("role"::text::"Role_new");
    ALTER TYPE "Role" RENAME TO "Role_old";
    ALTER TYPE "Role_new" RENAME TO "Role";
    DROP TYPE "Role_old";
    ALTER TABLE "users" ALTER COLUMN "role" SET DEFAULT 'USER';
    COMMIT;
    """
)

PRISMA_DROP_ADD = prisma_warning(
    "You are about to drop the column `name` on the `users` table. All the data in the "
    "column will be lost."
) + sql_text(
    """
    -- AlterTable
    ALTER TABLE "users" DROP COLUMN "name",
    ADD COLUMN     "full_name" TEXT;
    """
)

PRISMA_REQUIRED_COLUMN = prisma_warning(
    "Added the required column `plan` to the `users` table without a default value. This "
    "is not possible if the table is not empty."
) + sql_text(
    """
    -- AlterTable
    ALTER TABLE "users" ADD COLUMN     "plan" TEXT NOT NULL;
    """
)

PRISMA_FOREIGN_KEY = (
    'ALTER TABLE "posts" ADD CONSTRAINT "posts_author_id_fkey" FOREIGN KEY ("author_id") '
    'REFERENCES "users"("id") ON DELETE RESTRICT ON UPDATE CASCADE;'
)


def bump_version(new: str, old: str) -> str:
    """The line ``alembic upgrade --sql`` writes after each revision."""
    return (
        f"UPDATE alembic_version SET version_num='{new}' "
        f"WHERE alembic_version.version_num = '{old}';"
    )


PRISMA_INIT_POSTS = sql_text(
    """
    -- CreateTable
    CREATE TABLE "posts" (
        "id" SERIAL NOT NULL,
        "title" TEXT NOT NULL,
        "slug" TEXT NOT NULL,
        "author_id" INTEGER NOT NULL,

        CONSTRAINT "posts_pkey" PRIMARY KEY ("id")
    );

    -- CreateIndex
    CREATE UNIQUE INDEX "posts_slug_key" ON "posts"("slug");

    -- CreateIndex
    CREATE INDEX "posts_author_id_idx" ON "posts"("author_id");

    -- AddForeignKey
    {foreign_key}
    """
).format(foreign_key=PRISMA_FOREIGN_KEY)

ALEMBIC_UPGRADE = sql_text(
    """
    BEGIN;

    -- Running upgrade b2c3d4e5f6a7 -> c3d4e5f6a7b8

    ALTER TABLE users DROP COLUMN nickname;

    ALTER TABLE users ALTER COLUMN email TYPE VARCHAR(50);

    ALTER TABLE users ADD COLUMN tier INTEGER NOT NULL;

    {bump}

    COMMIT;
    """
).format(bump=bump_version("c3d4e5f6a7b8", "b2c3d4e5f6a7"))

ALEMBIC_SAFE = sql_text(
    """
    BEGIN;

    -- Running upgrade a1b2c3d4e5f6 -> b2c3d4e5f6a7

    ALTER TABLE users ADD COLUMN plan VARCHAR(20);

    {bump}

    COMMIT;
    """
).format(bump=bump_version("b2c3d4e5f6a7", "a1b2c3d4e5f6"))

EXPAND_AND_CONTRACT_TOGETHER = sql_text(
    """
    ALTER TABLE users ADD COLUMN first_name TEXT, ADD COLUMN last_name TEXT;
    UPDATE users SET first_name = split_part(name, ' ', 1), last_name = split_part(name, ' ', 2);
    ALTER TABLE users DROP COLUMN name;
    """
)

ADDED_FULL_NAME = "ALTER TABLE users ADD COLUMN full_name TEXT;\n"


def expansion(days_ago: float | None, table: str = "users", source: str = "name") -> Expansion:
    """``full_name`` filled from ``source`` (``UPDATE users SET full_name = name``)."""
    applied = None if days_ago is None else NOW - timedelta(days=days_ago)
    return Expansion(
        "20261101000000_add_full_name", table, "full_name", applied, source=(table, source)
    )


FLAGS = [
    pytest.param(
        Case("drop-table", 'DROP TABLE "sessions";', [("drop-table", "data-loss", 1)]),
        id="drop-table",
    ),
    pytest.param(
        Case(
            "drop-table",
            '-- DropTable\nDROP TABLE IF EXISTS "Audit", legacy.events CASCADE;\n',
            [("drop-table", "data-loss", 2), ("drop-table", "data-loss", 2)],
        ),
        id="drop-table-two-at-once",
    ),
    pytest.param(
        Case(
            "drop-table",
            'DROP TABLE "sessions";',
            [("drop-table", "data-loss", 1)],
            facts=Facts({"sessions": table(12, {"id": "text"})}),
        ),
        id="drop-table-with-rows",
    ),
    pytest.param(
        Case("drop-schema", 'DROP SCHEMA "legacy" CASCADE;', [("drop-schema", "data-loss", 1)]),
        id="drop-schema",
    ),
    pytest.param(
        Case(
            "drop-column",
            prisma_warning(
                "You are about to drop the column `nickname` on the `users` table. All the "
                "data in the column will be lost."
            )
            + '-- AlterTable\nALTER TABLE "users" DROP COLUMN "nickname";\n',
            [("drop-column", "data-loss", 8)],
        ),
        id="drop-column-prisma",
    ),
    pytest.param(
        Case(
            "drop-column",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            facts=users(non_null__name=300),
        ),
        id="drop-column-with-values",
    ),
    pytest.param(
        Case("truncate", 'TRUNCATE TABLE "sessions";', [("truncate", "data-loss", 1)]),
        id="truncate",
    ),
    pytest.param(
        Case(
            "truncate",
            'TRUNCATE "sessions", "tokens" CASCADE;',
            [("truncate", "data-loss", 1), ("truncate", "data-loss", 1)],
        ),
        id="truncate-two",
    ),
    pytest.param(
        Case(
            "delete-rows",
            "-- clean up\n"
            'DELETE FROM "sessions" WHERE "expires_at" < now() - interval \'30 days\';',
            [("delete-rows", "data-loss", 2)],
        ),
        id="delete-rows",
    ),
    pytest.param(
        Case(
            "update-overwrites",
            'UPDATE "users" SET "email" = lower("email");',
            [("update-overwrites", "data-loss", 1)],
        ),
        id="update-overwrites",
    ),
    pytest.param(
        Case(
            "update-overwrites",
            "UPDATE users SET name = NULL WHERE plan = 'free';",
            [("update-overwrites", "data-loss", 1)],
            facts=users(non_null__name=300),
        ),
        id="update-nulls",
    ),
    pytest.param(
        Case(
            "update-overwrites",
            "UPDATE users SET email = lower(email) WHERE email IS NULL OR email <> lower(email);",
            [("update-overwrites", "data-loss", 1)],
        ),
        id="update-or-is-not-a-backfill",
    ),
    pytest.param(
        Case(
            "narrowing-type",
            '-- AlterTable\nALTER TABLE "invoices" ALTER COLUMN "amount" SET DATA TYPE INTEGER;\n',
            [("narrowing-type", "data-loss", 2), ("table-rewrite", "locking", 2)],
        ),
        id="narrowing-type-prisma",
    ),
    pytest.param(
        Case(
            "narrowing-type",
            '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "bio" SET DATA TYPE VARCHAR(20);\n',
            [("narrowing-type", "data-loss", 2), ("table-rewrite", "locking", 2)],
            facts=Facts(
                {
                    "users": table(
                        300,
                        USERS_COLUMNS,
                        {("non_null", "bio"): 300, ("longer_than", "bio", 20): 7},
                    )
                }
            ),
        ),
        id="narrowing-varchar-with-long-values",
    ),
    pytest.param(
        Case(
            "enum-value-removed",
            PRISMA_ENUM_RECREATION,
            [("enum-value-removed", "data-loss", 11)],
        ),
        id="enum-value-removed-prisma",
    ),
    pytest.param(
        Case(
            "enum-value-removed",
            PRISMA_ENUM_RECREATION,
            [("enum-value-removed", "data-loss", 11)],
            facts=Facts(
                {
                    "users": table(
                        300,
                        {"id": "int4", "role": "Role"},
                        {("non_null", "role"): 300, ("outside", "role", ("USER", "ADMIN")): 3},
                    )
                }
            ),
        ),
        id="enum-value-removed-in-use",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            PRISMA_REQUIRED_COLUMN,
            [("required-column-without-default", "will-fail", 8)],
        ),
        id="required-column-prisma",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            ALEMBIC_UPGRADE,
            [
                ("drop-column", "data-loss", 5),
                ("narrowing-type", "data-loss", 7),
                ("table-rewrite", "locking", 7),
                ("required-column-without-default", "will-fail", 9),
                # static: the dropped column's type is unknown, so tier may replace it
                ("rename-as-drop-add", "data-loss", 5),
            ],
        ),
        id="required-column-alembic",
    ),
    pytest.param(
        Case(
            "expand-contract-same-migration",
            EXPAND_AND_CONTRACT_TOGETHER,
            [
                ("update-overwrites", "info", 2),
                ("update-overwrites", "info", 2),
                ("drop-column", "data-loss", 3),
                ("expand-contract-same-migration", "data-loss", 3),
            ],
        ),
        id="expand-contract-split-name",
    ),
    pytest.param(
        Case(
            "expand-contract-same-migration",
            ADDED_FULL_NAME
            + "UPDATE users SET full_name = name WHERE full_name IS NULL;\n"
            + "ALTER TABLE users DROP COLUMN name;\n",
            [("drop-column", "data-loss", 3), ("expand-contract-same-migration", "data-loss", 3)],
        ),
        id="expand-contract-backfill-then-drop",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1), ("contract-too-soon", "data-loss", 1)],
            before=(ADDED_FULL_NAME + "UPDATE users SET full_name = name;\n",),
        ),
        id="contract-in-the-same-run",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1), ("contract-too-soon", "data-loss", 1)],
            before=(
                "CREATE TABLE people (id INT, full_name TEXT);\n"
                "INSERT INTO people (id, full_name) SELECT u.id, u.name FROM users AS u;\n",
            ),
        ),
        id="contract-after-insert-select-into-another-table",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1), ("contract-too-soon", "data-loss", 1)],
            history=(expansion(days_ago=2),),
        ),
        id="contract-two-days-after-expand",
    ),
    pytest.param(
        Case(
            "rename-as-drop-add",
            PRISMA_DROP_ADD,
            [("drop-column", "data-loss", 8), ("rename-as-drop-add", "data-loss", 8)],
        ),
        id="rename-as-drop-add-prisma",
    ),
    pytest.param(
        Case(
            "rename-as-drop-add",
            PRISMA_DROP_ADD,
            [("drop-column", "data-loss", 8), ("rename-as-drop-add", "data-loss", 8)],
            facts=users(non_null__name=300),
        ),
        id="rename-as-drop-add-live",
    ),
    pytest.param(
        Case(
            "set-not-null-with-nulls",
            '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "nickname" SET NOT NULL;\n',
            [
                ("set-not-null-with-nulls", "will-fail", 2),
                ("set-not-null-without-check", "locking", 2),
            ],
            facts=users(nulls__nickname=30),
        ),
        id="set-not-null-with-nulls",
    ),
    pytest.param(
        Case(
            "unique-over-duplicates",
            '-- CreateIndex\nCREATE UNIQUE INDEX "users_email_key" ON "users"("email");\n',
            [
                ("index-without-concurrently", "locking", 2),
                ("unique-over-duplicates", "will-fail", 2),
            ],
            facts=Facts({"users": table(300, USERS_COLUMNS, {("unique", ("email",)): 2})}),
        ),
        id="unique-index-over-duplicates",
    ),
    pytest.param(
        Case(
            "unique-over-duplicates",
            "CREATE UNIQUE INDEX CONCURRENTLY users_email_key ON users (email);",
            [("unique-over-duplicates", "will-fail", 1)],
            facts=Facts({"users": table(300, USERS_COLUMNS, {("unique", ("email",)): 1})}),
        ),
        id="unique-concurrently-over-duplicates",
    ),
    pytest.param(
        Case(
            "unique-over-duplicates",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
            [
                ("unique-constraint-locking", "locking", 1),
                ("unique-over-duplicates", "will-fail", 1),
            ],
            facts=Facts({"users": table(300, USERS_COLUMNS, {("unique", ("email",)): 2})}),
        ),
        id="unique-constraint-over-duplicates",
    ),
    pytest.param(
        Case(
            "index-without-concurrently",
            '-- CreateIndex\nCREATE UNIQUE INDEX "users_email_key" ON "users"("email");\n',
            [("index-without-concurrently", "locking", 2)],
        ),
        id="index-prisma-unique",
    ),
    pytest.param(
        Case(
            "index-without-concurrently",
            "CREATE INDEX ix_users_plan ON users (plan);",
            [("index-without-concurrently", "locking", 1)],
            facts=users(rows=300),
        ),
        id="index-alembic",
    ),
    pytest.param(
        Case(
            "index-without-concurrently",
            '-- DropIndex\nDROP INDEX "users_email_key";\n',
            [("index-without-concurrently", "locking", 2)],
        ),
        id="drop-index-prisma",
    ),
    pytest.param(
        Case(
            "constraint-without-not-valid",
            '-- AddForeignKey\nALTER TABLE "posts" ADD CONSTRAINT "posts_author_id_fkey" '
            'FOREIGN KEY ("author_id") REFERENCES "users"("id") '
            "ON DELETE RESTRICT ON UPDATE CASCADE;\n",
            [("constraint-without-not-valid", "locking", 2)],
        ),
        id="foreign-key-prisma",
    ),
    pytest.param(
        Case(
            "constraint-without-not-valid",
            "ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0);",
            [("constraint-without-not-valid", "locking", 1)],
        ),
        id="check-constraint",
    ),
    pytest.param(
        Case(
            "set-not-null-without-check",
            '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "plan" SET NOT NULL;\n',
            [("set-not-null-without-check", "locking", 2)],
            facts=users(nulls__plan=0),
        ),
        id="set-not-null-without-check",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            'ALTER TABLE "users" ADD COLUMN "public_id" UUID NOT NULL DEFAULT gen_random_uuid();',
            [("table-rewrite", "locking", 1)],
        ),
        id="volatile-default",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            "ALTER TABLE users ADD COLUMN seq bigserial;",
            [("table-rewrite", "locking", 1)],
        ),
        id="bigserial",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "id" SET DATA TYPE BIGINT;\n',
            [("table-rewrite", "locking", 2)],
            facts=users(non_null__id=300),
        ),
        id="int-to-bigint",
    ),
    pytest.param(
        Case(
            "unique-constraint-locking",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email);",
            [("unique-constraint-locking", "locking", 1)],
        ),
        id="unique-constraint",
    ),
    pytest.param(
        Case(
            "unique-constraint-locking",
            'ALTER TABLE "users" ADD CONSTRAINT "users_pkey" PRIMARY KEY ("id");',
            [("unique-constraint-locking", "locking", 1)],
        ),
        id="primary-key",
    ),
    pytest.param(
        Case(
            "rename-column",
            'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";',
            [("rename-column", "compat", 1)],
        ),
        id="rename-column",
    ),
    pytest.param(
        Case(
            "rename-table",
            'ALTER TABLE "users" RENAME TO "customers";',
            [("rename-table", "compat", 1)],
        ),
        id="rename-table",
    ),
    pytest.param(
        Case(
            "opaque-statement",
            sql_text(
                """
                -- backfill in a DO block
                DO $$
                BEGIN
                  UPDATE users SET plan = 'free' WHERE plan IS NULL;
                END
                $$;
                """
            ),
            [("opaque-statement", "info", 2)],
        ),
        id="do-block",
    ),
    pytest.param(
        Case(
            "syntax-error",
            '-- AlterTable\nALTER TABLE "users" ADD COLUMN "plan" TEXT NOT NULL DEFAUL \'free\';\n',
            [("syntax-error", "syntax", 2)],
        ),
        id="syntax-typo",
    ),
    pytest.param(
        Case(
            "syntax-error",
            'CREATE TABLE "a" ("id" INT);\n\n-- CreateTable\nCREAT TABLE "b" ("id" INT);\n',
            [("syntax-error", "syntax", 4)],
        ),
        id="syntax-later-statement",
    ),
]

NO_FLAGS = [
    pytest.param(Case("drop-table", 'DROP VIEW IF EXISTS "active_users";', []), id="drop-view"),
    pytest.param(
        Case(
            "drop-table",
            'CREATE TABLE "tmp_import" ("id" INT);\nDROP TABLE "tmp_import";\n',
            [("drop-table", "info", 2)],
        ),
        id="drop-table-created-here",
    ),
    pytest.param(
        Case(
            "drop-table",
            'DROP TABLE "sessions";',
            [("drop-table", "info", 1)],
            facts=Facts({"sessions": table(0, {"id": "text"})}),
        ),
        id="drop-empty-table",
    ),
    pytest.param(
        Case("drop-schema", 'CREATE SCHEMA "billing";\nDROP TYPE "Role_old";\n', []),
        id="create-schema-drop-type",
    ),
    pytest.param(
        Case(
            "drop-column",
            'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";',
            [("rename-column", "compat", 1)],
        ),
        id="rename-column-is-no-data-loss",
    ),
    pytest.param(
        Case("drop-column", 'ALTER TABLE "users" DROP CONSTRAINT "users_email_key";', []),
        id="drop-constraint",
    ),
    pytest.param(
        Case(
            "drop-column",
            "ALTER TABLE users DROP COLUMN plan;",
            [("drop-column", "info", 1)],
            facts=users(non_null__plan=0),
        ),
        id="drop-column-without-values",
    ),
    pytest.param(
        Case(
            "truncate",
            'CREATE TABLE "staging" ("id" INT);\nTRUNCATE "staging";\n',
            [("truncate", "info", 2)],
        ),
        id="truncate-created-here",
    ),
    pytest.param(
        Case(
            "delete-rows",
            "DELETE FROM alembic_version WHERE alembic_version.version_num = 'c3d4e5f6a7b8';",
            [],
        ),
        id="alembic-version-delete",
    ),
    pytest.param(
        Case(
            "delete-rows",
            "DELETE FROM sessions;",
            [("delete-rows", "info", 1)],
            facts=Facts({"sessions": table(0, {"id": "text"})}),
        ),
        id="delete-from-empty-table",
    ),
    pytest.param(
        Case(
            "update-overwrites",
            ADDED_FULL_NAME + "UPDATE users SET full_name = name WHERE full_name IS NULL;\n",
            [],
        ),
        id="backfill",
    ),
    pytest.param(
        Case(
            "update-overwrites",
            '-- backfill\nUPDATE "users" SET "plan" = \'free\' WHERE "plan" IS NULL AND "id" > 0;',
            [],
        ),
        id="backfill-with-and",
    ),
    pytest.param(Case("update-overwrites", ALEMBIC_SAFE, []), id="alembic-version-update"),
    pytest.param(
        Case(
            "update-overwrites",
            ADDED_FULL_NAME + "UPDATE users SET full_name = name;\n",
            [("update-overwrites", "info", 2)],
        ),
        id="update-of-a-new-column",
    ),
    pytest.param(
        Case(
            "narrowing-type",
            "ALTER TABLE users ALTER COLUMN name TYPE VARCHAR(20);",
            [("table-rewrite", "locking", 1)],
            facts=Facts({"users": table(300, USERS_COLUMNS, {("longer_than", "name", 20): 0})}),
        ),
        id="varchar-all-values-fit",
    ),
    pytest.param(
        Case(
            "narrowing-type",
            'ALTER TABLE "invoices" ALTER COLUMN "amount" SET DATA TYPE INTEGER;',
            [("table-rewrite", "locking", 1)],
            facts=Facts(
                {
                    "invoices": table(
                        50, {"id": "int4", "amount": "numeric"}, {("fractional", "amount"): 0}
                    )
                }
            ),
        ),
        id="numeric-all-whole",
    ),
    pytest.param(
        Case("enum-value-removed", "ALTER TYPE \"Role\" ADD VALUE 'GUEST';", []),
        id="enum-add-value",
    ),
    pytest.param(
        Case(
            "enum-value-removed",
            PRISMA_ENUM_RECREATION,
            [("enum-value-removed", "info", 11)],
            facts=Facts(
                {
                    "users": table(
                        300,
                        {"id": "int4", "role": "Role"},
                        {("non_null", "role"): 300, ("outside", "role", ("USER", "ADMIN")): 0},
                    )
                }
            ),
        ),
        id="enum-value-not-in-use",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            '-- AlterTable\nALTER TABLE "users" ADD COLUMN "plan" TEXT;\n',
            [],
        ),
        id="nullable-column",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            'ALTER TABLE "users" ADD COLUMN "plan" TEXT NOT NULL DEFAULT \'free\',\n'
            'ADD COLUMN "created_at" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP;\n',
            [],
        ),
        id="not-null-with-default",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            'CREATE TABLE "teams" ("id" SERIAL NOT NULL);\n'
            '-- AlterTable\nALTER TABLE "teams" ADD COLUMN "name" TEXT NOT NULL;\n',
            [("required-column-without-default", "info", 3)],
        ),
        id="not-null-on-table-created-here",
    ),
    pytest.param(
        Case(
            "required-column-without-default",
            PRISMA_REQUIRED_COLUMN,
            [("required-column-without-default", "info", 8)],
            facts=users(rows=0),
        ),
        id="not-null-on-empty-table",
    ),
    pytest.param(
        Case(
            "expand-contract-same-migration",
            ADDED_FULL_NAME + "UPDATE users SET full_name = name WHERE full_name IS NULL;\n",
            [],
        ),
        id="expand-only",
    ),
    pytest.param(
        Case(
            "expand-contract-same-migration",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            history=(expansion(days_ago=8),),
        ),
        id="contract-after-grace",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            history=(expansion(days_ago=8),),
        ),
        id="grace-period-over",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            history=(expansion(days_ago=1, table="accounts"),),
        ),
        id="expansion-on-another-table",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            facts=users(non_null__name=300),
            history=(expansion(days_ago=1, source="email"),),
        ),
        id="replacement-of-another-column",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "data-loss", 1)],
            facts=users(non_null__name=300),
            before=(ADDED_FULL_NAME,),
        ),
        id="unrelated-column-added-in-the-same-run",
    ),
    pytest.param(
        Case(
            "contract-too-soon",
            "ALTER TABLE users DROP COLUMN name;",
            [("drop-column", "info", 1)],
            facts=users(non_null__name=0),
            history=(expansion(days_ago=1),),
        ),
        id="replacement-of-an-all-null-column",
    ),
    pytest.param(
        Case(
            "rename-as-drop-add",
            'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";',
            [("rename-column", "compat", 1)],
        ),
        id="real-rename",
    ),
    pytest.param(
        Case(
            "rename-as-drop-add",
            'ALTER TABLE "users" DROP COLUMN "nickname";\n'
            'ALTER TABLE "accounts" ADD COLUMN "nickname" TEXT;\n',
            [("drop-column", "data-loss", 1)],
        ),
        id="drop-and-add-on-two-tables",
    ),
    pytest.param(
        Case(
            "rename-as-drop-add",
            'ALTER TABLE "users" DROP COLUMN "age",\nADD COLUMN "birthday" DATE;\n',
            [("drop-column", "data-loss", 1), ("expand-contract-same-migration", "data-loss", 1)],
            facts=users(non_null__age=280),
        ),
        id="drop-and-add-of-another-type",
    ),
    pytest.param(
        Case(
            "set-not-null-with-nulls",
            '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "nickname" SET NOT NULL;\n',
            [("set-not-null-without-check", "locking", 2)],
            facts=users(nulls__nickname=0),
        ),
        id="set-not-null-without-nulls",
    ),
    pytest.param(
        Case(
            "set-not-null-with-nulls",
            "UPDATE users SET plan = 'free' WHERE plan IS NULL;\n"
            "ALTER TABLE users ALTER COLUMN plan SET NOT NULL;\n",
            [("set-not-null-without-check", "locking", 2)],
            facts=users(nulls__plan=40),
        ),
        id="set-not-null-after-backfill",
    ),
    pytest.param(
        Case(
            "set-not-null-with-nulls",
            'CREATE TABLE "teams" ("id" INT, "name" TEXT);\n'
            'ALTER TABLE "teams" ALTER COLUMN "name" SET NOT NULL;\n',
            [],
        ),
        id="set-not-null-on-table-created-here",
    ),
    pytest.param(
        Case(
            "unique-over-duplicates",
            '-- CreateIndex\nCREATE UNIQUE INDEX "users_email_key" ON "users"("email");\n',
            [("index-without-concurrently", "locking", 2)],
            facts=Facts({"users": table(300, USERS_COLUMNS, {("unique", ("email",)): 0})}),
        ),
        id="unique-without-duplicates",
    ),
    pytest.param(
        Case(
            "unique-over-duplicates",
            '-- CreateIndex\nCREATE UNIQUE INDEX "users_email_key" ON "users"("email");\n',
            [("index-without-concurrently", "locking", 2)],
        ),
        id="unique-static-unknown",
    ),
    pytest.param(Case("unique-over-duplicates", PRISMA_INIT_POSTS, []), id="unique-prisma-init"),
    pytest.param(
        Case(
            "index-without-concurrently",
            "CREATE INDEX CONCURRENTLY users_plan_idx ON users (plan);\n"
            "DROP INDEX CONCURRENTLY users_old_idx;\n",
            [],
        ),
        id="concurrently",
    ),
    pytest.param(Case("index-without-concurrently", PRISMA_INIT_POSTS, []), id="index-init"),
    pytest.param(
        Case(
            "index-without-concurrently",
            "CREATE INDEX ix_users_plan ON users (plan);",
            [],
            facts=users(rows=0),
        ),
        id="index-on-empty-table",
    ),
    pytest.param(
        Case(
            "constraint-without-not-valid",
            sql_text(
                """
                ALTER TABLE "posts" ADD CONSTRAINT "posts_author_id_fkey"
                    FOREIGN KEY ("author_id") REFERENCES "users"("id") NOT VALID;
                ALTER TABLE "posts" VALIDATE CONSTRAINT "posts_author_id_fkey";
                ALTER TABLE users ADD CONSTRAINT users_age_check CHECK (age >= 0) NOT VALID;
                ALTER TABLE users VALIDATE CONSTRAINT users_age_check;
                """
            ),
            [],
        ),
        id="not-valid-then-validate",
    ),
    pytest.param(
        Case("constraint-without-not-valid", PRISMA_INIT_POSTS, []), id="fk-on-table-created-here"
    ),
    pytest.param(
        Case(
            "set-not-null-without-check",
            "ALTER TABLE users ALTER COLUMN plan SET NOT NULL;",
            [],
            facts=users(rows=0, nulls__plan=0),
        ),
        id="set-not-null-on-empty-table",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            'ALTER TABLE "users" ADD COLUMN "plan" TEXT NOT NULL DEFAULT \'free\';',
            [],
        ),
        id="constant-default",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            'ALTER TABLE "users" ALTER COLUMN "nickname" SET DATA TYPE TEXT;',
            [],
            facts=users(non_null__nickname=270),
        ),
        id="varchar-to-text",
    ),
    pytest.param(
        Case(
            "table-rewrite",
            'ALTER TABLE "users" ADD COLUMN "public_id" UUID NOT NULL DEFAULT gen_random_uuid();',
            [],
            facts=users(rows=0),
        ),
        id="volatile-default-on-empty-table",
    ),
    pytest.param(
        Case(
            "unique-constraint-locking",
            "ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE USING INDEX users_email_idx;",
            [],
        ),
        id="unique-using-index",
    ),
    pytest.param(
        Case(
            "unique-constraint-locking",
            'CREATE TABLE "teams" ("id" INT, "slug" TEXT);\n'
            'ALTER TABLE "teams" ADD CONSTRAINT "teams_slug_key" UNIQUE ("slug");\n',
            [],
        ),
        id="unique-on-table-created-here",
    ),
    pytest.param(
        Case("rename-column", 'ALTER TABLE "users" ADD COLUMN "full_name" TEXT;', []),
        id="add-column",
    ),
    pytest.param(
        Case(
            "rename-table",
            'ALTER INDEX "users_email_key" RENAME TO "customers_email_key";\n'
            'ALTER TYPE "Role_new" RENAME TO "Role";\n'
            'ALTER TABLE "users" RENAME CONSTRAINT "users_pkey" TO "customers_pkey";\n',
            [],
        ),
        id="renames-of-other-objects",
    ),
    pytest.param(
        Case(
            "opaque-statement",
            sql_text(
                """
                CREATE FUNCTION touch_updated_at() RETURNS trigger AS $$
                BEGIN
                  NEW.updated_at = now();
                  RETURN NEW;
                END;
                $$ LANGUAGE plpgsql;
                """
            ),
            [],
        ),
        id="function-definition",
    ),
    pytest.param(
        Case(
            "syntax-error",
            sql_text(
                """
                COMMENT ON COLUMN "users"."plan" IS 'free; pro; team';
                DO $$ BEGIN RAISE NOTICE 'a; b'; END $$;
                /* a comment; with a semicolon */
                ALTER TABLE "users" ADD COLUMN "note" TEXT DEFAULT 'x;y';
                """
            ),
            [("opaque-statement", "info", 2)],
        ),
        id="semicolons-in-strings",
    ),
]


def _run(case: Case) -> list[Finding]:
    return judged(case.sql, facts=case.facts, before=case.before, history=case.history)


@pytest.mark.parametrize("case", FLAGS)
def test_rule_flags(case: Case) -> None:
    found = triples(_run(case))
    assert found == case.expected
    assert (case.rule, RULES[case.rule].severity) in {(r, s) for r, s, _ in found}


@pytest.mark.parametrize("case", NO_FLAGS)
def test_rule_does_not_flag(case: Case) -> None:
    found = triples(_run(case))
    assert found == case.expected
    assert not [f for f in found if f[0] == case.rule and f[1] != "info"]


def test_every_rule_has_cases_both_ways() -> None:
    flagged = {p.values[0].rule for p in FLAGS}
    spared = {p.values[0].rule for p in NO_FLAGS}
    # A revision with no SQL to judge: its cases are revisions (tests/cli/test_unanalysable.py).
    judged_on_sql = set(RULES) - {"unanalysable-revision"}
    assert flagged == judged_on_sql
    assert spared == judged_on_sql


def test_severities_follow_the_rulebook_unless_nothing_can_be_lost() -> None:
    """Every finding of the must-flag cases has its rule's severity, or ``info`` with the
    reason that nothing can be lost."""
    for param in FLAGS:
        for finding in _run(param.values[0]):
            if finding.severity == "info" and RULES[finding.rule].severity != "info":
                assert finding.message.endswith(": nothing to lose"), finding
            else:
                assert finding.severity == RULES[finding.rule].severity, finding


# -- messages: figures, names, static mode ------------------------------------------------


def test_static_data_loss_says_data_is_unknown() -> None:
    (drop,) = judged('ALTER TABLE "users" DROP COLUMN "nickname";')
    assert drop.message == "drops users.nickname (static analysis: live data unknown)"
    assert drop.static is True
    assert drop.file == f"/app/prisma/migrations/{MID}/migration.sql"
    assert drop.statement == 'ALTER TABLE "users" DROP COLUMN "nickname"'


def test_names_are_folded_like_postgresql() -> None:
    sql = sql_text(
        """
        DROP TABLE "billing"."invoices";
        DROP TABLE public.users;
        DROP TABLE "public"."Accounts";
        ALTER TABLE "User" DROP COLUMN "firstName";
        ALTER TABLE Orders DROP COLUMN TotalCents;
        ALTER TABLE ONLY public.users DROP COLUMN IF EXISTS legacy;
        """
    )
    messages = [f.message.split(" (")[0] for f in judged(sql)]
    assert messages == [
        "drops table billing.invoices",
        "drops table users",
        "drops table Accounts",
        "drops User.firstName",
        "drops orders.totalcents",
        "drops users.legacy",
    ]


def test_multi_command_alter_table_reports_each_command_on_the_statement_line() -> None:
    sql = sql_text(
        """
        -- AlterTable
        ALTER TABLE "billing"."Invoices" ALTER COLUMN "totalCents" SET NOT NULL,
        ADD COLUMN "paidAt" TIMESTAMP(3),
        DROP COLUMN "Legacy";
        """
    )
    found = judged(
        sql,
        facts=Facts(
            {
                "billing.Invoices": table(
                    10,
                    {"totalCents": "int4", "Legacy": "text"},
                    {("nulls", "totalCents"): 0, ("non_null", "Legacy"): 4},
                )
            }
        ),
    )
    assert triples(found) == [
        ("set-not-null-without-check", "locking", 2),
        ("drop-column", "data-loss", 2),
        ("expand-contract-same-migration", "data-loss", 2),
    ]
    assert found[1].message == "drops billing.Invoices.Legacy: 4 non-null values lost"


def test_live_figures_in_messages() -> None:
    facts = Facts(
        {
            "users": table(
                300,
                USERS_COLUMNS,
                {
                    ("non_null", "name"): 300,
                    ("nulls", "nickname"): 30,
                    ("unique", ("email",)): 2,
                    ("longer_than", "nickname", 20): 7,
                },
            ),
            "sessions": table(0, {"id": "text"}),
        }
    )
    sql = sql_text(
        """
        ALTER TABLE users DROP COLUMN name;
        ALTER TABLE users ALTER COLUMN nickname SET NOT NULL;
        CREATE UNIQUE INDEX users_email_key ON users (email);
        ALTER TABLE users ALTER COLUMN nickname TYPE VARCHAR(20);
        DROP TABLE sessions;
        """
    )
    messages = {(f.rule, f.line): f.message for f in judged(sql, facts=facts)}
    assert messages[("drop-column", 1)] == "drops users.name: 300 non-null values lost"
    assert messages[("set-not-null-with-nulls", 2)] == (
        "SET NOT NULL on users.nickname, which has 30 NULL values"
    )
    assert messages[("set-not-null-without-check", 2)] == (
        "SET NOT NULL scans users (300 rows, 48.0 kB) under ACCESS EXCLUSIVE"
    )
    assert messages[("unique-over-duplicates", 3)] == (
        "unique over users(email), but 2 rows duplicate another"
    )
    assert messages[("narrowing-type", 4)] == (
        "changes users.nickname from varchar to varchar(20): 7 values are longer than 20 characters"
    )
    assert messages[("drop-table", 5)] == "drops table sessions (0 rows): nothing to lose"


def test_enum_recreation_names_the_rows_that_hold_a_removed_value() -> None:
    facts = Facts(
        {
            "users": table(
                300,
                {"id": "int4", "role": "Role"},
                {("non_null", "role"): 300, ("outside", "role", ("USER", "ADMIN")): 3},
            )
        }
    )
    (finding,) = judged(PRISMA_ENUM_RECREATION, facts=facts)
    assert finding.message == (
        "recreates users.role as enum Role_new (USER, ADMIN); 3 rows hold a value it no longer has"
    )


def test_hand_written_sql_lines_after_do_blocks_strings_and_comments() -> None:
    sql = sql_text(
        """
        -- hand-written
        DO $$
        BEGIN
          RAISE NOTICE 'migrating; please wait';
        END
        $$;

        UPDATE "users" SET "status" = 'a;
        b' WHERE "id" = 1;
        /* block comment; with a semicolon */
        DROP TABLE IF EXISTS "Audit";
        """
    )
    assert triples(judged(sql)) == [
        ("opaque-statement", "info", 2),
        ("update-overwrites", "data-loss", 8),
        ("drop-table", "data-loss", 11),
    ]


def test_contract_too_soon_says_when_it_may_run() -> None:
    found = judged("ALTER TABLE users DROP COLUMN name;", history=(expansion(days_ago=2),))
    wait = next(f for f in found if f.rule == "contract-too-soon")
    applied = NOW - timedelta(days=2)
    assert wait.wait_until == applied + timedelta(days=7)
    assert wait.message == (
        "drops users.name although 20261101000000_add_full_name (which filled users.full_name "
        "from it) "
        f"was applied {applied:%Y-%m-%d %H:%M} UTC; contract_grace is 7d: "
        f"waits until {applied + timedelta(days=7):%Y-%m-%d %H:%M} UTC"
    )


def test_rename_in_disguise_message_suggests_the_rename() -> None:
    found = judged(PRISMA_DROP_ADD, facts=users(non_null__name=300))
    assert found[1].message == (
        "users.name is dropped and users.full_name (text) added: probably a rename written as "
        "drop + add; the data of name would be lost: 300 non-null values; "
        "write RENAME COLUMN name TO full_name"
    )


# -- Alembic: SQL rendered from a revision file --------------------------------------------


def test_alembic_rendered_sql_points_at_def_upgrade(tmp_path: Path) -> None:
    folder = script_dir(tmp_path)
    add_revision(folder, "a1b2c3d4e5f6", None, create_table("users", "email", "nickname"))
    path = add_revision(
        folder,
        "b2c3d4e5f6a7",
        "a1b2c3d4e5f6",
        """
        op.add_column('users', sa.Column('plan', sa.String(length=20), nullable=True))
        op.drop_column('users', 'nickname')
        """,
    )
    layout = AlembicLayout(folder)
    first, second = layout.migrations()
    sql = layout.sql(second, "postgresql")
    assert sql is not None
    assert "UPDATE alembic_version SET version_num='b2c3d4e5f6a7'" in sql
    upgrade = next(
        n for n, text in enumerate(path.read_text().splitlines(), 1) if text.startswith("def up")
    )
    batch = [
        parse_migration(first, layout.sql(first, "postgresql"), "postgresql"),
        parse_migration(second, sql, "postgresql"),
    ]
    results = judge_batch(batch, None, now=NOW, grace_seconds=GRACE)
    assert results[first.id] == []  # CREATE TABLE, alembic_version bookkeeping
    # The table is created earlier in the same batch: it is empty when the drop runs.
    assert triples(results[second.id]) == [
        ("drop-column", "info", upgrade),
        ("rename-as-drop-add", "info", upgrade),
    ]
    alone = judge_batch(batch[1:], None, now=NOW, grace_seconds=GRACE)[second.id]
    assert triples(alone) == [
        ("drop-column", "data-loss", upgrade),
        ("rename-as-drop-add", "data-loss", upgrade),
    ]
    assert alone[0].file == str(path)


def test_alembic_bookkeeping_alone_has_no_findings() -> None:
    sql = sql_text(
        """
        BEGIN;

        CREATE TABLE alembic_version (
            version_num VARCHAR(32) NOT NULL,
            CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
        );

        {insert}

        {bump}

        DELETE FROM alembic_version WHERE alembic_version.version_num = 'b2c3d4e5f6a7';

        COMMIT;
        """
    ).format(
        insert="INSERT INTO alembic_version (version_num) VALUES ('a1b2c3d4e5f6') "
        "RETURNING alembic_version.version_num;",
        bump=bump_version("b2c3d4e5f6a7", "a1b2c3d4e5f6"),
    )
    assert judged(sql) == []


# -- rules that are wrong ------------------------------------------------------------------


def test_line_numbers_after_non_ascii_comment() -> None:
    sql = sql_text(
        """
        -- Supprime la colonne « surnom », remplacée par « prénom »
        ALTER TABLE "users" DROP COLUMN "nickname";
        """
    )
    assert triples(judged(sql)) == [("drop-column", "data-loss", 2)]


def test_non_ascii_comment_does_not_crash_the_parser() -> None:
    sql = sql_text(
        """
        -- ユーザー名を削除する
        ALTER TABLE "users" DROP COLUMN "name";
        DROP TABLE "sessions";
        """
    )
    assert triples(judged(sql)) == [
        ("drop-column", "data-loss", 2),
        ("drop-table", "data-loss", 3),
    ]


def test_syntax_error_at_end_of_input_points_at_the_last_line() -> None:
    sql = sql_text(
        """
        -- CreateTable
        CREATE TABLE "teams" (
            "id" SERIAL NOT NULL,
            "name" TEXT NOT NULL,
        """
    )
    assert triples(judged(sql)) == [("syntax-error", "syntax", 4)]


def test_static_widening_to_text_is_not_narrowing() -> None:
    sql = '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "email" SET DATA TYPE TEXT;\n'
    assert triples(judged(sql)) == [("table-rewrite", "locking", 2)]


@pytest.mark.parametrize("facts", [None, users(non_null__age=280)], ids=["static", "live"])
def test_prisma_drop_and_recreate_same_column_is_not_a_rename(facts: Facts | None) -> None:
    sql = prisma_warning(
        "The `age` column on the `users` table would be dropped and recreated. This will lead "
        "to data loss if there is data in the column."
    ) + sql_text(
        """
        -- AlterTable
        ALTER TABLE "users" DROP COLUMN "age",
        ADD COLUMN     "age" TEXT;
        """
    )
    assert triples(judged(sql, facts=facts)) == [("drop-column", "data-loss", 8)]


def test_raising_a_varchar_limit_neither_narrows_nor_rewrites() -> None:
    sql = '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "nickname" SET DATA TYPE VARCHAR(255);\n'
    users_table = table(300, USERS_COLUMNS, {("longer_than", "nickname", 255): 0})
    facts = Facts({"users": dataclasses.replace(users_table, lengths={"nickname": 50})})
    assert triples(judged(sql, facts=facts)) == []


def test_shrinking_varchar_rewrites_the_table() -> None:
    sql = '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "nickname" SET DATA TYPE VARCHAR(100);\n'
    facts = Facts({"users": table(300, USERS_COLUMNS, {("longer_than", "nickname", 100): 0})})
    assert triples(judged(sql, facts=facts)) == [("table-rewrite", "locking", 2)]


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE users ADD COLUMN search tsvector "
        "GENERATED ALWAYS AS (to_tsvector('english', name)) STORED;",
        "ALTER TABLE users ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;",
    ],
    ids=["generated-stored", "identity"],
)
def test_added_column_computed_for_every_row_rewrites(sql: str) -> None:
    assert triples(judged(sql, facts=users(rows=300))) == [("table-rewrite", "locking", 1)]


# -- the gate ------------------------------------------------------------------------------

DROP_SQL = '-- AlterTable\nALTER TABLE "users" DROP COLUMN "name";\n'
INDEX_SQL = '-- CreateIndex\nCREATE INDEX "users_plan_idx" ON "users"("plan");\n'


def approval(sql: str, rules: list[str], **extra: Any) -> Approval:
    return Approval(
        migration=MID,
        checksum=migration(sql).checksum[:12],
        rules=rules,
        reason="name copied to full_name on 2026-11-03, verified",
        **extra,
    )


def gate(sql: str, safety: Safety, **judge: Any) -> Verdict:
    return gate_step(migration(sql), judged(sql, **judge), safety, NOW)


def test_gate_blocks_data_loss_without_approval() -> None:
    verdict = gate(DROP_SQL, Safety())
    assert verdict.decision == "blocked"
    assert verdict.reason == "AwaitingApproval"
    assert [f.rule for f in verdict.blocking] == ["drop-column"]
    assert verdict.approved == ()
    assert verdict.refused == ()


def test_gate_runs_an_approved_step() -> None:
    granted = approval(DROP_SQL, ["drop-column"], approved_by="ana@example.com")
    verdict = gate(DROP_SQL, Safety(approvals=[granted]))
    assert verdict.decision == "run"
    assert verdict.reason == "Ready"
    assert verdict.blocking == ()
    assert [(f.rule, a) for f, a in verdict.approved] == [("drop-column", granted)]


def test_gate_accepts_any_checksum_prefix_of_eight_or_more() -> None:
    full = migration(DROP_SQL).checksum
    for prefix in (full[:8], full[:12], full):
        granted = Approval(migration=MID, checksum=prefix, rules=["drop-column"], reason="ok!")
        assert gate(DROP_SQL, Safety(approvals=[granted])).decision == "run"


def test_an_edited_file_voids_the_approval() -> None:
    granted = approval(DROP_SQL, ["drop-column"])
    edited = DROP_SQL + "-- reviewed\n"
    verdict = gate(edited, Safety(approvals=[granted]))
    assert verdict.decision == "blocked"
    assert [f.rule for f in verdict.blocking] == ["drop-column"]
    (refused,) = verdict.refused
    assert refused == (
        f"the approval for {MID} was given for checksum {granted.checksum}, but the file now "
        f"hashes to {migration(edited).checksum[:12]}: the file was edited after review"
    )


def test_an_expired_approval_is_refused() -> None:
    yesterday = NOW.date() - timedelta(days=1)
    verdict = gate(
        DROP_SQL, Safety(approvals=[approval(DROP_SQL, ["drop-column"], expires=yesterday)])
    )
    assert verdict.decision == "blocked"
    assert verdict.refused == (f"the approval for {MID} expired on {yesterday}",)


def test_an_approval_expiring_today_still_applies() -> None:
    granted = approval(DROP_SQL, ["drop-column"], expires=NOW.date())
    assert gate(DROP_SQL, Safety(approvals=[granted])).decision == "run"


def test_an_approval_for_another_rule_does_not_cover() -> None:
    verdict = gate(DROP_SQL, Safety(approvals=[approval(DROP_SQL, ["drop-table"])]))
    assert verdict.decision == "blocked"
    assert [f.rule for f in verdict.blocking] == ["drop-column"]
    assert verdict.refused == ()


def test_an_approval_for_another_migration_does_not_cover() -> None:
    other = Approval(
        migration="20261101000000_other",
        checksum=migration(DROP_SQL).checksum[:12],
        rules=["drop-column"],
        reason="other",
    )
    assert gate(DROP_SQL, Safety(approvals=[other])).decision == "blocked"


def test_an_approval_must_cover_every_blocking_rule() -> None:
    granted = approval(PRISMA_DROP_ADD, ["drop-column"])
    verdict = gate(PRISMA_DROP_ADD, Safety(approvals=[granted]))
    assert verdict.decision == "blocked"
    assert [f.rule for f in verdict.blocking] == ["rename-as-drop-add"]
    both = approval(PRISMA_DROP_ADD, ["drop-column", "rename-as-drop-add"])
    assert gate(PRISMA_DROP_ADD, Safety(approvals=[both])).decision == "run"


def test_locking_warns_by_default_and_blocks_when_listed() -> None:
    assert gate(INDEX_SQL, Safety()).decision == "run"
    strict = Safety(block=["data-loss", "will-fail", "locking"])
    verdict = gate(INDEX_SQL, strict)
    assert verdict.decision == "blocked"
    assert [(f.rule, f.severity) for f in verdict.blocking] == [
        ("index-without-concurrently", "locking")
    ]
    granted = approval(INDEX_SQL, ["index-without-concurrently"])
    approved = Safety(block=["data-loss", "will-fail", "locking"], approvals=[granted])
    assert gate(INDEX_SQL, approved).decision == "run"


def test_compat_blocks_only_when_listed() -> None:
    sql = 'ALTER TABLE "users" RENAME COLUMN "name" TO "full_name";'
    assert gate(sql, Safety()).decision == "run"
    assert gate(sql, Safety(block=["compat"])).decision == "blocked"


def test_info_findings_do_not_block() -> None:
    sql = "ALTER TABLE users DROP COLUMN plan;"
    verdict = gate(sql, Safety(), facts=users(non_null__plan=0))
    assert [(f.rule, f.severity) for f in judged(sql, facts=users(non_null__plan=0))] == [
        ("drop-column", "info")
    ]
    assert verdict.decision == "run"


@pytest.mark.parametrize("severity", ["info", "syntax"])
def test_the_policy_cannot_make_info_block_or_syntax_optional(severity: str) -> None:
    with pytest.raises(ValidationError, match="block"):
        Safety.model_validate({"block": ["data-loss", severity]})


def test_syntax_errors_always_block_and_cannot_be_approved() -> None:
    sql = 'CREAT TABLE "teams" ("id" INT);'
    verdict = gate(sql, Safety(block=[]))
    assert verdict.decision == "blocked"
    assert verdict.reason == "InvalidMigration"
    with pytest.raises(ValidationError, match="syntax-error cannot be approved"):
        approval(sql, ["syntax-error"])


def test_approval_names_known_rules_only() -> None:
    with pytest.raises(ValidationError, match="unknown rule 'drop-colum'"):
        approval(DROP_SQL, ["drop-colum"])
    with pytest.raises(ValidationError, match="an approval needs `rules`"):
        approval(DROP_SQL, [])


def test_an_approval_may_accept_measured_losses_on_tables_no_rule_flags() -> None:
    """Rows a cascade or a trigger deletes: accepted by naming the table, for that
    migration only, and only while its checksum matches."""
    sql = 'DELETE FROM "users" WHERE "id" = 1;'
    verdict = gate(sql, Safety(approvals=[approval(sql, [], tables=["notes"])]))
    assert verdict.accepted_tables == {"notes"}
    assert covers_loss(verdict, Safety(), "notes")
    assert not covers_loss(verdict, Safety(), "invoices")
    edited = gate(sql + "\n", Safety(approvals=[approval(sql, [], tables=["notes"])]))
    assert edited.accepted_tables == frozenset()


def test_contract_too_soon_waits_for_the_grace_period() -> None:
    sql = "ALTER TABLE users DROP COLUMN name;"
    history = (expansion(days_ago=2),)
    drop_only = Safety(approvals=[approval(sql, ["drop-column"])])
    verdict = gate(sql, drop_only, history=history)
    assert verdict.decision == "waiting"
    assert verdict.reason == "AwaitingGracePeriod"
    assert [f.rule for f in verdict.waiting] == ["contract-too-soon"]
    assert verdict.waiting[0].wait_until == NOW + timedelta(days=5)


def test_contract_too_soon_behind_a_blocking_finding_is_blocked() -> None:
    sql = "ALTER TABLE users DROP COLUMN name;"
    verdict = gate(sql, Safety(), history=(expansion(days_ago=2),))
    assert verdict.decision == "blocked"
    assert verdict.reason == "AwaitingApproval"
    assert [f.rule for f in verdict.waiting] == ["contract-too-soon"]


def test_contract_too_soon_can_be_approved() -> None:
    sql = "ALTER TABLE users DROP COLUMN name;"
    granted = approval(sql, ["drop-column", "contract-too-soon"])
    verdict = gate(sql, Safety(approvals=[granted]), history=(expansion(days_ago=2),))
    assert verdict.decision == "run"
    assert sorted(f.rule for f, _ in verdict.approved) == ["contract-too-soon", "drop-column"]


def test_contract_too_soon_waits_even_when_data_loss_does_not_block() -> None:
    sql = "ALTER TABLE users DROP COLUMN name;"
    verdict = gate(sql, Safety(block=["will-fail"]), history=(expansion(days_ago=2),))
    assert verdict.decision == "waiting"


def test_gate_on_lint_of_an_alembic_script_keeps_default_block() -> None:
    verdict = gate(ALEMBIC_UPGRADE, Safety())
    assert verdict.decision == "blocked"
    assert sorted({f.rule for f in verdict.blocking}) == [
        "drop-column",
        "narrowing-type",
        "rename-as-drop-add",
        "required-column-without-default",
    ]


def test_the_printed_approvals_paste_back_whatever_the_checksum_and_id_hold(
    tmp_path: Path,
) -> None:
    """A checksum whose first 12 characters are digits (about one migration in 280), or an
    Alembic revision id of digits alone, reads as a number unless quoted: the approval a
    person pastes would be refused."""
    from reconciler.policy import load_policy
    from reconciler.safety.gate import approval_snippet, loss_approval

    sql = next(
        text
        for n in range(100_000)
        if hashlib.sha256((text := f"{DROP_SQL}-- {n}\n").encode()).hexdigest()[:12].isdigit()
    )
    step = msgspec.structs.replace(migration(sql), id="202612010000")
    assert step.checksum[:12].isdigit()
    verdict = gate(sql, Safety())
    entries = (
        approval_snippet(step, verdict.blocking),
        "        - " + loss_approval(step, ["users"]) + "\n",
    )
    for entry in entries:
        (tmp_path / "policy.yaml").write_text(
            "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
            "    migrations: {layout: prisma, path: migrations}\n"
            "    safety:\n      approvals:\n" + entry.replace("reason: ...", "reason: reviewed")
        )
        (approval,) = load_policy(tmp_path / "policy.yaml", environ={}).targets[0].safety.approvals
        assert (approval.migration, approval.checksum) == (step.id, step.checksum[:12])


# -- widening and narrowing type changes -----------------------------------------------------

LOSSLESS = [
    ("SMALLINT", "INTEGER"),
    ("INTEGER", "BIGINT"),
    ("SMALLINT", "BIGINT"),
    ("SERIAL", "BIGINT"),
    ("INT4", "INT8"),
    ("REAL", "DOUBLE PRECISION"),
    ("TIMESTAMP(3)", "TIMESTAMPTZ(3)"),
    ("TIMESTAMP", "TIMESTAMP WITH TIME ZONE"),
    ("TIMESTAMP(3)", "TIMESTAMP(6)"),
    ("DATE", "TIMESTAMP(3)"),
    ("VARCHAR(20)", "VARCHAR(255)"),
    ("CHARACTER VARYING(20)", "TEXT"),
    ("VARCHAR(20)", "VARCHAR"),
    ("NUMERIC(10,2)", "NUMERIC(12,2)"),
    ("NUMERIC(10,2)", "DECIMAL(11,3)"),
    ("DECIMAL(10,2)", "NUMERIC"),
    ("INTEGER", "NUMERIC(12,0)"),
    ("INTEGER", "DOUBLE PRECISION"),
    ("JSONB", "JSON"),
    ("BOOLEAN", "BOOL"),
]

NARROWING = [
    ("BIGINT", "INTEGER"),
    ("DOUBLE PRECISION", "REAL"),
    ("TIMESTAMPTZ(3)", "TIMESTAMP(3)"),
    ("TIMESTAMP(6)", "TIMESTAMP(3)"),
    ("TIMESTAMP(3)", "DATE"),
    ("VARCHAR(255)", "VARCHAR(20)"),
    ("TEXT", "VARCHAR(20)"),
    ("NUMERIC(12,2)", "NUMERIC(10,2)"),
    ("NUMERIC(10,2)", "NUMERIC(10,3)"),
    ("NUMERIC", "NUMERIC(65,30)"),
    ("BIGINT", "DOUBLE PRECISION"),
    ("INTEGER", "NUMERIC(5,0)"),
    ("VARCHAR(3)", "CHAR(3)"),
    ("JSON", "JSONB"),
    ("NUMERIC(10,2)", "DOUBLE PRECISION"),
    ("INTEGER[]", "BIGINT"),
]


def _created_then_altered(old: str, new: str) -> tuple[str, str]:
    """A history whose first migration creates (and fills) the table with ``old``, and a
    later one changing the type to ``new``: the old type is known only from the replay."""
    create = sql_text(
        f"""
        CREATE TABLE "events" ("id" SERIAL NOT NULL, "value" {old});
        INSERT INTO "events" ("value") VALUES (NULL);
        """
    )
    return create, f'ALTER TABLE "events" ALTER COLUMN "value" SET DATA TYPE {new};\n'


@pytest.mark.parametrize(("old", "new"), LOSSLESS, ids=[f"{o}->{n}" for o, n in LOSSLESS])
def test_a_lossless_widening_is_not_narrowing(old: str, new: str) -> None:
    create, alter = _created_then_altered(old, new)
    rules = [f.rule for f in judged(alter, before=(create,))]
    assert "narrowing-type" not in rules


@pytest.mark.parametrize(("old", "new"), NARROWING, ids=[f"{o}->{n}" for o, n in NARROWING])
def test_a_real_narrowing_still_blocks_without_data(old: str, new: str) -> None:
    create, alter = _created_then_altered(old, new)
    found = [f for f in judged(alter, before=(create,)) if f.rule == "narrowing-type"]
    assert [(f.severity, f.static) for f in found] == [("data-loss", True)]


def test_the_old_type_follows_renames_through_the_replay() -> None:
    create = sql_text(
        """
        CREATE TABLE "events" ("id" SERIAL NOT NULL, "count" INTEGER);
        INSERT INTO "events" ("count") VALUES (1);
        ALTER TABLE "events" RENAME TO "happenings";
        ALTER TABLE "happenings" RENAME COLUMN "count" TO "total";
        """
    )
    alter = 'ALTER TABLE "happenings" ALTER COLUMN "total" SET DATA TYPE BIGINT;\n'
    assert "narrowing-type" not in [f.rule for f in judged(alter, before=(create,))]
    narrowed = 'ALTER TABLE "happenings" ALTER COLUMN "total" SET DATA TYPE SMALLINT;\n'
    assert "narrowing-type" in [f.rule for f in judged(narrowed, before=(create,))]


def test_an_unknown_old_type_says_so_and_blocks() -> None:
    (finding,) = [
        f
        for f in judged('ALTER TABLE "events" ALTER COLUMN "value" SET DATA TYPE BIGINT;\n')
        if f.rule == "narrowing-type"
    ]
    assert finding.severity == "data-loss"
    assert finding.message == (
        "changes events.value to int8: its current type is unknown (not created earlier in "
        "this run, no database), so a widening cannot be told from a narrowing"
        " (static analysis: live data unknown)"
    )


def test_static_lint_of_a_folder_knows_types_from_its_earlier_files() -> None:
    """``lint PATH``: each file judged on its own, but a type is what earlier files made."""
    create, alter = _created_then_altered("INTEGER", "BIGINT")
    first = parse_migration(migration(create, "20261110000000_create"), create, "postgresql")
    second = parse_migration(migration(alter), alter, "postgresql")
    results = judge_batch([first, second], None, now=NOW, grace_seconds=GRACE, live_batch=False)
    assert "narrowing-type" not in [f.rule for f in results[MID]]
    elsewhere = msgspec.structs.replace(
        second, migration=msgspec.structs.replace(second.migration, path=Path("/other/change.sql"))
    )
    results = judge_batch([first, elsewhere], None, now=NOW, grace_seconds=GRACE, live_batch=False)
    assert "narrowing-type" in [f.rule for f in results[MID]]


ROLE_TABLE = sql_text(
    """
    CREATE TYPE "Role" AS ENUM ('USER', 'ADMIN', 'GUEST');
    CREATE TABLE "users" ("id" SERIAL NOT NULL, "role" "Role" NOT NULL DEFAULT 'USER');
    INSERT INTO "users" ("role") VALUES ('GUEST');
    """
)


def role_mapped(labels: str, case: str) -> str:
    return sql_text(
        f"""
        CREATE TYPE "Role_new" AS ENUM ({labels});
        ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING (({case})::"Role_new");
        ALTER TYPE "Role" RENAME TO "Role_old";
        ALTER TYPE "Role_new" RENAME TO "Role";
        DROP TYPE "Role_old";
        """
    )


RENAME_GUEST = role_mapped(
    "'USER', 'ADMIN', 'VISITOR'",
    """CASE "role"::text WHEN 'GUEST' THEN 'VISITOR' ELSE "role"::text END""",
)


def test_enum_case_mapping_every_old_value_removes_nothing() -> None:
    assert triples(judged(RENAME_GUEST, before=(ROLE_TABLE,))) == []


def test_enum_case_folding_values_is_an_overwrite() -> None:
    sql = role_mapped(
        "'USER', 'ADMIN'", """CASE WHEN "role" IN ('GUEST') THEN 'USER' ELSE "role"::text END"""
    )
    (finding,) = judged(sql, before=(ROLE_TABLE,))
    assert (finding.rule, finding.severity, finding.line) == ("update-overwrites", "data-loss", 2)
    assert finding.message.startswith(
        "recreates users.role as enum Role_new (USER, ADMIN) with a CASE that folds GUEST into USER"
    )


def test_enum_case_leaving_a_value_without_target_removes_it() -> None:
    sql = role_mapped("'USER', 'STAFF'", """CASE "role" WHEN 'USER' THEN 'USER' END""")
    rules = [(f.rule, f.severity) for f in judged(sql, before=(ROLE_TABLE,))]
    assert rules == [("enum-value-removed", "data-loss")]
    (finding,) = judged(sql, before=(ROLE_TABLE,))
    assert "gives ADMIN, GUEST no value of it" in finding.message


def test_enum_case_without_the_old_labels_says_what_it_cannot_tell() -> None:
    (finding,) = [f for f in judged(RENAME_GUEST) if f.rule == "enum-value-removed"]
    assert finding.severity == "data-loss"
    assert "gives the values it does not name no value of it" in finding.message


def test_enum_case_mapping_is_read_from_libpg_query() -> None:
    (op,) = [
        o
        for o in parse_migration(migration(RENAME_GUEST), RENAME_GUEST, "postgresql").sql.ops
        if o.kind == "alter-type"
    ]
    assert (op.using, op.case_map, op.case_else, op.case_else_keeps) == (
        "case",
        (("GUEST", "VISITOR"),),
        None,
        True,
    )


def test_making_empty_strings_null_loses_nothing_even_without_data() -> None:
    sql = "UPDATE users SET nickname = NULL WHERE nickname = '' AND id > 3;"
    assert triples(judged(sql)) == [("update-overwrites", "info", 1)]
    sql = "UPDATE users SET nickname = NULL WHERE nickname = '' OR id > 3;"
    assert triples(judged(sql)) == [("update-overwrites", "data-loss", 1)]


def test_an_update_is_read_as_the_select_that_measures_it() -> None:
    sql = "UPDATE users AS u SET bio = left(bio, 10), name = upper(name) WHERE u.id > 3;"
    parsed = parse_migration(migration(sql), sql, "postgresql")
    (op,) = parsed.sql.ops
    assert (op.text, op.rewrites, op.lossy_calls) == (sql[:-1], (), ("bio",))  # not printed yet
    ((op,),) = [item.sql.ops for item in measurable([parsed])]
    assert (op.text, op.rewrites, op.source, op.where) == (
        "",
        (("bio", '"left"(bio, 10)'), ("name", "upper(name)")),
        "users AS u",
        "u.id > 3",
    )
    joined = "UPDATE users SET name = o.name FROM others o WHERE o.id = users.id;"
    ((op,),) = [
        item.sql.ops
        for item in measurable([parse_migration(migration(joined), joined, "postgresql")])
    ]
    assert (op.text, op.rewrites) == ("", ())
