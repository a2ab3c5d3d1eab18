"""Drift check of a real history: documenso's 163 Prisma migrations (``corpus.py`` pins and
rebuilds them into ``bench/work/corpus/``).

    python bench/bench_drift.py                # 3 runs each, then drop everything
    python bench/bench_drift.py --repeats 5

Setup: a fresh database ``bench_drift_documenso``, every migration applied with the Prisma
layout's own ``apply`` (no gate: the figures are the drift check's, not the apply's).

1. **No drift**: ``reconciler drift -c POLICY`` as a whole process, ``--repeats`` times: it
   must exit 0 with "no drift" (the database is exactly as its migrations left it). Wall
   and CPU time of the process (start-up, history, both catalog readings, the replay of all
   163 migrations on a scratch database and its drop), median and range.
2. **Drift found**: a column added as ``prisma db push`` would and an index dropped by hand;
   ``reconciler drift`` must exit 2 and say exactly those two.

3. **Fleet** (``--fleet N``, 0 to skip; default 200): N tenants, each a copy
   (``CREATE DATABASE ... TEMPLATE``) of the migrated database, all sharing the one history
   folder, checked one after another in one process as the daemon checks them
   (``check_drift``, cache cleared first). It must replay the history exactly once and find
   no drift on any tenant; the time of the whole fleet, of the first tenant (the replay) and
   the median of the others (their catalog only).

``--others`` also checks, once each, that the corpus's other Prisma histories (rallly,
formbricks, hoppscotch, umami) show no drift on a database their migrations built.

The scratch databases are the target's own (``rcl_scratch_documenso_...``); the script checks
that none is left behind, and drops the database it made however it ends.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from common import (
    Server,
    add_json_option,
    add_server_option,
    command_failed,
    reconciler_command,
    run_benchmarks,
    run_timed,
)
from corpus import HISTORIES, Prisma, materialise_prisma

BENCH = Path(__file__).resolve().parent
WORK = BENCH / "work" / "drift"
DATABASE = "bench_drift_documenso"
EXPECTED_DRIFT = [
    "  User.phone: in the database, created by no migration",
    "  Folder: index Folder_type_idx: dropped in the database, still created by the migrations",
]


def migrate(policy: Path) -> int:
    """Apply every migration of the policy's one target; how many."""
    sys.path.insert(0, str(BENCH.parent))
    from reconciler.db.connection import connect
    from reconciler.drift.replay import apply_in_order
    from reconciler.policy import load_policy
    from reconciler.source import open_layout

    target = load_policy(policy).targets[0]
    layout = open_layout(target.migrations)
    db = connect(target.database)
    try:
        apply_in_order(db, layout, layout.migrations(), target.timeouts)
    finally:
        db.close()
    return len(layout.migrations())


def drift(policy: Path, expect: int) -> Any:
    done = run_timed([*reconciler_command(), "drift", "-c", str(policy)])
    if done.code != expect:
        raise command_failed(done.command, done.code, done.stdout + done.stderr, (expect,))
    return done


SCRATCH = tuple(f"rcl_scratch_{h.name}_" for h in HISTORIES)


def write_policy(name: str, dsn: str, folder: Path) -> Path:
    policy = WORK / f"{name}.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\n"
        "targets:\n"
        f"  - name: {name}\n"
        f"    database: {dsn}\n"
        f"    migrations: {{layout: prisma, path: {folder}}}\n",
        encoding="utf-8",
    )
    return policy


def fleet(server: Server, template: str, folder: Path, tenants: int) -> dict[str, Any]:
    """``tenants`` copies of ``template`` sharing ``folder``, checked in one process."""
    import os
    import time

    from reconciler.drift import check_drift
    from reconciler.drift.replay import clear_cache, replay_count
    from reconciler.policy import load_policy

    # Named apart from bench_drift_* (the other benchmarks' databases and their clean-ups).
    names = [f"bfleet_{os.getpid()}_{i:03d}" for i in range(tenants)]
    started = time.perf_counter()
    for name in names:
        server.fresh(name, template=template)
    server.execute("CHECKPOINT")  # the copies' writes, flushed before the clock starts
    copied = time.perf_counter() - started
    policy = WORK / "fleet.yaml"
    policy.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n"
        + "".join(
            f"  - name: t{i:03d}\n    database: {server.dsn(name)}\n"
            f"    migrations: {{layout: prisma, path: {folder}}}\n"
            for i, name in enumerate(names)
        ),
        encoding="utf-8",
    )
    targets = load_policy(policy).targets
    clear_cache()
    before = replay_count()
    seconds = []
    started = time.perf_counter()
    for target in targets:
        one = time.perf_counter()
        report = check_drift(target)
        seconds.append(time.perf_counter() - one)
        if report.differences:
            raise RuntimeError(f"{target.name}: expected no drift, got {report.differences}")
    total = time.perf_counter() - started
    replays = replay_count() - before
    if replays != 1:
        raise RuntimeError(f"{tenants} tenants sharing one history replayed it {replays} times")
    rest = statistics.median(seconds[1:]) if len(seconds) > 1 else 0.0
    print(
        f"  fleet of {tenants}: {total:.2f} s, {replays} replay; first tenant {seconds[0]:.2f} s, "
        f"each other {rest:.3f} s median ({copied:.1f} s to copy the databases, not counted)"
    )
    for name in names:
        server.drop(name)
    return {"tenants": tenants, "wall": total, "replays": replays, "first": seconds[0],
            "other_median": rest, "copy": copied}  # fmt: skip


def others(server: Server) -> dict[str, Any]:
    """No drift on each other Prisma history of the corpus: one whole-process run each."""
    found: dict[str, Any] = {}
    for history in HISTORIES:
        if not isinstance(history, Prisma) or history.name == "documenso":
            continue
        database = f"bench_drift_{history.name}"
        policy = write_policy(history.name, server.fresh(database), materialise_prisma(history))
        count = migrate(policy)
        done = drift(policy, 0)
        print(f"  {history.name}: {count} migrations, {done.wall:.2f} s: {done.stdout.strip()}")
        found[history.name] = {"migrations": count, "wall": done.wall, "said": done.stdout}
        server.drop(database)
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_option(parser)
    add_json_option(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--others", action="store_true", help="also the other Prisma histories")
    parser.add_argument("--fleet", type=int, default=200, help="tenants sharing the history")
    args = parser.parse_args(argv)
    server = Server(args.server)
    (history,) = [h for h in HISTORIES if isinstance(h, Prisma) and h.name == "documenso"]

    def body(results: dict[str, Any]) -> None:
        folder = materialise_prisma(history)
        WORK.mkdir(parents=True, exist_ok=True)
        dsn = server.fresh(DATABASE)
        policy = write_policy("documenso", dsn, folder)
        count = migrate(policy)
        print(f"documenso: {count} migrations applied to {DATABASE}")
        runs = []
        for _ in range(args.repeats):
            done = drift(policy, 0)
            if "no drift" not in done.stdout:
                raise RuntimeError(f"expected no drift, got: {done.stdout}")
            runs.append((done.wall, done.cpu))
            print(
                f"  no drift: {done.wall:.2f} s wall, {done.cpu:.2f} s CPU: {done.stdout.strip()}"
            )
        walls = [w for w, _ in runs]
        cpus = [c for _, c in runs]
        results["migrations"] = count
        results["no_drift"] = {
            "wall_median": statistics.median(walls), "wall_min": min(walls),
            "wall_max": max(walls), "cpu_median": statistics.median(cpus),
        }  # fmt: skip
        if args.fleet:
            results["fleet"] = fleet(server, DATABASE, folder, args.fleet)
        server.execute('ALTER TABLE "User" ADD COLUMN phone text', DATABASE)
        server.execute('DROP INDEX "Folder_type_idx"', DATABASE)
        done = drift(policy, 2)
        said = done.stdout.splitlines()[1:]
        if said != EXPECTED_DRIFT:
            raise RuntimeError(f"expected {EXPECTED_DRIFT}, got {said}")
        print(f"  drift found: {done.wall:.2f} s wall:\n" + done.stdout.rstrip())
        results["drift_found"] = {"wall": done.wall, "said": said}
        server.drop(DATABASE)
        if args.others:
            results["others"] = others(server)
        left = server.leftovers("rcl_scratch_")
        left = [name for name in left if name.startswith(SCRATCH)]
        if left:
            raise RuntimeError(f"scratch databases left behind: {left}")
        print(json.dumps(results, indent=1))

    return run_benchmarks(
        "bench_drift.py", body, cleanup=server.drop_all, json_file=args.json,
        interrupted="databases dropped",
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
