"""The Alembic layout end to end on real PostgreSQL and SQLite, through the public engine:
fresh and partly migrated databases, branches and merges, ``depends_on``, failures, and
histories or policies that name revisions the script directory does not have."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config

from reconciler.act import plan_target, reconcile_schema
from reconciler.errors import SourceError
from reconciler.source.alembic import AlembicLayout
from tests.schema.alembic_scripts import (
    add_revision,
    alembic_policy,
    columns,
    create_table,
    ledger_of,
    query,
    script_dir,
    tables,
    versions,
)

WritePolicy = Callable[[str], Path]
LINEAR = ["u1users", "u2names", "u3orders", "u4seed"]


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh empty database of each kind, as a URL."""
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'app.db'}"


def linear_history(tmp_path: Path) -> Path:
    """Four revisions in a line: a table, a column, another table, a row."""
    folder = script_dir(tmp_path)
    add_revision(folder, "u1users", None, create_table("users", "email"), message="users")
    add_revision(
        folder, "u2names", "u1users", "op.add_column('users', sa.Column('name', sa.Text()))"
    )
    add_revision(folder, "u3orders", "u2names", create_table("orders", "total"))
    add_revision(
        folder,
        "u4seed",
        "u3orders",
        "op.execute(\"INSERT INTO users (id, email, name) VALUES (1, 'a@example.com', 'A')\")",
    )
    return folder


def test_alembic_fresh_database_applies_every_revision_in_order(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = linear_history(tmp_path)
    _, policy = alembic_policy(write_policy, url, folder)
    target = policy.targets[0]
    ledger = ledger_of(policy)

    plan = plan_target(target)
    assert [s.migration.id for s in plan.steps] == LINEAR
    assert (plan.live_revision, plan.desired_revision) == (None, "u4seed")
    assert plan.steps[0].migration.name == "users"
    assert tables(url) == set(), "planning must not touch the database"

    outcome = reconcile_schema(target, ledger, trigger="test", source="policy.yaml")

    assert outcome.reason == "InSync", outcome.message
    assert [r.step.migration.id for r in outcome.results] == LINEAR
    assert outcome.applied == 4
    assert {"users", "orders", "alembic_version"} <= tables(url)
    assert columns(url, "users") == ["id", "email", "name"]
    assert columns(url, "orders") == ["id", "total"]
    assert query(url, "SELECT id, email, name FROM users") == [(1, "a@example.com", "A")]
    assert versions(url) == {"u4seed"}

    run = ledger.runs("app")[0]
    assert (run.id, run.outcome, run.trigger, run.source) == (
        outcome.run_id,
        "InSync",
        "test",
        "policy.yaml",
    )
    steps = ledger.steps(run.id)
    assert [s.migration for s in steps] == LINEAR, "one step per revision, parents first"
    for step in steps:
        source = (folder / "versions" / f"{step.migration}.py").read_bytes()
        assert step.checksum == hashlib.sha256(source).hexdigest()
        assert (step.outcome, step.error) == ("applied", None)
        assert step.finished_at is not None
        assert step.duration_seconds is not None

    again = reconcile_schema(target, ledger, trigger="test", source="policy.yaml")
    assert (again.reason, again.results) == ("InSync", ())
    assert ledger.steps(again.run_id or 0) == []
    assert ledger.runs("app")[0].outcome == "InSync"
    assert plan_target(target).in_sync
    assert versions(url) == {"u4seed"}
    assert query(url, "SELECT count(*) FROM users") == [(1,)]
    ledger.close()


def test_alembic_partly_migrated_database_gets_only_the_rest(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = linear_history(tmp_path)
    _, middle = alembic_policy(write_policy, url, folder, revision="u2names")
    ledger = ledger_of(middle)

    first = reconcile_schema(middle.targets[0], ledger, trigger="test", source="policy.yaml")

    assert first.reason == "InSync", first.message
    assert [s.migration for s in ledger.steps(first.run_id or 0)] == ["u1users", "u2names"]
    assert versions(url) == {"u2names"}
    assert columns(url, "users") == ["id", "email", "name"]
    assert "orders" not in tables(url)

    _, head = alembic_policy(write_policy, url, folder)
    plan = plan_target(head.targets[0])
    assert [s.migration.id for s in plan.steps] == ["u3orders", "u4seed"]
    assert (plan.live_revision, plan.desired_revision) == ("u2names", "u4seed")
    assert plan.drift == ()

    rest = reconcile_schema(head.targets[0], ledger, trigger="test", source="policy.yaml")

    assert rest.reason == "InSync", rest.message
    steps = ledger.steps(rest.run_id or 0)
    assert [(s.migration, s.outcome) for s in steps] == [
        ("u3orders", "applied"),
        ("u4seed", "applied"),
    ]
    assert versions(url) == {"u4seed"}
    assert "orders" in tables(url)
    assert query(url, "SELECT count(*) FROM users") == [(1,)]
    ledger.close()


def branched_history(tmp_path: Path, *, merge: bool) -> Path:
    """A root, two branches from it, and optionally the revision that merges them."""
    folder = script_dir(tmp_path)
    add_revision(folder, "b0root", None, create_table("accounts"))
    add_revision(folder, "b1left", "b0root", create_table("left_side", "note"))
    add_revision(folder, "b2right", "b0root", create_table("right_side", "note"))
    if merge:
        add_merge(folder)
    return folder


def add_merge(folder: Path) -> Path:
    return add_revision(
        folder,
        "b3merge",
        ("b1left", "b2right"),
        'op.execute("INSERT INTO accounts (id) VALUES (7)")',
        message="merge left and right",
    )


def test_alembic_both_branches_give_two_heads_and_the_merge_gives_one(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = branched_history(tmp_path, merge=False)
    _, heads = alembic_policy(write_policy, url, folder, revision="heads")
    ledger = ledger_of(heads)

    split = reconcile_schema(heads.targets[0], ledger, trigger="test", source="policy.yaml")

    assert split.reason == "InSync", split.message
    order = [s.migration for s in ledger.steps(split.run_id or 0)]
    assert order[0] == "b0root"
    assert sorted(order[1:]) == ["b1left", "b2right"]
    assert versions(url) == {"b1left", "b2right"}, "alembic_version holds both heads"
    assert {"accounts", "left_side", "right_side"} <= tables(url)
    split_plan = plan_target(heads.targets[0])
    assert split_plan.in_sync
    assert split_plan.desired_revision == split_plan.live_revision == "b1left, b2right"

    add_merge(folder)
    plan = plan_target(heads.targets[0])
    assert [s.migration.id for s in plan.steps] == ["b3merge"]
    assert plan.live_revision == "b1left, b2right"
    assert plan.desired_revision == "b3merge"

    merged = reconcile_schema(heads.targets[0], ledger, trigger="test", source="policy.yaml")

    assert merged.reason == "InSync", merged.message
    assert [s.migration for s in ledger.steps(merged.run_id or 0)] == ["b3merge"]
    assert versions(url) == {"b3merge"}, "the merge leaves one head"
    assert query(url, "SELECT id FROM accounts") == [(7,)]
    assert plan_target(heads.targets[0]).in_sync
    ledger.close()


def test_alembic_branch_tips_one_at_a_time_then_head_applies_only_the_merge(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = branched_history(tmp_path, merge=True)
    _, left = alembic_policy(write_policy, url, folder, revision="b1left")
    ledger = ledger_of(left)

    reconcile_schema(left.targets[0], ledger, trigger="test", source="policy.yaml")
    assert versions(url) == {"b1left"}
    assert "right_side" not in tables(url)

    _, right = alembic_policy(write_policy, url, folder, revision="b2right")
    assert [s.migration.id for s in plan_target(right.targets[0]).steps] == ["b2right"]
    tip = reconcile_schema(right.targets[0], ledger, trigger="test", source="policy.yaml")
    assert tip.reason == "InSync", tip.message
    assert versions(url) == {"b1left", "b2right"}
    assert "right_side" in tables(url)

    _, head = alembic_policy(write_policy, url, folder, revision="head")
    plan = plan_target(head.targets[0])
    assert [s.migration.id for s in plan.steps] == ["b3merge"]
    assert plan.live_revision == "b1left, b2right"

    merged = reconcile_schema(head.targets[0], ledger, trigger="test", source="policy.yaml")
    assert [r.step.migration.id for r in merged.results] == ["b3merge"]
    assert versions(url) == {"b3merge"}
    ledger.close()


def test_alembic_fresh_database_with_branches_applies_parents_before_the_merge(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = branched_history(tmp_path, merge=True)
    _, policy = alembic_policy(write_policy, url, folder)
    ledger = ledger_of(policy)

    outcome = reconcile_schema(policy.targets[0], ledger, trigger="test", source="policy.yaml")

    assert outcome.reason == "InSync", outcome.message
    order = [s.migration for s in ledger.steps(outcome.run_id or 0)]
    assert len(order) == 4
    assert order[0] == "b0root"
    assert order[-1] == "b3merge"
    assert versions(url) == {"b3merge"}
    assert {"accounts", "left_side", "right_side"} <= tables(url)
    ledger.close()


def depends_on_history(tmp_path: Path, dependency: str) -> Path:
    """Two independent branches; the second's next revision needs the first's table."""
    folder = script_dir(tmp_path)
    add_revision(folder, "d1users", None, create_table("members"), branch_labels=("members",))
    add_revision(folder, "d1orders", None, create_table("baskets"), branch_labels=("baskets",))
    add_revision(
        folder,
        "d2orders",
        "d1orders",
        "op.create_table('basket_owner', sa.Column('basket_id', sa.Integer()), "
        "sa.Column('member_id', sa.Integer(), sa.ForeignKey('members.id')))",
        depends_on=dependency,
    )
    return folder


def test_alembic_depends_on_pulls_in_the_other_branch_first(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = depends_on_history(tmp_path, "d1users")
    _, first = alembic_policy(write_policy, url, folder, revision="d1orders")
    ledger = ledger_of(first)

    reconcile_schema(first.targets[0], ledger, trigger="test", source="policy.yaml")
    assert versions(url) == {"d1orders"}
    assert "members" not in tables(url), "d1users is on another branch: not wanted yet"

    _, dependent = alembic_policy(write_policy, url, folder, revision="d2orders")
    plan = plan_target(dependent.targets[0])
    assert [s.migration.id for s in plan.steps] == ["d1users", "d2orders"]

    outcome = reconcile_schema(dependent.targets[0], ledger, trigger="test", source="p")

    assert outcome.reason == "InSync", outcome.message
    assert [s.migration for s in ledger.steps(outcome.run_id or 0)] == ["d1users", "d2orders"]
    assert {"members", "baskets", "basket_owner"} <= tables(url)
    assert columns(url, "basket_owner") == ["basket_id", "member_id"]
    # Alembic folds a dependency into the head that depends on it.
    assert versions(url) == {"d2orders"}
    again = plan_target(alembic_policy(write_policy, url, folder, revision="heads")[1].targets[0])
    assert again.in_sync
    assert again.drift == ()
    assert again.desired_revision == again.live_revision
    ledger.close()


def test_alembic_depends_on_a_branch_label_is_resolved(
    tmp_path: Path, write_policy: WritePolicy
) -> None:
    """``alembic revision --depends-on members`` writes the branch label, not the id, into
    ``depends_on``; Alembic resolves it. The layout must too."""
    folder = depends_on_history(tmp_path, "members")
    config = Config()
    config.set_main_option("script_location", str(folder))
    config.set_main_option("sqlalchemy.url", f"sqlite:///{tmp_path / 'by_alembic.db'}")
    command.upgrade(config, "heads")
    assert versions(f"sqlite:///{tmp_path / 'by_alembic.db'}") == {"d2orders"}

    url = f"sqlite:///{tmp_path / 'app.db'}"
    _, policy = alembic_policy(write_policy, url, folder, revision="d2orders")
    plan = plan_target(policy.targets[0])
    order = [s.migration.id for s in plan.steps]
    assert sorted(order[:2]) == ["d1orders", "d1users"]
    assert order[2:] == ["d2orders"]
    outcome = reconcile_schema(policy.targets[0], ledger_of(policy), trigger="t", source="p")
    assert outcome.reason == "InSync", outcome.message
    assert {"members", "baskets", "basket_owner"} <= tables(url)


def test_alembic_failed_revision_rolls_back_and_is_retried_once_fixed(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    """On SQLite too: the driver would run the revision's CREATE TABLE outside env.py's
    transaction, and leave it behind."""
    folder = script_dir(tmp_path)
    add_revision(folder, "f1users", None, create_table("users", "email"))
    bad = add_revision(
        folder,
        "f2audit",
        "f1users",
        f"""
        {create_table("audit", "what")}
        op.execute("INSERT INTO no_such_table VALUES (1)")
        """,
    )
    add_revision(folder, "f3later", "f2audit", create_table("later"))
    _, policy = alembic_policy(write_policy, url, folder)
    target = policy.targets[0]
    ledger = ledger_of(policy)

    outcome = reconcile_schema(target, ledger, trigger="test", source="policy.yaml")

    assert outcome.reason == "ApplyFailed"
    assert "f2audit" in outcome.message
    assert "no_such_table" in outcome.message
    assert [(r.step.migration.id, r.outcome) for r in outcome.results] == [
        ("f1users", "applied"),
        ("f2audit", "failed"),
    ]
    assert "users" in tables(url)
    assert "audit" not in tables(url), "the failed revision's transaction must roll back"
    assert "later" not in tables(url), "nothing after a failure may run"
    assert versions(url) == {"f1users"}

    run = ledger.runs("app")[0]
    assert (run.id, run.outcome) == (outcome.run_id, "ApplyFailed")
    steps = ledger.steps(run.id)
    assert [(s.migration, s.outcome) for s in steps] == [
        ("f1users", "applied"),
        ("f2audit", "failed"),
    ]
    error = steps[1].error or ""
    assert str(bad) in error
    assert "no_such_table" in error

    # Alembic keeps no failed state: the next plan simply lists the revision again.
    plan = plan_target(target)
    assert plan.blocker is None
    assert [s.migration.id for s in plan.runnable] == ["f2audit", "f3later"]

    add_revision(
        folder,
        "f2audit",
        "f1users",
        f"""
        {create_table("audit", "what")}
        op.execute("INSERT INTO audit (id, what) VALUES (1, 'fixed')")
        """,
    )
    fixed = reconcile_schema(target, ledger, trigger="test", source="policy.yaml")

    assert fixed.reason == "InSync", fixed.message
    assert [(s.migration, s.outcome) for s in ledger.steps(fixed.run_id or 0)] == [
        ("f2audit", "applied"),
        ("f3later", "applied"),
    ]
    assert {"users", "audit", "later"} <= tables(url)
    assert query(url, "SELECT what FROM audit") == [("fixed",)]
    assert versions(url) == {"f3later"}
    ledger.close()


def test_alembic_unknown_revision_in_the_database_blocks_and_changes_nothing(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = linear_history(tmp_path)
    _, middle = alembic_policy(write_policy, url, folder, revision="u1users")
    ledger = ledger_of(middle)
    reconcile_schema(middle.targets[0], ledger, trigger="test", source="policy.yaml")
    query(url, "UPDATE alembic_version SET version_num = 'feedc0ffee00'")
    before = tables(url)

    _, head = alembic_policy(write_policy, url, folder)
    plan = plan_target(head.targets[0])

    assert plan.blocker is not None
    assert plan.blocker.reason == "UnknownRevision"
    assert "feedc0ffee00" in plan.blocker.message
    assert plan.runnable == ()
    assert [(d.migration, d.kind) for d in plan.drift] == [("feedc0ffee00", "unknown-revision")]
    assert plan.live_revision == "feedc0ffee00"

    outcome = reconcile_schema(head.targets[0], ledger, trigger="test", source="policy.yaml")

    assert outcome.reason == "UnknownRevision"
    assert outcome.results == ()
    assert ledger.steps(outcome.run_id or 0) == []
    assert ledger.runs("app")[0].outcome == "UnknownRevision"
    assert versions(url) == {"feedc0ffee00"}
    assert tables(url) == before
    assert columns(url, "users") == ["id", "email"]
    ledger.close()


def broken_history(tmp_path: Path) -> tuple[Path, Path, int]:
    """A valid first revision and a second one Python cannot compile; (dir, file, line)."""
    folder = script_dir(tmp_path)
    add_revision(folder, "s1users", None, create_table("users"))
    path = add_revision(folder, "s2broken", "s1users", "if True\n    pass")
    lines = path.read_text(encoding="utf-8").splitlines()
    return folder, path, lines.index("    if True") + 1


def test_alembic_syntax_error_names_file_and_line_and_changes_nothing(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder, broken, line = broken_history(tmp_path)
    _, policy = alembic_policy(write_policy, url, folder)

    with pytest.raises(SourceError) as raised:
        plan_target(policy.targets[0])
    message = str(raised.value)
    assert message.startswith(f"{broken}:{line}: ")
    assert len(message.splitlines()) == 1

    ledger = ledger_of(policy)
    outcome = reconcile_schema(policy.targets[0], ledger, trigger="test", source="policy.yaml")
    assert outcome.reason == "InvalidSource"
    assert f"{broken}:{line}" in outcome.message
    assert ledger.steps(outcome.run_id or 0) == []
    assert tables(url) == set()
    ledger.close()


def test_alembic_revision_that_fails_to_import_is_named(tmp_path: Path) -> None:
    """Not a syntax error, an import-time one: the message must still say which of the
    revision files is broken, not only the script directory."""
    folder = script_dir(tmp_path)
    add_revision(folder, "i1users", None, create_table("users"))
    broken = add_revision(folder, "i2broken", "i1users", create_table("other"))
    source = broken.read_text(encoding="utf-8")
    broken.write_text(
        source.replace("from alembic import op\n", "from alembic import op\nimport no_such_mod\n"),
        encoding="utf-8",
    )

    with pytest.raises(SourceError) as raised:
        AlembicLayout(folder)

    message = str(raised.value)
    assert "no_such_mod" in message
    assert len(message.splitlines()) == 1
    assert str(broken) in message, message


def test_alembic_two_files_with_one_revision_id_are_refused(tmp_path: Path) -> None:
    """Alembic only warns and keeps one of the two: the other would never run."""
    folder = script_dir(tmp_path)
    add_revision(folder, "r1users", None, create_table("users"))
    add_revision(folder, "r2orders", "r1users", create_table("orders"))
    copy = folder / "versions" / "r2orders_copy.py"
    copy.write_text(
        (folder / "versions" / "r2orders.py")
        .read_text(encoding="utf-8")
        .replace('"orders"', '"invoices"'),
        encoding="utf-8",
    )

    with pytest.raises(SourceError) as raised:
        AlembicLayout(folder)

    assert str(raised.value) == (
        f"{folder}: Revision r2orders is present more than once: each revision id must be unique"
    )


def test_alembic_policy_revision_that_does_not_exist_is_a_clear_error(
    url: str, tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = linear_history(tmp_path)
    _, policy = alembic_policy(write_policy, url, folder, revision="nosuchrev")

    with pytest.raises(SourceError) as raised:
        plan_target(policy.targets[0])
    message = str(raised.value)
    assert "'nosuchrev'" in message
    assert str(folder) in message
    assert len(message.splitlines()) == 1

    ledger = ledger_of(policy)
    outcome = reconcile_schema(policy.targets[0], ledger, trigger="test", source="policy.yaml")
    assert outcome.reason == "InvalidSource"
    assert "nosuchrev" in outcome.message
    assert ledger.steps(outcome.run_id or 0) == []
    assert tables(url) == set()
    ledger.close()


RECIPE_ENV_PY = '''\
"""An env.py that already makes pysqlite transactional, as SQLAlchemy's docs show."""

from alembic import context
from sqlalchemy import create_engine, event, pool

config = context.config
engine = create_engine(config.get_main_option("sqlalchemy.url"), poolclass=pool.NullPool)


@event.listens_for(engine, "connect")
def _connect(dbapi_connection, record):
    dbapi_connection.isolation_level = None


@event.listens_for(engine, "begin")
def _begin(conn):
    conn.exec_driver_sql("BEGIN")


with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
'''


def test_an_env_py_with_its_own_sqlite_begin_still_works(
    tmp_path: Path, write_policy: WritePolicy
) -> None:
    folder = script_dir(tmp_path)
    (folder / "env.py").write_text(RECIPE_ENV_PY, encoding="utf-8")
    add_revision(folder, "r1users", None, create_table("users", "email"))
    add_revision(
        folder,
        "r2broken",
        "r1users",
        f"""
        {create_table("audit", "what")}
        op.execute("INSERT INTO no_such_table VALUES (1)")
        """,
    )
    url = f"sqlite:///{tmp_path / 'app.db'}"
    _, policy = alembic_policy(write_policy, url, folder)
    ledger = ledger_of(policy)
    outcome = reconcile_schema(policy.targets[0], ledger, trigger="t", source="p")
    ledger.close()
    assert outcome.reason == "ApplyFailed"
    assert "no_such_table" in outcome.message
    assert "cannot start a transaction" not in outcome.message
    assert versions(url) == {"r1users"}
    assert "audit" not in tables(url)
