"""``plan`` and ``status`` show schema drift, as ``drift`` says it, and ``plan`` shows the
drift guard's refusal before ``apply`` meets it; neither changes the database, nor creates a
SQLite file to look at, and their exit codes stay those of a plan and a status."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.conftest import PRISMA_PG, pg_query, scratch_databases
from tests.drift.history import write_history

Cli = Callable[..., Result]
INIT = {"20260101000000_init": 'CREATE TABLE "users" ("id" INTEGER PRIMARY KEY, "email" TEXT);\n'}
PHONE = {"20260102000000_phone": 'ALTER TABLE "users" ADD COLUMN "phone" TEXT;\n'}
PUSHED = "users.phone: in the database, created by no migration"
COLLIDES = (
    "nothing applied: 20260102000000_phone creates column users.phone, which the database "
    "already has outside the migrations (drift)"
)


def policy(folder: Path, url: str, path: Path, extra: str = "") -> Path:
    file = folder / "policy.yaml"
    file.write_text(
        "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n    environment: staging\n"
        f"    database: '{url}'\n    migrations: {{layout: prisma, path: {path}}}\n" + extra,
        encoding="utf-8",
    )
    return file


def pushed_sqlite(tmp_path: Path, cli: Cli, extra: str = "") -> tuple[Path, Path]:
    """A SQLite target at its head, then a ``db push`` of ``users.phone``."""
    folder = write_history(tmp_path / "migrations", "sqlite", INIT)
    config = policy(tmp_path, "sqlite:///shop.db", folder, extra)
    assert cli("apply", "-c", config, "--yes").exit_code == 0
    with sqlite3.connect(tmp_path / "shop.db") as db:
        db.execute('ALTER TABLE "users" ADD COLUMN "phone" TEXT')
    return config, folder


def dump(file: Path) -> list[str]:
    db = sqlite3.connect(file)
    try:
        return list(db.iterdump())
    finally:
        db.close()


def test_plan_and_status_say_drift_and_exit_as_before(tmp_path: Path, cli: Cli) -> None:
    config, _ = pushed_sqlite(tmp_path, cli)
    before = dump(tmp_path / "shop.db")
    plan = cli("plan", "-c", config)
    assert plan.exit_code == 0, plan.output  # in sync: drift is no pending change
    assert (
        "  schema drift      1 difference from the schema the applied migrations build "
        "(1 migration replayed)\n"
        f"    {PUSHED}\n"
    ) in plan.output
    status = cli("status", "-c", config)
    assert status.exit_code == 0, status.output
    assert (
        "  schema     1 difference from the schema the applied migrations build "
        f"(1 migration replayed)\n             {PUSHED}\n"
    ) in status.output
    (entry,) = json.loads(cli("status", "-c", config, "-o", "json").output)["targets"]
    assert entry["schema_drift"]["differences"] == [PUSHED]
    assert (entry["schema_drift"]["checked"], entry["schema_drift"]["count"]) == (True, 1)
    (planned,) = json.loads(cli("plan", "-c", config, "-o", "json").output)["targets"]
    assert planned["schema_drift"] == entry["schema_drift"]
    assert dump(tmp_path / "shop.db") == before


def test_no_drift_is_said_too(tmp_path: Path, cli: Cli) -> None:
    folder = write_history(tmp_path / "migrations", "sqlite", INIT)
    config = policy(tmp_path, "sqlite:///shop.db", folder)
    assert cli("apply", "-c", config, "--yes").exit_code == 0
    result = cli("plan", "-c", config)
    assert "  schema drift      none (1 migration replayed)\n" in result.output
    assert result.exit_code == 0
    # status: the history's own drift and the schema's, each on a line that says which.
    shown = cli("status", "-c", config).output
    assert "  history    as applied\n  schema     no drift (1 migration replayed)\n" in shown


def test_plan_shows_the_guards_refusal_of_a_colliding_migration(tmp_path: Path, cli: Cli) -> None:
    config, folder = pushed_sqlite(tmp_path, cli, "    drift: report\n")
    write_history(folder, "sqlite", PHONE)
    plan = cli("plan", "-c", config)
    assert plan.exit_code == 1, plan.output  # blocked, as every blocked plan
    assert f"  x blocked (SchemaDrift): {COLLIDES}" in plan.output
    assert plan.output.rstrip().endswith("Plan: blocked (SchemaDrift); nothing can be applied.")
    (entry,) = json.loads(cli("status", "-c", config, "-o", "json").output)["targets"]
    assert entry["blocker"].startswith(COLLIDES)
    apply = cli("apply", "-c", config, "--yes")  # what apply then says
    assert apply.exit_code == 1
    assert COLLIDES in apply.output


def test_plan_under_block_holds_every_migration(tmp_path: Path, cli: Cli) -> None:
    config, folder = pushed_sqlite(tmp_path, cli, "    drift: block\n")
    write_history(folder, "sqlite", {"20260102000000_notes": 'CREATE TABLE "notes" ("id" INT);\n'})
    plan = cli("plan", "-c", config, "-o", "json")
    assert plan.exit_code == 1
    (entry,) = json.loads(plan.output)["targets"]
    assert entry["blocker"]["reason"] == "SchemaDrift"
    assert entry["blocker"]["message"].startswith(
        f"nothing applied: drift: block, and 1 difference from the schema the applied "
        f"migrations build: {PUSHED}; capture it (`reconciler drift --config "
    )


def test_a_pending_migration_without_collision_is_planned_as_before(
    tmp_path: Path, cli: Cli
) -> None:
    config, folder = pushed_sqlite(tmp_path, cli, "    drift: report\n")
    write_history(folder, "sqlite", {"20260102000000_notes": 'CREATE TABLE "notes" ("id" INT);\n'})
    plan = cli("plan", "-c", config)
    assert plan.exit_code == 2, plan.output
    assert PUSHED in plan.output
    assert "blocked" not in plan.output


def test_no_check_without_a_database_and_none_is_created(tmp_path: Path, cli: Cli) -> None:
    folder = write_history(tmp_path / "migrations", "sqlite", INIT)
    config = policy(tmp_path, "sqlite:///shop.db", folder)
    plan = cli("plan", "-c", config)
    assert plan.exit_code == 2
    assert "  schema drift      not checked: the database does not exist yet\n" in plan.output
    status = cli("status", "-c", config)
    assert "  schema     not checked: the database does not exist yet\n" in status.output
    assert not (tmp_path / "shop.db").exists()


def test_no_drift_flag_and_drift_checks_off_skip_the_replay(tmp_path: Path, cli: Cli) -> None:
    config, _ = pushed_sqlite(tmp_path, cli)
    result = cli("plan", "-c", config, "--no-drift")
    assert "  schema drift      not checked: --no-drift\n" in result.output
    assert PUSHED not in result.output
    status = cli("status", "-c", config, "--no-drift", "-o", "json")
    (entry,) = json.loads(status.output)["targets"]
    assert (entry["schema_drift"]["checked"], entry["schema_drift"]["skipped"]) == (
        False,
        "--no-drift",
    )
    off, _ = pushed_sqlite(tmp_path / "off", cli, "    schedule: {drift: null}\n")
    result = cli("plan", "-c", off)
    assert "not checked: drift checks are off (schedule.drift: null)" in result.output


def test_a_history_that_cannot_be_replayed_is_said_and_holds_pending_steps(
    tmp_path: Path, cli: Cli
) -> None:
    config, folder = pushed_sqlite(tmp_path, cli, "    drift: report\n")
    script = folder / "20260101000000_init" / "migration.sql"
    script.write_text("CREATE TABLE broken (;\n", encoding="utf-8")  # edited after it ran
    status = cli("status", "-c", config)
    assert status.exit_code == 0, status.output
    assert "  schema     cannot check: cannot rebuild the schema the migrations produce: " in (
        status.output
    )
    write_history(folder, "sqlite", {"20260102000000_notes": 'CREATE TABLE "notes" ("id" INT);\n'})
    plan = cli("plan", "-c", config)
    assert plan.exit_code == 1
    assert "x blocked (InvalidSource): nothing applied: cannot check for drift: " in plan.output


def test_many_differences_are_counted_past_the_first_five(tmp_path: Path, cli: Cli) -> None:
    config, _ = pushed_sqlite(tmp_path, cli)
    with sqlite3.connect(tmp_path / "shop.db") as db:
        for name in "abcdef":
            db.execute(f'CREATE TABLE "{name}" ("id" INTEGER)')
    result = cli("plan", "-c", config)
    lines = result.output.splitlines()
    head = lines.index(
        "  schema drift      7 differences from the schema the applied migrations build "
        "(1 migration replayed)"
    )
    assert lines[head + 6].startswith("    ... and 2 more (`reconciler drift --config ")


def test_postgres_plan_shows_drift_and_leaves_no_scratch_database(
    pg_url: str, tmp_path: Path, cli: Cli
) -> None:
    config = policy(tmp_path, pg_url, PRISMA_PG)
    assert cli("apply", "-c", config, "-y").exit_code == 0
    pg_query(pg_url, "ALTER TABLE users ADD COLUMN phone text")
    result = cli("plan", "-c", config)
    assert result.exit_code == 0, result.output
    assert "(7 migrations replayed)\n" in result.output
    assert f"    {PUSHED}\n" in result.output
    assert scratch_databases(pg_url) == []


def test_a_role_without_createdb_still_gets_its_plan(pg_url: str, tmp_path: Path, cli: Cli) -> None:
    """The check needs a scratch database; without CREATEDB the plan is still made and
    says why there is no check, and blocks its steps as the apply would fail."""
    import secrets

    role = f"rcl_plan_{secrets.token_hex(4)}"
    folder = write_history(tmp_path / "migrations", "postgresql", INIT)
    assert cli("apply", "-c", policy(tmp_path, pg_url, folder), "-y").exit_code == 0
    pg_query(pg_url, f"CREATE ROLE {role} LOGIN")
    try:
        pg_query(pg_url, f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
        limited = pg_url.replace("postgres@", f"{role}@", 1)
        config = policy(tmp_path, limited, folder)
        plan = cli("plan", "-c", config)
        assert plan.exit_code == 0, plan.output
        assert "  schema drift      cannot check: cannot create the scratch database " in (
            plan.output
        )
        assert "(the role needs CREATEDB)" in plan.output
        write_history(folder, "postgresql", PHONE)
        plan = cli("plan", "-c", config)
        assert plan.exit_code == 1
        assert "x blocked (BackupFailed): nothing applied: cannot check for drift: " in (
            plan.output
        )
    finally:
        pg_query(pg_url, f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        pg_query(pg_url, f"DROP ROLE {role}")


def test_apply_shows_the_drift_before_it_applies_and_replays_once(tmp_path: Path, cli: Cli) -> None:
    from reconciler.drift.replay import clear_cache, replay_count

    config, folder = pushed_sqlite(tmp_path, cli, "    drift: report\n")
    clear_cache()
    before = replay_count()
    result = cli("apply", "-c", config, "-y")  # in sync: no check, no replay
    assert result.exit_code == 0
    assert "schema drift" not in result.output
    assert replay_count() == before
    write_history(folder, "sqlite", PHONE)
    result = cli("apply", "-c", config, "-y")
    assert result.exit_code == 1
    preview, outcome = result.output.split("Plan: blocked (SchemaDrift)")
    assert f"    {PUSHED}\n" in preview
    assert f"  x blocked (SchemaDrift): {COLLIDES}" in preview
    assert f"Apply stopped (SchemaDrift): shop: {COLLIDES}" in outcome
    assert replay_count() == before + 1  # the guard's check reused the preview's replay


def test_status_shows_the_last_recorded_drift_check_too(tmp_path: Path, cli: Cli) -> None:
    config, _ = pushed_sqlite(tmp_path, cli)
    status = cli("status", "-c", config, "--no-drift")
    assert "  drift run  never\n" in status.output
    assert cli("run", "-c", config, "--once").exit_code == 1  # SchemaDrift
    status = cli("status", "-c", config, "--no-drift")
    (line,) = [ln for ln in status.output.splitlines() if ln.startswith("  drift run ")]
    assert line.endswith(
        f"UTC via once: SchemaDrift (1 difference from the schema the applied migrations "
        f"build: {PUSHED}; drift: report, reported only)"
    )
    (entry,) = json.loads(cli("status", "-c", config, "-o", "json").output)["targets"]
    assert entry["drift_last_run"]["outcome"] == "SchemaDrift"
