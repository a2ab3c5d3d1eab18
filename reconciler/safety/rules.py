"""The rules: each operation of a migration, judged against what the live data holds.

``Judge`` walks one batch of pending migrations in order and remembers what earlier
statements did (tables created, columns added, rows written), so a rule knows, for example,
that a column added two statements ago holds no values yet. Figures come from ``Facts``;
with no facts (static lint) the rules assume the worst and say so.

Severity follows the data: a data-loss finding on a table with no rows, or a column with no
non-null values, is reported as ``info``: nothing can be lost. A table is known to be empty
when the live row count says 0, or when this run created it, until a statement writes rows
into it (``INSERT``, ``COPY``, ``MERGE``, an opaque ``DO`` block); deleting, truncating or
updating an empty table leaves it empty, ``TRUNCATE`` or a ``DELETE`` of every row empties
one (that statement is the loss, reported on its own), and renaming it keeps what is known.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from msgspec import Struct, field

from reconciler.durations import format_duration
from reconciler.observe.figures import CONVERSION_FIGURES, REWRITE_FIGURES
from reconciler.rulebook import RULES, Severity
from reconciler.safety.constraints import Constraints
from reconciler.safety.copies import Copies, Copy
from reconciler.safety.declared import Declared
from reconciler.safety.findings import Finding
from reconciler.safety.kept_rows import KeptRows
from reconciler.safety.links import Links
from reconciler.safety.operations import LOSSY_CALLS
from reconciler.safety.types import (
    INTEGER_RANK,
    NO_ASSIGNMENT_CAST,
    TIMES,
    SqlType,
    casts_cut,
    from_catalog,
    lossless,
    steps_keep,
)

if TYPE_CHECKING:
    from reconciler.observe.facts import Facts, FactsRequest
    from reconciler.safety.operations import Op

IGNORED_TABLES = {"alembic_version", "_prisma_migrations"}
ORDER_TYPES = frozenset({"int2", "int4", "int8", "numeric", "float8"})
"""Types that hold 1, 2, 3... exactly and sort them as numbers: what a renumbered column
must be for the numbers to keep the order (``Judge.keeps_order``)."""
INTEGER_TYPES = {
    "int2": 1,
    "smallint": 1,
    "int4": 2,
    "int": 2,
    "integer": 2,
    "int8": 3,
    "bigint": 3,
    "serial": 2,
    "bigserial": 3,
}
FRACTIONAL_TYPES = {"numeric", "decimal", "float4", "float8", "real", "double", "money"}
TEXT_TYPES = {"text", "varchar", "bpchar", "char", "character", "citext", "name"}
COMPATIBLE = [
    INTEGER_TYPES.keys() | FRACTIONAL_TYPES,
    TEXT_TYPES,
    {"timestamp", "timestamptz", "date"},
    {"bool", "boolean"},
    {"uuid"},
    {"json", "jsonb"},
]


RENAME_COMPATIBLE = [
    TEXT_TYPES,
    {"int2", "smallint", "int4", "int", "integer", "int8", "bigint"}
    | {"serial", "bigserial", "smallserial", "serial2", "serial4", "serial8"},
    {"numeric", "decimal"},
    {"float4", "real", "float8", "double"},
    {"timestamp", "timestamptz"},
    {"bool", "boolean"},
    {"json", "jsonb"},
]
"""Types whose values keep their meaning through ``RENAME COLUMN``: the same type, or one
of these families. Anything else (BOOLEAN and TEXT, INTEGER and DATE) is not a rename."""


class Expansion(Struct, frozen=True):
    """A replacement filled from a column (``UPDATE t SET new = f(old)``, ``INSERT INTO u
    SELECT old FROM t``): the *expand* a later drop of ``source`` (the *contract*) waits
    for, so the deployed application has time to move to the replacement."""

    migration: str
    table: str
    column: str
    """The replacement: a column of ``table`` (``""``: rows of ``table``, another table)."""
    applied_at: datetime | None
    """None while the expanding migration is still pending."""
    type_name: str = ""
    source: tuple[str, str] = ("", "")
    """The (table, column) it was filled from; column ``*``: every column."""

    @property
    def replacement(self) -> str:
        return f"{self.table}.{self.column}" if self.column else f"table {self.table}"


def fills(migration_id: str, ops: Iterable[Op], applied_at: datetime | None) -> list[Expansion]:
    """The replacements ``ops`` fill from another column (a column copied onto itself, as in
    ``SET n = n + 1``, replaces nothing)."""
    found: list[Expansion] = []
    for op in ops:
        if op.kind == "update":
            found += [
                Expansion(migration_id, op.table, new, applied_at, source=(op.table, old))
                for new, old in op.copies_from
                if new != old
            ]
        elif op.kind == "insert":
            found += [
                Expansion(migration_id, op.table, "", applied_at, source=read)
                for read in op.reads
                if read[0] != op.table
            ]
    return found


def request_facts(ops: Iterable[Op], request: FactsRequest) -> None:
    """Add to ``request`` every live fact the rules will ask about ``ops``."""
    ops = list(ops)
    enums = {op.table: op.labels for op in ops if op.kind == "create-enum"}
    # An enum being recreated is renamed or dropped: its labels are what a CASE maps from.
    request.enums.update(op.table for op in ops if op.kind in ("rename-type", "drop-type"))
    for op in ops:
        if op.kind == "insert" and op.empty_when:
            request.functions.update(op.calls)
        if op.table in IGNORED_TABLES or not op.table:
            continue
        table = (
            request.table(op.table)
            if op.kind
            not in (
                "create-enum",
                "rename-type",
                "drop-type",
                "drop-schema",
                "create-aggregate",
                "create-function",
                "drop-constraint",
            )
            else None
        )
        if table is None:
            if op.kind == "create-enum":
                request.enums.add(op.table)
            continue
        if op.kind in ("drop-column", "update"):
            table.non_null.update((op.column,) if op.column else op.columns)
        if op.kind == "update":
            table.rewrites.update(
                (column, value, op.source, op.where, _casts_of(op, column))
                for column, value in op.rewrites
                if column not in op.null_guarded
            )
            if op.renumbered:  # is what it is joined on a key of the rows? (``renumbering``)
                table.nulls.update(op.renumber_key)
                table.unique.add(op.renumber_key)
        elif op.kind == "set-not-null":
            table.nulls.add(op.column)
        elif op.kind in ("create-index", "add-constraint") and op.unique and op.columns:
            table.unique.add(tuple(op.columns))
        elif op.kind == "alter-type":
            table.non_null.add(op.column)
            if op.type_name in enums and op.using == "case":
                for key, labels in CaseMapping(op, enums[op.type_name], None).questions():
                    getattr(table, key).add((op.column, labels))
            elif op.type_name in enums:  # Prisma's enum recreation: rows outside the new set
                table.outside.add((op.column, enums[op.type_name]))
            if op.type_length is not None:
                table.longer_than.add((op.column, op.type_length))
            if op.type_name.lower() in INTEGER_TYPES:
                table.fractional.add(op.column)
                table.out_of_range.add((op.column, INTEGER_TYPES[op.type_name.lower()]))
            if op.sql_type is not None and _measurable(op.sql_type):
                table.misfit.add((op.column, str(op.sql_type)))
            if op.using_sql and rewrites_values(op, None, set(enums)):
                table.conversions.add(conversion_key(op, set(enums)))


class Judge(Struct):
    """Judges a batch of migrations, in order, against live facts (or none: static)."""

    facts: Facts | None
    now: datetime
    grace_seconds: float
    history: list[Expansion] = field(default_factory=list)
    """Replacements filled from columns by applied migrations within the grace period,
    then by the pending ones judged so far."""
    created: set[str] = field(default_factory=set)
    added: set[tuple[str, str]] = field(default_factory=set)
    written: set[str] = field(default_factory=set)
    written_columns: set[tuple[str, str]] = field(default_factory=set)
    enums: dict[str, tuple[str, ...]] = field(default_factory=dict)
    added_empty: set[tuple[str, str]] = field(default_factory=set)
    fed: set[tuple[str, str]] = field(default_factory=set)
    """Columns written with values that may be older than the batch (``Op.fed``): (table,
    ``*``) for every column of a table, ("*", "*") after an opaque ``DO`` block."""
    dropped_values: dict[tuple[str, str], int | None] = field(default_factory=dict)
    """Non-null values of each dropped column, counted before the statement's own adds."""
    """Columns added in this batch without a default: NULL in every existing row."""
    column_types: dict[tuple[str, str], SqlType] = field(default_factory=dict)
    """The type of each column that a statement of this batch created, added, changed or
    renamed: what the column holds when a later statement changes its type."""
    known_empty: set[str] = field(default_factory=set)
    """Tables proven empty at this point of the batch (see ``track_emptiness``)."""
    declared_types: dict[tuple[str, str], str] = field(default_factory=dict)
    """Types of the columns this batch created or added, which the live catalog lacks."""
    aggregates: set[str] = field(default_factory=set)
    """Aggregates this batch creates (``CREATE AGGREGATE``)."""
    copies: Copies = field(default_factory=Copies)
    """Columns copied whole elsewhere (``copies``): consulted only without a database."""
    constraints: Constraints = field(default_factory=Constraints)
    """Keys and foreign keys the rows obey, for links turned around (``constraints``)."""
    dropped_copies: dict[tuple[str, str], Copy] = field(default_factory=dict)
    """Dropped columns whose values a whole copy keeps, for golden rule 2's message."""
    declared: Declared = field(default_factory=Declared)
    """NOT NULL columns and columns holding other tables' keys, as the history declares."""
    kept_rows: KeptRows = field(default_factory=KeptRows)
    """Booleans kept as rows, rows copied with new ids (``kept_rows``): without a database."""
    links: Links = field(default_factory=Links)
    """Links carried through a mapping table (``links``): consulted only without a database."""
    ahead: Sequence[Op] = ()
    """The statements of the current migration after the one being judged."""

    # -- what the data holds ----------------------------------------------------------

    def rows(self, table: str) -> int | None:
        if table in self.known_empty:
            return 0
        if table in self.created and table not in self.written:
            return 0
        if self.facts is None:
            return None
        facts = self.facts.table(table)
        if facts is None or not facts.exists or facts.rows < 0:
            return None
        return facts.rows if table not in self.written else None

    def count(self, table: str, key: tuple[object, ...]) -> int | None:
        column = key[1] if len(key) > 1 and isinstance(key[1], str) else None
        if column and (table, column) in self.added and (table, column) not in self.written_columns:
            return 0 if key[0] in ("non_null", "longer_than", "fractional", "outside") else None
        rows = self.rows(table)
        if rows == 0:
            return 0
        if column and (table, column) in self.written_columns:
            return None  # an earlier statement of this run changed the column
        if self.facts is None or table in self.written:
            return None
        facts = self.facts.table(table)
        if facts is None:
            return None
        if column and facts.exists and column not in facts.columns:
            return 0  # no such column live (DROP COLUMN IF EXISTS): nothing there to lose
        return facts.counts.get(key)

    def live_type(self, table: str, column: str) -> str | None:
        if self.facts is None:
            return None
        facts = self.facts.table(table)
        return facts.columns.get(column) if facts else None

    def old_type(self, table: str, column: str) -> SqlType | None:
        """The column's type before the statement: from this batch's replay, else the
        catalog; None when neither knows (static analysis of a table made elsewhere)."""
        if (table, column) in self.column_types:
            return self.column_types[(table, column)]
        facts = self.facts.table(table) if self.facts else None
        if facts is None or column not in facts.columns:
            return None
        typmod = facts.typmods.get(column)
        if typmod is None and column in facts.lengths:
            typmod = facts.lengths[column] + 4  # varchar(n) is stored as n + 4
        return from_catalog(facts.columns[column], typmod)

    def remember_type(self, op: Op) -> None:
        """Follow column types through the batch (``old_type``)."""
        types, table = self.column_types, op.table
        if op.kind == "create-table":
            for name in [k for k in types if k[0] == table]:
                del types[name]
            types.update(
                ((table, c), t) for c, t in zip(op.columns, op.column_types, strict=False) if t.name
            )
        elif op.kind in ("add-column", "alter-type") and op.sql_type is not None:
            types[(table, op.column)] = op.sql_type
        elif op.kind == "rename-column":
            old = self.old_type(table, op.column)
            types.pop((table, op.column), None)
            if old is not None:
                types[(table, op.new_name)] = old
        elif op.kind == "rename-table":
            new = _in_schema_of(table, op.new_name)
            facts = self.facts.table(table) if self.facts else None
            known = set(facts.columns) if facts else set()
            known |= {c for t, c in types if t == table}
            for column in known:
                old = self.old_type(table, column)
                types.pop((table, column), None)
                if old is not None:
                    types[(new, column)] = old
        elif op.kind == "rename-type":
            if table in self.enums:
                self.enums[op.new_name] = self.enums.pop(table)
            for key, typ in list(types.items()):
                if typ.name == table:
                    types[key] = SqlType(op.new_name, typ.mods)
        elif op.kind == "drop-type":
            self.enums.pop(table, None)
        elif op.kind == "drop-column":
            types.pop((table, op.column), None)
        elif op.kind == "drop-table":
            for name in [k for k in types if k[0] == table]:
                del types[name]

    def size(self, table: str) -> str:
        rows = self.rows(table)
        facts = self.facts.table(table) if self.facts else None
        if rows is None:
            return f"{table} (size unknown)"
        size = f", {_bytes(facts.size_bytes)}" if facts and facts.size_bytes else ""
        return f"{table} ({rows:,} rows{size})"

    # -- the walk ---------------------------------------------------------------------

    def migration(self, migration_id: str, file: str, ops: Iterable[Op]) -> list[Finding]:
        found: list[Finding] = []
        ops = [o for o in ops if o.table not in IGNORED_TABLES]
        drops: dict[str, list[Op]] = defaultdict(list)
        adds: dict[str, list[Op]] = defaultdict(list)
        copies: dict[str, set[str]] = defaultdict(set)
        self.links.start()
        for index, op in enumerate(ops):
            self.ahead = ops[index + 1 :] if op.kind == "drop-column" else ()
            found += self.judge(op, file, migration_id)
            if op.kind == "drop-column":
                drops[op.table].append(op)
            elif op.kind == "add-column":
                adds[op.table].append(op)
            elif op.kind == "update":
                copies[op.table].update(src for _, src in op.copies_from)
            self.copies.remember(
                op, migration_id, self.old_type, self.enums.keys(), self.unwritten, self.constraints
            )
            self.kept_rows.remember(
                op, migration_id, self.old_type, self.declared, self.constraints, self.is_empty
            )
            self.declared.remember(op, self.constraints)
            self.links.remember(op, migration_id, self.old_type, self.unwritten, self.constraints)
            self.constraints.remember(op)
            self.remember(op)
        found += self.expand_contract(file, drops, adds, copies)
        self.history += fills(migration_id, ops, None)
        return found

    def remember(self, op: Op) -> None:
        if op.kind == "alter-type" and not self.keeps_every_value(op):
            self.written_columns.add((op.table, op.column))  # later figures are stale
        self.remember_type(op)
        self.fed.update((op.table, c) for c in op.fed)
        if op.kind in ("do-block", "create-function", "create-trigger"):
            self.fed.add(("*", "*"))  # what it runs may write any column
        elif op.kind == "alter-type" and op.any_using:
            self.fed.add((op.table, op.column))  # USING may read the row's other columns
        if self.stays_empty(op):
            return
        self.track_emptiness(op)
        if op.kind == "create-table" and op.table in self.known_empty:
            self.created.add(op.table)
        elif op.kind == "add-column":
            self.added.add((op.table, op.column))
            if not op.has_default:
                self.added_empty.add((op.table, op.column))
        elif op.kind == "update":  # rows stay; only the set columns' figures go stale
            self.written_columns.update((op.table, c) for c in op.columns)
        elif op.kind == "rename-column":  # the live figures are under the old name, and a
            self.written_columns.add((op.table, op.new_name))  # missing column is no column
        elif op.kind in ("insert", "do-block", "delete", "truncate"):
            self.written.add(op.table)
            self.written_columns.update((op.table, c) for c in op.columns)
        elif op.kind == "create-enum":
            self.enums[op.table] = op.labels

    def stays_empty(self, op: Op) -> bool:
        """A DELETE, TRUNCATE or UPDATE of a table known to be empty, or an INSERT that
        selects from empty tables, writes nothing: what is known of the table stays."""
        if op.kind in ("delete", "truncate", "update") and self.rows(op.table) == 0:
            self.known_empty.add(op.table)
            return True
        return op.kind == "insert" and self.selects_nothing(op)

    def selects_nothing(self, op: Op) -> bool:
        """An ``INSERT ... SELECT`` whose SELECT reads only from empty tables (a join with
        one, a FROM list with one) inserts nothing."""
        if op.calls and (
            self.facts is None  # without a database, any function may be an aggregate
            or any(c in self.aggregates or c in self.facts.aggregates for c in op.calls)
        ):
            return False
        return any(all(self.rows(t) == 0 for t in group) for group in op.empty_when)

    def track_emptiness(self, op: Op) -> None:
        """Which tables are proven empty, and the declared types of new columns.

        A created table is empty unless ``IF NOT EXISTS`` met a table that may already hold
        rows (live, or unknown without a database), and so is any table after a ``TRUNCATE``
        or a ``DELETE`` with no ``WHERE`` and no ``USING``; renaming carries what is known;
        any statement that may write rows ends it (an opaque ``DO`` block: for every table)."""
        table = op.table
        if op.kind == "create-table":
            facts = self.facts.table(table) if self.facts else None
            existed = op.if_not_exists and (facts is None or facts.exists)
            if not existed and table not in self.known_empty:
                self.known_empty.add(table)
                self.declared_types.update(
                    ((table, c), t.name)
                    for c, t in zip(op.columns, op.column_types, strict=False)
                    if t.name
                )
        elif op.kind == "add-column":
            self.declared_types[(table, op.column)] = op.type_name
        elif op.kind == "rename-table":
            new = _in_schema_of(table, op.new_name)
            if self.rows(table) == 0:
                self.known_empty.add(new)
            self.known_empty.discard(table)
            for (owner, column), typ in list(self.declared_types.items()):
                if owner == table:
                    self.declared_types[(new, column)] = typ
        elif op.kind in ("drop-table", "insert"):
            self.known_empty.discard(table)
        elif op.kind in ("truncate", "delete") and not op.filtered:
            self.known_empty.add(table)  # every row went (its own finding says so)
        elif op.kind == "create-aggregate":
            self.aggregates.add(table)
        elif op.kind == "do-block":
            writes = _written_in_block(op.statement)
            if writes is None:  # dynamic SQL or a procedure: any table may get rows
                writes = self.known_empty | self.created
            self.known_empty -= writes
            self.written |= writes

    def unwritten(self, table: str, column: str) -> bool:
        """Whether ``column`` was added without a default by this run and nothing has written
        to it since: NULL in every row."""
        return (
            (table, column) in self.added_empty
            and (table, column) not in self.written_columns
            and table not in self.written
        )

    def keeps_every_value(self, op: Op) -> bool:
        """Whether a type change leaves each value as it was (or fails), so that what was
        measured of the column before it still holds after: a ``USING`` that keeps the
        values, into a type that holds every value of the old one (``INTEGER`` to
        ``BIGINT``), or refuses the ones it cannot hold (a shorter ``VARCHAR``, a smaller
        integer: the statement fails, nothing is rounded). A conversion that rounds
        (``NUMERIC`` to ``INTEGER``, a timestamp's precision) changes values in place, and
        an unknown old type may be one."""
        old, new = self.old_type(op.table, op.column), op.sql_type
        if not _surely_kept(op) or old is None or new is None:
            return False
        texts = ("text", "varchar", "bpchar")
        refuses = (old.name in texts and new.name in texts[1:]) or (
            old.name in INTEGER_RANK and new.name in INTEGER_RANK
        )
        return lossless(old, new) or refuses

    def made_here(self, table: str, column: str) -> bool:
        """Without a database: whether the column was added by this migration and every
        value written into it since is its default or a constant (``Op.fed``), so that it
        holds nothing older than the migration: a temporary column, as documenso's
        ``Team.isPersonal``, tagging the rows the migration inserts."""
        return (
            self.facts is None
            and (table, column) in self.added
            and not {(table, column), (table, "*"), ("*", "*")} & self.fed
        )

    def is_empty(self, table: str) -> bool:
        return self.rows(table) == 0

    def copied_table(self, table: str, cascade: bool = False) -> str | None:
        """Without a database: where every column of ``table`` went, when each known column
        (the history created or added it) was copied whole elsewhere, or all but a key
        replaced by new ones (``kept_rows``); None otherwise."""
        if self.facts is not None:
            return None
        columns = sorted(c for t, c in self.column_types if t == table)
        copies = [self.copies.where(table, c) for c in columns]
        copies = [c if c is None or c.into[0] != table else None for c in copies]  # dropped too
        if not columns:
            return None
        missing = [c for c, copy in zip(columns, copies, strict=True) if copy is None]
        if missing:
            made = [copy for copy in copies if copy is not None]
            return self.kept_rows.renewed_key(
                table, missing, made, cascade, self.constraints, self.declared, self.column_types
            )
        places = ", ".join(
            f"{c} {copy.how} {copy}" for c, copy in zip(columns, copies, strict=True) if copy
        )
        return f"the values of every column went elsewhere first ({places}): nothing is lost"

    def declared_type(self, table: str, column: str) -> str | None:
        """The column's type as this batch declared it, else as the live catalog has it."""
        return self.declared_types.get((table, column)) or self.live_type(table, column)

    def finding(
        self,
        rule: str,
        op: Op,
        file: str,
        message: str,
        amount: int | None,
        severity: Severity | None = None,
        renamed: tuple[str, str] | None = None,
    ) -> Finding:
        """A finding whose severity drops to ``info`` when ``amount`` is 0."""
        base = severity or RULES[rule].severity
        if amount == 0:
            base = "info"
            message += ": nothing to lose"
        elif amount is None and self.facts is None and base in ("data-loss", "will-fail"):
            message += " (static analysis: live data unknown)"
        return Finding(
            rule,
            base,
            message,
            file,
            op.line,
            op.statement,
            static=self.facts is None,
            table=op.table,
            renamed=renamed,
        )

    def judge(self, op: Op, file: str, migration_id: str) -> list[Finding]:
        kind, table = op.kind, op.table
        out: list[Finding] = []
        if kind == "drop-table":
            rows = self.rows(table)
            kept = self.copied_table(table, op.cascade) if rows is None else None
            out.append(
                self.finding("drop-table", op, file, f"drops table {table}{_rows(rows)}", rows)
                if kept is None
                else self.finding(
                    "drop-table", op, file, f"drops table {table}: {kept}", None, severity="info"
                )
            )
        elif kind == "drop-schema":
            out.append(
                self.finding(
                    "drop-schema", op, file, f"drops schema {table} and every table in it", None
                )
            )
        elif kind == "drop-column":
            values = self.count(table, ("non_null", op.column))
            self.dropped_values[(table, op.column)] = values
            copy = self.copies.where(table, op.column) if self.facts is None else None
            if copy is not None and not copy.tied:
                copy = None  # the values went elsewhere, whose they were did not
            if copy is None and self.facts is None:
                copy = self.kept_rows.where(table, op.column)
            if copy is None and self.facts is None:
                copy = self.links.kept(table, op.column, self.ahead, self.constraints)
                if copy is not None:  # the new column now holds the only copy of the links
                    self.copies.consumed.add(copy.into)
            if copy is None and values is None and self.made_here(table, op.column):
                out.append(
                    self.finding(
                        "drop-column",
                        op,
                        file,
                        f"drops {table}.{op.column}: added by this migration and written only "
                        "with its default and constants, nothing older: nothing is lost",
                        None,
                        severity="info",
                    )
                )
                return out
            if copy is not None and values is None:
                self.dropped_copies[(table, op.column)] = copy
            earlier = self.copies.before(table, op.column) if copy is None else None
            since = (
                f": {earlier.how} {earlier} by an earlier migration; rows written since are "
                "kept only if the application writes both columns"
                if earlier is not None and earlier.tied and self.facts is None
                else ""
            )
            out.append(
                self.finding(
                    "drop-column",
                    op,
                    file,
                    f"drops {table}.{op.column}{_values(values, 'lost')}{since}",
                    values,
                )
                if values is not None or copy is None
                else self.finding(
                    "drop-column",
                    op,
                    file,
                    f"drops {table}.{op.column}: every value was {copy.how} {copy} "
                    "first: nothing is lost",
                    None,
                    severity="info",
                )
            )
            if values != 0:  # a column with no values owes no replacement any time
                out += self.contract_waits(op, file, migration_id)
        elif kind == "truncate":
            rows = self.rows(table)
            out.append(self.finding("truncate", op, file, f"truncates {table}{_rows(rows)}", rows))
        elif kind == "delete":
            rows = self.rows(table)
            scope = ""
            if op.filtered:  # a WHERE, a USING join, or ONLY the table itself
                where = re.search(r"\bwhere\b", op.statement, re.I)
                scope = " matching its WHERE clause" if where else " it selects"
            out.append(
                self.finding(
                    "delete-rows",
                    op,
                    file,
                    f"deletes rows of {table}{scope}{_rows(rows, 'up to ')}",
                    rows,
                )
            )
        elif kind == "update":
            out += self.update(op, file)
        elif kind == "alter-type":
            out += self.alter_type(op, file)
        elif kind == "add-column":
            out += self.add_column(op, file)
        elif kind == "set-not-null":
            nulls = self.count(table, ("nulls", op.column))
            if (
                (table, op.column) in self.added_empty
                and (table, op.column) not in self.written_columns
                and table not in self.written
            ):
                nulls = self.rows(table)  # every existing row holds NULL
            if nulls:
                out.append(
                    self.finding(
                        "set-not-null-with-nulls",
                        op,
                        file,
                        f"SET NOT NULL on {table}.{op.column}, which has "
                        f"{nulls:,} NULL value{'s' if nulls != 1 else ''}",
                        nulls,
                    )
                )
            elif nulls is None and self.facts is None:
                out.append(
                    self.finding(
                        "set-not-null-with-nulls",
                        op,
                        file,
                        f"SET NOT NULL on {table}.{op.column} fails if any "
                        "row holds NULL (not checked: no database)",
                        None,
                        severity="info",
                    )
                )
            if self.rows(table) != 0:
                out.append(
                    self.finding(
                        "set-not-null-without-check",
                        op,
                        file,
                        f"SET NOT NULL scans {self.size(table)} under ACCESS EXCLUSIVE",
                        None,
                    )
                )
        elif kind == "create-index":
            if not op.concurrently and table not in self.created and self.rows(table) != 0:
                out.append(
                    self.finding(
                        "index-without-concurrently",
                        op,
                        file,
                        f"builds index {op.new_name or ''} on "
                        f"{self.size(table)} while blocking writes",
                        None,
                    )
                )
            if op.unique:
                out += self.duplicates(op, file)
        elif kind == "drop-index" and not op.concurrently:
            out.append(
                self.finding(
                    "index-without-concurrently",
                    op,
                    file,
                    f"drops index {table} while blocking its table",
                    None,
                )
            )
        elif kind == "add-constraint":
            out += self.constraint(op, file)
        elif kind == "rename-column":
            out.append(
                self.finding(
                    "rename-column",
                    op,
                    file,
                    f"renames {table}.{op.column} to {op.new_name}: the "
                    "deployed application still uses the old name",
                    None,
                    renamed=(op.column, op.new_name),
                )
            )
        elif kind == "rename-table":
            out.append(
                self.finding(
                    "rename-table",
                    op,
                    file,
                    f"renames table {table} to {op.new_name}: the deployed "
                    "application still uses the old name",
                    None,
                    renamed=(table, _in_schema_of(table, op.new_name)),
                )
            )
        elif kind == "do-block":
            out.append(
                self.finding(
                    "opaque-statement",
                    op,
                    file,
                    "DO block: its effect on data is not analysed",
                    None,
                )
            )
        return out

    def update(self, op: Op, file: str) -> list[Finding]:
        out = []
        values_of = dict(op.rewrites)
        for column in op.columns:
            if column in op.null_guarded:
                continue  # a backfill: only NULLs are written
            if column in op.sets_null and column in op.empty_guarded:
                out.append(
                    self.finding(
                        "update-overwrites",
                        op,
                        file,
                        f"makes the empty values of {op.table}.{column} NULL: no value is lost",
                        None,
                        severity="info",
                    )
                )
                continue
            moved = dict(op.moves).get(column)
            if moved is not None:
                out.append(
                    self.finding(
                        "update-overwrites",
                        op,
                        file,
                        f"moves the values of {op.table}.{column} it clears into {op.table}."
                        f"{moved} of the same row (one CASE condition for both): none is lost",
                        None,
                        severity="info",
                    )
                )
                continue
            if column in op.onto_itself:
                out.append(
                    self.finding(
                        "update-overwrites",
                        op,
                        file,
                        f"writes each value of {op.table}.{column} onto itself: none changes",
                        None,
                        severity="info",
                    )
                )
                continue
            if (
                self.facts is None
                and (op.table, column) in self.added
                and (op.table, column) in self.written_columns
                and (op.table, column) not in self.copies.consumed
            ):
                out.append(
                    self.finding(
                        "update-overwrites",
                        op,
                        file,
                        f"overwrites {op.table}.{column}, which this migration added: it holds "
                        "only values it wrote, none that existed before: nothing to lose",
                        None,
                        severity="info",
                    )
                )
                continue
            if column == op.renumbered and self.keeps_order(op):
                out.append(
                    self.finding(
                        "update-overwrites", op, file, _renumbers(op), None, severity="info"
                    )
                )
                continue
            measured = self.rewrite(op, file, column, values_of.get(column))
            if measured is not None:
                out.append(measured)
                continue
            values = self.count(op.table, ("non_null", column))
            verb = "nulls" if column in op.sets_null else "overwrites"
            scope = " (rows matching its WHERE clause)" if op.filtered else ""
            out.append(
                self.finding(
                    "update-overwrites",
                    op,
                    file,
                    f"{verb} {op.table}.{column}{scope}{_values(values, 'affected', 'up to ')}",
                    values,
                )
            )
        return out

    def keeps_order(self, op: Op) -> bool:
        """Whether a renumbering (``renumbering``: ``SET c = row_number() OVER (ORDER BY c,
        ...)``) gives every row one number that keeps its rank among the old values: the
        numbers are joined back on a key (each row matched once, none left with its old
        value among the new ones), and ``c`` holds numbers (as text, 10 sorts before 9)."""
        table, key = op.table, op.renumber_key
        kind = self.old_type(table, op.renumbered)
        if kind is None or kind.name not in ORDER_TYPES:
            return False
        if self.constraints.primary(table, key):
            return True
        nulls = [self.count(table, ("nulls", column)) for column in key]
        return all(n == 0 for n in nulls) and self.count(table, ("unique", key)) == 0

    def rewrite(self, op: Op, file: str, column: str, value: str | None) -> Finding | None:
        """An UPDATE's column judged by what its measuring SELECT found (None: unmeasured).

        Destroyed: non-empty values made NULL, distinct values made one, JSON scalars
        dropped, and every value changed by a function that keeps only part of it
        (``date_trunc``, ``left``...). Anything else is a rewrite in place: each old value
        can still be told from its new one, and the backup keeps the old values."""
        if value is None:
            return None
        key = (column, value, op.source, op.where, _casts_of(op, column))
        figures = self.figures(op.table, key, REWRITE_FIGURES)
        if figures is None:
            return None
        where = f"{op.table}.{column}"
        lossy = ", ".join(_calls(value)) if column in op.lossy_calls else ""
        return self.rewritten(
            op,
            file,
            "update-overwrites",
            figures,
            lossy,
            (f"overwrites {where}", f"rewrites {where}", f"rewrites {where} in place"),
            "a cast",
        )

    def rewritten(
        self,
        op: Op,
        file: str,
        rule: str,
        figures: dict[str, int],
        lossy: str,
        says: tuple[str, str, str],
        cut_by: str = "",
    ) -> Finding:
        """The verdict on a measured rewrite of a column's values (an UPDATE's assignment,
        a type change's ``USING``), ``says`` being its words when it destroys values, when
        it changes none, and when it rewrites them in place.

        Destroyed: non-empty values made NULL, distinct values made one, JSON scalars
        dropped, values a cast cuts short (``cut``: the conversion to the new type, or
        ``cut_by``, an UPDATE's casts and its assignment to the column's type), and, when
        ``lossy`` names what keeps only part of a value, every value changed."""
        changed, nulled = figures["changed"], figures["nulled"]
        collapsed, dropped = figures["collapsed"], figures["json_dropped"]
        cut = figures.get("cut", 0)
        if lossy:
            parts = [f"{changed:,} cut short by {lossy}"] if changed else []
            destroyed = changed
        else:
            by = cut_by or f"the conversion to {op.sql_type or _typ(op)}"
            parts = [
                f"{count:,} {what}"
                for count, what in (
                    (nulled, "made NULL"),
                    (collapsed, "made equal to another value"),
                    (dropped, "JSON values with data dropped"),
                    (cut, f"cut short by {by}"),
                )
                if count
            ]
            destroyed = nulled + collapsed + dropped + cut
        overwrites, unchanged, in_place = says
        if destroyed:
            return self.finding(
                rule,
                op,
                file,
                f"{overwrites}: {changed:,} value{'s' if changed != 1 else ''} change, "
                f"of which {'; '.join(parts)}",
                destroyed,
            )
        if not changed:
            return self.finding(rule, op, file, unchanged, 0)
        return self.finding(
            rule,
            op,
            file,
            f"{in_place}: {changed:,} value{'s' if changed != 1 else ''} "
            "change, none made NULL or equal to another value: the backup keeps the old values",
            None,
            severity="info",
        )

    def conversion(self, op: Op, file: str, before: SqlType | None, declared: bool) -> Finding:
        """A type change whose ``USING`` is not the column kept whole (``rewrites_values``):
        a rewrite of the column's values, measured as an UPDATE's assignment is, never a
        widening. Unmeasured (no database, an earlier statement of the run wrote to the
        table, the SELECT failed), it blocks while the column may hold values."""
        table, column = op.table, op.column
        was = f"from {before} " if before else ""
        if declared:
            was += "(as the revision declares it: existing_type) "
        start = (
            f"changes {table}.{column} {was}to {op.sql_type or _typ(op)} "
            f"with USING {op.using_sql or 'an expression'}"
        )
        figures = self.conversion_figures(op)
        if figures is not None:
            lossy = ""
            if op.using == "column" and casts_cut(before, op.using_steps, op.sql_type):
                lossy = "the casts of USING"
            elif op.using_lossy:
                lossy = ", ".join(_calls(op.using_sql))
            says = (
                f"{start}, which rewrites the values",
                f"{start}: no value changes",
                f"{start}, which rewrites the values in place",
            )
            return self.rewritten(op, file, "narrowing-type", figures, lossy, says)
        values = self.count(table, ("non_null", column))
        return self.finding(
            "narrowing-type",
            op,
            file,
            f"{start}, which rewrites the values"
            + _values(values, "affected", "up to " if values else ""),
            values,
        )

    def conversion_figures(self, op: Op) -> dict[str, int] | None:
        """What the SELECT measuring a ``USING`` found (``measure_conversion``)."""
        key = (*conversion_key(op, set(self.enums)), "USING")
        return self.figures(op.table, key, CONVERSION_FIGURES)

    def figures(
        self, table: str, key: tuple[object, ...], names: tuple[str, ...]
    ) -> dict[str, int] | None:
        """The figures ``names`` a measuring SELECT found under ``key``; None when any is
        missing, or when an earlier statement of the run wrote to the table: the
        expression may read any of its columns, and the SELECT read them before."""
        if table in self.written or any(t == table for t, _ in self.written_columns):
            return None
        found: dict[str, int] = {}
        for name in names:
            count = self.count(table, (name, *key))
            if count is None:
                return None
            found[name] = count
        return found

    def alter_type(self, op: Op, file: str) -> list[Finding]:
        table, column = op.table, op.column
        new = op.type_name.lower()
        old = (self.live_type(table, column) or "").lower()
        out: list[Finding] = []
        before = self.old_type(table, column)
        declared = before is None and op.declared_type is not None
        if declared:  # neither the history nor the catalog knows it: the revision says
            before = op.declared_type
        enum_target = op.type_name in self.enums or new in self.enums
        if enum_target and op.using == "case":
            return self.enum_mapping(op, file, self.enums.get(op.type_name) or self.enums[new])
        if rewrites_values(op, before, set(self.enums)):
            out.append(self.conversion(op, file, before, declared))
            if enum_target:
                return out
        elif enum_target:
            return self.enum_recreation(op, file, self.enums.get(op.type_name) or self.enums[new])
        else:
            out += self.narrowed(op, file, before, declared)
        if self.rows(table) != 0 and not _binary_coercible(
            old, op, self.live_length(table, column)
        ):
            out.append(
                self.finding(
                    "table-rewrite",
                    op,
                    file,
                    f"changing the type of {table}.{column} rewrites "
                    f"{self.size(table)} under ACCESS EXCLUSIVE",
                    None,
                )
            )
        return out

    def enum_recreation(self, op: Op, file: str, labels: tuple[str, ...]) -> list[Finding]:
        """An enum recreated with the column's values kept (cast to text, then to the new
        type): a value is removed when the new type lacks its label."""
        table, column = op.table, op.column
        out: list[Finding] = []
        rows = self.count(table, ("outside", column, labels))
        kept = self.old_labels(table, column)
        if kept is not None and set(kept) <= set(labels):
            out.append(
                self.finding(
                    "enum-value-removed",
                    op,
                    file,
                    f"recreates {table}.{column} as enum {op.type_name} "
                    f"({', '.join(labels)}), which keeps every value of the old type "
                    f"({', '.join(kept)}): no value is removed",
                    None,
                    severity="info",
                )
            )
            return out
        out.append(
            self.finding(
                "enum-value-removed",
                op,
                file,
                f"recreates {table}.{column} as enum {op.type_name} ({', '.join(labels)})"
                + (f"; {rows:,} rows hold a value it no longer has" if rows else ""),
                rows,
            )
        )
        return out

    def narrowed(self, op: Op, file: str, before: SqlType | None, declared: bool) -> list[Finding]:
        """A type change that hands the values to the new type as they are (no ``USING``,
        or one that keeps them): judged from the old and new types (``narrowing``)."""
        table, column = op.table, op.column
        out: list[Finding] = []
        values = self.count(table, ("non_null", column))
        lossy, reason = self.narrowing(op, before)
        if lossy != 0:
            was = f"from {before} " if before else ""
            if declared:
                was += "(as the revision declares it: existing_type) "
            message = f"changes {table}.{column} {was}to {op.sql_type or _typ(op)}"
            if reason:
                message += f": {reason}"
            elif before is None:
                message += (
                    ": its current type is unknown (not created earlier in this run, no "
                    "database), so a widening cannot be told from a narrowing"
                )
            out.append(
                self.finding("narrowing-type", op, file, message, 0 if values == 0 else lossy)
            )
        return out

    def old_labels(self, table: str, column: str) -> tuple[str, ...] | None:
        """The labels of the enum a column holds before the statement, when known."""
        old = self.old_type(table, column)
        if old is None:
            return None
        if old.name in self.enums:
            return self.enums[old.name]
        return self.facts.enums.get(old.name) if self.facts else None

    def enum_mapping(self, op: Op, file: str, labels: tuple[str, ...]) -> list[Finding]:
        """An enum recreated with ``USING (CASE ...)``: a value is removed only when the
        CASE gives it no value of the new type (NULL, or a label the type lacks); values
        it renames one to one lose nothing; values it folds into one another are
        overwritten (``update-overwrites``), counted by the rows that change."""
        table, column = op.table, op.column
        mapping = CaseMapping(op, labels, self.old_labels(table, column))
        head = (
            f"recreates {table}.{column} as enum {op.type_name} ({', '.join(labels)}) with a CASE"
        )
        out: list[Finding] = []
        removed = mapping.removed()
        if removed:
            rows = self.rows_holding(op, mapping, removed)
            out.append(
                self.finding(
                    "enum-value-removed",
                    op,
                    file,
                    f"{head} that gives {mapping.say(removed)} no value of it" + _holding(rows),
                    rows,
                )
            )
        for into, changing in mapping.folds():
            rows = self.rows_holding(op, mapping, changing)
            out.append(
                self.finding(
                    "update-overwrites",
                    op,
                    file,
                    f"{head} that folds {mapping.say(changing)} into {into}" + _holding(rows),
                    rows,
                )
            )
        return out

    def rows_holding(self, op: Op, mapping: CaseMapping, values: list[str]) -> int | None:
        """Rows whose value is one of ``values`` (``OTHER``: any value not named)."""
        total: int | None = 0
        for value in values:
            key = ("outside", op.column, mapping.named) if value == OTHER else None
            found = self.count(op.table, key or ("inside", op.column, (value,)))
            total = None if found is None or total is None else total + found
        return total

    def narrowing(self, op: Op, old: SqlType | None) -> tuple[int | None, str]:
        """How many values the new type cannot hold (0: none, None: unknown), and why.

        A lossless widening (``types.lossless``) is 0 without asking the data; a change that
        may narrow is measured where the data can answer: integers out of range or with
        fractions, text longer than a limit, numbers or times that a precision changes."""
        table, column, new = op.table, op.column, op.sql_type
        if new is None:
            return None, ""
        if new.name in TEXT_TYPES and not new.mods:
            return 0, ""  # every value has a text form
        if old is not None and lossless(old, new):
            return 0, ""
        if old is None and new.name in NO_ASSIGNMENT_CAST and not op.any_using:
            return 0, ""  # already of that type, or refused: no value changes
        family = old.name if old else ""
        if new.name in INTEGER_RANK:
            if family in INTEGER_RANK:
                out = self.count(table, ("out_of_range", column, INTEGER_RANK[new.name]))
                return out, f"{out:,} values do not fit in {new}" if out else ""
            if family and family not in FRACTIONAL_TYPES and family not in TEXT_TYPES:
                return None, ""
            lossy = self.count(table, ("fractional", column))
            return lossy, f"{lossy:,} values are not whole numbers" if lossy else ""
        if new.name in ("varchar", "bpchar") and new.mods and (not family or family in TEXT_TYPES):
            lossy = self.count(table, ("longer_than", column, new.mods[0]))
            return lossy, (
                f"{lossy:,} values are longer than {new.mods[0]} characters" if lossy else ""
            )
        if _measurable(new):
            lossy = self.count(table, ("misfit", column, str(new)))
            plural = "s" if lossy != 1 else ""
            return lossy, f"{lossy:,} value{plural} would change in {new}" if lossy else ""
        return None, ""

    def live_length(self, table: str, column: str) -> int | None:
        facts = self.facts.table(table) if self.facts else None
        return facts.lengths.get(column) if facts else None

    def add_column(self, op: Op, file: str) -> list[Finding]:
        out = []
        if op.not_null and not op.has_default:
            rows = self.rows(op.table)
            out.append(
                self.finding(
                    "required-column-without-default",
                    op,
                    file,
                    f"adds required column {op.table}.{op.column} without a default to "
                    f"{op.table}{_rows(rows)}",
                    rows,
                )
            )
        if op.volatile_default and self.rows(op.table) != 0:
            out.append(
                self.finding(
                    "table-rewrite",
                    op,
                    file,
                    f"a volatile default fills {op.table}.{op.column} by "
                    f"rewriting {self.size(op.table)}",
                    None,
                )
            )
        return out

    def duplicates(self, op: Op, file: str) -> list[Finding]:
        dupes = self.count(op.table, ("unique", tuple(op.columns)))
        if not dupes:
            return []
        return [
            self.finding(
                "unique-over-duplicates",
                op,
                file,
                f"unique over {op.table}({', '.join(op.columns)}), but "
                f"{dupes:,} {'rows duplicate' if dupes != 1 else 'row duplicates'} another",
                dupes,
            )
        ]

    def constraint(self, op: Op, file: str) -> list[Finding]:
        out: list[Finding] = []
        empty = op.table in self.created or self.rows(op.table) == 0
        if op.constraint in ("foreign", "check") and not op.not_valid and not empty:
            out.append(
                self.finding(
                    "constraint-without-not-valid",
                    op,
                    file,
                    f"{op.constraint} constraint {op.new_name} validates "
                    f"{self.size(op.table)} while blocking writes",
                    None,
                )
            )
        if op.unique and not op.concurrently:
            if not empty:
                out.append(
                    self.finding(
                        "unique-constraint-locking",
                        op,
                        file,
                        f"builds the index of {op.new_name} on "
                        f"{self.size(op.table)} under ACCESS EXCLUSIVE",
                        None,
                    )
                )
            out += self.duplicates(op, file)
        return out

    # -- golden rule 2 ----------------------------------------------------------------

    def expand_contract(
        self,
        file: str,
        drops: dict[str, list[Op]],
        adds: dict[str, list[Op]],
        copies: dict[str, set[str]],
    ) -> list[Finding]:
        out: list[Finding] = []
        for table, dropped in drops.items():
            dropped_names = {d.column for d in dropped}
            # Prisma drops and re-adds a column to change its type: not a rename.
            added = [a for a in adds.get(table, []) if a.column not in dropped_names]
            for drop in dropped:
                if any(a.column == drop.column for a in adds.get(table, [])):
                    continue
                values = self.dropped_values.get((table, drop.column))
                copied = drop.column in copies.get(table, set())
                if (
                    len(dropped) == 1
                    and len(added) == 1
                    and not copied
                    and (table, drop.column) not in self.dropped_copies
                    and _rename_compatible(
                        self.declared_type(table, drop.column), added[0].type_name
                    )
                ):
                    out.append(
                        self.finding(
                            "rename-as-drop-add",
                            drop,
                            file,
                            f"{table}.{drop.column} is dropped and {table}.{added[0].column} "
                            f"({added[0].type_name}) added: probably a rename written as drop + "
                            f"add; the data of {drop.column} would be lost{_values(values, '')}; "
                            f"write RENAME COLUMN {drop.column} TO {added[0].column}",
                            values,
                        )
                    )
                elif added or copied:
                    what = (
                        "copied into another column"
                        if copied
                        else f"{', '.join(a.column for a in added)} added"
                    )
                    kept = self.dropped_copies.get((table, drop.column))
                    out.append(
                        self.finding(
                            "expand-contract-same-migration",
                            drop,
                            file,
                            f"{table}.{drop.column} is dropped in the same migration that "
                            f"{'has it ' if copied else 'has '}{what}; contract in a later "
                            "migration"
                            + (
                                f" (its values are kept in {kept}: the deployed application "
                                "may still read the old column)"
                                if kept
                                else ""
                            ),
                            values,
                            severity="compat" if kept else None,
                        )
                    )
        return out

    def contract_waits(self, op: Op, file: str, migration_id: str) -> list[Finding]:
        grace = timedelta(seconds=self.grace_seconds)
        for expansion in reversed(self.history):
            if expansion.source not in ((op.table, op.column), (op.table, "*")):
                continue  # not filled from this column: not its replacement
            if expansion.migration == migration_id:
                continue
            applied = expansion.applied_at or self.now
            until = applied + grace
            if until <= self.now and expansion.applied_at is not None:
                continue
            when = (
                f"was applied {applied:%Y-%m-%d %H:%M} UTC"
                if expansion.applied_at
                else "is applied in this same run"
            )
            filled = ", ".join(
                dict.fromkeys(
                    e.replacement
                    for e in self.history
                    if e.migration == expansion.migration and e.source == expansion.source
                )
            )
            return [
                Finding(
                    "contract-too-soon",
                    "data-loss",
                    f"drops {op.table}.{op.column} although {expansion.migration} (which filled "
                    f"{filled} from it) {when}; contract_grace is "
                    f"{format_duration(self.grace_seconds)}: "
                    f"waits until {until:%Y-%m-%d %H:%M} UTC",
                    file,
                    op.line,
                    op.statement,
                    static=self.facts is None,
                    wait_until=until,
                    table=op.table,
                )
            ]
        return []


def _rows(rows: int | None, prefix: str = "") -> str:
    if rows is None:
        return ""
    return f" ({prefix}{rows:,} row{'s' if rows != 1 else ''})"


def _values(values: int | None, what: str, prefix: str = "") -> str:
    if values is None:
        return ""
    noun = f"non-null value{'s' if values != 1 else ''}"
    return f": {prefix}{values:,} {noun}" + (f" {what}" if what else "")


def _typ(op: Op) -> str:
    return f"{op.type_name}({op.type_length})" if op.type_length is not None else op.type_name


def _compatible(old: str | None, new: str) -> bool:
    if old is None:
        return True
    old, new = old.lower(), new.lower()
    return old == new or any(old in group and new in group for group in COMPATIBLE)


_WRITES = re.compile(
    r'\b(?:INSERT\s+INTO|MERGE\s+INTO|COPY)\s+((?:"[^"]+"|\w+)(?:\s*\.\s*(?:"[^"]+"|\w+))?)',
    re.IGNORECASE,
)
_DYNAMIC = re.compile(r"\b(?:EXECUTE|CALL)\b", re.IGNORECASE)


def _written_in_block(text: str) -> set[str] | None:
    """The tables a ``DO`` block's body inserts into, copies into or merges into, named as
    the rules name them; None when it runs dynamic SQL or calls a procedure, which may
    write anywhere."""
    if _DYNAMIC.search(text):
        return None
    found: set[str] = set()
    for name in _WRITES.findall(text):
        parts = [p[1:-1] if p.startswith('"') else p.lower() for p in re.split(r"\s*\.\s*", name)]
        found.add(parts[-1] if len(parts) == 1 or parts[0] == "public" else ".".join(parts))
    return found


def _rename_compatible(old: str | None, new: str) -> bool:
    """Whether a column of type ``old`` renamed would hold what one of type ``new`` holds.
    An unknown old type (static lint of a column the batch does not declare) may be."""
    if old is None:
        return True
    old, new = old.lower(), new.lower()
    return old == new or any(old in group and new in group for group in RENAME_COMPATIBLE)


def rewrites_values(op: Op, old: SqlType | None, enums: set[str]) -> bool:
    """Whether a type change's ``USING`` makes new values rather than handing the old ones
    to the new type: anything but the column through casts that keep every value and a
    fixed-offset ``AT TIME ZONE`` (``steps_keep``), or a ``CASE`` that recreates an enum
    (``enum_mapping`` judges it). ``old``: the column's type before, None if unknown."""
    if not op.any_using:
        return False
    if op.using == "column":
        return not steps_keep(old, op.using_steps, op.using_zone, op.sql_type)
    return not (op.using == "case" and _made_here(op, enums))


def _surely_kept(op: Op) -> bool:
    """A ``USING`` known to keep the values whatever the column's type was: no need to
    measure it, and later figures of the column stay true."""
    return not op.any_using or (
        op.using == "column" and steps_keep(None, op.using_steps, op.using_zone, op.sql_type)
    )


def _made_here(op: Op, enums: set[str]) -> bool:
    """The new type is an enum created by this batch (it does not exist live yet)."""
    return op.type_name in enums or op.type_name.lower() in enums


def conversion_key(op: Op, enums: set[str]) -> tuple[str, str, str, str]:
    """(column, USING, new type, its name) as ``measure_conversion`` takes them. An enum
    this batch creates does not exist yet: its labels are measured as text."""
    if _made_here(op, enums):
        return (op.column, op.using_sql, "text", "text")
    return (op.column, op.using_sql, op.type_sql, op.sql_type.name if op.sql_type else "")


def _binary_coercible(old: str, op: Op, old_length: int | None = None) -> bool:
    """Type changes PostgreSQL makes without rewriting the table."""
    new = op.type_name.lower()
    if old in ("varchar", "text") and new == "text":
        return True
    # Raising or removing a varchar limit is free; lowering it rewrites (and may fail).
    if old == "varchar" and new == "varchar":
        return op.type_length is None or (old_length is not None and op.type_length >= old_length)
    return False


OTHER = "\x00other"
"""Every value of the old enum that neither the CASE nor the new type names: they share
one fate (the ELSE), so they are judged, and counted, together."""


class CaseMapping(Struct, frozen=True):
    """What an enum recreation's ``USING (CASE ...)`` does to each value of the column."""

    op: Op
    labels: tuple[str, ...]
    """The new enum's labels."""
    old: tuple[str, ...] | None
    """The old enum's labels; None when unknown (static analysis, no earlier CREATE)."""

    @property
    def named(self) -> tuple[str, ...]:
        """The values the CASE or the new type names, in a fixed order: counted one by one."""
        keys = [k for k, _ in self.op.case_map]
        return tuple(dict.fromkeys(keys + list(self.labels)))

    def values(self) -> list[str]:
        """The old values, as far as they are known; ``OTHER`` stands for the rest."""
        if self.old is None:
            return [*self.named, OTHER]
        rest = [v for v in self.old if v not in self.named]
        return [v for v in self.named if v in self.old] + ([OTHER] if rest else [])

    def target(self, value: str) -> str | None:
        mapping = dict(self.op.case_map)
        if value in mapping:
            return mapping[value]
        if self.op.case_else_keeps:
            return None if value == OTHER else value  # a value the new type lacks: fails
        return self.op.case_else

    def removed(self) -> list[str]:
        """The values left without a value of the new type (NULL, or a label it lacks)."""
        return [v for v in self.values() if self.target(v) not in self.labels]

    def folds(self) -> list[tuple[str, list[str]]]:
        """Each label that several old values become, with the values that change into it
        (the label's own value, mapped to itself, does not change)."""
        found = []
        for into in self.labels:
            sources = [v for v in self.values() if self.target(v) == into]
            changing = [v for v in sources if v != into]
            if len(sources) >= 2 and changing:
                found.append((into, changing))
        return found

    def say(self, values: list[str]) -> str:
        """``values`` in words; ``OTHER`` by its labels when the old type's are known."""
        named = [v for v in values if v != OTHER]
        if OTHER in values and self.old is not None:
            named += [v for v in self.old if v not in self.named]
        other = ["the values it does not name"] if OTHER in values and self.old is None else []
        return " and ".join(p for p in (", ".join(named), *other) if p)

    def questions(self) -> list[tuple[str, tuple[str, ...]]]:
        """The counts that answer every judgement: rows per named value, and the rest."""
        asked: list[tuple[str, tuple[str, ...]]] = [("inside", (v,)) for v in self.named]
        return [*asked, ("outside", self.named)]


def _holding(rows: int | None) -> str:
    if not rows:
        return ""
    return f"; {rows:,} row{'s hold' if rows != 1 else ' holds'} such a value"


def _renumbers(op: Op) -> str:
    """The message of a renumbering that keeps the order (``Judge.keeps_order``)."""
    groups = f" within each ({', '.join(op.renumber_groups)})" if op.renumber_groups else ""
    way = ", the other way round" if op.renumber_descending else ""
    return (
        f"renumbers {op.table}.{op.renumbered} 1, 2, 3...{groups} in the order of its own "
        f"values{way}, joined back on the key ({', '.join(op.renumber_key)}): no value made "
        "NULL, the order kept (ties broken): nothing is lost"
    )


def _casts_of(op: Op, column: str) -> tuple[tuple[str, str, str], ...]:
    """(argument, type, type's name) of each cast in ``column``'s new value
    (``Op.rewrite_casts``)."""
    return tuple((arg, typ, name) for c, arg, typ, name in op.rewrite_casts if c == column)


def _calls(value: str) -> list[str]:
    """The lossy functions an UPDATE's new value calls, for the message (a division or a
    remainder when it calls none: ``ops._lossy`` read them from the tree)."""
    named = [f for f in sorted(LOSSY_CALLS) if re.search(rf"\b{f}\"?\s*\(", value, re.I)]
    if named:
        return named
    if "::date" in value.lower() or re.search(r"\bas\s+date\b", value, re.I):
        return ["a cast to date"]
    return ["a division or remainder"]


def _measurable(new: SqlType) -> bool:
    """A target type whose misfits ``gather_facts`` can count (``misfit``): a numeric with
    a precision, a time type (its precision, its zone, or the time of day a date drops)."""
    return (new.name == "numeric" and bool(new.mods)) or new.name in TIMES | {"date"}


def _bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _in_schema_of(table: str, new_name: str) -> str:
    """``ALTER TABLE billing.invoices RENAME TO bills`` makes ``billing.bills``."""
    schema, _, _ = table.rpartition(".")
    return f"{schema}.{new_name}" if schema else new_name
