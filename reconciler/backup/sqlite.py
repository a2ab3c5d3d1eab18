"""The ``sqlite`` driver: SQLite's online backup API, a consistent copy of a live file even
while the application writes to it."""

from __future__ import annotations

import os
import sqlite3
import tempfile
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
from reconciler.db.connection import connect
from reconciler.db.url import DatabaseUrl, parse_database_url
from reconciler.observe.census import Census, take_census

SUFFIX = ".sqlite3"


class SqliteDriver:
    name = "sqlite"

    def __init__(self, target: str, url: DatabaseUrl, directory: Path) -> None:
        self.target = target
        self.url = url
        self.directory = directory / target

    def take(self, label: str) -> Artifact:
        source = self.url.sqlite_path
        if not source.is_file():
            raise BackupError(f"{source}: the database file does not exist")
        file = new_file(self.directory, self.target, SUFFIX)
        artifact_id, now, final, partial = file.id, file.created_at, file.final, file.partial
        try:
            _copy(source, partial)
            digest, size = sha256_file(partial)
            os.replace(partial, final)
        except (OSError, sqlite3.Error) as exc:
            raise BackupError(
                f"backup of {self.target} to {self.directory} failed: "
                f"{getattr(exc, 'strerror', None) or exc}"
            ) from None
        finally:
            partial.unlink(missing_ok=True)
        return Artifact(artifact_id, self.target, self.name, str(final), now, size, digest)

    def take_with_census(self, label: str) -> tuple[Artifact, Census]:
        """The copy is consistent by construction; its own census is the reference."""
        artifact = self.take(label)
        db = connect(parse_database_url(f"sqlite:///{artifact.location}"), read_only=True)
        try:
            return artifact, take_census(db)
        finally:
            db.close()

    def list(self) -> list[Artifact]:
        if not self.directory.is_dir():
            return []
        return newest_first(
            [
                Artifact(
                    p.stem,
                    self.target,
                    self.name,
                    str(p),
                    created_from_name(p.stem) or datetime.fromtimestamp(p.stat().st_mtime, UTC),
                    p.stat().st_size,
                )
                for p in self.directory.glob(f"{self.target}-*{SUFFIX}")
            ]
        )

    def check(self, artifact: Artifact) -> str | None:
        path = Path(artifact.location)
        if not path.is_file():
            return f"{path} is missing"
        if artifact.sha256 and sha256_file(path)[0] != artifact.sha256:
            return f"{path} changed since it was written (sha256 differs)"
        return None

    @contextmanager
    def copy(self, artifact: Artifact) -> Iterator[DatabaseUrl]:
        with tempfile.TemporaryDirectory(prefix="rcl_scratch_") as folder:
            scratch = parse_database_url(f"sqlite:///{Path(folder) / 'scratch.db'}")
            self.restore(artifact, scratch)
            yield scratch

    def restore(self, artifact: Artifact, to: DatabaseUrl) -> None:
        problem = self.check(artifact)
        if problem:
            raise BackupError(f"backup {artifact.id}: {problem}")
        if to.dialect != "sqlite":
            raise BackupError("a SQLite backup restores only into a sqlite:/// file")
        try:
            _copy(Path(artifact.location), to.sqlite_path)
        except sqlite3.DatabaseError as exc:
            raise BackupError(f"restore of {artifact.id}: {exc}") from None

    def delete(self, artifact: Artifact) -> None:
        Path(artifact.location).unlink(missing_ok=True)


def _copy(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    # Read-write but never created, and refusing writes: a read-only connection that is the
    # last to close a WAL database leaves its -wal and -shm files behind.
    src = sqlite3.connect(f"file:{source}?mode=rw", uri=True)
    src.execute("PRAGMA query_only = ON")
    dst = sqlite3.connect(destination)
    try:
        # A file restored over keeps the journal mode its application chose; a new file
        # (a backup, a scratch copy) is one self-contained file, even copied from WAL.
        mode = str(dst.execute("PRAGMA journal_mode").fetchone()[0]).upper()
        src.backup(dst)
        dst.execute(f"PRAGMA journal_mode={'WAL' if mode == 'WAL' else 'DELETE'}")
    finally:
        dst.close()
        src.close()
