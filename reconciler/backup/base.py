"""The backup driver interface and what a driver produces."""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from reconciler.db.url import DatabaseUrl
from reconciler.errors import ReconcilerError


class BackupError(ReconcilerError):
    """A backup could not be taken, verified or restored; nothing else was changed."""


@dataclass(frozen=True)
class Artifact:
    """One backup where its driver keeps it."""

    id: str
    """Stable id: the dump's file stem, or the Neon branch id."""
    target: str
    driver: str
    location: str
    """A file path, or ``neon:<project>/<branch>``."""
    created_at: datetime
    size_bytes: int | None = None
    sha256: str | None = None


class BackupDriver(Protocol):
    name: str

    def take(self, label: str) -> Artifact:
        """A new backup of the target, complete and durable when this returns."""
        ...

    def list(self) -> list[Artifact]:
        """The target's backups that exist in storage, newest first."""
        ...

    def copy(self, artifact: Artifact) -> AbstractContextManager[DatabaseUrl]:
        """A scratch database holding ``artifact``'s data, dropped on exit."""
        ...

    def restore(self, artifact: Artifact, to: DatabaseUrl) -> None:
        """Make ``to`` hold exactly ``artifact``: what it held is replaced (objects made
        since the backup included), or, on failure, left as it was."""
        ...

    def delete(self, artifact: Artifact) -> None: ...

    def check(self, artifact: Artifact) -> str | None:
        """Integrity of the stored artifact (sha256 of a dump): a problem, or None."""
        ...


def newest_first(artifacts: list[Artifact]) -> list[Artifact]:
    return sorted(artifacts, key=lambda a: a.created_at, reverse=True)


def chunks(stream: object, size: int = 1 << 20) -> Iterator[bytes]:
    read = stream.read  # type: ignore[attr-defined]
    while block := read(size):
        yield block


@dataclass(frozen=True)
class NewFile:
    """Where a backup is being written: a hidden ``.partial`` file, renamed into place only
    once it is complete, so a crash or a full disk never leaves a half backup that looks whole."""

    id: str
    created_at: datetime
    final: Path
    partial: Path


def new_file(directory: Path, target: str, suffix: str) -> NewFile:
    """A name for a new backup file, and its ``partial`` file, created empty and readable by
    its owner alone (0600): a backup holds customer data. The tools that fill it (pg_dump
    ``-f``, SQLite's backup API) keep the mode of a file that exists, and the rename to the
    final name keeps it too. A backup directory that has to be created is 0700."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupError(f"backup directory {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK):
        raise BackupError(f"backup directory {directory} is not writable")
    now = datetime.now(UTC)
    artifact_id = f"{target}-{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:6]}"
    partial = directory / f".{artifact_id}{suffix}.partial"
    try:
        os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise BackupError(f"backup directory {directory}: {exc.strerror}") from None
    return NewFile(artifact_id, now, directory / f"{artifact_id}{suffix}", partial)


def sha256_file(path: Path) -> tuple[str, int]:
    """Hex sha256 and size of ``path``, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        for block in chunks(stream):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


def created_from_name(stem: str) -> datetime | None:
    """The UTC time written into a backup's file name."""
    match = re.search(r"-(\d{8}T\d{6}Z)-", stem)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
