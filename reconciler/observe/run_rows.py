"""Rows this apply run's own migrations wrote, told apart from every other row (PostgreSQL).

A database being built from its history (a new environment, CI, a preview branch, a new
tenant) holds only rows its migrations wrote: a service account, the ``default`` workspace.
Losing those loses nothing the history does not write again, so a finding that would block
only because such a table holds rows is ``info`` (``reconciler.safety.run_rows``). The engine
keeps one ``RunRows`` per apply run, and it is measured, not guessed:

- It exists only for a run that began on a database none of whose tables (the migration
  tools' own aside) held a row. Rows there before the run, and whatever the run copied from
  them, are customer data; so are the rows of earlier runs.
- Each migration transaction, through the verify that wraps it, records its transaction id
  (``pg_current_xact_id()``) and the ids of its subtransactions that wrote rows (a ``DO``
  block with ``EXCEPTION``, a ``SAVEPOINT``): ``pg_current_xact_id()`` names only the
  top-level transaction, so before its COMMIT the transaction reads the xmin of the rows it
  wrote; a row it can see whose xmin is still ``in progress`` is its own (another
  transaction's rows are visible only once committed).
- A table holds only this run's rows when no row's xmin is another transaction's (the
  32-bit xmin against the low 32 bits of the recorded ids), and it holds no more rows than
  the run's transactions inserted and did not delete (the server's per-transaction
  counters): a row someone else inserted that a migration then updated carries the
  migration's xmin, but it is one row too many.

An UPDATE by anyone else gives the row that transaction's xmin, so an edited seed row is
customer data again. SQLite has no xmin: no ``RunRows`` there, and today's rules hold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.observe.census import TOOL_TABLES, holds_rows, qualified, tables_holding_rows

if TYPE_CHECKING:
    from reconciler.db.connection import Queryable

_WRAP = 1 << 32
ABSENT = -1
"""``rows_of``: the table does not exist yet, so the run creates it: every row it will hold
is written by the run's migrations (or, once it is committed, measured again by the verify)."""


@dataclass
class RunRows:
    """What one apply run's migration transactions wrote (see the module's docstring)."""

    xids: set[int] = field(default_factory=set)
    """The low 32 bits of each transaction and subtransaction id that wrote for the run."""
    kept: dict[int, int] = field(default_factory=dict)
    """Per table (by OID, which a rename keeps): rows the run inserted minus rows it deleted,
    an upper bound of the rows of the run's own a table can hold."""
    _top: int = 0
    _counters: dict[int, tuple[str, int, int, int]] = field(default_factory=dict)

    @classmethod
    def start(cls, db: Queryable) -> RunRows | None:
        """A record for a run about to begin; None unless the database is PostgreSQL and no
        table holds a row (one query, each table read up to its first row)."""
        if db.dialect != "postgresql" or holds_rows(db):
            return None
        return cls()

    def begin(self, db: Queryable) -> None:
        """Inside a migration's transaction, before its script: its id (assigned now, so
        every subtransaction's id is greater) and the write counters so far."""
        self._top = int(db.query("SELECT pg_current_xact_id()::text")[0][0])
        self._counters = _counters(db)

    def end(self, db: Queryable) -> None:
        """Inside the same transaction, after its script and verify, before its COMMIT."""
        written: list[str] = []
        for oid, (name, ins, upd, dels) in _counters(db).items():
            _, ins0, upd0, dels0 = self._counters.get(oid, (name, 0, 0, 0))
            if ins > ins0 or dels > dels0:
                self.kept[oid] = self.kept.get(oid, 0) + (ins - ins0) - (dels - dels0)
            if ins > ins0 or upd > upd0:
                written.append(name)
        self.xids.add(self._top % _WRAP)
        if written:
            self.xids |= _subtransactions(db, written, self._top)

    def rows_of(self, db: Queryable, table: str) -> int | None:
        """The rows of ``table`` when every one is this run's; ``ABSENT`` when it does not
        exist; None when a row is someone else's. One scan of the table."""
        found = db.query("SELECT to_regclass(%s)::oid", (qualified(table),))
        if found[0][0] is None:
            return ABSENT
        rows, foreign = db.query(
            f"SELECT count(*), count(*) FILTER (WHERE xmin::text::bigint <> ALL(%s::bigint[])) "
            f"FROM {qualified(table)}",
            (sorted(self.xids),),
        )[0]
        if foreign or rows > self.kept.get(int(found[0][0]), 0):
            return None
        return int(rows)

    def holding(self, db: Queryable) -> list[str]:
        """The tables that hold a row now (the migration tools' own aside)."""
        return tables_holding_rows(db)

    def lock(self, db: Queryable, tables: list[str]) -> None:
        """``SHARE`` locks on ``tables`` (those that exist) until the transaction ends: no
        one else writes them while a migration relies on their rows being the run's."""
        names = [
            qualified(t)
            for t in tables
            if db.query("SELECT to_regclass(%s) IS NOT NULL", (qualified(t),))[0][0]
        ]
        if names:
            db.query(f"LOCK TABLE {', '.join(names)} IN SHARE MODE")


def _counters(db: Queryable) -> dict[int, tuple[str, int, int, int]]:
    """This session's rows inserted, updated and deleted per table, not yet reported (read
    before and after a script, the difference is the script's), tables with any only."""
    rows = db.query(
        "SELECT c.oid, n.nspname, c.relname, pg_stat_get_xact_tuples_inserted(c.oid), "
        "pg_stat_get_xact_tuples_updated(c.oid), pg_stat_get_xact_tuples_deleted(c.oid) "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND NOT starts_with(n.nspname, 'pg_') AND (pg_stat_get_xact_tuples_inserted(c.oid) "
        "+ pg_stat_get_xact_tuples_updated(c.oid) + pg_stat_get_xact_tuples_deleted(c.oid)) > 0"
    )
    found: dict[int, tuple[str, int, int, int]] = {}
    for oid, schema, table, ins, upd, dels in rows:
        name = table if schema == "public" else f"{schema}.{table}"
        if name not in TOOL_TABLES:
            found[int(oid)] = (name, int(ins), int(upd), int(dels))
    return found


def _subtransactions(db: Queryable, tables: list[str], top: int) -> set[int]:
    """The ids of this transaction's subtransactions that left rows in ``tables``: ids
    assigned after ``top`` (a subtransaction's id always is) on rows this transaction sees
    and still in progress, so its own. One scan of each table the transaction wrote."""
    found: set[int] = set()
    for table in tables:
        rows = db.query(
            "SELECT d FROM (SELECT DISTINCT (xmin::text::bigint - %s + 4294967296) %% 4294967296 "
            f"AS d FROM {qualified(table)}) s WHERE d BETWEEN 1 AND 2147483647 "
            "AND pg_xact_status((%s + d)::text::xid8) = 'in progress'",
            (top % _WRAP, top),
        )
        found.update((top + int(d)) % _WRAP for (d,) in rows)
    return found
