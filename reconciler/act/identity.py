"""The identity pipeline of one target: list → stage → diff → guard → back up → apply → record.

The guard is the point: a provider's bad day must never delete customers.

- A listing that did not complete (an error mid-pagination, a count that disagrees with the
  provider's own count, an empty listing against a populated table) changes nothing:
  ``ProviderUnavailable`` / ``IncompleteListing``.
- A user about to be deleted whom the provider still has, asked about on its own, means the
  listing left users out (paged by offset while users were deleted): ``IncompleteListing``,
  nothing changed.
- Deletions (soft or hard) above ``max_deletions`` (count, or percent of the table) stop the
  run before any change (``AwaitingApproval``); the plan lists them. A person may allow
  them for one run (``--allow-deletions N``).
- Users a webhook changed after the listing began are left alone: the webhook is newer.
- With ``backup.before: [identity-delete]`` a verified backup is taken before deleting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from reconciler.act.backups import describe_backup, take_backup
from reconciler.backup import BackupError
from reconciler.db.connection import Database, connect
from reconciler.errors import (
    DatabaseUnavailable,
    IncompleteListing,
    ProviderUnavailable,
    ReconcilerError,
)
from reconciler.identity import open_provider
from reconciler.identity.sync import STAGE, Applied, IdentityDiff, UsersTable

if TYPE_CHECKING:
    from reconciler.identity.base import Provider
    from reconciler.ledger import Ledger
    from reconciler.policy.model import Identity, Target


@dataclass(frozen=True)
class IdentityOutcome:
    target: str
    reason: str
    message: str
    diff: IdentityDiff | None = None
    applied: Applied | None = None
    dry_run: bool = True
    provider_count: int | None = None
    run_id: int | None = None

    @property
    def in_sync(self) -> bool:
        return self.reason == "InSync"


def _spec(target: Target) -> Identity:
    if target.identity is None:
        raise ProviderUnavailable(f"target {target.name!r} has no `identity:` section")
    return target.identity


def _users(count: int) -> str:
    return f"{count:,} user" + ("" if count == 1 else "s")


def reconcile_identity(
    target: Target,
    ledger: Ledger,
    *,
    dry_run: bool,
    trigger: str,
    source: str,
    allow_deletions: int | None = None,
    provider: Provider | None = None,
    report: Callable[[str], None] | None = None,
    cancel: threading.Event | None = None,
) -> IdentityOutcome:
    """One identity run. ``cancel``, once set, ends the provider's request in flight (the
    daemon is stopping): the run ends ``ProviderUnavailable``, nothing changed."""
    spec = _spec(target)
    run_id = ledger.start_run(target.name, "identity", trigger, source)
    outcome = IdentityOutcome(target.name, "ProviderUnavailable", "interrupted", run_id=run_id)
    say = report or (lambda line: None)
    db: Database | None = None
    opened: Provider | None = None
    try:
        db = connect(target.database, create=not dry_run)  # a dry run creates no file
        table = UsersTable(db, spec)
        if provider is None:
            provider = opened = open_provider(spec, cancel)
        outcome = _run(target, spec, table, ledger, run_id, dry_run, allow_deletions, provider, say)
        table.drop_stage()
    except IncompleteListing as exc:
        outcome = IdentityOutcome(
            target.name, "IncompleteListing", f"nothing changed: {exc}", run_id=run_id
        )
    except ProviderUnavailable as exc:
        outcome = IdentityOutcome(
            target.name, "ProviderUnavailable", f"nothing changed: {exc}", run_id=run_id
        )
    except DatabaseUnavailable as exc:  # retried by itself, like a provider that is down
        outcome = IdentityOutcome(
            target.name, "DatabaseUnavailable", f"nothing changed: {exc}", run_id=run_id
        )
    except ReconcilerError as exc:
        outcome = IdentityOutcome(target.name, "IdentityFailed", str(exc), run_id=run_id)
    finally:
        if opened is not None:
            opened.close()
        if db is not None:
            db.close()
        ledger.finish_run(run_id, outcome.reason, outcome.message)
        diff, applied = outcome.diff, outcome.applied or Applied()
        ledger.record_identity(
            run_id,
            target.name,
            {
                "listed": diff.listed if diff else None,
                "provider_count": outcome.provider_count,
                "missing": diff.missing if diff else None,
                "changed": diff.changed if diff else None,
                "orphans": diff.orphans if diff else None,
                "created": applied.created,
                "updated": applied.updated,
                "soft_deleted": applied.soft_deleted,
                "deleted": applied.deleted,
                "conflicts": len(applied.conflicts),
            },
            dry_run,
        )
    return outcome


def _run(
    target: Target,
    spec: Identity,
    table: UsersTable,
    ledger: Ledger,
    run_id: int,
    dry_run: bool,
    allow_deletions: int | None,
    provider: Provider,
    say: Callable[[str], None],
) -> IdentityOutcome:
    name = target.name
    before = provider.count()
    started = datetime.now(UTC)
    listed = table.stage(provider.users())
    after = provider.count()
    counts = [c for c in (before, after) if c is not None]
    if counts and not min(counts) <= listed <= max(counts):
        raise IncompleteListing(
            f"the listing returned {listed:,} users but {provider.name} counts {counts[-1]:,}"
        )
    # Users a webhook changed after the listing began: the webhook is newer than the listing.
    newer = ledger.webhook_keys_since(name, started)
    if newer:
        marks = ", ".join(table.db.param for _ in newer)
        table.db.execute(f"DELETE FROM {STAGE} WHERE key IN ({marks})", tuple(newer))
    diff = table.diff(listed)
    newer_keys = set(newer)
    orphan_keys = [k for k in diff.orphan_keys if k not in newer_keys]
    if listed == 0 and diff.table_users > 0:
        raise IncompleteListing(
            f"{provider.name} listed no users while {spec.table} has {diff.table_users:,}"
        )
    deleting = diff.orphans if spec.orphans != "report" else 0
    limit = spec.max_deletions.limit(diff.table_users)
    result = partial(IdentityOutcome, name, diff=diff, provider_count=after, run_id=run_id)
    if deleting > limit and (allow_deletions is None or deleting > allow_deletions):
        shown = ", ".join(orphan_keys[:20]) + (" ..." if deleting > 20 else "")
        return result(
            "AwaitingApproval",
            f"nothing changed: {_users(deleting)} would be {spec.orphans.replace('-', ' ')}d, "
            f"above max_deletions ({spec.max_deletions.describe(diff.table_users)}): {shown}; "
            f"check the provider, then run `{target.command('identity sync')} "
            f"--allow-deletions {deleting}`",
            dry_run=dry_run,
        )
    if deleting > len(diff.orphan_keys):  # allowed: every orphan, not the first 1,000
        orphan_keys = [k for k in table.orphan_keys() if k not in newer_keys]
    if deleting and orphan_keys:
        present = provider.still_present(orphan_keys)
        if present:
            shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
            raise IncompleteListing(
                f"the listing left out {_users(len(present))} that {provider.name} still "
                f"has ({shown}): nothing deleted or changed; the next run lists again"
            )
    summary = (
        f"{listed:,} listed; {diff.missing:,} missing, {diff.changed:,} changed, "
        f"{diff.orphans:,} orphaned"
    )
    if diff.not_taken:
        # Users the table can never take (a column it requires is empty at the provider):
        # counted apart, so a table as in sync as it can be is InSync.
        summary += f", {diff.not_taken:,} not taken"
    if dry_run:
        if diff.not_taken:
            shown = ", ".join(diff.not_taken_sample[:10])
            more = " ..." if diff.not_taken > len(diff.not_taken_sample[:10]) else ""
            summary += f" ({spec.table} requires a column they leave empty: {shown}{more})"
        if diff.refused:
            summary += "; " + _would_refuse(spec.table, diff)
        # Users a unique index would refuse are no change the sync can make.
        pending = diff.missing + diff.changed - diff.refused > 0 or deleting
        return result(
            "Pending" if pending else "UsersRefused" if diff.refused else "InSync", summary
        )
    if deleting and target.backup and "identity-delete" in target.backup.before:
        try:
            say(
                describe_backup(
                    take_backup(target, ledger, reason="identity-delete", run_id=run_id)
                )
            )
        except BackupError as exc:
            return result("BackupFailed", f"nothing changed: {exc}", dry_run=False)
    applied = Applied()
    table.create_and_update(diff, create=spec.missing == "create", applied=applied)
    if spec.orphans == "soft-delete":
        table.soft_delete(orphan_keys, applied)
    elif spec.orphans == "delete":
        table.hard_delete(orphan_keys, applied)
    done = (
        f"created {applied.created:,}, updated {applied.updated:,}, soft-deleted "
        f"{applied.soft_deleted:,}, deleted {applied.deleted:,}"
    )
    never = [k for k in applied.rejected if k not in applied.refusals]
    if never:
        done += (
            f"; {len(never)} not taken by {spec.table} (a column it requires is empty): "
            f"{', '.join(never[:10])}"
        )
    if applied.refusals:
        done += "; " + _refused(spec.table, applied.refusals)
    if applied.conflicts:
        done += (
            f"; {len(applied.conflicts)} not deleted (still referenced): "
            f"{', '.join(applied.conflicts[:10])}"
        )
    reported = []
    if spec.missing == "report" and diff.missing:
        reported.append(f"{diff.missing:,} missing users reported, not created")
    if spec.orphans == "report" and diff.orphans:
        reported.append(f"{diff.orphans:,} orphans reported, not deleted")
    message = f"{summary}: {done}" + (f" ({'; '.join(reported)})" if reported else "")
    # A user the table refused is not in sync: a person must look (two accounts sharing
    # an email, say); the rest of the sync went through.
    reason = "UsersRefused" if applied.refusals else "InSync"
    return result(reason, message, applied=applied, dry_run=False)


def _refused(table: str, refusals: dict[str, str]) -> str:
    """``2 refused by users: <the database's reason>: user_a, user_b``, per reason."""
    by_reason: dict[str, list[str]] = {}
    for key, why in refusals.items():
        by_reason.setdefault(why, []).append(key)
    parts = []
    for why, keys in by_reason.items():
        more = " ..." if len(keys) > 10 else ""
        parts.append(f"{len(keys)} refused by {table}: {why}: {', '.join(keys[:10])}{more}")
    return "; ".join(parts)


def _would_refuse(table: str, diff: IdentityDiff) -> str:
    """``2 would be refused by users (unique index users_email_key): user_a, user_b``."""
    shown = diff.refused_sample[:10]
    more = " ..." if diff.refused > len(shown) else ""
    indexes = ", ".join(diff.refused_by)
    return (
        f"{_users(diff.refused)} would be refused by {table} (unique index {indexes}: "
        f"another row holds the same value, or a user listed before them): "
        f"{', '.join(shown)}{more}"
    )
