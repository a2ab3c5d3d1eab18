"""Identity verbs of the command line: ``identity plan`` and ``identity sync``.

Like ``cli``, the commands import the engine when they run, so loading them costs ``--help``
nothing."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from reconciler.cli_support import (
    EXIT_BLOCKED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_PENDING,
    chosen_targets,
    config_option,
    confirm,
    errors_to_exit,
    fail,
    output_option,
    target_option,
)
from reconciler.secrets import redact

if TYPE_CHECKING:
    from reconciler.act.identity import IdentityOutcome
    from reconciler.policy import Target


@click.group()
def identity() -> None:
    """Keep the users table in step with the identity provider."""


def _with_identity(targets: list[Target]) -> list[Target]:
    chosen = [t for t in targets if t.identity is not None]
    if not chosen:
        # An error (exit 1), not a usage error: exit 2 means "changes pending" for a plan.
        names = ", ".join(t.name for t in targets)
        fail(f"no identity to sync: target(s) {names} have no `identity:` section")
    return chosen


def _render(outcome: IdentityOutcome) -> str:
    lines = [f"Identity {outcome.target}: {outcome.reason}: {redact(outcome.message)}"]
    diff = outcome.diff
    if diff is not None:
        if diff.missing_sample:
            lines.append(
                f"  + missing ({diff.missing:,}): {', '.join(diff.missing_sample)}"
                + (" ..." if diff.missing > len(diff.missing_sample) else "")
            )
        if diff.changed_sample:
            lines.append(
                f"  ~ changed ({diff.changed:,}): {', '.join(diff.changed_sample)}"
                + (" ..." if diff.changed > len(diff.changed_sample) else "")
            )
        if diff.refused_sample:
            lines.append(
                f"  ! refused ({diff.refused:,}, unique index {', '.join(diff.refused_by)}): "
                f"{', '.join(diff.refused_sample)}"
                + (" ..." if diff.refused > len(diff.refused_sample) else "")
            )
        if diff.orphan_keys:
            shown = diff.orphan_keys[:50]
            lines.append(
                f"  - orphans ({diff.orphans:,}): {', '.join(shown)}"
                + (" ..." if diff.orphans > len(shown) else "")
            )
    return "\n".join(lines)


def _code(outcomes: list[IdentityOutcome]) -> int:
    if any(o.reason == "AwaitingApproval" for o in outcomes):
        return EXIT_BLOCKED
    if any(o.reason not in ("InSync", "Pending") for o in outcomes):
        return EXIT_ERROR
    return EXIT_PENDING if any(o.reason == "Pending" for o in outcomes) else EXIT_OK


def _json(outcomes: list[IdentityOutcome]) -> str:
    return json.dumps(
        {
            "targets": [
                {
                    "target": o.target,
                    "reason": o.reason,
                    "message": redact(o.message),
                    "listed": o.diff.listed if o.diff else None,
                    "missing": o.diff.missing if o.diff else None,
                    "not_taken": o.diff.not_taken if o.diff else None,
                    "refused": o.diff.refused if o.diff else None,
                    "changed": o.diff.changed if o.diff else None,
                    "orphans": o.diff.orphans if o.diff else None,
                    "orphan_keys": list(o.diff.orphan_keys) if o.diff else [],
                    "applied": None
                    if o.applied is None
                    else {
                        "created": o.applied.created,
                        "updated": o.applied.updated,
                        "soft_deleted": o.applied.soft_deleted,
                        "deleted": o.applied.deleted,
                        "conflicts": o.applied.conflicts,
                    },
                }
                for o in outcomes
            ]
        },
        indent=2,
    )


@identity.command("plan")
@config_option
@target_option
@output_option
@errors_to_exit
def identity_plan(config: Path, target: str | None, output: str) -> None:
    """What a sync would change (a dry run). Exit 0 in sync, 2 changes, 3 needs approval."""
    from reconciler.act.identity import reconcile_identity
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    policy = load_policy(config)
    outcomes = []
    with Ledger(policy.ledger) as ledger:
        for spec in _with_identity(chosen_targets(policy, target)):
            outcomes.append(
                reconcile_identity(spec, ledger, dry_run=True, trigger="cli", source=str(config))
            )
    click.echo(_json(outcomes) if output == "json" else "\n\n".join(_render(o) for o in outcomes))
    sys.exit(_code(outcomes))


@identity.command("sync")
@config_option
@target_option
@click.option("--yes", "-y", is_flag=True, help="Do not ask (needed without a TTY).")
@click.option(
    "--allow-deletions",
    type=click.IntRange(min=0),
    default=None,
    metavar="N",
    help="Allow up to N deletions in this run, above max_deletions.",
)
@errors_to_exit
def identity_sync(config: Path, target: str | None, yes: bool, allow_deletions: int | None) -> None:
    """Create, update and (per policy) soft-delete or delete users."""
    from reconciler.act.identity import reconcile_identity
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    policy = load_policy(config)
    outcomes = []
    with Ledger(policy.ledger) as ledger:
        for spec in _with_identity(chosen_targets(policy, target)):
            if not yes:  # with --yes, one listing: the guard runs inside the sync itself
                preview = reconcile_identity(
                    spec,
                    ledger,
                    dry_run=True,
                    trigger="cli",
                    source=str(config),
                    allow_deletions=allow_deletions,
                )
                click.echo(_render(preview))
                if preview.reason != "Pending":
                    outcomes.append(preview)
                    continue
                confirm(
                    f"Apply these identity changes to {spec.name} ({spec.environment})?", "sync"
                )
            outcome = reconcile_identity(
                spec,
                ledger,
                dry_run=False,
                trigger="cli",
                source=str(config),
                allow_deletions=allow_deletions,
                report=click.echo,
            )
            click.echo(_render(outcome))
            outcomes.append(outcome)
    code = _code(outcomes)
    sys.exit(EXIT_OK if code == EXIT_PENDING else code)
