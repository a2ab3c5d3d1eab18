"""``lint``: the safety rules over migrations, without applying anything.

Two ways in: a policy (each target's pending migrations, data-aware when its database is
reachable, judged by the gate with the policy's approvals) or paths (migration folders,
Alembic script directories, ``.sql`` files: static, each migration judged on its own).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.act.assess import add_unanalysable, assess, static_assess
from reconciler.errors import DatabaseUnavailable, ReconcilerError, SourceError
from reconciler.plan.lint_report import LintEntry, LintReport, entries_for
from reconciler.plan.render import shown_path
from reconciler.rulebook import DEFAULT_CONTRACT_GRACE
from reconciler.safety.gate import DEFAULT_RULES, gate_step
from reconciler.secrets import redact
from reconciler.source import open_layout
from reconciler.source.base import Layout, Migration, sha256_hex
from reconciler.textfiles import read_bytes

if TYPE_CHECKING:
    from reconciler.policy.model import Policy, Safety, Target
    from reconciler.safety.findings import Finding


def lint_policy(policy: Policy, targets: Sequence[Target]) -> LintReport:
    """An unreachable database is unknown, never empty: which migrations it lacks and what
    data it holds cannot be known, so every migration of the desired revision is judged on
    its own, as ``lint PATH`` judges files, and the report says so first."""
    # Imported here: static lint of files (``lint_paths``) reads no database.
    from reconciler.db.connection import connect
    from reconciler.observe.schema import observe_schema

    now = datetime.now(UTC)
    entries: list[LintEntry] = []
    unreachable: list[str] = []
    modes: set[str] = set()
    count = 0
    for target in targets:
        layout = open_layout(target.migrations)
        try:
            db = connect(target.database, create=False)
        except DatabaseUnavailable as exc:
            unreachable.append(f"{target.name}: {_one_line(str(exc))}")
            pending: Sequence[Migration] = layout.desired(target.migrations.revision)
            dialect = target.database.dialect
            items = [(m, layout.sql(m, dialect)) for m in pending]
            findings = static_assess(items, dialect, now, target.safety.contract_grace)
            add_unanalysable(findings, target, layout, items, dialect)
            modes.add(UNREACHABLE_MODE)
        else:
            try:
                observation = observe_schema(layout, db, target.migrations.revision)
                findings = assess(target, layout, db, observation, now)
            finally:
                db.close()
            pending = observation.pending
            modes.add("data-aware")
        count += len(pending)
        entries += _judged(target.name, pending, findings, target.safety, now)
    mode = " and ".join(sorted(modes)) or "nothing to lint"
    return LintReport(tuple(entries), count, mode, unreachable=tuple(unreachable))


UNREACHABLE_MODE = "static (database unreachable: live data unknown)"


def _one_line(text: str) -> str:
    """A driver's error, first line only, secrets removed."""
    lines = redact(text).strip().splitlines()
    return lines[0] if lines else "no reason given"


def _judged(
    name: str,
    pending: Sequence[Migration],
    findings: dict[str, list[Finding]],
    safety: Safety,
    now: datetime,
) -> list[LintEntry]:
    out: list[LintEntry] = []
    for migration in pending:
        found = findings.get(migration.id, [])
        verdict = gate_step(migration, found, safety, now)
        approved = {id(f): a.reason for f, a in verdict.approved}
        out += entries_for(name, migration.id, found, verdict.blocking, approved)
    return out


def lint_paths(paths: Sequence[Path], targets: Sequence[Target] = ()) -> LintReport:
    """Static lint of folders and files. A migration inside a ``targets``' migrations folder
    (a policy given with ``-c``, as a pre-commit hook does) is judged by that target's
    blocking severities and approvals; any other by the default severities, no approvals."""
    now = datetime.now(UTC)
    groups: dict[str, list[tuple[Migration, str | None]]] = {}
    given: dict[Path, str] = {}  # each migration's path on the command line, as the report names it
    providers: dict[Path, str | None] = {}
    layouts: dict[Path, Layout] = {}  # each Alembic revision's script directory
    folders: dict[str, str] = {}
    for path in paths:
        for migration, sql, dialect in _collect(path, providers, layouts, folders):
            groups.setdefault(dialect, []).append((migration, sql))
            given.setdefault(migration.path, shown_path(path))
    entries: list[LintEntry] = []
    notes = []
    if "sqlite" in groups:
        notes.append("SQLite migrations: statements PostgreSQL's grammar cannot read are skipped")
    for dialect, items in groups.items():
        findings = static_assess(items, dialect, now, DEFAULT_CONTRACT_GRACE)
        for migration, sql in items:
            owner = _owner(migration, targets)
            if migration.path in layouts:
                add_unanalysable(
                    findings, owner, layouts[migration.path], [(migration, sql)], "postgresql"
                )
            found = findings.get(migration.id, [])
            rules = owner.safety if owner is not None else DEFAULT_RULES
            verdict = gate_step(migration, found, rules, now)
            approved = {id(f): a.reason for f, a in verdict.approved}
            entries += entries_for(
                given[migration.path], migration.id, found, verdict.blocking, approved
            )
    count = sum(len(items) for items in groups.values())
    return LintReport(tuple(entries), count, "static (no database)", tuple(notes))


def _owner(migration: Migration, targets: Sequence[Target]) -> Target | None:
    """The first target whose migrations folder holds ``migration``'s file."""
    for target in targets:
        if migration.path.is_relative_to(target.migrations.path.resolve()):
            return target
    return None


ACCEPTS = (
    "lint takes .sql files, Alembic revisions (.py), Prisma migrations folders and Alembic "
    "script directories"
)
"""What ``lint PATH`` reads; anything else is refused by name, never read as SQL."""


def _collect(
    path: Path,
    providers: dict[Path, str | None],
    layouts: dict[Path, Layout],
    folders: dict[str, str] | None = None,
) -> list[tuple[Migration, str | None, str]]:
    """The migrations at ``path``. ``providers``: each migrations folder's provider, read
    once however many of its files a pre-commit hook names; ``layouts``: filled with each
    Alembic revision's script directory, which knows why a revision did not render;
    ``folders``: each folder's resolved path, found once (``_resolved``)."""
    folders = {} if folders is None else folders
    # Imported where needed: Alembic alone costs a tenth of a second to import.
    from reconciler.source.prisma import PrismaLayout, read_provider

    is_file = path.is_file()
    if not is_file and not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if is_file and path.suffix == ".py":
        return _revision(path, layouts)
    if is_file:
        if path.suffix.lower() != ".sql":
            raise SourceError(f"{path}: not a migration; {ACCEPTS}")
        data, resolved = read_bytes(path), _resolved(path, folders)
        migration = Migration(_file_id(path), path.stem, resolved, sha256_hex(data))
        # A Prisma migration is written for the provider its folder's lock file names.
        provider = None
        if path.name == "migration.sql":
            folder = resolved.parent.parent
            if folder not in providers:
                providers[folder] = read_provider(folder)
            provider = providers[folder]
        dialect = "sqlite" if provider == "sqlite" else "postgresql"
        return [(migration, data.decode("utf-8", errors="replace"), dialect)]
    if (path / "env.py").is_file():
        from reconciler.source.alembic import AlembicLayout

        alembic = AlembicLayout(path.resolve())
        layouts.update((m.path, alembic) for m in alembic.migrations())
        return [(m, alembic.sql(m, "postgresql"), "postgresql") for m in alembic.migrations()]
    if (path / "migration.sql").is_file():
        return _collect(path / "migration.sql", providers, layouts, folders)
    if not (path / "migration_lock.toml").is_file() and not any(
        (folder / "migration.sql").is_file() for folder in path.iterdir()
    ):
        raise SourceError(f"{path}: not a migrations folder; {ACCEPTS}")
    try:
        prisma = PrismaLayout(path.resolve())
    except ReconcilerError as exc:
        raise SourceError(f"{path}: not a migrations folder: {exc}") from None
    dialect = "sqlite" if prisma.provider == "sqlite" else "postgresql"
    return [(m, m.read(), dialect) for m in prisma.migrations()]


def _resolved(path: Path, folders: dict[str, str]) -> Path:
    """``path.resolve()``, each folder on the way resolved once for every file under it: a
    pre-commit hook names every migration of a history, and ``resolve`` reads each folder
    of each path again (the largest part of reading 163 files)."""
    return Path(_real(os.fspath(path), folders))


def _real(path: str, folders: dict[str, str]) -> str:
    """``os.path.realpath``, remembered per folder. A symbolic link, ``..`` or the top of
    the path is left to ``realpath``."""
    known = folders.get(path)
    if known is not None:
        return known
    parent, name = os.path.split(path)
    if not parent or not name or name in (".", "..") or os.path.islink(path):
        real = os.path.realpath(path)
    else:
        real = os.path.join(_real(parent, folders), name)
    folders[path] = real
    return real


def _revision(path: Path, layouts: dict[Path, Layout]) -> list[tuple[Migration, str | None, str]]:
    """An Alembic revision file, read through its script directory."""
    for folder in path.resolve().parents[:3]:
        if (folder / "env.py").is_file():
            from reconciler.source.alembic import AlembicLayout

            alembic = AlembicLayout(folder)
            found = [
                (m, alembic.sql(m, "postgresql"), "postgresql")
                for m in alembic.migrations()
                if m.path == path.resolve()
            ]
            if not found:
                raise SourceError(f"{path}: not a revision of its Alembic script directory")
            layouts[path.resolve()] = alembic
            return found
    raise SourceError(f"{path}: a Python file outside an Alembic script directory; {ACCEPTS}")


def _file_id(path: Path) -> str:
    return path.parent.name if path.name == "migration.sql" else str(path)
