"""Replicas started together on a fresh ledger: how many fail to start.

    python bench/replicas_fresh_ledger.py                  # 3 replicas, 10 rounds
    python bench/replicas_fresh_ledger.py --replicas 4 --rounds 20

Each round creates a fresh, empty PostgreSQL database ``bench_replicas_ledger`` for the
ledger and starts ``--replicas`` real ``reconciler run`` processes at once, each with a
policy of its own that names that ledger, one SQLite target shared by all (the example
Prisma history; ``schedule: {schema: 1h, identity: null}``: one run, by the leader) and its
own port on 127.0.0.1. A replica has started when its ``/readyz`` answers 200; it has
failed when it exits first, or is not ready after ``--ready-timeout`` seconds. Then every
replica gets SIGTERM (and must exit 0 within 30 s, else it is killed and counted as a
failure), and the ledger must hold one ``alembic_version`` row, at the ledger's head. The
database is dropped after each round, and at the end also after a failure, Ctrl-C or
SIGTERM; work files (policies, logs) go to bench/work/replicas/.

The figure: replicas that failed, of all started, and what the failed ones said. Every
round stops by itself: nothing waits longer than ``--ready-timeout`` plus 30 s.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

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
WORK = BENCH / "work" / "replicas"
HISTORY = ROOT / "examples" / "shop" / "prisma" / "migrations"
LEDGER = "bench_replicas_ledger"
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ready(port: int) -> bool:
    """``/readyz`` answers 200 (the ledger is open and reachable)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        conn.request("GET", "/readyz")
        return conn.getresponse().status == 200
    except OSError:
        return False
    finally:
        conn.close()


def write_policy(path: Path, ledger: str, port: int) -> None:
    path.write_text(
        f"ledger: {ledger}\n"
        f"server: {{listen: '127.0.0.1:{port}'}}\n"
        "targets:\n"
        "  - name: shop\n"
        "    environment: development\n"
        f"    database: sqlite:///{path.parent / 'shop.db'}\n"
        f"    migrations: {{layout: prisma, path: {HISTORY}}}\n"
        "    schedule: {schema: 1h, identity: null}\n",
        encoding="utf-8",
    )


def last_line(log: Path) -> str:
    lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    return lines[-1][:300] if lines else "(no output)"


def one_round(server: Server, index: int, replicas: int, timeout: float) -> dict[str, Any]:
    """Start ``replicas`` processes at once on a fresh ledger; what became of each."""
    folder = WORK / f"round{index}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    ledger = server.fresh(LEDGER)
    ports = [free_port() for _ in range(replicas)]
    logs = [folder / f"replica{k}.log" for k in range(replicas)]
    for k, port in enumerate(ports):
        write_policy(folder / f"replica{k}.yaml", ledger, port)
    outputs = [log.open("w") for log in logs]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [*reconciler_command(), "run", "--config", str(folder / f"replica{k}.yaml")],
            cwd=folder,
            stdout=outputs[k],
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        for k in range(replicas)
    ]
    failures: list[str] = []
    ready_after: list[float] = []
    try:
        waiting = set(range(replicas))
        deadline = started + timeout
        while waiting and time.perf_counter() < deadline:
            for k in sorted(waiting):
                if processes[k].poll() is not None:
                    waiting.discard(k)
                    failures.append(f"exited {processes[k].returncode}: {last_line(logs[k])}")
                elif ready(ports[k]):
                    waiting.discard(k)
                    ready_after.append(time.perf_counter() - started)
            time.sleep(0.05)
        failures += [f"not ready after {timeout:.0f} s" for _ in waiting]
        running = [p for p in processes if p.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        for process in running:
            try:
                code = process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                code = -9
            if code != 0:
                failures.append(f"exited {code} after SIGTERM")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for output in outputs:
            output.close()
    with server.connect(LEDGER) as conn:
        try:
            versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
        except Exception:  # no table: no replica migrated the ledger
            versions = []
    server.drop(LEDGER)
    return {"failures": failures, "ready_after": ready_after, "versions": versions}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=3, help="processes started at once")
    parser.add_argument("--rounds", type=int, default=10, help="fresh ledgers, one per round")
    parser.add_argument(
        "--ready-timeout", type=float, default=60.0, help="seconds a replica has to be ready"
    )
    add_server_option(parser)
    add_json_option(parser)
    args = parser.parse_args()
    server = Server(args.server)
    from reconciler.ledger.store import HEAD

    def body(results: dict[str, Any]) -> None:
        results.update(replicas=args.replicas, rounds=args.rounds, load=load_average())
        print(
            f"{args.rounds} rounds of {args.replicas} `reconciler run` on a fresh ledger "
            f"({load_average()})"
        )
        failed, started, said, bad_heads = 0, 0, Counter[str](), 0
        ready_after: list[float] = []
        for index in range(args.rounds):
            outcome = one_round(server, index, args.replicas, args.ready_timeout)
            started += args.replicas
            failed += len(outcome["failures"])
            said.update(outcome["failures"])
            ready_after += outcome["ready_after"]
            at_head = outcome["versions"] == [HEAD]
            bad_heads += not at_head
            print(
                f"  round {index + 1:>2}: {len(outcome['failures'])} of {args.replicas} "
                f"failed; ledger {'at head' if at_head else outcome['versions']}"
            )
        median = statistics.median(ready_after) if ready_after else float("nan")
        slowest = max(ready_after, default=float("nan"))
        print(f"failed: {failed} of {started} replicas ({100 * failed / started:.0f}%)")
        print(f"ledger not at head once after a round: {bad_heads} of {args.rounds}")
        print(f"ready after start: median {median:.2f} s, slowest {slowest:.2f} s")
        for message, count in said.most_common():
            print(f"  {count} x {message}")
        results.update(
            failed=failed,
            started=started,
            messages=dict(said),
            ledger_not_at_head=bad_heads,
            ready_median_s=median,
            ready_max_s=slowest,
        )

    return run_benchmarks(
        "replicas_fresh_ledger",
        body,
        cleanup=server.drop_all,
        json_file=args.json,
        interrupted="its database was dropped",
    )


if __name__ == "__main__":
    sys.exit(main())
