"""The census of a database: every table's row count and every column's non-null count.

Backups are verified by comparing the census of the original with that of a restored copy;
rehearsals measure what a migration loses by comparing the census before and after it on a
copy. One scan per table (``count(*)`` and ``count(col)`` for every column in one query),
never one query per column; small tables also get a content checksum, so a restore that
kept the counts but changed values is caught too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reconciler.db.connection import Queryable

CHECKSUM_MAX_ROWS = 10_000
"""Tables up to this many rows (by the planner's estimate) get a content checksum."""
TOOL_TABLES = frozenset({"_prisma_migrations", "alembic_version"})


@dataclass(frozen=True)
class TableCensus:
    rows: int
    non_null: dict[str, int] = field(default_factory=dict)
    checksum: str | None = None


@dataclass(frozen=True)
class Census:
    tables: dict[str, TableCensus] = field(default_factory=dict)

    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables.values())

    def to_json(self) -> dict[str, object]:
        return {
            name: {"rows": t.rows, "non_null": t.non_null, "checksum": t.checksum}
            for name, t in sorted(self.tables.items())
        }


@dataclass(frozen=True)
class Loss:
    """Data present before and gone after: rows of a table, or values of a column."""

    table: str
    column: str | None
    amount: int
    kind: str
    """``rows-deleted``, ``table-dropped``, ``values-lost`` or ``column-dropped``."""

    def describe(self) -> str:
        rows = f"{self.amount:,} row{'' if self.amount == 1 else 's'}"
        values = f"{self.amount:,} non-null value{'' if self.amount == 1 else 's'}"
        if self.kind == "table-dropped":
            return f"{self.table}: table dropped with {rows}"
        if self.kind == "rows-deleted":
            return f"{self.table}: {rows} deleted"
        if self.kind == "column-dropped":
            return f"{self.table}.{self.column}: column dropped with {values}"
        return f"{self.table}.{self.column}: {values} dropped"


def take_census(db: Queryable, *, checksums: bool = True, like: Census | None = None) -> Census:
    """The census of ``db``. With ``like``, checksum exactly the tables ``like`` has
    checksums for, so two censuses compare cell for cell (a fresh restore has no
    statistics yet)."""
    tables: dict[str, TableCensus] = {}
    for name, columns, estimate in _tables(db):
        if like is not None:
            wanted = name in like.tables and like.tables[name].checksum is not None
        else:
            wanted = checksums and 0 <= estimate <= CHECKSUM_MAX_ROWS
        tables[name] = _count(db, name, columns, wanted)
    return Census(tables)


def holds_rows(db: Queryable, ignore: Iterable[str] = TOOL_TABLES) -> bool:
    """Whether any table of ``db`` (the migration tools' own tables aside) holds a row: one
    query, each table read up to its first row."""
    skipped = set(ignore)
    names = [name for name, _, _ in _tables(db) if name not in skipped]
    if not names:
        return False
    probes = " OR ".join(f"EXISTS (SELECT 1 FROM {_target(db, name)})" for name in names)
    return bool(db.query(f"SELECT CASE WHEN {probes} THEN 1 ELSE 0 END")[0][0])


def tables_holding_rows(db: Queryable, ignore: Iterable[str] = TOOL_TABLES) -> list[str]:
    """The tables of ``db`` (the migration tools' own aside) that hold a row: one query,
    each table read up to its first row."""
    skipped = set(ignore)
    names = [name for name, _, _ in _tables(db) if name not in skipped]
    if not names:
        return []
    probes = ", ".join(f"EXISTS (SELECT 1 FROM {_target(db, name)})" for name in names)
    flags = db.query(f"SELECT {probes}")[0]
    return [name for name, held in zip(names, flags, strict=True) if held]


def losses(before: Census, after: Census, ignore: Iterable[str] = TOOL_TABLES) -> list[Loss]:
    """What ``after`` no longer holds of ``before``: rows and non-null values."""
    skipped = set(ignore)
    found: list[Loss] = []
    for name, old in sorted(before.tables.items()):
        if name in skipped:
            continue
        new = after.tables.get(name)
        if new is None:
            if old.rows:
                found.append(Loss(name, None, old.rows, "table-dropped"))
            continue
        deleted = max(old.rows - new.rows, 0)
        if deleted:
            found.append(Loss(name, None, deleted, "rows-deleted"))
        for column, count in sorted(old.non_null.items()):
            if column not in new.non_null:
                if count:
                    found.append(Loss(name, column, count, "column-dropped"))
            elif count - new.non_null[column] > deleted:
                # Values gone beyond what the deleted rows took with them: nulled in place.
                lost = count - new.non_null[column] - deleted
                found.append(Loss(name, column, lost, "values-lost"))
    return found


def deleted_tuples(db: Queryable) -> dict[str, int]:
    """PostgreSQL's own count of the rows this session deleted from each table and has not
    yet reported (this transaction's, and earlier ones' until the next report): read before
    and after a script, the difference is what the script deleted, cascades and DO blocks
    included, without scanning anything."""
    # The counter alone, for tables only: a third of the cost of pg_stat_xact_user_tables,
    # which computes a dozen counters for every relation.
    rows = db.query(
        "SELECT n.nspname, c.relname, pg_stat_get_xact_tuples_deleted(c.oid) FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') "
        "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND NOT starts_with(n.nspname, 'pg_toast') "
        "AND pg_stat_get_xact_tuples_deleted(c.oid) > 0"
    )
    return {(t if s == "public" else f"{s}.{t}"): int(n) for s, t, n in rows}


def differences(a: Census, b: Census) -> list[str]:
    """Every way two censuses disagree, for backup verification (empty: identical)."""
    problems: list[str] = []
    for name in sorted(set(a.tables) | set(b.tables)):
        left, right = a.tables.get(name), b.tables.get(name)
        if left is None or right is None:
            problems.append(f"{name}: only in the {'copy' if left is None else 'original'}")
            continue
        if left.rows != right.rows:
            problems.append(f"{name}: {left.rows:,} rows, copy has {right.rows:,}")
        for column in sorted(set(left.non_null) | set(right.non_null)):
            x, y = left.non_null.get(column), right.non_null.get(column)
            if x != y:
                problems.append(f"{name}.{column}: {x} non-null values, copy has {y}")
        if left.checksum and right.checksum and left.checksum != right.checksum:
            problems.append(f"{name}: contents differ (checksum)")
    return problems


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _tables(db: Queryable) -> list[tuple[str, list[str], int]]:
    if db.dialect == "postgresql":
        rows = db.query(
            "SELECT n.nspname, c.relname, array_agg(a.attname ORDER BY a.attnum), "
            "max(c.reltuples)::bigint FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', "
            "'information_schema') AND NOT starts_with(n.nspname, 'pg_') "
            "GROUP BY n.nspname, c.relname ORDER BY 1, 2"
        )
        return [
            (t if s == "public" else f"{s}.{t}", list(cols), int(est)) for s, t, cols, est in rows
        ]
    names = [
        r[0]
        for r in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' "
            "AND substr(name, 1, 7) <> 'sqlite_' ORDER BY name"
        )
    ]
    return [(n, [r[1] for r in db.query(f"PRAGMA table_info({_quote(n)})")], 0) for n in names]


def _target(db: Queryable, name: str) -> str:
    """A census name (``t``, ``schema.t``) quoted for SQL."""
    return qualified(name) if db.dialect == "postgresql" else _quote(name)


def qualified(name: str) -> str:
    """A census name (``t``, ``schema.t``) quoted for PostgreSQL, its schema always named."""
    schema, _, table = name.rpartition(".")
    return f"{_quote(schema or 'public')}.{_quote(table)}"


def _count(db: Queryable, name: str, columns: list[str], checksum: bool) -> TableCensus:
    target = _target(db, name)
    terms = ["count(*)"] + [f"count({_quote(c)})" for c in columns]
    if checksum and db.dialect == "postgresql":
        terms.append(f"md5(string_agg(t::text, '|' ORDER BY t::text)) FROM {target} AS t")
        row = db.query(f"SELECT {', '.join(terms)}")[0]
        digest = row[-1] or hashlib.md5(b"", usedforsecurity=False).hexdigest()
        values = row[:-1]
    else:
        values = db.query(f"SELECT {', '.join(terms)} FROM {target}")[0]
        digest = _sqlite_checksum(db, target) if checksum else None
    return TableCensus(
        int(values[0]), {c: int(v) for c, v in zip(columns, values[1:], strict=True)}, digest
    )


def _sqlite_checksum(db: Queryable, target: str) -> str | None:
    rows = db.query(f"SELECT * FROM {target}")
    if len(rows) > CHECKSUM_MAX_ROWS:
        return None
    digest = hashlib.md5(usedforsecurity=False)
    for text in sorted(repr(r) for r in rows):
        digest.update(text.encode())
    return digest.hexdigest()
