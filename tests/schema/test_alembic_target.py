"""Alembic's ``env.py`` is the application's code: the connections it opens are told apart
by what the server reports, not by how their URL is spelled. One that reaches the target
however it is spelled is verified; one that reaches another database is refused before
anything runs there; and a revision counts as applied only when the target's own
``alembic_version`` names it, after a transaction that was checked."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.act import reconcile_schema
from reconciler.policy import Policy, load_policy
from reconciler.source.alembic_target import same_database
from tests.schema.alembic_scripts import (
    add_revision,
    alembic_policy,
    create_table,
    ledger_of,
    query,
    script_dir,
    tables,
    versions,
)

WritePolicy = Callable[[str], Path]

# As many applications' env.py: the URL from the application's own settings (here an
# environment variable), the one Alembic is given only as a fallback.
ENV_PY = '''\
"""Alembic environment of an application that reads its own settings."""

import os
import threading

from alembic import context
from sqlalchemy import create_engine, pool

config = context.config
url = os.environ.get("APP_DATABASE_URL") or config.get_main_option("sqlalchemy.url")


def run_migrations_online() -> None:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            context.configure(connection=connection, target_metadata=None)
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    context.configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
elif os.environ.get("APP_MIGRATE_IN_THREAD"):
    worker = threading.Thread(target=run_migrations_online)
    worker.start()
    worker.join()
else:
    run_migrations_online()
'''


def with_users(tmp_path: Path, url: str) -> Path:
    """A script directory: ``v1users`` creates 50 users; ``v2audit`` creates ``audit`` with
    a trigger (SQLite) or a rule (PostgreSQL) that deletes 49 of them as it writes a row."""
    folder = script_dir(tmp_path)
    (folder / "env.py").write_text(ENV_PY, encoding="utf-8")
    add_revision(
        folder,
        "v1users",
        None,
        f"""
        {create_table("users", "email")}
        op.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                   "WHERE i < 50) INSERT INTO users (id, email) SELECT i, 'u' FROM n")
        """,
    )
    if url.startswith("sqlite"):
        purge = (
            'op.execute("CREATE TRIGGER purge AFTER INSERT ON audit '
            'BEGIN DELETE FROM users WHERE id > 1; END")'
        )
    else:
        purge = (
            'op.execute("CREATE RULE purge AS ON INSERT TO audit '
            'DO ALSO DELETE FROM users WHERE id > 1")'
        )
    add_revision(
        folder,
        "v2audit",
        "v1users",
        f"""
        {create_table("audit", "what")}
        {purge}
        op.execute("INSERT INTO audit (id, what) VALUES (1, 'x')")
        """,
    )
    return folder


def apply(policy: Policy) -> tuple[str, str]:
    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    return outcome.reason, outcome.message


def test_env_py_that_spells_the_host_its_own_way_is_still_verified(
    pg_url: str, tmp_path: Path, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "@127.0.0.1:" in pg_url
    monkeypatch.setenv("APP_DATABASE_URL", pg_url.replace("@127.0.0.1:", "@localhost:"))
    _, policy = alembic_policy(write_policy, pg_url, with_users(tmp_path, pg_url))

    reason, message = apply(policy)

    assert reason == "VerifyFailed", message
    assert "users: 49 rows deleted, which no approval covers" in message
    assert versions(pg_url) == {"v1users"}
    assert query(pg_url, "SELECT count(*) FROM users") == [(50,)]
    assert "audit" not in tables(pg_url)


def test_env_py_over_a_unix_socket_is_still_verified(
    pg_url: str, tmp_path: Path, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    ((sockets,),) = query(pg_url, "SELECT current_setting('unix_socket_directories')")
    directory = str(sockets).split(",")[0].strip()
    if not directory or not Path(directory).is_dir():
        pytest.skip("the server listens on no unix socket here")
    name = pg_url.rsplit("/", 1)[1]
    monkeypatch.setenv(
        "APP_DATABASE_URL", f"postgresql+psycopg://postgres@/{name}?host={directory}"
    )
    _, policy = alembic_policy(write_policy, pg_url, with_users(tmp_path, pg_url))

    reason, message = apply(policy)

    assert reason == "VerifyFailed", message
    assert query(pg_url, "SELECT count(*) FROM users") == [(50,)]


def test_on_sqlite_another_name_for_the_same_file_is_still_verified(
    tmp_path: Path, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    (tmp_path / "app.db").touch()
    os.link(tmp_path / "app.db", tmp_path / "same.db")  # one file, two names
    monkeypatch.setenv("APP_DATABASE_URL", f"sqlite:///{tmp_path / 'same.db'}")
    _, policy = alembic_policy(write_policy, url, with_users(tmp_path, url))

    reason, message = apply(policy)

    assert reason == "VerifyFailed", message
    assert "users: 49 rows deleted, which no approval covers" in message
    assert versions(url) == {"v1users"}
    assert query(url, "SELECT count(*) FROM users") == [(50,)]


def test_env_py_that_migrates_another_database_is_refused_before_it_runs_there(
    pg_url: str,
    other_pg_url: str,
    tmp_path: Path,
    write_policy: WritePolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = other_pg_url.replace("postgres@", "postgres:s3cret-pw@")
    monkeypatch.setenv("APP_DATABASE_URL", other)
    _, policy = alembic_policy(write_policy, pg_url, with_users(tmp_path, pg_url))

    reason, message = apply(policy)

    assert reason == "ApplyFailed", message
    other_name = other_pg_url.rsplit("/", 1)[1]
    assert f"env.py connected to postgresql://postgres:***@127.0.0.1:5432/{other_name} " in message
    target_name = pg_url.rsplit("/", 1)[1]
    assert f"(database '{other_name}'), not to the database '{target_name}' being" in message
    assert "refused before anything ran there" in message
    assert "s3cret-pw" not in message
    assert tables(other_pg_url) == set()  # nothing committed there
    assert tables(pg_url) == set()


def test_on_sqlite_env_py_that_migrates_another_file_is_refused(
    tmp_path: Path, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("APP_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    _, policy = alembic_policy(write_policy, url, with_users(tmp_path, url))

    reason, message = apply(policy)

    assert reason == "ApplyFailed", message
    assert f"env.py connected to sqlite:///{tmp_path / 'other.db'}, not to the sqlite" in message
    assert tables(f"sqlite:///{tmp_path / 'other.db'}") == set()
    assert "users" not in tables(url)


@pytest.mark.parametrize("where", ["target", "other"])
def test_a_revision_run_out_of_sight_is_never_reported_applied(
    where: str,
    pg_url: str,
    other_pg_url: str,
    tmp_path: Path,
    write_policy: WritePolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """env.py migrates in a thread of its own, where no transaction is checked: on another
    database, the target's alembic_version does not move; on the target, it moves with no
    checked transaction. Either way the run stops and says so."""
    monkeypatch.setenv("APP_MIGRATE_IN_THREAD", "1")
    monkeypatch.setenv("APP_DATABASE_URL", pg_url if where == "target" else other_pg_url)
    folder = script_dir(tmp_path)
    (folder / "env.py").write_text(ENV_PY, encoding="utf-8")
    add_revision(folder, "v1users", None, create_table("users", "email"))
    _, policy = alembic_policy(write_policy, pg_url, folder)

    reason, message = apply(policy)

    assert reason == "ApplyFailed", message
    if where == "other":
        assert "target's alembic_version does not name revision 'v1users'" in message
        assert "users" not in tables(pg_url)
    else:
        assert "committed outside any transaction" in message
        assert "not verified" in message


def test_a_rehearsal_never_lets_env_py_migrate_the_live_database(
    pg_url: str, tmp_path: Path, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rehearsal gives env.py the scratch copy's URL; an env.py that reads the live
    database's URL from its own settings would migrate production in the rehearsal's name."""
    monkeypatch.setenv("APP_DATABASE_URL", pg_url)
    folder = script_dir(tmp_path)
    (folder / "env.py").write_text(ENV_PY, encoding="utf-8")
    add_revision(folder, "v1users", None, create_table("users", "email"))
    path = write_policy(
        f"""
        ledger: sqlite:///ledger.db
        targets:
          - name: app
            database: {pg_url}
            migrations: {{layout: alembic, path: {folder}}}
            backup: {{driver: pg_dump, dir: {tmp_path / "backups"}}}
            rehearse: true
        """
    )

    reason, message = apply(load_policy(path, environ={}))

    assert reason == "RehearsalFailed", message
    live = pg_url.rsplit("/", 1)[1]
    assert f"(database '{live}'), not to the database 'rcl_scratch_" in message
    assert tables(pg_url) == set()  # nothing of the revision ran on the live database


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        (
            ("postgresql", "app", "5432", "t0", "71"),
            ("postgresql", "app", "5432", "t0", "71"),
            True,
        ),
        # A role without the right to pg_control_system() reads no system identifier.
        (
            ("postgresql", "app", "5432", "t0", None),
            ("postgresql", "app", "5432", "t0", "71"),
            True,
        ),
        (
            ("postgresql", "app", "5432", "t0", "71"),
            ("postgresql", "other", "5432", "t0", "71"),
            False,
        ),
        (
            ("postgresql", "app", "5432", "t0", "71"),
            ("postgresql", "app", "5433", "t1", "72"),
            False,
        ),
        (("sqlite", 2049, 1234), ("sqlite", 2049, 1235), False),
    ],
)
def test_what_is_unknown_on_one_side_is_left_out_of_the_comparison(
    a: tuple[object, ...], b: tuple[object, ...], same: bool
) -> None:
    assert same_database(a, b) is same


def test_a_loss_in_an_autocommit_block_is_reported_as_in_effect(
    pg_url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    """``autocommit_block`` (for CREATE INDEX CONCURRENTLY) commits each statement as it
    runs: what it loses is measured at its end, and said to be in effect, not rolled back."""
    folder = with_users(tmp_path, pg_url)
    (folder / "env.py").write_text(ENV_PY, encoding="utf-8")
    add_revision(
        folder,
        "v2audit",
        "v1users",
        f"""
        {create_table("audit", "what")}
        op.execute("CREATE RULE purge AS ON INSERT TO audit DO ALSO DELETE FROM users WHERE id > 1")
        with op.get_context().autocommit_block():
            op.execute("INSERT INTO audit (id, what) VALUES (1, 'x')")
        """,
    )
    _, policy = alembic_policy(write_policy, pg_url, folder)

    reason, message = apply(policy)

    assert reason == "VerifyFailed", message
    assert "users: 49 rows deleted" in message
    assert "the loss is in effect" in message
    assert "rolled back" not in message
    assert versions(pg_url) == {"v1users"}
