"""The live schema revision of a target, compared with its migration files.

``observe_schema`` reads; ``compare`` is the pure part (files and history → pending, drift),
kept separate so tests and the planner can feed it any history.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from reconciler.source.base import Layout, LiveHistory, Migration, checksum_matches

if TYPE_CHECKING:
    from reconciler.db.connection import Database


@dataclass(frozen=True)
class Drift:
    """A difference between the files and the history that no migration will fix."""

    migration: str
    kind: Literal["edited", "missing-file", "unknown-revision", "ahead"]
    message: str


@dataclass(frozen=True)
class SchemaObservation:
    layout: str
    desired: Sequence[Migration]
    """Migrations the policy's ``revision`` asks for, in apply order."""
    history: LiveHistory
    pending: Sequence[Migration]
    """Desired migrations not yet applied, in apply order."""
    drift: Sequence[Drift]

    @property
    def live_revision(self) -> str | None:
        heads = self.history.heads
        return ", ".join(heads) if heads else None

    @property
    def desired_revision(self) -> str | None:
        """The head, or the heads of an Alembic history with branches, as ``alembic_version``
        will name them (``a, b``): a dependency counts as a parent, since Alembic folds it
        into the head that depends on it."""
        followed = {p for m in self.desired for p in m.parents}
        heads = sorted(m.id for m in self.desired if m.id not in followed)
        return ", ".join(heads) if heads else None


def observe_schema(layout: Layout, db: Database, revision: str) -> SchemaObservation:
    return compare(layout, layout.desired(revision), layout.read_history(db))


def compare(
    layout: Layout, desired: Sequence[Migration], history: LiveHistory
) -> SchemaObservation:
    applied = {a.id: a for a in history.applied}
    wanted = {m.id for m in desired}
    drift: list[Drift] = []
    by_id = {m.id: m for m in layout.migrations()}
    for entry in history.applied:
        migration = by_id.get(entry.id)
        if migration is None:
            kind: Literal["missing-file", "unknown-revision"] = (
                "missing-file" if layout.name == "prisma" else "unknown-revision"
            )
            drift.append(
                Drift(entry.id, kind, f"{entry.id} is applied but has no file in {layout.path}")
            )
        elif (
            entry.checksum
            and entry.checksum != migration.checksum
            and not checksum_matches(migration.path.read_bytes(), entry.checksum)
        ):
            drift.append(
                Drift(
                    entry.id,
                    "edited",
                    f"{migration.path} was edited after it was applied (checksum differs)",
                )
            )
        elif entry.id not in wanted:
            drift.append(
                Drift(
                    entry.id,
                    "ahead",
                    f"{entry.id} is applied but is not part of the "
                    "desired revision's history; reconciler never rolls back",
                )
            )
    for head in history.unknown:
        if head not in applied:
            drift.append(
                Drift(
                    head,
                    "unknown-revision",
                    f"the database records {head}, which is not in {layout.path}",
                )
            )
    pending = [m for m in desired if m.id not in applied]
    return SchemaObservation(layout.name, desired, history, pending, drift)
