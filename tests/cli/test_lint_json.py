"""``lint --format json`` writes what ``json.dumps(..., indent=2)`` writes, byte for byte:
the findings are written by a faster path of their own (``plan.lint_report._flat_json``)."""

from __future__ import annotations

import json

from reconciler.plan.lint_report import LintEntry, LintReport, render
from reconciler.safety.findings import Finding


def as_json_writes(report: LintReport) -> str:
    """The report as ``json.dumps(indent=2)`` writes it: the format before the faster path."""
    return json.dumps(
        {
            "unreachable": [
                {"target": name, "error": error}
                for name, _, error in (u.partition(": ") for u in report.unreachable)
            ],
            "mode": report.mode,
            "migrations": report.migrations,
            "notes": list(report.notes),
            "failed": report.failed,
            "findings": [
                {
                    "target": e.target,
                    "migration": e.migration,
                    "rule": e.finding.rule,
                    "severity": e.finding.severity,
                    "blocking": e.blocking,
                    "approved": e.approved_by,
                    "file": e.finding.file,
                    "line": e.finding.line,
                    "message": e.finding.message,
                    "statement": e.finding.statement,
                    "static": e.finding.static,
                    "safe_alternative": e.finding.safe_alternative,
                }
                for e in report.entries
            ],
        },
        indent=2,
    )


def finding(message: str, statement: str = "", static: bool = True) -> Finding:
    return Finding(
        "drop-column", "warning", message, "/elsewhere/m.sql", 7, statement, static=static
    )


def test_the_same_text_as_json_dumps() -> None:
    entries = (
        LintEntry("shop", "20240101_init", finding('Drops "email" \\ é\t\n😀'), True),
        LintEntry("p/x.sql", "x", finding("", 'DROP TABLE "a";', static=False), False, "ok ✓"),
        LintEntry("", "", finding("\x00\x1f\u2028"), False, None),
    )
    for report in (
        LintReport(entries, 3, "static (no database)", ("a note", "é")),
        LintReport(entries[:1], 1, "data-aware", (), ("prod: refused: no route",)),
        LintReport((), 0, "static (no database)"),
    ):
        written = render(report, "json")
        assert written == as_json_writes(report)
        assert json.loads(written)["migrations"] == report.migrations
