"""Fault injection: ``reconciler apply`` killed (SIGKILL) at each stage boundary, then run
again until it converges.

    python bench/faults.py                          # every case, 2 rounds, 200 000 users
    python bench/faults.py --cases concurrently --rounds 5 --users 50000

Each round of a case creates a fresh PostgreSQL database ``bench_faults_<case>``, applies
the example Prisma history (``examples/shop/prisma-postgres``) to it, fills ``users`` with
``--users`` rows, and adds three pending migrations:

1. ``fault_copy``: one transaction, ``CREATE TABLE fault_copy`` and an ``INSERT ... SELECT``
   of every user;
2. ``fault_index``: ``CREATE INDEX CONCURRENTLY users_email_fault_idx ON users (email)``,
   which runs outside any transaction;
3. ``fault_after``: one transaction, ``ALTER TABLE fault_copy ADD COLUMN note``.

The target takes a verified ``pg_dump`` backup and rehearses on a restored copy before the
live apply. A real ``reconciler apply --yes`` process starts, and is killed with SIGKILL as
soon as the case's stage is seen on the server:

- ``backup``: ``pg_dump`` is connected to the database;
- ``rehearsal``: the target's scratch database exists;
- ``transaction``: the ``INSERT`` of ``fault_copy`` runs on the live database;
- ``concurrently``: the ``CREATE INDEX CONCURRENTLY`` waits on the lock an application
  transaction holds on ``users`` (opened before the apply, released after the kill);
- ``between``: ``fault_copy`` is recorded as finished (the kill lands between the two
  migrations, or early in the next one).

Then ``reconciler apply --yes`` runs again, up to ``--attempts`` times, until it exits 0.
The target has converged when every migration is applied exactly once (one finished row in
``_prisma_migrations``, none failed and unsettled), no index is INVALID, no scratch
database is left, and no row is lost (``users`` and ``fault_copy`` hold ``--users`` rows).
The figures, per case: rounds that converged, attempts it took, rounds whose kill landed in
the stage (``hit``: the stage was seen before the apply finished). The databases are
dropped at the end, also after a failure, Ctrl-C or SIGTERM; work files go to
bench/work/faults/.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from common import (
    Server,
    add_json_option,
    add_server_option,
    load_average,
    reconciler_command,
    run_benchmarks,
)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "faults"
HISTORY = ROOT / "examples" / "shop" / "prisma-postgres" / "migrations"
CASES = ("backup", "rehearsal", "transaction", "concurrently", "between")
PENDING = {
    "20990101000000_fault_copy": (
        'CREATE TABLE "fault_copy" ("id" INTEGER PRIMARY KEY, "email" TEXT NOT NULL);\n'
        'INSERT INTO "fault_copy" SELECT "id", "email" FROM "users";\n'
    ),
    "20990101000001_fault_index": (
        'CREATE INDEX CONCURRENTLY "users_email_fault_idx" ON "users" ("email");\n'
    ),
    "20990101000002_fault_after": 'ALTER TABLE "fault_copy" ADD COLUMN "note" TEXT;\n',
}
STAGE_TIMEOUT = 120.0
APPLY_TIMEOUT = 600.0


def stage_seen(watch: psycopg.Connection[Any], database: str, case: str, prefix: str) -> bool:
    """Whether the apply is in ``case``'s stage now, as the server shows it (``watch``: an
    autocommit connection to ``database``)."""
    if case == "backup":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE application_name IN "
            f"('pg_dump', 'reconciler-backup') AND datname = '{database}'"
        )
    elif case == "rehearsal":
        query = f"SELECT count(*) FROM pg_database WHERE datname LIKE '{prefix}%'"
    elif case == "transaction":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' "
            f"AND datname = '{database}' AND query LIKE '%INSERT INTO \"fault_copy\"%' "
            "AND pid <> pg_backend_pid()"
        )
    elif case == "concurrently":
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
            f"AND datname = '{database}' AND query LIKE '%CREATE INDEX CONCURRENTLY%' "
            "AND pid <> pg_backend_pid()"
        )
    else:
        query = (
            "SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL "
            "AND migration_name = '20990101000000_fault_copy'"
        )
    row = watch.execute(query).fetchone()
    return bool(row and row[0])


def prepare(server: Server, case: str, index: int, users: int) -> tuple[str, Path, str]:
    """A fresh database at the example history with ``users`` rows, the three pending
    migrations beside it, and a policy; the database's name, the policy and the prefix of
    the target's scratch databases."""
    from reconciler.backup.scratch import scratch_prefix
    from reconciler.db.url import parse_database_url

    folder = WORK / f"{case}{index}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    database = f"bench_faults_{case}"
    dsn = server.fresh(database)
    migrations = folder / "migrations"
    shutil.copytree(HISTORY, migrations)
    policy = folder / "policy.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n"
        "  - name: bench\n"
        "    environment: staging\n"
        f"    database: {dsn}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    timeouts: {lock: 60s, statement: 10m}\n",
        encoding="utf-8",
    )
    apply_once(policy, folder / "setup.log")
    server.execute(
        "INSERT INTO users (email) SELECT 'u' || i || '@example.com' "
        f"FROM generate_series(1, {users}) i",
        database,
    )
    server.execute("VACUUM ANALYZE users", database)
    for name, sql in PENDING.items():
        (migrations / name).mkdir()
        (migrations / name / "migration.sql").write_text(sql, encoding="utf-8")
    policy.write_text(
        policy.read_text(encoding="utf-8")
        + "    backup: {driver: pg_dump, dir: backups}\n    rehearse: true\n",
        encoding="utf-8",
    )
    return database, policy, scratch_prefix(parse_database_url(dsn), "bench")


def apply_once(policy: Path, log: Path) -> int:
    """One ``reconciler apply --yes`` to the end; its exit code (output appended to
    ``log``)."""
    with log.open("a") as out:
        return subprocess.run(
            [*reconciler_command(), "apply", "-c", str(policy), "--yes"],
            cwd=policy.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=APPLY_TIMEOUT,
            check=False,
        ).returncode


def killed_apply(server: Server, database: str, case: str, policy: Path, prefix: str) -> bool:
    """Start ``apply`` and SIGKILL it once ``case``'s stage is seen; whether it was seen
    before the apply ended by itself."""
    blocker = None
    if case == "concurrently":  # an application transaction writing to users
        blocker = psycopg.connect(server.dsn(database))
        blocker.execute('LOCK TABLE "users" IN ROW EXCLUSIVE MODE')
    log = (policy.parent / "killed.log").open("w")
    process = subprocess.Popen(
        [*reconciler_command(), "apply", "-c", str(policy), "--yes"],
        cwd=policy.parent,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    hit = False
    try:
        with server.connect(database) as watch:
            deadline = time.monotonic() + STAGE_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if stage_seen(watch, database, case, prefix):
                    hit = True
                    break
                time.sleep(0.002)
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
        process.wait()
        log.close()
        if blocker is not None:
            orphan = (
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                f"AND datname = '{database}' AND query LIKE '%CREATE INDEX CONCURRENTLY%'"
            )
            until = time.monotonic() + 30
            while server.value(orphan) and time.monotonic() < until:
                time.sleep(0.1)
            blocker.rollback()
            blocker.close()
    return hit


def converged(server: Server, database: str, prefix: str, users: int) -> list[str]:
    """What keeps the target from having converged; empty when it has."""
    problems: list[str] = []
    names = sorted(p.name for p in (HISTORY.iterdir()) if p.is_dir()) + list(PENDING)
    with server.connect(database) as conn:
        rows = dict(
            conn.execute(
                "SELECT migration_name, count(*) FILTER (WHERE finished_at IS NOT NULL "
                "AND rolled_back_at IS NULL) FROM _prisma_migrations GROUP BY 1"
            ).fetchall()
        )
        unsettled = conn.execute(
            "SELECT count(*) FROM _prisma_migrations "
            "WHERE finished_at IS NULL AND rolled_back_at IS NULL"
        ).fetchone()
        invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
        kept = conn.execute("SELECT count(*) FROM users").fetchone()
        copied = conn.execute(
            "SELECT count(*) FROM fault_copy WHERE to_regclass('fault_copy') IS NOT NULL"
        ).fetchone()
    wrong = [f"{n} x{rows.get(n, 0)}" for n in names if rows.get(n, 0) != 1]
    if wrong:
        problems.append("not applied exactly once: " + ", ".join(wrong))
    if unsettled and unsettled[0]:
        problems.append(f"{unsettled[0]} failed rows unsettled")
    if invalid and invalid[0]:
        problems.append(f"{invalid[0]} INVALID indexes")
    if kept is None or kept[0] != users or copied is None or copied[0] != users:
        problems.append(f"rows: users {kept}, fault_copy {copied}, expected {users}")
    scratch = server.value(f"SELECT count(*) FROM pg_database WHERE datname LIKE '{prefix}%'")
    if scratch:
        problems.append(f"{scratch} scratch databases left")
    return problems


def one_round(server: Server, case: str, index: int, users: int, attempts: int) -> dict[str, Any]:
    database, policy, prefix = prepare(server, case, index, users)
    hit = killed_apply(server, database, case, policy, prefix)
    codes: list[int] = []
    problems: list[str] = []
    for _ in range(attempts):
        codes.append(apply_once(policy, policy.parent / "after.log"))
        problems = [f"apply exited {codes[-1]}"]
        if codes[-1] == 0:
            problems = converged(server, database, prefix, users)
            if not problems:
                break
        time.sleep(1)
    server.drop(database)
    return {"case": case, "hit": hit, "codes": codes, "problems": problems}


def body(args: argparse.Namespace, server: Server, results: dict[str, Any]) -> None:
    results["load"] = load_average()
    results["rounds"] = []
    print(f"{args.rounds} rounds per case, {args.users} users; {results['load']}")
    for case in args.cases:
        for index in range(args.rounds):
            outcome = one_round(server, case, index, args.users, args.attempts)
            results["rounds"].append(outcome)
            state = "converged" if not outcome["problems"] else "; ".join(outcome["problems"])
            print(
                f"  {case:<12} round {index + 1}: kill {'in stage' if outcome['hit'] else 'missed'}"
                f", attempts {len(outcome['codes'])} (exit {outcome['codes']}): {state}",
                flush=True,
            )
    print("\n| case | converged | attempts (median, most) | kill landed in the stage |")
    print("| --- | --- | --- | --- |")
    for case in args.cases:
        rounds = [r for r in results["rounds"] if r["case"] == case]
        good = sum(1 for r in rounds if not r["problems"])
        tries = [len(r["codes"]) for r in rounds]
        hits = sum(1 for r in rounds if r["hit"])
        print(
            f"| {case} | {good} of {len(rounds)} | {statistics.median(tries):g}, {max(tries)} "
            f"| {hits} of {len(rounds)} |"
        )
    results["load_after"] = load_average()
    print(f"\n{results['load_after']}")


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="faults.py",
        description="Kill reconciler apply (SIGKILL) at each stage boundary and count what "
        "it takes the next applies to converge.",
    )
    parser.add_argument(
        "--cases",
        nargs="+",
        choices=CASES,
        default=list(CASES),
        help="the stages to kill in (default: all)",
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds per case (default 2)")
    parser.add_argument("--users", type=int, default=200_000, help="rows in users (default 200000)")
    parser.add_argument(
        "--attempts",
        type=int,
        default=5,
        help="applies after the kill before a round counts as not converged (default 5)",
    )
    add_server_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    server = Server(args.server)
    return run_benchmarks(
        "faults.py",
        lambda results: body(args, server, results),
        cleanup=server.drop_all,
        json_file=args.json,
        errors=(RuntimeError, psycopg.Error, subprocess.TimeoutExpired),
        interrupted="the databases were dropped",
    )


if __name__ == "__main__":
    sys.exit(main())
