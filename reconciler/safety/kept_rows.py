"""Values kept in another shape than a column copied whole: drops that lose nothing.

``copies`` follows columns copied value for value. Two more shapes keep every value, and
static lint can prove them from the SQL and the history (``declared``, ``constraints``):

- **a boolean kept as rows**: ``INSERT INTO watchers (poll_id) SELECT id FROM polls WHERE
  notifications`` (or ``= true``, ``IS TRUE``) into a table known to be empty. A true is a
  row naming the poll, a false its absence, so ``notifications`` can be told back from
  ``watchers`` as long as the column cannot be NULL (NULL would also be no row), the rows
  are named by a key of ``polls`` whose columns cannot be NULL, copied unchanged, and
  nothing that drops or merges rows (DISTINCT, GROUP BY, LIMIT, ON CONFLICT, a join) is
  written. Only within one migration: between two releases the application writes rows
  of the target (a new watcher) and the shape no longer tells the old column.
- **rows copied with new ids**: ``INSERT INTO u (id, a, b) SELECT gen_random_uuid(), a, b
  FROM t`` then ``DROP TABLE t``. Every column but ``t``'s key ``id`` is copied whole
  (``copies``), and ``u.id`` gets a new generated value. The old id is lost only if
  something still holds it: ``declared`` knows every column the history declared to hold
  keys of ``t`` (a foreign key, in force or dropped since, as long as the column exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct, field

from reconciler.safety.copies import Copy
from reconciler.safety.types import SqlType, lossless

if TYPE_CHECKING:
    from reconciler.safety.constraints import Constraints
    from reconciler.safety.declared import Declared
    from reconciler.safety.operations import Op

Column = tuple[str, str]
"""(table, column)."""

KEEP_ROWS = frozenset(
    {"add-column", "create-index", "add-constraint", "drop-constraint", "set-not-null"}
)
"""Statements on a table that change no value of its existing rows."""
KEEP_OTHERS = frozenset({"drop-column", "alter-type", "rename-column", "drop-not-null"})
"""Statements that change one column only: harmless when it is another one."""


class Flag(Struct, frozen=True):
    """A boolean ``source`` kept as a row of ``into`` for each true, named by ``key``."""

    source: Column
    key: tuple[str, ...]
    into: str
    targets: tuple[str, ...]
    """The columns of ``into`` holding ``key``, in the same order."""
    migration: str
    line: int

    def copy(self) -> Copy:
        how = "kept as rows (a row for each true, none for false) in"
        return Copy((self.into, self.targets[0]), self.migration, self.line, how=how)


class Renewed(Struct, frozen=True):
    """``INSERT INTO into (...) SELECT`` of a table's rows giving ``fresh`` new values."""

    into: str
    fresh: tuple[str, ...]
    migration: str
    line: int


class KeptRows(Struct):
    """Booleans kept as rows (this migration only) and rows copied with new ids."""

    flags: dict[Column, Flag] = field(default_factory=dict)
    renewed: dict[str, Renewed] = field(default_factory=dict)
    """By source table: its latest copy of rows with generated values."""

    def carried(self) -> KeptRows:
        """What a later migration starts from: no flags (the application writes rows of
        their target in between), the copies with new ids (``copies`` says if still whole)."""
        return KeptRows(renewed=self.renewed)

    def where(self, table: str, column: str) -> Copy | None:
        flag = self.flags.get((table, column))
        return flag.copy() if flag else None

    def remember(
        self,
        op: Op,
        migration: str,
        type_of: Callable[[str, str], SqlType | None],
        declared: Declared,
        constraints: Constraints,
        empty: Callable[[str], bool],
    ) -> None:
        """Follow ``op``: forget the flags it may make wrong, then add what it keeps.
        ``type_of``, ``declared``, ``constraints`` and ``empty`` (a table known to hold no
        rows) are as they were before ``op``."""
        self.flags = {s: f for s, f in self.flags.items() if _still_kept(f, op)}
        if op.kind != "insert":
            return
        skips = any(not constraints.keyed(op.copied_table, {g}) for g in op.copy_guard)
        if op.fresh and op.whole_copies and op.copied_table and not skips:  # every row
            self.renewed[op.copied_table] = Renewed(op.table, op.fresh, migration, op.line)
        if op.flag[0]:
            flag = _flag(op, migration, type_of, declared, constraints, empty)
            if flag is not None:
                self.flags[flag.source] = flag

    def renewed_key(
        self,
        table: str,
        missing: Sequence[str],
        copies: Sequence[Copy],
        cascade: bool,
        constraints: Constraints,
        declared: Declared,
        known: Iterable[Column],
    ) -> str | None:
        """Why dropping ``table`` loses nothing although ``missing`` was not copied: it is
        ``table``'s key, the INSERT that copied every other column (``copies``) gave the
        column of that name new generated values, and nothing the history declares holds
        the old keys: no foreign key, and none of the ``known`` columns named after the
        table (``templateMetaId``, ``template_meta_id``), which may hold them undeclared.
        None when that is not proven."""
        record = self.renewed.get(table)
        if (
            cascade
            or record is None
            or record.into == table
            or len(missing) != 1
            or missing[0] not in record.fresh
            or not _key_of(constraints, table, (missing[0],))
            or declared.referred_to(table)
            or any(_named_after(table, c) for c in known)
        ):
            return None
        if any(
            (c.migration, c.line, c.into[0]) != (record.migration, record.line, record.into)
            for c in copies
        ):
            return None
        return (
            f"every column but its key {missing[0]} was copied whole to {record.into} "
            f"({record.migration}, line {record.line}), whose rows get new keys, and no "
            f"column the history declares holds keys of {table}: nothing is lost"
        )


def _named_after(table: str, column: Column) -> bool:
    """Whether ``column``, of another table, is named as one holding keys of ``table``
    would be: the table's name (or its singular) followed by ``id``, in any case, with or
    without underscores (a reference the application keeps without a foreign key)."""

    def squeeze(name: str) -> str:
        return name.rpartition(".")[2].replace("_", "").lower()

    base = squeeze(table)
    names = {base, base.removesuffix("s")}
    return column[0] != table and any(squeeze(column[1]) == f"{n}id" for n in names)


def _still_kept(flag: Flag, op: Op) -> bool:
    """Whether ``flag`` still tells the boolean after ``op``: nothing wrote rows of either
    table, nor changed the boolean, the key or the columns holding it."""
    if op.kind == "do-block":
        return False
    involved = {flag.source[0]: {flag.source[1], *flag.key}, flag.into: set(flag.targets)}
    columns = involved.get(op.table)
    if columns is None:
        return True
    return op.kind in KEEP_ROWS or (op.kind in KEEP_OTHERS and op.column not in columns)


def _flag(
    op: Op,
    migration: str,
    type_of: Callable[[str, str], SqlType | None],
    declared: Declared,
    constraints: Constraints,
    empty: Callable[[str], bool],
) -> Flag | None:
    """The boolean ``op`` keeps as rows, when every condition of the module holds."""
    source, column = op.flag
    if source == op.table or not empty(op.table):
        return None  # rows already there would read as trues
    if type_of(source, column) != SqlType("bool") or not declared.is_not_null(source, column):
        return None
    copied: dict[str, str] = {}
    for target, read in op.flag_copies:
        copied.setdefault(read, target)
    key = _copied_key(source, copied, constraints, declared)
    if key is None:
        return None
    targets = tuple(copied[c] for c in key)
    for read, target in zip(key, targets, strict=True):
        old, new = type_of(source, read), type_of(op.table, target)
        if old is None or new is None or not lossless(old, new):
            return None
    return Flag((source, column), key, op.table, targets, migration, op.line)


def _copied_key(
    table: str, copied: dict[str, str], constraints: Constraints, declared: Declared
) -> tuple[str, ...] | None:
    """A key of ``table`` (PRIMARY KEY, UNIQUE) whose columns are all copied and NOT NULL."""
    for held in constraints.of(table):
        if (
            _key_of(constraints, table, held.columns)
            and set(held.columns) <= copied.keys()
            and all(declared.is_not_null(table, c) for c in held.columns)
        ):
            return held.columns
    return None


def _key_of(constraints: Constraints, table: str, columns: tuple[str, ...]) -> bool:
    """Whether the rows of ``table`` obey a key on exactly ``columns``."""
    return bool(columns) and constraints.holds(table, columns)
