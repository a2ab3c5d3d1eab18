"""A database's schema read into comparable records, the same way for the live database and
for the copy its migrations built, so that every difference between two readings is drift.

Each object (table, column, index, constraint, enum, sequence, view, extension) becomes one
``Item``: a kind, a name unique within that kind, the table it belongs to, and its
attributes as text. PostgreSQL gives canonical text for the parts that are hard to compare
(``format_type``, ``pg_get_expr``, ``pg_get_indexdef``, ``pg_get_constraintdef``,
``pg_get_viewdef``), so two databases built by the same statements read exactly alike.
SQLite is read from ``sqlite_master`` and its pragmas (``catalog_sqlite``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.db.connection import Queryable

TOOL_TABLES = frozenset({"_prisma_migrations", "alembic_version"})
"""The migration tools' own history tables: they differ by design (timestamps, logs)."""


@dataclass(frozen=True)
class Item:
    """One schema object as the comparison sees it."""

    kind: str
    """``table``, ``column``, ``index``, ``constraint``, ``enum``, ``sequence``, ``view``,
    ``extension``."""
    name: str
    """Unique within the kind: ``users``, ``users.email``, ``users.users_pkey``."""
    table: str | None = None
    """The table it belongs to (columns, indexes, constraints, owned sequences)."""
    attrs: dict[str, str] = field(default_factory=dict)
    """What is compared, by name: ``type``, ``nullable``, ``default``, ``definition``..."""
    label: str = ""
    """How a person names it, when the kind and name alone do not say it well."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


@dataclass(frozen=True)
class Source:
    """One object's SQL as SQLite keeps it in ``sqlite_master``: what ``drift --sql`` writes
    back for a SQLite table it creates or rebuilds (SQLite can say a table only by the text
    that created it)."""

    type: str
    """``table``, ``index``, ``view`` or ``trigger``."""
    name: str
    table: str
    sql: str


@dataclass(frozen=True)
class Schema:
    """Every item of one database, by (kind, name)."""

    items: dict[tuple[str, str], Item]
    sources: tuple[Source, ...] = field(default=(), compare=False)
    """SQLite: ``sqlite_master``'s objects in the order they were made (none on
    PostgreSQL, whose catalog gives canonical definitions item by item)."""

    @classmethod
    def of(
        cls,
        items: Iterable[Item],
        ignore_tables: Iterable[str] = (),
        sources: Iterable[Source] = (),
    ) -> Schema:
        ignored = TOOL_TABLES | set(ignore_tables)
        kept = {
            item.key: item
            for item in items
            if item.table not in ignored and not (item.kind == "table" and item.name in ignored)
        }
        return cls(kept, tuple(s for s in sources if s.table not in ignored))


def read_schema(db: Queryable, ignore_tables: Iterable[str] = ()) -> Schema:
    """The schema of ``db`` (PostgreSQL or SQLite), without the tools' own tables and
    ``ignore_tables`` (the ledger's, when it lives in the same database)."""
    if db.dialect == "sqlite":
        from reconciler.drift.catalog_sqlite import sqlite_items, sqlite_sources

        return Schema.of(sqlite_items(db), ignore_tables, sqlite_sources(db))
    return Schema.of(postgres_items(db), ignore_tables)


def qualified(schema: str, name: str) -> str:
    """``name`` in the default ``public`` schema, ``schema.name`` elsewhere."""
    return name if schema == "public" else f"{schema}.{name}"


# Objects a person made: not the system's, and not an extension's members (an extension's
# own tables and types come and go with the extension, which is compared by itself).
_USER_SCHEMA = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') "
    "AND NOT starts_with(n.nspname, 'pg_toast') AND NOT starts_with(n.nspname, 'pg_temp')"
)


def _not_extension_member(catalog: str, oid: str) -> str:
    return (
        f"NOT EXISTS (SELECT 1 FROM pg_depend e WHERE e.classid = '{catalog}'::regclass "
        f"AND e.objid = {oid} AND e.deptype = 'e')"
    )


_TABLES = (
    "SELECT n.nspname, c.relname, c.relkind, c.relpersistence FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE c.relkind IN ('r', 'p', 'f') AND {_USER_SCHEMA} "
    f"AND NOT c.relispartition AND {_not_extension_member('pg_class', 'c.oid')}"
)
_COLUMNS = (
    "SELECT n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod), "
    "a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attgenerated, a.attidentity, "
    "CASE WHEN a.attcollation <> t.typcollation THEN co.collname END "
    "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "JOIN pg_type t ON t.oid = a.atttypid "
    "LEFT JOIN pg_collation co ON co.oid = a.attcollation "
    "LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
    "WHERE c.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped "
    f"AND NOT c.relispartition AND {_USER_SCHEMA} AND {_not_extension_member('pg_class', 'c.oid')} "
    "ORDER BY n.nspname, c.relname, a.attnum"  # the table's order, for ``drift --sql``
)
# Indexes that back a primary key, unique or exclusion constraint are read as that
# constraint: one object, said once.
_INDEXES = (
    "SELECT n.nspname, t.relname, i.relname, pg_get_indexdef(i.oid) FROM pg_index x "
    "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid "
    "JOIN pg_namespace n ON n.oid = i.relnamespace "
    f"WHERE t.relkind IN ('r', 'p', 'm') AND {_USER_SCHEMA} AND NOT t.relispartition "
    f"AND {_not_extension_member('pg_class', 't.oid')} "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = x.indexrelid "
    "AND k.conrelid = x.indrelid AND k.contype IN ('p', 'u', 'x'))"
)
_CONSTRAINTS = (
    "SELECT n.nspname, t.relname, k.conname, k.contype, pg_get_constraintdef(k.oid) "
    "FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid "
    "JOIN pg_namespace n ON n.oid = t.relnamespace "
    f"WHERE k.contype IN ('p', 'f', 'c', 'u', 'x') AND {_USER_SCHEMA} "
    f"AND NOT t.relispartition AND {_not_extension_member('pg_class', 't.oid')} "
    "AND k.conparentid = 0"
)
_ENUMS = (
    "SELECT n.nspname, t.typname, coalesce(string_agg(quote_literal(e.enumlabel), ', ' "
    "ORDER BY e.enumsortorder), '') FROM pg_type t "
    "LEFT JOIN pg_enum e ON e.enumtypid = t.oid "
    f"JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.typtype = 'e' AND {_USER_SCHEMA} "
    f"AND {_not_extension_member('pg_type', 't.oid')} GROUP BY n.nspname, t.typname"
)
# An owned sequence (serial, identity) belongs to its table: dropped with it, and ignored
# with it when the table is a tool's.
_SEQUENCES = (
    "SELECT n.nspname, c.relname, format_type(s.seqtypid, NULL), s.seqstart, s.seqincrement, "
    "s.seqmin, s.seqmax, s.seqcache, s.seqcycle, o.relname FROM pg_sequence s "
    "JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = c.oid "
    "AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
    "LEFT JOIN pg_class o ON o.oid = d.refobjid "
    f"WHERE {_USER_SCHEMA} AND {_not_extension_member('pg_class', 'c.oid')}"
)
_VIEWS = (
    "SELECT n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid, true) FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    f"WHERE c.relkind IN ('v', 'm') AND {_USER_SCHEMA} "
    f"AND {_not_extension_member('pg_class', 'c.oid')}"
)
_EXTENSIONS = (
    "SELECT x.extname, n.nspname FROM pg_extension x JOIN pg_namespace n ON n.oid = x.extnamespace"
)
_CONSTRAINT_KINDS = {
    "p": "primary key",
    "f": "foreign key",
    "c": "check constraint",
    "u": "unique constraint",
    "x": "exclusion constraint",
}


def postgres_items(db: Queryable) -> list[Item]:
    """Every object of a PostgreSQL database, by one query per kind."""
    items: list[Item] = []
    for schema, name, relkind, persistence in db.query(_TABLES):
        table = qualified(schema, name)
        attrs = {"kind": {"r": "table", "p": "partitioned table", "f": "foreign table"}[relkind]}
        attrs["logging"] = "unlogged" if persistence == "u" else "logged"
        items.append(Item("table", table, table, attrs))
    for row in db.query(_COLUMNS):
        schema, name, column, type_, notnull, default, generated, identity, collation = row
        table = qualified(schema, name)
        attrs = {"type": type_, "nullable": "NOT NULL" if notnull else "nullable"}
        if generated:
            attrs["generated"] = f"GENERATED ALWAYS AS ({default}) STORED"
        elif default is not None:
            attrs["default"] = default
        if identity:
            attrs["identity"] = "ALWAYS" if identity == "a" else "BY DEFAULT"
        if collation:
            attrs["collation"] = collation
        items.append(Item("column", f"{table}.{column}", table, attrs))
    for schema, name, index, definition in db.query(_INDEXES):
        table = qualified(schema, name)
        items.append(
            Item(
                "index",
                qualified(schema, index),
                table,
                {"definition": definition},
                f"{table}: index {index}",
            )
        )
    for schema, name, constraint, contype, definition in db.query(_CONSTRAINTS):
        table = qualified(schema, name)
        label = f"{table}: {_CONSTRAINT_KINDS[contype]} {constraint}"
        items.append(
            Item("constraint", f"{table}.{constraint}", table, {"definition": definition}, label)
        )
    for schema, name, values in db.query(_ENUMS):
        enum = qualified(schema, name)
        items.append(Item("enum", enum, None, {"values": values}, f"enum {enum}"))
    for row in db.query(_SEQUENCES):
        schema, name, type_, start, step, low, high, cache, cycle, owner = row
        attrs = {
            "type": type_, "start": str(start), "increment": str(step), "minimum": str(low),
            "maximum": str(high), "cache": str(cache), "cycle": "CYCLE" if cycle else "NO CYCLE",
        }  # fmt: skip
        owner_table = qualified(schema, owner) if owner else None
        sequence = qualified(schema, name)
        items.append(Item("sequence", sequence, owner_table, attrs, f"sequence {sequence}"))
    for schema, name, relkind, definition in db.query(_VIEWS):
        view = qualified(schema, name)
        kind = "materialized view" if relkind == "m" else "view"
        items.append(Item("view", view, None, {"definition": definition}, f"{kind} {view}"))
    for name, schema in db.query(_EXTENSIONS):
        items.append(Item("extension", name, None, {"schema": schema}, f"extension {name}"))
    return items
