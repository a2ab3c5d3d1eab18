"""Where one ``reconciler apply`` spends its time, without a profiler's overhead.

    python bench/apply_timeline.py POLICY [--json OUT]

Runs ``reconciler apply --yes --config POLICY`` inside this process with a wall-clock timer
around each stage: importing the CLI, each plan (observe, parse and assess, gate), each
migration's PostgreSQL work, each ledger write, reading the files, rendering the preview.
Only the standard library is imported before the timer starts, so "import reconciler.cli"
is what the real command pays. bench_schema.py runs it on a fresh database after (a).
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import json
import sys
import time
from pathlib import Path
from typing import Any

# (module, class or None for a module-level function, attribute, label)
STAGES = [
    ("reconciler.act.engine", "TargetSession", "plan", "plan: observe, parse + assess, gate"),
    ("reconciler.source.prisma", "PrismaLayout", "apply", "PostgreSQL: PrismaLayout.apply"),
    ("reconciler.ledger.store", "Ledger", "start_step", "ledger: start_step"),
    ("reconciler.ledger.store", "Ledger", "finish_step", "ledger: finish_step"),
    ("reconciler.ledger.store", "Ledger", "record_decisions", "ledger: record_decisions"),
    ("reconciler.ledger.store", "Ledger", "start_run", "ledger: start_run"),
    ("reconciler.ledger.store", "Ledger", "finish_run", "ledger: finish_run"),
    ("reconciler.ledger.store", "Ledger", "__init__", "ledger: open"),
    ("reconciler.source.prisma", "PrismaLayout", "__init__", "files: scan, read, hash"),
    ("reconciler.db.connection", "PostgresDatabase", "__init__", "PostgreSQL: connect"),
    ("reconciler.cli", None, "render_text", "render the preview"),
]


def instrument(totals: dict[str, list[float]]) -> list[str]:
    """Wrap every stage that exists in this version; the labels of those that do not."""
    missing: list[str] = []
    for module_name, class_name, attribute, label in STAGES:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            missing.append(label)
            continue
        owner: Any = getattr(module, class_name, None) if class_name else module
        original = getattr(owner, attribute, None) if owner is not None else None
        if original is None:
            missing.append(label)
            continue
        setattr(owner, attribute, _timed(original, totals.setdefault(label, [0.0, 0])))
    return missing


def _timed(function: Any, total: list[float]) -> Any:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            total[0] += time.perf_counter() - started
            total[1] += 1

    return wrapper


def timeline(policy: Path) -> dict[str, Any]:
    started = time.perf_counter()
    cli = importlib.import_module("reconciler.cli")
    imported = time.perf_counter()
    totals: dict[str, list[float]] = {}
    missing = instrument(totals)
    begun = time.perf_counter()
    code: int | str | None = 0
    try:
        cli.main(["apply", "--yes", "--config", str(policy)], standalone_mode=False)
    except SystemExit as exc:
        code = exc.code
    ended = time.perf_counter()
    command = ended - begun
    stages = {label: {"seconds": s, "calls": int(n)} for label, (s, n) in totals.items() if n}
    accounted = sum(v["seconds"] for v in stages.values())  # stages never nest
    return {
        "exit_code": code,
        "import_seconds": imported - started,
        "command_seconds": command,
        "stages": stages,
        "other_seconds": command - accounted,
        "not_instrumented": missing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("policy", type=Path)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    result = timeline(args.policy)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    else:
        print(json.dumps(result, indent=2), file=sys.stderr)
    return 0 if result["exit_code"] in (0, None) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    finally:
        gc.freeze()  # the process ends as `reconciler` ends (cli.run_command_line)
