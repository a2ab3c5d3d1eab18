"""Backup and census benchmarks against a local PostgreSQL.

    python bench/bench_backup.py                    # both parts, full size
    python bench/bench_backup.py --only backup      # pg_dump by hand against the driver
    python bench/bench_backup.py --only census      # the census of 100 tables, 10M rows
    python bench/bench_backup.py --size-mb 128 --census-rows 1000000   # a quick run

backup: a database of about ``--size-mb`` (default 1024) MB built with generate_series,
    dumped alternately by ``pg_dump -Fc -f FILE`` run by hand and by
    ``PgDumpDriver(...).take()`` in this process (the dump alone, no verification).
    Target: "Backup of a 1 GB database: within 1.1x of running pg_dump -Fc by hand".
    For information, the whole ``take_backup`` (dump and live census from one snapshot,
    restore into a scratch database, census of the copy, comparison) is timed too.
census: ``--census-tables`` tables (default 100) of 5 to 8 columns holding
    ``--census-rows`` rows in all (default 10M); ``take_census`` timed with and without
    checksums, every statement it sends counted. Target: "one scan per table, never one
    query per column; report the figure".

Every database this script creates (and any scratch copy) is dropped when it ends, also on
failure, Ctrl-C or SIGTERM; the dump files are deleted. Work files go to bench/work/backup/.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from common import (
    QueryLog,
    Server,
    add_json_option,
    add_server_option,
    counting,
    ms,
    reset_ledger,
    run,
    run_benchmarks,
    verdict,
)
from psycopg import sql

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work" / "backup"
BACKUP_TARGET = 1.1
TARGET_NAME = "bench-backup"

# -- helpers ----------------------------------------------------------------------------


def secs(seconds: float) -> str:
    return f"{seconds:.2f} s"


def mib(size: float) -> str:
    return f"{size / 2**20:,.0f} MiB"


# -- counting what reconciler sends --------------------------------------------------------


class CensusLog(QueryLog):
    """The statements of a census: its catalog query, its scans (and how many columns each
    counts inside it), anything else."""

    def __init__(self) -> None:
        super().__init__()
        self.columns_per_scan: list[int] = []

    def classify(self, text: str) -> str:
        flat = " ".join(text.split())
        if super().classify(text) == "scan":
            self.columns_per_scan.append(flat.count("count(") - 1)
            return "scan"
        if "pg_attribute" in flat and "array_agg" in flat:
            return "catalog"
        return "other"


@contextmanager
def stage_timers(stages: dict[str, list[float]], wrapped: Sequence[tuple[Any, str, str]]) -> Any:
    """Add the wall-clock time of each call of ``owner.attribute`` to ``stages[label]``."""
    originals = []
    for owner, attribute, label in wrapped:
        original = getattr(owner, attribute, None)
        if original is None:
            print(f"      (not timed: {label}; {attribute} is gone from this version)")
            continue
        originals.append((owner, attribute, original))
        total = stages.setdefault(label, [0.0, 0])

        def wrapper(*args: Any, _f: Callable[..., Any] = original, _t: list[float] = total,
                    **kwargs: Any) -> Any:  # fmt: skip
            began = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                _t[0] += time.perf_counter() - began
                _t[1] += 1

        setattr(owner, attribute, wrapper)
    try:
        yield
    finally:
        for owner, attribute, original in reversed(originals):
            setattr(owner, attribute, original)


def file_hasher(module: Any) -> str:
    """The name under which ``module`` holds the function that hashes a dump file."""
    for name in ("sha256_file", "_sha256"):
        if callable(getattr(module, name, None)):
            return name
    raise RuntimeError(f"{module.__name__}: no sha256 function found")


def cpu_seconds() -> float:
    """CPU time of this process and its finished children so far: steadier than the wall
    clock when other work shares the machine."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- backup -----------------------------------------------------------------------------

BACKUP_SCHEMA = """
CREATE TABLE customers (
    id integer PRIMARY KEY,
    email text NOT NULL,
    name text NOT NULL,
    country text,
    balance_cents bigint NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE orders (
    id bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    status text NOT NULL,
    total_cents integer NOT NULL,
    note text,
    created_at timestamptz NOT NULL
);
CREATE TABLE events (
    id bigint PRIMARY KEY,
    order_id bigint NOT NULL,
    kind text NOT NULL,
    payload text NOT NULL,
    created_at timestamp NOT NULL
);
CREATE INDEX orders_customer_id_idx ON orders (customer_id);
CREATE INDEX events_order_id_idx ON events (order_id);
"""

BACKUP_BATCH = """
INSERT INTO customers
SELECT g, 'user' || g || '@example.com', initcap(substr(md5(g::text), 1, 12)),
       CASE WHEN g % 9 = 0 THEN NULL ELSE (ARRAY['DE', 'FR', 'US', 'BR', 'JP'])[1 + g % 5] END,
       (g * 7919) % 1000000, timestamptz '2024-01-01' + g * interval '37 seconds'
FROM generate_series({c_lo}::bigint, {c_hi}) AS g;
INSERT INTO orders
SELECT g, 1 + (g * 31) % {customers}, (ARRAY['new', 'paid', 'shipped', 'done'])[1 + g % 4],
       (g * 131) % 100000, CASE WHEN g % 3 = 0 THEN 'note ' || md5(g::text) END,
       timestamptz '2024-01-01' + g * interval '11 seconds'
FROM generate_series({o_lo}::bigint, {o_hi}) AS g;
INSERT INTO events
SELECT g, 1 + g / 2, (ARRAY['created', 'paid', 'shipped', 'refunded'])[1 + g % 4],
       md5(g::text) || md5((g * 7)::text), timestamp '2024-01-01' + g * interval '3 seconds'
FROM generate_series({e_lo}::bigint, {e_hi}) AS g;
"""
"""One batch: n events, n/2 orders, n/10 customers."""


def build_backup_db(server: Server, name: str, size_mb: int) -> dict[str, Any]:
    dsn = server.fresh(name)
    server.execute(BACKUP_SCHEMA, name)
    target = size_mb * 2**20
    empty = server.size(name)
    started = time.perf_counter()
    events = 0
    batch = max(2000, min(500_000, target // 250 // 8))  # about 250 bytes per event
    while server.size(name) < target:
        done = server.size(name) - empty
        if events:
            per_event = max(done / events, 1.0)
            batch = max(2000, min(batch, int((target - done - empty) / per_event) + 1))
        n = batch - batch % 10 or 10
        statement = BACKUP_BATCH.format(
            c_lo=events // 10 + 1,
            c_hi=(events + n) // 10,
            customers=(events + n) // 10,
            o_lo=events // 2 + 1,
            o_hi=(events + n) // 2,
            e_lo=events + 1,
            e_hi=events + n,
        )
        server.execute(statement, name)
        events += n
    load = time.perf_counter() - started
    server.settle(name)
    rows = {
        t: int(server.value(f"SELECT count(*) FROM {t}", name))
        for t in ("customers", "orders", "events")
    }
    size = server.size(name)
    print(
        f"    built {name}: {mib(size)} (pg_database_size), "
        + ", ".join(f"{t} {n:,} rows" for t, n in rows.items())
        + f", in {load:.1f} s (then VACUUM FREEZE ANALYZE, CHECKPOINT)"
    )
    return {"dsn": dsn, "size_bytes": size, "rows": rows, "load_seconds": load}


def write_backup_policy(folder: Path, dsn: str) -> Path:
    migrations = folder / "migrations"
    migrations.mkdir(parents=True, exist_ok=True)
    (migrations / "migration_lock.toml").write_text('provider = "postgresql"\n', encoding="utf-8")
    policy = folder / "policy.yaml"
    policy.write_text(
        "\n".join(
            [
                "ledger: sqlite:///ledger.db",
                "targets:",
                f"  - name: {TARGET_NAME}",
                f"    database: {dsn}",
                "    migrations: {layout: prisma, path: migrations}",
                "    backup:",
                "      driver: pg_dump",
                "      dir: dumps",
                "      keep: {last: 1, max_age: 30d}",
                "      verify: restore",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return policy


def clear_dumps(folder: Path) -> None:
    for path in folder.rglob("*.dump*"):
        path.unlink()


def bench_backup(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    from reconciler.backup import pg_dump as pg_dump_module
    from reconciler.backup.pg_dump import PgDumpDriver
    from reconciler.db.url import parse_database_url

    name = f"bench_backup_{os.getpid()}"
    print(f"backup: a database of about {args.size_mb} MB")
    built = build_backup_db(server, name, args.size_mb)
    dsn = built["dsn"]
    url = parse_database_url(dsn)
    dumps = WORK / "dumps"
    clear_dumps(WORK)
    driver = PgDumpDriver(TARGET_NAME, url, dumps)
    major = driver._server_major()
    binary = args.pg_dump or driver.tool("pg_dump", major)
    hand_file = WORK / "by_hand.dump"
    hand = [binary, "-Fc", "-f", str(hand_file), "-d", dsn]
    print(f"    by hand: {' '.join(hand)}")
    print(f"    driver:  PgDumpDriver({TARGET_NAME!r}, url, {dumps}).take('bench') (same binary)")

    def by_hand() -> float:
        hand_file.unlink(missing_ok=True)
        return run(hand)[0]

    def by_driver() -> float:
        clear_dumps(dumps)
        began = time.perf_counter()
        artifact = driver.take("bench")
        seconds = time.perf_counter() - began
        sizes["driver"] = int(artifact.size_bytes or 0)
        return seconds

    sizes: dict[str, int] = {}
    runs: dict[str, list[float]] = {"hand": [], "driver": []}
    cpu: dict[str, list[float]] = {"hand": [], "driver": []}
    sides: dict[str, Callable[[], float]] = {"hand": by_hand, "driver": by_driver}
    for index in range(args.repeats + 1):
        order = ["hand", "driver"] if index % 2 == 0 else ["driver", "hand"]
        timings, cpus = {}, {}
        for side in order:
            server.checkpoint()
            before = cpu_seconds()
            timings[side] = sides[side]()
            cpus[side] = cpu_seconds() - before
        sizes["hand"] = hand_file.stat().st_size
        label = "warm-up" if index == 0 else f"run {index}"
        print(
            f"    {label:8} pg_dump by hand {secs(timings['hand']):>8} (cpu {cpus['hand']:5.2f} s)"
            f"   driver {secs(timings['driver']):>8} (cpu {cpus['driver']:5.2f} s)"
            f"   ratio {timings['driver'] / timings['hand']:.3f}"
        )
        if index:
            for side, seconds in timings.items():
                runs[side].append(seconds)
                cpu[side].append(cpus[side])
    hand_med, driver_med = statistics.median(runs["hand"]), statistics.median(runs["driver"])
    ratio = driver_med / hand_med
    ratios = [d / h for d, h in zip(runs["driver"], runs["hand"], strict=True)]
    cpu_med = {side: statistics.median(values) for side, values in cpu.items()}

    # Where the driver's time beyond pg_dump goes, each part measured on its own.
    hash_file = getattr(pg_dump_module, file_hasher(pg_dump_module))
    parts: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for label, step in (
            ("connect and SHOW server_version_num", driver._server_major),
            (
                "find the client (`--version` of each pg_dump)",
                lambda: driver.tool("pg_dump", major),
            ),
            ("sha256 of the dump file", lambda: hash_file(hand_file)),
        ):
            began = time.perf_counter()
            step()
            parts.setdefault(label, []).append(time.perf_counter() - began)
    overheads = {label: statistics.median(values) for label, values in parts.items()}

    print(f"    dump files: by hand {mib(sizes['hand'])}, driver {mib(sizes['driver'])}")
    print(
        f"    median of {args.repeats}: pg_dump by hand {secs(hand_med)}, driver {secs(driver_med)}"
    )
    print(
        f"    ratio {ratio:.3f} (per round {min(ratios):.3f} to {max(ratios):.3f}; "
        f"target <= {BACKUP_TARGET}): {verdict(ratio <= BACKUP_TARGET)}"
    )
    print(
        f"    CPU time (pg_dump, plus the driver's own work in this process), median: by hand "
        f"{secs(cpu_med['hand'])}, driver {secs(cpu_med['driver'])}, ratio "
        f"{cpu_med['driver'] / cpu_med['hand']:.3f}"
    )
    print("    the driver's own steps around pg_dump (median, measured apart):")
    for label, seconds in overheads.items():
        print(f"      {label:<48} {ms(seconds):>10}")
    clear_dumps(WORK)

    full = full_backup(args, server, dsn) if args.full_repeats else {}
    return {
        "database": built,
        "pg_dump": binary,
        "repeats": args.repeats,
        "hand_seconds": runs["hand"],
        "driver_seconds": runs["driver"],
        "hand_median": hand_med,
        "driver_median": driver_med,
        "ratio": ratio,
        "hand_cpu_seconds": cpu["hand"],
        "driver_cpu_seconds": cpu["driver"],
        "cpu_ratio": cpu_med["driver"] / cpu_med["hand"],
        "target_met": ratio <= BACKUP_TARGET,
        "dump_bytes": sizes,
        "driver_overheads": overheads,
        "take_backup": full,
    }


def full_backup(args: argparse.Namespace, server: Server, dsn: str) -> dict[str, Any]:
    """``take_backup`` as the pipeline runs it, with the time of each stage."""
    from reconciler.act import backups as backups_module
    from reconciler.act.backups import take_backup
    from reconciler.backup import pg_dump as pg_dump_module
    from reconciler.backup.pg_dump import PgDumpDriver
    from reconciler.ledger import Ledger
    from reconciler.observe import census
    from reconciler.policy import load_policy

    policy_file = write_backup_policy(WORK, dsn)
    reset_ledger(WORK)
    policy = load_policy(policy_file)
    target = policy.targets[0]
    ledger = Ledger(policy.ledger)
    steps = [
        (PgDumpDriver, "_dump", "dump: client lookup, pg_dump in the snapshot, sha256"),
        (PgDumpDriver, "restore", "restore: sha256 check, client lookup, pg_restore"),
    ]
    inside = [
        (pg_dump_module, file_hasher(pg_dump_module), "sha256 of the dump file"),
        (pg_dump_module, "_installed", "client lookup (`--version` of each candidate)"),
        (PgDumpDriver, "_server_major", "connect and SHOW server_version_num"),
    ]
    censuses: list[float] = []
    original_census = census.take_census

    def timed_census(*a: Any, **k: Any) -> Any:
        began = time.perf_counter()
        try:
            return original_census(*a, **k)
        finally:
            censuses.append(time.perf_counter() - began)

    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    print("\n    take_backup (dump + census, restore into a scratch database, census, compare):")
    try:
        for index in range(args.full_repeats):
            censuses.clear()
            clear_dumps(WORK)
            stages.clear()
            backups_module.take_census = timed_census  # type: ignore[assignment]
            pg_dump_module.take_census = timed_census  # type: ignore[assignment]
            try:
                with stage_timers(stages, [*steps, *inside]):
                    began = time.perf_counter()
                    result = take_backup(target, ledger, reason="bench")
                    totals.append(time.perf_counter() - began)
            finally:
                backups_module.take_census = original_census
                pg_dump_module.take_census = original_census
            if not result.verified:
                raise RuntimeError(f"take_backup did not verify: {result.message}")
            print(f"      run {index + 1}: {secs(totals[-1])}: {result.message}")
    finally:
        ledger.close()
        clear_dumps(WORK)
    breakdown = {label: stages.get(label, [0.0, 0])[0] for _, _, label in steps}
    if len(censuses) == 2:
        breakdown["census of the live database (in the snapshot)"] = censuses[0]
        breakdown["census of the restored copy"] = censuses[1]
    breakdown["the rest: scratch database, ledger, comparison, prune"] = totals[-1] - sum(
        breakdown.values()
    )
    print(f"      where the last run's {secs(totals[-1])} went:")
    for label, seconds in breakdown.items():
        print(f"        {label:<56} {secs(seconds):>9}")
    print("      inside those steps:")
    calls = {}
    for _, _, label in inside:
        seconds, count = stages.get(label, [0.0, 0])
        calls[label] = {"seconds": seconds, "calls": count}
        print(f"        {label:<56} {secs(seconds):>9} in {count} calls")
    return {"seconds": totals, "breakdown": breakdown, "inside": calls}


# -- census -----------------------------------------------------------------------------

COLUMN_KINDS = [
    ("amount", "integer", "(g * 17) % 100000"),
    ("label", "text", "'item-' || g"),
    ("seen_at", "timestamptz", "timestamptz '2025-01-01' + g * interval '1 minute'"),
    ("price", "numeric(12,2)", "(g % 10000) / 100.0"),
    ("active", "boolean", "g % 3 = 0"),
    ("note", "text", "CASE WHEN g % 7 = 0 THEN NULL ELSE md5(g::text) END"),
    ("born_on", "date", "CASE WHEN g % 11 = 0 THEN NULL ELSE date '2000-01-01' + g % 9000 END"),
]
"""Columns after ``id``; table i takes the first 4 + i % 4 (so 5 to 8 columns in all)."""


def build_census_db(server: Server, name: str, tables: int, rows: int) -> dict[str, Any]:
    dsn = server.fresh(name)
    per_table = rows // tables
    started = time.perf_counter()
    columns_total = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for i in range(tables):
            kinds = COLUMN_KINDS[: 4 + i % 4]
            columns_total += 1 + len(kinds)
            table = sql.Identifier(f"t{i:03d}")
            conn.execute(
                sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY, {})").format(
                    table, sql.SQL(", ").join(sql.SQL(f"{c} {t}") for c, t, _ in kinds)
                )
            )
            conn.execute(
                sql.SQL("INSERT INTO {} SELECT g, {} FROM generate_series(1, {}) AS g").format(
                    table,
                    sql.SQL(", ").join(sql.SQL(v) for _, _, v in kinds),
                    sql.Literal(per_table),
                )
            )
    load = time.perf_counter() - started
    server.settle(name)
    size = server.size(name)
    print(
        f"    built {name}: {tables} tables, {columns_total} columns, {per_table * tables:,} rows "
        f"({per_table:,} per table), {mib(size)}, in {load:.1f} s"
    )
    return {
        "dsn": dsn,
        "tables": tables,
        "columns": columns_total,
        "rows": per_table * tables,
        "size_bytes": size,
        "load_seconds": load,
    }


def bench_census(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    from reconciler.db.connection import connect
    from reconciler.db.url import parse_database_url
    from reconciler.observe.census import take_census

    name = f"bench_census_{os.getpid()}"
    print(f"\ncensus: {args.census_tables} tables, {args.census_rows:,} rows")
    built = build_census_db(server, name, args.census_tables, args.census_rows)
    db = connect(parse_database_url(built["dsn"]), application_name="bench-census")
    modes: dict[str, dict[str, Any]] = {
        "checksums=False": {"checksums": False},
        "default": {},
    }
    try:
        logs: dict[str, CensusLog] = {}
        checksummed: dict[str, int] = {}
        for mode, kwargs in modes.items():  # warm-up, counted
            logs[mode] = CensusLog()
            with counting(logs[mode]):
                result = take_census(db, **kwargs)
            checksummed[mode] = sum(1 for t in result.tables.values() if t.checksum)
            if result.total_rows() != built["rows"]:
                raise RuntimeError(f"census counted {result.total_rows()} rows")
        runs: dict[str, list[float]] = {mode: [] for mode in [*modes, "count(*) per table"]}
        names = [f"t{i:03d}" for i in range(args.census_tables)]
        for index in range(args.census_repeats):
            order = list(runs) if index % 2 == 0 else list(reversed(runs))
            for mode in order:
                began = time.perf_counter()
                if mode in modes:
                    take_census(db, **modes[mode])
                else:
                    for table in names:
                        db.query(f'SELECT count(*) FROM "public"."{table}"')
                runs[mode].append(time.perf_counter() - began)
    finally:
        db.close()

    med = {mode: statistics.median(values) for mode, values in runs.items()}
    problems = []
    for mode, log in logs.items():
        scans, tables = log.kinds["scan"], args.census_tables
        if log.kinds["catalog"] != 1:
            problems.append(f"{mode}: {log.kinds['catalog']} catalog queries")
        if scans != tables or len(log.scans) != tables or max(log.scans.values()) != 1:
            problems.append(f"{mode}: {scans} scans of {len(log.scans)} tables ({tables})")
        if log.kinds["other"]:
            problems.append(f"{mode}: {log.kinds['other']} other statements")
    for mode, log in logs.items():
        total = sum(log.kinds.values())
        print(
            f"    {mode:<16} {total} statements: {log.kinds['catalog']} catalog query, "
            f"{log.kinds['scan']} scans ({len(log.scans)} tables, each once; "
            f"{sum(log.columns_per_scan)} column counts inside them), "
            f"{checksummed[mode]} tables checksummed"
        )
    print(
        "    check (one scan per table, never one query per column): "
        + ("OK" if not problems else "FAILED")
    )
    for problem in problems:
        print(f"      {problem}")
    print(f"    time, median of {args.census_repeats} (after one warm-up each):")
    rows = built["rows"]
    for mode, seconds in med.items():
        rate = rows / seconds / 1e6
        print(f"      {mode:<22} {secs(seconds):>9}   {rate:.1f}M rows/s")
    if problems:
        raise RuntimeError("the census sent more queries than one scan per table")
    return {
        "database": built,
        "queries": {mode: dict(log.kinds) for mode, log in logs.items()},
        "tables_checksummed": checksummed,
        "seconds": runs,
        "medians": med,
    }


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Backup and census benchmarks.")
    parser.add_argument("--only", choices=["backup", "census"], help="run one part")
    add_server_option(parser)
    parser.add_argument("--size-mb", type=int, default=1024, help="backup database size (MB)")
    parser.add_argument("--repeats", type=int, default=5, help="backup rounds (default 5)")
    parser.add_argument("--full-repeats", type=int, default=1, help="take_backup runs (1)")
    parser.add_argument("--pg-dump", help="pg_dump for the by-hand side (default: the driver's)")
    parser.add_argument("--census-tables", type=int, default=100, help="tables (default 100)")
    parser.add_argument("--census-rows", type=int, default=10_000_000, help="rows in all (10M)")
    parser.add_argument("--census-repeats", type=int, default=5, help="timed censuses (5)")
    add_json_option(parser)
    return parser.parse_args(argv)


def cleanup(server: Server) -> None:
    server.drop_all()
    try:
        from reconciler.backup.scratch import drop_leftovers
        from reconciler.db.url import parse_database_url

        left = drop_leftovers(parse_database_url(server.dsn("postgres")), TARGET_NAME)
        if left:
            print(f"dropped leftover scratch databases: {', '.join(left)}", file=sys.stderr)
    except Exception as exc:  # cleanup must not hide the real error
        print(f"warning: scratch databases not checked: {exc}", file=sys.stderr)
    if WORK.exists():
        clear_dumps(WORK)
        shutil.rmtree(WORK / "dumps", ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = Server(args.server)

    def run_all(results: dict[str, Any]) -> None:
        results["server"] = server.value("SHOW server_version")
        if args.only in (None, "backup"):
            results["backup"] = bench_backup(args, server)
            if args.only is None:
                server.drop_all()  # free the disk before the census database is built
        if args.only in (None, "census"):
            results["census"] = bench_census(args, server)

    return run_benchmarks(
        "bench_backup",
        run_all,
        cleanup=lambda: cleanup(server),
        json_file=args.json,
        errors=(RuntimeError, psycopg.Error),
    )


if __name__ == "__main__":
    sys.exit(main())
