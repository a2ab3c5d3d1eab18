"""Prisma Migrate's layout: ``<path>/<id>_<name>/migration.sql`` and ``_prisma_migrations``.

The history table is written exactly as ``prisma migrate deploy`` writes it (same columns,
types, uuid4 ids, sha256 checksums, timestamps), so Prisma and reconciler can take turns on
one database. One difference is deliberate: reconciler runs each migration inside a
transaction together with its history row, so a failure leaves no half-applied schema. The
failed attempt is still recorded (``finished_at`` NULL, the error in ``logs``) and blocks
later runs, as Prisma's P3009 does, until a person resolves it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from msgspec import Struct

from reconciler.errors import LocksUnavailable, MigrationFailed, ProviderMismatch, SourceError
from reconciler.source.base import (
    AppliedMigration,
    LiveHistory,
    Migration,
    TransactionCheck,
    sha256_hex,
)
from reconciler.source.sql import (
    ScriptPart,
    concurrent_index,
    drops_database,
    runs_again,
    script_parts,
    transaction_mode,
    what_parts_made,
)
from reconciler.textfiles import read_bytes

if TYPE_CHECKING:
    from reconciler.db.connection import Database
    from reconciler.db.url import Dialect
    from reconciler.policy.model import Timeouts

PRISMA_ADVISORY_LOCK = 72707369
"""The key Prisma Migrate locks while migrating; holding it keeps both tools from racing."""
LOCK_WAIT_SECONDS = 10.0
TABLE = "_prisma_migrations"

_CREATE_TABLE = {
    "postgresql": """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)""",
    "sqlite": """
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    TEXT PRIMARY KEY NOT NULL,
    "checksum"              TEXT NOT NULL,
    "finished_at"           DATETIME,
    "migration_name"        TEXT NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        DATETIME,
    "started_at"            DATETIME NOT NULL DEFAULT current_timestamp,
    "applied_steps_count"   INTEGER UNSIGNED NOT NULL DEFAULT 0
)""",
}

_PROVIDERS: dict[str, Dialect] = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
}


def read_provider(folder: Path) -> str | None:
    """The provider ``migration_lock.toml`` in a migrations folder names; None without one."""
    lock = folder / "migration_lock.toml"
    if not lock.is_file():
        return None
    try:
        text = lock.read_text(encoding="utf-8")
        provider = _as_prisma_writes(text)
        if provider is None:
            import tomllib  # any other TOML: the standard parser (6 ms to import)

            provider = tomllib.loads(text).get("provider")
    except (ValueError, OSError) as exc:  # TOMLDecodeError and UnicodeDecodeError included
        raise SourceError(f"{lock}: not valid TOML: {exc}") from None
    if not isinstance(provider, str):
        raise SourceError(f'{lock}: no `provider = "..."` line')
    return provider


_COMMENT_OR_BLANK = re.compile(r"[ \t]*(?:#.*)?")
_PROVIDER_LINE = re.compile(r'[ \t]*provider[ \t]*=[ \t]*"([A-Za-z0-9_-]*)"[ \t]*(?:#.*)?')
_NOT_IN_TOML = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Control characters, which TOML allows in no comment and no plain string."""


def _as_prisma_writes(text: str) -> str | None:
    """The provider of a lock file laid out as Prisma writes it (comment lines and one
    ``provider = "name"`` line), read without importing ``tomllib``; None for any other
    text, which ``tomllib`` then reads (and judges) as before."""
    if _NOT_IN_TOML.search(text):
        return None
    found = None
    for line in text.split("\n"):
        provider = _PROVIDER_LINE.fullmatch(line)
        if provider is not None and found is None:
            found = provider.group(1)
        elif provider is not None or _COMMENT_OR_BLANK.fullmatch(line) is None:
            return None
    return found


class PrismaLayout:
    """A Prisma ``migrations`` folder and the ``_prisma_migrations`` table."""

    name: Literal["prisma"] = "prisma"

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise SourceError(f"{path}: Prisma migrations folder not found")
        self.path = path
        self.provider = read_provider(path)
        self._migrations = self._scan()
        self.resumed: dict[str, str] = {}
        """What ``resume`` did, by migration id, for the ledger's record of the step."""

    def _scan(self) -> list[Migration]:
        found: list[Migration] = []
        previous: tuple[str, ...] = ()
        empty: list[str] = []
        for folder in sorted(p for p in self.path.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            script = folder / "migration.sql"
            if not script.is_file():
                empty.append(folder.name)
                continue
            slug = folder.name.split("_", 1)[1] if "_" in folder.name else folder.name
            found.append(
                Migration(folder.name, slug, script, sha256_hex(read_bytes(script)), previous)
            )
            previous = (folder.name,)
        if empty:
            # As Prisma's P3015: the migrations after it must not run without it.
            raise SourceError(
                f"{self.path}: no migration.sql in {', '.join(empty)}: restore the file, or "
                "delete the folder if the migration was never applied anywhere"
            )
        return found

    def migrations(self) -> Sequence[Migration]:
        return self._migrations

    def desired(self, revision: str) -> Sequence[Migration]:
        if revision in ("head", "latest"):
            return self._migrations
        matches = [
            i
            for i, m in enumerate(self._migrations)
            if m.id == revision or m.id.startswith(revision + "_")
        ]
        if len(matches) != 1:
            raise SourceError(
                f"{self.path}: revision {revision!r} names no migration folder"
                if not matches
                else f"{self.path}: revision {revision!r} is ambiguous"
            )
        return self._migrations[: matches[0] + 1]

    def check(self, dialect: Dialect) -> list[str]:
        problems: list[str] = []
        lock = self.path / "migration_lock.toml"
        if self.provider is None:
            problems.append(f"{lock}: missing; Prisma writes it with the provider's name")
        elif _PROVIDERS.get(self.provider) != dialect:
            problems.append(str(self.mismatch(dialect)))
        return problems

    def mismatch(self, dialect: Dialect) -> ProviderMismatch:
        return ProviderMismatch(
            f"{self.path / 'migration_lock.toml'}: migrations were written for provider "
            f"{self.provider!r} but the target database is {dialect}"
        )

    def ensure_provider(self, dialect: Dialect) -> None:
        if self.provider is not None and _PROVIDERS.get(self.provider) != dialect:
            raise self.mismatch(dialect)

    def sql(self, migration: Migration, dialect: Dialect) -> str | None:
        return migration.read()

    def unanalysable(self, migration: Migration, dialect: Dialect) -> str | None:
        return None  # a migration.sql is its own SQL

    # -- the live history -------------------------------------------------------------

    def read_history(self, db: Database) -> LiveHistory:
        self.ensure_provider(db.dialect)
        if not db.table_exists(TABLE):
            return LiveHistory(tool_table=False)
        rows = db.query(
            "SELECT migration_name, checksum, started_at, finished_at, rolled_back_at, logs "
            'FROM "_prisma_migrations" ORDER BY started_at, migration_name'
        )
        applied: list[AppliedMigration] = []
        failed: list[AppliedMigration] = []
        for name, checksum, started, finished, rolled_back, logs in rows:
            if rolled_back is not None:
                continue
            entry = AppliedMigration(
                name,
                checksum,
                _as_datetime(started),
                _as_datetime(finished),
                "applied" if finished is not None else "failed",
                logs,
            )
            (applied if finished is not None else failed).append(entry)
        heads = (applied[-1].id,) if applied else ()
        known = {m.id for m in self._migrations}
        unknown = tuple(a.id for a in applied if a.id not in known)
        return LiveHistory(applied=applied, failed=failed, heads=heads, unknown=unknown)

    @contextmanager
    def lock(self, db: Database) -> Iterator[None]:
        """Hold Prisma's advisory lock and make sure the history table exists."""
        self.ensure_provider(db.dialect)
        with db.advisory_lock(PRISMA_ADVISORY_LOCK, LOCK_WAIT_SECONDS):
            if not db.table_exists(TABLE):
                with db.transaction():
                    db.execute(_CREATE_TABLE[db.dialect])
            yield

    def apply(
        self,
        db: Database,
        migration: Migration,
        timeouts: Timeouts,
        check: TransactionCheck | None = None,
    ) -> None:
        """``check`` runs in every transaction the migration's statements run in, before its
        COMMIT: the one transaction of ours around the script, or, for a script that
        manages its own transactions, each of them (``_apply_in_parts``)."""
        script = migration.read()
        mode = transaction_mode(script) if db.dialect == "postgresql" else "ours"
        stopped = self.stopped(db, migration) if mode != "ours" else None
        if stopped is not None:  # an earlier attempt stopped part-way
            if not stopped.resumable:
                raise MigrationFailed(
                    f"an earlier attempt stopped at {stopped.failed.lines}, with the lines "
                    "before it in effect: settle it first (`reconciler plan` says how)"
                )
            self.resume(db, migration, timeouts, check)
            return
        if mode != "ours":
            # Its own BEGIN/COMMIT, or a statement PostgreSQL refuses inside a transaction
            # block: wrapping it whole in one transaction would fail or commit half of it
            # early, so it runs in parts, each transaction of it checked on its own.
            self._apply_in_parts(db, migration, script, timeouts, check)
            return
        row_id, started = _new_id(), _now(db)
        try:
            with db.transaction(timeouts.lock, timeouts.statement):
                if check is not None:
                    check.before(db)
                db.run_script(script)
                if check is not None:
                    check.after(db)
                self._insert(db, row_id, migration, started, finished=True, steps=1, logs=None)
        except MigrationFailed as exc:
            # A lock timeout: nothing of it ran and nothing is wrong with it, so the attempt
            # is recorded as rolled back (as `prisma migrate resolve --rolled-back` would)
            # and the next run applies it again instead of refusing as Prisma's P3009 does.
            again = isinstance(exc, LocksUnavailable)
            with db.transaction():
                self._insert(
                    db,
                    row_id,
                    migration,
                    started,
                    finished=False,
                    steps=0,
                    logs=f"{exc}\n(transaction rolled back: "
                    + ("to be run again)" if again else "no statement of it is in effect)"),
                    rolled_back=again,
                )
            if again:
                raise LocksUnavailable(
                    f"{exc} (within lock_timeout {timeouts.lock:g}s; rolled back: nothing of it "
                    "is in effect; it runs again on the next attempt)"
                ) from None
            # The same kind of failure (a loss the check refused stays one), now complete.
            raise type(exc)(f"{exc} (rolled back: nothing of it is in effect)") from None

    def _started(self, db: Database, migration: Migration, parts: int) -> str:
        """Commit the history row of a migration about to run in parts (so a crash leaves a
        failed row, as Prisma's does, whose ``logs`` say it was cut short); its id."""
        row_id = _new_id()
        with db.transaction():
            self._insert(
                db,
                row_id,
                migration,
                _now(db),
                finished=False,
                steps=0,
                logs=f"{RUNNING} {parts} parts; applied_steps_count counts those in effect",
            )
        return row_id

    def _apply_in_parts(
        self,
        db: Database,
        migration: Migration,
        script: str,
        timeouts: Timeouts,
        check: TransactionCheck | None,
    ) -> None:
        """A script with its own BEGIN/COMMIT (Prisma writes them around enum changes), or
        with statements PostgreSQL refuses inside a transaction block: cut into parts
        (``script_parts``), each transaction of the script run as one of ours and checked
        before its COMMIT, each statement that cannot run in one alone. The history row is
        committed first, as Prisma does, and ``applied_steps_count`` counts the parts in
        effect (raised inside each part's own transaction, so a crash never leaves it
        wrong); a failure says which parts are in effect and which are not."""
        parts = script_parts(script)  # a malformed script is refused before anything runs
        dropped = [p for p in parts if drops_database(p)]
        if check is not None and dropped:
            raise MigrationFailed(
                f"{dropped[0].lines}: DROP DATABASE runs outside any transaction, where what "
                "it loses can be neither verified nor rolled back: drop the database by hand "
                "(nothing of this migration ran)"
            )
        row_id = self._started(db, migration, len(parts))
        self._run_parts(db, migration, row_id, parts, 0, timeouts, check, None)

    def _run_parts(
        self,
        db: Database,
        migration: Migration,
        row_id: str,
        parts: Sequence[ScriptPart],
        start: int,
        timeouts: Timeouts,
        check: TransactionCheck | None,
        note: str | None,
    ) -> None:
        """Run ``parts`` from ``start`` on, the row ``row_id`` following; ``note`` (what a
        resumed run did first) stays in its ``logs`` once it is finished."""
        for done in range(start, len(parts)):
            part = parts[done]
            built = self._note_index(db, row_id, part)
            try:
                self._run_part(db, part, timeouts, check, row_id)
            except MigrationFailed as exc:
                again = isinstance(exc, LocksUnavailable)
                left = self._drop_left_index(db, part, timeouts, again) if built else None
                nothing = done == 0 and not part.outside
                status = (
                    "rolled back: nothing of it is in effect"
                    + ("; it runs again on the next attempt" if again else "")
                    if nothing
                    else _progress(parts, done, left, again)
                )
                named = concurrent_index(part)
                mark = f"\n({_builds(part, named[0])})" if built and named else ""
                with db.transaction():
                    db.execute(
                        f'UPDATE "{TABLE}" SET logs = %s, rolled_back_at = '
                        f"{'clock_timestamp()' if again and nothing else 'NULL'} WHERE id = %s",
                        (f"{exc}\n({status}){mark}", row_id),
                    )
                if again and not nothing:
                    raise LocksUnavailable(f"{exc} ({status})") from None
                raise type(exc)(f"{exc} ({status})") from None
            if part.outside or part.rolled_back:  # else counted inside its transaction
                with db.transaction():
                    db.execute(
                        f'UPDATE "{TABLE}" SET applied_steps_count = applied_steps_count + 1 '
                        "WHERE id = %s",
                        (row_id,),
                    )
        with db.transaction():
            db.execute(
                f'UPDATE "{TABLE}" SET finished_at = clock_timestamp(), logs = %s WHERE id = %s',
                (note, row_id),
            )

    def _note_index(self, db: Database, row_id: str, part: ScriptPart) -> bool:
        """Before a ``CREATE INDEX CONCURRENTLY`` runs: whether its index is absent, so an
        INVALID one found after a crash or a failure is this statement's own leftover; the
        history row's ``logs`` say so, for the run that comes after a crash."""
        named = concurrent_index(part)
        if named is None or _index_valid(db, *named) is not None:
            return False
        with db.transaction():
            db.execute(
                f'UPDATE "{TABLE}" SET logs = %s WHERE id = %s',
                (f"{RUNNING} parts; {_builds(part, named[0])}", row_id),
            )
        return True

    @staticmethod
    def _drop_left_index(
        db: Database, part: ScriptPart, timeouts: Timeouts, again: bool
    ) -> str | None:
        """Drop the INVALID index a failed or interrupted ``CREATE INDEX CONCURRENTLY`` of
        ours left (that statement's index on that table, never another); what was done."""
        named = concurrent_index(part)
        if named is None or _index_valid(db, *named) is not False:
            return None
        try:
            _drop_index(db, named, timeouts)
        except MigrationFailed:  # the same lock it could not get
            if again:
                return f"the INVALID index {named[0]} it left is dropped on the next attempt"
            return f"the INVALID index {named[0]} it left could not be dropped yet"
        return f"the INVALID index {named[0]} it left was dropped"

    def leftover_index(self, db: Database, state: Stopped) -> str | None:
        """The INVALID index the failed part of ``state`` left and could not drop, if any,
        schema-qualified: a person drops it before running that part by hand."""
        named = concurrent_index(state.failed)
        if named is None or _builds(state.failed, named[0]) not in state.logs:
            return None
        return _qualified(db, *named) if _index_valid(db, *named) is False else None

    # -- resuming a script cut short ---------------------------------------------------

    def stopped(self, db: Database, migration: Migration) -> Stopped | None:
        """Where reconciler's own failed attempt of ``migration``, run in parts, stopped:
        None for any other failed row (Prisma's own, one for an edited file, one of a script
        run whole, whose transaction rolled back). ``resumable`` when it was cut short (a
        crash, a kill, Ctrl-C, a lock it could not get; not an error in the SQL or a refused
        loss) at a part that can simply run again."""
        if db.dialect != "postgresql" or not db.table_exists(TABLE):
            return None
        rows = db.query(
            f'SELECT id, checksum, logs, applied_steps_count FROM "{TABLE}" '
            "WHERE migration_name = %s AND finished_at IS NULL AND rolled_back_at IS NULL",
            (migration.id,),
        )
        if len(rows) != 1:
            return None
        row_id, checksum, logs, done = rows[0]
        logs = str(logs or "")
        cut_short = logs.startswith(RUNNING) or AGAIN in logs
        if checksum != migration.checksum or not (cut_short or _IN_PARTS in logs):
            return None
        script = migration.read()
        if transaction_mode(script) == "ours":
            return None
        try:
            parts = tuple(script_parts(script))
        except MigrationFailed:
            return None
        if not 0 <= int(done) < len(parts):
            return None
        resumable = cut_short and runs_again(parts[int(done)])
        return Stopped(str(row_id), int(done), parts, logs, resumable)

    def resume(
        self,
        db: Database,
        migration: Migration,
        timeouts: Timeouts,
        check: TransactionCheck | None = None,
    ) -> str:
        """Finish a cut-short attempt ``stopped`` found (call it under ``lock``): the INVALID
        index its interrupted ``CREATE INDEX CONCURRENTLY`` left is dropped (or, built after
        all, counted), and the parts not yet in effect run, each once. What was done."""
        state = self.stopped(db, migration)
        if state is None or not state.resumable:
            raise MigrationFailed(f"{migration.id}: no cut-short attempt of it to resume")
        part, start = state.parts[state.done], state.done
        said = [f"resumed at {part.lines}"]
        named = concurrent_index(part)
        if named is not None:
            valid = _index_valid(db, *named)
            if valid is True:  # it was built before the crash could be recorded
                start += 1
                said.append(f"{part.lines} had completed (index {named[0]} is valid)")
                with db.transaction():
                    db.execute(
                        f'UPDATE "{TABLE}" SET applied_steps_count = applied_steps_count + 1 '
                        "WHERE id = %s",
                        (state.row_id,),
                    )
            elif valid is False and _builds(part, named[0]) in state.logs:
                _drop_index(db, named, timeouts)
                said.append(f"dropped the INVALID index {named[0]} the cut-short attempt left")
            elif valid is False:
                raise MigrationFailed(
                    f"{part.lines}: index {named[0]} is INVALID and this attempt did not "
                    "create it: drop it by hand"
                )
        note = "; ".join(said)
        with db.transaction():
            db.execute(
                f'UPDATE "{TABLE}" SET logs = %s WHERE id = %s',
                (f"{RUNNING} {len(state.parts)} parts; {note}", state.row_id),
            )
        self._run_parts(db, migration, state.row_id, state.parts, start, timeouts, check, note)
        self.resumed[migration.id] = note
        return note

    @staticmethod
    def _run_part(
        db: Database,
        part: ScriptPart,
        timeouts: Timeouts,
        check: TransactionCheck | None,
        row_id: str,
    ) -> None:
        if part.outside:
            _session_timeouts(db, timeouts)
            try:
                db.run_script(part.text)
            finally:
                _session_timeouts(db, None)
            return
        try:
            with db.transaction(timeouts.lock, timeouts.statement):
                if part.modes:  # the script's BEGIN ISOLATION LEVEL ..., before any query
                    db.execute(f"SET TRANSACTION {part.modes}")
                if check is not None and not part.rolled_back:
                    check.before(db)
                db.run_script(part.text)
                if part.rolled_back:  # the script's own ROLLBACK: run it, then undo it
                    raise _ScriptRolledBack
                if check is not None:
                    check.after(db)
                db.execute(  # in the same COMMIT as the part: the count is never behind
                    f'UPDATE "{TABLE}" SET applied_steps_count = applied_steps_count + 1 '
                    "WHERE id = %s",
                    (row_id,),
                )
        except _ScriptRolledBack:
            pass
        except MigrationFailed as exc:
            if str(exc).startswith("line "):
                raise
            raise type(exc)(f"{part.lines}: {exc}") from None

    def _insert(
        self,
        db: Database,
        row_id: str,
        migration: Migration,
        started: Any,
        *,
        finished: bool,
        steps: int,
        logs: str | None,
        rolled_back: bool = False,
    ) -> None:
        p = db.param
        finished_sql = (
            ("clock_timestamp()" if db.dialect == "postgresql" else p) if finished else "NULL"
        )
        params: list[Any] = [row_id, migration.checksum, migration.id, logs, started, steps]
        if finished and db.dialect == "sqlite":
            params.append(_now(db))
        params.append(_now(db) if rolled_back else None)
        db.execute(
            f'INSERT INTO "{TABLE}" (id, checksum, migration_name, logs, started_at, '
            f"applied_steps_count, finished_at, rolled_back_at) VALUES ({p}, {p}, {p}, {p}, "
            f"{p}, {p}, {finished_sql}, {p})",
            params,
        )

    def resolve(
        self, db: Database, migration_id: str, how: Literal["rolled-back", "applied"]
    ) -> bool:
        """Mark a failed migration rolled back or applied, as ``prisma migrate resolve`` does."""
        with db.transaction():
            rows = db.query(
                f'SELECT id FROM "{TABLE}" WHERE migration_name = {db.param} '
                "AND finished_at IS NULL AND rolled_back_at IS NULL",
                (migration_id,),
            )
            for (row_id,) in rows:
                column = "rolled_back_at" if how == "rolled-back" else "finished_at"
                db.execute(
                    f'UPDATE "{TABLE}" SET {column} = {db.param} WHERE id = {db.param}',
                    (_now(db), row_id),
                )
        return bool(rows)

    def record_applied(self, db: Database, migration: Migration) -> bool:
        """Record ``migration`` as applied without running it, what ``prisma migrate resolve
        --applied`` is for when the history does not name it yet (baselining, or the
        ``sync_state`` migration of a drifted database): one finished row, started and
        finished at the same moment, no step counted. Under Prisma's lock, which creates
        the history table when there is none; False when a row of it is already there."""
        with self.lock(db), db.transaction():
            found = db.query(
                f'SELECT id FROM "{TABLE}" WHERE migration_name = {db.param} '
                "AND rolled_back_at IS NULL",
                (migration.id,),
            )
            if found:
                return False
            self._insert(db, _new_id(), migration, _now(db), finished=True, steps=0, logs=None)
        return True


class _ScriptRolledBack(Exception):
    """Raised inside a part's transaction to roll it back, as the script's ROLLBACK asks."""


def _progress(
    parts: Sequence[ScriptPart], done: int, left: str | None = None, again: bool = False
) -> str:
    """Which parts of a script run in parts are in effect after part ``done`` failed, what
    they made, and (``again``: the failure was a lock, not the SQL) that it runs on."""
    failed = parts[done]
    made = what_parts_made(parts[:done])
    said = [
        "in effect: " + ", ".join(p.lines for p in parts[:done]) + (f" ({made})" if made else "")
        if done
        else "",
        f"{failed.lines} "
        + ("failed outside a transaction" if failed.outside else "rolled back")
        + (f", {left}" if left else ""),
        "not run: " + ", ".join(p.lines for p in parts[done + 1 :])
        if done + 1 < len(parts)
        else "",
    ]
    return (
        f"{_IN_PARTS}, each its own transaction; "
        + "; ".join(s for s in said if s)
        + (
            f"; {AGAIN} {failed.lines} on the next attempt"
            if again
            else ": the next apply says what settles it"
        )
    )


RUNNING = "running in parts:"
"""How the ``logs`` of a row of ours start while its script runs: a row left so was cut
short (a crash, a kill, Ctrl-C), not refused by its SQL."""
AGAIN = "it runs again from"
"""In the ``logs`` of a row of ours whose part waited too long for a lock: no person needed."""


_IN_PARTS = "the script runs in parts"


class Stopped(Struct, frozen=True):
    """A failed attempt of ours at a script run in parts: its history row, how many parts
    are in effect (the first ``done``), the script's parts, the row's ``logs``, and whether
    reconciler finishes it by itself (``resume``) or a person settles it."""

    row_id: str
    done: int
    parts: tuple[ScriptPart, ...]
    logs: str
    resumable: bool

    @property
    def failed(self) -> ScriptPart:
        return self.parts[self.done]

    @property
    def made(self) -> str:
        """What the parts in effect made or changed (``table "audit", ...``)."""
        return what_parts_made(self.parts[: self.done])


def _builds(part: ScriptPart, index: str) -> str:
    return f"{part.lines} builds index {index}, absent before it"


def _index_valid(db: Database, index: str, table: str) -> bool | None:
    """Whether the index named ``index`` on ``table`` is valid; None when there is none."""
    rows = db.query(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = to_regclass(%s) AND '\"' || replace(c.relname, '\"', '\"\"') "
        "|| '\"' = %s",
        (table, index),
    )
    return bool(rows[0][0]) if rows else None


def _drop_index(db: Database, named: tuple[str, str], timeouts: Timeouts) -> None:
    """``DROP INDEX CONCURRENTLY`` of an index ours left, within the migration's timeouts:
    it waits for the transactions using its table, as the ``CREATE`` did."""
    _session_timeouts(db, timeouts)
    try:
        db.run_script(f"DROP INDEX CONCURRENTLY IF EXISTS {_qualified(db, *named)}")
    finally:
        _session_timeouts(db, None)


def _qualified(db: Database, index: str, table: str) -> str:
    """``index`` in the schema of ``table``, where PostgreSQL puts an index."""
    rows = db.query(
        "SELECT quote_ident(n.nspname) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE c.oid = to_regclass(%s)",
        (table,),
    )
    return f"{rows[0][0]}.{index}" if rows else index


def _session_timeouts(db: Database, timeouts: Timeouts | None) -> None:
    """Session-wide timeouts for statements that run outside a transaction; None resets.
    ``client_connection_check_interval`` (PostgreSQL 14+) makes the server stop such a
    statement within a second when reconciler's process dies, rather than build an index
    on for no one while holding Prisma's advisory lock."""
    checks = int(str(db.query("SHOW server_version_num")[0][0])) >= 140000
    if timeouts is None:
        db.execute("RESET lock_timeout")
        db.execute("RESET statement_timeout")
        if checks:
            db.execute("RESET client_connection_check_interval")
        return
    db.execute(f"SET lock_timeout = '{int(timeouts.lock * 1000)}ms'")
    db.execute(f"SET statement_timeout = '{int(timeouts.statement * 1000)}ms'")
    if checks:
        db.execute("SET client_connection_check_interval = '1s'")


def _now(db: Database) -> Any:
    now = datetime.now(UTC)
    return now if db.dialect == "postgresql" else now.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def _as_datetime(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, int | float):  # Prisma on SQLite may store epoch milliseconds
        return datetime.fromtimestamp(value / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _new_id() -> str:
    """A history row's id: a uuid4, as Prisma writes it. ``uuid`` is imported here, where a
    row is written, not by ``plan`` or ``lint``, which never write one."""
    import uuid

    return str(uuid.uuid4())
