"""A SQLite database's schema as comparable records: tables and views from ``sqlite_master``,
columns from ``pragma table_xinfo``, indexes from ``pragma index_list`` and ``index_xinfo``,
foreign keys from ``pragma foreign_key_list``.

SQLite keeps no catalog of CHECK constraints (they live only in the ``CREATE TABLE`` text,
which a table rebuild rewrites), so they are not compared here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from reconciler.drift.catalog import Item, Source

if TYPE_CHECKING:
    from reconciler.db.connection import Queryable


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _spaced(sql: str) -> str:
    return " ".join(sql.split())


def sqlite_items(db: Queryable) -> list[Item]:
    items: list[Item] = []
    objects = db.query(
        "SELECT type, name, tbl_name, sql FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY type, name"
    )
    for kind, name, _, sql in objects:
        if kind == "table":
            items.append(Item("table", name, name, {"kind": "table"}))
            items.extend(_columns(db, name))
            items.extend(_indexes(db, name))
            items.extend(_foreign_keys(db, name))
        elif kind == "view":
            items.append(Item("view", name, None, {"definition": _spaced(sql)}, f"view {name}"))
    return items


def sqlite_sources(db: Queryable) -> list[Source]:
    """Every object's SQL in ``sqlite_master``, oldest first (a view after what it reads);
    not the indexes SQLite makes for a table's own keys, which have none."""
    return [
        Source(str(kind), str(name), str(table), str(sql))
        for kind, name, table, sql in db.query(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
        )
    ]


def _columns(db: Queryable, table: str) -> list[Item]:
    items: list[Item] = []
    rows = db.query(f"PRAGMA table_xinfo({_quoted(table)})")
    key = [r for r in rows if r[5]]
    for _, name, type_, notnull, default, pk, hidden in rows:
        if hidden == 1:
            continue  # a virtual table's hidden column
        attrs = {"type": str(type_).upper(), "nullable": "NOT NULL" if notnull else "nullable"}
        if default is not None:
            attrs["default"] = str(default)
        if hidden in (2, 3):
            attrs["generated"] = f"generated ({'virtual' if hidden == 2 else 'stored'})"
        if pk and len(key) == 1:
            attrs["primary key"] = "PRIMARY KEY"
        items.append(Item("column", f"{table}.{name}", table, attrs))
    if len(key) > 1:
        columns = ", ".join(r[1] for r in sorted(key, key=lambda r: int(r[5])))
        items.append(
            Item("constraint", f"{table}.primary key", table,
                 {"definition": f"PRIMARY KEY ({columns})"}, f"{table}: primary key")
        )  # fmt: skip
    return items


def _indexes(db: Queryable, table: str) -> list[Item]:
    items: list[Item] = []
    sql_of = {
        name: sql
        for name, sql in db.query(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ?", (table,)
        )
    }
    for _, name, unique, origin, _partial in db.query(f"PRAGMA index_list({_quoted(table)})"):
        if origin == "pk":
            continue  # the primary key, read with the columns
        columns = []
        for row in db.query(f"PRAGMA index_xinfo({_quoted(name)})"):
            if not row[5]:
                continue  # the rowid SQLite adds to every index
            column = row[2] if row[2] is not None else "<expression>"
            columns.append(column + (" DESC" if row[3] else ""))
        attrs = {"unique": "UNIQUE" if unique else "not unique", "columns": ", ".join(columns)}
        sql = sql_of.get(name)
        if sql:
            attrs["definition"] = _spaced(sql)
        if origin == "u":
            label = f"{table}: unique constraint on ({attrs['columns']})"
            key = f"{table}.unique({attrs['columns']})"  # autoindex names follow order
            items.append(Item("constraint", key, table, {"unique": "UNIQUE"}, label))
        else:
            items.append(Item("index", name, table, attrs, f"{table}: index {name}"))
    return items


def _foreign_keys(db: Queryable, table: str) -> list[Item]:
    by_id: dict[int, list[tuple[object, ...]]] = {}
    for row in db.query(f"PRAGMA foreign_key_list({_quoted(table)})"):
        by_id.setdefault(int(row[0]), []).append(tuple(row))
    items: list[Item] = []
    for rows in by_id.values():
        rows.sort(key=lambda r: int(str(r[1])))
        parent = str(rows[0][2])
        local = ", ".join(str(r[3]) for r in rows)
        remote = ", ".join(str(r[4]) for r in rows if r[4] is not None)
        on_update, on_delete = rows[0][5], rows[0][6]
        definition = (
            f"FOREIGN KEY ({local}) REFERENCES {parent}({remote}) "
            f"ON UPDATE {on_update} ON DELETE {on_delete}"
        )
        label = f"{table}: foreign key ({local}) to {parent}"
        items.append(
            Item("constraint", f"{table}.foreign key({local})->{parent}", table,
                 {"definition": definition}, label)
        )  # fmt: skip
    return items
