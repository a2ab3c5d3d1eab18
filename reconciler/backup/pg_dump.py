"""The ``pg_dump`` driver: custom-format dumps (``-Fc``) in a directory, ``pg_restore`` back.

Passwords reach the client tools through ``PGPASSWORD`` in their environment, never on
their command line (where ``ps`` would show them). The client is matched to the server:
among the installed ``pg_dump`` binaries the oldest one at least as new as the server is
used, and a server newer than every client is a clear error rather than a failed dump.
"""

from __future__ import annotations

import builtins
import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from reconciler.backup.base import (
    Artifact,
    BackupError,
    created_from_name,
    new_file,
    newest_first,
    sha256_file,
)
from reconciler.backup.replace import replace_database
from reconciler.backup.scratch import drop_leftovers, scratch_database
from reconciler.db.connection import connect
from reconciler.db.url import DatabaseUrl
from reconciler.observe.census import Census, take_census
from reconciler.secrets import redact

SUFFIX = ".dump"


class PgDumpDriver:
    name = "pg_dump"

    def __init__(self, target: str, url: DatabaseUrl, directory: Path) -> None:
        self.target = target
        self.url = url
        self.directory = directory / target

    # -- client tools ---------------------------------------------------------------

    def _server_major(self) -> int:
        db = connect(self.url, application_name="reconciler-backup")
        try:
            return int(db.query("SHOW server_version_num")[0][0]) // 10000
        finally:
            db.close()

    def tool(self, name: str, server_major: int) -> str:
        found = _installed(name)
        if not found:
            raise BackupError(
                f"{name} not found: install the PostgreSQL client tools "
                f"(postgresql-client-{server_major})"
            )
        fitting = sorted(v for v in found if v >= server_major)
        if not fitting:
            newest = max(found)
            raise BackupError(
                f"{name} {newest} is older than the server (PostgreSQL {server_major}); it "
                f"cannot dump it safely: install postgresql-client-{server_major}"
            )
        return found[fitting[0]]

    def _run(self, argv: list[str], url: DatabaseUrl, what: str) -> None:
        try:
            result = subprocess.run(
                [*argv, url.libpq_conninfo(password=False)],
                env=client_env(url),
                capture_output=True,
                text=True,
                check=False,
            )
        except OSError as exc:
            raise BackupError(f"{what}: cannot run {argv[0]}: {exc}") from None
        if result.returncode != 0:
            raise BackupError(f"{what} failed: {tool_error(result.stderr, result.returncode)}")

    # -- the interface ----------------------------------------------------------------

    def take(self, label: str) -> Artifact:
        return self._dump(None)

    def take_with_census(self, label: str) -> tuple[Artifact, Census]:
        """Dump and census from one exported snapshot: the census is exactly what the dump
        holds, however busy the database is meanwhile."""
        db = connect(self.url, application_name="reconciler-backup")
        try:
            db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            snapshot = str(db.query("SELECT pg_export_snapshot()")[0][0])
            artifact = self._dump(snapshot)
            census = take_census(db)
            db.execute("COMMIT")
            return artifact, census
        finally:
            db.close()

    def _dump(self, snapshot: str | None) -> Artifact:
        major = self._server_major()
        pg_dump = self.tool("pg_dump", major)
        file = new_file(self.directory, self.target, SUFFIX)
        artifact_id, now, final, partial = file.id, file.created_at, file.final, file.partial
        try:
            snapshot_args = [f"--snapshot={snapshot}"] if snapshot else []
            self._run(
                [pg_dump, "-Fc", "--no-password", *snapshot_args, "-f", str(partial), "--dbname"],
                self.url,
                f"pg_dump of {self.target}",
            )
            digest, size = sha256_file(partial)
            os.replace(partial, final)
        except OSError as exc:
            raise BackupError(
                f"pg_dump of {self.target}: {exc.strerror} ({self.directory})"
            ) from None
        finally:
            partial.unlink(missing_ok=True)
        return Artifact(artifact_id, self.target, self.name, str(final), now, size, digest)

    def list(self) -> list[Artifact]:
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.glob(f"{self.target}-*{SUFFIX}"):
            stat = path.stat()
            created = created_from_name(path.stem) or datetime.fromtimestamp(stat.st_mtime, UTC)
            found.append(
                Artifact(path.stem, self.target, self.name, str(path), created, stat.st_size)
            )
        return newest_first(found)

    def check(self, artifact: Artifact) -> str | None:
        path = Path(artifact.location)
        if not path.is_file():
            return f"{path} is missing"
        if artifact.sha256:
            digest, _ = sha256_file(path)
            if digest != artifact.sha256:
                return f"{path} changed since it was written (sha256 differs)"
        return None

    @contextmanager
    def copy(self, artifact: Artifact) -> Iterator[DatabaseUrl]:
        with scratch_database(self.url, self.target) as scratch:
            self._restore_into_empty(artifact, scratch)
            yield scratch

    def restore(self, artifact: Artifact, to: DatabaseUrl) -> None:
        """Make ``to`` hold exactly ``artifact``, whatever it held (see ``replace``)."""
        problem = self.check(artifact)
        if problem:
            raise BackupError(f"backup {artifact.id}: {problem}")
        major = _server_major_of(to)
        replace_database(
            to,
            what=f"restore of {artifact.id}",
            pg_restore=self.tool("pg_restore", major),
            psql=self.tool("psql", major),
            dump=artifact.location,
        )

    def _restore_into_empty(self, artifact: Artifact, to: DatabaseUrl) -> None:
        """A plain ``pg_restore`` into a database made for it (a scratch copy)."""
        problem = self.check(artifact)
        if problem:
            raise BackupError(f"backup {artifact.id}: {problem}")
        pg_restore = self.tool("pg_restore", self._server_major())
        self._run(
            [
                pg_restore,
                "--no-owner",
                "--no-privileges",
                "--exit-on-error",
                "--no-password",
                artifact.location,
                "--dbname",
            ],
            to,
            f"pg_restore of {artifact.id}",
        )

    def delete(self, artifact: Artifact) -> None:
        Path(artifact.location).unlink(missing_ok=True)

    def drop_leftovers(self) -> builtins.list[str]:
        """Scratch databases a crashed run of this target left behind, dropped."""
        return drop_leftovers(self.url, self.target)


def tool_error(stderr: str, status: int) -> str:
    """What a client tool's stderr says went wrong, on one line without secrets: its first
    error (``pg_restore: error: ...``, ``psql:<stdin>:12: ERROR: ...``) with the DETAIL and
    HINT lines after it. The last line is no use: pg_restore ends with the statement that
    failed (``Command was: CREATE TABLE ...``), often just its closing ``);``."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    first = next((i for i, ln in enumerate(lines) if _ERROR.search(ln)), None)
    if first is None:
        chosen = [lines[-1]] if lines else [f"exit status {status}"]
    else:
        chosen = [lines[first]]
        for line in lines[first + 1 : first + 4]:
            if not line.startswith(("DETAIL:", "HINT:")):
                break
            chosen.append(line)
    text = " ".join(_TOOL_PREFIX.sub("", line, count=1) for line in chosen)
    text = redact(" ".join(text.split()))
    return text if len(text) <= 400 else text[:399] + "…"


_ERROR = re.compile(r"\b(error|ERROR|FATAL|PANIC):")
_TOOL_PREFIX = re.compile(r"^(pg_restore|pg_dump|psql)(:[^:\s]*:\d+)?: ")


def _server_major_of(url: DatabaseUrl) -> int:
    db = connect(url, application_name="reconciler-restore")
    try:
        return int(db.query("SHOW server_version_num")[0][0]) // 10000
    finally:
        db.close()


def client_env(url: DatabaseUrl) -> dict[str, str]:
    """The environment of a client tool run against ``url``: its password travels here, in
    ``PGPASSWORD``, never on the command line (``libpq_conninfo(password=False)``), where any
    process could read it."""
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10", "PGAPPNAME": "reconciler-backup"}
    if url.password:
        env["PGPASSWORD"] = url.password
    return env


@functools.cache
def _installed(name: str) -> dict[int, str]:
    """Installed client binaries by major version: versioned Debian paths, then PATH."""
    found: dict[int, str] = {}
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}")):
        major = _version(str(candidate))
        if major:
            found.setdefault(major, str(candidate))
    on_path = shutil.which(name)
    if on_path:
        major = _version(on_path)
        if major:
            found.setdefault(major, on_path)
    return found


def _version(binary: str) -> int | None:
    try:
        out = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, check=False, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r"(\d+)(?:\.\d+)?", out)
    return int(match.group(1)) if match else None
