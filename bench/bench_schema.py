"""Schema benchmarks against a local PostgreSQL.

    python bench/bench_schema.py                  # both benchmarks, default sizes
    python bench/bench_schema.py --only apply     # (a) only
    python bench/bench_schema.py --only plan      # (b) only

(a) apply: a 160-migration Prisma history applied to an empty database, whole process, by
    ``reconciler apply --yes`` and, side by side in the same run, by one ``psql`` session
    that wraps each file in its own BEGIN/COMMIT. Target: reconciler within 1.5x of psql.
(b) plan: a target in sync with 500 applied migrations; ``plan_target`` timed in one
    Python process after start-up (import and policy load excluded). Target: <= 50 ms.

Every database this script creates is dropped when it ends, also on failure or Ctrl-C.
Work files (histories, policies, the SQLite ledger) go to bench/work/schema/.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from common import (
    Server,
    add_json_option,
    add_profile_options,
    add_server_option,
    approve_all,
    ms,
    percentile,
    reconciler_command,
    reset_ledger,
    run,
    run_benchmarks,
    top_functions,
    verdict,
    write_policy,
)
from generate_history import write_history

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work" / "schema"
APPLY_TARGET = 1.5
PLAN_TARGET_MS = 50.0


# -- the databases of (a) ---------------------------------------------------------------


SCHEMA_QUERIES = {
    "tables": "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1",
    "columns": "SELECT table_name, column_name, data_type, udt_name, is_nullable, "
    "coalesce(column_default, '') FROM information_schema.columns "
    "WHERE table_schema = 'public' AND table_name <> '_prisma_migrations' ORDER BY 1, 2",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes "
    "WHERE schemaname = 'public' AND tablename <> '_prisma_migrations' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
    "FROM pg_constraint WHERE connamespace = 'public'::regnamespace "
    "AND conrelid::regclass::text <> '_prisma_migrations' ORDER BY 1, 2",
    "enums": "SELECT t.typname, string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) "
    "FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid GROUP BY 1 ORDER BY 1",
    "extensions": "SELECT extname FROM pg_extension ORDER BY 1",
    "triggers": "SELECT tgrelid::regclass::text, tgname FROM pg_trigger "
    "WHERE NOT tgisinternal ORDER BY 1, 2",
    "rows": "SELECT table_name, (xpath('/row/n/text()', query_to_xml("
    "format('SELECT count(*) AS n FROM %I', table_name), false, true, '')))[1]::text "
    "FROM information_schema.tables WHERE table_schema = 'public' "
    "AND table_type = 'BASE TABLE' AND table_name <> '_prisma_migrations' ORDER BY 1",
}


def schema_of(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes, constraints, enums, extensions, triggers and row counts."""
    with psycopg.connect(dsn) as conn:
        return {key: conn.execute(query).fetchall() for key, query in SCHEMA_QUERIES.items()}


def compare_schemas(left: dict[str, list[Any]], right: dict[str, list[Any]]) -> list[str]:
    problems: list[str] = []
    for key in SCHEMA_QUERIES:
        a, b = set(left[key]), set(right[key])
        if a != b:
            only_a, only_b = sorted(a - b)[:3], sorted(b - a)[:3]
            problems.append(f"{key}: only in psql's {only_a}, only in reconciler's {only_b}")
    return problems


def applied_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            'SELECT count(*) FROM "_prisma_migrations" '
            "WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL"
        ).fetchone()
    return int(row[0]) if row else 0


# -- processes --------------------------------------------------------------------------


def median_of(command: Sequence[str], repeats: int, expect: int = 0) -> float:
    return statistics.median(run(command, expect)[0] for _ in range(repeats))


def write_driver(files: Sequence[Path], path: Path) -> None:
    """A psql script: stop at the first error; each migration in its own transaction."""
    lines = ["\\set ON_ERROR_STOP 1"]
    for file in files:
        quoted = str(file).replace("'", "\\'")
        lines += ["BEGIN;", f"\\i '{quoted}'", "COMMIT;"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def prepare_ledger(policy: Path) -> None:
    """Create the SQLite ledger before timing: a first run's one-off setup is not measured."""
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    Ledger(load_policy(policy).ledger).close()


# -- (a) apply --------------------------------------------------------------------------


def bench_apply(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    count, repeats = args.apply_count, args.repeats
    root = WORK / f"apply-{count}"
    migrations = root / "migrations"
    files = write_history(migrations, count, args.seed)
    size = sum(f.stat().st_size for f in files)
    driver = root / "psql_driver.sql"
    write_driver(files, driver)
    pid = os.getpid()
    psql_db, rec_db = f"bench_schema_psql_{pid}", f"bench_schema_reconciler_{pid}"
    psql_dsn, rec_dsn = server.fresh(psql_db), server.fresh(rec_db)
    policy = root / "policy.yaml"
    reset_ledger(root)
    approvals = approve_all(policy, rec_dsn, migrations)
    prepare_ledger(policy)

    psql_cmd = [args.psql, "-X", "-q", "-d", psql_dsn, "-f", str(driver)]
    rec_cmd = [*reconciler_command(), "apply", "--yes", "--config", str(policy)]
    print(f"(a) apply: {count} migrations ({size / 1024:.0f} KiB of SQL) in {migrations}")
    print(f"    approvals committed for {len(approvals)} of them (default safety settings)")
    print(f"    psql:       {' '.join(psql_cmd)}")
    print(f"    reconciler: {' '.join(rec_cmd)}")

    runs: dict[str, list[float]] = {"psql": [], "reconciler": []}
    commands = {"psql": psql_cmd, "reconciler": rec_cmd}
    for index in range(repeats + 1):
        server.fresh(psql_db)
        server.fresh(rec_db)
        order = ["psql", "reconciler"] if index % 2 == 0 else ["reconciler", "psql"]
        timings: dict[str, float] = {}
        for name in order:
            server.checkpoint()
            timings[name], _ = run(commands[name])
        label = "warm-up" if index == 0 else f"run {index}"
        ratio = timings["reconciler"] / timings["psql"]
        print(
            f"    {label:8} psql {ms(timings['psql']):>10}   reconciler "
            f"{ms(timings['reconciler']):>10}   ratio {ratio:.2f}"
        )
        if index:
            for name, seconds in timings.items():
                runs[name].append(seconds)

    problems = compare_schemas(schema_of(psql_dsn), schema_of(rec_dsn))
    recorded = applied_rows(rec_dsn)
    if recorded != count:
        problems.append(f"_prisma_migrations records {recorded} applied, expected {count}")
    if problems:
        raise RuntimeError("the two databases differ:\n  " + "\n  ".join(problems))
    tables = len(schema_of(psql_dsn)["tables"])

    floor = median_of([*reconciler_command(), "--version"], 5)
    psql_floor = median_of([args.psql, "-X", "-q", "-d", psql_dsn, "-c", "SELECT 1"], 5)
    psql_med, rec_med = statistics.median(runs["psql"]), statistics.median(runs["reconciler"])
    ratio = rec_med / psql_med
    print(f"    both databases end with the same {tables} tables (and columns, indexes, ...)")
    print(f"    median of {repeats}: psql {ms(psql_med)}, reconciler {ms(rec_med)}")
    print(f"    ratio {ratio:.2f} (target <= {APPLY_TARGET}): {verdict(ratio <= APPLY_TARGET)}")
    print(
        f"    start-up alone: `reconciler --version` {ms(floor)}, "
        f"`psql -c 'SELECT 1'` {ms(psql_floor)}"
    )
    rec_each, psql_each = (rec_med - floor) / count, (psql_med - psql_floor) / count
    print(
        f"    per migration beyond start-up: reconciler {rec_each * 1000:.2f} ms, "
        f"psql {psql_each * 1000:.2f} ms ({rec_each / psql_each:.2f}x)"
    )
    result = {
        "migrations": count,
        "sql_bytes": size,
        "tables": tables,
        "approvals": len(approvals),
        "repeats": repeats,
        "psql_seconds": runs["psql"],
        "reconciler_seconds": runs["reconciler"],
        "psql_median": psql_med,
        "reconciler_median": rec_med,
        "ratio": ratio,
        "target_met": ratio <= APPLY_TARGET,
        "reconciler_version_median": floor,
        "psql_select1_median": psql_floor,
        "reconciler_per_migration": rec_each,
        "psql_per_migration": psql_each,
    }
    result["timeline"] = apply_timeline(server, rec_db, policy, root)
    if args.profile:
        result["profile"] = profile_apply(args, server, rec_db, policy, root)
    return result


def apply_timeline(server: Server, database: str, policy: Path, root: Path) -> dict[str, Any]:
    """One more apply (untimed) on a fresh database, with a timer around each stage."""
    server.fresh(database)
    out = root / "timeline.json"
    seconds, _ = run([sys.executable, str(BENCH / "apply_timeline.py"), str(policy), "--json",
                      str(out)])  # fmt: skip
    data: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    data["process_seconds"] = seconds
    rest = seconds - data["import_seconds"] - data["command_seconds"]
    print(f"    where one apply process spends its time ({ms(seconds)} in all, untimed run):")
    rows = [
        ("interpreter start-up and exit", rest, 1),
        ("import reconciler.cli", data["import_seconds"], 1),
    ]
    rows += [(k, v["seconds"], v["calls"]) for k, v in data["stages"].items()]
    rows.append(("everything else in the command", data["other_seconds"], 1))
    for label, value, calls in sorted(rows, key=lambda r: -r[1]):
        per = f"  ({value / calls * 1000:.2f} ms x {calls})" if calls > 1 else ""
        print(f"      {label:<38} {ms(value):>10}{per}")
    return data


def profile_apply(
    args: argparse.Namespace, server: Server, database: str, policy: Path, root: Path
) -> str:
    """One more apply under cProfile (untimed), on a fresh database."""
    server.fresh(database)
    out = root / "apply.prof"
    run([sys.executable, "-m", "cProfile", "-o", str(out), "-m", "reconciler", "apply", "--yes",
         "--config", str(policy)])  # fmt: skip
    text = top_functions(str(out), args.profile_lines)
    print(f"\n    cProfile of one apply process ({out}):\n{text}")
    return text


# -- (b) plan ---------------------------------------------------------------------------


def bench_plan(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    count = args.plan_count
    root = WORK / f"plan-{count}"
    migrations = root / "migrations"
    files = write_history(migrations, count, args.seed)
    dsn = server.fresh(f"bench_schema_plan_{os.getpid()}")
    reset_ledger(root)
    apply_policy, policy = root / "apply.yaml", root / "policy.yaml"
    approve_all(apply_policy, dsn, migrations)
    prepare_ledger(apply_policy)
    print(f"\n(b) plan: {count} migrations in {migrations}")
    seconds, _ = run([*reconciler_command(), "apply", "--yes", "--config", str(apply_policy)])
    print(f"    applied once with reconciler apply in {seconds:.2f} s")
    if applied_rows(dsn) != len(files):
        raise RuntimeError(f"expected {len(files)} applied migrations in {dsn}")
    # Once applied, the approvals are no longer needed and a team removes them.
    write_policy(policy, dsn, migrations)

    from reconciler.act import plan_target
    from reconciler.policy import load_policy

    target = load_policy(policy).targets[0]

    def plan_once() -> None:
        plan = plan_target(target)
        if not plan.in_sync or plan.drift or plan.steps:
            raise RuntimeError(f"expected an in-sync plan, got {len(plan.steps)} steps")

    for _ in range(args.warmup):
        plan_once()
    times = []
    for _ in range(args.plan_repeats):
        started = time.perf_counter()
        plan_once()
        times.append(time.perf_counter() - started)
    med, p95 = statistics.median(times), percentile(times, 95)
    print(
        f"    plan_target x{len(times)} in one process: median {ms(med)}, p95 {ms(p95)}, "
        f"min {ms(min(times))}, max {ms(max(times))}"
    )
    print(
        f"    median {ms(med)} (target <= {PLAN_TARGET_MS:.0f} ms): "
        f"{verdict(med * 1000 <= PLAN_TARGET_MS)}"
    )
    phases = breakdown(target, args.plan_repeats)
    if phases:
        print("    where the time goes (median per phase, same steps as plan_target):")
        for name, seconds in phases.items():
            print(f"      {name:<34} {ms(seconds):>10}")
    # The plan as measured since the start (observe + plan), then as the command runs by
    # default: with the schema drift check, a replay of the whole history.
    command = [*reconciler_command(), "plan", "--no-drift", "--config", str(policy)]
    process = [run(command)[0] for _ in range(args.process_repeats)]
    floor = median_of([*reconciler_command(), "--version"], args.process_repeats)
    print(
        f"    whole `reconciler plan --no-drift` process: median "
        f"{ms(statistics.median(process))} of {len(process)} (`reconciler --version` alone: "
        f"{ms(floor)})"
    )
    checked = [
        run([*reconciler_command(), "plan", "--config", str(policy)])[0]
        for _ in range(args.process_repeats)
    ]
    print(
        f"    whole `reconciler plan` process, with its drift check: median "
        f"{ms(statistics.median(checked))} of {len(checked)}"
    )
    result: dict[str, Any] = {
        "migrations": count,
        "repeats": len(times),
        "median": med,
        "p95": p95,
        "min": min(times),
        "max": max(times),
        "target_met": med * 1000 <= PLAN_TARGET_MS,
        "phases": phases,
        "process_seconds": process,
        "process_median": statistics.median(process),
        "process_with_drift_seconds": checked,
        "process_with_drift_median": statistics.median(checked),
        "reconciler_version_median": floor,
    }
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.plan_repeats):
            plan_once()
        profiler.disable()
        text = top_functions(profiler, args.profile_lines)
        print(f"\n    cProfile of {args.plan_repeats} plan_target calls:\n{text}")
        result["profile"] = text
    return result


def breakdown(target: Any, repeats: int) -> dict[str, float]:
    """Median time of each phase of ``plan_target``, run step by step with the engine's own
    functions; empty when the engine's internals have moved on."""
    try:
        from reconciler.act.assess import assess
        from reconciler.db.connection import connect
        from reconciler.observe.schema import compare
        from reconciler.plan.planner import plan_schema
        from reconciler.source import open_layout
    except ImportError as exc:
        print(f"    (no per-phase breakdown: {exc})")
        return {}
    samples: dict[str, list[float]] = {}

    @contextmanager
    def phase(name: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        samples.setdefault(name, []).append(time.perf_counter() - started)

    revision = target.migrations.revision
    try:
        for _ in range(repeats):
            now = datetime.now(UTC)
            with phase("read + hash files (open_layout)"):
                layout = open_layout(target.migrations)
            with phase("connect"):
                db = connect(target.database)
            with phase("read _prisma_migrations"):
                desired = layout.desired(revision)
                history = layout.read_history(db)
            with phase("compare (re-reads every file)"):
                observation = compare(layout, desired, history)
            with phase("assess pending"):
                findings = assess(target, layout, db, observation, now, {})
            with phase("plan_schema"):
                plan_schema(target, observation, findings, now)
            with phase("close"):
                db.close()
    except TypeError as exc:
        print(f"    (no per-phase breakdown: {exc})")
        return {}
    return {name: statistics.median(values) for name, values in samples.items()}


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Schema benchmarks: apply (reconciler vs psql) and plan when in sync."
    )
    parser.add_argument("--only", choices=["apply", "plan"], help="run one benchmark")
    add_server_option(parser)
    parser.add_argument("--psql", default=shutil.which("psql") or "psql", help="psql binary")
    parser.add_argument("--seed", type=int, default=1, help="history seed (default 1)")
    parser.add_argument("--apply-count", type=int, default=160, help="(a) migrations")
    parser.add_argument("--repeats", type=int, default=5, help="(a) measured runs of each")
    parser.add_argument("--plan-count", type=int, default=500, help="(b) migrations")
    parser.add_argument("--plan-repeats", type=int, default=200, help="(b) plan_target calls")
    parser.add_argument("--warmup", type=int, default=5, help="(b) untimed calls first")
    parser.add_argument(
        "--process-repeats", type=int, default=5, help="(b) `reconciler plan` processes"
    )
    add_profile_options(parser, "also print cProfile tops", lines=25)
    add_json_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = Server(args.server)
    benchmarks: dict[str, Callable[[argparse.Namespace, Server], dict[str, Any]]] = {
        "apply": bench_apply,
        "plan": bench_plan,
    }

    def run_all(results: dict[str, Any]) -> None:
        results["server"] = server.value("SHOW server_version")
        for name, bench in benchmarks.items():
            if args.only in (None, name):
                results[name] = bench(args, server)

    return run_benchmarks("bench_schema", run_all, cleanup=server.drop_all, json_file=args.json)


if __name__ == "__main__":
    sys.exit(main())
