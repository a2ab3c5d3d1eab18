"""Fleet benchmark: one daemon, 200 in-sync PostgreSQL targets on one server.

    python bench/bench_fleet.py                   # setup, (a), (b), (c), drop everything
    python bench/bench_fleet.py --profile         # also cProfile one daemon cycle

Setup: one template database is migrated to the head of the example Prisma history
(``examples/shop/prisma-postgres/migrations``) with ``reconciler apply``; ``--targets``
databases ``bench_fleet_<i>`` are created from it with ``CREATE DATABASE ... TEMPLATE``, and
a policy lists them all, with a PostgreSQL ledger (``bench_fleet_ledger``) and
``schedule: {schema: 1h, identity: null}`` so that nothing runs on its own.

(a) cycle: ``Daemon(policy)`` in this process (start-up excluded), then ``run_once()`` timed
    ``--cycles`` times: median and p95, every target InSync with nothing applied, with the
    CPU time of this process and of the server, and the time of each phase. For comparison:
    the same cycle ``--workers`` targets at a time (default 1: one after the other),
    ``plan_target`` over every target one after the other, and a bare connect + ``SELECT 1``
    to every database.
    Target: one full cycle <= 2 s.
(b) memory: peak RSS of whole ``reconciler run --config POLICY --once`` processes.
    Target: <= 150 MB.
(c) idle: ``reconciler run --config POLICY`` serving; once its first cycle has finished,
    its CPU time (utime + stime from /proc) over ``--idle`` seconds. Target: < 1% of a core.
    Then SIGTERM: it must exit 0.

The daemon keeps one connection per target between runs, plus one that holds every
leadership lock, so the server needs ``max_connections`` of at least the number of targets
plus about 25; the script refuses to start otherwise. Every database this script creates
is dropped when it ends, also on failure, Ctrl-C or SIGTERM. Work files (policies, the
template's SQLite ledger, the daemon's log) go to bench/work/fleet/.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import http.client
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
from common import (
    Server,
    add_json_option,
    add_profile_options,
    add_server_option,
    load_average,
    percentile,
    proc_fields,
    process_cpu_seconds,
    reconciler_command,
    run,
    run_benchmarks,
    top_functions,
    verdict,
)
from common import ms as common_ms

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "fleet"
HISTORY = ROOT / "examples" / "shop" / "prisma-postgres" / "migrations"
PREFIX = "bench_fleet_"
TEMPLATE = "bench_fleet_template"
LEDGER = "bench_fleet_ledger"
CYCLE_TARGET_S = 2.0
RSS_TARGET_MB = 150.0
IDLE_TARGET_PCT = 1.0
# Connections the daemon may need beyond one kept connection per target: the leadership
# connection, the ledger's pool (2 + 10 overflow), and room for the script's own.
SPARE_CONNECTIONS = 25
WORKERS = 4  # connections creating or dropping databases at once


# -- helpers ----------------------------------------------------------------------------


def ms(seconds: float) -> str:
    """Whole milliseconds: the figures of a cycle need no finer grain."""
    return common_ms(seconds, digits=0)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerCpu:
    """CPU time of a local PostgreSQL server: the postmaster, its reaped children (backends
    that have exited) and the processes still running under it. None when not readable."""

    def __init__(self, server: Server) -> None:
        self.postmaster: int | None = None
        try:
            backend = int(server.value("SELECT pg_backend_pid()"))
            self.postmaster = int(proc_fields(backend)[1])
            self.seconds()
        except (OSError, ValueError, IndexError, psycopg.Error):
            self.postmaster = None

    def seconds(self) -> float | None:
        if self.postmaster is None:
            return None
        fields = proc_fields(self.postmaster)
        ticks = sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    child = proc_fields(entry.name)
                except (OSError, ValueError):
                    continue  # gone meanwhile: its time is in the postmaster's cutime
                if child[1] == str(self.postmaster):
                    ticks += int(child[11]) + int(child[12])
        return ticks / os.sysconf("SC_CLK_TCK")


# -- setup ------------------------------------------------------------------------------


def check_connections(server: Server, targets: int, force: bool) -> dict[str, int]:
    """The daemon keeps one leadership connection per target open on the ledger database;
    a server without room for them refuses some, and those targets are silently skipped."""
    limit = int(server.value("SHOW max_connections"))
    in_use = int(
        server.value("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
    )
    needed = targets + SPARE_CONNECTIONS
    print(f"    max_connections {limit}, {in_use} in use; the daemon needs about {needed}")
    if limit - in_use < needed and not force:
        raise RuntimeError(
            f"the server has room for {limit - in_use} more connections, the daemon needs "
            f"about {needed} (one per target for leadership, held for its lifetime): raise "
            "max_connections, or point --server at a server with room (--ignore-connections "
            "runs anyway and shows what happens)"
        )
    return {"max_connections": limit, "in_use": in_use, "needed": needed}


def check_disk(server: Server, targets: int) -> None:
    """Refuse when the copies would not fit comfortably on the server's disk."""
    size = int(server.value(f"SELECT pg_database_size('{TEMPLATE}')"))
    needed = size * (targets + 1)
    try:
        data = Path(str(server.value("SHOW data_directory")))
        free = shutil.disk_usage(data).free
    except (OSError, psycopg.Error):
        print(f"    the copies take about {needed / 2**20:.0f} MiB (free space not checked)")
        return
    print(
        f"    {targets} copies of {size / 2**20:.1f} MiB: about {needed / 2**20:.0f} MiB; "
        f"{free / 2**30:.1f} GiB free on the server's disk"
    )
    if needed > free / 2:
        raise RuntimeError(f"not enough disk: {needed / 2**30:.1f} GiB needed")


def write_policy(
    path: Path, server: Server, targets: Sequence[str], ledger: str, port: int
) -> None:
    migrations = os.path.relpath(HISTORY, path.parent)
    lines = [f"ledger: {ledger}", f"server: {{listen: '127.0.0.1:{port}'}}", "targets:"]
    for name in targets:
        lines += [
            f"  - name: {name}",
            f"    database: {server.dsn(name)}",
            f"    migrations: {{layout: prisma, path: {migrations}}}",
            "    schedule: {schema: 1h, identity: null}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def setup(args: argparse.Namespace, server: Server) -> tuple[Path, list[str], dict[str, Any]]:
    """The migrated template, its copies, the ledger database and the fleet's policy."""
    info: dict[str, Any] = {}
    print("setup:")
    stale = server.leftovers(PREFIX)
    if stale:
        print(f"    dropping {len(stale)} databases left by an earlier run")
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(server.drop, stale))
    info["connections"] = check_connections(server, args.targets, args.ignore_connections)
    migrations = sorted(p for p in HISTORY.iterdir() if (p / "migration.sql").is_file())

    server.create(TEMPLATE)
    policy = WORK / "template.yaml"
    for leftover in WORK.glob("template-ledger.db*"):
        leftover.unlink()
    policy.write_text(
        "ledger: sqlite:///template-ledger.db\ntargets:\n"
        f"  - name: template\n    database: {server.dsn(TEMPLATE)}\n"
        "    migrations: {layout: prisma, "
        f"path: {os.path.relpath(HISTORY, WORK)}}}\n",
        encoding="utf-8",
    )
    started = time.perf_counter()
    run([*reconciler_command(), "apply", "--yes", "--config", str(policy)])
    with psycopg.connect(server.dsn(TEMPLATE)) as conn:
        row = conn.execute(
            'SELECT count(*) FROM "_prisma_migrations" WHERE finished_at IS NOT NULL'
        ).fetchone()
    if not row or row[0] != len(migrations):
        raise RuntimeError(f"the template records {row}, expected {len(migrations)} migrations")
    print(
        f"    {TEMPLATE}: {len(migrations)} migrations of {HISTORY.relative_to(ROOT)} applied "
        f"with reconciler apply in {time.perf_counter() - started:.1f} s"
    )
    check_disk(server, args.targets)

    names = [f"{PREFIX}{i}" for i in range(args.targets)]
    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(functools.partial(server.create, template=TEMPLATE), names))
    seconds = time.perf_counter() - started
    info["create_seconds"] = seconds
    print(f"    {len(names)} databases created from the template in {seconds:.1f} s")
    server.create(LEDGER)
    ledger = server.dsn(LEDGER)
    port = free_port()
    fleet = WORK / "fleet.yaml"
    write_policy(fleet, server, names, ledger, port)
    from reconciler.ledger import Ledger
    from reconciler.policy import load_policy

    Ledger(load_policy(fleet).ledger).close()  # the ledger's schema, before anything is timed
    print(f"    policy {fleet.relative_to(ROOT)}: {len(names)} targets, ledger {ledger}")
    info.update(targets=len(names), migrations=len(migrations), port=port)
    return fleet, names, info


def check_untouched(server: Server, names: Sequence[str], migrations: int) -> None:
    """Nothing was applied: no step in the ledger, the same history in every database."""
    with psycopg.connect(server.dsn(LEDGER)) as conn:
        row = conn.execute("SELECT count(*) FROM steps").fetchone()
    if row and row[0]:
        raise RuntimeError(f"the ledger records {row[0]} applied steps; expected none")
    for name in names:
        with psycopg.connect(server.dsn(name)) as conn:
            row = conn.execute('SELECT count(*) FROM "_prisma_migrations"').fetchone()
        if not row or row[0] != migrations:
            raise RuntimeError(f"{name}: _prisma_migrations has {row}, expected {migrations}")


# -- (a) one cycle in one process -------------------------------------------------------


def check_cycle(daemon: Any, code: int) -> None:
    """Every target led, InSync, nothing pending, nothing applied."""
    problems = []
    for name, runtime in daemon.targets.items():
        state = runtime.concerns.get("schema")
        if state is None or not runtime.leader:
            problems.append(f"{name}: not reconciled (leader: {runtime.leader})")
        elif state.reason != "InSync" or state.message.startswith("applied"):
            problems.append(f"{name}: {state.reason}: {state.message}")
        elif runtime.schema.get("pending") or runtime.schema.get("drift"):
            problems.append(f"{name}: pending or drift: {runtime.schema}")
    if problems or code != 0:
        shown = "\n  ".join(problems[:5])
        more = f"\n  ... and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise RuntimeError(
            f"run_once returned {code}; {len(problems)} targets not InSync:\n  {shown}{more}"
        )


# (module, class or None, attribute, label): what one target's schema run calls, not nested
PHASES = [
    ("reconciler.runtime.leader", "Leadership", "acquire", "leadership: check the lock"),
    ("reconciler.ledger.store", "Ledger", "start_run", "ledger: start_run"),
    ("reconciler.ledger.store", "Ledger", "record_run", "ledger: record the run (one write)"),
    ("reconciler.runtime.target", "TargetRuntime", "connection", "target: lend the kept one"),
    ("reconciler.act.engine", None, "open_layout", "files: read + hash"),
    ("reconciler.act.engine", None, "connect", "target: connect"),
    ("reconciler.act.engine", "TargetSession", "plan", "target: observe + plan (x2)"),
    ("reconciler.db.postgres", "PostgresDatabase", "advisory_lock", "target: Prisma's lock"),
    ("reconciler.ledger.store", "Ledger", "record_decisions", "ledger: record_decisions"),
    ("reconciler.db.postgres", "PostgresDatabase", "close", "target: close"),
    ("reconciler.ledger.store", "Ledger", "finish_run", "ledger: finish_run"),
    ("reconciler.ledger.store", "Ledger", "backups", "ledger: backups (for /status)"),
]


@contextlib.contextmanager
def instrumented() -> Iterator[dict[str, list[float]]]:
    """Wall-clock totals of each phase while inside; the originals are put back after."""
    import importlib

    totals: dict[str, list[float]] = {}
    undo: list[Callable[[], None]] = []
    for module_name, owner_name, attr, label in PHASES:
        module = importlib.import_module(module_name)
        owner: Any = getattr(module, owner_name) if owner_name else module
        original = getattr(owner, attr, None)
        if original is None:  # the code moved: say so rather than time less than the run
            raise SystemExit(f"bench_fleet: {module_name}.{owner_name or ''}.{attr} is gone")
        slot = totals.setdefault(label, [0.0, 0])
        if attr == "advisory_lock":  # a context manager: time entering and leaving

            @contextlib.contextmanager
            def locked(*a: Any, _f: Any = original, _s: Any = slot, **k: Any) -> Iterator[None]:
                manager = _f(*a, **k)
                started = time.perf_counter()
                manager.__enter__()
                _s[0] += time.perf_counter() - started
                try:
                    yield
                finally:
                    started = time.perf_counter()
                    manager.__exit__(None, None, None)
                    _s[0] += time.perf_counter() - started
                    _s[1] += 1

            wrapper: Any = locked
        else:

            def timed(*a: Any, _f: Any = original, _s: Any = slot, **k: Any) -> Any:
                started = time.perf_counter()
                try:
                    return _f(*a, **k)
                finally:
                    _s[0] += time.perf_counter() - started
                    _s[1] += 1

            wrapper = functools.wraps(original)(timed)
        setattr(owner, attr, wrapper)
        undo.append(functools.partial(setattr, owner, attr, original))
    try:
        yield totals
    finally:
        for restore in undo:
            restore()


def concurrent_cycles(daemon: Any, workers: int, cycles: int) -> list[float]:
    """The cycle run_once does, ``workers`` targets at a time (as the serving daemon's
    scheduler runs them): what a concurrent run_once would take."""
    names = list(daemon.targets)

    def one(name: str) -> str | None:
        return daemon.reconcile(name, "schema", trigger="once")  # type: ignore[no-any-return]

    times = []
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(cycles):
            started = time.perf_counter()
            reasons = list(pool.map(one, names))
            times.append(time.perf_counter() - started)
            check_cycle(daemon, 0 if all(r == "InSync" for r in reasons) else 1)
    med = statistics.median(times)
    print(
        f"    the same cycle with {workers} targets at a time (a thread pool calling "
        f"Daemon.reconcile), x{len(times)}: median {ms(med)}, p95 {ms(percentile(times, 95))}"
    )
    return times


def bench_cycle(
    args: argparse.Namespace, server: Server, policy: Path, targets: int
) -> dict[str, Any]:
    from reconciler.act import plan_target
    from reconciler.policy import load_policy
    from reconciler.runtime.daemon import Daemon

    print(f"\n(a) one full cycle over {targets} targets, in this process")
    started = time.perf_counter()
    daemon = Daemon(policy)
    print(f"    Daemon(policy): {ms(time.perf_counter() - started)} (start-up, not counted)")
    result: dict[str, Any] = {}
    server_cpu = ServerCpu(server)
    try:
        started = time.perf_counter()
        code = daemon.run_once()
        first = time.perf_counter() - started
        check_cycle(daemon, code)
        print(f"    first cycle (opens the {targets} kept connections): {ms(first)}")
        times, own, served = [], [], []
        for _ in range(args.cycles):
            server_before = server_cpu.seconds()
            cpu_before = time.process_time()
            started = time.perf_counter()
            code = daemon.run_once()
            times.append(time.perf_counter() - started)
            own.append(time.process_time() - cpu_before)
            server_after = server_cpu.seconds()
            if server_before is not None and server_after is not None:
                served.append(server_after - server_before)
            check_cycle(daemon, code)
        med, p95 = statistics.median(times), percentile(times, 95)
        print(
            f"    run_once x{len(times)}: median {ms(med)}, p95 {ms(p95)}, min {ms(min(times))}, "
            f"max {ms(max(times))}; {med / targets * 1000:.1f} ms per target"
        )
        line = f"    CPU per cycle (median): this process {ms(statistics.median(own))}"
        if served:
            line += f", the PostgreSQL server {ms(statistics.median(served))}"
        print(line + "; the rest of the wall clock is waiting")
        result.update(cpu_process=own, cpu_server=served)
        print("    every target InSync, nothing pending, nothing applied, after every cycle")
        print(
            f"    median {ms(med)} (target <= {CYCLE_TARGET_S:.0f} s): "
            f"{verdict(med <= CYCLE_TARGET_S)}"
        )
        result.update(first=first, cycles=times, median=med, p95=p95)
        result["target_met"] = med <= CYCLE_TARGET_S

        with instrumented() as totals:  # one target at a time, so the phases add up
            started = time.perf_counter()
            for name in daemon.targets:
                daemon.reconcile(name, "schema", trigger="once")
            whole = time.perf_counter() - started
            check_cycle(daemon, 0)
        counted = sum(v[0] for v in totals.values())
        # The two plans run inside open_target, whose layout and connection are counted
        # apart; TargetSession.plan holds only observe + assess + plan.
        print(
            "    where one target's run goes (one more cycle, one target at a time, timed per "
            f"call, {ms(whole)}):"
        )
        rows = [(label, v[0], int(v[1])) for label, v in totals.items() if v[1]]
        rows.append(("everything else (conditions, views, metrics, logging)", whole - counted, 0))
        for label, seconds, calls in sorted(rows, key=lambda r: -r[1]):
            per = f"{seconds / targets * 1000:6.2f} ms/target" if targets else ""
            print(f"      {label:<52} {ms(seconds):>8}  {per}  ({calls} calls)")
        result["phases"] = {label: s for label, s, _ in rows}
        result["phases_cycle"] = whole

        if args.workers > 0:
            result["workers"] = args.workers
            result["concurrent"] = concurrent_cycles(daemon, args.workers, args.cycles)

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            check_cycle(daemon, daemon.run_once())
            profiler.disable()
            for key in ("cumulative", "tottime"):
                text = top_functions(profiler, args.profile_lines, key)
                print(f"\n    cProfile of one run_once, by {key}:\n{text}")
                result[f"profile_{key}"] = text
    finally:
        daemon.stop(grace=0)  # releases the leadership locks for the processes of (b), (c)

    fleet = load_policy(policy).targets

    def plan_all() -> None:
        for target in fleet:
            plan = plan_target(target)
            if not plan.in_sync or plan.steps or plan.drift:
                raise RuntimeError(f"{target.name}: expected an in-sync plan")

    def connect_all() -> None:
        for name in daemon.targets:
            with psycopg.connect(server.dsn(name)) as conn:
                conn.execute("SELECT 1")

    loops: list[tuple[str, str, Callable[[], None]]] = [
        (f"plan_target over all {targets} targets, one after the other", "plan_all", plan_all),
        (
            f"bare psycopg connect + SELECT 1 + close, {targets} databases",
            "connect_all",
            connect_all,
        ),
    ]
    for label, key, loop in loops:
        loop()
        times, own, served = [], [], []
        for _ in range(args.cycles):
            server_before, cpu_before = server_cpu.seconds(), time.process_time()
            started = time.perf_counter()
            loop()
            times.append(time.perf_counter() - started)
            own.append(time.process_time() - cpu_before)
            server_after = server_cpu.seconds()
            if server_before is not None and server_after is not None:
                served.append(server_after - server_before)
        med = statistics.median(times)
        cpu = f"CPU {ms(statistics.median(own))} here"
        if served:
            cpu += f", {ms(statistics.median(served))} in the server"
        print(
            f"    for comparison, {label}, x{len(times)}: median {ms(med)}, "
            f"p95 {ms(percentile(times, 95))}; {med / targets * 1000:.1f} ms per target; {cpu}"
        )
        result.update(
            {key: times, f"{key}_median": med, f"{key}_cpu": own, f"{key}_server": served}
        )
    return result


# -- (b) peak RSS of a whole --once process ---------------------------------------------


def once_process(policy: Path, targets: int) -> tuple[float, float]:
    """Peak RSS (MiB) and wall-clock seconds of one ``reconciler run --once`` process."""
    command = [*reconciler_command(), "run", "--config", str(policy), "--once"]
    time_binary = "/usr/bin/time" if Path("/usr/bin/time").is_file() else None
    if time_binary:
        command = [time_binary, "-v", *command]
    started = time.perf_counter()
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    lines = proc.stdout.splitlines()
    in_sync = sum(1 for line in lines if " schema: InSync: " in line)
    applied = sum(1 for line in lines if ": InSync: applied" in line)
    if proc.returncode != 0 or in_sync != targets or applied:
        errors = proc.stderr.split("\tCommand being timed:")[0].strip().splitlines()
        others = [line for line in lines if " schema: InSync: " not in line]
        tail = "\n  ".join([*others[:5], *errors[-5:]])
        raise RuntimeError(
            f"reconciler run --once exited {proc.returncode}: {in_sync} of {targets} targets "
            f"InSync, {applied} applied something; {len(lines)} outcome lines:\n  {tail}"
        )
    if time_binary:
        found = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        if not found:
            raise RuntimeError("no peak RSS in the output of time -v")
        return int(found.group(1)) / 1024, seconds
    import resource

    # The largest of all children waited for so far: fine while this one is the largest.
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, seconds


def bench_memory(args: argparse.Namespace, policy: Path, targets: int) -> dict[str, Any]:
    print(f"\n(b) peak RSS of `reconciler run --config {policy.name} --once`")
    rss, seconds = [], []
    for index in range(args.processes):
        peak, wall = once_process(policy, targets)
        rss.append(peak)
        seconds.append(wall)
        print(
            f"    run {index + 1}: peak RSS {peak:.1f} MiB, {wall:.2f} s wall clock, exit 0, "
            f"{targets} targets InSync"
        )
    med = statistics.median(rss)
    print(
        f"    median peak RSS {med:.1f} MiB (target <= {RSS_TARGET_MB:.0f} MB): "
        f"{verdict(med <= RSS_TARGET_MB)}"
    )
    return {
        "rss_mib": rss,
        "median_mib": med,
        "process_seconds": seconds,
        "target_met": med <= RSS_TARGET_MB,
    }


# -- (c) idle CPU -----------------------------------------------------------------------


def status(port: int) -> dict[str, Any] | None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/status")
        reply = conn.getresponse()
        body = reply.read()
        return json.loads(body) if reply.status == 200 else None
    except (OSError, http.client.HTTPException, ValueError):
        return None
    finally:
        conn.close()


def proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}


def bench_idle(args: argparse.Namespace, policy: Path, port: int, targets: int) -> dict[str, Any]:
    print(f"\n(c) idle CPU of `reconciler run --config {policy.name}` (serving on port {port})")
    log_path = WORK / "daemon.log"
    command = [*reconciler_command(), "run", "--config", str(policy)]
    result: dict[str, Any] = {}
    with log_path.open("wb") as log_file:
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log_file, stderr=subprocess.STDOUT)
        try:
            deadline = started + args.first_cycle_timeout
            done: list[dict[str, Any]] = []
            while time.perf_counter() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"the daemon exited {proc.returncode}; see {log_path}")
                body = status(port)
                if body is not None:
                    done = [t for t in body["targets"] if "schema" in t["concerns"]]
                    if len(done) == targets:
                        break
                time.sleep(0.5)
            else:
                raise RuntimeError(
                    f"after {args.first_cycle_timeout:.0f} s, {len(done)} of {targets} targets "
                    f"had run; see {log_path}"
                )
            ready = time.perf_counter() - started
            reasons = [t["concerns"]["schema"]["reason"] for t in done]
            not_in_sync = [r for r in reasons if r != "InSync"]
            if not_in_sync:
                raise RuntimeError(f"{len(not_in_sync)} targets not InSync: {not_in_sync[:3]}")
            ends = [datetime.fromisoformat(t["concerns"]["schema"]["finished_at"]) for t in done]
            begins = [
                end.timestamp() - (t["concerns"]["schema"]["seconds"] or 0)
                for end, t in zip(ends, done, strict=True)
            ]
            span = max(e.timestamp() for e in ends) - min(begins)
            print(
                f"    first cycle done {ready:.1f} s after the process started; "
                f"{targets} targets InSync; from the first run's start to the last one's end "
                f"{span:.2f} s (start times spread over 2 s by jitter; up to 10 at once)"
            )
            time.sleep(args.settle)
            before, wall = process_cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle)
            used, wall = process_cpu_seconds(proc.pid) - before, time.monotonic() - wall
            pct = used / wall * 100
            info = proc_status(proc.pid)
            print(
                f"    idle for {wall:.1f} s: {used * 1000:.0f} ms of CPU = {pct:.3f}% of one "
                f"core (target < {IDLE_TARGET_PCT:.0f}%): {verdict(pct < IDLE_TARGET_PCT)}"
            )
            print(
                f"    while idle: RSS {info.get('VmRSS')}, peak {info.get('VmHWM')}, "
                f"{info.get('Threads')} threads"
            )
            result.update(
                first_cycle_ready_seconds=ready,
                first_cycle_span_seconds=span,
                idle_seconds=wall,
                idle_cpu_seconds=used,
                idle_cpu_percent=pct,
                target_met=pct < IDLE_TARGET_PCT,
                vm_rss=info.get("VmRSS"),
                vm_hwm=info.get("VmHWM"),
                threads=info.get("Threads"),
            )
            stopping = time.perf_counter()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=120)
            result.update(exit_code=code, stop_seconds=time.perf_counter() - stopping)
            print(f"    SIGTERM: exited {code} after {time.perf_counter() - stopping:.2f} s")
            if code != 0:
                raise RuntimeError(f"the daemon exited {code} on SIGTERM; see {log_path}")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return result


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Fleet benchmark: one daemon cycle over N in-sync targets, its memory, "
        "and the idle daemon's CPU."
    )
    add_server_option(parser)
    parser.add_argument("--targets", type=int, default=200, help="databases in the fleet")
    parser.add_argument("--only", choices=["cycle", "memory", "idle"], help="run one part")
    parser.add_argument("--cycles", type=int, default=10, help="(a) timed run_once calls")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="(a) also time the cycle N targets at a time (0: skip)",
    )
    parser.add_argument("--processes", type=int, default=3, help="(b) --once processes")
    parser.add_argument("--idle", type=float, default=30.0, help="(c) idle seconds sampled")
    parser.add_argument("--settle", type=float, default=2.0, help="(c) wait before sampling")
    parser.add_argument(
        "--first-cycle-timeout", type=float, default=300.0, help="(c) wait for the first cycle"
    )
    parser.add_argument(
        "--ignore-connections",
        action="store_true",
        help="run even when max_connections has no room for the daemon",
    )
    add_profile_options(parser, "(a) cProfile one cycle", lines=30)
    add_json_option(parser)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    WORK.mkdir(parents=True, exist_ok=True)
    server = Server(args.server)

    def run_all(results: dict[str, Any]) -> None:
        results["server"] = server.value("SHOW server_version")
        print(f"{os.cpu_count()} cores, PostgreSQL {results['server']}, {load_average()}")
        policy, names, results["setup"] = setup(args, server)
        port = results["setup"]["port"]
        if args.only in (None, "cycle"):
            results["cycle"] = bench_cycle(args, server, policy, len(names))
        if args.only in (None, "memory"):
            results["memory"] = bench_memory(args, policy, len(names))
        if args.only in (None, "idle"):
            results["idle"] = bench_idle(args, policy, port, len(names))
        check_untouched(server, names, results["setup"]["migrations"])
        print(f"\nno database changed: no step in the ledger; {load_average()}")

    # Several at once: each DROP DATABASE waits for a checkpoint, which they can share.
    return run_benchmarks(
        "bench_fleet",
        run_all,
        cleanup=lambda: server.drop_all(WORKERS, report=True),
        json_file=args.json,
    )


if __name__ == "__main__":
    sys.exit(main())
