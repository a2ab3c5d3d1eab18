"""Which migrations of a history lose data, decided by measurement rather than by reading.

The history is replayed migration by migration on a PostgreSQL database of its own. Before
each migration every table without rows gets one synthetic row (values made from each
column's type, foreign keys pointing at rows that exist, the column defaults where a value
cannot be made), and every column left all-NULL in a populated table gets a value, each in
a savepoint so that a constraint it breaks only skips that value. Then each table and column
is measured (rows, non-null values, distinct values, a digest of the values), the migration
runs, and the measurement is repeated. Tables are matched by OID and columns by attribute
number, so a rename is not a loss; a table dropped and created again under the same name is
matched by name. A migration loses data when a table with rows is gone, rows are gone, a
column with values is gone, non-null values became NULL, or distinct values collapsed. A
migration that only changed values (the digest differs, the counts do not) is "rewrites".

A migration that fails on the seeded tables (a NOT NULL column added without a default, a
unique index the synthetic rows break) is recorded as such, its partial work is undone (by
its own transaction, or from a copy of the database taken before it when the migration
commits on its own), every table is emptied, and it runs again on the empty tables so the
replay can go on.

It runs in whichever Python has the migrations' imports: ``corpus.py`` starts it with its
own interpreter for a Prisma history and with the Alembic histories' virtualenv for an
Alembic one, on a database it created (and drops)::

    python bench/corpus_measure.py prisma MIGRATIONS_DIR DSN OUT.json
    python bench/corpus_measure.py alembic SCRIPT_DIR DSN OUT.json

A database copy ``<name>_before`` made for a migration that commits on its own is dropped
here before returning.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

IGNORED = {"_prisma_migrations", "alembic_version"}
"""The migration tools' own bookkeeping tables."""

TABLES = """
SELECT c.oid, c.relname FROM pg_class c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

COLUMNS = """
SELECT a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
       a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> '', t.typtype,
       t.oid, a.attgenerated <> '', et.typtype, et.oid
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A'
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
"""

CHECKS = """
SELECT conkey[1], pg_get_constraintdef(oid) FROM pg_constraint
WHERE conrelid = %s AND contype = 'c' AND cardinality(conkey) = 1
"""
"""Single-column CHECK constraints: a value listed in one (``status IN ('RUNNING', ...)``)
is what the synthetic row takes, so that it passes."""

FOREIGN_KEYS = """
SELECT conkey, confrelid::regclass::text, confkey FROM pg_constraint
WHERE conrelid = %s AND contype = 'f'
"""


def literal(
    type_name: str, typtype: str, type_oid: int, conn: psycopg.Connection[Any], unique: str
) -> str:
    """A SQL expression of type ``type_name`` that most constraints accept. Text gets
    ``unique`` (digits, so that it also casts to JSON and numbers), cut to the column's
    length: equal texts in two tables would break the unique indexes of migrations that
    merge them."""
    if typtype == "e":
        label = conn.execute(
            "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder LIMIT 1",
            (type_oid,),
        ).fetchone()
        return f"{quote(label[0])}::{type_name}" if label else "NULL"
    name = type_name.lower()
    if name.endswith("[]"):
        return f"'{{}}'::{type_name}"
    table = [
        (("smallint", "integer", "bigint", "numeric", "real", "double", "decimal"), "1"),
        (("boolean",), "true"),
        (("timestamp", "date"), "now()"),
        (("time",), "'12:00'"),
        (("interval",), "'1 day'"),
        (("uuid",), "gen_random_uuid()"),
        (("jsonb", "json"), "'{\"seed\": 1}'"),
        (("bytea",), "'\\x00'"),
        (("inet", "cidr"), "'127.0.0.1'"),
        (("tsvector",), "'seed'"),
        (("character", "text", "citext", "name", "bit"), None),
    ]
    for prefixes, value in table:
        if name.startswith(prefixes):
            if value is None:
                length = re.search(r"\((\d+)\)", name)
                text = "1" if name.startswith("bit") else unique
                value = quote(text[-int(length.group(1)) :] if length else text)
            return f"{value}::{type_name}"
    return f"NULL::{type_name}"


def quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def tables(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    return [(oid, name) for oid, name in conn.execute(TABLES) if name not in IGNORED]


def seed(conn: psycopg.Connection[Any], refused: set[tuple[int, int]]) -> None:
    """One row in every empty table (parents first, as many passes as it takes), then a
    value in every column of a populated table that has NULLs. ``conn`` is in autocommit
    mode; each attempt runs in a transaction of its own, so a refusal skips only that
    attempt. ``refused`` remembers the columns whose value a constraint refused, so that they
    are not tried again before every migration."""
    state = measure(conn)
    pending = [(int(oid), t["name"]) for oid, t in state.items() if t["rows"] == 0]
    if pending:
        for _ in range(6):
            left = [t for t in pending if not insert_one(conn, *t)]
            if len(left) == len(pending):
                break
            pending = left
        state = measure(conn)
    for key, table in state.items():
        oid = int(key)
        rows = table["rows"]
        gaps = {int(n) for n, c in table["columns"].items() if rows and c["values"] < rows}
        gaps -= {attnum for o, attnum in refused if o == oid}
        if not gaps:
            continue
        for attnum, column, type_name, _, _, typtype, type_oid, generated, *_ in conn.execute(
            COLUMNS, (oid,)
        ).fetchall():
            if attnum not in gaps or generated:
                continue
            value = (
                fk_value(conn, oid, attnum)
                or checked_values(conn, oid).get(attnum)
                or literal(type_name, typtype, type_oid, conn, f"{oid % 100000}{attnum:02d}")
            )
            query = sql.SQL("UPDATE {} SET {} = {} WHERE {} IS NULL").format(
                sql.Identifier(table["name"]), sql.Identifier(column), sql.SQL(value),
                sql.Identifier(column),
            )  # fmt: skip
            if not attempt(conn, query):
                refused.add((oid, attnum))


def checked_values(conn: psycopg.Connection[Any], oid: int) -> dict[int, str]:
    """For each column of table ``oid`` under a CHECK that lists quoted values, the first."""
    values = {}
    for attnum, definition in conn.execute(CHECKS, (oid,)).fetchall():
        listed = re.search(r"'((?:[^']|'')*)'", definition)
        if listed:
            values[attnum] = quote(listed.group(1).replace("''", "'"))
    return values


def fk_value(conn: psycopg.Connection[Any], oid: int, attnum: int) -> str | None:
    """An existing value of the column that ``attnum`` (in a single-column foreign key)
    references; None when it references nothing or no row exists."""
    for conkey, parent, confkey in conn.execute(FOREIGN_KEYS, (oid,)).fetchall():
        if attnum in conkey and len(conkey) == 1:
            column = conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum = %s",
                (parent, confkey[0]),
            ).fetchone()
            name = column[0] if column else "?"
            query = sql.SQL("SELECT {}::text FROM {} LIMIT 1")
            found = conn.execute(query.format(sql.Identifier(name), sql.SQL(parent))).fetchone()
            return quote(found[0]) if found and found[0] is not None else None
    return None


def insert_one(conn: psycopg.Connection[Any], oid: int, name: str) -> bool:
    """Insert one synthetic row into ``name``; whether it went in."""
    columns = conn.execute(COLUMNS, (oid,)).fetchall()
    fks = conn.execute(FOREIGN_KEYS, (oid,)).fetchall()
    in_fk = {n for conkey, _, _ in fks for n in conkey}
    checked = checked_values(conn, oid)
    names, values = [], []
    for attnum, column, type_name, notnull, hasdef, typtype, type_oid, generated, *_ in columns:
        if generated:
            continue
        if attnum in in_fk:
            value = fk_value(conn, oid, attnum)
            if value is None:
                if notnull:
                    return False
                continue
        elif hasdef and notnull:
            continue  # its default: ids, created_at
        else:
            value = checked.get(attnum) or literal(
                type_name, typtype, type_oid, conn, f"{oid % 100000}{attnum:02d}"
            )
        names.append(sql.Identifier(column))
        values.append(sql.SQL(value))
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(name), sql.SQL(", ").join(names), sql.SQL(", ").join(values)
    )
    if not names:
        query = sql.SQL("INSERT INTO {} DEFAULT VALUES").format(sql.Identifier(name))
    return attempt(conn, query)


def attempt(conn: psycopg.Connection[Any], query: sql.Composed) -> bool:
    try:
        with conn.transaction():
            conn.execute(query)
        return True
    except psycopg.Error:
        return False


def _synthetic(
    oid: int, attnum: int, type_name: str, hasdef: bool, distinct: int, first: str | None
) -> bool:
    """Whether the column holds one value of its own: the synthetic text ``literal`` made
    for this table and column (digits, cut to the column's length, kept long enough to tell
    apart), or a random uuid. Only such a value, found in another column, shows where it
    went; a number, an enum's first label, a CHECK's value or a default is found in many
    places."""
    if distinct != 1 or first is None or hasdef:
        return False
    if type_name == "uuid":
        return True
    made = f"{oid % 100000}{attnum:02d}"
    return type_name.startswith(("character", "text", "citext")) and (
        first == made or (len(first) >= 5 and made.endswith(first))
    )


def measure(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """Per table (by OID): its name, rows, and per column (by attnum): name, non-null
    values, distinct values and a digest of the values."""
    state: dict[str, Any] = {}
    for oid, name in tables(conn):
        columns = conn.execute(COLUMNS, (oid,)).fetchall()
        parts = [sql.SQL("count(*)")]
        for _, column, *_ in columns:
            ident = sql.Identifier(column)
            parts += [
                sql.SQL("count({})").format(ident),
                sql.SQL("count(DISTINCT {}::text)").format(ident),
                sql.SQL("md5(string_agg({}::text, ',' ORDER BY {}::text))").format(ident, ident),
                sql.SQL("min({}::text)").format(ident),
            ]
        query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), sql.Identifier(name))
        row = conn.execute(query).fetchone() or ()
        cols = {}
        for index, (attnum, column, type_name, _, hasdef, *_) in enumerate(columns):
            nonnull, distinct, digest, first = row[1 + 4 * index : 5 + 4 * index]
            seeded = _synthetic(oid, attnum, type_name, hasdef, distinct, first)
            cols[str(attnum)] = {"name": column, "values": nonnull, "distinct": distinct,
                                 "digest": digest, "seeded": seeded}  # fmt: skip
        state[str(oid)] = {"name": name, "rows": row[0], "columns": cols}
    return state


def losses(before: dict[str, Any], after: dict[str, Any]) -> tuple[list[str], list[str]]:
    """What the migration destroyed, and what it only rewrote."""
    lost: list[str] = []
    rewritten: list[str] = []
    by_name = {t["name"]: t for t in after.values()}
    for oid, old in before.items():
        new = after.get(oid) or by_name.get(old["name"])
        if new is None:
            if old["rows"]:
                lost.append(f"table {old['name']} ({old['rows']} rows) is gone")
            continue
        same_oid = oid in after
        if new["rows"] < old["rows"]:
            lost.append(f"{old['name']}: {old['rows'] - new['rows']} of {old['rows']} rows gone")
        new_by_name = {c["name"]: c for c in new["columns"].values()}
        for attnum, col in old["columns"].items():
            now = new["columns"].get(attnum) if same_oid else new_by_name.get(col["name"])
            where = f"{old['name']}.{col['name']}"
            into = moved_into(col, before, after) if not now or not now["values"] else None
            if into is not None:
                rewritten.append(f"{where}: every value moved to {into}")
            elif now is None:
                if col["values"]:
                    lost.append(f"column {where} ({col['values']} values) is gone")
            elif now["values"] < col["values"]:
                lost.append(f"{where}: {col['values'] - now['values']} values became NULL")
            elif now["distinct"] < col["distinct"]:
                lost.append(f"{where}: {col['distinct']} distinct values became {now['distinct']}")
            elif now["digest"] != col["digest"] and new["rows"] == old["rows"]:
                rewritten.append(f"{where}: values changed")
    return lost, rewritten


def moved_into(col: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The column that now holds exactly the values ``col`` held (the same digest of the
    sorted values as text) and did not hold them before: the values were moved, not lost
    (``SET guest_id = user_id, user_id = NULL``). Only a synthetic text or uuid counts
    (``_synthetic``), and only when no other column held it before. A partial
    move, or values changed on the way, is not recognised: it stays a loss."""
    if not col["values"] or col["digest"] is None or not col.get("seeded"):
        return None
    elsewhere = [
        c for t in before.values() for c in t["columns"].values() if c["digest"] == col["digest"]
    ]
    if len(elsewhere) > 1:
        return None  # the same values sit in another column already (an id 1): ambiguous
    for oid, table in after.items():
        for attnum, now in table["columns"].items():
            was = before.get(oid, {}).get("columns", {}).get(attnum)
            if now["digest"] == col["digest"] and (was is None or was["digest"] != col["digest"]):
                return f"{table['name']}.{now['name']}"
    return None


def empty_all(conn: psycopg.Connection[Any]) -> None:
    names = [sql.Identifier(name) for _, name in tables(conn)]
    if names:
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(names)))


Step = tuple[str, Callable[[], None], bool]
"""A migration: its id, how to run it, and whether it runs in one transaction (a script
with its own COMMIT, or run statement by statement, may leave half its work behind)."""


def replay(dsn: str, steps: Iterable[Step]) -> list[dict[str, Any]]:
    """Run each step in order on ``dsn`` with seeding and measurement around it; one record
    per migration. Before a step that is not atomic the database is copied (CREATE DATABASE
    ... TEMPLATE keeps every OID), so that a failure on the seeded rows can be undone."""
    records = []
    refused: set[tuple[int, int]] = set()
    name = conninfo_to_dict(dsn)["dbname"]
    spare = f"{name}_before"
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        for migration, run, atomic in steps:
            seed(conn, refused)
            before = measure(conn)
            if not atomic:
                conn.close()
                copy_database(dsn, name, spare)
                conn = psycopg.connect(dsn, autocommit=True)
            record: dict[str, Any] = {"migration": migration}
            try:
                run()
            except Exception as exc:  # the migration's own failure on the seeded tables
                record["fails_with_rows"] = first_line(exc)
                if not atomic:
                    conn.close()
                    copy_database(dsn, spare, name)
                    conn = psycopg.connect(dsn, autocommit=True)
                empty_all(conn)
                before = measure(conn)
                try:
                    run()
                except Exception as again:
                    record["fails_empty"] = first_line(again)
                    records.append(record)
                    break
            record["lost"], record["rewritten"] = losses(before, measure(conn))
            records.append(record)
    finally:
        conn.close()
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(spare)))  # fmt: skip
    return records


def copy_database(dsn: str, source: str, target: str) -> None:
    """``target`` made anew as a copy of ``source`` (which nobody may be connected to)."""
    with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
            sql.Identifier(target)))  # fmt: skip
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
            sql.Identifier(target), sql.Identifier(source)))  # fmt: skip


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


# -- Prisma -----------------------------------------------------------------------------


def prisma_runner(dsn: str, script: str) -> Callable[[], None]:
    """Run one migration.sql as Prisma does: the whole file in one go, statement by
    statement (outside a transaction) when it holds CREATE INDEX CONCURRENTLY."""

    def run() -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            if "CONCURRENTLY" in script.upper():
                from pglast import split

                for statement in split(script):
                    conn.execute(statement.encode())  # type: ignore[call-overload]
            else:
                conn.execute(script.encode())  # type: ignore[call-overload]

    return run


TRANSACTION_CONTROL = re.compile(r"^\s*(BEGIN|COMMIT|START\s+TRANSACTION|END)\b", re.I | re.M)


def measure_prisma(dsn: str, folder: Path) -> list[dict[str, Any]]:
    steps = []
    for m in sorted(p for p in folder.iterdir() if (p / "migration.sql").is_file()):
        script = (m / "migration.sql").read_text(encoding="utf-8")
        atomic = "CONCURRENTLY" not in script.upper() and not TRANSACTION_CONTROL.search(script)
        steps.append((m.name, prisma_runner(dsn, script), atomic))
    return replay(dsn, steps)


# -- Alembic ----------------------------------------------------------------------------


def measure_alembic(dsn: str, script_dir: Path) -> list[dict[str, Any]]:
    """Each revision by ``alembic upgrade <rev>`` through the package's own env.py, with
    Alembic's memo of the named types it created kept from one revision to the next, as in
    one ``alembic upgrade heads`` (Optuna's ``v2.4.0.a`` creates a table with the
    ``studydirection`` enum ``v0.9.0.a`` created; reconciler does the same)."""
    import copy

    from alembic.config import Config
    from alembic.runtime.environment import EnvironmentContext
    from alembic.script import ScriptDirectory

    logging.basicConfig(level=logging.WARNING)  # env.py calls fileConfig without handlers
    config = Config()
    config.set_main_option("script_location", str(script_dir))
    config.set_main_option("sqlalchemy.url", dsn.replace("postgresql://", "postgresql+psycopg://"))
    script = ScriptDirectory.from_config(config)
    order = [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]

    kept: dict[str, Any] = {}

    def runner(revision: str) -> Callable[[], None]:
        def run() -> None:
            memo = copy.deepcopy(kept)  # a failed revision's types were rolled back

            def upgrade(rev: Any, context: Any) -> Any:
                context.impl.memo = memo
                return script._upgrade_revs(revision, rev)

            with EnvironmentContext(config, script, fn=upgrade, destination_rev=revision):
                script.run_env()
            kept.clear()
            kept.update(memo)

        return run

    return replay(dsn, [(rev, runner(rev), True) for rev in order])


def main(argv: list[str]) -> int:
    if len(argv) != 4 or argv[0] not in ("alembic", "prisma"):
        print(__doc__)
        return 2
    kind, path, dsn, out = argv
    measure_fn = measure_alembic if kind == "alembic" else measure_prisma
    records = measure_fn(dsn, Path(path))
    Path(out).write_text(json.dumps(records, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
