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
    """The constraints of one history by name, followed statement by statement.

    Each is also filed under its table and the table it references (``by_table``): a
    history holds hundreds, and a statement concerns the few of one or two tables."""

    named: dict[str, Held] = field(default_factory=dict)
    writes: int = 0
    """Statements of this migration so far that may have written rows."""
    by_table: dict[str, set[str]] = field(default_factory=dict)
    """The names in ``named`` of the constraints on each table or referring to it."""
    dropped: set[str] = field(default_factory=set)
    """The names dropped by this migration (``dropped_at``), still held until it ends."""

    def carried(self) -> Constraints:
        """What a later migration of the history starts from: those still in force, handed
        over (this migration's tracker is done)."""
        for name in self.dropped:
            held = self.named.get(name)
            if held is not None and held.dropped_at is not None:
                self._remove(name)
        self.dropped.clear()
        self.writes = 0
        return self

    def of(self, table: str) -> list[Held]:
        """The constraints on ``table`` or referring to it, in the order they were made."""
        names = self.by_table.get(table, set())
        return [held for name, held in self.named.items() if name in names]

    def _on(self, table: str) -> list[Held]:
        """``of``, in no particular order: for a question any of them answers."""
        return [self.named[name] for name in self.by_table.get(table, ())]

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
            for h in self._on(table)
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
            for h in self._on(table)
        )

    def primary(self, table: str, columns: tuple[str, ...]) -> bool:
        """Whether the rows obey a PRIMARY KEY over exactly ``columns`` (in any order): each
        row has a value in each of them, and no two rows share all of them."""
        return any(
            h.primary
            and h.table == table
            and set(h.columns) == set(columns)
            and h.dropped_at in (None, self.writes)
            for h in self._on(table)
        )

    def remember(self, op: Op) -> None:
        kind, table = op.kind, op.table
        if kind in WRITES:
            self.writes += 1
        elif kind == "create-table":
            self._forget(table, lambda h: True)
            for columns in op.keys:
                if columns != op.primary_key:
                    self._put(f"{table}({','.join(columns)})", Held(table, columns))
            if op.primary_key:  # under its name, which a DROP CONSTRAINT uses
                self._put(op.primary_name, Held(table, op.primary_key, primary=True))
        elif kind == "create-index" and op.unique and op.columns and not op.filtered:
            self._put(op.new_name or f"{table}({','.join(op.columns)})", Held(table, op.columns))
        elif kind == "add-constraint" and op.columns and op.constraint == "primary":
            name = op.new_name or f"{table.rpartition('.')[2]}_pkey"
            self._put(name, Held(table, op.columns, primary=True))
        elif kind == "add-constraint" and op.columns and (op.unique or op.references[0]):
            self._put(
                op.new_name or f"{table}({','.join(op.columns)})",
                Held(table, op.columns, op.references),
            )
        elif kind in ("drop-constraint", "drop-index"):
            name = op.new_name if kind == "drop-constraint" else table.rpartition(".")[2]
            if name in self.named:
                self._put(name, replace(self.named[name], dropped_at=self.writes))
                self.dropped.add(name)
        elif kind == "drop-column":
            gone = op.column
            self._forget(
                table,
                lambda h: (
                    (h.table == table and gone in h.columns)
                    or (h.references[0] == table and gone in h.references[1])
                ),
            )
        elif kind == "drop-table":
            self._forget(table, lambda h: True)
        elif kind == "rename-column":
            self._rename(table, lambda h: _renamed_column(h, table, op.column, op.new_name))
        elif kind == "rename-table":
            schema, _, _ = table.rpartition(".")
            new = f"{schema}.{op.new_name}" if schema else op.new_name
            self._rename(table, lambda h: _renamed_table(h, table, new))

    def _put(self, name: str, held: Held) -> None:
        """``held`` under ``name``; one replaced keeps its place in ``named``."""
        old = self.named.get(name)
        if old is not None:
            self._unfile(name, old)
        self.named[name] = held
        for table in (held.table, held.references[0]):
            if table:
                self.by_table.setdefault(table, set()).add(name)

    def _remove(self, name: str) -> None:
        self._unfile(name, self.named.pop(name))

    def _unfile(self, name: str, held: Held) -> None:
        for table in (held.table, held.references[0]):
            names = self.by_table.get(table)
            if names is not None:
                names.discard(name)
                if not names:
                    del self.by_table[table]

    def _forget(self, table: str, gone: Callable[[Held], bool]) -> None:
        """Drop those on or referring to ``table`` for which ``gone`` holds."""
        for name in [n for n in self.by_table.get(table, ()) if gone(self.named[n])]:
            self._remove(name)

    def _rename(self, table: str, renamed: Callable[[Held], Held]) -> None:
        """``renamed`` applied to the constraints on or referring to ``table``."""
        for name in list(self.by_table.get(table, ())):
            self._put(name, renamed(self.named[name]))


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
