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

A column gone (or emptied) is not lost when what it held is still there: its synthetic
value now sits in another column that did not hold it before, as a value or as a string
inside a JSON value, as many times as the column held it (``moved_into``), or it was a
link between rows and another column of the same two tables now links every pair of rows
it linked, in either direction (a relation turned around: ``Prober``). Links are pairs of
row identities (table OID, primary key), read from the rows, whatever the SQL says: a
foreign key, or any column whose values are another table's key values. On one row per
table any such column matches, so the replay only names the candidates, and a probe
decides on a database of its own: the history replayed up to the migration, seeded, plus
one parent and one child row linked crosswise, then the migration. Values changed on the
way, a partial set of pairs, or pairs found only through a third table stay a loss. A
table gone is not lost when each of its columns that held values was moved so, but for its
primary key when no other column held one of its values before (nothing referred to the
rows). Values are compared as text, in tables of at most ``ROW_LIMIT`` rows; a number, a
boolean, an enum label, a JSON value, a foreign key or a default proves nothing on one row.

Such a table gone is decided by a probe of its own (``Prober.copied``), on a database with
the history replayed up to the migration, seeded, its sequences spread: ``COPY_ROWS`` more
rows in the gone table, every column set explicitly (a default proves nothing, since the
target's own default would match it), each value unlike the seeded row's where the type
allows (the other boolean, another enum label, another number, text, JSON value, time) and
each column's values, row by row, unlike every other column's (a boolean or a two-label
enum spells the bits of its rank among the columns of its type), every foreign key pointed
at a parent row no other row of the table points at (made when there is none). The table
was moved when, after the migration, one other table gained a row for each of these rows
that holds its values whole, as text: one column of that table per column of the gone
table, names aside, each row in a row of its own (``found_whole``). What that proves: a
column left out leaves the target column at its default or NULL, the same on every row,
while the source column's values differ from row to row; a column transformed (``NOT
flag``, ``n + 1``) no longer holds the values of the row it came from, and no other source
column holds them, since no two columns hold the same values row by row; a row skipped or
copied twice leaves a probe row without a target row of its own. The columns checked are
all but a primary key none of whose values another column held (nothing referred to the
rows: a key others referred to must be found too). A column the probe could not vary (a
one-label enum, a type it cannot make, a CHECK listing one value), two columns it could not
tell apart, a table with no primary key (its rows cannot be told apart) or more than
``ROW_LIMIT`` rows, a probe row refused by a constraint, a target without a primary key, a
migration failing on the probe rows, or a row not found whole: each stays a loss. What it
cannot see: a transformation that is the identity on the probe's values (``lower()`` of
digits, a ``CASE`` whose other branches the probe's values never reach) passes for a copy.

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
    python bench/corpus_measure.py --self-test [SERVER_URL]   # a small history, checked

The databases it makes beside ``<name>`` (``<name>_before``, a copy for a migration that
commits on its own; ``<name>_pristine``, the database before the first migration;
``<name>_probe``, the probes' of links and of tables copied) are dropped here before
returning.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit, urlunsplit

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
    type_name: str,
    typtype: str,
    type_oid: int,
    conn: psycopg.Connection[Any],
    unique: str,
    variant: int = 0,
) -> str:
    """A SQL expression of type ``type_name`` that most constraints accept. Text gets
    ``unique`` (digits, so that it also casts to JSON and numbers), cut to the column's
    length: equal texts in two tables would break the unique indexes of migrations that
    merge them. ``variant`` > 0 makes the number and text of a further row of the same
    table (``Prober``) differ from the first's."""
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
        (
            ("smallint", "integer", "bigint", "numeric", "real", "double", "decimal"),
            str(1 + variant),
        ),
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
                text = "1" if name.startswith("bit") else unique + (str(variant) if variant else "")
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


def unused_fk_value(
    conn: psycopg.Connection[Any], oid: int, attnum: int, variant: int, depth: int = 0
) -> str | None:
    """For a ``variant`` row: a key of the parent that column ``attnum`` (a single-column
    foreign key) does not point at yet, so that a one-to-one key takes it; when every key
    is taken, of a parent row (``variant`` + 1) inserted for it: up from ``depth`` to
    level 1, so two levels from 0 (a link probe's row), four from -2 (a copy probe's)."""
    for conkey, parent, confkey in conn.execute(FOREIGN_KEYS, (oid,)).fetchall():
        if conkey != [attnum]:
            continue
        names = conn.execute(
            "SELECT (SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attnum = %s), (SELECT attname FROM pg_attribute WHERE attrelid = %s"
            " AND attnum = %s), %s::regclass::oid, %s::regclass::text",
            (parent, confkey[0], oid, attnum, parent, oid),
        ).fetchone()
        assert names is not None
        key, column, parent_oid, child = names
        query = sql.SQL(
            "SELECT {key}::text FROM {parent} WHERE {key} IS NOT NULL AND {key} NOT IN "
            "(SELECT {column} FROM {child} WHERE {column} IS NOT NULL) LIMIT 1"
        ).format(
            key=sql.Identifier(key), parent=sql.SQL(parent), column=sql.Identifier(column),
            child=sql.SQL(child),
        )  # fmt: skip
        for _ in range(2):
            found = conn.execute(query).fetchone()
            if found:
                return quote(found[0])
            name = conn.execute("SELECT relname FROM pg_class WHERE oid = %s", (parent_oid,))
            relname = name.fetchone()
            if depth > 1 or not relname:
                return None
            if not insert_one(conn, parent_oid, relname[0], variant + 1, depth=depth + 1):
                return None
    return None


def insert_one(
    conn: psycopg.Connection[Any],
    oid: int,
    name: str,
    variant: int = 0,
    fixed: dict[int, str] | None = None,
    depth: int = 0,
) -> bool:
    """Insert one synthetic row into ``name``; whether it went in. A ``variant`` row (a
    further row, ``Prober``) gets numbers and texts of its own, leaves its nullable foreign
    keys NULL and points its other ones at parents no row of it points at yet (a
    one-to-one key would refuse the first row's parent), and takes the SQL expressions of
    ``fixed`` (by attnum) as they are."""
    columns = conn.execute(COLUMNS, (oid,)).fetchall()
    fks = conn.execute(FOREIGN_KEYS, (oid,)).fetchall()
    in_fk = {n for conkey, _, _ in fks for n in conkey}
    checked = checked_values(conn, oid)
    fixed = fixed or {}
    names, values = [], []
    for attnum, column, type_name, notnull, hasdef, typtype, type_oid, generated, *_ in columns:
        if generated:
            continue
        if attnum in fixed:
            value = fixed[attnum]
        elif attnum in in_fk and variant and not notnull:
            continue
        elif attnum in in_fk and variant:
            found = unused_fk_value(conn, oid, attnum, variant, depth)
            if found is None:
                return False
            value = found
        elif attnum in in_fk:
            existing = fk_value(conn, oid, attnum)
            if existing is None:
                if notnull:
                    return False
                continue
            value = existing
        elif hasdef and notnull:
            continue  # its default: ids, created_at
        else:
            value = checked.get(attnum) or literal(
                type_name, typtype, type_oid, conn, f"{oid % 100000}{attnum:02d}", variant
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
    """Per table (by OID): its name, rows, and per column (by attnum): name, type, whether
    it is part of the primary key, non-null values, distinct values, a digest of the
    values, and the values themselves as text (``texts``, None in a table of more than
    ``ROW_LIMIT`` rows). Only the verdicts are written out, never this state."""
    state: dict[str, Any] = {}
    for oid, name in tables(conn):
        columns = conn.execute(COLUMNS, (oid,)).fetchall()
        primary = {int(a) for (a,) in conn.execute(PRIMARY_KEY, (oid,)).fetchall()}
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
        small = next(iter(row), 0) <= ROW_LIMIT
        texts = column_texts(conn, name, [c[1] for c in columns]) if small else None
        cols = {}
        for index, (attnum, column, type_name, _, hasdef, *_) in enumerate(columns):
            nonnull, distinct, digest, first = row[1 + 4 * index : 5 + 4 * index]
            seeded = _synthetic(oid, attnum, type_name, hasdef, distinct, first)
            cols[str(attnum)] = {"name": column, "type": type_name, "pk": attnum in primary,
                                 "values": nonnull, "distinct": distinct, "digest": digest,
                                 "seeded": seeded,
                                 "texts": None if texts is None else texts[index]}  # fmt: skip
        state[str(oid)] = {"name": name, "rows": row[0], "columns": cols}
    return state


PRIMARY_KEY = "SELECT unnest(conkey) FROM pg_constraint WHERE conrelid = %s AND contype = 'p'"


def column_texts(conn: psycopg.Connection[Any], table: str, columns: list[str]) -> list[list[str]]:
    """Each column's non-null values as text, one entry per row (a value held by two rows
    is there twice), sorted."""
    if not columns:
        return []
    parts = [sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns]
    query = sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(parts), sql.Identifier(table))
    rows = conn.execute(query).fetchall()
    return [sorted(r[i] for r in rows if r[i] is not None) for i in range(len(columns))]


Relinked = Callable[[str, str], "str | None"]
"""Where every link a column held (table OID, attnum, both as in ``measure``) is kept
after the migration, or None (``Prober.relinked``)."""

Copied = Callable[[str], "str | None"]
"""Where every row of a table gone (by name) was copied whole, or None
(``Prober.copied``)."""


def losses(
    before: dict[str, Any],
    after: dict[str, Any],
    relinked: Relinked | None = None,
    copied: Copied | None = None,
) -> tuple[list[str], list[str]]:
    """What the migration destroyed, and what it only rewrote. A column gone or emptied
    whose values sit in another column now (``moved_into``), or whose links between rows
    another column now holds (``relinked``), was moved, not lost; so was a table gone whose
    every column was moved (``table_moved``), or whose every row a probe found copied whole
    into another table (``copied``)."""
    lost: list[str] = []
    rewritten: list[str] = []
    by_name = {t["name"]: t for t in after.values()}
    for oid, old in before.items():
        new = after.get(oid) or by_name.get(old["name"])
        if new is None:
            if old["rows"]:
                moved, kept = table_moved(oid, before, after)
                whole = copied(old["name"]) if copied and not kept else None
                if kept:
                    rewritten.append(f"table {old['name']}: every column moved ({moved})")
                elif whole is not None:
                    rewritten.append(f"table {old['name']}: every row moved whole, {whole}")
                else:
                    lost.append(f"table {old['name']} ({old['rows']} rows) is gone ({moved})")
            continue
        same_oid = oid in after
        if new["rows"] < old["rows"]:
            lost.append(f"{old['name']}: {old['rows'] - new['rows']} of {old['rows']} rows gone")
        new_by_name = {c["name"]: c for c in new["columns"].values()}
        for attnum, col in old["columns"].items():
            now = new["columns"].get(attnum) if same_oid else new_by_name.get(col["name"])
            where = f"{old['name']}.{col['name']}"
            emptied = col["values"] and (not now or not now["values"])
            into = moved_into(oid, attnum, before, after) if emptied else None
            link = relinked(oid, attnum) if emptied and into is None and relinked else None
            if into is not None:
                rewritten.append(f"{where}: every value moved to {into}")
            elif link is not None:
                rewritten.append(f"{where}: every link it held is kept, {link}")
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


def table_moved(oid: str, before: dict[str, Any], after: dict[str, Any]) -> tuple[str, bool]:
    """Where the columns of table ``oid`` (gone) went, and whether each column that held
    values was moved (``moved_into``), or is the primary key and nothing referred to it: no
    other column of any table held one of its values before (``held_elsewhere``), so no row
    anywhere loses what it pointed at. When one was not, the columns not shown moved are
    named and the table is lost."""
    found, missing = [], []
    for attnum, col in before[oid]["columns"].items():
        if not col["values"]:
            continue
        into = moved_into(oid, attnum, before, after)
        if into is not None:
            found.append(f"{col['name']} to {into}")
        elif col["pk"] and col["texts"] and not held_elsewhere(col["texts"], oid, attnum, before):
            found.append(f"{col['name']}, a key nothing referred to")
        else:
            missing.append(col["name"])
    if missing:
        return f"not shown moved: {', '.join(missing)}", False
    return ", ".join(found), bool(found)


def moved_into(oid: str, attnum: str, before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The column that now holds every value column ``attnum`` of table ``oid`` held and
    did not hold them before: the values were moved, not lost. Either exactly the same
    values (the same digest: ``SET guest_id = user_id, user_id = NULL``), or each value,
    as many times as the column held it, among those the other column gained, or among the
    string scalars (at any depth) a json or jsonb column gained (``jsonb_build_object(
    'address', location)``). Only a synthetic text or uuid counts (``_synthetic``), and only
    when no other column held it before (an id 1 is everywhere: ambiguous). A value changed
    on the way, or copied from fewer rows than held it, is not recognised: it stays a
    loss."""
    col = before[oid]["columns"][attnum]
    if not col["values"] or col["digest"] is None or not col.get("seeded"):
        return None
    same = same_digest(col, before, after)
    if same is not None or not col["texts"] or held_elsewhere(col["texts"], oid, attnum, before):
        return same
    wanted = Counter(col["texts"])
    for other, table in after.items():
        for number, now in table["columns"].items():
            was = before.get(other, {}).get("columns", {}).get(number)
            if now["texts"] is None or (was is not None and was["texts"] is None):
                continue
            for inside in (False, True) if now["type"].startswith("json") else (False,):
                gained = Counter(readings(now, inside)) - Counter(readings(was, inside))
                if not wanted - gained:
                    how = " (a string inside its JSON values)" if inside else ""
                    return f"{table['name']}.{now['name']}{how}"
    return None


def readings(col: dict[str, Any] | None, inside: bool) -> list[str]:
    """A column's values as text, or the string scalars inside its JSON values; nothing
    for a column that did not exist."""
    if col is None or not col["texts"]:
        return []
    return json_strings(col["texts"]) if inside else list(col["texts"])


def same_digest(col: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The column that now holds exactly the values ``col`` held (the same digest of the
    sorted values as text) and did not hold them before, when no other column held them
    before."""
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


def held_elsewhere(values: list[str], oid: str, attnum: str, state: dict[str, Any]) -> bool:
    """Whether a column other than ``oid.attnum`` holds one of ``values`` in ``state``, as
    a value or as a string inside its JSON values; a table too large to read counts as
    holding them (nothing is proved about it)."""
    wanted = set(values)
    for other, table in state.items():
        for number, col in table["columns"].items():
            if (other, number) == (oid, attnum):
                continue
            if col["texts"] is None:
                return True
            strings = json_strings(col["texts"]) if col["type"].startswith("json") else []
            if wanted & set(col["texts"]) or wanted & set(strings):
                return True
    return False


def json_strings(texts: list[str]) -> list[str]:
    """The string scalars of JSON values (as text), at any depth, object keys left out."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)

    for text in texts:
        try:
            walk(json.loads(text))
        except ValueError:
            continue
    return found


# -- links between rows -----------------------------------------------------------------
#
# A column that holds another table's key values links rows: its values are not data of
# their own but which parent row each row belongs to. A migration that turns a relation
# around (``UPDATE "Document" SET "documentDataId" = "DocumentData"."id" FROM
# "DocumentData" WHERE "Document"."id" = "DocumentData"."documentId"``, then ``DROP COLUMN
# "documentId"``) drops such a column and loses nothing: every pair of rows it linked is
# linked by the new column, the other way round. Values cannot show that (the new column
# holds the other table's keys), pairs of row identities can. On the replay's one row per
# table, though, any column holding a key of the other table's only row "links" that
# pair, so the replay only picks the candidates, and a probe with crossed rows decides.

ROW_LIMIT = 200
"""Tables with more rows are not read row by row: their links are not credited."""

KEYS = """
SELECT i.indrelid, string_to_array(i.indkey::text, ' ')::int[], i.indisprimary
FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
WHERE c.relnamespace = 'public'::regnamespace AND i.indisunique AND i.indpred IS NULL
  AND i.indexprs IS NULL
"""
"""Unique indexes of every table (Prisma writes its unique keys as indexes, not
constraints)."""

SINGLE_FOREIGN_KEYS = """
SELECT conrelid, conkey[1], confrelid FROM pg_constraint
WHERE connamespace = 'public'::regnamespace AND contype = 'f' AND cardinality(conkey) = 1
"""

ALL_COLUMNS = """
SELECT a.attrelid, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND a.attnum > 0
  AND NOT a.attisdropped ORDER BY a.attrelid, a.attnum
"""

SPREAD_SEQUENCES = """
SELECT setval(s.seqrelid, LEAST(s.seqmax - 1, COALESCE(pg_sequence_last_value(s.seqrelid), 0)
                                + 7919 * row_number() OVER (ORDER BY s.seqrelid)))
FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
WHERE c.relnamespace = 'public'::regnamespace
"""
"""Every sequence moved on by a different step before the probe's rows go in: serial ids
counted in step (the second row of every table numbered 2) would make ``Document.userId``
look like a link wherever ``Document.id`` is one."""

Pair = tuple[tuple[str | None, ...], tuple[str | None, ...]]
"""A link: the child row's primary key, the parent row's primary key (values as text)."""


@dataclass
class Rows:
    """One table read row by row: what identifies a row, and what can link to it."""

    oid: int
    name: str
    columns: dict[int, str]
    types: dict[int, str]
    pk: tuple[int, ...]
    keys: list[int]
    """Single-column unique keys: the columns a link can point at."""
    fks: dict[int, int]
    """Single-column foreign keys: attnum to the parent table's OID."""
    rows: list[dict[int, str | None]] | None = field(default=None)

    def identity(self, row: dict[int, str | None]) -> tuple[str | None, ...]:
        return tuple(row[a] for a in self.pk)

    def label(self, attnum: int) -> str:
        return f"{self.name}.{self.columns[attnum]}"


def snapshot(conn: psycopg.Connection[Any]) -> dict[int, Rows]:
    """Every table with a primary key and at most ``ROW_LIMIT`` rows, read as text (four
    catalog queries in all, then one query per table)."""
    keys: dict[int, list[tuple[list[int], bool]]] = {}
    for oid, key, primary in conn.execute(KEYS).fetchall():
        keys.setdefault(oid, []).append((key, primary))
    fks: dict[int, dict[int, int]] = {}
    for oid, attnum, parent in conn.execute(SINGLE_FOREIGN_KEYS).fetchall():
        fks.setdefault(oid, {})[attnum] = parent
    columns: dict[int, list[tuple[int, str, str]]] = {}
    for oid, attnum, column, type_name in conn.execute(ALL_COLUMNS).fetchall():
        columns.setdefault(oid, []).append((attnum, column, type_name))
    found = {}
    for oid, name in tables(conn):
        pk = next((tuple(k) for k, primary in keys.get(oid, []) if primary), ())
        if not pk or not columns.get(oid):
            continue
        cols = columns[oid]
        parts = [sql.SQL("{}::text").format(sql.Identifier(c[1])) for c in cols]
        query = sql.SQL("SELECT {} FROM {} LIMIT {}").format(
            sql.SQL(", ").join(parts), sql.Identifier(name), sql.Literal(ROW_LIMIT + 1)
        )
        read = conn.execute(query).fetchall()
        found[oid] = Rows(
            oid, name, {c[0]: c[1] for c in cols}, {c[0]: c[2] for c in cols}, pk,
            sorted({k[0] for k, _ in keys.get(oid, []) if len(k) == 1}), fks.get(oid, {}),
            None if len(read) > ROW_LIMIT
            else [{c[0]: v for c, v in zip(cols, r, strict=True)} for r in read],
        )  # fmt: skip
    return found


def pairs(child: Rows, column: int, parent: Rows, key: int) -> frozenset[Pair] | None:
    """The pairs of rows ``child.column`` links, when every value of it is a value of
    ``parent.key`` (a key: no value twice); None when it holds no value or one that is not
    such a key value."""
    if child.rows is None or parent.rows is None or column not in child.columns:
        return None
    index: dict[str, tuple[str | None, ...]] = {}
    for row in parent.rows:
        value = row.get(key)
        if value is None:
            continue
        if value in index:
            return None
        index[value] = parent.identity(row)
    found = set()
    for row in child.rows:
        value = row.get(column)
        if value is None:
            continue
        if value not in index:
            return None
        found.add((child.identity(row), index[value]))
    return frozenset(found) or None


def kept_in(linked: frozenset[Pair], child: Rows, parent: Rows) -> str | None:
    """A column of ``child`` or ``parent`` (the same two tables, by OID) that links every
    pair of ``linked``, read in either direction; a third table never counts. A link read
    from a primary key (``DocumentData.id`` found in the unique ``Document.documentDataId``)
    is named by the column that holds it, the other way round, when that one matches too."""
    if child.oid == parent.oid:
        return None
    found = []
    for source, target, flip in ((child, parent, False), (parent, child, True)):
        for column in source.columns:
            for key in target.keys:
                held = pairs(source, column, target, key)
                if held is not None and flip:
                    held = frozenset((c, p) for p, c in held)
                if held is not None and linked <= held:
                    label = f"{source.label(column)} -> {target.label(key)}"
                    found.append((column in source.pk, label))
    return min(found)[1] if found else None


def discriminating(linked: frozenset[Pair]) -> bool:
    """Whether the pairs can tell a kept link from a coincidence: two children, two
    parents (a column holding one parent's key for every row matches none of them), and
    a pair whose two keys differ (a column that holds each row's own id matches none)."""
    return (
        len({c for c, _ in linked}) >= 2
        and len({p for _, p in linked}) >= 2
        and any(c != p for c, p in linked)
    )


def candidates(
    before: dict[int, Rows], after: dict[int, Rows], oid: int, attnum: int
) -> list[tuple[str, str]]:
    """The tables (name, key column) that ``oid.attnum`` may link to, on the replay's rows,
    whose every pair the same two tables still link after the migration: its foreign key's
    table first. Each is only a candidate: ``Prober.relinked`` decides."""
    child, child_after = before.get(oid), after.get(oid)
    if child is None or child_after is None:
        return []
    found = []
    for parent in before.values():
        parent_after = after.get(parent.oid)
        if parent.oid == oid or parent_after is None:
            continue
        for key in parent.keys:
            linked = pairs(child, attnum, parent, key)
            if linked and kept_in(linked, child_after, parent_after):
                first = child.fks.get(attnum) == parent.oid
                found.append((not first, parent.name, parent.columns[key]))
    return [(name, key) for _, name, key in sorted(found)]


class Later:
    """``snapshot(conn)`` read the first time it is asked for, then kept."""

    def __init__(
        self,
        read: Callable[[psycopg.Connection[Any]], dict[int, Rows]],
        conn: psycopg.Connection[Any],
    ) -> None:
        self.read, self.conn = read, conn
        self.kept: dict[int, Rows] | None = None

    def value(self) -> dict[int, Rows]:
        if self.kept is None:
            self.kept = self.read(self.conn)
        return self.kept


class Prober:
    """Decides whether a column the replay saw gone only moved its links, by measuring on a
    database of its own: the history replayed (unseeded) up to the migration, seeded as
    the replay seeds, then one more parent row and one more child row, linked crosswise
    (the first child to the new parent, the new child to the first child's parent), and
    the migration run. The links are kept when every pair the column held, which these
    rows make discriminating, is linked after it by one column of the same two tables.
    A probe that cannot be set up, or a migration that fails on it, credits nothing."""

    MAX_CANDIDATES = 3

    def __init__(self, dsn: str, steps_for: StepsFor) -> None:
        self.dsn = dsn
        self.steps_for = steps_for
        name = str(conninfo_to_dict(dsn)["dbname"])
        self.pristine = f"{name}_pristine"
        self.probe_name = f"{name}_probe"
        self.probe_dsn = on_database(dsn, self.probe_name)
        self.probes: list[str] = []
        """What the probes of the current migration found, for its record."""
        copy_database(dsn, name, self.pristine)

    def relinked(
        self, index: int, before: dict[int, Rows], after: Later, oid: str, attnum: str
    ) -> str | None:
        """``Relinked`` for migration ``index``, given the replay's rows before it and
        after it (read only when a column with values is gone)."""
        child = before.get(int(oid))
        found = candidates(before, after.value(), int(oid), int(attnum))
        for parent, key in found[: self.MAX_CANDIDATES]:
            assert child is not None
            column = child.columns[int(attnum)]
            kept, why = self.probe(index, child.name, column, parent, key)
            self.probes.append(f"{child.name}.{column} -> {parent}.{key}: {why}")
            if kept:
                return f"{why} (probe with crossed rows)"
        return None

    def replayed(self, index: int) -> tuple[list[Step], str | None]:
        """The probe's database, the history replayed on it up to migration ``index``;
        its steps, and why the replay failed, when it did."""
        copy_database(self.dsn, self.pristine, self.probe_name)
        steps = self.steps_for(self.probe_dsn)
        try:
            for _, run, _ in steps[:index]:
                run()
        except Exception as exc:
            return steps, f"the replay up to it failed: {first_line(exc)}"
        return steps, None

    def probe(self, index: int, child: str, column: str, parent: str, key: str) -> tuple[bool, str]:
        """Whether migration ``index`` keeps every link of ``child.column`` to
        ``parent.key``, and what was found."""
        steps, failed = self.replayed(index)
        if failed:
            return False, failed
        with psycopg.connect(self.probe_dsn, autocommit=True) as conn:
            seed(conn, set())
            rows = {t.name: t for t in snapshot(conn).values()}
            if child not in rows or parent not in rows:
                return False, "a table has no primary key or too many rows"
            c, p = rows[child], rows[parent]
            attnum = next((a for a, n in c.columns.items() if n == column), None)
            keyed = next((a for a, n in p.columns.items() if n == key), None)
            conn.execute(SPREAD_SEQUENCES)
            if attnum is None or keyed is None or not cross(conn, c, attnum, p, keyed):
                return False, "crossed rows could not be made"
            state = snapshot(conn)
            linked = pairs(state[c.oid], attnum, state[p.oid], keyed)
            if linked is None or not discriminating(linked):
                return False, "the crossed rows do not link discriminating pairs"
        try:
            steps[index][1]()
        except Exception as exc:
            return False, f"the migration failed on the crossed rows: {first_line(exc)}"
        with psycopg.connect(self.probe_dsn, autocommit=True) as conn:
            state = snapshot(conn)
        if c.oid not in state or p.oid not in state:
            return False, "a table is gone"
        where = kept_in(linked, state[c.oid], state[p.oid])
        if where is None:
            return False, f"{len(linked)} links, not all kept by a column of the two tables"
        return True, f"{len(linked)} of {len(linked)} links in {where}"

    def copied(self, index: int, table: str) -> str | None:
        """``Copied`` for migration ``index``: where every row of ``table`` (gone) went."""
        kept, why = self.probe_copy(index, table)
        self.probes.append(f"table {table}: {why}")
        return f"{why} (probe with {COPY_ROWS} more rows)" if kept else None

    def probe_copy(self, index: int, table: str) -> tuple[bool, str]:
        """Whether migration ``index`` copies every row of ``table`` whole into rows it adds
        to one other table, on the history replayed up to it, seeded, with ``COPY_ROWS``
        rows added to ``table`` (``insert_probe_row``); and what was found."""
        steps, failed = self.replayed(index)
        if failed:
            return False, failed
        with psycopg.connect(self.probe_dsn, autocommit=True) as conn:
            seed(conn, set())
            conn.execute(SPREAD_SEQUENCES)
            source = next((t for t in snapshot(conn).values() if t.name == table), None)
            if source is None or not source.rows:
                return False, "the table has no primary key, no row or too many rows"
            first = source.rows[0]
            for variant in range(1, COPY_ROWS + 1):
                if not insert_probe_row(conn, source, first, variant):
                    return False, f"probe row {variant} could not be made"
            before, state = snapshot(conn), measure(conn)
        source = before[source.oid]
        wanted, blind = copy_columns(source, state)
        if blind:
            return False, f"the probe rows prove nothing: {blind}"
        try:
            steps[index][1]()
        except Exception as exc:
            return False, f"the migration failed on the probe rows: {first_line(exc)}"
        with psycopg.connect(self.probe_dsn, autocommit=True) as conn:
            after = snapshot(conn)
        where = found_whole(source, wanted, before, after)
        if where is None:
            return False, f"{len(source.rows or [])} rows, not all found whole in one table"
        return True, where

    def close(self) -> None:
        with psycopg.connect(make_conninfo(self.dsn, dbname="postgres"), autocommit=True) as admin:
            for name in (self.pristine, self.probe_name):
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))  # fmt: skip


def cross(conn: psycopg.Connection[Any], child: Rows, column: int, parent: Rows, key: int) -> bool:
    """One more ``parent`` row and one more ``child`` row, linked crosswise to the first
    child and its parent; whether they went in."""
    assert child.rows is not None
    assert parent.rows is not None
    keys = {r[key]: r for r in parent.rows if r[key] is not None}
    first = next((r for r in child.rows if r[column] in keys), None)
    if first is None:
        return False
    old = keys[first[column]]
    if not insert_one(conn, parent.oid, parent.name, variant=1):
        return False
    known = {parent.identity(r) for r in parent.rows}
    now = snapshot(conn).get(parent.oid)
    new = [r for r in (now.rows or []) if parent.identity(r) not in known] if now else []
    if len(new) != 1 or new[0][key] is None:
        return False
    kind = child.types[column]
    where = sql.SQL(" AND ").join(
        sql.SQL("{}::text = {}").format(sql.Identifier(child.columns[a]), sql.Literal(first[a]))
        for a in child.pk
    )
    relink = sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
        sql.Identifier(child.name), sql.Identifier(child.columns[column]),
        sql.SQL(f"{quote(str(new[0][key]))}::{kind}"), where,
    )  # fmt: skip
    fixed = {column: f"{quote(str(old[key]))}::{kind}"}
    return attempt(conn, relink) and insert_one(conn, child.oid, child.name, variant=1, fixed=fixed)


# -- tables copied whole ----------------------------------------------------------------
#
# A table gone whose columns the replay's one row cannot show moved (a number, a boolean,
# an enum label, a JSON value or a foreign key is found in many places) is decided by a
# probe, as a link is: more rows in the gone table, each column's values differing from row
# to row and from column to column, and the migration run. Every row must then be found
# whole, by value, in a row the migration added to one other table.

COPY_ROWS = 4
"""Rows the probe adds to a gone table. With the seeded row, each column's values over the
rows spell a pattern of its own: a boolean (or a two-label enum) takes the other value on
the first added row and, on the others, the bits of its rank among the table's columns of
its type, so up to ``2 ** (COPY_ROWS - 1) - 1`` such columns can be told apart."""

ENUM_LABELS = "SELECT enumlabel FROM pg_enum WHERE enumtypid = %s ORDER BY enumsortorder"

LISTED = re.compile(r"ANY \(ARRAY\[|\bIN \(", re.I)


def listed_values(conn: psycopg.Connection[Any], oid: int) -> dict[int, list[str]]:
    """For each column of table ``oid`` under a CHECK that lists values (``IN (...)``,
    ``= ANY (ARRAY[...])``), the values it lists."""
    found: dict[int, list[str]] = {}
    for attnum, definition in conn.execute(CHECKS, (oid,)).fetchall():
        if LISTED.search(definition):
            texts = re.findall(r"'((?:[^']|'')*)'", definition)
            found[attnum] = [t.replace("''", "'") for t in texts]
    return found


def probe_value(
    conn: psycopg.Connection[Any],
    column: tuple[Any, ...],
    first: str | None,
    variant: int,
    rank: int,
    position: int,
    listed: list[str] | None,
    unique: str,
) -> str:
    """A SQL expression for column ``column`` (a ``COLUMNS`` row) of added row ``variant``
    (1..``COPY_ROWS``): unlike ``first`` (the seeded row's value, as text) where the type
    allows, and unlike the values of the table's other columns on the same rows. ``rank``
    is the column's rank among the table's columns of its type, ``position`` among all."""
    attnum, _, type_name, _, _, typtype, type_oid, _, element_typtype, element_oid = column
    name = type_name.lower()
    flip = variant == 1 or bool((rank + 1) >> (variant - 2) & 1)
    choices: list[str] | None = None
    if listed:
        choices = listed
    elif typtype == "e":
        choices = [label for (label,) in conn.execute(ENUM_LABELS, (type_oid,)).fetchall()]
    elif name == "boolean":
        choices = ["true", "false"]
    if choices is not None:
        start = choices.index(first) if first in choices else 0
        return f"{quote(choices[(start + flip) % len(choices)])}::{type_name}"
    number = 100 * variant + position + 1
    if name.endswith("[]"):
        element = (attnum, "", type_name[:-2], False, False, element_typtype, element_oid,
                   False, None, None)  # fmt: skip
        inner = probe_value(conn, element, None, variant, rank, position, None, unique)
        return f"ARRAY[{inner}]::{type_name}"
    table = [
        (("smallint", "integer", "bigint", "numeric", "real", "double", "decimal"),
         str(number)),
        (("timestamp", "date"), f"(now() + interval '{number} days')"),
        (("time",), f"('00:00'::time + interval '{variant} hours {position % 60} minutes')"),
        (("interval",), f"'{number} seconds'"),
        (("uuid",), "gen_random_uuid()"),
        (("jsonb", "json"), quote(json.dumps({"probe": f"{position}-{variant}"}))),
        (("bytea",), f"'\\x{variant:02x}{position % 256:02x}'"),
        (("inet",), f"'10.{variant}.{position % 256}.1'"),
        (("cidr",), f"'10.{variant}.{position % 256}.0/24'"),
        (("tsvector",), f"'probe{unique}{variant}'"),
    ]  # fmt: skip
    for prefixes, value in table:
        if name.startswith(prefixes):
            return f"{value}::{type_name}"
    if name.startswith(("character", "text", "citext", "name")):
        length = re.search(r"\((\d+)\)", name)
        text = f"{unique}{variant}"
        return f"{quote(text[-int(length.group(1)) :] if length else text)}::{type_name}"
    return f"NULL::{type_name}"


def insert_probe_row(
    conn: psycopg.Connection[Any], table: Rows, first: dict[int, str | None], variant: int
) -> bool:
    """Added row ``variant`` of ``table``: every column set (``probe_value``), but a
    primary key with a default (a new key) and generated columns; each single-column
    foreign key pointed at a parent row no row of the table points at yet, one made when
    there is none (``unused_fk_value``, four levels deep, its rows numbered from ten times
    ``variant`` so that the parents made for two probe rows differ). Whether it went in."""
    columns = conn.execute(COLUMNS, (table.oid,)).fetchall()
    listed = listed_values(conn, table.oid)
    ranks: Counter[str] = Counter()
    names, values = [], []
    for position, column in enumerate(columns):
        attnum, name, type_name, _, hasdef, *_ = column
        if column[7] or (attnum in table.pk and hasdef):
            continue
        if attnum in table.fks:
            value = unused_fk_value(conn, table.oid, attnum, 10 * variant, depth=-2)
            if value is None:
                return False
        else:
            unique = f"{table.oid % 100000}{attnum:02d}"
            value = probe_value(conn, column, first.get(attnum), variant, ranks[type_name],
                                position, listed.get(attnum), unique)  # fmt: skip
            ranks[type_name] += 1
        names.append(sql.Identifier(name))
        values.append(sql.SQL(value))
    if not names:
        return False
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table.name), sql.SQL(", ").join(names), sql.SQL(", ").join(values)
    )
    return attempt(conn, query)


def copy_columns(table: Rows, state: dict[str, Any]) -> tuple[list[int], str | None]:
    """The columns of ``table`` each row must be found with: all but a primary key column
    none of whose values another column held (``held_elsewhere``: nothing referred to the
    rows); and why the rows cannot prove a copy, when they cannot: a column whose values
    are the same on every row (a default, a one-label enum: found anywhere), or two
    columns with the same values row by row (one copied twice would pass for both)."""
    assert table.rows is not None
    wanted = []
    for attnum in table.columns:
        texts = sorted(v for r in table.rows if (v := r[attnum]) is not None)
        held = held_elsewhere(texts, str(table.oid), str(attnum), state)
        if attnum not in table.pk or held:
            wanted.append(attnum)
    seen: dict[tuple[str | None, ...], int] = {}
    for attnum in wanted:
        values = tuple(r[attnum] for r in table.rows)
        if len(set(values)) < 2:
            return wanted, f"{table.label(attnum)} holds one value on every row"
        if values in seen:
            other = table.label(seen[values])
            return wanted, f"{other} and {table.label(attnum)} hold the same values"
        seen[values] = attnum
    return wanted, None


def found_whole(
    source: Rows, wanted: list[int], before: dict[int, Rows], after: dict[int, Rows]
) -> str | None:
    """The table (and the column each of ``wanted`` went to) that gained one row for each
    row of ``source`` holding its values whole: one column of the table per column of
    ``source`` (names aside), each source row in a row of its own. None when no table
    does."""
    assert source.rows is not None
    for target in after.values():
        if target.oid == source.oid or target.rows is None:
            continue
        old = before.get(target.oid)
        known = {old.identity(r) for r in old.rows or []} if old else set()
        added = [r for r in target.rows if target.identity(r) not in known]
        if len(added) < len(source.rows):
            continue
        options = {
            a: [
                k for k in target.columns
                if all(any(t[k] == s[a] for t in added) for s in source.rows)
            ]
            for a in wanted
        }  # fmt: skip
        mapping = assign(wanted, options, source.rows, added)
        if mapping is not None:
            moved = ", ".join(f"{source.columns[a]} to {target.columns[k]}" for a, k in mapping)
            return f"{len(source.rows)} of {len(source.rows)} rows in {target.name} ({moved})"
    return None


def assign(
    wanted: list[int],
    options: dict[int, list[int]],
    rows: list[dict[int, str | None]],
    added: list[dict[int, str | None]],
) -> list[tuple[int, int]] | None:
    """A column of the target for each of ``wanted`` (no column twice) under which every
    source row matches an added row of its own; None when there is none (a search of at
    most a thousand column choices)."""
    order = sorted(wanted, key=lambda a: len(options[a]))
    budget = [1000]

    def search(chosen: list[tuple[int, int]]) -> list[tuple[int, int]] | None:
        if len(chosen) == len(order):
            return chosen if rows_matched(chosen, rows, added) else None
        for k in options[order[len(chosen)]]:
            if any(k == taken for _, taken in chosen) or budget[0] <= 0:
                continue
            budget[0] -= 1
            found = search([*chosen, (order[len(chosen)], k)])
            if found is not None:
                return found
        return None

    return search([])


def rows_matched(
    chosen: list[tuple[int, int]],
    rows: list[dict[int, str | None]],
    added: list[dict[int, str | None]],
) -> bool:
    """Whether each source row matches, column by column, an added row of its own (a
    bipartite matching)."""
    fits = [[i for i, t in enumerate(added) if all(t[k] == s[a] for a, k in chosen)] for s in rows]
    taken: dict[int, int] = {}

    def place(row: int, seen: set[int]) -> bool:
        for i in fits[row]:
            if i in seen:
                continue
            seen.add(i)
            if i not in taken or place(taken[i], seen):
                taken[i] = row
                return True
        return False

    return all(place(row, set()) for row in range(len(rows)))


def empty_all(conn: psycopg.Connection[Any]) -> None:
    names = [sql.Identifier(name) for _, name in tables(conn)]
    if names:
        conn.execute(sql.SQL("TRUNCATE {} CASCADE").format(sql.SQL(", ").join(names)))


Step = tuple[str, Callable[[], None], bool]
"""A migration: its id, how to run it, and whether it runs in one transaction (a script
with its own COMMIT, or run statement by statement, may leave half its work behind)."""

StepsFor = Callable[[str], list[Step]]
"""The history's steps, run on the database of the DSN given: the replay's own, or a
probe's (``Prober``)."""


def replay(dsn: str, steps_for: StepsFor) -> list[dict[str, Any]]:
    """Run each step in order on ``dsn`` with seeding and measurement around it; one record
    per migration. Before a step that is not atomic the database is copied (CREATE DATABASE
    ... TEMPLATE keeps every OID), so that a failure on the seeded rows can be undone. The
    database as it was before the first step is kept for the probes of links (``Prober``)."""
    records = []
    refused: set[tuple[int, int]] = set()
    name = conninfo_to_dict(dsn)["dbname"]
    spare = f"{name}_before"
    prober = Prober(dsn, steps_for)
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        for index, (migration, run, atomic) in enumerate(steps_for(dsn)):
            seed(conn, refused)
            before, rows_before = measure(conn), snapshot(conn)
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
                before, rows_before = measure(conn), snapshot(conn)
                try:
                    run()
                except Exception as again:
                    record["fails_empty"] = first_line(again)
                    records.append(record)
                    break
            relinked = partial(prober.relinked, index, rows_before, Later(snapshot, conn))
            copied = partial(prober.copied, index)
            record["lost"], record["rewritten"] = losses(before, measure(conn), relinked, copied)
            if prober.probes:
                record["link_probes"] = prober.probes
                prober.probes = []
            records.append(record)
    finally:
        conn.close()
        prober.close()
        with psycopg.connect(make_conninfo(dsn, dbname="postgres"), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(spare)))  # fmt: skip
    return records


def on_database(dsn: str, name: str) -> str:
    """``dsn`` naming database ``name`` instead, in the same form: a URL stays a URL
    (Alembic's ``sqlalchemy.url`` is made from it)."""
    if "://" not in dsn:
        return make_conninfo(dsn, dbname=name)
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + quote_plus(name)))


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
    scripts = [
        (m.name, (m / "migration.sql").read_text(encoding="utf-8"))
        for m in sorted(p for p in folder.iterdir() if (p / "migration.sql").is_file())
    ]

    def steps_for(target: str) -> list[Step]:
        return [
            (name, prisma_runner(target, script),
             "CONCURRENTLY" not in script.upper() and not TRANSACTION_CONTROL.search(script))
            for name, script in scripts
        ]  # fmt: skip

    return replay(dsn, steps_for)


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

    def config_for(target: str) -> Config:
        config = Config()
        config.set_main_option("script_location", str(script_dir))
        url = target.replace("postgresql://", "postgresql+psycopg://")
        config.set_main_option("sqlalchemy.url", url)
        return config

    script = ScriptDirectory.from_config(config_for(dsn))
    order = [rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))]

    def steps_for(target: str) -> list[Step]:
        """The revisions on ``target``, with a memo of created types of their own."""
        config = config_for(target)
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

        return [(rev, runner(rev), True) for rev in order]

    return replay(dsn, steps_for)


# -- self-test --------------------------------------------------------------------------

SELF_TEST: list[tuple[str, str, str | None]] = [
    ("00_init", """
CREATE TABLE "Doc" ("id" SERIAL PRIMARY KEY, "title" TEXT NOT NULL);
CREATE TABLE "Data" ("id" TEXT PRIMARY KEY, "body" TEXT,
                     "docId" INTEGER NOT NULL REFERENCES "Doc" ("id"));
CREATE UNIQUE INDEX "Data_docId_key" ON "Data" ("docId");
CREATE TABLE "Note" ("id" SERIAL PRIMARY KEY, "docId" INTEGER REFERENCES "Doc" ("id"));
CREATE TABLE "Tag" ("id" SERIAL PRIMARY KEY, "docId" INTEGER REFERENCES "Doc" ("id"));
CREATE TABLE "Owner" ("id" SERIAL PRIMARY KEY, "docId" INTEGER REFERENCES "Doc" ("id"));
CREATE TABLE "Item" ("id" TEXT PRIMARY KEY, "docId" INTEGER REFERENCES "Doc" ("id"));
CREATE TABLE "Ext" ("id" TEXT PRIMARY KEY, "docId" INTEGER REFERENCES "Doc" ("id"));
""", None),
    ("01_turned_around", """
ALTER TABLE "Data" DROP CONSTRAINT "Data_docId_fkey";
DROP INDEX "Data_docId_key";
ALTER TABLE "Doc" ADD COLUMN "dataId" TEXT;
UPDATE "Doc" SET "dataId" = "Data"."id" FROM "Data" WHERE "Doc"."id" = "Data"."docId";
ALTER TABLE "Data" DROP COLUMN "docId";
""", "kept"),
    ("02_every_doc_to_the_first_note", """
ALTER TABLE "Doc" ADD COLUMN "noteId" INTEGER;
UPDATE "Doc" SET "noteId" = (SELECT min("id") FROM "Note");
ALTER TABLE "Note" DROP COLUMN "docId";
""", "column Note.docId"),
    ("03_through_a_third_table", """
CREATE TABLE "TagDoc" ("tagId" INTEGER, "docId" INTEGER, PRIMARY KEY ("tagId", "docId"));
INSERT INTO "TagDoc" SELECT "id", "docId" FROM "Tag" WHERE "docId" IS NOT NULL;
ALTER TABLE "Tag" DROP COLUMN "docId";
""", "column Tag.docId"),
    ("04_dropped_copied_nowhere", """
ALTER TABLE "Owner" DROP COLUMN "docId";
""", "column Owner.docId"),
    ("05_one_link_of_all", """
ALTER TABLE "Doc" ADD COLUMN "itemId" TEXT;
UPDATE "Doc" SET "itemId" = first."id"
FROM (SELECT "id", "docId" FROM "Item" ORDER BY "id" LIMIT 1) AS first
WHERE "Doc"."id" = first."docId";
ALTER TABLE "Item" DROP COLUMN "docId";
""", "column Item.docId"),
    ("06_turned_around_with_values_changed", """
ALTER TABLE "Doc" ADD COLUMN "extId" TEXT;
UPDATE "Doc" SET "extId" = "Ext"."id" || '-v2' FROM "Ext" WHERE "Doc"."id" = "Ext"."docId";
ALTER TABLE "Ext" DROP COLUMN "docId";
""", "column Ext.docId"),
    ("07_more_tables", """
CREATE TABLE "DocMeta" ("id" TEXT PRIMARY KEY, "subject" TEXT, "note" TEXT);
CREATE TABLE "TplMeta" ("id" TEXT PRIMARY KEY, "subject" TEXT, "note" TEXT);
CREATE TABLE "TplMeta2" ("id" TEXT PRIMARY KEY, "subject" TEXT, "extra" TEXT);
CREATE TABLE "TplMeta3" ("id" TEXT PRIMARY KEY, "subject" TEXT);
CREATE TABLE "Ref" ("id" SERIAL PRIMARY KEY, "tplId" TEXT REFERENCES "TplMeta3" ("id"));
CREATE TABLE "Part" ("id" TEXT PRIMARY KEY, "body" TEXT);
CREATE TABLE "Event" ("id" SERIAL PRIMARY KEY, "location" TEXT);
CREATE TABLE "Event2" ("id" SERIAL PRIMARY KEY, "location" TEXT);
CREATE TABLE "Event3" ("id" SERIAL PRIMARY KEY, "location" TEXT, "place" TEXT);
""", None),
    ("08_table_copied_into_a_table_with_rows", """
INSERT INTO "DocMeta" ("id", "subject", "note")
SELECT gen_random_uuid()::text, "subject", "note" FROM "TplMeta";
DROP TABLE "TplMeta";
""", "moved"),
    ("09_table_with_a_column_copied_nowhere", """
INSERT INTO "DocMeta" ("id", "subject") SELECT gen_random_uuid()::text, "subject" FROM "TplMeta2";
DROP TABLE "TplMeta2";
""", "table TplMeta2"),
    ("10_table_whose_key_a_row_referred_to", """
INSERT INTO "DocMeta" ("id", "subject") SELECT gen_random_uuid()::text, "subject" FROM "TplMeta3";
DROP TABLE "TplMeta3" CASCADE;
""", "table TplMeta3"),
    ("11_rows_doubled", """
INSERT INTO "Part" ("id", "body") SELECT "id" || 'b', "body" FROM "Part";
""", None),
    ("12_part_of_the_rows_copied", """
INSERT INTO "DocMeta" ("id", "subject")
SELECT gen_random_uuid()::text, "body" FROM "Part" ORDER BY "id" LIMIT 1;
DROP TABLE "Part";
""", "table Part"),
    ("13_into_a_json_object", """
ALTER TABLE "Event" ADD COLUMN "location_json" JSONB;
UPDATE "Event" SET "location_json" = jsonb_build_object('provider', 'custom', 'address', "location")
WHERE "location" IS NOT NULL AND "location" <> '';
ALTER TABLE "Event" DROP COLUMN "location";
ALTER TABLE "Event" RENAME COLUMN "location_json" TO "location";
""", "moved"),
    ("14_into_a_json_object_changed", """
ALTER TABLE "Event2" ADD COLUMN "location_json" JSONB;
UPDATE "Event2" SET "location_json" = jsonb_build_object('address', 'at ' || "location");
ALTER TABLE "Event2" DROP COLUMN "location";
""", "column Event2.location"),
    ("15_changed_on_the_way", """
UPDATE "Event3" SET "place" = 'at ' || "location";
ALTER TABLE "Event3" DROP COLUMN "location";
""", "column Event3.location"),
    ("16_typed_tables", """
CREATE TYPE "Kind" AS ENUM ('A', 'B', 'C');
CREATE TABLE "Parent" ("id" SERIAL PRIMARY KEY, "name" TEXT);
CREATE TABLE "Meta" ("id" TEXT PRIMARY KEY, "kind" "Kind", "flag" BOOLEAN NOT NULL DEFAULT false,
                     "n" INTEGER NOT NULL DEFAULT 0, "doc" JSONB,
                     "parentId" INTEGER REFERENCES "Parent" ("id"));
CREATE TABLE "TMeta1" ("id" TEXT PRIMARY KEY, "kind" "Kind", "flag" BOOLEAN NOT NULL DEFAULT false,
                       "n" INTEGER NOT NULL DEFAULT 0, "doc" JSONB,
                       "parentId" INTEGER REFERENCES "Parent" ("id"));
CREATE TABLE "TMeta2" (LIKE "TMeta1" INCLUDING ALL, FOREIGN KEY ("parentId") REFERENCES "Parent");
CREATE TABLE "TMeta3" (LIKE "TMeta1" INCLUDING ALL, FOREIGN KEY ("parentId") REFERENCES "Parent");
CREATE TABLE "TMeta4" (LIKE "TMeta1" INCLUDING ALL, FOREIGN KEY ("parentId") REFERENCES "Parent");
CREATE TABLE "TMeta5" (LIKE "TMeta1" INCLUDING ALL, FOREIGN KEY ("parentId") REFERENCES "Parent");
""", None),
    ("17_typed_table_copied_whole", """
INSERT INTO "Meta" ("id", "kind", "flag", "n", "doc", "parentId")
SELECT gen_random_uuid()::text, "kind", "flag", "n", "doc", "parentId" FROM "TMeta1";
DROP TABLE "TMeta1";
""", "moved"),
    ("18_typed_table_with_a_column_left_out", """
INSERT INTO "Meta" ("id", "kind", "flag", "doc", "parentId")
SELECT gen_random_uuid()::text, "kind", "flag", "doc", "parentId" FROM "TMeta2";
DROP TABLE "TMeta2";
""", "table TMeta2"),
    ("19_typed_table_with_a_flag_negated", """
INSERT INTO "Meta" ("id", "kind", "flag", "n", "doc", "parentId")
SELECT gen_random_uuid()::text, "kind", NOT "flag", "n", "doc", "parentId" FROM "TMeta3";
DROP TABLE "TMeta3";
""", "table TMeta3"),
    ("20_typed_table_with_a_number_changed", """
INSERT INTO "Meta" ("id", "kind", "flag", "n", "doc", "parentId")
SELECT gen_random_uuid()::text, "kind", "flag", "n" + 1, "doc", "parentId" FROM "TMeta4";
DROP TABLE "TMeta4";
""", "table TMeta4"),
    ("21_typed_table_with_a_row_skipped", """
INSERT INTO "Meta" ("id", "kind", "flag", "n", "doc", "parentId")
SELECT gen_random_uuid()::text, "kind", "flag", "n", "doc", "parentId" FROM "TMeta5"
WHERE NOT "flag";
DROP TABLE "TMeta5";
""", "table TMeta5"),
]  # fmt: skip
"""A small history, and what each migration must measure as: "kept" (a link turned
around: no loss), "moved" (values moved, no loss), or the start of the loss it must report
(a link every row of one side points at the same row of the other, a link kept only through
a third table, a foreign key dropped and copied nowhere, one link moved of two, a link
turned around into values that are no longer the other table's keys). On the replay's one
row per table the first four losses would pass for kept; only the crossed rows of the probe
tell them apart. From ``08`` on: a table copied, all but its key, into a table that already
has rows (moved); a table with one column copied nowhere, a table whose key another table's
row referred to, a table of two rows of which one was copied (lost); a text moved into a
JSON object (moved); a text changed on the way into a JSON object or into another column
(lost). From ``16`` on, tables of an enum, a boolean, a number, a JSON value and a foreign
key, which one row cannot show moved: one copied whole but its key into a table with rows
(moved, by the probe of ``COPY_ROWS`` more rows); one with a column left out, one with
``NOT flag``, one with ``n + 1``, one with a WHERE that skips the probe's first row
(lost)."""


def self_test(server: str) -> int:
    """Replay ``SELF_TEST`` on a database of its own (dropped after) and check each verdict."""
    import os
    import tempfile

    name = f"corpus_measure_self_test_{os.getpid()}"
    admin_dsn = make_conninfo(server, dbname="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as folder:
            for migration, script, _ in SELF_TEST:
                (Path(folder) / migration).mkdir()
                (Path(folder) / migration / "migration.sql").write_text(script)
            records = measure_prisma(make_conninfo(server, dbname=name), Path(folder))
        for (migration, _, expected), record in zip(SELF_TEST, records, strict=True):
            lost, probes = record.get("lost", []), record.get("link_probes", [])
            if expected is None:
                ok = not lost
            elif expected == "moved":
                ok = not lost and any("moved" in r for r in record["rewritten"])
            elif expected == "kept":
                ok = not lost and any(
                    "every link it held is kept" in r for r in record["rewritten"]
                )
            else:
                ok = len(lost) == 1 and lost[0].startswith(expected)
            failures += not ok
            moved = [r for r in record.get("rewritten", []) if "moved" in r]
            print(f"{'ok  ' if ok else 'FAIL'} {migration}: lost {lost}; probes {probes}"
                  + (f"; moved {moved}" if moved else ""))  # fmt: skip
    finally:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))  # fmt: skip
    print(f"self-test: {len(SELF_TEST) - failures} of {len(SELF_TEST)} as expected")
    return 1 if failures else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--self-test"] and len(argv) <= 2:
        import os

        default = os.environ.get("BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
        return self_test(argv[1] if len(argv) == 2 else default)
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
