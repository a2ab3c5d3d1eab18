"""Lint benchmarks: reconciler's static lint side by side with squawk, and the round trips of
the data-aware lint.

    python bench/bench_lint.py                    # both parts
    python bench/bench_lint.py --only static      # squawk against reconciler, no database
    python bench/bench_lint.py --only data        # the data-aware round trips only

static: the 160-migration Prisma history (``generate_history.py --count 160``) linted by
    (i) one ``squawk`` process over the 160 ``migration.sql`` files, (ii) one
    ``reconciler lint`` process over the folder, and (iii) ``lint_paths`` inside this
    already-started Python process. Rounds alternate the order; the medians are compared.
    Target: "Lint 160 real migration files (static) in one process: within 5x of squawk".
data: the first 150 migrations applied with ``reconciler apply``, rows inserted into every
    table, then ``lint_policy`` on the last 10 pending migrations with every SQL statement
    sent to PostgreSQL counted. Target: "at most one catalog round trip per table touched,
    not per statement": one catalog query per gather, at most one scan per table touched.

The database this script creates is dropped when it ends, also on failure or Ctrl-C.
Work files go to bench/work/lint/.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from common import (
    QueryLog,
    Server,
    add_json_option,
    add_server_option,
    approve_all,
    beside_python,
    counting,
    ms,
    reconciler_command,
    reset_ledger,
    run,
    run_benchmarks,
    verdict,
    write_policy,
)
from generate_history import write_history
from psycopg import sql

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work" / "lint"
STATIC_TARGET = 5.0

# -- static: squawk against reconciler ---------------------------------------------------


def squawk_command(args: argparse.Namespace, files: Sequence[Path]) -> list[str]:
    """One squawk process over every file. squawk reports every file and every violation
    (it never stops at the first); the explicit empty config keeps any ``.squawk.toml``
    found above the working directory out, and nothing is uploaded (``upload-to-github``
    is a separate subcommand, not used)."""
    config = WORK / "squawk.toml"
    config.write_text("", encoding="utf-8")
    return [
        args.squawk,
        "--config",
        str(config),
        "--reporter",
        "json",
        "--pg-version",
        args.pg_version,
        "--assume-in-transaction",
        *map(str, files),
    ]


def squawk_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SQUAWK_", "GITHUB_"))}


def clear_parse_cache() -> bool:
    """Empty reconciler's parse cache (keyed by file content), so a repeated in-process
    lint parses every file again as the first lint of a CI job does."""
    try:
        from reconciler.safety import analyse
    except ImportError:
        return False
    cache = getattr(analyse, "_CACHE", None)
    if isinstance(cache, dict):
        cache.clear()
        return True
    return False


TIMELINE = """
import json, sys, time
from pathlib import Path
stages = []
began = time.perf_counter()
import reconciler.act.lint
stages.append(("import reconciler.act.lint (and what it imports)", time.perf_counter()))
import reconciler.cli
stages.append(("import the rest of reconciler.cli", time.perf_counter()))
from reconciler.plan.lint_report import render
report = reconciler.act.lint.lint_paths([Path(sys.argv[1])])
render(report, "json")
stages.append(("lint_paths and the JSON report", time.perf_counter()))
out, last = {}, began
for name, at in stages:
    out[name], last = at - last, at
print(json.dumps(out))
"""
"""Where a ``reconciler lint PATH`` process spends its time: the same steps in the order the
command takes them, each timed; interpreter start-up and exit are what remains. This
``python -c`` process tears the interpreter down at exit, which the console script skips
(``cli._exit_now``), so its remainder is larger than a real lint's."""

FIRST_CALL = """
import sys, time
from pathlib import Path
from reconciler.act.lint import lint_paths
started = time.perf_counter()
report = lint_paths([Path(sys.argv[1])])
print(time.perf_counter() - started, len(report.entries))
"""


def bench_static(args: argparse.Namespace) -> dict[str, Any]:
    migrations = WORK / "migrations"
    files = write_history(migrations, args.count, args.seed)
    size = sum(f.stat().st_size for f in files)
    squawk = squawk_command(args, files)
    rec = [*reconciler_command(), "lint", "--format", "json", str(migrations)]
    _, version = run([args.squawk, "--version"])
    print(f"static: {len(files)} migrations ({size / 1024:.0f} KiB of SQL) in {migrations}")
    print(f"    (i)   {version.strip()}: {' '.join(squawk[:8])} <{len(files)} files>")
    print(f"    (ii)  reconciler process: {' '.join(rec)}")
    print("    (iii) reconciler.act.lint.lint_paths([folder]) in this process, parse cache")
    print("          emptied before each call")

    started = time.perf_counter()
    from reconciler.act.lint import lint_paths

    import_seconds = time.perf_counter() - started
    cache_cleared = clear_parse_cache()
    if not cache_cleared:
        print("    note: no parse cache found to empty; (iii) times whatever lint_paths does")

    def in_process() -> tuple[float, int]:
        clear_parse_cache()
        began = time.perf_counter()
        report = lint_paths([migrations])
        return time.perf_counter() - began, len(report.entries)

    first_call, in_findings = in_process()
    runs: dict[str, list[float]] = {"squawk": [], "process": [], "in_process": []}
    findings: dict[str, int] = {}
    env = squawk_env()
    for index in range(args.repeats + 1):
        timings: dict[str, float] = {}
        order = ["squawk", "process", "in_process"]
        if index % 2:
            order.reverse()
        for name in order:
            if name == "squawk":
                timings[name], out = run(squawk, expect=(0, 1), env=env)
                findings["squawk"] = len(json.loads(out or "[]"))
            elif name == "process":
                timings[name], out = run(rec, expect=(0, 1))
                findings["reconciler"] = len(json.loads(out)["findings"])
            else:
                timings[name], in_findings = in_process()
        label = "warm-up" if index == 0 else f"run {index}"
        print(
            f"    {label:8} squawk {ms(timings['squawk']):>9}   reconciler process "
            f"{ms(timings['process']):>9}   in process {ms(timings['in_process']):>8}"
        )
        if index:
            for name, seconds in timings.items():
                runs[name].append(seconds)
    if in_findings != findings["reconciler"]:
        raise RuntimeError(
            f"lint_paths found {in_findings} findings, the process {findings['reconciler']}"
        )
    med = {name: statistics.median(values) for name, values in runs.items()}
    ratio_process = med["process"] / med["squawk"]
    ratio_in = med["in_process"] / med["squawk"]

    # For reference: start-up, a fresh process's first call, and a cache hit.
    version_floor = statistics.median(
        run([*reconciler_command(), "--version"])[0] for _ in range(args.repeats)
    )
    firsts = [
        float(run([sys.executable, "-c", FIRST_CALL, str(migrations)])[1].split()[0])
        for _ in range(args.repeats)
    ]
    began = time.perf_counter()
    lint_paths([migrations])
    cached = time.perf_counter() - began
    timeline = process_timeline(migrations, args.repeats)

    print(f"    findings: squawk {findings['squawk']}, reconciler {findings['reconciler']}")
    print(
        f"    median of {args.repeats}: (i) squawk {ms(med['squawk'])}, (ii) reconciler "
        f"process {ms(med['process'])}, (iii) lint_paths in process {ms(med['in_process'])}"
    )
    print(f"    (ii)/(i)  {ratio_process:.2f} (target <= {STATIC_TARGET:g}): ", end="")
    print(verdict(ratio_process <= STATIC_TARGET))
    print(f"    (iii)/(i) {ratio_in:.2f} (target <= {STATIC_TARGET:g}): ", end="")
    print(verdict(ratio_in <= STATIC_TARGET))
    print(f"    for reference: `reconciler --version` {ms(version_floor)};")
    print(f"      `import reconciler.act.lint` in this process {ms(import_seconds)};")
    print(
        f"      first lint_paths call in a fresh process (after the import) "
        f"{ms(statistics.median(firsts))} median of {len(firsts)}; this process's first "
        f"call {ms(first_call)}"
    )
    print(f"      lint_paths again without emptying the parse cache {ms(cached)}")
    print(f"    where a lint process spends its time (median of {args.repeats}, timed steps):")
    for name, seconds in timeline.items():
        print(f"      {name:<56} {ms(seconds):>9}")
    return {
        "migrations": len(files),
        "sql_bytes": size,
        "squawk_version": version.strip(),
        "repeats": args.repeats,
        "seconds": runs,
        "medians": med,
        "findings": findings,
        "ratio_process": ratio_process,
        "ratio_in_process": ratio_in,
        "reconciler_version_median": version_floor,
        "import_seconds": import_seconds,
        "first_call_fresh_process": firsts,
        "cached_call": cached,
        "process_timeline": timeline,
        "parse_cache_cleared": cache_cleared,
    }


def process_timeline(migrations: Path, repeats: int) -> dict[str, float]:
    """Median of each step of TIMELINE over ``repeats`` fresh processes, and the rest."""
    samples: dict[str, list[float]] = {}
    for _ in range(repeats):
        wall, out = run([sys.executable, "-c", TIMELINE, str(migrations)])
        stages = json.loads(out)
        stages["interpreter start-up and exit (the rest)"] = wall - sum(stages.values())
        for name, seconds in stages.items():
            samples.setdefault(name, []).append(seconds)
    bare = [run([sys.executable, "-c", "pass"])[0] for _ in range(repeats)]
    samples["for comparison: `python -c pass`"] = bare
    return {name: statistics.median(values) for name, values in samples.items()}


# -- data-aware: round trips -------------------------------------------------------------


VALUES = {
    "int2": "(g % 30000)::int2",
    "int4": "(g + 1000000)",
    "int8": "(g + 1000000)::int8",
    "text": "'r' || g",
    "varchar": "'r' || g",
    "citext": "('r' || g)::citext",
    "uuid": "md5(g::text)::uuid",
    "bool": "(g % 2 = 0)",
    "timestamp": "(now() - g * interval '1 minute')::timestamp",
    "timestamptz": "now() - g * interval '1 minute'",
    "date": "current_date - (g % 1000)",
    "jsonb": "jsonb_build_object('n', g)",
    "json": "json_build_object('n', g)",
    "numeric": "(g * 1.5)::numeric",
    "float8": "g * 1.5",
    "float4": "(g * 1.5)::float4",
}
"""A value for row ``g`` by type: keys and references get the same value for the same row,
so every foreign key points at a row of its parent (each table gets rows 1..N)."""


def fill_tables(dsn: str, rows: int) -> dict[str, int]:
    """Insert ``rows`` rows into every table (NULLs in one row of five of the nullable
    columns that are not keys); rows that would break a unique index are skipped."""
    catalog = """
        SELECT c.relname, a.attname, t.typname, t.typtype, a.attnotnull, a.atthasdef,
               EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conrelid = c.oid
                       AND k.contype IN ('p', 'f') AND a.attnum = ANY(k.conkey)),
               (SELECT min(e.enumlabel) FROM pg_enum e WHERE e.enumtypid = t.oid)
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        JOIN pg_type t ON t.oid = a.atttypid
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname <> '_prisma_migrations'
        ORDER BY c.relname, a.attnum"""
    tables: dict[str, list[tuple[Any, ...]]] = {}
    inserted: dict[str, int] = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        for row in conn.execute(catalog).fetchall():
            tables.setdefault(row[0], []).append(row[1:])
        # Every reference is satisfied by construction; replica mode only spares the
        # checks the order of the inserts would otherwise need.
        conn.execute("SET session_replication_role = replica")
        for table, columns in tables.items():
            names, values = [], []
            for name, typname, typtype, not_null, has_default, key, label in columns:
                if typtype == "e":
                    value = sql.SQL("{}::{}").format(sql.Literal(label), sql.Identifier(typname))
                elif typname in VALUES:
                    value = sql.SQL(VALUES[typname])
                elif has_default or not not_null:
                    continue
                else:
                    raise RuntimeError(f"{table}.{name}: no value for type {typname}")
                if not not_null and not key:
                    value = sql.SQL("CASE WHEN g % 5 = 0 THEN NULL ELSE {} END").format(value)
                names.append(sql.Identifier(name))
                values.append(value)
            statement = sql.SQL(
                "INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {}) AS g "
                "ON CONFLICT DO NOTHING"
            ).format(
                sql.Identifier(table),
                sql.SQL(", ").join(names),
                sql.SQL(", ").join(values),
                sql.Literal(rows),
            )
            inserted[table] = conn.execute(statement).rowcount
        conn.execute("ANALYZE")
    return inserted


class LintLog(QueryLog):
    """The statements of a data-aware lint, by kind, and the tables each ``gather_facts``
    call was asked about (see ``gathering``)."""

    def __init__(self) -> None:
        super().__init__()
        self.gathers: list[set[str]] = []

    def classify(self, text: str) -> str:
        if "pg_attribute" in text and "pg_total_relation_size" in text:
            return "catalog: columns and sizes"
        if "pg_enum" in text:
            return "catalog: enum labels"
        if super().classify(text) == "scan":
            return "scan"
        if "_prisma_migrations" in text:
            return "history: _prisma_migrations"
        if "to_regclass" in text:
            return "history: table exists?"
        return "other"


@contextmanager
def gathering(log: LintLog) -> Iterator[None]:
    """While inside, every ``gather_facts`` call of the assessment records its tables."""
    from reconciler.act import assess

    original = assess.gather_facts

    def gather(db: Any, request: Any) -> Any:
        log.gathers.append(set(request.tables))
        return original(db, request)

    assess.gather_facts = gather  # type: ignore[assignment]
    try:
        yield
    finally:
        assess.gather_facts = original


def bench_data(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    from reconciler.act.lint import lint_policy
    from reconciler.policy import load_policy
    from reconciler.safety.analyse import facts_request, parse_migration
    from reconciler.source import open_layout

    root = WORK
    migrations = root / "migrations"
    files = write_history(migrations, args.count, args.seed)
    applied = args.applied
    if not 0 < applied < len(files):
        raise RuntimeError(f"--applied must be between 1 and {len(files) - 1}")
    reset_ledger(root)
    dsn = server.fresh(f"bench_lint_{os.getpid()}")
    revision = files[applied - 1].parent.name
    apply_policy, lint_file = root / "apply.yaml", root / "lint.yaml"
    approve_all(apply_policy, dsn, migrations, revision)
    print(f"\ndata-aware: the first {applied} of {len(files)} migrations, then lint the rest")
    seconds, _ = run([*reconciler_command(), "apply", "--yes", "--config", str(apply_policy)])
    print(f"    applied {applied} with `reconciler apply` in {seconds:.2f} s")
    started = time.perf_counter()
    inserted = fill_tables(dsn, args.rows)
    print(
        f"    inserted {sum(inserted.values()):,} rows into {len(inserted)} tables "
        f"({args.rows:,} per table, fewer where a unique index skipped some) in "
        f"{time.perf_counter() - started:.1f} s"
    )
    write_policy(lint_file, dsn, migrations, revision="head")
    policy = load_policy(lint_file)
    target = policy.targets[0]

    # What the pending migrations hold, to set the counts against.
    layout = open_layout(target.migrations)
    pending = layout.migrations()[applied:]
    parsed = [parse_migration(m, layout.sql(m, "postgresql"), "postgresql") for m in pending]
    statements = sum(p.sql.statements for p in parsed)
    ops = sum(len(p.sql.ops) for p in parsed)
    touched = sorted(facts_request(parsed).tables)

    # Warm-up (imports, parse cache), then the counted run, then a few timed ones.
    lint_policy(policy, [target])
    log = LintLog()
    with counting(log), gathering(log):
        began = time.perf_counter()
        report = lint_policy(policy, [target])
        counted_seconds = time.perf_counter() - began
    times = []
    for _ in range(args.repeats):
        began = time.perf_counter()
        lint_policy(policy, [target])
        times.append(time.perf_counter() - began)
    process_seconds, out = run(
        [*reconciler_command(), "lint", "--format", "json", "--config", str(lint_file)],
        expect=(0, 1),
    )
    process_findings = len(json.loads(out)["findings"])

    if report.migrations != len(pending) or "data-aware" not in report.mode:
        raise RuntimeError(f"expected a data-aware lint of {len(pending)}: {report.mode}")
    gathers = len(log.gathers)
    requested = set().union(*log.gathers) if log.gathers else set()
    existing = {t for t in requested if t in inserted}
    scanned = {name.split(".", 1)[1].strip('"').replace('""', '"') for name in log.scans}
    catalog = log.kinds["catalog: columns and sizes"]
    enums = log.kinds["catalog: enum labels"]
    problems = []
    if gathers != 1:
        problems.append(f"{gathers} gathers of live facts, expected 1 (one target)")
    if catalog != gathers:
        problems.append(f"{catalog} catalog queries for {gathers} gather(s)")
    if enums > gathers:
        problems.append(f"{enums} enum-label queries for {gathers} gather(s)")
    repeated = [name for name, n in log.scans.items() if n > 1]
    if repeated:
        problems.append(f"tables scanned more than once: {', '.join(repeated)}")
    if requested != set(touched):
        problems.append(f"gather_facts was asked about {sorted(requested)}, not {touched}")
    if not scanned <= requested:
        problems.append(f"scans of tables not touched: {sorted(scanned - requested)}")
    if log.kinds["scan"] > len(requested):
        problems.append(f"{log.kinds['scan']} scans for {len(requested)} tables touched")

    print(
        f"    pending: {len(pending)} migrations, {statements} statements, {ops} operations, "
        f"{len(touched)} tables touched ({len(existing)} exist already, the others are "
        "created by the pending migrations)"
    )
    print(f"    lint_policy sent {sum(log.kinds.values())} statements to PostgreSQL:")
    for kind, count in sorted(log.kinds.items()):
        print(f"      {kind:<30} {count:>3}   {ms(log.seconds[kind]):>9}")
    print(f"    tables scanned: {', '.join(sorted(scanned)) or 'none'}")
    print(
        f"    per gather: {catalog} catalog query for the tables, {enums} for enum labels, "
        f"{log.kinds['scan']} scans for {len(existing)} existing tables touched"
    )
    print("    check (one catalog query per gather, <= one scan per table touched): ", end="")
    print("OK" if not problems else "FAILED")
    for problem in problems:
        print(f"      {problem}")
    print(
        f"    findings: {len(report.entries)} in process, {process_findings} from "
        f"`reconciler lint --config` ({ms(process_seconds)} as a whole process)"
    )
    for entry in report.entries:
        finding = entry.finding
        print(f"      {finding.severity} {finding.rule}: {finding.message[:90]}")
    print(
        f"    lint_policy: {ms(counted_seconds)} counted run, median {ms(statistics.median(times))}"
        f" of {len(times)}"
    )
    if problems:
        raise RuntimeError("the data-aware lint sent more round trips than the target allows")
    return {
        "applied": applied,
        "pending": len(pending),
        "statements": statements,
        "operations": ops,
        "tables_touched": touched,
        "tables_asked": sorted(requested),
        "tables_existing": sorted(existing),
        "rows_inserted": inserted,
        "queries": dict(log.kinds),
        "query_seconds": dict(log.seconds),
        "scans": dict(log.scans),
        "gathers": gathers,
        "findings": len(report.entries),
        "process_findings": process_findings,
        "lint_policy_seconds": times,
        "process_seconds": process_seconds,
        "sql": log.statements,
    }


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Lint benchmarks: static lint against squawk, data-aware round trips."
    )
    parser.add_argument("--only", choices=["static", "data"], help="run one part")
    add_server_option(parser)
    parser.add_argument("--squawk", default=None, help="squawk binary (pip install squawk-cli)")
    parser.add_argument("--pg-version", default="15.0", help="squawk --pg-version (%(default)s)")
    parser.add_argument("--count", type=int, default=160, help="migrations (default 160)")
    parser.add_argument("--seed", type=int, default=1, help="history seed (default 1)")
    parser.add_argument("--repeats", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument("--applied", type=int, default=150, help="data: applied first (150)")
    parser.add_argument("--rows", type=int, default=5000, help="data: rows per table (5000)")
    add_json_option(parser)
    args = parser.parse_args(argv)
    if args.only != "data":
        args.squawk = args.squawk or beside_python("squawk")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = Server(args.server)

    def run_all(results: dict[str, Any]) -> None:
        if args.only in (None, "static"):
            results["static"] = bench_static(args)
        if args.only in (None, "data"):
            results["data"] = bench_data(args, server)

    return run_benchmarks(
        "bench_lint",
        run_all,
        cleanup=server.drop_all,
        json_file=args.json,
        errors=(RuntimeError, psycopg.Error),
    )


if __name__ == "__main__":
    sys.exit(main())
