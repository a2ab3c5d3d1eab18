"""Identity sync benchmarks: the Clerk double against a local PostgreSQL.

    python bench/bench_identity.py                    # (1), (2) and (3), about 10 minutes
    python bench/bench_identity.py --only first       # (1) only
    python bench/bench_identity.py --only million     # (2) only
    python bench/bench_identity.py --only loop        # (3) only

(1) first: ``reconciler identity sync --yes`` of 100,000 Clerk users into an empty users
    table, whole process. Target: <= 10 s.
(2) million: a first load of 1,000,000 users (reported, no target), then the re-sync with
    nothing changed, whole process. Target: <= 60 s and peak RSS <= 300 MB.
(3) loop: at 10,000 users, the sync against a per-user loop (page by page with httpx; per
    user ``SELECT id FROM users WHERE clerk_id = %s`` then ``INSERT`` or ``UPDATE`` with
    psycopg, one transaction committed at the end), from an empty table and as a no-change
    re-sync. Target: the sync >= 20x faster, both ways.

The Clerk double (``tests/identity/doubles.py``, ``ClerkDouble(Population(n), key)``) runs
in a separate process. By default it renders every page of the listing once before the
runs, so a request costs it a socket write and its own work (about 4 s of CPU per 100,000
users) is not in the figures; ``--cold-runs N`` (default 1) adds runs of (1) against the
double as the tests use it, each page made on request. Each measured command is a child
process: wall time, and user/system CPU and peak RSS from ``/usr/bin/time -v`` (or ``wait4``
without it).

Every database this script creates is dropped when it ends, also on failure, Ctrl-C or
SIGTERM. Policies and the SQLite ledger go to bench/work/identity/.
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
from common import (
    Server,
    add_json_option,
    add_profile_options,
    add_server_option,
    command_failed,
    process_cpu_seconds,
    reconciler_command,
    reset_ledger,
    run,
    run_benchmarks,
    verdict,
)

from reconciler.identity.clerk import decode

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
WORK = BENCH / "work" / "identity"
MIGRATIONS = ROOT / "examples" / "shop" / "prisma-postgres" / "migrations"
KEY = "sk_test_bench_identity_0123456789"
PAGE = 500
TIME = Path("/usr/bin/time")

FIRST_TARGET_S = 10.0
RESYNC_TARGET_S = 60.0
RESYNC_RSS_MB = 300.0
LOOP_TARGET = 20.0


def with_email(users: int) -> int:
    """Users of ``Population(users)`` the table takes: every 97th Clerk user of the double
    has no email address, and users.email is NOT NULL."""
    return users - users // 97


# -- the users tables -------------------------------------------------------------------

VACUUM = "VACUUM ANALYZE users"
"""How ``Server.settle`` readies a users table before a measured re-sync."""


def check_users(server: Server, database: str, expected: int, what: str) -> None:
    found = int(server.value("SELECT count(*) FROM users", database))
    if found != expected:
        raise RuntimeError(f"{what}: users holds {found:,} rows, expected {expected:,}")


def content_of(server: Server, database: str) -> str:
    """A digest of what both sides write: key, email and names of every user."""
    return str(
        server.value(
            "SELECT md5(string_agg(concat_ws('|', clerk_id, email, first_name, last_name), "
            "',' ORDER BY clerk_id)) FROM users",
            database,
        )
    )


# -- the Clerk double, in its own process -----------------------------------------------


class Double:
    """``tests.identity.doubles.ClerkDouble`` in a child process (``--serve``). The child
    stops when its stdin closes, so it also goes away if this script is killed."""

    def __init__(self, users: int, *, cold: bool = False) -> None:
        self.users = users
        self.cold = cold
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(users)]
        if cold:
            command.append("--cold")
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the Clerk double did not start (it said {line!r})")
        self.url = line
        self.ready_after = time.perf_counter() - started

    def cpu(self) -> float:
        """CPU seconds the double has used so far."""
        return process_cpu_seconds(self.proc.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Double:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(users: int, cold: bool) -> int:
    """The child: the double on 127.0.0.1, its URL on stdout, until stdin closes."""
    sys.path.insert(0, str(ROOT))
    from tests.identity.doubles import ClerkDouble, Population, clerk_id

    class Rendered(ClerkDouble):
        """The double, keeping each listing page's answer once made."""

        rendered: dict[tuple[str, tuple[tuple[str, str], ...]], Any]

        def route(self, path: str, query: dict[str, str]) -> Any:
            key = (path, tuple(sorted(query.items())))
            answer = self.rendered.get(key)
            if answer is None:
                answer = super().route(path, query)
                if not cold and path == "/users" and answer[0] == 200:
                    self.rendered[key] = answer
            return answer

    double = Rendered(Population(users), KEY)
    double.rendered = {}
    if not cold:
        # Exactly the requests of a listing: +created_at, 500 a page, the cursor chained.
        for start in range(0, users + 1, PAGE):
            query = {"limit": str(PAGE), "order_by": "+created_at"}
            if start:
                query["starting_after"] = clerk_id(start - 1)
            double.route("/users", query)
    double.start()
    print(double.url, flush=True)
    try:
        for _ in sys.stdin:
            pass
    except KeyboardInterrupt:
        pass
    finally:
        double.stop()
    return 0


def listing_floor(url: str) -> tuple[float, int, int]:
    """Seconds to GET every page and decode its JSON as the sync does (``decode``: orjson,
    the garbage collector paused), nothing else; users and bytes."""
    started = time.perf_counter()
    users = size = 0
    cursor: str | None = None
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=60) as client:
        while True:
            params: dict[str, str | int] = {"limit": PAGE, "order_by": "+created_at"}
            if cursor:
                params["starting_after"] = cursor
            response = client.get(f"{url}/users", params=params, headers=headers)
            response.raise_for_status()
            size += len(response.content)
            page = decode(response.content)
            users += len(page)
            if len(page) < PAGE:
                break
            cursor = page[-1]["id"]
    return time.perf_counter() - started, users, size


# -- the per-user loop ------------------------------------------------------------------


def primary_email(user: dict[str, Any]) -> str | None:
    primary = user.get("primary_email_address_id")
    for address in user.get("email_addresses") or []:
        if address.get("id") == primary:
            return str(address["email_address"])
    return None


def naive(url: str, dsn: str) -> int:
    """The usual sync script: page by page, one SELECT then one INSERT or UPDATE per user,
    one transaction committed at the end. Users without an email are skipped (the table
    refuses them, as the sync reports them). Prints what it did as JSON."""
    done = {"listed": 0, "skipped": 0, "inserted": 0, "updated": 0}
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(timeout=60) as client, psycopg.connect(dsn) as conn:
        cur = conn.cursor()
        cursor: str | None = None
        while True:
            params: dict[str, str | int] = {"limit": PAGE, "order_by": "+created_at"}
            if cursor:
                params["starting_after"] = cursor
            response = client.get(f"{url}/users", params=params, headers=headers)
            response.raise_for_status()
            page = response.json()
            for user in page:
                done["listed"] += 1
                email = primary_email(user)
                if email is None:
                    done["skipped"] += 1
                    continue
                cur.execute("SELECT id FROM users WHERE clerk_id = %s", (user["id"],))
                row = cur.fetchone()
                if row is None:
                    cur.execute(
                        "INSERT INTO users (clerk_id, email, first_name, last_name) "
                        "VALUES (%s, %s, %s, %s)",
                        (user["id"], email, user.get("first_name"), user.get("last_name")),
                    )
                    done["inserted"] += 1
                else:
                    cur.execute(
                        "UPDATE users SET email = %s, first_name = %s, last_name = %s "
                        "WHERE id = %s",
                        (email, user.get("first_name"), user.get("last_name"), row[0]),
                    )
                    done["updated"] += 1
            if len(page) < PAGE:
                break
            cursor = page[-1]["id"]
        conn.commit()
    print(json.dumps(done))
    return 0


# -- processes --------------------------------------------------------------------------


@dataclass
class Measured:
    wall: float
    user: float
    system: float
    max_rss_mb: float
    stdout: str

    def brief(self) -> str:
        return (
            f"{self.wall:7.2f} s wall, {self.user + self.system:6.2f} s CPU, "
            f"peak RSS {self.max_rss_mb:5.0f} MB"
        )


def _time_field(report: str, name: str) -> float:
    match = re.search(rf"^\s*{re.escape(name)}: ([\d.]+)\s*$", report, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"/usr/bin/time -v printed no {name!r}")
    return float(match.group(1))


def measure(command: Sequence[str]) -> Measured:
    """Run ``command`` as a fresh child: its wall time, CPU and peak RSS."""
    if TIME.is_file():
        with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
            wall, stdout = run([str(TIME), "-v", "-o", report.name, *command])
            text = report.read()
        return Measured(
            wall,
            _time_field(text, "User time (seconds)"),
            _time_field(text, "System time (seconds)"),
            _time_field(text, "Maximum resident set size (kbytes)") / 1024,
            stdout,
        )
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = code = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout = out.read()
        if code != 0:
            raise command_failed(command, code, stdout + err.read())
    # ru_maxrss is in kilobytes on Linux.
    return Measured(wall, usage.ru_utime, usage.ru_stime, usage.ru_maxrss / 1024, stdout)


def write_policy(path: Path, dsn: str, url: str) -> Path:
    path.write_text(
        "\n".join(
            [
                "ledger: sqlite:///ledger.db",
                "targets:",
                "  - name: shop",
                "    environment: development",
                f"    database: {dsn}",
                f"    migrations: {{layout: prisma, path: {MIGRATIONS}}}",
                "    identity:",
                "      provider: clerk",
                f"      clerk: {{secret_key: {KEY}, api_url: '{url}'}}",
                "      key: clerk_id",
                "      columns: {email: email, first_name: first_name, last_name: last_name}",
                "      orphans: report",
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    return path


def sync_command(policy: Path) -> list[str]:
    return [*reconciler_command(), "identity", "sync", "--yes", "--config", str(policy)]


def naive_command(url: str, dsn: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--naive", url, dsn]


@dataclass
class Outcome:
    listed: int
    missing: int
    not_taken: int
    """Listed users the table can never take (no email: users.email is NOT NULL)."""
    changed: int
    created: int
    updated: int
    rejected: int
    previewed: bool
    """The run first listed everything for a dry run (``Pending``), then again to apply."""


def _number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    return int(match.group(1).replace(",", "")) if match else 0


def outcome_of(stdout: str) -> Outcome:
    lines = [line for line in stdout.splitlines() if line.startswith("Identity ")]
    if not lines or ": InSync: " not in lines[-1]:
        raise RuntimeError(f"the sync did not end in sync:\n{stdout.strip()[-2000:]}")
    last = lines[-1]
    return Outcome(
        listed=_number(r"([\d,]+) listed", last),
        missing=_number(r"([\d,]+) missing", last),
        not_taken=_number(r"orphaned, ([\d,]+) not taken", last),
        changed=_number(r"([\d,]+) changed", last),
        created=_number(r"created ([\d,]+)", last),
        updated=_number(r"updated ([\d,]+)", last),
        rejected=_number(r"; (\d+) not taken by", last),
        previewed=any(": Pending: " in line for line in lines),
    )


def record(measured: Measured, double_cpu: float) -> dict[str, Any]:
    """A run for the JSON results (without the command's output)."""
    fields = asdict(measured)
    fields.pop("stdout")
    return {**fields, "double_cpu": double_cpu}


def run_sync(policy: Path, double: Double) -> tuple[Measured, Outcome, float]:
    """One measured ``reconciler identity sync``; the double's CPU during it."""
    before = double.cpu()
    measured = measure(sync_command(policy))
    return measured, outcome_of(measured.stdout), double.cpu() - before


def startup() -> float:
    """Median wall time of ``reconciler --version``: the process start-up alone."""
    return statistics.median(measure([*reconciler_command(), "--version"]).wall for _ in range(5))


# -- profiles ---------------------------------------------------------------------------

PHASES = [
    ("imports", "_find_and_load", "<frozen importlib._bootstrap>"),
    ("reconcile_identity", "reconcile_identity", "reconciler/act/identity.py"),
    ("  provider count()", "count", "reconciler/identity/clerk.py"),
    ("  stage (list + COPY + dedupe)", "stage", "reconciler/identity/sync.py"),
    ("    listing (HTTP, JSON, mapping)", "_list", "reconciler/identity/clerk.py"),
    ("      JSON decoding", "decode", "reconciler/identity/clerk.py"),
    ("      from_clerk", "from_clerk", "reconciler/identity/clerk_user.py"),
    ("  diff", "diff", "reconciler/identity/sync.py"),
    ("  create_and_update", "create_and_update", "reconciler/identity/sync.py"),
    ("waiting for PostgreSQL", "wait", "psycopg/connection.py"),
]


def profile_sync(policy: Path, lines: int) -> dict[str, Any]:
    """One sync under cProfile (``python -m cProfile -m reconciler ...``): where it goes."""
    with tempfile.NamedTemporaryFile(suffix=".prof") as out:
        command = [
            sys.executable,
            "-m",
            "cProfile",
            "-o",
            out.name,
            "-m",
            "reconciler",
            *sync_command(policy)[1:],
        ]
        proc = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        outcome_of(proc.stdout)
        # total_tt, stats and fcn_list are pstats attributes its type stubs leave out.
        stats: Any = pstats.Stats(out.name)
    table: dict[str, Any] = {"total": stats.total_tt}
    print(f"      cProfile, one sync: {stats.total_tt:.2f} s in all")
    entries = stats.stats
    for label, function, where in PHASES:
        calls, cumulative = 0, 0.0
        for (filename, _, name), (_, ncalls, tottime, cumtime, _) in entries.items():
            if name == function and filename.endswith(where):
                calls += ncalls
                cumulative += tottime if function == "wait" else cumtime
        table[label.strip()] = {"calls": calls, "seconds": cumulative}
        print(f"        {label:34} {cumulative:7.2f} s  ({calls:,} calls)")
    top = stats.sort_stats("tottime")
    print(f"      top {lines} functions by own time:")
    rows = []
    for key in top.fcn_list[:lines]:
        _, ncalls, tottime, cumtime, _ = entries[key]
        name = f"{Path(key[0]).name}:{key[1]}({key[2]})"
        rows.append({"function": name, "calls": ncalls, "tottime": tottime, "cumtime": cumtime})
        print(f"        {tottime:7.2f} s own {cumtime:7.2f} s cum {ncalls:>9,}  {name}")
    table["top"] = rows
    return table


# -- (1) first sync of 100,000 ----------------------------------------------------------


def bench_first(args: argparse.Namespace, server: Server, template: str) -> dict[str, Any]:
    n, pid = args.first_users, os.getpid()
    database = f"bench_identity_first_{pid}"
    expected = with_email(n)
    print(f"(1) first sync: {n:,} Clerk users into an empty users table ({expected:,} with email)")
    result: dict[str, Any] = {"users": n, "taken": expected, "runs": []}
    with Double(n) as double:
        print(f"    double ready in {double.ready_after:.1f} s (pages rendered) at {double.url}")
        floors = [listing_floor(double.url) for _ in range(3)]
        floor = statistics.median([f[0] for f in floors])
        print(
            f"    listing floor (GET + JSON decode of every page, {floors[0][2] / 1e6:.0f} MB): "
            f"{floor:.2f} s"
        )
        policy = write_policy(WORK / "first.yaml", server.dsn(database), double.url)
        for index in range(args.repeats + 1):
            server.fresh(database, template)
            server.checkpoint()
            measured, outcome, served = run_sync(policy, double)
            check_users(server, database, expected, "first sync")
            if outcome.created != expected or outcome.rejected != n - expected:
                raise RuntimeError(f"first sync: unexpected outcome {outcome}")
            label = "warm-up" if index == 0 else f"run {index}"
            print(
                f"    {label:8} {measured.brief()}  (double {served:.2f} s CPU; "
                f"listed {'twice' if outcome.previewed else 'once'})"
            )
            if index:
                result["runs"].append(record(measured, served))
        result["listed_twice"] = outcome.previewed
        if args.profile:
            server.fresh(database, template)
            result["profile"] = profile_sync(policy, args.profile_lines)
    walls = [r["wall"] for r in result["runs"]]
    result.update(
        median=statistics.median(walls),
        min=min(walls),
        max=max(walls),
        rss_mb=max(r["max_rss_mb"] for r in result["runs"]),
        cpu=statistics.median([r["user"] + r["system"] for r in result["runs"]]),
        listing_floor=floor,
        target_met=statistics.median(walls) <= FIRST_TARGET_S,
    )
    if args.cold_runs:
        with Double(n, cold=True) as double:
            policy = write_policy(WORK / "first-cold.yaml", server.dsn(database), double.url)
            cold = []
            for _ in range(args.cold_runs):
                server.fresh(database, template)
                server.checkpoint()
                measured, _, served = run_sync(policy, double)
                check_users(server, database, expected, "first sync (cold double)")
                cold.append(record(measured, served))
                print(f"    cold     {measured.brief()}  (double {served:.2f} s CPU)")
            result["cold_double"] = cold
    server.drop(database)
    print(
        f"    median of {args.repeats}: {result['median']:.2f} s (min {result['min']:.2f}, max "
        f"{result['max']:.2f}), {result['cpu']:.2f} s CPU, peak RSS {result['rss_mb']:.0f} MB"
    )
    print(f"    target <= {FIRST_TARGET_S:g} s: {verdict(result['target_met'])}")
    return result


# -- (2) 1,000,000: first load, then the no-change re-sync ------------------------------


def bench_million(args: argparse.Namespace, server: Server, template: str) -> dict[str, Any]:
    n, pid = args.million_users, os.getpid()
    database = f"bench_identity_million_{pid}"
    expected = with_email(n)
    print(f"(2) million: {n:,} Clerk users ({expected:,} with email)")
    result: dict[str, Any] = {"users": n, "taken": expected, "resyncs": []}
    with Double(n) as double:
        print(f"    double ready in {double.ready_after:.1f} s (pages rendered) at {double.url}")
        floor, listed, size = listing_floor(double.url)
        if listed != n:
            raise RuntimeError(f"the double listed {listed:,} users, not {n:,}")
        print(f"    listing floor (GET + JSON decode, {size / 1e6:.0f} MB): {floor:.2f} s")
        result["listing_floor"] = floor
        dsn = server.fresh(database, template)
        policy = write_policy(WORK / "million.yaml", dsn, double.url)
        server.checkpoint()
        measured, outcome, served = run_sync(policy, double)
        check_users(server, database, expected, "first load")
        print(
            f"    first load  {measured.brief()}  (double {served:.2f} s CPU; "
            f"listed {'twice' if outcome.previewed else 'once'})"
        )
        result["first_load"] = record(measured, served)
        for index in range(args.million_repeats):
            server.settle(database, vacuum=VACUUM)
            measured, outcome, served = run_sync(policy, double)
            check_users(server, database, expected, "re-sync")
            if outcome.created or outcome.updated or outcome.changed:
                raise RuntimeError(f"the no-change re-sync changed something: {outcome}")
            if outcome.missing or outcome.not_taken != n - expected:
                raise RuntimeError(f"the re-sync counts users without email wrong: {outcome}")
            print(
                f"    re-sync {index + 1}   {measured.brief()}  (double {served:.2f} s CPU; "
                f"listed {'twice' if outcome.previewed else 'once'}; {outcome.missing:,} "
                f"missing, {outcome.not_taken:,} not taken)"
            )
            result["resyncs"].append(record(measured, served))
        result["listed_twice"] = outcome.previewed
        if args.profile:
            server.settle(database, vacuum=VACUUM)
            result["profile"] = profile_sync(policy, args.profile_lines)
    server.drop(database)
    walls = [r["wall"] for r in result["resyncs"]]
    rss = max(r["max_rss_mb"] for r in result["resyncs"])
    result.update(
        median=statistics.median(walls),
        rss_mb=rss,
        target_met=statistics.median(walls) <= RESYNC_TARGET_S,
        rss_met=rss <= RESYNC_RSS_MB,
    )
    print(
        f"    re-sync median of {len(walls)}: {result['median']:.2f} s: target <= "
        f"{RESYNC_TARGET_S:g} s {verdict(result['target_met'])}; peak RSS {rss:.0f} MB: "
        f"target <= {RESYNC_RSS_MB:g} MB {verdict(result['rss_met'])}"
    )
    return result


# -- (3) side by side with the per-user loop --------------------------------------------


def bench_loop(args: argparse.Namespace, server: Server, template: str) -> dict[str, Any]:
    n, pid = args.loop_users, os.getpid()
    sync_db, loop_db = f"bench_identity_sync_{pid}", f"bench_identity_loop_{pid}"
    expected = with_email(n)
    print(f"(3) loop: {n:,} Clerk users, the sync against a per-user loop")
    runs: dict[str, list[float]] = {"sync-empty": [], "loop-empty": [], "sync-same": []}
    runs["loop-same"] = []
    with Double(n) as double:
        floor = statistics.median([listing_floor(double.url)[0] for _ in range(5)])
        sync_dsn, loop_dsn = server.dsn(sync_db), server.dsn(loop_db)
        policy = write_policy(WORK / "loop.yaml", sync_dsn, double.url)
        sides: dict[str, Callable[[], Measured]] = {
            "sync": lambda: run_sync(policy, double)[0],
            "loop": lambda: measure(naive_command(double.url, loop_dsn)),
        }
        for index in range(args.repeats + 1):
            server.fresh(sync_db, template)
            server.fresh(loop_db, template)
            order = ["sync", "loop"] if index % 2 == 0 else ["loop", "sync"]
            timings: dict[str, float] = {}
            for phase in ("empty", "same"):
                if phase == "same":
                    server.settle(sync_db, loop_db, vacuum=VACUUM)
                for side in order:
                    server.checkpoint()
                    measured = sides[side]()
                    timings[f"{side}-{phase}"] = measured.wall
                    if side == "loop":
                        done = json.loads(measured.stdout)
                        if done["skipped"] != n - expected:
                            raise RuntimeError(f"the loop skipped {done['skipped']} users")
            check_users(server, sync_db, expected, "sync")
            check_users(server, loop_db, expected, "loop")
            if content_of(server, sync_db) != content_of(server, loop_db):
                raise RuntimeError("the sync and the loop wrote different users tables")
            label = "warm-up" if index == 0 else f"run {index}"
            print(
                f"    {label:8} empty: sync {timings['sync-empty']:5.2f} s, loop "
                f"{timings['loop-empty']:5.2f} s; no change: sync {timings['sync-same']:5.2f} s, "
                f"loop {timings['loop-same']:5.2f} s"
            )
            if index:
                for key, seconds in timings.items():
                    runs[key].append(seconds)
        profile = profile_sync(policy, args.profile_lines) if args.profile else None
    server.drop(sync_db)
    server.drop(loop_db)
    medians = {key: statistics.median(values) for key, values in runs.items()}
    ratios = {
        "empty": medians["loop-empty"] / medians["sync-empty"],
        "same": medians["loop-same"] / medians["sync-same"],
    }
    started = startup()
    result: dict[str, Any] = {
        "users": n,
        "runs": runs,
        "medians": medians,
        "ratios": ratios,
        "startup": started,
        "listing_floor": floor,
        "target_met": min(ratios.values()) >= LOOP_TARGET,
    }
    if profile is not None:
        result["profile"] = profile
    print(
        f"    medians of {args.repeats}: empty table: sync {medians['sync-empty']:.2f} s, loop "
        f"{medians['loop-empty']:.2f} s: {ratios['empty']:.2f}x; no change: sync "
        f"{medians['sync-same']:.2f} s, loop {medians['loop-same']:.2f} s: "
        f"{ratios['same']:.2f}x"
    )
    print(
        f"    start-up alone: `reconciler --version` {started:.2f} s; listing floor (GET + JSON "
        f"decode of every page) {floor:.2f} s: a sync doing nothing else would be "
        f"{medians['loop-empty'] / floor:.1f}x / {medians['loop-same'] / floor:.1f}x"
    )
    print(f"    target >= {LOOP_TARGET:g}x both ways: {verdict(result['target_met'])}")
    return result


# -- main -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Identity sync benchmarks: the Clerk double into a local PostgreSQL."
    )
    parser.add_argument("--only", choices=["first", "million", "loop"], help="one benchmark")
    add_server_option(parser)
    parser.add_argument("--first-users", type=int, default=100_000, help="(1) users")
    parser.add_argument("--repeats", type=int, default=5, help="(1), (3) measured runs")
    parser.add_argument(
        "--cold-runs",
        type=int,
        default=1,
        help="(1) runs against a double that renders "
        "each page on request, as the tests use it (default 1)",
    )
    parser.add_argument("--million-users", type=int, default=1_000_000, help="(2) users")
    parser.add_argument("--million-repeats", type=int, default=2, help="(2) re-syncs")
    parser.add_argument("--loop-users", type=int, default=10_000, help="(3) users")
    add_profile_options(parser, "also profile one sync of each", lines=15)
    add_json_option(parser)
    parser.add_argument("--serve", type=int, metavar="USERS", help=argparse.SUPPRESS)
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--naive", nargs=2, metavar=("URL", "DSN"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.serve is not None:
        return serve(args.serve, args.cold)
    if args.naive:
        return naive(*args.naive)
    WORK.mkdir(parents=True, exist_ok=True)
    reset_ledger(WORK)
    server = Server(args.server)
    benchmarks: dict[str, Callable[[argparse.Namespace, Server, str], dict[str, Any]]] = {
        "first": bench_first,
        "million": bench_million,
        "loop": bench_loop,
    }

    def run_all(results: dict[str, Any]) -> None:
        results["time"] = "/usr/bin/time -v" if TIME.is_file() else "wait4"
        results["server"] = server.value("SHOW server_version")
        # The schema once, by `reconciler apply`; every run starts from a copy of it.
        template = f"bench_identity_template_{os.getpid()}"
        dsn = server.fresh(template)
        policy = write_policy(WORK / "template.yaml", dsn, "http://127.0.0.1:9/v1")
        run([*reconciler_command(), "apply", "--yes", "--config", str(policy)])
        print(f"schema: {MIGRATIONS.relative_to(ROOT)} applied by `reconciler apply`\n")
        for name, bench in benchmarks.items():
            if args.only in (None, name):
                results[name] = bench(args, server, template)
                print()

    return run_benchmarks(
        "bench_identity",
        run_all,
        cleanup=server.drop_all,
        json_file=args.json,
        interrupted="dropping the databases",
    )


if __name__ == "__main__":
    sys.exit(main())
