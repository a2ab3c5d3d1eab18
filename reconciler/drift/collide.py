"""Pending migrations that would collide with drift: they create what the live schema
already has outside the migrations (``ADD COLUMN "phone"`` where a ``db push`` made one).

Run blind, such a migration fails half-way (``column "phone" already exists``) or, with
``IF NOT EXISTS``, quietly keeps an object nobody reviewed in place of the one it declares.
So it is never run: the plan names the object, and a person captures the drift first
(``reconciler drift --sql``) or undoes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reconciler.drift.compare import Difference
from reconciler.safety.analyse import parse_migration
from reconciler.safety.operations import Op

if TYPE_CHECKING:
    from reconciler.db.url import Dialect
    from reconciler.plan.model import Step
    from reconciler.source.base import Layout


@dataclass(frozen=True)
class Collision:
    migration: str
    difference: Difference

    @property
    def message(self) -> str:
        return (
            f"{self.migration} creates {_kinds.get(self.difference.kind, '')}"
            f"{self.difference.name}, which the database already has outside the migrations "
            "(drift)"
        )


_kinds = {"table": "table ", "index": "index ", "enum": "type ", "column": "column "}


def collisions(
    differences: Iterable[Difference], steps: Sequence[Step], layout: Layout, dialect: Dialect
) -> list[Collision]:
    """Each pending step that creates an object drift added, in the order they would run.
    A step whose SQL cannot be known offline creates nothing this can see."""
    added = {(d.kind, _bare(d.name)): d for d in differences if d.change == "added"}
    if not added:
        return []
    found = []
    for step in steps:
        sql = layout.sql(step.migration, dialect)
        if sql is None:
            continue
        for key in _created(parse_migration(step.migration, sql, dialect).sql.ops):
            if key in added:
                found.append(Collision(step.migration.id, added.pop(key)))
    return found


def created_by(steps: Iterable[Step], layout: Layout, dialect: Dialect) -> set[tuple[str, str]]:
    """(kind, name) of each object ``steps`` create, as ``Difference`` names them."""
    found: set[tuple[str, str]] = set()
    for step in steps:
        sql = layout.sql(step.migration, dialect)
        if sql is not None:
            found.update(_created(parse_migration(step.migration, sql, dialect).sql.ops))
    return found


def key(difference: Difference) -> tuple[str, str]:
    return (difference.kind, _bare(difference.name))


def _created(ops: Iterable[Op]) -> Iterable[tuple[str, str]]:
    """(kind, name) of what each operation creates, named as the catalog names it."""
    for op in ops:
        if op.kind == "create-table":
            yield ("table", _bare(op.table))
        elif op.kind == "add-column":
            yield ("column", f"{_bare(op.table)}.{op.column}")
        elif op.kind == "create-index" and op.new_name:
            yield ("index", op.new_name)
        elif op.kind == "create-enum":
            yield ("enum", _bare(op.table))


def _bare(name: str) -> str:
    return name.removeprefix("public.")
