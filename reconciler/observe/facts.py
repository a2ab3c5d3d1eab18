"""Live facts about the tables a migration touches: rows, non-null values, duplicates.

The safety rules ask precise questions ("how many non-null values would this drop lose?",
"how many rows would violate this unique index?"). ``FactsRequest`` collects every question
about one table; ``gather_facts`` answers them with one catalog query for all tables and
one scan per table, never one query per column or per statement. The one exception is an
UPDATE's assignment, measured by a SELECT of its own (``measure_rewrite``): it groups the
table by the new value, which no shared scan can do; a type change's ``USING`` expression is
measured the same way (``measure_conversion``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from reconciler.errors import DatabaseError, DatabaseUnavailable
from reconciler.observe.figures import CONVERSION_FIGURES, REWRITE_FIGURES

if TYPE_CHECKING:
    from reconciler.db.connection import Database


Rewrite = tuple[str, str, str, str, tuple[tuple[str, str, str], ...]]
"""An UPDATE's assignment to measure: (column, new value, table with alias, WHERE, and each
cast in the new value as (argument, type, type's name)), all SQL."""


@dataclass
class TableRequest:
    non_null: set[str] = field(default_factory=set)
    """Columns whose non-null values are counted."""
    every_column: bool = False
    """Count non-null values of every column (a table rebuilt by copying some columns)."""
    nulls: set[str] = field(default_factory=set)
    """Columns whose NULLs are counted (SET NOT NULL)."""
    unique: set[tuple[str, ...]] = field(default_factory=set)
    """Column sets whose duplicate rows are counted (unique index or constraint)."""
    longer_than: set[tuple[str, int]] = field(default_factory=set)
    """(column, n): rows whose text is longer than n characters (varchar(n))."""
    fractional: set[str] = field(default_factory=set)
    """Columns with values an integer cannot hold exactly."""
    outside: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    out_of_range: set[tuple[str, int]] = field(default_factory=set)
    """(column, size): values outside smallint (1), integer (2) or bigint (3)."""
    """(column, labels): rows whose value is none of the labels (enum recreation)."""
    inside: set[tuple[str, tuple[str, ...]]] = field(default_factory=set)
    """(column, labels): rows whose value is one of the labels (an enum's values folded or
    removed by a ``CASE`` mapping)."""
    rewrites: set[Rewrite] = field(default_factory=set)
    """(column, new value, table with alias, WHERE, casts) of an UPDATE, as SQL: measured by
    a SELECT of its own (``measure_rewrite``)."""
    conversions: set[tuple[str, str, str, str]] = field(default_factory=set)
    """(column, USING expression, new type, its name) of an ``ALTER COLUMN ... TYPE``, as
    SQL: measured by a SELECT of its own (``measure_conversion``)."""
    misfit: set[tuple[str, str]] = field(default_factory=set)
    """(column, type): values that would change in ``type``, a ``numeric(p, s)`` or a time
    type (``timestamp(3)``, ``timestamp``, ``date``...), counted only from a column of the
    same family."""


@dataclass
class FactsRequest:
    tables: dict[str, TableRequest] = field(default_factory=dict)
    enums: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)
    """Function names to look up: which of them are aggregates."""

    def table(self, name: str) -> TableRequest:
        return self.tables.setdefault(name, TableRequest())


@dataclass(frozen=True)
class TableFacts:
    exists: bool
    rows: int = 0
    size_bytes: int = 0
    columns: dict[str, str] = field(default_factory=dict)
    """Column name → type name as the catalog spells it (``int4``, ``varchar``, an enum)."""
    counts: dict[tuple[Any, ...], int] = field(default_factory=dict)
    """Answers keyed like the questions: ("non_null", col), ("nulls", col),
    ("unique", cols), ("longer_than", col, n), ("fractional", col), ("outside", col, labels)."""
    lengths: dict[str, int] = field(default_factory=dict)
    """Declared length limits: ``varchar(20)`` → 20."""
    typmods: dict[str, int] = field(default_factory=dict)
    """``pg_attribute.atttypmod`` of each column that has one (a length, a precision)."""


@dataclass(frozen=True)
class Facts:
    tables: dict[str, TableFacts] = field(default_factory=dict)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Live enum types and their labels."""
    aggregates: frozenset[str] = frozenset()
    """Which of the requested function names are aggregates on the live server."""

    def table(self, name: str) -> TableFacts | None:
        return self.tables.get(name)


def gather_facts(db: Database, request: FactsRequest, *, statement_timeout: float = 600.0) -> Facts:
    """Answer ``request`` from the live database (read-only). ``statement_timeout`` bounds
    each SELECT that measures an UPDATE (the target's own statement timeout)."""
    if not request.tables and not request.enums and not request.functions:
        return Facts()
    typmods: dict[str, dict[str, int]] = {}
    formatted: dict[str, dict[str, str]] = {}
    catalog = _catalog(db, list(request.tables), typmods, formatted)
    tables: dict[str, TableFacts] = {}
    for name, wanted in request.tables.items():
        columns, size, lengths = catalog.get(name, ({}, 0, {}))
        if not columns:
            tables[name] = TableFacts(exists=False)
            continue
        scanned = _scan(db, name, wanted, columns, size)
        counts = dict(scanned.counts)
        if scanned.rows > 0:
            typed = {**columns, **formatted.get(name, {})}
            for rewrite in sorted(wanted.rewrites):
                counts.update(measure_rewrite(db, columns, rewrite, statement_timeout, typed))
            for conversion in sorted(wanted.conversions):
                counts.update(measure_conversion(db, name, columns, conversion, statement_timeout))
        tables[name] = TableFacts(
            scanned.exists,
            scanned.rows,
            size,
            columns,
            counts=counts,
            lengths=lengths,
            typmods=typmods.get(name, {}),
        )
    enums = _enums(db, request.enums) if db.dialect == "postgresql" and request.enums else {}
    aggregates: frozenset[str] = frozenset()
    if db.dialect == "postgresql" and request.functions:
        aggregates = _aggregates(db, request.functions)
    return Facts(tables, enums, aggregates)


def _split(name: str) -> tuple[str, str]:
    schema, _, table = name.rpartition(".")
    return schema or "public", table


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _qualified(name: str) -> str:
    schema, table = _split(name)
    return f"{_quote(schema)}.{_quote(table)}"


Catalog = dict[str, tuple[dict[str, str], int, dict[str, int]]]


def _catalog(
    db: Database,
    names: list[str],
    typmods: dict[str, dict[str, int]],
    formatted: dict[str, dict[str, str]],
) -> Catalog:
    """Columns, size and length limits of each table; ``typmods`` gets each column's
    ``atttypmod``, ``formatted`` its type as SQL with its limits (``format_type``:
    ``character varying(5)``), PostgreSQL only."""
    found: Catalog = {}
    if db.dialect == "postgresql":
        pairs = [_split(n) for n in names]
        rows = db.query(
            "SELECT n.nspname, c.relname, a.attname, t.typname, "
            "pg_total_relation_size(c.oid), "
            "CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 "
            "THEN a.atttypmod - 4 END, a.atttypmod, format_type(a.atttypid, a.atttypmod) "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "JOIN pg_type t ON t.oid = a.atttypid "
            "WHERE c.relkind IN ('r', 'p') AND (n.nspname, c.relname) IN "
            "(SELECT * FROM unnest(%s::text[], %s::text[]))",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )
        for schema, table, column, type_name, size, length, typmod, full in rows:
            key = table if schema == "public" else f"{schema}.{table}"
            columns, _, lengths = found.setdefault(key, ({}, int(size), {}))
            columns[column] = type_name
            formatted.setdefault(key, {})[column] = full
            if typmod is not None and int(typmod) >= 0:
                typmods.setdefault(key, {})[column] = int(typmod)
            if length is not None:
                lengths[column] = int(length)
        return found
    for name in names:
        rows = db.query(f"SELECT name, type FROM pragma_table_info({db.param})", (name,))
        if rows:
            found[name] = ({r[0]: str(r[1]).lower() for r in rows}, 0, {})
    return found


def _scan(
    db: Database, name: str, wanted: TableRequest, columns: dict[str, str], size: int
) -> TableFacts:
    """One query over the table answering every question about it."""
    terms: list[str] = ["count(*)"]
    keys: list[tuple[Any, ...]] = []

    def ask(key: tuple[Any, ...], sql: str) -> None:
        keys.append(key)
        terms.append(sql)

    text_cast = "::text" if db.dialect == "postgresql" else ""
    counted = set(columns) if wanted.every_column else wanted.non_null
    for col in sorted(c for c in counted if c in columns):
        ask(("non_null", col), f"count({_quote(col)})")
    for col in sorted(c for c in wanted.nulls if c in columns):
        ask(("nulls", col), f"count(*) - count({_quote(col)})")
    for cols in sorted(wanted.unique):
        if not all(c in columns for c in cols):
            continue
        present = " AND ".join(f"{_quote(c)} IS NOT NULL" for c in cols)
        if db.dialect == "postgresql":
            tuple_sql = "(" + ", ".join(_quote(c) for c in cols) + ")"
            if len(cols) == 1:
                tuple_sql = _quote(cols[0])
            ask(
                ("unique", cols),
                f"count(*) FILTER (WHERE {present}) - "
                f"count(DISTINCT {tuple_sql}) FILTER (WHERE {present})",
            )
        else:
            group = ", ".join(_quote(c) for c in cols)
            ask(
                ("unique", cols),
                f"(SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n "
                f"FROM {_quote(name)} WHERE {present} GROUP BY {group}))",
            )
    for col, length in sorted(wanted.longer_than):
        if col in columns:
            ask(
                ("longer_than", col, length),
                _count_where(db, f"length({_quote(col)}{text_cast}) > {int(length)}"),
            )
    for col in sorted(c for c in wanted.fractional if c in columns):
        whole = _not_whole(db, col, columns[col])
        ask(("fractional", col), _count_where(db, f"{_quote(col)} IS NOT NULL AND {whole}"))
    for col, size in sorted(wanted.out_of_range):
        if col in columns and _numeric(columns[col]):
            low, high = _INTEGER_RANGES[size]
            ask(
                ("out_of_range", col, size),
                _count_where(db, f"{_quote(col)} NOT BETWEEN {low} AND {high}"),
            )
    for col, labels in sorted(wanted.outside):
        if col in columns:
            listed = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
            ask(
                ("outside", col, labels),
                _count_where(
                    db, f"{_quote(col)} IS NOT NULL AND {_quote(col)}{text_cast} NOT IN ({listed})"
                ),
            )
    for col, labels in sorted(wanted.inside):
        if col in columns:
            listed = ", ".join("'" + label.replace("'", "''") + "'" for label in labels)
            ask(
                ("inside", col, labels),
                _count_where(db, f"{_quote(col)}{text_cast} IN ({listed})") if labels else "0",
            )
    for col, type_sql in sorted(wanted.misfit):
        changed = _misfit(db, col, columns.get(col, ""), type_sql)
        if changed:
            ask(("misfit", col, type_sql), _count_where(db, changed))
    target = _qualified(name) if db.dialect == "postgresql" else _quote(name)
    try:
        row = db.query(f"SELECT {', '.join(terms)} FROM {target}")[0]
    except DatabaseError:
        return TableFacts(exists=True, size_bytes=size, columns=columns, rows=-1)
    counts = {key: int(value or 0) for key, value in zip(keys, row[1:], strict=True)}
    return TableFacts(True, int(row[0]), size, columns, counts=counts)


_INTEGER_RANGES = {1: (-(2**15), 2**15 - 1), 2: (-(2**31), 2**31 - 1), 3: (-(2**63), 2**63 - 1)}


def _numeric(type_name: str) -> bool:
    return type_name.lower() in {
        "int2",
        "int4",
        "int8",
        "numeric",
        "float4",
        "float8",
        "money",
        "integer",
        "real",
        "decimal",
    }


def _not_whole(db: Database, col: str, type_name: str) -> str:
    """SQL true for a value an integer column cannot hold exactly."""
    quoted = _quote(col)
    if db.dialect == "sqlite":
        return f"CAST({quoted} AS INTEGER) <> {quoted}"
    if type_name.lower() in {"int2", "int4", "int8"}:
        return "false"
    if _numeric(type_name):
        return f"{quoted} <> trunc({quoted})"
    return f"{quoted}::text !~ '^\\s*[-+]?[0-9]+\\s*$'"


_CASTABLE = {
    "text",
    "varchar",
    "bpchar",
    "int2",
    "int4",
    "int8",
    "numeric",
    "float4",
    "float8",
    "bool",
    "date",
    "timestamp",
    "timestamptz",
    "uuid",
    "json",
    "jsonb",
}
_LEAVES = (
    'jsonb_path_query_array({}, \'strict $.** ? (@.type() != "object" && @.type() != "array")\')'
)


class _RolledBack(Exception):
    """Ends the measuring transaction with a ROLLBACK."""


def measure_rewrite(
    db: Database,
    columns: dict[str, str],
    rewrite: Rewrite,
    timeout: float,
    typed: dict[str, str] | None = None,
) -> dict[tuple[Any, ...], int]:
    """Run an UPDATE's assignment as a SELECT and count what it would destroy.

    The SELECT runs in a READ ONLY transaction under ``timeout``: whatever the expression
    calls, it can change nothing (PostgreSQL refuses writes, even ``nextval``), and it
    cannot outlast the statement timeout. An expression that fails or times out answers
    nothing: the rule then falls back to the column's non-null count.

    ``cut`` counts the rows where a cast of the new value or its assignment to the
    column's type (``rewrite``'s last part: argument, type, type's name; an empty type is
    the column's own) changes what it was given: ``amount::int`` rounds 19.99 to 20 without
    making two values one. Each is compared with its argument in the type without limits
    (``_CUT_BASE``); ``typed`` gives each column's type with its limits (``varchar(5)``),
    else its name is used."""
    column, value, source, where, casts = rewrite
    live = columns.get(column, "")
    if db.dialect != "postgresql" or not live:
        return {}
    json = live in ("json", "jsonb")
    was = _quote(column) + ("::jsonb" if json else "")
    full = (typed or {}).get(column) or live
    cast = f"::{full}" if live in _CASTABLE else ""
    new = f"({value}){cast}" + ("::jsonb" if json else "")
    cuts = [(arg, typ or full, name or live) for arg, typ, name in casts if typ or cast]
    cut = " OR ".join(t for arg, typ, name in cuts if (t := _cut(arg, typ, name))) or "false"
    if where:
        new = f"CASE WHEN ({where}) IS TRUE THEN {new} ELSE {was} END"
        cut = f"CASE WHEN ({where}) IS TRUE THEN {cut} ELSE false END"
    select = f"{was} AS was, {new} AS becomes, ({cut}) AS cut"
    row = _measure(db, select, source, timeout, json=json, cut=True)
    if row is None:
        return {}
    return {
        (figure, *rewrite): int(count or 0)
        for figure, count in zip(REWRITE_FIGURES, row, strict=True)
    }


_FAMILIES = (
    frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"}),
    frozenset({"text", "varchar", "bpchar"}),
    frozenset({"timestamp", "timestamptz", "date"}),
)
_CUT_BASE = {
    **dict.fromkeys(("int2", "int4", "int8", "numeric", "float4", "float8"), "numeric"),
    "varchar": "text",
    "bpchar": "text",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "date": "timestamp",
    "time": "time",
    "timetz": "timetz",
}
"""For a new type that can round or cut what it is given: the type, without limits, its
value is compared in with the expression's (``measure_conversion``'s ``cut``)."""


def measure_conversion(
    db: Database,
    table: str,
    columns: dict[str, str],
    conversion: tuple[str, str, str, str],
    timeout: float,
) -> dict[tuple[Any, ...], int]:
    """Run a type change's ``USING`` expression as a SELECT and count what it would destroy,
    as ``measure_rewrite`` does for an UPDATE (same transaction, same figures), and ``cut``:
    the rows whose expression's value the conversion to the new type changes.

    The old value and the new one are compared as they are when both types are of one
    family (numbers, texts, times), as text otherwise (``5`` and ``'5'`` are the same)."""
    column, using, type_sql, new_name = conversion
    live = columns.get(column, "")
    if db.dialect != "postgresql" or not live:
        return {}
    json = live in ("json", "jsonb") or new_name in ("json", "jsonb")
    suffix = "::jsonb" if json else ""
    was = _quote(column) + suffix
    becomes = f"(({using})::{type_sql}){suffix}"
    if not json and live != new_name and not any(live in f and new_name in f for f in _FAMILIES):
        was, becomes = f"{was}::text", f"{becomes}::text"
    test = _cut(using, type_sql, new_name)
    cut = f", ({test}) AS cut" if test else ""
    row = _measure(
        db, f"{was} AS was, {becomes} AS becomes{cut}", _qualified(table), timeout, json=json,
        cut=bool(test),
    )  # fmt: skip
    if row is None:
        return {}
    key = (column, using, type_sql, new_name, "USING")
    return {
        (figure, *key): int(count or 0)
        for figure, count in zip(CONVERSION_FIGURES, row, strict=True)
    }


def _cut(value: str, type_sql: str, type_name: str) -> str:
    """A test, true where casting ``value`` to ``type_sql`` changes it (rounds, truncates):
    both compared in the type without limits (``_CUT_BASE``); empty for a type that cannot
    cut what it holds."""
    base = _CUT_BASE.get(type_name)
    if not base:
        return ""
    return f"(({value})::{base} IS DISTINCT FROM (({value})::{type_sql})::{base})"


def _measure(
    db: Database, select: str, source: str, timeout: float, *, json: bool, cut: bool = False
) -> tuple[Any, ...] | None:
    """The figures of ``REWRITE_FIGURES`` (``cut``: 0 unless ``cut``) over ``select``,
    which names each row's old value ``was``, its new one ``becomes`` (and ``cut``), read
    from ``source``: None when the SELECT fails."""
    dropped = (
        "(SELECT count(*) FROM m WHERE was IS NOT NULL AND becomes IS NOT NULL AND NOT ("
        + _LEAVES.format("becomes")
        + " @> "
        + _LEAVES.format("was")
        + "))"
        if json
        else "0"
    )
    sql = (
        f"WITH m AS MATERIALIZED (SELECT {select} FROM {source}), "
        "g AS (SELECT becomes, count(DISTINCT was) AS olds, "
        "count(*) FILTER (WHERE was IS DISTINCT FROM becomes) AS changed FROM m GROUP BY 1) "
        "SELECT (SELECT count(*) FROM m WHERE was IS DISTINCT FROM becomes), "
        "(SELECT count(*) FROM m WHERE was IS NOT NULL AND becomes IS NULL "
        "AND btrim(was::text) <> ''), "
        "(SELECT coalesce(sum(changed), 0) FROM g WHERE becomes IS NOT NULL AND olds > 1), "
        f"{dropped}, " + ("(SELECT count(*) FROM m WHERE cut)" if cut else "0")
    )
    row: tuple[Any, ...] = ()
    try:
        with db.transaction(statement_timeout=timeout):
            db.execute("SET TRANSACTION READ ONLY")
            row = tuple(db.query(sql)[0])
            raise _RolledBack  # never commit: not even the settings outlive the SELECT
    except _RolledBack:
        pass
    except DatabaseUnavailable:
        raise
    except DatabaseError:
        return None
    return row


_NUMERIC_TYPE = re.compile(r"^numeric\((\d+), (\d+)\)$")
_TIME_TYPE = re.compile(r"^(timestamp|timestamptz|time|date)(\(\d\))?$")
_TIME_FAMILY = {"timestamp", "timestamptz", "date", "time"}


def _misfit(db: Database, col: str, live_type: str, type_sql: str) -> str | None:
    """SQL true for a value of ``col`` that ``type_sql`` would change; None when the pair
    is not one that can be compared without the cast itself failing mid-scan."""
    if db.dialect != "postgresql":
        return None
    quoted, live = _quote(col), live_type.lower()
    number = _NUMERIC_TYPE.match(type_sql)
    if number and _numeric(live) and live != "money":
        precision, scale = int(number.group(1)), int(number.group(2))
        value = f"{quoted}::numeric"
        # Compared, never cast: a value too large would fail the cast, and the scan with it.
        return (
            f"{quoted} IS NOT NULL AND {value} <> 'NaN' AND (abs({value}) >= "
            f"10::numeric ^ {precision - scale} OR {value} <> round({value}, {scale}))"
        )
    if _TIME_TYPE.match(type_sql) and live in _TIME_FAMILY:
        if (live == "time") != (type_sql == "time" or type_sql.startswith("time(")):
            return None  # a time of day and a date or timestamp do not compare
        return f"{quoted} IS NOT NULL AND {quoted}::{type_sql} IS DISTINCT FROM {quoted}"
    return None


def _count_where(db: Database, condition: str) -> str:
    if db.dialect == "postgresql":
        return f"count(*) FILTER (WHERE {condition})"
    return f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def _aggregates(db: Database, names: Iterable[str]) -> frozenset[str]:
    """One catalog query: which names belong to an aggregate (``CREATE AGGREGATE`` too).
    SQLite has none a migration could define."""
    rows = db.query(
        "SELECT DISTINCT lower(proname) FROM pg_proc WHERE prokind = 'a' "
        "AND lower(proname) = ANY(%s)",
        (sorted(names),),
    )
    return frozenset(str(r[0]) for r in rows)


def _enums(db: Database, names: Iterable[str]) -> dict[str, tuple[str, ...]]:
    rows = db.query(
        "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
        "WHERE t.typname = ANY(%s) ORDER BY t.typname, e.enumsortorder",
        (list(names),),
    )
    found: dict[str, list[str]] = {}
    for type_name, label in rows:
        found.setdefault(type_name, []).append(label)
    return {k: tuple(v) for k, v in found.items()}
