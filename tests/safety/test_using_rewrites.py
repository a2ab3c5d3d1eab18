"""A type change whose ``USING`` rewrites the values is judged as a rewrite, never a widening.

``ALTER COLUMN c TYPE bigint USING (c / 1000)`` goes from ``integer`` to ``bigint``, a
widening, yet it divides every value: the old and new types say nothing about it. A
``USING`` that is the column itself, through casts that keep every value and a fixed-offset
``AT TIME ZONE`` (how Prisma histories write TIMESTAMP to TIMESTAMPTZ), keeps the type-based
verdict; anything else blocks in static lint, and with a database is measured as an UPDATE's
assignment is (``docs/rules/update-overwrites.md``): values made NULL, made equal to another
one, cut short. The premises about PostgreSQL are checked on the real server.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from reconciler.plan.model import Step
from reconciler.safety.analyse import judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.source.base import Migration
from tests.safety.test_rules_live import Shop, found, judge, message, rejudge, shop

__all__ = ["shop"]  # the fixture, for the live tests below

NOW = datetime(2026, 11, 20, tzinfo=UTC)


def lint(*sqls: str) -> list[Finding]:
    """Static lint of one history's migrations, in order: the findings of the last one."""
    batch = []
    for number, sql in enumerate(sqls):
        mid = f"2026112000000{number}_m{number}"
        path = Path(f"/app/prisma/migrations/{mid}/migration.sql")
        made = Migration(mid, f"m{number}", path, hashlib.sha256(sql.encode()).hexdigest())
        batch.append(parse_migration(made, sql, "postgresql"))
    judged = judge_batch(batch, None, now=NOW, grace_seconds=0, live_batch=False)
    return judged[batch[-1].migration.id]


def narrowing(*sqls: str) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in lint(*sqls) if f.rule == "narrowing-type"]


INT_TABLE = "CREATE TABLE t (c int);\n"


# -- static lint ---------------------------------------------------------------------------


def test_a_using_that_divides_the_values_blocks_in_static_lint() -> None:
    sql = "ALTER TABLE t ALTER COLUMN c TYPE bigint USING (c / 1000);\n"
    assert narrowing(INT_TABLE, sql) == [
        (
            "data-loss",
            "changes t.c from int4 to int8 with USING c / 1000, which rewrites the values "
            "(static analysis: live data unknown)",
        )
    ]


@pytest.mark.parametrize(
    "using",
    [
        "round(c::numeric / 10)",  # a function
        "CASE WHEN c > 0 THEN c ELSE 0 END",  # a CASE that is no enum mapping
        "0",  # a constant
        "date_trunc('day', now())::date - c",  # cut short, and arithmetic
    ],
)
def test_any_expression_but_the_column_itself_blocks_in_static_lint(using: str) -> None:
    sql = f"ALTER TABLE t ALTER COLUMN c TYPE bigint USING {using};\n"
    assert [severity for severity, _ in narrowing(INT_TABLE, sql)] == ["data-loss"]


@pytest.mark.parametrize(
    "change",
    [
        "TYPE bigint",
        "TYPE bigint USING c",
        "TYPE bigint USING c::bigint",
        "TYPE bigint USING CAST(c AS bigint)",
        "TYPE bigint USING c::int8::bigint",
        "TYPE text USING c::text",
    ],
)
def test_the_column_itself_cast_keeps_the_type_based_verdict(change: str) -> None:
    assert narrowing(INT_TABLE, f"ALTER TABLE t ALTER COLUMN c {change};\n") == []


@pytest.mark.parametrize(
    ("create", "change"),
    [
        ("CREATE TABLE t (c text);\n", "TYPE text USING c::varchar(3)"),
        ("CREATE TABLE t (c timestamp);\n", "TYPE timestamp USING c::date"),
        ("CREATE TABLE t (c numeric);\n", "TYPE numeric USING c::int"),
    ],
)
def test_a_cast_on_the_way_that_cuts_values_blocks(create: str, change: str) -> None:
    """The old and new types alone say widening (or the same type); the cast in between
    truncates, drops the time of day, rounds."""
    found = narrowing(create, f"ALTER TABLE t ALTER COLUMN c {change};\n")
    assert [severity for severity, _ in found] == ["data-loss"]
    assert "which rewrites the values" in found[0][1]


HOPPSCOTCH_TABLE = 'CREATE TABLE "User" ("uid" TEXT NOT NULL, "createdOn" TIMESTAMP(3) NOT NULL);\n'


@pytest.mark.parametrize("zone", ["UTC", "Etc/UTC", "GMT", "+00:00", "Etc/GMT+5", "-08:00"])
def test_a_fixed_offset_time_zone_to_timestamptz_stays_a_widening(zone: str) -> None:
    """hoppscotch ``20250725154928_timestamp_with_timezone``, and other fixed offsets."""
    sql = (
        'ALTER TABLE "User" ALTER COLUMN "createdOn" SET DATA TYPE TIMESTAMPTZ(3) '
        f"USING \"createdOn\" AT TIME ZONE '{zone}';\n"
    )
    assert narrowing(HOPPSCOTCH_TABLE, sql) == []


def test_an_interval_time_zone_is_a_fixed_offset() -> None:
    sql = (
        'ALTER TABLE "User" ALTER COLUMN "createdOn" SET DATA TYPE TIMESTAMPTZ(3) '
        """USING ("createdOn" AT TIME ZONE INTERVAL '-08:00')::timestamptz(3);\n"""
    )
    assert narrowing(HOPPSCOTCH_TABLE, sql) == []


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Paris", "EST5EDT", "CET"])
def test_a_time_zone_with_daylight_saving_blocks_in_static_lint(zone: str) -> None:
    sql = (
        'ALTER TABLE "User" ALTER COLUMN "createdOn" SET DATA TYPE TIMESTAMPTZ(3) '
        f"USING \"createdOn\" AT TIME ZONE '{zone}';\n"
    )
    assert [severity for severity, _ in narrowing(HOPPSCOTCH_TABLE, sql)] == ["data-loss"]


def test_daylight_saving_makes_two_local_times_one_instant(pg_url: str) -> None:
    """The premise: in the hour skipped in spring, 02:30 is read as 03:30; in autumn two
    instants read as one local time. A fixed offset maps one to one."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        spring = conn.execute(
            "SELECT count(DISTINCT v AT TIME ZONE 'America/New_York') FROM (VALUES "
            "('2018-03-11 02:30'::timestamp), ('2018-03-11 03:30'::timestamp)) AS x(v)"
        ).fetchone()
        autumn = conn.execute(
            "SELECT count(DISTINCT v AT TIME ZONE 'America/New_York') FROM (VALUES "
            "('2018-11-04 05:30+00'::timestamptz), ('2018-11-04 06:30+00'::timestamptz)) AS x(v)"
        ).fetchone()
        fixed = conn.execute(
            "SELECT count(DISTINCT v AT TIME ZONE 'UTC'), count(DISTINCT v AT TIME ZONE "
            "'-08:00') FROM (VALUES ('2018-03-11 02:30'::timestamp), "
            "('2018-03-11 03:30'::timestamp)) AS x(v)"
        ).fetchone()
    assert (spring, autumn, fixed) == ((1,), (1,), (2, 2))


ENUM_TYPE = "CREATE TYPE \"E\" AS ENUM ('A', 'B', 'C');\nCREATE TABLE t (c \"E\");\n"


def enum_recreation(labels: str, using: str) -> str:
    return (
        "BEGIN;\n"
        f'CREATE TYPE "E_new" AS ENUM ({labels});\n'
        f'ALTER TABLE "t" ALTER COLUMN "c" TYPE "E_new" USING ({using});\n'
        'ALTER TYPE "E" RENAME TO "E_old";\n'
        'ALTER TYPE "E_new" RENAME TO "E";\n'
        'DROP TYPE "E_old";\n'
        "COMMIT;\n"
    )


def test_prismas_enum_recreation_keeps_the_enum_rule() -> None:
    removed = lint(ENUM_TYPE, enum_recreation("'A', 'B'", '"c"::text::"E_new"'))
    kept = lint(ENUM_TYPE, enum_recreation("'A', 'B', 'C', 'D'", '"c"::text::"E_new"'))
    assert [(f.rule, f.severity) for f in removed] == [("enum-value-removed", "data-loss")]
    assert [(f.rule, f.severity) for f in kept] == [("enum-value-removed", "info")]


def test_an_enum_recreated_with_a_constant_is_a_rewrite() -> None:
    """Every label kept, so the enum rule saw no value removed; the constant makes every
    row ``A``."""
    found = lint(ENUM_TYPE, enum_recreation("'A', 'B', 'C'", "'A'::\"E_new\""))
    assert [(f.rule, f.severity) for f in found] == [("narrowing-type", "data-loss")]


def test_a_using_on_a_table_created_in_the_same_migration_has_nothing_to_lose() -> None:
    found = narrowing(INT_TABLE + "ALTER TABLE t ALTER COLUMN c TYPE bigint USING (c / 1000);\n")
    assert [severity for severity, _ in found] == ["info"]


def test_a_rewritten_column_is_not_measured_again_later_in_the_run() -> None:
    """After a ``USING`` rewrote the column, figures read before the run are stale."""
    sql = (
        "ALTER TABLE t ALTER COLUMN c TYPE bigint USING (c * 1000);\n"
        "ALTER TABLE t ALTER COLUMN c TYPE int;\n"
    )
    found = lint(INT_TABLE, sql)
    assert [(f.rule, f.line) for f in found if f.rule == "narrowing-type"] == [
        ("narrowing-type", 1),
        ("narrowing-type", 2),
    ]


# -- a live plan ---------------------------------------------------------------------------


def scores(shop: Shop, values: str = '"id" * 100') -> None:
    """``invoices.score``, an integer column made outside the history, set to ``values``."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute('ALTER TABLE "invoices" ADD COLUMN "score" INTEGER')
        conn.execute(f'UPDATE "invoices" SET "score" = {values}')


def alter(change: str) -> str:
    return f'-- AlterTable\nALTER TABLE "invoices" ALTER COLUMN "score" {change};\n'


def test_a_live_plan_counts_the_values_a_using_makes_one(shop: Shop) -> None:
    scores(shop)  # 100, 200, ..., 5000
    step = judge(shop, alter('SET DATA TYPE BIGINT USING least("score", 1000)'))
    assert found(step) == [("narrowing-type", "data-loss", 2), ("table-rewrite", "locking", 2)]
    assert message(step, "narrowing-type") == (
        "changes invoices.score from int4 to int8 with USING LEAST(score, 1000), which rewrites "
        "the values: 40 values change, of which 40 made equal to another value"
    )
    assert step.verdict.decision == "blocked"
    step = rejudge(shop, alter('SET DATA TYPE BIGINT USING ("score" / 1000)'))
    assert message(step, "narrowing-type") == (
        "changes invoices.score from int4 to int8 with USING score / 1000, which rewrites the "
        "values: 50 values change, of which 50 cut short by a division or remainder"
    )


@pytest.mark.parametrize(
    "change",
    ["SET DATA TYPE BIGINT", 'SET DATA TYPE BIGINT USING "score"::bigint'],
)
def test_a_live_widening_with_or_without_a_cast_runs(shop: Shop, change: str) -> None:
    scores(shop)
    step = judge(shop, alter(change))
    assert found(step) == [("table-rewrite", "locking", 2)]
    assert step.verdict.decision == "run"


def severities(step: Step) -> list[tuple[str, str]]:
    return [(f.rule, f.severity) for f in step.findings]


def test_a_live_using_that_changes_no_value_runs(shop: Shop) -> None:
    scores(shop)
    step = judge(shop, alter('SET DATA TYPE BIGINT USING ("score" + 0)'))
    assert ("narrowing-type", "info") in severities(step)
    assert message(step, "narrowing-type") == (
        "changes invoices.score from int4 to int8 with USING score + 0: no value changes: "
        "nothing to lose"
    )
    assert step.verdict.decision == "run"


def test_a_live_using_that_rewrites_one_to_one_runs(shop: Shop) -> None:
    scores(shop)
    step = judge(shop, alter('SET DATA TYPE BIGINT USING ("score" * 2)'))
    assert ("narrowing-type", "info") in severities(step)
    assert message(step, "narrowing-type").endswith(
        "which rewrites the values in place: 50 values change, none made NULL or equal to "
        "another value: the backup keeps the old values"
    )
    assert step.verdict.decision == "run"


def test_a_live_using_whose_result_the_new_type_rounds_blocks(shop: Shop) -> None:
    """Distinct values stay distinct, but the conversion to ``integer`` rounds the halves."""
    scores(shop, '"id"')
    step = judge(shop, alter('SET DATA TYPE INTEGER USING ("score" * 1.5)'))
    assert message(step, "narrowing-type") == (
        "changes invoices.score from int4 to int4 with USING score * 1.5, which rewrites the "
        "values: 50 values change, of which 25 cut short by the conversion to int4"
    )
    assert step.verdict.decision == "blocked"


def test_a_live_using_on_an_all_null_column_has_nothing_to_lose(shop: Shop) -> None:
    scores(shop, "NULL")
    step = judge(shop, alter('SET DATA TYPE BIGINT USING ("score" / 1000)'))
    assert ("narrowing-type", "info") in severities(step)
    assert step.verdict.decision == "run"


CREATED_AT = '-- AlterTable\nALTER TABLE "users" ALTER COLUMN "created_at" SET DATA TYPE '


def test_a_live_utc_time_zone_to_timestamptz_runs(shop: Shop) -> None:
    step = judge(shop, CREATED_AT + """TIMESTAMPTZ(3) USING "created_at" AT TIME ZONE 'UTC';\n""")
    assert found(step) == [("table-rewrite", "locking", 2)]
    assert step.verdict.decision == "run"


def spread(shop: Shop, gap: bool) -> None:
    """Distinct creation times; with ``gap``, user 1 at 02:30 on the day New York skips
    that hour and user 2 at 03:30: one instant in that zone."""
    with psycopg.connect(shop.url, autocommit=True) as conn:
        conn.execute(
            """UPDATE "users" SET "created_at" = '2026-01-01'::timestamp """
            """+ "id" * interval '1 minute'"""
        )
        if gap:
            conn.execute("""UPDATE "users" SET "created_at" = '2018-03-11 02:30' WHERE id = 1""")
            conn.execute("""UPDATE "users" SET "created_at" = '2018-03-11 03:30' WHERE id = 2""")


def test_a_live_cast_on_the_way_counts_every_value_it_changes_as_cut(shop: Shop) -> None:
    """``timestamp(3)`` to ``timestamp(3)``, the same type, through ``date``."""
    spread(shop, gap=False)
    step = judge(shop, CREATED_AT + 'TIMESTAMP(3) USING "created_at"::date;\n')
    assert message(step, "narrowing-type") == (
        "changes users.created_at from timestamp(3) to timestamp(3) with USING "
        "CAST(created_at AS date), which rewrites the values: 300 values change, of which "
        "300 cut short by the casts of USING"
    )
    assert step.verdict.decision == "blocked"


def test_a_live_using_calling_a_lossy_function_counts_every_value_it_changes(
    shop: Shop,
) -> None:
    spread(shop, gap=False)  # one minute apart: 5 of the 300 fall on the hour
    sql = CREATED_AT + """TIMESTAMP(3) USING date_trunc('hour', "created_at");\n"""
    step = judge(shop, sql)
    assert message(step, "narrowing-type").endswith(
        "which rewrites the values: 295 values change, of which 295 cut short by date_trunc"
    )
    assert step.verdict.decision == "blocked"


NEW_YORK = CREATED_AT + """TIMESTAMPTZ(3) USING "created_at" AT TIME ZONE 'America/New_York';\n"""


def test_a_live_daylight_saving_zone_blocks_on_times_it_makes_one(shop: Shop) -> None:
    spread(shop, gap=True)
    step = judge(shop, NEW_YORK)
    assert message(step, "narrowing-type").endswith(
        "which rewrites the values: 300 values change, of which 2 made equal to another value"
    )
    assert step.verdict.decision == "blocked"


def test_a_live_daylight_saving_zone_without_such_times_runs(shop: Shop) -> None:
    spread(shop, gap=False)
    step = judge(shop, NEW_YORK)
    assert ("narrowing-type", "info") in severities(step)
    assert step.verdict.decision == "run"


def enum_recreated(using: str) -> str:
    return (
        "-- AlterEnum\n"
        "BEGIN;\n"
        "CREATE TYPE \"Role_new\" AS ENUM ('USER', 'ADMIN', 'GUEST', 'BANNED');\n"
        'ALTER TABLE "users" ALTER COLUMN "role" DROP DEFAULT;\n'
        f'ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING ({using});\n'
        'ALTER TYPE "Role" RENAME TO "Role_old";\n'
        'ALTER TYPE "Role_new" RENAME TO "Role";\n'
        'DROP TYPE "Role_old";\n'
        'ALTER TABLE "users" ALTER COLUMN "role" SET DEFAULT \'USER\';\n'
        "COMMIT;\n"
    )


def test_a_live_enum_recreation_keeping_every_label_runs(shop: Shop) -> None:
    step = judge(shop, enum_recreated('"role"::text::"Role_new"'))
    assert found(step) == [("enum-value-removed", "info", 5)]
    assert step.verdict.decision == "run"


def test_a_live_enum_recreation_with_a_constant_counts_the_values_made_one(shop: Shop) -> None:
    step = judge(shop, enum_recreated("'USER'"))
    assert found(step) == [("narrowing-type", "data-loss", 5)]
    assert message(step, "narrowing-type") == (
        "changes users.role from Role to Role_new with USING 'USER', which rewrites the "
        "values: 8 values change, of which 8 made equal to another value"
    )
    assert step.verdict.decision == "blocked"


def test_a_live_using_naming_a_type_the_run_creates_blocks_unmeasured(shop: Shop) -> None:
    """``Role_new`` does not exist before the run: the SELECT cannot read it."""
    step = judge(shop, enum_recreated("'USER'::\"Role_new\""))
    assert found(step) == [("narrowing-type", "data-loss", 5)]
    assert message(step, "narrowing-type") == (
        "changes users.role from Role to Role_new with USING CAST('USER' AS \"Role_new\"), "
        "which rewrites the values: up to 300 non-null values affected"
    )
    assert step.verdict.decision == "blocked"


RENAME_SCORE = 'ALTER TABLE "invoices" RENAME COLUMN "score" TO "points";\n'


def test_a_live_using_on_a_column_renamed_earlier_in_the_run_is_not_nothing(shop: Shop) -> None:
    """The catalog has no ``points`` yet: that is not a column without values."""
    scores(shop)
    sql = RENAME_SCORE + (
        'ALTER TABLE "invoices" ALTER COLUMN "points" TYPE BIGINT USING ("points" / 1000);\n'
    )
    step = judge(shop, sql)
    assert ("narrowing-type", "data-loss") in severities(step)
    assert step.verdict.decision == "blocked"


def test_a_live_drop_of_a_column_renamed_earlier_in_the_run_blocks(shop: Shop) -> None:
    scores(shop)
    step = judge(shop, RENAME_SCORE + 'ALTER TABLE "invoices" DROP COLUMN "points";\n')
    assert ("drop-column", "data-loss") in severities(step)
    assert step.verdict.decision == "blocked"
