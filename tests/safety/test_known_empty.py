"""Known-empty tables, all-NULL columns, real replacements and rename pairs, on text alone.

What the batch proves (a table created in this run, kept empty through DELETE, TRUNCATE,
UPDATE and RENAME TO) or what the facts measured (a live table with 0 rows, a column with
no non-null value) makes a finding ``info``; anything that may write rows ends it. The
grace period of golden rule 2 is owed only to a replacement filled from the dropped column.
"""

from __future__ import annotations

import psycopg
import pytest

from reconciler.observe.facts import Facts
from reconciler.safety.ops import parse
from tests.safety.test_rules_static import (
    ADDED_FULL_NAME,
    Triple,
    judged,
    sql_text,
    table,
    triples,
    users,
)

CREATED = "CREATE TABLE t (id INT, a TEXT, flag BOOLEAN);\n"


@pytest.mark.parametrize(
    ("before", "sql", "facts", "expected"),
    [
        pytest.param(
            (CREATED, "ALTER TABLE t RENAME TO renamed;\n"),
            "DROP TABLE renamed;",
            None,
            [("drop-table", "info", 1)],
            id="created-then-renamed",
        ),
        pytest.param(
            (CREATED,),
            "DELETE FROM t;\nTRUNCATE t;\nUPDATE t SET a = 'x';\n"
            "ALTER TABLE t DROP COLUMN a;\nDROP TABLE t;\n",
            None,
            [
                ("delete-rows", "info", 1),
                ("truncate", "info", 2),
                ("update-overwrites", "info", 3),
                ("drop-column", "info", 4),
                ("drop-table", "info", 5),
            ],
            id="delete-truncate-update-keep-it-empty",
        ),
        pytest.param(
            (),
            "DELETE FROM users;\nALTER TABLE users DROP COLUMN name;\n",
            users(rows=0),
            [("delete-rows", "info", 1), ("drop-column", "info", 2)],
            id="live-table-measured-empty",
        ),
        pytest.param(
            (),
            "DELETE FROM users;\nALTER TABLE users ADD COLUMN n INT NOT NULL;\n"
            "ALTER TABLE users RENAME TO people;\nALTER TABLE people DROP COLUMN name;\n",
            None,
            [
                ("delete-rows", "data-loss", 1),
                ("required-column-without-default", "info", 2),
                ("rename-table", "compat", 3),
                ("drop-column", "info", 4),
            ],
            id="a-delete-of-every-row-empties-the-table",
        ),
        pytest.param(
            (),
            "TRUNCATE users, other;\nALTER TABLE users ADD COLUMN n INT NOT NULL;\n"
            "ALTER TABLE other DROP COLUMN x;\n",
            None,
            [
                ("truncate", "data-loss", 1),
                ("truncate", "data-loss", 1),
                ("required-column-without-default", "info", 2),
                ("drop-column", "info", 3),
            ],
            id="truncate-empties-every-table-it-names",
        ),
        pytest.param(
            (),
            "DELETE FROM users WHERE id > 5;\nALTER TABLE users ADD COLUMN n INT NOT NULL;\n",
            None,
            [("delete-rows", "data-loss", 1), ("required-column-without-default", "will-fail", 2)],
            id="a-delete-with-a-where-may-leave-rows",
        ),
        pytest.param(
            (),
            "DELETE FROM users USING other;\nALTER TABLE users ADD COLUMN n INT NOT NULL;\n",
            None,
            [("delete-rows", "data-loss", 1), ("required-column-without-default", "will-fail", 2)],
            id="a-delete-using-an-empty-table-deletes-nothing",
        ),
        pytest.param(
            (),
            "DELETE FROM ONLY users;\nTRUNCATE ONLY other;\n"
            "ALTER TABLE users ADD COLUMN n INT NOT NULL;\nALTER TABLE other DROP COLUMN x;\n",
            None,
            [
                ("delete-rows", "data-loss", 1),
                ("truncate", "data-loss", 2),
                ("required-column-without-default", "will-fail", 3),
                ("drop-column", "data-loss", 4),
            ],
            id="only-leaves-the-rows-of-inheriting-tables",
        ),
        pytest.param(
            (),
            "DELETE FROM users;\nINSERT INTO users (id) VALUES (1);\n"
            "ALTER TABLE users ADD COLUMN n INT NOT NULL;\n",
            None,
            [("delete-rows", "data-loss", 1), ("required-column-without-default", "will-fail", 3)],
            id="rows-written-after-the-delete",
        ),
        pytest.param(
            (CREATED, "ALTER TABLE t ADD COLUMN b TEXT;\nUPDATE t SET b = a;\n"),
            "ALTER TABLE t DROP COLUMN a;",
            None,
            [("drop-column", "info", 1)],
            id="contract-on-an-empty-table-waits-for-nothing",
        ),
        pytest.param(
            (ADDED_FULL_NAME + "UPDATE users SET full_name = name;\n",),
            "ALTER TABLE users DROP COLUMN legacy;",
            Facts({"users": table(300, {"id": "int4", "name": "text", "legacy": "text"}, {})}),
            [("drop-column", "data-loss", 1)],
            id="replacement-of-another-column-does-not-hold-this-drop",
        ),
    ],
)
def test_what_is_known_empty_loses_nothing(
    before: tuple[str, ...], sql: str, facts: Facts | None, expected: list[Triple]
) -> None:
    assert triples(judged(sql, facts=facts, before=before)) == expected


@pytest.mark.parametrize(
    ("sql", "facts", "expected"),
    [
        pytest.param(
            CREATED
            + "INSERT INTO t (id) VALUES (1);\nDELETE FROM t WHERE id > 1;\nDROP TABLE t;\n",
            None,
            [("delete-rows", "data-loss", 3), ("drop-table", "data-loss", 4)],
            id="insert",
        ),
        pytest.param(
            CREATED + "COPY t (id) FROM '/tmp/rows.csv';\nDROP TABLE t;\n",
            None,
            [("drop-table", "data-loss", 3)],
            id="copy",
        ),
        pytest.param(
            CREATED + "MERGE INTO t USING users u ON t.id = u.id "
            "WHEN NOT MATCHED THEN INSERT (id) VALUES (u.id);\nDROP TABLE t;\n",
            None,
            [("drop-table", "data-loss", 3)],
            id="merge",
        ),
        pytest.param(
            CREATED + "DO $$ BEGIN INSERT INTO t (id) VALUES (1); END $$;\nDROP TABLE t;\n",
            None,
            [("opaque-statement", "info", 2), ("drop-table", "data-loss", 3)],
            id="do-block-inserting",
        ),
        pytest.param(
            CREATED + "DO $$ BEGIN EXECUTE 'INSERT INTO ' || 't VALUES (1)'; END $$;\n"
            "DROP TABLE t;\n",
            None,
            [("opaque-statement", "info", 2), ("drop-table", "data-loss", 3)],
            id="do-block-with-dynamic-sql",
        ),
        pytest.param(
            'CREATE TABLE IF NOT EXISTS "users" (id INT);\nDROP TABLE "users";\n',
            users(rows=300),
            [("drop-table", "data-loss", 2)],
            id="create-if-not-exists-on-a-live-table",
        ),
    ],
)
def test_what_may_write_rows_ends_known_emptiness(
    sql: str, facts: Facts | None, expected: list[Triple]
) -> None:
    assert triples(judged(sql, facts=facts)) == expected


def test_a_do_block_writing_elsewhere_keeps_the_table_empty() -> None:
    sql = CREATED + 'DO $$ BEGIN INSERT INTO "public"."Other" (id) VALUES (1); END $$;\n'
    assert triples(judged(sql + "DROP TABLE t;\n")) == [
        ("opaque-statement", "info", 2),
        ("drop-table", "info", 3),
    ]


# -- rename-as-drop-add pairs only compatible types ------------------------------------------


ORDERS = Facts(
    {"orders": table(120, {"id": "int4", "paid": "bool", "note": "text", "qty": "int4"}, {})}
)


@pytest.mark.parametrize(
    ("sql", "facts", "rules"),
    [
        pytest.param(
            "ALTER TABLE orders DROP COLUMN paid, ADD COLUMN paid_note TEXT;",
            ORDERS,
            ["drop-column", "expand-contract-same-migration"],
            id="boolean-dropped-text-added-live",
        ),
        pytest.param(
            "ALTER TABLE t DROP COLUMN flag, ADD COLUMN label TEXT;",
            None,
            ["drop-column", "expand-contract-same-migration"],
            id="boolean-dropped-text-added-declared-in-the-batch",
        ),
        pytest.param(
            "ALTER TABLE orders DROP COLUMN qty, ADD COLUMN shipped_on DATE;",
            ORDERS,
            ["drop-column", "expand-contract-same-migration"],
            id="integer-dropped-date-added",
        ),
        pytest.param(
            "ALTER TABLE orders DROP COLUMN qty, ADD COLUMN price NUMERIC(10, 2);",
            ORDERS,
            ["drop-column", "expand-contract-same-migration"],
            id="integer-dropped-numeric-added",
        ),
        pytest.param(
            "ALTER TABLE orders DROP COLUMN qty, ADD COLUMN quantity BIGINT;",
            ORDERS,
            ["drop-column", "rename-as-drop-add"],
            id="integer-dropped-bigint-added",
        ),
        pytest.param(
            "ALTER TABLE orders DROP COLUMN note, ADD COLUMN remark VARCHAR(200);",
            ORDERS,
            ["drop-column", "rename-as-drop-add"],
            id="text-dropped-varchar-added",
        ),
    ],
)
def test_rename_as_drop_add_pairs_only_compatible_types(
    sql: str, facts: Facts | None, rules: list[str]
) -> None:
    before = () if facts else (CREATED + "INSERT INTO t (id) VALUES (1);\n",)
    assert [f.rule for f in judged(sql, facts=facts, before=before)] == rules


# -- INSERT ... SELECT: what a table is filled from ------------------------------------------


def test_insert_select_reads_its_columns_through_aliases() -> None:
    (op,) = parse(
        sql_text(
            """
            INSERT INTO archive (id, body)
            SELECT o.id, n.text FROM orders AS o JOIN notes n ON n.order_id = o.id;
            """
        )
    ).ops
    assert op.kind == "insert"
    assert set(op.reads) == {
        ("orders", "id"),
        ("notes", "text"),
        ("notes", "order_id"),
    }


def test_copy_to_writes_nothing() -> None:
    assert parse("COPY t TO STDOUT;").ops == ()


# -- INSERT ... SELECT from empty tables inserts nothing -------------------------------------

COPIED = CREATED + "CREATE TABLE u (id INT, a TEXT);\n"


@pytest.mark.parametrize(
    ("select", "facts", "severity"),
    [
        pytest.param("SELECT id, a FROM t", None, "info", id="from-an-empty-table"),
        pytest.param(
            "SELECT t.id, users.name FROM users JOIN t ON t.id = users.id",
            users(rows=300),
            "info",
            id="inner-join-with-an-empty-table",
        ),
        pytest.param(
            "SELECT t.id, e.value FROM t CROSS JOIN LATERAL jsonb_array_elements('[1]') e",
            None,
            "info",
            id="lateral-function-over-an-empty-table",
        ),
        pytest.param(
            "SELECT users.id, t.a FROM users LEFT JOIN t ON t.id = users.id",
            users(rows=300),
            "data-loss",
            id="left-join-keeps-the-rows-of-a-full-table",
        ),
        pytest.param("SELECT count(*), 'x' FROM t", None, "data-loss", id="aggregate"),
        pytest.param(
            "SELECT id, 'x' FROM t UNION ALL SELECT 1, 'y'", None, "data-loss", id="union"
        ),
        pytest.param("VALUES (1, 'x')", None, "data-loss", id="values"),
        pytest.param(
            "SELECT s.id, s.a FROM (SELECT 1 AS id, 'x' AS a) s", None, "data-loss", id="subquery"
        ),
    ],
)
def test_insert_selecting_from_empty_tables_writes_nothing(
    select: str, facts: Facts | None, severity: str
) -> None:
    sql = COPIED + f"INSERT INTO u (id, a) {select};\nDELETE FROM u;\n"
    assert triples(judged(sql, facts=facts))[-1] == ("delete-rows", severity, 4)


def test_a_self_copy_of_an_empty_live_table_keeps_it_empty() -> None:
    """Umami's migration 14: rows of report copied into report, then some deleted."""
    sql = (
        "INSERT INTO users (id, name) SELECT id, name FROM users WHERE plan = 'goal';\n"
        "DELETE FROM users WHERE plan = 'goal';\n"
    )
    assert triples(judged(sql, facts=users(rows=0))) == [("delete-rows", "info", 2)]
    assert triples(judged(sql, facts=users(rows=3))) == [("delete-rows", "data-loss", 2)]


def test_an_aggregate_created_in_the_batch_returns_a_row_over_no_rows() -> None:
    sql = (
        "CREATE AGGREGATE glue (text) (sfunc = textcat, stype = text, initcond = '');\n"
        "INSERT INTO users (id, name) SELECT 1, glue(name) FROM users;\n"
        "DELETE FROM users;\n"
    )
    assert triples(judged(sql, facts=users(rows=0))) == [("delete-rows", "data-loss", 3)]
    scalar = sql.replace("glue(name)", "upper(name)")
    assert triples(judged(scalar, facts=users(rows=0))) == [("delete-rows", "info", 3)]


def test_without_a_database_any_function_may_be_an_aggregate() -> None:
    sql = COPIED + "INSERT INTO u (id, a) SELECT id, upper(a) FROM t;\nDELETE FROM u;\n"
    assert triples(judged(sql)) == [("delete-rows", "data-loss", 4)]


@pytest.mark.parametrize(
    ("delete", "fails"),
    [('DELETE FROM "profiles"', False), ('DELETE FROM "profiles" WHERE "id" > 1', True)],
    ids=["every-row", "with-a-where"],
)
def test_a_required_column_needs_no_default_after_every_row_is_deleted(
    pg_url: str, delete: str, fails: bool
) -> None:
    """The premise, on PostgreSQL (documenso's ``20240606060033_add_public_profiles``
    empties ``UserProfile`` before adding ``userId INTEGER NOT NULL``)."""
    script = (
        'CREATE TABLE "profiles" ("id" INT PRIMARY KEY, "bio" TEXT);\n'
        "INSERT INTO \"profiles\" SELECT g, 'bio' FROM generate_series(1, 3) g;\n"
        f"{delete};\n"
        'ALTER TABLE "profiles" ADD COLUMN "userId" INTEGER NOT NULL;\n'
    )
    with psycopg.connect(pg_url, autocommit=True) as conn:
        if fails:
            with pytest.raises(psycopg.errors.NotNullViolation):
                conn.execute(script)
        else:
            conn.execute(script)
            assert conn.execute('SELECT count(*) FROM "profiles"').fetchone() == (0,)
    judged_steps = triples(judged(script.split("\n", 2)[2]))
    assert judged_steps[1][:2] == (
        "required-column-without-default",
        "will-fail" if fails else "info",
    )
