"""Plans for people (text, read like ``terraform plan``) and for machines (JSON)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.plan.model import Plan


def shown_path(path: str | Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return os.path.relpath(path) if Path(path).is_relative_to(Path.cwd()) else str(path)
    except ValueError:
        return str(path)


def render_text(plan: Plan) -> str:
    lines = [
        f"Target {plan.target} ({plan.environment}) · {plan.layout} migrations · {plan.database}",
        f"  live revision     {plan.live_revision or '(none: empty history)'}",
        f"  desired revision  {plan.desired_revision or '(no migrations)'}",
    ]
    for drift in plan.drift:
        lines.append(f"  ! drift ({drift.kind}): {drift.message}")
    for note in plan.notes:
        lines.append(f"  ! {note}")
    if plan.blocker:
        lines.append(f"  x blocked ({plan.blocker.reason}): {plan.blocker.message}")
    if plan.steps:
        lines.append("")
        width = max(len(s.migration.id) for s in plan.steps)
        for step in plan.steps:
            mark = "x" if step.blocked else "+"
            lines.append(
                f"  {mark} apply {step.migration.id:<{width}}  {shown_path(step.migration.path)}"
            )
            for finding in step.findings:
                lines.append(
                    f"      {finding.severity}: {finding.rule}: "
                    f"{shown_path(finding.file)}:{finding.line}: {finding.message}"
                )
    lines.append("")
    lines.append(summary(plan))
    return "\n".join(lines)


def summary(plan: Plan) -> str:
    if plan.blocker:
        return f"Plan: blocked ({plan.blocker.reason}); nothing can be applied."
    if not plan.steps:
        return "No changes. The database is at the desired revision."
    count = len(plan.steps)
    runnable = len(plan.runnable)
    text = f"Plan: {count} migration{'s' if count != 1 else ''} to apply"
    if runnable < count:
        text += f"; {count - runnable} blocked"
    return text + "."


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
        "notes": list(plan.notes),
        "steps": [
            {
                "action": s.action,
                "migration": s.migration.id,
                "path": str(s.migration.path),
                "checksum": s.migration.checksum,
                "risk": s.risk,
                "blocked": s.blocked,
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
