"""What a history declares about columns: which cannot be NULL, which hold another table's keys.

Static lint has no catalog. Two verdicts need more than the values copied:

- a boolean kept as rows (``kept_rows``) is lossless only if the column cannot be NULL: a
  NULL becomes no row, exactly like false;
- a table dropped after its rows were copied with new ids loses its old ids, which matters
  only if a column elsewhere holds them.

``Declared`` follows both through the history's statements. It errs one way only: a NOT
NULL is kept only while every statement that may remove it is understood, and a column
declared to hold keys of a table stays counted after its foreign key is dropped (its values
are still there) until the column or its table goes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from msgspec import Struct, field

if TYPE_CHECKING:
    from reconciler.safety.constraints import Constraints
    from reconciler.safety.operations import Op

Column = tuple[str, str]
"""(table, column)."""

_MAY_REFER = re.compile(r"\b(references|execute|call)\b", re.IGNORECASE)
"""A ``DO`` body with one of these words may declare a foreign key (or run SQL that does)."""


class Declared(Struct):
    """NOT NULL columns and the columns declared to refer to each table, by history, filed
    by table: a statement concerns one table, the history holds hundreds."""

    not_null: dict[str, set[str]] = field(default_factory=dict)
    """Each table's columns that cannot be NULL."""
    refers: dict[str, dict[str, str]] = field(default_factory=dict)
    """Each table's columns declared (by a foreign key, in force or dropped since) to hold
    keys of another table, and that table."""
    unknown_refers: bool = False
    """A ``DO`` block may have declared foreign keys nobody can read: any table may be
    referred to."""

    def carried(self) -> Declared:
        """What a later migration of the history starts from: all of it, handed over."""
        return self

    def is_not_null(self, table: str, column: str) -> bool:
        return column in self.not_null.get(table, ())

    def referred_to(self, table: str) -> bool:
        """Whether a column may hold keys of ``table``, as far as the history declares."""
        return self.unknown_refers or any(
            table in columns.values() for columns in self.refers.values()
        )

    def remember(self, op: Op, constraints: Constraints) -> None:
        """Follow ``op``; ``constraints`` as they were before it (for a dropped name)."""
        kind, table = op.kind, op.table
        if kind == "create-table":
            if not op.if_not_exists:  # else the table may exist, declared otherwise
                self._forget_table(table)
                self._not_null(table, op.not_nulls)
            self._refer(table, op.refers)
        elif kind == "add-column":
            if op.not_null:
                self._not_null(table, (op.column,))
            self._refer(table, op.refers)
        elif kind == "set-not-null":
            self._not_null(table, (op.column,))
        elif kind == "add-constraint":
            self._add_constraint(op)
        elif kind == "drop-constraint" and not _foreign_key(constraints, op.new_name):
            # Since PostgreSQL 18 a NOT NULL is a constraint that can be dropped by name.
            self.not_null.pop(table, None)
        elif kind in ("drop-not-null", "drop-column"):
            self.not_null.get(table, set()).discard(op.column)
            if kind == "drop-column":
                self.refers.get(table, {}).pop(op.column, None)
        elif kind in ("drop-table", "rebuild"):
            self._forget_table(table)
        elif kind == "rename-column":
            self._rename_column(table, op.column, op.new_name)
        elif kind == "rename-table":
            self._rename_table(table, op.new_name)
        elif kind == "do-block":
            self.not_null.clear()  # it may drop any NOT NULL
            self.unknown_refers = self.unknown_refers or bool(_MAY_REFER.search(op.statement))

    def _not_null(self, table: str, columns: Iterable[str]) -> None:
        self.not_null.setdefault(table, set()).update(columns)

    def _refer(self, table: str, pairs: Iterable[tuple[str, str]]) -> None:
        """(column, table referred to) for each pair."""
        for column, other in pairs:
            self.refers.setdefault(table, {})[column] = other

    def _add_constraint(self, op: Op) -> None:
        if op.constraint == "primary":
            self._not_null(op.table, op.columns)
        elif op.references[0]:
            self._refer(op.table, ((c, op.references[0]) for c in op.columns))

    def _forget_table(self, table: str) -> None:
        self.not_null.pop(table, None)
        self.refers.pop(table, None)

    def _rename_column(self, table: str, old: str, new: str) -> None:
        columns = self.not_null.get(table)
        if columns is not None and old in columns:
            columns.discard(old)
            columns.add(new)
        refers = self.refers.get(table)
        if refers is not None and old in refers:
            refers[new] = refers.pop(old)

    def _rename_table(self, old: str, new_name: str) -> None:
        schema, _, _ = old.rpartition(".")
        new = f"{schema}.{new_name}" if schema else new_name
        if old in self.not_null:
            self.not_null.setdefault(new, set()).update(self.not_null.pop(old))
        if old in self.refers:
            self.refers.setdefault(new, {}).update(self.refers.pop(old))
        for columns in self.refers.values():
            for column, other in columns.items():
                if other == old:
                    columns[column] = new


def _foreign_key(constraints: Constraints, name: str) -> bool:
    """Whether ``name`` is a foreign key the history created (dropping it keeps NOT NULLs)."""
    held = constraints.named.get(name)
    return held is not None and bool(held.references[0])
