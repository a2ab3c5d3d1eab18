"""Replace what a PostgreSQL database holds with a dump, in one transaction.

``restore`` must leave exactly the backup behind, whatever the database held before: rows
added since are gone, tables created since are gone, tables dropped since are back. A
plain ``pg_restore`` into a populated database stops at the first object that already
exists, and ``pg_restore --clean --if-exists`` drops only the objects the dump itself
names, so a table created after the backup would survive it.

Two ways give an exact result: empty the database and restore into it, or restore into a
fresh database and swap it in by renaming. The swap is not taken, because

- ``ALTER DATABASE ... RENAME`` needs no session at all on either database: a running
  application's connection pool would have to be cut first, and a restore would then be a
  race with its reconnects;
- a new database loses what belongs to the database itself (its owner, ``GRANT CONNECT``,
  ``ALTER DATABASE ... SET`` settings, the provider's bookkeeping: on Neon and other
  managed services databases are created through their API, not by SQL);
- it needs ``CREATEDB`` and a free name beside the target on a server other people use.

Emptying needs none of this, and PostgreSQL's DDL is transactional, so it is done as one
transaction: every schema of the database (``pg_catalog``, ``information_schema`` and
PostgreSQL's own ``pg_*`` schemas aside) is dropped with what it holds, ``public`` is made
again with the owner, privileges and comment it had, and the dump's script
(``pg_restore -f -``) runs in the same transaction through ``psql``. The ``COMMIT`` is
sent only once ``pg_restore`` has written the whole script and exited cleanly; any error
(``ON_ERROR_STOP``), a truncated or corrupt dump, or a killed process rolls everything
back, and the database holds what it held before, untouched.

Other sessions may stay connected. A session that holds a lock on a table (an open
transaction) makes the drop wait, at most ``LOCK_TIMEOUT``; then the restore fails, changes
nothing, and says how many other sessions were connected. While the restore runs, the
application's queries on the restored tables wait for it.

Only the database named by ``--to`` is touched; what lives outside its schemas (roles,
other databases on the server, the database's own settings) is left alone.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
from typing import IO

from reconciler.backup.base import BackupError
from reconciler.db.connection import connect
from reconciler.db.url import DatabaseUrl
from reconciler.errors import ReconcilerError
from reconciler.secrets import redact

LOCK_TIMEOUT = "30s"
"""How long emptying waits for another session's lock on a table before giving up."""

EMPTY = """
SET lock_timeout = '{lock_timeout}';
DO $reconciler_empty$
DECLARE
    kept record;
    schema record;
    grant_ record;
BEGIN
    SELECT n.nspowner::regrole::text AS owner, n.nspacl AS acl,
           obj_description(n.oid, 'pg_namespace') AS comment
      INTO kept FROM pg_namespace n WHERE n.nspname = 'public';
    FOR schema IN
        SELECT nspname FROM pg_namespace
         WHERE nspname NOT IN ('pg_catalog', 'information_schema')
           AND NOT starts_with(nspname, 'pg_')
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', schema.nspname);
    END LOOP;
    IF kept.owner IS NOT NULL THEN
        EXECUTE format('CREATE SCHEMA public AUTHORIZATION %s', kept.owner);
        FOR grant_ IN
            SELECT a.privilege_type, a.grantee, a.is_grantable
              FROM aclexplode(kept.acl) a
             WHERE a.grantee <> kept.owner::regrole
        LOOP
            EXECUTE format(
                'GRANT %s ON SCHEMA public TO %s%s',
                grant_.privilege_type,
                CASE WHEN grant_.grantee = 0 THEN 'PUBLIC'
                     ELSE grant_.grantee::regrole::text END,
                CASE WHEN grant_.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
        END LOOP;
        IF kept.comment IS NOT NULL THEN
            EXECUTE format('COMMENT ON SCHEMA public IS %L', kept.comment);
        END IF;
    END IF;
END
$reconciler_empty$;
"""
"""Drop every schema and make ``public`` again as it was (PostgreSQL 15 made it owned by
``pg_database_owner``, usable by everyone; a dump never creates it)."""


def replace_database(
    to: DatabaseUrl,
    *,
    what: str,
    pg_restore: str,
    psql: str,
    dump: str | None = None,
    stdin: IO[bytes] | None = None,
) -> None:
    """Make ``to`` hold exactly the dump in the file ``dump`` (or read from ``stdin``), or
    raise ``BackupError`` having changed nothing."""
    from reconciler.backup.pg_dump import client_env, tool_error

    env = client_env(to)
    with tempfile.TemporaryFile() as restore_log, tempfile.TemporaryFile() as psql_log:
        try:
            writer = subprocess.Popen(
                [
                    psql,
                    "--no-psqlrc",
                    "--quiet",
                    "--no-password",
                    "--set",
                    "ON_ERROR_STOP=1",
                    "--dbname",
                    to.libpq_conninfo(password=False),
                ],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=psql_log,
                env=env,
            )
        except OSError as exc:
            raise BackupError(f"{what}: cannot run {psql}: {exc}") from None
        assert writer.stdin is not None
        try:
            reader = subprocess.Popen(
                [pg_restore, "--no-owner", "--no-privileges", "--file", "-"]
                + ([dump] if dump else []),
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=restore_log,
                env=env,
            )
        except OSError as exc:
            writer.kill()
            writer.wait()
            raise BackupError(f"{what}: cannot run {pg_restore}: {exc}") from None
        assert reader.stdout is not None
        complete = False
        try:
            with contextlib.suppress(BrokenPipeError):  # psql stopped at an error: see stderr
                writer.stdin.write(b"BEGIN;\n")
                writer.stdin.write(EMPTY.format(lock_timeout=LOCK_TIMEOUT).encode())
                shutil.copyfileobj(reader.stdout, writer.stdin)
                complete = reader.wait() == 0
                if complete:
                    writer.stdin.write(b"COMMIT;\n")
        finally:
            reader.stdout.close()
            if reader.poll() is None:
                reader.kill()
            restored = reader.wait()
            # Without a COMMIT, the end of psql's input ends its session, which rolls the
            # transaction back.
            with contextlib.suppress(BrokenPipeError):
                writer.stdin.close()
            written = writer.wait()
        # When psql stopped, pg_restore only lost its reader: psql's error is the cause.
        if written != 0:
            problem = _explain(tool_error(_text(psql_log), written), to)
        elif restored != 0:
            problem = f"pg_restore: {tool_error(_text(restore_log), restored)}"
        elif not complete:
            problem = "pg_restore did not finish"
        else:
            return
        raise BackupError(f"{what} failed, nothing was changed: {problem}")


def _text(stream: IO[bytes]) -> str:
    stream.seek(0)
    return stream.read().decode(errors="replace")


def _explain(error: str, to: DatabaseUrl) -> str:
    """A lock timeout says who held the lock: the other sessions on the database."""
    if "lock timeout" not in error:
        return redact(error)
    others = _other_sessions(to)
    return redact(
        f"{error} (another session holds a lock on a table; {others} other session(s) are "
        f"connected to {to.database_name}: end their transactions or stop the application, "
        "then retry)"
    )


def _other_sessions(to: DatabaseUrl) -> str:
    try:
        db = connect(to, application_name="reconciler-restore")
    except ReconcilerError:
        return "an unknown number of"
    try:
        rows = db.query(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return str(rows[0][0])
    finally:
        db.close()
