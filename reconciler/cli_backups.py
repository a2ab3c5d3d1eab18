"""Backup verbs of the command line: ``backup``, ``backups``, ``restore``.

Like ``cli``, the commands import the engine when they run, so loading them costs ``--help``
nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli_support import (
    chosen_targets,
    config_option,
    errors_to_exit,
    fail,
    interactive,
    output_option,
    target_option,
)
from reconciler.errors import ReconcilerError, Refused

if TYPE_CHECKING:
    from reconciler.db.url import DatabaseUrl
    from reconciler.ledger import BackupInfo
    from reconciler.policy import Target


def _with_backup(target: Target) -> Target:
    if target.backup is None:
        raise Refused(f"target {target.name!r} has no `backup:` section in the policy")
    return target


@click.command()
@config_option
@click.option("--target", "-t", "target", required=True)
@errors_to_exit
def backup(config: Path, target: str) -> None:
    """Take a backup now, prove it by a restore, and apply retention."""
    from reconciler.act.backups import describe_backup, take_backup
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    policy = load_policy(config)
    spec = _with_backup(policy.target(target))
    with Ledger(policy.ledger) as ledger:
        result = take_backup(spec, ledger, reason="manual")
    click.echo(describe_backup(result))


@click.command()
@config_option
@target_option
@output_option
@errors_to_exit
def backups(config: Path, target: str | None, output: str) -> None:
    """List backups: age, size, verification."""
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    policy = load_policy(config)
    now = datetime.now(UTC)
    rows: list[dict[str, object]] = []
    with Ledger(policy.ledger) as ledger:
        for spec in chosen_targets(policy, target):
            for info in ledger.backups(spec.name):
                rows.append(
                    {
                        "target": spec.name,
                        "id": info.id,
                        "driver": info.driver,
                        "created_at": info.created_at.isoformat(),
                        "age_seconds": int((now - info.created_at).total_seconds()),
                        "size_bytes": info.size_bytes,
                        "sha256": info.sha256,
                        "verified": info.verified,
                        "verification": info.verification,
                        "reason": info.reason,
                        "location": info.location,
                    }
                )
    if output == "json":
        click.echo(json.dumps({"backups": rows}, indent=2))
        return
    if not rows:
        click.echo("No backups recorded.")
        return
    click.echo(f"{'TARGET':<12} {'ID':<36} {'AGE':>8} {'SIZE':>12}  VERIFIED  REASON")
    for row in rows:
        verified = {True: "yes", False: "FAILED", None: "no"}[row["verified"]]  # type: ignore[index]
        size = f"{row['size_bytes']:,}" if row["size_bytes"] is not None else "-"
        click.echo(
            f"{row['target']!s:<12} {row['id']!s:<36} "
            f"{_age(int(row['age_seconds'])):>8} {size:>12}  {verified:<8}  "  # type: ignore[call-overload]
            f"{row['reason']}"
        )


def _age(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@click.command()
@click.argument("backup_id")
@config_option
@click.option("--target", "-t", "target", required=True)
@click.option("--to", "to", required=True, help="Database URL to restore into.")
@click.option("--force", is_flag=True, help="Restore into a database that is not empty.")
@click.option(
    "--yes",
    "-y",
    is_flag=True,
    help="With --force, overwrite a production database without a typed confirmation "
    "(needed without a TTY).",
)
@errors_to_exit
def restore(backup_id: str, config: Path, target: str, to: str, force: bool, yes: bool) -> None:
    """Restore a backup into the database at --to (an empty one unless --force).

    The database then holds exactly the backup: what it held before is replaced, tables
    created since included. Success is reported only once the census of the restored
    database (tables, row and non-null counts) equals the one recorded with the backup.
    Restoring over the target's own database backs it up first (reason before-restore), so
    the data it held is one more restore away, never lost."""
    from reconciler.act.backups import artifact_of, describe_backup, take_backup
    from reconciler.backup import BackupError, open_driver
    from reconciler.db.url import parse_database_url, same_database
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    policy = load_policy(config)
    spec = _with_backup(policy.target(target))
    try:
        destination = parse_database_url(to, Path(config).resolve().parent)
    except ValueError as exc:
        raise Refused(f"--to: {exc}") from None
    with Ledger(policy.ledger) as ledger:
        info = ledger.backup(backup_id)
        if info is None or info.target != spec.name:
            raise Refused(
                f"no backup {backup_id!r} of target {spec.name!r} (see `reconciler backups`)"
            )
        if info.deleted_at is not None:
            raise Refused(f"backup {backup_id} was deleted by retention on {info.deleted_at:%F}")
        own = same_database(destination, spec.database)
        if own and spec.environment == "production":
            _confirm_overwrite(spec, force, yes)
        if not force:
            _refuse_unless_empty(destination)
        driver = open_driver(spec)
        before = None
        if own:
            click.echo(f"Backing up {spec.name}'s database before overwriting it ...")
            try:
                before = take_backup(
                    spec, ledger, reason="before-restore", driver=driver, protect={backup_id}
                )
            except BackupError as exc:
                fail(f"nothing restored: the backup of the current data failed: {exc}")
            click.echo(f"  {describe_backup(before)}")
        try:
            driver.restore(artifact_of(info), destination)
        except BackupError as exc:
            fail(str(exc))
    _check_restored(info, destination, before.artifact.id if before else None)
    if own and not spec.suspend:
        _say_pending_again(spec)


def _say_pending_again(spec: Target) -> None:
    """A restore to before a migration makes it pending again, and the daemon's next run
    applies it: the migration that caused the incident, often. Said, so the target can be
    suspended (or its revision pinned) first; nothing here changes the policy."""
    from reconciler.act import plan_target

    try:
        pending = len(plan_target(spec).steps)
    except ReconcilerError:
        return  # the restore stands; the next plan says what is wrong
    if pending:
        click.echo(
            f"Note: {pending} migration(s) of {spec.name}'s desired revision are pending "
            "again; a daemon reconciling it applies them at its next run unless the target "
            "is suspended (suspend: true) or its revision pinned."
        )


def _check_restored(info: BackupInfo, destination: DatabaseUrl, before: str | None) -> None:
    """Report success only when the restored database's census is the backup's own."""
    from reconciler.act.backups import restored_differences

    found = restored_differences(info, destination)
    if found is None:
        click.echo(
            f"Restored {info.id} into {destination.redacted}; not checked: the backup "
            "recorded no census."
        )
        return
    problems, census = found
    if problems:
        shown = "; ".join(problems[:10])
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        kept = f"; the data it replaced is in backup {before}" if before else ""
        fail(
            f"restore of {info.id} into {destination.redacted} does not match the census "
            f"recorded with the backup (original vs. copy): {shown}{more}{kept}"
        )
    click.echo(
        f"Restored {info.id} into {destination.redacted}: census identical to the backup's "
        f"({len(census.tables)} tables, {census.total_rows():,} rows)."
    )


def _confirm_overwrite(spec: Target, force: bool, yes: bool) -> None:
    if not force:
        raise Refused(f"--to is {spec.name}'s own production database: refusing without --force")
    if yes:
        return
    if not interactive():
        raise Refused(
            f"refusing to overwrite {spec.name}'s production database without a typed "
            "confirmation: standard input is not a terminal; add --yes to restore from a script"
        )
    typed = click.prompt(
        f"\nType the target's name to overwrite its production database "
        f"({spec.database.redacted}). Only '{spec.name}' will be accepted",
        default="",
        show_default=False,
    )
    if typed.strip() != spec.name:
        fail(
            f"restore cancelled: only the target's name, {spec.name}, confirms. "
            "Nothing was changed."
        )


def _refuse_unless_empty(destination: DatabaseUrl) -> None:
    from reconciler.db.connection import connect
    from reconciler.observe.census import take_census

    db = connect(destination)
    try:
        tables = take_census(db, checksums=False).tables
    finally:
        db.close()
    if tables:
        raise Refused(
            f"{destination.redacted} is not empty ({len(tables)} tables); "
            "restore into an empty database, or pass --force"
        )
