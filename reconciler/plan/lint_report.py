"""Lint results and their formats: text for people, JSON, SARIF 2.1.0 for code scanning,
and GitHub Actions workflow commands (annotations on the pull request's diff)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from json.encoder import encode_basestring_ascii
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from msgspec import Struct

from reconciler import __version__
from reconciler.plan.render import shown_path
from reconciler.rulebook import RULES

if TYPE_CHECKING:
    from reconciler.safety.findings import Finding


class LintEntry(Struct, frozen=True):
    target: str
    """The policy target, or the path given on the command line (relative to the working
    directory when below it)."""
    migration: str
    finding: Finding
    blocking: bool
    approved_by: str | None = None
    """The approval's reason when one covers the finding."""


class LintReport(Struct, frozen=True):
    entries: tuple[LintEntry, ...]
    migrations: int
    mode: str
    """``data-aware`` (live facts), ``static``, or a mix described per target."""
    notes: tuple[str, ...] = ()
    unreachable: tuple[str, ...] = ()
    """``target: reason`` for each target whose database could not be reached: its live
    state is unknown (not empty), so its migrations were judged statically. Every format
    says so first."""

    @property
    def failed(self) -> bool:
        return any(e.blocking for e in self.entries)


def render(report: LintReport, fmt: str) -> str:
    return {"text": _text, "json": _json, "sarif": _sarif, "github": _github}[fmt](report)


def _text(report: LintReport) -> str:
    lines = [f"reconciler lint: DATABASE UNREACHABLE: {u}" for u in report.unreachable]
    lines.append(f"reconciler lint: {report.migrations} migration(s), {report.mode}")
    lines += [f"  note: {n}" for n in report.notes]
    for entry in report.entries:
        f = entry.finding
        state = (
            " (approved: " + entry.approved_by + ")"
            if entry.approved_by
            else (" BLOCKS" if entry.blocking else "")
        )
        lines.append(f"{shown_path(f.file)}:{f.line}: {f.severity} {f.rule}{state}: {f.message}")
        if f.statement:
            lines.append(f"    {f.statement[:160]}")
    blocking = sum(1 for e in report.entries if e.blocking)
    lines.append(f"{len(report.entries)} finding(s), {blocking} blocking.")
    return "\n".join(lines)


def _json(report: LintReport) -> str:
    """The report as ``json.dumps(..., indent=2)`` writes it. The findings, a few hundred
    flat objects in a history's lint, are written by ``_flat_json``: json's indenting
    encoder is pure Python, and took longer than the rules that found them."""
    head = json.dumps(
        {
            "unreachable": [
                {"target": name, "error": error}
                for name, _, error in (u.partition(": ") for u in report.unreachable)
            ],
            "mode": report.mode,
            "migrations": report.migrations,
            "notes": list(report.notes),
            "failed": report.failed,
            "findings": [],
        },
        indent=2,
    )
    if not report.entries:
        return head
    findings = ",\n    ".join(
        _flat_json(
            (
                e.target,
                e.migration,
                e.finding.rule,
                e.finding.severity,
                e.blocking,
                e.approved_by,
                shown_path(e.finding.file),
                e.finding.line,
                e.finding.message,
                e.finding.statement,
                e.finding.static,
                e.finding.safe_alternative,
            )
        )
        for e in report.entries
    )
    return head.removesuffix("[]\n}") + "[\n    " + findings + "\n  ]\n}"


_FINDING_KEYS = tuple(
    f'\n      "{key}": '
    for key in (
        "target",
        "migration",
        "rule",
        "severity",
        "blocking",
        "approved",
        "file",
        "line",
        "message",
        "statement",
        "static",
        "safe_alternative",
    )
)
"""Each finding's keys, in order, as an object at the findings' depth writes them."""
_CONSTANTS: dict[object, str] = {None: "null", True: "true", False: "false"}


def _flat_json(values: tuple[object, ...]) -> str:
    """One finding as ``json.dumps(indent=2)`` writes it inside the report's list: strings
    through json's own C escaping, ``None`` and the booleans by name, anything else (a
    line number) through ``json.dumps``."""
    return (
        "{"
        + ",".join(
            key
            + (
                encode_basestring_ascii(value)
                if type(value) is str
                else _CONSTANTS[value]
                if value is None or type(value) is bool
                else json.dumps(value)
            )
            for key, value in zip(_FINDING_KEYS, values, strict=True)
        )
        + "\n    }"
    )


def _level(entry: LintEntry) -> str:
    if entry.blocking:
        return "error"
    return "note" if entry.finding.severity == "info" or entry.approved_by else "warning"


def _sarif(report: LintReport) -> str:
    used = sorted({e.finding.rule for e in report.entries})
    rules: list[dict[str, Any]] = [
        {
            "id": rule_id,
            "name": rule_id,
            "shortDescription": {"text": RULES[rule_id].title},
            "fullDescription": {"text": RULES[rule_id].why},
            "help": {"text": RULES[rule_id].safe_alternative},
            "properties": {"severity": RULES[rule_id].severity},
        }
        for rule_id in used
        if rule_id in RULES
    ]
    results = [
        {
            "ruleId": e.finding.rule,
            "ruleIndex": used.index(e.finding.rule),
            "level": _level(e),
            "message": {"text": e.finding.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": _uri(e.finding.file)},
                        "region": {"startLine": max(e.finding.line, 1)},
                    }
                }
            ],
        }
        for e in report.entries
    ]
    return json.dumps(
        {
            "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "version": "2.1.0",
            "runs": [
                {
                    "tool": {
                        "driver": {
                            "name": "reconciler",
                            "version": __version__,
                            "rules": rules,
                        }
                    },
                    "results": results,
                    **_invocations(report),
                }
            ],
        },
        indent=2,
    )


def _invocations(report: LintReport) -> dict[str, Any]:
    """An unreachable database, as SARIF reports a condition of the run itself: a
    notification of the tool's execution, not a result on a file."""
    if not report.unreachable:
        return {}
    notes = [
        {
            "level": "warning",
            "message": {
                "text": f"database unreachable: {u}; live data "
                "unknown, migrations judged statically"
            },
        }
        for u in report.unreachable
    ]
    return {"invocations": [{"executionSuccessful": True, "toolExecutionNotifications": notes}]}


def _uri(file: str) -> str:
    """A SARIF artifact URI: relative to the working directory when below it (code scanning
    resolves it against the checkout), else an absolute ``file://`` URI; percent-encoded."""
    shown = Path(shown_path(file))
    return shown.as_uri() if shown.is_absolute() else quote(shown.as_posix())


def _github(report: LintReport) -> str:
    kinds = {"error": "error", "warning": "warning", "note": "notice"}
    lines = [
        f"::warning title={_escape_property('reconciler lint: database unreachable')}::"
        f"{_escape(u)}; live data unknown, migrations judged statically"
        for u in report.unreachable
    ]
    for entry in report.entries:
        f = entry.finding
        message = _escape(
            f"{f.message}. Safer: {f.safe_alternative}" if entry.blocking else f.message
        )
        lines.append(
            f"::{kinds[_level(entry)]} file={_escape_property(shown_path(f.file))},"
            f"line={max(f.line, 1)},title={_escape_property(f'reconciler {f.rule}')}"
            f"::{message}"
        )
    blocking = sum(1 for e in report.entries if e.blocking)
    lines.append(
        f"reconciler lint: {len(report.entries)} finding(s), {blocking} blocking, {report.mode}."
    )
    return "\n".join(lines)


def _escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape(text).replace(":", "%3A").replace(",", "%2C")


def entries_for(
    target: str,
    migration: str,
    findings: Sequence[Finding],
    blocking: Sequence[Finding],
    approved: dict[int, str],
) -> list[LintEntry]:
    blocking_ids = {id(f) for f in blocking}
    return [
        LintEntry(target, migration, f, id(f) in blocking_ids, approved.get(id(f)))
        for f in sorted(findings, key=lambda f: f.line)
    ]
