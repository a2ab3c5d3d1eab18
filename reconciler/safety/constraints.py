"""Keys and foreign keys a history declares, and whether the data still obeys them.

A link turned around (``UPDATE a SET x = b.id FROM b WHERE a.id = b.a_id``, then ``DROP
COLUMN b.a_id``) keeps every link only if each ``b.a_id`` names one existing ``a`` row
(a foreign key) and no two ``b`` rows name the same one (a unique key), and ``b.id`` tells
the rows of ``b`` apart. Static lint has no data, but it has the history: ``Constraints``
follows the keys (PRIMARY KEY, UNIQUE, unique indexes that are neither partial nor over an
expression) and foreign keys that statements create, rename and drop. Prisma drops a
foreign key and its unique index just before it turns the link around; the rows still obey
them until a statement writes to a table, so a constraint dropped in the same migration with
no write since still counts.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from msgspec import Struct, field
from msgspec.structs import replace

if TYPE_CHECKING:
    from reconciler.safety.operations import Op

WRITES = frozenset({"insert", "update", "delete", "truncate", "do-block", "rebuild"})


class Held(Struct, frozen=True):
    """One key (``references`` empty) or foreign key of ``table`` over ``columns``."""

    table: str
    columns: tuple[str, ...]
    references: tuple[str, tuple[str, ...]] = ("", ())
    dropped_at: int | None = None
    """The count of writes when it was dropped (None: in force)."""
    primary: bool = False
    """A PRIMARY KEY, held under its own name: its columns are also NOT NULL."""


class Constraints(Struct):
    """The constraints of one history by name, followed statement by statement."""

    named: dict[str, Held] = field(default_factory=dict)
    writes: int = 0
    """Statements of this migration so far that may have written rows."""

    def carried(self) -> Constraints:
        """What a later migration of the history starts from: those still in force."""
        return Constraints({n: h for n, h in self.named.items() if h.dropped_at is None})

    def holds(
        self,
        table: str,
        columns: tuple[str, ...],
        references: tuple[str, tuple[str, ...]] = ("", ()),
    ) -> bool:
        """Whether the rows obey a key (or, with ``references``, a foreign key) on ``columns``."""
        return any(
            h.table == table
            and h.columns == columns
            and h.references == references
            and h.dropped_at in (None, self.writes)
            for h in self.named.values()
        )

    def keyed(self, table: str, columns: set[str]) -> bool:
        """Whether ``columns`` include every column of a PRIMARY KEY of ``table`` in force:
        a copy of them tells each row of ``table`` apart, so values copied with them stay
        tied to the row that held them."""
        return any(
            h.primary
            and h.table == table
            and set(h.columns) <= columns
            and h.dropped_at in (None, self.writes)
            for h in self.named.values()
        )

    def primary(self, table: str, columns: tuple[str, ...]) -> bool:
        """Whether the rows obey a PRIMARY KEY over exactly ``columns`` (in any order): each
        row has a value in each of them, and no two rows share all of them."""
        return any(
            h.primary
            and h.table == table
            and set(h.columns) == set(columns)
            and h.dropped_at in (None, self.writes)
            for h in self.named.values()
        )

    def remember(self, op: Op) -> None:
        kind, table = op.kind, op.table
        if kind in WRITES:
            self.writes += 1
        elif kind == "create-table":
            self._forget(lambda h: table in (h.table, h.references[0]))
            for columns in op.keys:
                if columns != op.primary_key:
                    self.named[f"{table}({','.join(columns)})"] = Held(table, columns)
            if op.primary_key:  # under its name, which a DROP CONSTRAINT uses
                self.named[op.primary_name] = Held(table, op.primary_key, primary=True)
        elif kind == "create-index" and op.unique and op.columns and not op.filtered:
            self.named[op.new_name or f"{table}({','.join(op.columns)})"] = Held(table, op.columns)
        elif kind == "add-constraint" and op.columns and op.constraint == "primary":
            name = op.new_name or f"{table.rpartition('.')[2]}_pkey"
            self.named[name] = Held(table, op.columns, primary=True)
        elif kind == "add-constraint" and op.columns and (op.unique or op.references[0]):
            self.named[op.new_name or f"{table}({','.join(op.columns)})"] = Held(
                table, op.columns, op.references
            )
        elif kind in ("drop-constraint", "drop-index"):
            name = op.new_name if kind == "drop-constraint" else table.rpartition(".")[2]
            if name in self.named:
                self.named[name] = replace(self.named[name], dropped_at=self.writes)
        elif kind == "drop-column":
            gone = op.column
            self._forget(
                lambda h: (
                    (h.table == table and gone in h.columns)
                    or (h.references[0] == table and gone in h.references[1])
                )
            )
        elif kind == "drop-table":
            self._forget(lambda h: table in (h.table, h.references[0]))
        elif kind == "rename-column":
            self._rename(table, lambda h: _renamed_column(h, table, op.column, op.new_name))
        elif kind == "rename-table":
            schema, _, _ = table.rpartition(".")
            new = f"{schema}.{op.new_name}" if schema else op.new_name
            self._rename(table, lambda h: _renamed_table(h, table, new))

    def _forget(self, gone: Callable[[Held], bool]) -> None:
        self.named = {n: h for n, h in self.named.items() if not gone(h)}

    def _rename(self, table: str, renamed: Callable[[Held], Held]) -> None:
        """``renamed`` applied to the constraints on or referring to ``table``, the others
        kept as they are: a history renames often, and holds hundreds of constraints."""
        self.named = {
            n: renamed(h) if table in (h.table, h.references[0]) else h
            for n, h in self.named.items()
        }


def _renamed_column(held: Held, table: str, old: str, new: str) -> Held:
    def move(columns: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new if c == old else c for c in columns)

    if held.table == table:
        held = replace(held, columns=move(held.columns))
    if held.references[0] == table:
        held = replace(held, references=(table, move(held.references[1])))
    return held


def _renamed_table(held: Held, old: str, new: str) -> Held:
    if held.table == old:
        held = replace(held, table=new)
    if held.references[0] == old:
        held = replace(held, references=(new, held.references[1]))
    return held
