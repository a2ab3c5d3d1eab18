"""Links carried through a mapping table: when dropping the old link column loses nothing.

A migration that moves rows into a new table often keeps the old key in a column of it,
then points each child row at the new row through that column, and drops the old link::

    INSERT INTO "Envelope" (id, "secondaryId", ...) SELECT ..., 'document_' || d.id FROM ...;
    UPDATE "Field" SET "envelopeId" = e.id
      FROM "Document" d JOIN "Envelope" e ON e."secondaryId" = 'document_' || d.id
      WHERE "Field"."documentId" = d.id;
    ALTER TABLE "Field" DROP COLUMN "documentId", ALTER COLUMN "envelopeId" SET NOT NULL;
    CREATE UNIQUE INDEX ON "Envelope" ("secondaryId");

Static lint credits the drop (``Links.kept``) only when the SQL proves that every child row
still names, through the new column, the row its old link named:

- the new column (``x``) was added empty by this migration, and from then until its
  ``SET NOT NULL`` nothing writes the child table but such UPDATEs of ``x`` (none of which
  sets a link column): ``SET NOT NULL`` then proves every row was matched by one of them;
- one UPDATE carries the dropped column ``c``; any other carries another link column ``c2``
  that a CHECK in force proves is never set together with ``c`` (else the later UPDATE
  overwrites the first one's link), through the same mapping table, with a prefix apart
  from ``c``'s (neither starts the other): the two kinds of keys never meet in ``m.w``;
- ``m.v`` (the value stored) and ``m.w`` (the column matched) are keys of the mapping table:
  in force, or created later in the same transaction with no write to the table before
  (if the index cannot be built the migration rolls back, drop included);
- ``'p_' || k`` tells keys apart: the key's type prints each value one way (integers,
  ``text``, ``varchar``, ``uuid``), and ``x`` holds ``m.v`` unchanged;
- nothing writes the mapping table between the UPDATE and the drop, and no transaction ends
  (``COMMIT``, ``CONCURRENTLY``, ``VACUUM``) between the drop and what it relies on after it.

From ``x`` one finds the mapping row (``v`` is a key), its ``w``, and from it the old key
(strip the prefix): the link is kept. Anything else keeps blocking.

The same reasoning credits a link turned around into rows the migration made itself
(``Links.kept`` too), when the history declares no key on the temporary link::

    CREATE TABLE "Settings" ("id" TEXT PRIMARY KEY, ..., "orgId" TEXT);
    INSERT INTO "Settings" ("id", "orgId") SELECT gen_id(), o."id" FROM "Org" o
      WHERE o."settingsId" IS NULL;
    UPDATE "Org" o SET "settingsId" = s."id" FROM "Settings" s
      WHERE s."orgId" = o."id" AND o."settingsId" IS NULL;
    ALTER TABLE "Settings" DROP COLUMN "orgId";
    ALTER TABLE "Org" ALTER COLUMN "settingsId" SET NOT NULL;

The table was created empty by this migration and that one INSERT wrote it, one row per
``Org`` row whose ``settingsId`` was NULL (one table read, nothing that merges or multiplies
rows, no function that may return a set), keyed by ``Org.id``: so each ``orgId`` names its
own ``Org`` row. Nothing writes either table until the UPDATE, and after it nothing writes
``settingsId`` or adds or removes ``Org`` rows until ``SET NOT NULL`` proves every such row
was matched, in the same transaction: each settings row is named by the row it linked.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from msgspec import Struct, field

from reconciler.safety.constraints import WRITES
from reconciler.safety.copies import Copy
from reconciler.safety.types import SqlType, lossless

if TYPE_CHECKING:
    from reconciler.safety.constraints import Constraints
    from reconciler.safety.operations import Op

Column = tuple[str, str]
"""(table, column)."""

SCALAR_CALLS = frozenset(
    {
        "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v4", "uuidv4", "uuidv7", "now",
        "clock_timestamp", "statement_timestamp", "transaction_timestamp", "random", "md5",
        "lower", "upper", "concat", "nextval",
    }
)  # fmt: skip
"""Built-in functions that return one value per call (a SELECT list keeps its row count)."""
KEY_TYPES = frozenset({"int2", "int4", "int8", "text", "varchar", "uuid"})
"""Types whose text form names one value only: ``'p_' || k`` keeps two keys apart."""
COLUMN_CHANGES = frozenset({"alter-type", "rename-column", "drop-column"})


class Carry(Struct, frozen=True):
    """One UPDATE that set the target from the link column ``link`` through ``mapping``."""

    link: str
    mapping: tuple[str, str, str]
    """(table, value column stored in the target, column matched with the key)."""
    prefix: str
    migration: str
    line: int


class Group(Struct):
    """The UPDATEs that filled one column added empty, while nothing else wrote its table."""

    table: str
    target: str
    carries: list[Carry] = field(default_factory=list)
    apart: set[frozenset[str]] = field(default_factory=set)
    """Pairs of link columns a CHECK in force proved never both hold a value."""
    proven: bool = False
    """A ``SET NOT NULL`` of the target came since: every row was matched."""

    @property
    def links(self) -> set[str]:
        return {c.link for c in self.carries}


class Fill(Struct, frozen=True):
    """Rows an INSERT made in a table created empty: one per row of ``source`` whose
    ``guards`` were NULL, the column filled holding that row's key ``key``."""

    source: str
    key: str
    guards: frozenset[str]


class Back(Struct):
    """A link turned around into ``table.column`` (``value``: the key of the filled table
    it holds), by statement ``line`` of ``migration``."""

    table: str
    column: str
    value: str
    migration: str
    line: int
    proven: bool = False
    """A ``SET NOT NULL`` of ``column`` came since: every row was matched."""


class Links(Struct):
    """Checks that keep link columns apart (across a history) and the carries of the
    current migration (``start`` clears them)."""

    exclusions: dict[str, tuple[str, tuple[tuple[str, str], ...]]] = field(default_factory=dict)
    """By constraint name: its table and the pairs of columns never both non-null."""
    groups: dict[Column, Group] = field(default_factory=dict)
    spoiled: set[Column] = field(default_factory=set)
    """Targets written otherwise in this migration: no carry into them counts any more."""
    opaque: bool = False
    """A ``DO`` block ran in this migration: it may have written anything."""
    functions: dict[str, bool] = field(default_factory=dict)
    """Functions the history created, by name: whether each returns a set."""
    fresh: set[str] = field(default_factory=set)
    """Tables this migration created that nothing has written yet."""
    fills: dict[Column, Fill] = field(default_factory=dict)
    backs: dict[Column, Back] = field(default_factory=dict)
    """Links turned around into rows this migration made, by the column that held them."""

    def carried(self) -> Links:
        """What a later migration of the history starts from: the checks and functions."""
        return Links(self.exclusions, functions=self.functions)

    def start(self) -> None:
        self.groups.clear()
        self.spoiled.clear()
        self.opaque = False
        self.fresh.clear()
        self.fills.clear()
        self.backs.clear()

    def remember(
        self,
        op: Op,
        migration: str,
        type_of: Callable[[str, str], SqlType | None],
        unwritten: Callable[[str, str], bool],
        constraints: Constraints,
    ) -> None:
        """Follow ``op`` (after it was judged): ``type_of``, ``unwritten`` and
        ``constraints`` answer for the state before it."""
        self._follow_checks(op)
        self._follow_fills(op, migration, type_of, constraints)
        if op.kind == "do-block":
            self.opaque = True
            self._spoil(lambda g: True)
            return
        if op.kind == "set-not-null" and (op.table, op.column) in self.groups:
            self.groups[(op.table, op.column)].proven = True
        carries = self._carries(op, migration, type_of) if op.kind == "update" else {}
        self._spoil(lambda g: _spoils(op, g, carries))
        for target, carry in carries.items():
            key = (op.table, target)
            if key in self.spoiled or self.opaque:
                continue
            group = self.groups.get(key)
            if group is None:
                if not unwritten(*key):
                    self.spoiled.add(key)
                    continue
                group = self.groups[key] = Group(*key)
            if carry.link in group.links or set(op.columns) & (group.links | {carry.link}):
                del self.groups[key]  # a second carry of one link, or a link overwritten
                self.spoiled.add(key)
                continue
            group.apart |= {
                frozenset((carry.link, other))
                for other in group.links
                if self._excluded(op.table, carry.link, other)
            }
            group.carries.append(carry)

    def kept(
        self, table: str, column: str, ahead: Sequence[Op], constraints: Constraints
    ) -> Copy | None:
        """Where the links of ``table.column``, dropped now, are kept; ``ahead``: the
        statements of the migration after the drop (the drop's own ALTER included)."""
        for group in self.groups.values():
            if group.table != table or column not in group.links:
                continue
            found = _kept(group, column, ahead, constraints)
            if found is not None:
                return found
        back = self.backs.get((table, column))
        if back is None or not constraints.holds(table, (back.value,)):
            return None
        if not back.proven and not _not_null_ahead(Group(back.table, back.column), ahead):
            return None
        return Copy((back.table, back.column), back.migration, back.line, "turned around into")

    # -- links turned around into rows this migration made -------------------------------

    def _follow_fills(
        self,
        op: Op,
        migration: str,
        type_of: Callable[[str, str], SqlType | None],
        constraints: Constraints,
    ) -> None:
        kind, table = op.kind, op.table
        made = self._backs(op, migration, type_of, constraints) if kind == "update" else {}
        filled = self._filled(op, type_of, constraints) if kind == "insert" else {}
        if kind == "create-function":
            self.functions[table] = op.returns_set
        elif kind == "set-not-null":
            for back in self.backs.values():
                back.proven |= (back.table, back.column) == (table, op.column)
        if kind in WRITES or kind in ("do-block", "create-table") or kind in COLUMN_CHANGES:
            self.fills = {
                at: fill for at, fill in self.fills.items() if not _forgets(op, at, fill.source)
            }
            self.backs = {
                at: back
                for at, back in self.backs.items()
                if not _forgets(op, at, back.table, back.column, back.value)
            }
        if kind == "do-block":
            self.fresh.clear()
        elif kind in WRITES or kind == "rename-table":
            self.fresh.discard(table)
        elif kind == "create-table" and not op.if_not_exists:
            self.fresh.add(table)
        self.fills.update(filled)
        self.backs.update(made)

    def _filled(
        self,
        op: Op,
        type_of: Callable[[str, str], SqlType | None],
        constraints: Constraints,
    ) -> dict[Column, Fill]:
        """The columns an INSERT into a table still empty fills with a key of the one
        table it reads, row for row (no function in its SELECT list that may return a set),
        each value arriving unchanged."""
        if op.table not in self.fresh or self.opaque:
            return {}
        if any(self.functions.get(c, c not in SCALAR_CALLS) for c in op.calls):
            return {}
        found = {}
        for source, column, key in op.per_row:
            typed, into = type_of(source, key), type_of(op.table, column)
            if typed is None or into is None or not lossless(typed, into):
                continue
            if constraints.holds(source, (key,)):
                found[(op.table, column)] = Fill(source, key, frozenset(op.null_guarded))
        return found

    def _backs(
        self,
        op: Op,
        migration: str,
        type_of: Callable[[str, str], SqlType | None],
        constraints: Constraints,
    ) -> dict[Column, Back]:
        """The links ``op`` turns around: ``UPDATE a SET x = b.v FROM b WHERE b.m = a.k``
        where ``b`` was filled from ``a`` (``k`` into ``m``) while ``x`` was NULL."""
        found: dict[Column, Back] = {}
        for target, link, mapped, value, match, prefix, source, key in op.mapped_links:
            fill = self.fills.get((mapped, match))
            stored, into = type_of(mapped, value), type_of(op.table, target)
            if (
                fill is None
                or prefix
                or (source, key, link) != (op.table, fill.key, fill.key)
                or fill.source != op.table
                or target not in fill.guards
                or not constraints.holds(mapped, (value,))
                or stored is None
                or into is None
                or not lossless(stored, into)
            ):
                continue
            found[(mapped, match)] = Back(op.table, target, value, migration, op.line)
        return found

    # -- the checks that keep two link columns apart -----------------------------------

    def _excluded(self, table: str, one: str, other: str) -> bool:
        return any(
            owner == table and ((one, other) in pairs or (other, one) in pairs)
            for owner, pairs in self.exclusions.values()
        )

    def _follow_checks(self, op: Op) -> None:
        kind, table = op.kind, op.table
        if kind == "add-constraint" and op.excludes and not op.not_valid:
            self.exclusions[op.new_name or f"{table}{op.excludes}"] = (table, op.excludes)
        elif kind == "drop-constraint":
            self.exclusions.pop(op.new_name, None)
        elif kind in ("drop-table", "create-table", "rename-table"):
            self._forget(lambda owner, pairs: owner == table)
        elif kind == "drop-column":
            self._forget(lambda owner, pairs: owner == table and any(op.column in p for p in pairs))
        elif kind == "rename-column":
            self.exclusions = {
                name: (owner, _renamed(pairs, op.column, op.new_name) if owner == table else pairs)
                for name, (owner, pairs) in self.exclusions.items()
            }

    def _forget(self, gone: Callable[[str, tuple[tuple[str, str], ...]], bool]) -> None:
        self.exclusions = {n: e for n, e in self.exclusions.items() if not gone(*e)}

    # -- carries ------------------------------------------------------------------------

    def _carries(
        self, op: Op, migration: str, type_of: Callable[[str, str], SqlType | None]
    ) -> dict[str, Carry]:
        """The targets ``op`` carries a link into, each with a key that tells keys apart and
        a target that holds the mapping's value unchanged."""
        found: dict[str, Carry] = {}
        for target, link, mapped, value, match, prefix, source, key in op.mapped_links:
            typed, stored = type_of(source, key), type_of(mapped, value)
            into, linked = type_of(op.table, target), type_of(op.table, link)
            if any(t is None or t.name not in KEY_TYPES for t in (typed, linked)):
                continue  # an equality or a text form that may join two keys
            if stored is None or into is None or not lossless(stored, into):
                continue
            if target in found:
                return {}  # two ways into one column: neither is sure
            found[target] = Carry(link, (mapped, value, match), prefix, migration, op.line)
        return found

    def _spoil(self, gone: Callable[[Group], bool]) -> None:
        for key, group in list(self.groups.items()):
            if gone(group):
                del self.groups[key]
                self.spoiled.add(key)


def _spoils(op: Op, group: Group, carries: dict[str, Carry]) -> bool:
    """Whether ``op`` may break what ``group`` relies on: a write to its table other than a
    carry into its target, a write to (or a change of) its mapping table, or a change of
    its target."""
    kind, table = op.kind, op.table
    mappings = {c.mapping[0] for c in group.carries}
    if kind == "update" and table == group.table and group.target in carries:
        return table in mappings
    if kind in WRITES and table in {group.table} | mappings:
        return True
    if kind in ("rename-table", "drop-table", "create-table") and table in {group.table} | mappings:
        return True
    touched = {(table, op.column)} if kind in COLUMN_CHANGES else set()
    watched = {(group.table, group.target)} | {
        (c.mapping[0], column) for c in group.carries for column in c.mapping[1:]
    }
    return bool(touched & watched)


def _forgets(op: Op, at: Column, source: str, column: str = "", value: str = "") -> bool:
    """Whether ``op`` may undo a fill of ``at`` from ``source`` (``column`` empty) or a
    link turned around from ``at`` into ``source.column`` through ``at``'s key ``value``:
    a write to the filled table, a write to ``source`` that may add or remove rows or set
    ``column`` (any write before the link is turned around), a change of a column involved."""
    kind, table = op.kind, op.table
    if kind in ("do-block", "create-table", "rename-table", "drop-table"):
        return kind == "do-block" or table in (at[0], source)
    if kind in COLUMN_CHANGES:
        return (table, op.column) in (at, (source, column), (at[0], value))
    if table == at[0]:
        return True
    return table == source and (kind != "update" or not column or column in op.columns)


def _kept(group: Group, column: str, ahead: Sequence[Op], constraints: Constraints) -> Copy | None:
    """The proof for one dropped link column (see the module's docstring)."""
    (carry,) = [c for c in group.carries if c.link == column]
    for other in group.carries:
        if other.link == column:
            continue
        if other.mapping != carry.mapping or frozenset((column, other.link)) not in group.apart:
            return None
        if other.prefix.startswith(carry.prefix) or carry.prefix.startswith(other.prefix):
            return None
    if not group.proven and not _not_null_ahead(group, ahead):
        return None
    mapping, value, match = carry.mapping
    if not all(
        constraints.holds(mapping, (key,)) or _key_ahead(mapping, key, ahead)
        for key in (value, match)
    ):
        return None
    how = f"kept as a link, through {mapping}.{match} = '{carry.prefix}' || {column}, in"
    return Copy((group.table, group.target), carry.migration, carry.line, how=how)


def _ends_transaction(op: Op) -> bool:
    return op.kind == "boundary" or (op.kind in ("create-index", "drop-index") and op.concurrently)


def _not_null_ahead(group: Group, ahead: Sequence[Op]) -> bool:
    """A ``SET NOT NULL`` of the target later in the same transaction, with nothing that
    writes the table or changes the target before it."""
    for op in ahead:
        if op.kind == "set-not-null" and (op.table, op.column) == (group.table, group.target):
            return True
        if _ends_transaction(op) or op.kind == "do-block":
            return False
        if op.table == group.table and (
            op.kind in WRITES
            or op.kind in ("rename-table", "drop-table")
            or (op.kind in COLUMN_CHANGES and op.column == group.target)
        ):
            return False
    return False


def _key_ahead(table: str, column: str, ahead: Sequence[Op]) -> bool:
    """A key on ``table(column)`` built later in the same transaction, with no write to the
    table before it: the rows it accepts are the rows the UPDATE read."""
    for op in ahead:
        if op.table == table and op.unique and op.columns == (column,):
            if op.kind == "create-index" and not op.filtered and not op.concurrently:
                return True
            if op.kind == "add-constraint" and not op.concurrently:
                return True
        if _ends_transaction(op) or op.kind == "do-block":
            return False
        if op.table == table and (
            op.kind in WRITES
            or op.kind in ("rename-table", "drop-table", "rename-column", "alter-type")
            or (op.kind == "drop-column" and op.column == column)
        ):
            return False
    return False


def _renamed(pairs: tuple[tuple[str, str], ...], old: str, new: str) -> tuple[tuple[str, str], ...]:
    return tuple((new if a == old else a, new if b == old else b) for a, b in pairs)
