"""The ``sync_state`` migration for SQLite: SQL that, run after the applied migrations, turns
the schema they build into the live one (``reconciler drift --sql``).

SQLite cannot alter a column, a key or a foreign key in place, so a table whose columns or
constraints drifted is rebuilt, the way Prisma writes such migrations and as the gate
recognises them (``safety.analyse``): a ``new_<table>`` made from the live ``CREATE TABLE``
text, the columns both sides have copied into it, the old table dropped, the new one renamed
in its place, then its live indexes and triggers made again (dropping a table drops them).
Tables the live database has and the migrations do not are created from their live text;
tables it no longer has are dropped. Indexes and views are dropped and created by name.

Definitions are SQLite's own text from ``sqlite_master``, so the statements rebuild what was
read. The rename runs with ``legacy_alter_table`` on: otherwise SQLite re-checks every view
and trigger at the rename, and refuses one that reads the table dropped a statement earlier
(``error in view ...: no such table``); its references to the table name are right again
once the rename is done. ``foreign_keys`` is turned off around the rebuilds, as Prisma does,
for a file run outside a transaction: dropping a table with foreign keys enforced would run
its ``ON DELETE`` actions. (Inside the transaction reconciler runs a migration in, SQLite
ignores that pragma; reconciler's connections do not enforce foreign keys, and the census
would refuse a loss.)
"""

from __future__ import annotations

import re

from reconciler.drift.catalog import Item, Schema, Source
from reconciler.drift.sql import SqlNotSupported, quote

_TABLE_HEAD = re.compile(
    r"""^(\s*CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?)
        ("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s(]+)""",
    re.IGNORECASE | re.VERBOSE,
)


_TABLE_NAME = re.compile(r"""("(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|[^\s(,]+)""")


def sync_sql_sqlite(live: Schema, expected: Schema) -> list[str]:
    """The statements that turn ``expected`` (what the migrations build) into ``live``; an
    empty list when they are the same."""
    live_tables, expected_tables = _of(live, "table"), _of(expected, "table")
    added = [n for n in live_tables if n not in expected_tables]
    gone = [n for n in expected_tables if n not in live_tables]
    drifted = [n for n in live_tables if n in expected_tables and _table_drifted(live, expected, n)]
    sources = {(s.type, s.name): s for s in live.sources}
    grown = {n: c for n in drifted if (c := _added_columns(live, expected, n)) is not None}
    rebuilt = [n for n in drifted if n not in grown]
    made = set(added) | set(rebuilt)  # their indexes and triggers come from their live text

    drops: list[str] = []
    live_views, expected_views = _of(live, "view"), _of(expected, "view")
    for name, item in sorted(expected_views.items()):
        if name not in live_views or live_views[name].attrs != item.attrs:
            drops.append(f"DROP VIEW {quote(name)};")
    live_indexes, expected_indexes = _of(live, "index"), _of(expected, "index")
    for name, item in sorted(expected_indexes.items()):
        if item.table in gone or item.table in made:
            continue  # goes with its table
        if name not in live_indexes or live_indexes[name].attrs != item.attrs:
            drops.append(f"DROP INDEX {quote(name)};")
    drops += [f"DROP TABLE {quote(name)};" for name in sorted(gone)]

    creates: list[str] = []
    for source in live.sources:
        if source.type == "table" and source.name in added:
            creates.append(_statement(source.sql))
            creates += _belongings(live, source.name)
    for name, columns in sorted(grown.items()):
        creates += [f"ALTER TABLE {quote(name)} ADD COLUMN {column};" for column in columns]
    for name in sorted(rebuilt):
        creates += _rebuild(live, expected, sources[("table", name)])
    for source in live.sources:
        if source.type != "index" or source.table in made:
            continue
        was = expected_indexes.get(source.name)
        now = live_indexes.get(source.name)
        if was is None or (now is not None and now.attrs != was.attrs):
            creates.append(_statement(source.sql))
    for source in live.sources:
        if source.type != "view":
            continue
        was = expected_views.get(source.name)
        if was is None or live_views[source.name].attrs != was.attrs:
            creates.append(_statement(source.sql))

    if not drops and not creates:
        return []
    if not gone and not rebuilt:
        return drops + creates
    return [
        "PRAGMA defer_foreign_keys=ON;",
        "PRAGMA foreign_keys=OFF;",
        "PRAGMA legacy_alter_table=ON;",
        *drops,
        *creates,
        "PRAGMA legacy_alter_table=OFF;",
        "PRAGMA foreign_keys=ON;",
        "PRAGMA defer_foreign_keys=OFF;",
    ]


def _of(schema: Schema, kind: str) -> dict[str, Item]:
    return {name: item for (k, name), item in schema.items.items() if k == kind}


def _table_drifted(live: Schema, expected: Schema, table: str) -> bool:
    """Its columns or its constraints (keys, unique, foreign keys) differ: the parts of a
    table SQLite keeps in its ``CREATE TABLE`` text, which only a rebuild changes."""

    def parts(schema: Schema) -> dict[tuple[str, str], dict[str, str]]:
        return {
            key: item.attrs
            for key, item in schema.items.items()
            if item.table == table and item.kind in ("column", "constraint")
        }

    return parts(live) != parts(expected)


def _added_columns(live: Schema, expected: Schema, table: str) -> list[str] | None:
    """The definitions of the columns the live table has more, when that is its only drift
    and they were added as ``ALTER TABLE ... ADD COLUMN`` adds them (SQLite appends each
    definition to the ``CREATE TABLE`` text): the same statements then give the same text,
    with no rebuild. None when the table must be rebuilt."""
    now = next((s.sql for s in live.sources if s.type == "table" and s.name == table), "")
    was = next((s.sql for s in expected.sources if s.type == "table" and s.name == table), "")
    live_columns, expected_columns = _columns(live, table), _columns(expected, table)
    more = [name for name in live_columns if name not in expected_columns]
    same = {k: v.attrs for k, v in live_columns.items() if k not in more}
    if not more or same != {k: v.attrs for k, v in expected_columns.items()}:
        return None
    if _constraints(live, table) != _constraints(expected, table):
        return None
    if not (was.endswith(")") and now.endswith(")") and now.startswith(was[:-1] + ", ")):
        return None
    definitions = _top_level_split(now[len(was) + 1 : -1])
    named = [_first_name(d) for d in definitions]
    return definitions if named == more else None


def _constraints(schema: Schema, table: str) -> dict[str, dict[str, str]]:
    return {
        item.name: item.attrs
        for item in schema.items.values()
        if item.kind == "constraint" and item.table == table
    }


def _top_level_split(text: str) -> list[str]:
    """``a TEXT, b DECIMAL(10, 2) DEFAULT 'x,y'`` -> the two definitions: split at the commas
    outside parentheses and quotes."""
    parts: list[str] = []
    depth, quote_char, start = 0, "", 0
    for at, char in enumerate(text):
        if quote_char:
            if char == quote_char:
                quote_char = ""
        elif char in "'\"`[":
            quote_char = "]" if char == "[" else char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:at].strip())
            start = at + 1
    parts.append(text[start:].strip())
    return parts


def _first_name(definition: str) -> str:
    """The column name a definition starts with, unquoted."""
    head = _TABLE_NAME.match(definition)
    if head is None:
        return ""
    name = head.group(0)
    if name[0] in '"`[':
        name = name[1:-1].replace('""', '"') if name[0] == '"' else name[1:-1]
    return name


def _rebuild(live: Schema, expected: Schema, source: Source) -> list[str]:
    """``new_<table>`` from the live text, the shared columns copied, the old one dropped,
    the new one renamed, its live indexes and triggers made again."""
    table = source.name
    new = f"new_{table}"
    head = _TABLE_HEAD.match(source.sql)
    if head is None:
        raise SqlNotSupported(f"drift --sql: cannot read the CREATE TABLE text of {table}")
    create = source.sql[: head.start(2)] + quote(new) + source.sql[head.end(2) :]
    live_columns = _columns(live, table)
    kept = [
        name
        for name in _columns(expected, table)
        if name in live_columns and "generated" not in live_columns[name].attrs
    ]
    out = [_statement(create)]
    if kept:
        names = ", ".join(quote(c) for c in kept)
        out.append(f"INSERT INTO {quote(new)} ({names}) SELECT {names} FROM {quote(table)};")
    out += [
        f"DROP TABLE {quote(table)};",
        f"ALTER TABLE {quote(new)} RENAME TO {quote(table)};",
        *_belongings(live, table),
    ]
    return out


def _columns(schema: Schema, table: str) -> dict[str, Item]:
    """The table's columns by name, in the table's order."""
    prefix = table + "."
    return {
        item.name[len(prefix) :]: item
        for (kind, _), item in schema.items.items()
        if kind == "column" and item.table == table
    }


def _belongings(live: Schema, table: str) -> list[str]:
    """The live indexes and triggers of ``table``, in the order they were made."""
    return [
        _statement(s.sql)
        for s in live.sources
        if s.table == table and s.type in ("index", "trigger")
    ]


def _statement(sql: str) -> str:
    return sql.strip().rstrip(";") + ";"
