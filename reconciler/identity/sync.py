"""Reconcile the users table with a provider's listing, with set operations in the database.

The listing is streamed into a temporary table (COPY on PostgreSQL, batched inserts on
SQLite) and deduplicated; missing, changed and orphaned users are then whole-table joins,
and every change is one ``INSERT ... SELECT`` / ``UPDATE ... FROM`` per batch of keys, each
batch its own transaction. Nothing about a user is held in Python memory beyond one page of
the listing, so a million users cost what a thousand do, plus the database's own work.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from reconciler.db.connection import Database
from reconciler.errors import DatabaseError, Refused
from reconciler.identity.base import ProviderUser
from reconciler.policy.model import Identity

STAGE = "rcl_identity_stage"
WRITES = "rcl_identity_writes"
"""The staged users a sync would write, while a plan checks them against unique indexes."""
BATCH = 5000
SAMPLE = 20


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass(frozen=True)
class IdentityDiff:
    listed: int
    """Distinct users in the provider's listing."""
    table_users: int
    """Rows of the table holding a provider id (soft-deleted ones excluded)."""
    missing: int
    """Users the table lacks and can take."""
    changed: int
    orphans: int
    not_taken: int = 0
    """Users the table lacks and can never take: a column it requires (NOT NULL, no
    default) is empty at the provider. Not ``missing``: no sync can change them."""
    missing_sample: tuple[str, ...] = ()
    changed_sample: tuple[str, ...] = ()
    orphan_keys: tuple[str, ...] = ()
    """Every orphan's key when there are at most ``max_list`` of them, else a sample."""
    not_taken_sample: tuple[str, ...] = ()
    refused: int = 0
    """Users to create or change that a unique index of the table would refuse: another
    row holds their new values, or a user listed before them (in key order, the order the
    sync applies them) takes the same values first. Counted in ``missing``/``changed``."""
    refused_sample: tuple[str, ...] = ()
    refused_by: tuple[str, ...] = ()
    """The unique indexes that would refuse them."""


@dataclass
class Applied:
    created: int = 0
    updated: int = 0
    soft_deleted: int = 0
    deleted: int = 0
    conflicts: list[str] = field(default_factory=list)
    """Keys whose hard delete a foreign key refused (reported, never forced)."""
    rejected: list[str] = field(default_factory=list)
    """Keys the table refused to take (a required column the provider leaves empty, a
    duplicate of a unique column): reported, the rest of the sync goes on."""
    refusals: dict[str, str] = field(default_factory=dict)
    """Of ``rejected``, those a statement failed for (a constraint), each with the
    database's reason; the others were never tried (a required column empty)."""


class UsersTable:
    """The application's users table as the identity policy maps it."""

    def __init__(self, db: Database, spec: Identity) -> None:
        self.db = db
        self.spec = spec
        self.fields = list(spec.columns)
        self.table = _q(spec.table)
        self.key = _q(spec.key)
        self.deleted = _q(spec.soft_delete_column) if spec.soft_delete_column else None
        self._check_columns()

    def _check_columns(self) -> None:
        if self.db.dialect == "postgresql":
            rows = self.db.query(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped",
                (_q(self.spec.table),),
            )
        else:
            rows = self.db.query(
                f"SELECT name FROM pragma_table_info({self.db.param})", (self.spec.table,)
            )
        present = {r[0] for r in rows}
        if not present:
            raise Refused(
                f"identity.table: table {self.spec.table!r} does not exist (apply the "
                "migrations that create it first)"
            )
        wanted = [self.spec.key, *self.spec.columns.values()]
        if self.spec.soft_delete_column:
            wanted.append(self.spec.soft_delete_column)
        self.required = self._required_columns()
        absent = [c for c in wanted if c not in present]
        if absent:
            raise Refused(
                f"identity: table {self.spec.table!r} has no column "
                f"{', '.join(repr(c) for c in absent)}"
            )

    def _required_columns(self) -> set[str]:
        """Mapped columns that are NOT NULL without a default."""
        if self.db.dialect == "postgresql":
            rows = self.db.query(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) "
                "AND attnum > 0 AND NOT attisdropped AND attnotnull AND NOT atthasdef",
                (_q(self.spec.table),),
            )
        else:
            rows = [
                (r[1],)
                for r in self.db.query(
                    f"SELECT * FROM pragma_table_info({self.db.param})", (self.spec.table,)
                )
                if r[3] and r[4] is None
            ]
        return {r[0] for r in rows} & set(self.spec.columns.values())

    # -- staging --------------------------------------------------------------------

    def stage(self, users: Iterable[ProviderUser]) -> int:
        """Load the listing into a temporary table, one row a user; the number of users."""
        db = self.db
        columns = ["key", *self.fields]
        kinds = ", ".join(f"{_q(f)} {'boolean' if f == 'active' else 'text'}" for f in self.fields)
        db.execute(f"DROP TABLE IF EXISTS {STAGE}")
        db.execute(f"CREATE TEMP TABLE {STAGE} (key text NOT NULL, {kinds})")
        listed = db.copy_rows(STAGE, columns, self._rows(users))
        try:
            db.execute(f"CREATE UNIQUE INDEX {STAGE}_key ON {STAGE} (key)")
        except DatabaseError:
            # A user listed twice (pages that shifted under an offset listing): keep the
            # copy listed last.
            row = "ctid" if db.dialect == "postgresql" else "rowid"
            db.execute(
                f"DELETE FROM {STAGE} WHERE {row} NOT IN "
                f"(SELECT max({row}) FROM {STAGE} GROUP BY key)"
            )
            db.execute(f"CREATE UNIQUE INDEX {STAGE}_key ON {STAGE} (key)")
            listed = int(db.query(f"SELECT count(*) FROM {STAGE}")[0][0])
        if db.dialect == "postgresql":
            db.execute(f"ANALYZE {STAGE}")
        return listed

    def _rows(self, users: Iterable[ProviderUser]) -> Iterator[tuple[Any, ...]]:
        return map(attrgetter("id", *self.fields), users)

    # -- the diff -------------------------------------------------------------------

    def _live(self, alias: str = "u") -> str:
        live = f"{alias}.{self.key} IS NOT NULL"
        if self.deleted:
            live += f" AND {alias}.{self.deleted} IS NULL"
        return live

    def _complete(self) -> str:
        """A staged user the table can take: every required column has a value."""
        required = [
            f"s.{_q(f)} IS NOT NULL" for f, c in self.spec.columns.items() if c in self.required
        ]
        return " AND ".join(required) or "TRUE"

    def live_users(self) -> int:
        """Rows holding a provider's user that are not soft-deleted: what the deletion
        guard's percentage is taken of."""
        return int(self.db.query(f"SELECT count(*) FROM {self.table} u WHERE {self._live()}")[0][0])

    def orphan_keys(self, limit: int | None = None) -> tuple[str, ...]:
        """The keys of the live rows the listing does not hold, in key order (the first
        ``limit`` of them)."""
        k = self.key
        return tuple(
            str(row[0])
            for row in self.db.query(
                f"SELECT u.{k} FROM {self.table} u WHERE {self._live()} AND NOT EXISTS "
                f"(SELECT 1 FROM {STAGE} s WHERE s.key = u.{k}) ORDER BY u.{k}"
                + (f" LIMIT {int(limit)}" if limit is not None else "")
            )
        )

    def diff(self, listed: int, max_list: int = 1000) -> IdentityDiff:
        """What a sync would do, counted in two queries; a sample of keys is queried only
        when its count is not 0."""
        db, t, k = self.db, self.table, self.key
        absent = f"NOT EXISTS (SELECT 1 FROM {t} u WHERE u.{k} = s.key)"
        changed_from = f"{STAGE} s JOIN {t} u ON u.{k} = s.key WHERE {self._changed_condition()}"
        complete = self._complete()
        # One join of the listing with the table counts everything but the orphans: the
        # live rows it does not match (each row matches at most one staged user).
        missing, not_taken, changed, matched = db.query(
            f"SELECT count(*) FILTER (WHERE u.{k} IS NULL AND {complete}), "
            f"count(*) FILTER (WHERE u.{k} IS NULL AND NOT ({complete})), "
            f"count(*) FILTER (WHERE u.{k} IS NOT NULL AND {self._changed_condition()}), "
            f"count(*) FILTER (WHERE {self._live()}) "
            f"FROM {STAGE} s LEFT JOIN {t} u ON u.{k} = s.key"
        )[0]
        table_users = self.live_users()
        orphans = table_users - int(matched)

        def sample(count: int, query: str) -> tuple[str, ...]:
            return tuple(str(r[0]) for r in db.query(query)) if count else ()

        refused: tuple[str, ...] = ()
        refused_by: list[str] = []
        if missing or changed:
            refused, refused_by = self.refused_keys()
        return IdentityDiff(
            listed,
            table_users,
            int(missing),
            int(changed),
            orphans,
            int(not_taken),
            refused=len(refused),
            refused_sample=refused[:SAMPLE],
            refused_by=tuple(refused_by),
            missing_sample=sample(
                missing,
                f"SELECT s.key FROM {STAGE} s WHERE {complete} AND {absent} "
                f"ORDER BY s.key LIMIT {SAMPLE}",
            ),
            changed_sample=sample(
                changed, f"SELECT s.key FROM {changed_from} ORDER BY s.key LIMIT {SAMPLE}"
            ),
            orphan_keys=self.orphan_keys(max_list) if orphans else (),
            not_taken_sample=sample(
                not_taken,
                f"SELECT s.key FROM {STAGE} s WHERE NOT ({complete}) AND {absent} "
                f"ORDER BY s.key LIMIT {SAMPLE}",
            ),
        )

    def unique_indexes(self) -> dict[str, list[str]]:
        """The table's unique indexes over mapped columns only (not the key, no expression,
        no WHERE): index name → its columns. Only these can refuse a user the sync writes;
        one over another column too is left to the database to say."""
        if self.db.dialect == "postgresql":
            rows = self.db.query(
                "SELECT i.relname, a.attname FROM pg_index x "
                "JOIN pg_class i ON i.oid = x.indexrelid "
                "CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, n) "
                "LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                "WHERE x.indrelid = to_regclass(%s) AND x.indisunique "
                "AND x.indpred IS NULL AND x.indexprs IS NULL ORDER BY i.relname, k.n",
                (_q(self.spec.table),),
            )
        else:
            rows = []
            for index in self.db.query(
                'SELECT name FROM pragma_index_list(?) WHERE "unique" AND NOT partial',
                (self.spec.table,),
            ):
                rows += [
                    (index[0], column[0])
                    for column in self.db.query(
                        "SELECT name FROM pragma_index_info(?) ORDER BY seqno", (index[0],)
                    )
                ]
        indexes: dict[str, list[str]] = {}
        for name, column in rows:
            indexes.setdefault(str(name), []).append(column)
        mapped = set(self.spec.columns.values())
        return {
            name: columns
            for name, columns in indexes.items()
            if all(c is not None and c in mapped for c in columns)
        }

    def refused_keys(self) -> tuple[tuple[str, ...], list[str]]:
        """The staged users a unique index would refuse, in key order, and those indexes:
        the users the sync would create or change whose new values another row of the
        table holds, or a user before them (key order) would take first."""
        indexes = self.unique_indexes()
        if not indexes:
            return (), []
        field_of = {column: field for field, column in self.spec.columns.items()}
        k, t = self.key, self.table
        candidate = f"(u.{k} IS NOT NULL AND {self._changed_condition()})"
        if self.spec.missing == "create":
            candidate = f"((u.{k} IS NULL AND {self._complete()}) OR {candidate})"
        columns = sorted({c for cs in indexes.values() for c in cs})
        values = ", ".join(f"{self._value(field_of[c], c)} AS {_q('v_' + c)}" for c in columns)
        db = self.db
        # The users the sync would write, with their new values, indexed by them: each is
        # then checked against the table and the others by index, never by a scan each.
        db.execute(f"DROP TABLE IF EXISTS {WRITES}")
        db.execute(
            f"CREATE TEMP TABLE {WRITES} AS SELECT s.key AS key, {values} FROM {STAGE} s "
            f"LEFT JOIN {t} u ON u.{k} = s.key WHERE {candidate}"
        )
        refused: set[str] = set()
        by: list[str] = []
        try:
            for number, (name, index) in enumerate(indexes.items()):
                held = ", ".join(_q("v_" + c) for c in index)
                db.execute(f"CREATE INDEX {WRITES}_{number} ON {WRITES} ({held}, key)")
                taken = " AND ".join(f"o.{_q(c)} = c.{_q('v_' + c)}" for c in index)
                first = " AND ".join(f"d.{_q('v_' + c)} = c.{_q('v_' + c)}" for c in index)
                keys = db.query(
                    f"SELECT c.key FROM {WRITES} c WHERE EXISTS (SELECT 1 FROM {t} o WHERE "
                    f"(o.{k} IS NULL OR o.{k} <> c.key) AND {taken}) "
                    f"OR EXISTS (SELECT 1 FROM {WRITES} d WHERE d.key < c.key AND {first})"
                )
                if keys:
                    refused.update(str(r[0]) for r in keys)
                    by.append(name)
        finally:
            db.execute(f"DROP TABLE IF EXISTS {WRITES}")
        return tuple(sorted(refused)), by

    # -- applying ---------------------------------------------------------------------

    def _value(self, provider_field: str, column: str) -> str:
        """The staged value, or the row's own when the provider has none for a column the
        table requires (a Clerk user with no email keeps the email it had)."""
        staged = f"s.{_q(provider_field)}"
        return f"COALESCE({staged}, u.{_q(column)})" if column in self.required else staged

    def _changed_condition(self) -> str:
        parts = [
            f"u.{_q(column)} IS DISTINCT FROM {self._value(field, column)}"
            for field, column in self.spec.columns.items()
        ]
        if self.deleted:
            parts.append(f"u.{self.deleted} IS NOT NULL")
        return "(" + " OR ".join(parts) + ")"

    def create_and_update(
        self, diff: IdentityDiff, *, create: bool, applied: Applied, batch: int = BATCH
    ) -> None:
        """Insert the missing users (``create``) and update the changed ones, a window of
        ``batch`` staged users per transaction. Nothing is looked at when ``diff`` has
        nothing to create or change."""
        db, t, k, p = self.db, self.table, self.key, self.db.param
        complete = self._complete()
        if create and diff.not_taken:
            applied.rejected += [
                str(r[0])
                for r in db.query(
                    f"SELECT s.key FROM {STAGE} s WHERE NOT ({complete}) AND NOT EXISTS "
                    f"(SELECT 1 FROM {t} u WHERE u.{k} = s.key) ORDER BY s.key"
                )
            ]
        if not (diff.changed or (create and diff.missing)):
            return
        columns = ", ".join(_q(c) for c in self.spec.columns.values())
        values = ", ".join(f"s.{_q(f)}" for f in self.spec.columns)
        sets = ", ".join(f"{_q(c)} = {self._value(f, c)}" for f, c in self.spec.columns.items())
        if self.deleted:
            sets += f", {self.deleted} = NULL"
        # A window is a range of keys, ``batch`` staged users: both tables find its rows
        # by their index on the key (PostgreSQL does not carry a range over the join).
        insert = (
            f"INSERT INTO {t} ({k}, {columns}) SELECT s.key, {values} FROM {STAGE} s "
            f"WHERE s.key BETWEEN {p} AND {p} AND {complete} AND NOT EXISTS "
            f"(SELECT 1 FROM {t} u WHERE u.{k} = s.key) RETURNING 1"
        )
        update = (
            f"UPDATE {t} AS u SET {sets} FROM {STAGE} AS s WHERE u.{k} = s.key "
            f"AND s.key BETWEEN {p} AND {p} AND u.{k} BETWEEN {p} AND {p} "
            f"AND {self._changed_condition()} RETURNING 1"
        )

        def apply(first: str, last: str) -> None:
            with db.transaction():
                created = len(db.query(insert, (first, last))) if create else 0
                updated = len(db.query(update, (first, last, first, last)))
            applied.created += created
            applied.updated += updated

        windows = db.query(
            f"SELECT min(key), max(key) FROM (SELECT key, (row_number() OVER (ORDER BY key) - 1) "
            f"/ {int(batch)} AS w FROM {STAGE}) AS k GROUP BY w ORDER BY w"
        )
        for first, last in windows:
            try:
                apply(first, last)
            except DatabaseError:
                # A constraint refused part of the batch (a duplicate email, say): user by
                # user, so the others still go through and the refused ones are named.
                for (key,) in db.query(
                    f"SELECT key FROM {STAGE} WHERE key BETWEEN {p} AND {p} ORDER BY key",
                    (first, last),
                ):
                    try:
                        apply(key, key)
                    except DatabaseError as exc:
                        applied.rejected.append(str(key))
                        applied.refusals[str(key)] = _reason(db, exc)

    def soft_delete(self, keys: list[str], applied: Applied) -> None:
        assert self.deleted is not None
        now = (
            datetime.now(UTC)
            if self.db.dialect == "postgresql"
            else datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        )
        for chunk in _chunks(keys, BATCH):
            marks = ", ".join(self.db.param for _ in chunk)
            with self.db.transaction():
                rows = self.db.query(
                    f"UPDATE {self.table} SET {self.deleted} = {self.db.param} "
                    f"WHERE {self.key} IN ({marks}) AND {self.deleted} IS NULL RETURNING 1",
                    (now, *chunk),
                )
            applied.soft_deleted += len(rows)

    def hard_delete(self, keys: list[str], applied: Applied) -> None:
        self.refuse_cascades()
        for chunk in _chunks(keys, BATCH):
            marks = ", ".join(self.db.param for _ in chunk)
            try:
                with self.db.transaction():
                    rows = self.db.query(
                        f"DELETE FROM {self.table} WHERE {self.key} IN ({marks}) RETURNING 1",
                        tuple(chunk),
                    )
                applied.deleted += len(rows)
            except DatabaseError:
                # A foreign key refused part of the batch: one by one, report the refusals.
                for key in chunk:
                    try:
                        with self.db.transaction():
                            rows = self.db.query(
                                f"DELETE FROM {self.table} WHERE {self.key} = "
                                f"{self.db.param} RETURNING 1",
                                (key,),
                            )
                        applied.deleted += len(rows)
                    except DatabaseError:
                        applied.conflicts.append(key)

    def refuse_cascades(self) -> None:
        """A hard delete must never take other rows with it."""
        if self.db.dialect == "postgresql":
            rows = self.db.query(
                "SELECT conrelid::regclass::text, conname FROM pg_constraint "
                "WHERE contype = 'f' AND confrelid = to_regclass(%s) AND confdeltype IN "
                "('c', 'n', 'd')",
                (_q(self.spec.table),),
            )
        else:
            rows = []
            for (name,) in self.db.query("SELECT name FROM sqlite_master WHERE type='table'"):
                for fk in self.db.query(
                    f"SELECT * FROM pragma_foreign_key_list({self.db.param})", (name,)
                ):
                    if fk[2] == self.spec.table and str(fk[6]).upper() in (
                        "CASCADE",
                        "SET NULL",
                        "SET DEFAULT",
                    ):
                        rows.append((name, f"{name}.{fk[3]}"))
        if rows:
            where = ", ".join(f"{r[0]} ({r[1]})" for r in rows)
            raise Refused(
                f"orphans: delete refused: deleting from {self.spec.table} would "
                f"also change {where} (ON DELETE CASCADE / SET NULL); use "
                "orphans: soft-delete"
            )

    # -- one user at a time (webhooks) ---------------------------------------------------

    def empty_required(self, user: ProviderUser) -> list[str]:
        """The columns the table requires (NOT NULL, no default) that ``user`` leaves empty
        at the provider: a user the table lacks with any of them is not taken."""
        return [
            column
            for field, column in self.spec.columns.items()
            if column in self.required and getattr(user, field) is None
        ]

    def upsert_one(self, user: ProviderUser, *, create: bool) -> str:
        """Create or update one user as the sync does: ``created``, ``updated``,
        ``unchanged``, ``not-taken`` (the table lacks the user and requires a column the
        provider leaves empty) or ``not-created`` (the policy reports missing users
        instead). A required column the provider leaves empty keeps the row's value."""
        db, p = self.db, self.db.param
        empty = self.empty_required(user)
        given = {
            column: getattr(user, field)
            for field, column in self.spec.columns.items()
            if column not in empty
        }
        values = list(given.values())
        sets = [f"{_q(c)} = {p}" for c in given]
        differs = [f"{_q(c)} IS DISTINCT FROM {p}" for c in given]
        if self.deleted:
            sets.append(f"{self.deleted} = NULL")
            differs.append(f"{self.deleted} IS NOT NULL")
        with db.transaction():
            exists = db.query(f"SELECT 1 FROM {self.table} WHERE {self.key} = {p}", (user.id,))
            if exists:
                if not sets:
                    return "unchanged"
                rows = db.query(
                    f"UPDATE {self.table} SET {', '.join(sets)} WHERE {self.key} = {p} "
                    f"AND ({' OR '.join(differs)}) RETURNING 1",
                    (*values, user.id, *values),
                )
                return "updated" if rows else "unchanged"
            if empty:
                return "not-taken"
            if not create:
                return "not-created"
            columns = ", ".join(_q(c) for c in given)
            marks = ", ".join(p for _ in range(len(values) + 1))
            db.execute(
                f"INSERT INTO {self.table} ({self.key}, {columns}) VALUES ({marks})",
                (user.id, *values),
            )
            return "created"

    def remove_one(self, key: str) -> str:
        """Apply the orphans policy to one user: ``soft-deleted``, ``deleted``,
        ``reported``, ``absent`` or ``conflict``."""
        applied = Applied()
        if not self.db.query(
            f"SELECT 1 FROM {self.table} WHERE {self.key} = {self.db.param}", (key,)
        ):
            return "absent"
        if self.spec.orphans == "soft-delete":
            self.soft_delete([key], applied)
            return "soft-deleted" if applied.soft_deleted else "unchanged"
        if self.spec.orphans == "delete":
            self.hard_delete([key], applied)
            return "conflict" if applied.conflicts else "deleted"
        return "reported"

    def drop_stage(self) -> None:
        self.db.execute(f"DROP TABLE IF EXISTS {STAGE}")


def _reason(db: Database, exc: DatabaseError) -> str:
    """The database's reason for refusing a statement, without the database's name."""
    where = db.url.sqlite_path if db.url.dialect == "sqlite" else db.url.redacted
    return str(exc).removeprefix(f"{where}: ")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
