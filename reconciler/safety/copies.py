"""Where a column's values went: copies a later drop of the column can count on.

Static lint has no data, so a ``DROP COLUMN`` is a loss unless the history shows that every
value of the column was put elsewhere first. ``Copies`` follows one history statement by
statement (the ``Judge`` feeds it) and remembers only copies that provably took every value
of every row unchanged:

- ``UPDATE t SET new = old`` (or ``old::type``) with no FROM and no WHERE, or only
  ``new IS NULL`` where ``new`` was added empty by the same migration (so it matches
  every row; on a column that may hold values it skips those rows);
- ``INSERT INTO u (new) SELECT old FROM t`` from that one table, with nothing that drops
  rows (DISTINCT, GROUP BY, LIMIT, ON CONFLICT, a WHERE) but ``WHERE old IS NOT NULL``
  (a row without a value has none to lose), ``AND``-ed with the same test on a primary key
  of ``t`` (which skips no row);
- ``UPDATE t SET new = CASE WHEN old = 'a' THEN 'A' ... END`` over every row, mapping
  values one to one with no ELSE, followed by ``SET NOT NULL new`` before anything else
  writes: a value no branch names would have become NULL and failed it;
- a link turned around, ``UPDATE a SET x = b.v FROM b WHERE a.p = b.k``, when the history's
  constraints prove every ``b.k`` names one ``a`` row of its own and ``b.v`` is a key
  (``constraints``): the link ``b.k`` held is then kept in ``a.x``;

each cast, and the assignment to the target's type, being one that keeps every value
(``types.lossless``), or a cast to an enum (a value without a label fails the migration,
and distinct labels stay distinct). A copy is forgotten as soon as a later statement may
make it incomplete: rows written to the source table, the source column or the target
rewritten, the target dropped or its type changed, a ``DO`` block. The rules consult it
(``where``) only without a database: with one, the figures decide.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import TYPE_CHECKING

from msgspec import Struct, field
from msgspec.structs import replace

from reconciler.safety.types import SqlType, lossless

if TYPE_CHECKING:
    from reconciler.safety.constraints import Constraints
    from reconciler.safety.operations import Op

Column = tuple[str, str]
"""(table, column)."""


class Copy(Struct, frozen=True):
    """One column copied whole into ``into``, by statement ``line`` of ``migration``."""

    into: Column
    migration: str
    line: int
    how: str = "copied whole to"
    """How the values went: also ``turned around into`` (a link: ``into`` names, for each
    row of the source, the row it linked), ``mapped one to one into`` and ``kept under its
    own key of a JSON object in``."""

    tied: bool = True
    """Whether each copied value stays tied to the row that held it: an ``UPDATE`` of the
    same row, or an ``INSERT ... SELECT`` that also copies a primary key of the source. An
    ``INSERT INTO archive (name) SELECT name FROM users`` keeps the names but not whose they
    were: enough when the whole table goes (nothing is left to tie them to), not for a
    dropped column."""

    def __str__(self) -> str:
        return f"{self.into[0]}.{self.into[1]} ({self.migration}, line {self.line})"


class Copies(Struct):
    """The whole copies made so far, by source column (the latest one kept)."""

    made: dict[Column, Copy] = field(default_factory=dict)
    pending: dict[Column, tuple[Column, Copy]] = field(default_factory=dict)
    """Targets of a one-to-one CASE mapping, by target: a whole copy of the source once a
    ``SET NOT NULL`` on the target proves no value fell to the ELSE (NULL)."""
    consumed: set[Column] = field(default_factory=set)
    """Targets whose source has since been dropped: they now hold the only copy."""
    earlier: dict[Column, Copy] = field(default_factory=dict)
    """Copies earlier migrations of the history made, followed as ``made`` is: named in a
    drop's finding, never counted (``carried``)."""

    def where(self, table: str, column: str) -> Copy | None:
        return self.made.get((table, column))

    def before(self, table: str, column: str) -> Copy | None:
        """The copy of the column an earlier migration made, still whole but for the rows
        written since."""
        return self.earlier.get((table, column))

    def carried(self) -> Copies:
        """What a later migration of the history starts from: its copies as ``earlier``, none
        that counts. Between two deployments the application writes rows of the source that
        no copy holds unless it writes both columns, which no file shows (``corpus_measure``
        measures such a row lost). The targets holding the only copy are still known."""
        self.earlier.update(self.made)  # handed over: this migration's tracker is done
        return Copies(earlier=self.earlier, consumed=self.consumed)

    def remember(
        self,
        op: Op,
        migration: str,
        type_of: Callable[[str, str], SqlType | None],
        enums: AbstractSet[str],
        unwritten: Callable[[str, str], bool],
        constraints: Constraints,
    ) -> None:
        """Follow ``op``: forget what it may make incomplete, then add what it copies.
        ``type_of`` gives a column's type before ``op``; ``enums``, the enum types known;
        ``unwritten``, whether a column is known to be NULL in every row (added empty)."""
        table, kind = op.table, op.kind
        if kind == "set-not-null" and (table, op.column) in self.pending:
            origin, proven = self.pending.pop((table, op.column))
            self.made[origin] = proven
        elif kind not in ("add-column", "create-index", "add-constraint", "create-enum"):
            self.pending.clear()  # anything else may write rows or change the columns
        if kind in ("drop-column", "drop-table"):
            self.consumed.update(
                copy.into
                for src, copy in self.made.items()
                if src == (table, op.column) or (kind == "drop-table" and src[0] == table)
            )
        if kind == "do-block":
            self.made.clear()  # it may write or rewrite anything
            self.earlier.clear()
        elif kind == "update":
            changed = {(table, c) for c in op.columns}
            self._forget(lambda src, copy: src in changed or copy.into in changed)
        elif kind == "insert":
            self._forget(lambda src, copy: src[0] == table)  # new rows are not copied
        elif kind in ("delete", "truncate"):  # rows of a copy made elsewhere go
            kept = set(op.null_guarded)  # unless every row deleted holds NULL there
            self._forget(
                lambda src, copy: (
                    copy.into[0] == table and src[0] != table and copy.into[1] not in kept
                )
            )
        elif kind in ("drop-column", "alter-type"):
            gone = (table, op.column)
            self._forget(
                lambda src, copy: copy.into == gone or (kind != "alter-type" and src == gone)
            )
        elif kind in ("drop-table", "create-table", "rebuild"):
            self._forget(lambda src, copy: table in (src[0], copy.into[0]))
        elif kind == "rename-column":
            self._rename(lambda c: (table, op.new_name) if c == (table, op.column) else c)
        elif kind == "rename-table":
            schema, _, _ = table.rpartition(".")
            new = f"{schema}.{op.new_name}" if schema else op.new_name
            self._rename(lambda c: (new, c[1]) if c[0] == table else c)
        if kind == "update" and op.link[0] and _link_kept(op, type_of, constraints):
            joined, key = op.link[:2]
            self.made[(joined, key)] = Copy(
                (table, op.columns[0]), migration, op.line, how="turned around into"
            )
        if kind == "update":
            for into, mapped in op.mapped_copies:
                typed = type_of(table, into)  # distinct labels or texts stay distinct
                if typed is not None and (typed.name in enums or typed == SqlType("text")):
                    made = Copy((table, into), migration, op.line, how="mapped one to one into")
                    self.pending[(table, into)] = ((table, mapped), made)
        if kind in ("update", "insert"):
            source = op.copied_table or table
            tied = kind == "update" or constraints.keyed(source, {c for _, c, _ in op.whole_copies})
            for target, column, casts in op.whole_copies:
                if op.filtered and not unwritten(table, target):
                    continue  # WHERE new IS NULL skips the rows where new holds a value
                if any(g != column and not constraints.keyed(source, {g}) for g in op.copy_guard):
                    continue  # WHERE other IS NOT NULL skips rows where this one has values
                if _keeps_values(type_of(source, column), casts, type_of(table, target), enums):
                    made = Copy((table, target), migration, op.line, tied=tied)
                    self.made[(source, column)] = made
        if kind == "update":
            for target, column in op.wrapped_copies:
                if op.filtered and not unwritten(table, target):
                    continue
                if _reads_back_from_json(type_of(table, column), type_of(table, target)):
                    how = "kept under its own key of a JSON object in"
                    self.made[(table, column)] = Copy((table, target), migration, op.line, how)

    def _forget(self, gone: Callable[[Column, Copy], bool]) -> None:
        self.made = {src: copy for src, copy in self.made.items() if not gone(src, copy)}
        self.earlier = {src: copy for src, copy in self.earlier.items() if not gone(src, copy)}

    def _rename(self, move: Callable[[Column], Column]) -> None:
        self.made = {
            move(src): replace(copy, into=move(copy.into)) for src, copy in self.made.items()
        }
        self.earlier = {
            move(src): replace(copy, into=move(copy.into)) for src, copy in self.earlier.items()
        }
        self.consumed = {move(column) for column in self.consumed}


def _link_kept(
    op: Op, type_of: Callable[[str, str], SqlType | None], constraints: Constraints
) -> bool:
    """``UPDATE a SET x = b.v FROM b WHERE a.p = b.k`` keeps every link ``b.k`` holds when
    each ``b.k`` names an ``a`` row (a foreign key), no two name the same (a key on ``k``),
    ``b.v`` tells ``b``'s rows apart (a key on ``v``), and ``x`` holds ``v`` unchanged."""
    joined, key, mine, value = op.link
    return (
        constraints.holds(joined, (key,), (op.table, (mine,)))
        and constraints.holds(joined, (key,))
        and constraints.holds(joined, (value,))
        and _keeps_values(type_of(joined, value), (), type_of(op.table, op.columns[0]), set())
    )


_JSON_EXACT = frozenset({"text", "varchar", "uuid", "int2", "int4", "int8", "numeric", "bool"})
"""Types whose every value a JSON object holds exactly: a string, a number with all its
digits, a boolean (not ``char(n)``, whose text form drops trailing spaces, nor floats,
whose NaN and infinities JSON has no number for)."""


def _reads_back_from_json(source: SqlType | None, target: SqlType | None) -> bool:
    """Whether ``jsonb_build_object(..., 'key', old)`` into a ``json``/``jsonb`` column keeps
    each value of ``old`` as it was: unknown types never do."""
    return (
        source is not None
        and target is not None
        and target.name in ("json", "jsonb")
        and source.name in _JSON_EXACT
    )


def _keeps_values(
    source: SqlType | None,
    casts: tuple[SqlType, ...],
    target: SqlType | None,
    enums: AbstractSet[str],
) -> bool:
    """Whether a value of type ``source``, cast through ``casts`` and assigned to a column
    of type ``target``, arrives unchanged (or the statement fails): unknown types never do."""
    current = source
    for cast in (*casts, target):
        if cast is None:
            return False
        if (
            cast.name in enums
            and current is not None
            and current.name in (cast.name, "text", "varchar")
        ):
            current = cast  # a label or an error, never another value
            continue
        if current is None or not lossless(current, cast):
            return False
        current = cast
    return True
