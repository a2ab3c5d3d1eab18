"""Alembic's layout: a script directory with its ``env.py``, and the ``alembic_version`` table.

Revisions are applied one at a time through Alembic's own ``EnvironmentContext`` and the
application's ``env.py``, exactly as ``alembic upgrade <rev>`` would run them, so whatever
the application does there (naming conventions, schemas, extensions) still happens. The
script directory is loaded once per layout, not once per revision. Timeouts reach the
connections ``env.py`` opens through libpq's ``options`` in the URL.

On SQLite, Python's driver begins a transaction only before INSERT, UPDATE or DELETE, so the
DDL of a revision (CREATE, ALTER, DROP) would run outside ``env.py``'s transaction: a
revision failing halfway would leave its first statements in place while ``alembic_version``
stays behind. While a revision runs, connections ``env.py`` opens to the target's file get
SQLAlchemy's documented remedy (the driver leaves transactions alone; a BEGIN goes ahead of
each transaction's first statement), whatever engine ``env.py`` builds, so a failed revision
rolls back whole.
"""

from __future__ import annotations

import copy
import io
import logging
import sqlite3
import traceback
import warnings
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import Script, ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry, Pool
from sqlalchemy.sql import sqltypes

from reconciler.errors import MigrationFailed, SourceError
from reconciler.secrets import redact
from reconciler.source.alembic_target import (
    Watch,
    confirm,
    sqlite_identity,
    target_identity,
    watch,
)
from reconciler.source.base import (
    DECLARED_TYPE,
    AppliedMigration,
    LiveHistory,
    Migration,
    TransactionCheck,
    sha256_hex,
)

if TYPE_CHECKING:
    from reconciler.db.connection import Database
    from reconciler.db.url import DatabaseUrl, Dialect
    from reconciler.policy.model import Timeouts

TABLE = "alembic_version"


class AlembicLayout:
    """An Alembic script directory and the ``alembic_version`` table."""

    name: Literal["alembic"] = "alembic"

    def __init__(self, path: Path) -> None:
        if not path.is_dir():
            raise SourceError(f"{path}: Alembic script directory not found")
        if not (path / "env.py").is_file():
            raise SourceError(f"{path}: not an Alembic script directory (no env.py)")
        self.path = path
        self.config = Config()
        self.config.set_main_option("script_location", str(path))
        self.script = _load_scripts(self.config, path)
        self._migrations = _topological(self.script)
        self._by_id = {m.id: m for m in self._migrations}
        self._unrendered: dict[tuple[str, str], str] = {}
        self._ddl_memo: tuple[str, str, dict[str, Any]] | None = None
        """(database, revision, Alembic's DDL memo) after the last revision applied here."""
        self._rendered: dict[tuple[str, str, str], str | None] = {}
        """Each revision's SQL by (id, checksum, dialect), None when it cannot be rendered:
        a run plans again after each round of steps, and rendering runs ``env.py`` once per
        revision (MLflow: 67 of them, about 2 s a plan)."""

    def migrations(self) -> Sequence[Migration]:
        return self._migrations

    def desired(self, revision: str) -> Sequence[Migration]:
        if revision in ("head", "heads"):
            return self._migrations
        try:
            found = self.script.get_revision(revision)
        except CommandError as exc:
            raise SourceError(f"{self.path}: revision {revision!r}: {exc}") from None
        if found is None:
            raise SourceError(f"{self.path}: revision {revision!r} not found")
        wanted = self.ancestry([found.revision])
        return [m for m in self._migrations if m.id in wanted]

    def ancestry(self, ids: Iterable[str]) -> set[str]:
        """``ids`` and every revision they depend on."""
        seen: set[str] = set()
        stack = [i for i in ids if i in self._by_id]
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(self._by_id[current].parents)
        return seen

    def check(self, dialect: Dialect) -> list[str]:
        return []

    def _run_env(self) -> None:
        """``env.py``, with a handler on the root logger. Many an ``env.py`` sets logging up
        from ``alembic.ini`` when the root logger has none (optuna's: ``if not
        logging.getLogger().handlers: fileConfig(config.config_file_name)``); the
        configuration here comes from no file, and ``fileConfig(None)`` fails. A caller that
        set no logging up (``lint`` of files) lends Python's last-resort handler, which
        writes what it would anyway: warnings and worse, on stderr."""
        root = logging.getLogger()
        lent = None if root.handlers else logging.lastResort
        if lent is not None:
            root.addHandler(lent)
        try:
            self.script.run_env()
        finally:
            if lent is not None:
                root.removeHandler(lent)

    def sql(self, migration: Migration, dialect: Dialect) -> str | None:
        """The revision's SQL as ``alembic upgrade --sql`` renders it, for ``dialect``;
        rendered once per content of the revision's file."""
        if len(migration.parents) > 1 or self.script.get_revision(migration.id) is None:
            return None  # a merge point runs no SQL of its own
        key = (migration.id, migration.checksum, dialect)
        if key not in self._rendered:
            self._rendered[key] = self._render(migration, dialect)
        return self._rendered[key]

    def _render(self, migration: Migration, dialect: Dialect) -> str | None:
        config = Config()
        config.set_main_option("script_location", str(self.path))
        config.set_main_option("sqlalchemy.url", f"{dialect}://")
        buffer = io.StringIO()
        start = migration.parents[0] if migration.parents else None

        def upgrade(rev: Any, context: Any) -> Any:
            _declare_existing_types(context.impl)
            return self.script._upgrade_revs(migration.id, rev)

        try:
            with EnvironmentContext(
                config,
                self.script,
                fn=upgrade,
                as_sql=True,
                starting_rev=start,
                destination_rev=migration.id,
                output_buffer=buffer,
            ):
                self._run_env()
        except Exception as exc:  # env.py or the revision cannot run offline: not analysed
            self._unrendered[(migration.id, dialect)] = _failure_where(exc, self.path)
            return None
        self._unrendered.pop((migration.id, dialect), None)
        return buffer.getvalue()

    def unanalysable(self, migration: Migration, dialect: Dialect) -> str | None:
        """Why ``sql`` gave None for a revision that runs SQL of its own (a revision that
        reads data through ``op.get_bind()``, an ``env.py`` without offline mode), in one
        line naming the file and line; None for a merge point or a revision that renders."""
        key = (migration.id, dialect)
        if key not in self._unrendered:
            self.sql(migration, dialect)
        return self._unrendered.get(key)

    def read_history(self, db: Database) -> LiveHistory:
        if not db.table_exists(TABLE):
            return LiveHistory(tool_table=False)
        heads = tuple(sorted(row[0] for row in db.query(f"SELECT version_num FROM {TABLE}")))
        unknown = [h for h in heads if h not in self._by_id]
        applied_ids = self.ancestry(heads)
        applied = [
            AppliedMigration(m.id, None, None, None)
            for m in self._migrations
            if m.id in applied_ids
        ]
        notes = [
            f"alembic_version names revision {h!r}, which is not in {self.path}" for h in unknown
        ]
        return LiveHistory(applied=applied, heads=heads, notes=notes, unknown=tuple(unknown))

    def lock(self, db: Database) -> AbstractContextManager[None]:
        return nullcontext()

    def apply(
        self,
        db: Database,
        migration: Migration,
        timeouts: Timeouts,
        check: TransactionCheck | None = None,
    ) -> None:
        """``check`` runs in ``env.py``'s own transaction, on the connections it opens that
        the server says are the target's: after its BEGIN, and before its COMMIT, which a
        failing check prevents. A connection to any other database is refused before it
        runs anything, and the revision counts as applied only once the target's own
        ``alembic_version`` names it (``alembic_target``)."""
        config = Config()
        config.set_main_option("script_location", str(self.path))
        url = _url_with_timeouts(db.url, timeouts)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))

        memo = self._memo_for(db, migration)

        def upgrade(rev: Any, context: Any) -> Any:
            context.impl.memo = memo
            # What ``alembic.command.upgrade`` does, on the script directory loaded once.
            return self.script._upgrade_revs(migration.id, rev)

        transactional = (
            _transactional_sqlite(db.url) if db.url.dialect == "sqlite" else nullcontext()
        )
        seen = Watch(target_identity(db))
        try:
            with (
                transactional,
                watch(db, check, seen),
                EnvironmentContext(config, self.script, fn=upgrade, destination_rev=migration.id),
            ):
                self._run_env()
        except MigrationFailed as exc:  # the check refused to let it commit
            if seen.refused is not None:  # env.py reached another database: nothing ran
                raise MigrationFailed(seen.refused) from None
            if seen.in_effect:
                raise type(exc)(
                    f"{exc} (it ran in autocommit mode, as autocommit_block runs statements: "
                    "the loss is in effect, as is what the revision committed before it; "
                    "alembic_version did not move: restore what was lost from the backup, "
                    "then fix the revision)"
                ) from None
            raise type(exc)(f"{exc} (env.py's transaction rolled back)") from None
        except Exception as exc:  # env.py and revisions are the application's code
            if seen.refused is not None:  # refused, and env.py said so in its own words
                raise MigrationFailed(seen.refused) from None
            raise MigrationFailed(f"{_reason(exc)} (env.py's transaction rolled back)") from None
        confirm(db, seen, migration.id, TABLE, checked=check is not None)
        self._ddl_memo = (db.url.redacted, migration.id, memo)

    def _memo_for(self, db: Database, migration: Migration) -> dict[str, Any]:
        """The memo of named types (PostgreSQL enums) that ``sa.Enum`` columns created,
        which ``alembic upgrade heads`` keeps for the whole run: a later ``create_table``
        with the same ``sa.Enum(name=...)`` then skips its CREATE TYPE (Optuna's
        ``v2.4.0.a`` relies on it). Each revision runs in an ``env.py`` run of its own here,
        so the memo of the parent revision, applied by this layout to this database just
        before, carries on; otherwise it starts empty, as a new ``alembic upgrade`` does."""
        last = self._ddl_memo
        if last is not None and last[0] == db.url.redacted and last[1] in migration.parents:
            return copy.deepcopy(last[2])
        return {}


def _declare_existing_types(impl: Any) -> None:
    """While ``impl`` renders a revision offline, each ``alter_column`` that changes a type
    and declares the old one (``existing_type``) writes that old type, compiled for the
    dialect, in a comment just before the statements it renders (``DECLARED_TYPE``):
    static lint then knows what a column of a table made outside the history held (MLflow's
    base tables). A type the dialect cannot compile, or that spans lines, is left out."""
    original = impl.alter_column

    def alter_column(table_name: str, column_name: str, **kw: Any) -> Any:
        declared = _compiled(kw.get("existing_type"), impl.dialect)
        if declared is not None and kw.get("type_") is not None:
            quoted = column_name.replace('"', '""')
            impl.static_output(f'{DECLARED_TYPE} "{quoted}" {declared}')
        return original(table_name, column_name, **kw)

    impl.alter_column = alter_column


def _compiled(declared: Any, dialect: Any) -> str | None:
    """``declared`` (a SQLAlchemy type, or its class) as the dialect spells it in DDL: an
    ``Enum`` with ``native_enum=False`` is the ``VARCHAR`` of its longest label (or of the
    ``length`` it gives); None when there is none or it does not compile."""
    if declared is None:
        return None
    try:
        text = str(sqltypes.to_instance(declared).compile(dialect=dialect)).strip()
    except Exception:  # a type of another dialect (MySQL's MEDIUMTEXT) or a broken one
        return None
    return text if text and "\n" not in text and "\r" not in text else None


_OWN_BEGIN = "reconciler.sqlite_own_begin"
"""Marks, in a pooled connection's ``info``, a SQLite connection whose BEGIN we send."""


@event.listens_for(Engine, "before_cursor_execute")
def _begin_first(
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: Any,
    context: Any,
    executemany: bool,
) -> None:
    """BEGIN ahead of a transaction's first statement on a marked connection. Not in the
    ``begin`` event: an ``env.py`` that already applies this remedy sends its own BEGIN
    there, after ours, which SQLite would refuse. Permanent, so a connection an engine
    keeps pooled stays transactional after the run."""
    if not conn.info.get(_OWN_BEGIN) or not conn.in_transaction():
        return
    if conn.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        return
    if statement.lstrip()[:5].upper() != "BEGIN":  # env.py's own BEGIN, if it sends one
        cursor.execute("BEGIN")


@contextmanager
def _transactional_sqlite(url: DatabaseUrl) -> Iterator[None]:
    """While it is open, new connections to ``url``'s file leave transactions to SQLAlchemy."""
    found = url.sqlite_path.stat()
    target = ("sqlite", found.st_dev, found.st_ino)

    def on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        if not isinstance(dbapi_connection, sqlite3.Connection):
            return
        if sqlite_identity(dbapi_connection) == target:
            dbapi_connection.isolation_level = None
            record.info[_OWN_BEGIN] = True

    event.listen(Pool, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Pool, "connect", on_connect)


def _load_scripts(config: Config, path: Path) -> ScriptDirectory:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            script = ScriptDirectory.from_config(config)
            list(script.walk_revisions())  # imports every revision now: errors surface here
        except Exception as exc:  # a revision that fails to import: name its file and line
            failure: Exception | None = exc
        else:
            failure = None
    # Alembic only warns when two files declare one revision id, and keeps one of them (the
    # other would never run); the graph it is left with fails in other words, or not at all.
    twice = [str(w.message) for w in caught if "present more than once" in str(w.message)]
    if twice:
        raise SourceError(f"{path}: {'; '.join(twice)}: each revision id must be unique")
    if isinstance(failure, SyntaxError):
        raise SourceError(f"{failure.filename}:{failure.lineno}: {failure.msg}")
    if failure is not None:
        frames = [
            f
            for f in traceback.extract_tb(failure.__traceback__)
            if Path(f.filename).is_relative_to(path)
        ]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(path)
        raise SourceError(f"{where}: {_reason(failure)}")
    return script


def _failure_where(exc: Exception, path: Path) -> str:
    """``file:line: Error: text`` of the deepest frame under the script directory, the file
    named relative to it (``versions/ab12.py:18``, ``env.py:40``)."""
    frames = [
        f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename).is_relative_to(path)
    ]
    if not frames:
        return _reason(exc)
    return f"{Path(frames[-1].filename).relative_to(path)}:{frames[-1].lineno}: {_reason(exc)}"


def _topological(script: ScriptDirectory) -> list[Migration]:
    """Every revision, parents first; ties broken by the order Alembic lists them."""
    revisions: list[Script] = list(reversed(list(script.walk_revisions())))
    order: list[Migration] = []
    done: set[str] = set()
    pending = list(revisions)
    while pending:
        progress = False
        for rev in list(pending):
            parents = _parents(rev)
            if all(p in done for p in parents):
                path = Path(rev.path)
                order.append(
                    Migration(
                        rev.revision,
                        (rev.doc or path.stem).strip(),
                        path,
                        sha256_hex(path.read_bytes()),
                        parents,
                    )
                )
                done.add(rev.revision)
                pending.remove(rev)
                progress = True
        if not progress:
            names = ", ".join(r.revision for r in pending)
            raise SourceError(f"{script.dir}: revisions with missing parents: {names}")
    return order


def _parents(rev: Script) -> tuple[str, ...]:
    def as_tuple(value: Any) -> tuple[str, ...]:
        if value is None:
            return ()
        return (value,) if isinstance(value, str) else tuple(value)

    # Alembic resolves ``depends_on`` branch labels to revision ids here.
    return as_tuple(rev._all_down_revisions)


def _url_with_timeouts(url: DatabaseUrl, timeouts: Timeouts) -> str:
    sa_url = url.sqlalchemy_url()
    if url.dialect == "postgresql":
        options = (
            f"-c lock_timeout={int(timeouts.lock * 1000)} "
            f"-c statement_timeout={int(timeouts.statement * 1000)}"
        )
        sa_url = sa_url.update_query_dict({"options": options})
    return sa_url.render_as_string(hide_password=False)


def _reason(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy wraps it), secrets removed."""
    original = getattr(exc, "orig", None) or exc
    diag = getattr(original, "diag", None)
    text = getattr(diag, "message_primary", None) if diag else None
    if not text:
        lines = str(original).strip().splitlines()
        text = lines[0] if lines else ""
    name = type(original).__name__
    return redact(f"{name}: {text}" if text else name)
