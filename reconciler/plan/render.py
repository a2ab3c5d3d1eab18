"""Plans for people (text, read like ``terraform plan``) and for machines (JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from reconciler.safety.gate import approval_snippet

if TYPE_CHECKING:
    from reconciler.plan.model import DriftCheck, Plan, Step

DRIFT_SHOWN = 5
"""Schema drift lines ``plan`` and ``status`` print; the rest are counted (``drift`` says
them all)."""


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it is below it. Plain string work:
    a lint report names every finding's file, and ``relpath`` asks the system for the
    working directory twice per call."""
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    text, cwd = os.path.normpath(text), os.getcwd()
    if text == cwd:
        return "."
    prefix = cwd if cwd.endswith(os.sep) else cwd + os.sep
    return text[len(prefix) :] if text.startswith(prefix) else text


def render_text(plan: Plan) -> str:
    lines = [
        f"Target {plan.target} ({plan.environment}) · {plan.layout} migrations · {plan.database}",
        f"  live revision     {plan.live_revision or '(none: empty history)'}",
        f"  desired revision  {plan.desired_revision or '(no migrations)'}",
    ]
    for drift in plan.drift:
        lines.append(f"  ! drift ({drift.kind}): {drift.message}")
    if plan.drift_check is not None:
        head, *more = drift_lines(plan.drift_check)
        lines.append(f"  schema drift      {head}")
        lines += [f"    {line}" for line in more]
    for note in plan.notes:
        lines.append(f"  ! {note}")
    if plan.blocker:
        lines.append(f"  x blocked ({plan.blocker.reason}): {plan.blocker.message}")
    if plan.steps:
        lines.append("")
        width = max(len(s.migration.id) for s in plan.steps)
        for step in plan.steps:
            lines += _step_lines(step, width)
    lines.append("")
    lines.append(summary(plan))
    return "\n".join(lines)


_MARKS = {"run": "+", "blocked": "x", "waiting": "~"}


def _step_lines(step: Step, width: int) -> list[str]:
    verdict = step.verdict
    lines = [
        f"  {_MARKS[verdict.decision]} apply {step.migration.id:<{width}}  "
        f"{shown_path(step.migration.path)}"
    ]
    approvals = {id(f): a for f, a in verdict.approved}
    for finding in sorted(step.findings, key=lambda f: f.line):
        state = ""
        if id(finding) in approvals:
            state = f" [approved: {approvals[id(finding)].reason}]"
        elif finding in verdict.blocking:
            state = " [BLOCKS]"
        elif finding in verdict.waiting:
            state = " [WAITS]"
        lines.append(
            f"      {finding.severity} {finding.rule}{state}: "
            f"{shown_path(finding.file)}:{finding.line}"
        )
        lines.append(f"        {finding.message}")
        if finding.statement:
            statement = finding.statement
            lines.append(
                f"        > {statement[:117] + '...' if len(statement) > 120 else statement}"
            )
        if finding in verdict.blocking and finding.safe_alternative:
            lines.append(f"        safer: {finding.safe_alternative}")
    for note in verdict.refused:
        lines.append(f"      ! {note}")
    approvable = [f for f in verdict.blocking if f.rule != "syntax-error"]
    if approvable:
        lines.append("      To approve after review, add under this target's safety.approvals:")
        lines += [
            "  " + ln
            for ln in approval_snippet(step.migration, tuple(approvable)).rstrip().splitlines()
        ]
    return lines


def drift_lines(check: DriftCheck) -> list[str]:
    """The schema drift said in a few lines: a head line (none, how many, or why there is no
    answer), then the first differences and the notes."""
    if check.skipped is not None:
        return [f"not checked: {check.skipped}"]
    if check.error is not None:
        return [f"cannot check: {check.error}"]
    count = len(check.differences)
    replayed = f"{check.replayed} migration{'' if check.replayed == 1 else 's'} replayed"
    if not count:
        return [f"none ({replayed})"]
    lines = [
        f"{count} difference{'' if count == 1 else 's'} from the schema the applied "
        f"migrations build ({replayed})"
    ]
    lines += list(check.differences[:DRIFT_SHOWN])
    if count > DRIFT_SHOWN:
        lines.append(f"... and {count - DRIFT_SHOWN} more (`{check.command}`)")
    lines += [f"note: {note}" for note in check.notes]
    return lines


def drift_json(check: DriftCheck | None) -> dict[str, Any] | None:
    """The schema drift for machines: every difference, or why there is no answer."""
    if check is None:
        return None
    return {
        "checked": check.skipped is None and check.error is None,
        "count": len(check.differences),
        "differences": list(check.differences),
        "replayed": check.replayed,
        "notes": list(check.notes),
        "error": check.error,
        "skipped": check.skipped,
        "command": check.command,
    }


def summary(plan: Plan) -> str:
    if plan.blocker:
        return f"Plan: blocked ({plan.blocker.reason}); nothing can be applied."
    if not plan.steps:
        if any(d.kind == "ahead" for d in plan.drift):
            return (
                "No changes. The database is ahead of the desired revision; nothing is rolled back."
            )
        return "No changes. The database is at the desired revision."
    count = len(plan.steps)
    runnable = len(plan.runnable)
    text = f"Plan: {count} migration{'s' if count != 1 else ''} to apply"
    first = plan.first_blocked
    if first is not None:
        text += f"; {runnable} can run now, then {first.migration.id} {_why_stopped(first)}"
    if plan.window_opens is not None and runnable:
        text += (
            f"; outside the maintenance windows: they run when the next opens, "
            f"{plan.window_opens:%Y-%m-%d %H:%M} UTC (or `apply --ignore-window`)"
        )
    return text + "."


def _why_stopped(step: Step) -> str:
    """What the first stopped step waits for. A syntax error is no matter of approval: no
    approval can make the server run SQL it cannot parse."""
    if step.verdict.decision == "waiting":
        return "waits for the grace period"
    if step.verdict.reason == "InvalidMigration":
        return "is invalid (PostgreSQL cannot parse it): fix the migration"
    return "needs an approval"


def to_json(plan: Plan) -> dict[str, Any]:
    return {
        "target": plan.target,
        "environment": plan.environment,
        "layout": plan.layout,
        "database": plan.database,
        "live_revision": plan.live_revision,
        "desired_revision": plan.desired_revision,
        "in_sync": plan.in_sync,
        "blocker": (
            {"reason": plan.blocker.reason, "message": plan.blocker.message}
            if plan.blocker
            else None
        ),
        "drift": [
            {"migration": d.migration, "kind": d.kind, "message": d.message} for d in plan.drift
        ],
        "schema_drift": drift_json(plan.drift_check),
        "notes": list(plan.notes),
        "window_opens": plan.window_opens.isoformat() if plan.window_opens else None,
        "steps": [
            {
                "action": s.action,
                "migration": s.migration.id,
                "path": str(s.migration.path),
                "checksum": s.migration.checksum,
                "risk": s.risk,
                "decision": s.verdict.decision,
                "blocked": s.blocked,
                "approvals_used": [
                    {"rule": f.rule, "reason": a.reason, "approved_by": a.approved_by}
                    for f, a in s.verdict.approved
                ],
                "findings": [
                    {
                        "rule": f.rule,
                        "severity": f.severity,
                        "message": f.message,
                        "file": f.file,
                        "line": f.line,
                        "safe_alternative": f.safe_alternative,
                    }
                    for f in s.findings
                ],
            }
            for s in plan.steps
        ],
    }
