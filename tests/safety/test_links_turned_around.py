"""The premise of a link turned around, on PostgreSQL: under a foreign key and a unique key
on the link, ``UPDATE a SET x = b.id FROM b WHERE a.id = b.a_id`` keeps every link, so a
later ``DROP COLUMN b.a_id`` loses nothing; without them, a link can be lost (the static
verdicts are in ``test_copies_static``)."""

from __future__ import annotations

import psycopg
import pytest

from tests.safety.test_copies_static import LINKED, TURN, TURN_BY_SUBQUERY

LINKS = 'SELECT "id", "documentId" FROM "DocumentData" WHERE "documentId" IS NOT NULL'
KEPT = 'SELECT "documentDataId", "id" FROM "Document" WHERE "documentDataId" IS NOT NULL'


def turn(
    conn: psycopg.Connection[tuple[object, ...]], script: str = TURN
) -> tuple[set[object], set[object]]:
    before = set(conn.execute(LINKS).fetchall())
    conn.execute(
        script.replace('ALTER TABLE "Document" ALTER COLUMN "documentDataId" SET NOT NULL;\n', "")
    )
    return before, set(conn.execute(KEPT).fetchall())


@pytest.mark.parametrize("script", [TURN, TURN_BY_SUBQUERY], ids=["join", "subquery"])
def test_every_link_is_kept_under_the_keys(pg_url: str, script: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(LINKED)
        conn.execute('INSERT INTO "Document" ("id") SELECT generate_series(1, 5)')
        conn.execute(
            "INSERT INTO \"DocumentData\" VALUES ('a', 1), ('b', 2), ('c', NULL), ('d', 5)"
        )
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO \"DocumentData\" VALUES ('e', 1)")  # what the key rules out
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO \"DocumentData\" VALUES ('f', 9)")
        before, after = turn(conn, script)
    assert before == after == {("a", 1), ("b", 2), ("d", 5)}


def test_without_the_keys_links_are_lost(pg_url: str) -> None:
    loose = LINKED.replace("UNIQUE INDEX", "INDEX").split(
        'ALTER TABLE "DocumentData" ADD CONSTRAINT "DocumentData_documentId_fkey"'
    )[0]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(loose)
        conn.execute('INSERT INTO "Document" ("id") VALUES (1), (2)')
        conn.execute("INSERT INTO \"DocumentData\" VALUES ('a', 1), ('b', 1), ('c', 9)")
        conn.execute(
            'ALTER TABLE "DocumentData" ADD CONSTRAINT "DocumentData_documentId_fkey" CHECK (true)'
        )
        before, after = turn(conn)
    assert len(after) < len(before)  # 'b' or 'a' lost its document, 'c' pointed nowhere
