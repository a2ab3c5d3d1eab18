"""Golden rule 2 on live PostgreSQL: the grace period is owed only to a real replacement of
a column that holds data; known-empty tables stay empty through a DELETE.

Uses the ``shop`` of ``test_rules_live``: 300 users (``legacy_code`` NULL in every row), 50
invoices and an empty ``sessions`` table, applied and seeded by the real pipeline.
"""

from __future__ import annotations

import psycopg

from tests.safety.test_rules_live import (
    CHANGE,
    DROP_NAME,
    DROP_NAME_SQL,
    REASON,
    Shop,
    judge,
    shop,
)

__all__ = ["shop"]  # the fixture, used by name below

ADD_STATUS = "20261120090000_add_users_status"


def test_a_column_merely_added_earlier_does_not_hold_an_approved_drop(shop: Shop) -> None:
    shop.add(ADD_STATUS, '-- AlterTable\nALTER TABLE "users" ADD COLUMN "status" TEXT;\n')
    expand, _ = shop.reconcile()
    assert (expand.reason, expand.applied) == ("InSync", 1)
    shop.add(DROP_NAME, DROP_NAME_SQL)
    shop.approve(DROP_NAME, ["drop-column"], REASON)

    outcome, decisions = shop.reconcile()
    assert outcome.reason == "InSync", outcome.message
    assert "name" not in shop.columns("users")
    assert [(d["rule"], d["decision"]) for d in decisions] == [("drop-column", "approved")]


def test_a_table_filled_from_the_column_holds_its_drop(shop: Shop) -> None:
    shop.add(
        "20261120090000_archive_user_names",
        'CREATE TABLE "user_names" ("user_id" INTEGER NOT NULL, "value" TEXT);\n'
        'INSERT INTO "user_names" ("user_id", "value") SELECT u."id", u."name" FROM "users" u;\n',
    )
    expand, _ = shop.reconcile()
    assert (expand.reason, expand.applied) == ("InSync", 1)
    shop.add(DROP_NAME, DROP_NAME_SQL)
    shop.approve(DROP_NAME, ["drop-column"], REASON)

    step = shop.plan().steps[-1]
    assert [f.rule for f in step.findings] == ["drop-column", "contract-too-soon"]
    assert "which filled table user_names from it" in step.findings[1].message
    outcome, _ = shop.reconcile()
    assert outcome.reason == "AwaitingGracePeriod"
    assert "name" in shop.columns("users")


def test_a_replacement_of_an_all_null_column_owes_no_wait(shop: Shop) -> None:
    shop.add(
        "20261120090000_add_users_code",
        'ALTER TABLE "users" ADD COLUMN "code" TEXT;\nUPDATE "users" SET "code" = "legacy_code";\n',
    )
    shop.add(
        "20261120100000_drop_users_legacy_code",
        'ALTER TABLE "users" DROP COLUMN "legacy_code";\n',
    )
    outcome, decisions = shop.reconcile()
    assert outcome.reason == "InSync", outcome.message
    assert "legacy_code" not in shop.columns("users")
    assert ("drop-column", "noted") in [(d["rule"], d["decision"]) for d in decisions]


def test_an_empty_live_table_stays_empty_through_a_delete(shop: Shop) -> None:
    shop.add(
        "20261120090000_drop_sessions_token",
        'DELETE FROM "sessions" WHERE "user_id" = 1;\n'
        'ALTER TABLE "sessions" DROP COLUMN "token";\n',
    )
    step = shop.plan().steps[-1]
    assert [(f.rule, f.severity) for f in step.findings] == [
        ("delete-rows", "info"),
        ("drop-column", "info"),
    ]
    outcome, _ = shop.reconcile()
    assert outcome.reason == "InSync", outcome.message
    assert "token" not in shop.columns("sessions")


def test_an_insert_selecting_an_aggregate_of_an_empty_table_writes_a_row(shop: Shop) -> None:
    """The live catalog says which functions are aggregates: ``glue`` over no rows still
    returns one row, so the DELETE after it may delete it."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute("CREATE AGGREGATE glue (text) (sfunc = textcat, stype = text, initcond = '')")
    copy = (
        'INSERT INTO "sessions" ("id", "token", "user_id") '
        "SELECT 's', {call}, 1 FROM \"sessions\";\n"
        'DELETE FROM "sessions" WHERE "user_id" = 1;\n'
    )
    step = judge(shop, copy.format(call='glue("token")'))
    assert [(f.rule, f.severity) for f in step.findings] == [("delete-rows", "data-loss")]
    (shop.folder / CHANGE / "migration.sql").write_text(copy.format(call='upper("token")'))
    step = shop.plan().steps[-1]
    assert [(f.rule, f.severity) for f in step.findings] == [("delete-rows", "info")]
