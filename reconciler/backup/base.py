"""The backup driver interface and what a driver produces."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
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
        """Restore ``artifact`` into ``to`` (which the caller made sure is empty)."""
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
