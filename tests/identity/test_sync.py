"""Identity sync against real databases: the users table follows the provider, and a bad
listing never deletes anyone."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result

from reconciler.act import reconcile_schema
from reconciler.act.identity import IdentityOutcome, reconcile_identity
from reconciler.db.connection import connect
from reconciler.errors import IncompleteListing, ProviderUnavailable
from reconciler.identity.base import ProviderUser
from reconciler.identity.file import FileProvider
from reconciler.identity.sync import Applied, UsersTable
from reconciler.ledger import Ledger
from reconciler.policy import Policy, load_policy
from tests.conftest import PRISMA_PG, PRISMA_SQLITE, pg_query


def user(i: int, **changes: Any) -> dict[str, Any]:
    record = {
        "id": f"user_{i:05d}",
        "email": f"u{i}@example.com",
        "first_name": f"F{i}",
        "last_name": f"L{i}",
    }
    record.update(changes)
    return record


class Shop:
    """A migrated shop database, a users file, and a policy tying them together."""

    def __init__(self, tmp_path: Path, url: str, orphans: str, extra: str = "") -> None:
        self.tmp_path, self.url = tmp_path, url
        self.users_file = tmp_path / "users.yaml"
        shutil.copytree(
            PRISMA_PG if url.startswith("postgresql") else PRISMA_SQLITE, tmp_path / "migrations"
        )
        self.policy_path = tmp_path / "policy.yaml"
        self.policy_path.write_text(
            "ledger: sqlite:///ledger.db\ntargets:\n  - name: shop\n"
            f"    database: {url}\n"
            "    migrations: {layout: prisma, path: migrations}\n"
            "    identity:\n      provider: file\n      file: {path: users.yaml}\n"
            "      key: clerk_id\n"
            "      columns: {email: email, first_name: first_name, last_name: last_name}\n"
            f"      orphans: {orphans}\n      soft_delete_column: deleted_at\n"
            "      max_deletions: {count: 10, percent: 50}\n" + extra
        )
        self.write([])
        with Ledger(self.policy.ledger) as ledger:
            reconcile_schema(self.target, ledger, trigger="t", source="p")

    @property
    def policy(self) -> Policy:
        return load_policy(self.policy_path, environ={})

    @property
    def target(self) -> Any:
        return self.policy.targets[0]

    def write(self, users: list[dict[str, Any]]) -> None:
        self.users_file.write_text(yaml.safe_dump({"users": users}))

    def sync(self, dry_run: bool = False, **kwargs: Any) -> IdentityOutcome:
        with Ledger(self.policy.ledger) as ledger:
            return reconcile_identity(
                self.target, ledger, dry_run=dry_run, trigger="t", source="p", **kwargs
            )

    def rows(self) -> dict[str, tuple[Any, ...]]:
        sql = (
            "SELECT clerk_id, email, first_name, last_name, deleted_at IS NOT NULL "
            "FROM users WHERE clerk_id IS NOT NULL"
        )
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                found = conn.execute(sql).fetchall()
        else:
            found = pg_query(self.url, sql)
        return {
            str(r[0]): tuple(bool(v) if i == 3 else v for i, v in enumerate(r[1:])) for r in found
        }

    def execute(self, sql: str) -> None:
        if self.url.startswith("sqlite"):
            with sqlite3.connect(self.url.removeprefix("sqlite:///")) as conn:
                conn.execute(sql)
        else:
            pg_query(self.url, sql)


@pytest.fixture(params=["postgresql", "sqlite"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    return f"sqlite:///{tmp_path / 'shop.db'}"


def test_first_sync_then_a_no_op_resync(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "soft-delete")
    shop.write([user(i) for i in range(1, 301)])
    plan = shop.sync(dry_run=True)
    assert plan.reason == "Pending"
    assert plan.diff is not None
    assert (plan.diff.missing, plan.diff.changed, plan.diff.orphans) == (300, 0, 0)
    assert shop.rows() == {}, "a dry run changes nothing"

    first = shop.sync()
    assert first.in_sync, first.message
    assert first.applied is not None
    assert first.applied.created == 300
    assert shop.rows()["user_00042"] == ("u42@example.com", "F42", "L42", False)

    again = shop.sync()
    assert again.applied is not None
    assert (again.applied.created, again.applied.updated, again.applied.soft_deleted) == (0, 0, 0)


def test_changes_are_applied_to_mapped_columns_only(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "report")
    shop.write([user(i) for i in range(1, 11)])
    shop.sync()
    shop.execute("UPDATE users SET name = 'kept by the app' WHERE clerk_id = 'user_00003'")
    shop.write(
        [user(i, email=f"new{i}@example.com") if i in (3, 4) else user(i) for i in range(1, 11)]
    )
    outcome = shop.sync()
    assert outcome.applied is not None
    assert outcome.applied.updated == 2
    assert shop.rows()["user_00003"][0] == "new3@example.com"
    assert shop.rows()["user_00005"][0] == "u5@example.com"


def test_users_the_table_cannot_take_are_not_missing(
    database: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    """users.email is NOT NULL: a user without an email is counted as not taken, apart
    from the missing ones, so a table holding everyone else is in sync."""
    shop = Shop(tmp_path, database, "report")
    shop.write([user(i, email=None) if i % 5 == 0 else user(i) for i in range(1, 21)])
    plan = shop.sync(dry_run=True)
    assert plan.reason == "Pending"
    assert plan.diff is not None
    assert (plan.diff.missing, plan.diff.not_taken) == (16, 4)
    assert plan.diff.not_taken_sample == ("user_00005", "user_00010", "user_00015", "user_00020")
    assert "user_00005" not in plan.diff.missing_sample

    first = shop.sync()
    assert first.applied is not None
    assert first.applied.created == 16
    assert first.applied.rejected == ["user_00005", "user_00010", "user_00015", "user_00020"]
    assert "4 not taken by users" in first.message

    after = cli("identity", "plan", "--config", shop.policy_path)
    assert after.exit_code == 0, after.output
    assert ": InSync: 20 listed; 0 missing, 0 changed, 0 orphaned, 4 not taken" in after.output
    assert "user_00005" in after.output
    status = cli("status", "--config", shop.policy_path)
    assert "  identity   " in status.output  # the last identity run, next to the schema's
    assert "via cli: InSync (20 listed;" in status.output

    again = shop.sync()
    assert again.in_sync, again.message
    assert again.diff is not None
    assert (again.diff.missing, again.diff.not_taken) == (0, 4)
    assert again.applied is not None
    assert (again.applied.created, again.applied.updated) == (0, 0)
    assert len(again.applied.rejected) == 4


class Twice:
    """A provider without a count whose listing holds user 2 twice."""

    name = "clerk"

    def users(self) -> Iterator[ProviderUser]:
        yield ProviderUser("user_00001", "u1@example.com")
        yield ProviderUser("user_00002", "u2@example.com", last_name="Old")
        yield ProviderUser("user_00003", "u3@example.com")
        yield ProviderUser("user_00002", "u2@example.com", last_name="New")

    def count(self) -> None:
        return None

    def close(self) -> None:
        pass


def test_a_user_listed_twice_is_staged_once_as_listed_last(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "report")
    outcome = shop.sync(provider=Twice())
    assert outcome.diff is not None
    assert outcome.diff.listed == 3
    assert outcome.applied is not None
    assert outcome.applied.created == 3
    assert shop.rows()["user_00002"][2] == "New"


def test_changes_in_many_windows_reach_every_row(database: str, tmp_path: Path) -> None:
    """Each window of the update is bounded by its own keys: rows at the edges of every
    window, and in the last, short one, are created and updated."""
    shop = Shop(tmp_path, database, "report")
    everyone = [user(i) for i in range(1, 51)]
    changed = {1, 7, 8, 14, 15, 29, 49, 50}
    db = connect(shop.target.database)
    try:
        table = UsersTable(db, shop.target.identity)
        for records in (
            everyone,
            [user(i, last_name="New") if i in changed else user(i) for i in range(1, 51)],
        ):
            shop.write(records)
            listed = table.stage(FileProvider(shop.users_file).users())
            applied = Applied()
            table.create_and_update(table.diff(listed), create=True, applied=applied, batch=7)
            table.drop_stage()
    finally:
        db.close()
    assert (applied.created, applied.updated) == (0, len(changed))
    rows = shop.rows()
    assert len(rows) == 50
    assert {key for key, row in rows.items() if row[2] == "New"} == {
        f"user_{i:05d}" for i in changed
    }


@pytest.mark.parametrize("mode", ["report", "soft-delete", "delete"])
def test_orphans_follow_the_policy(database: str, tmp_path: Path, mode: str) -> None:
    shop = Shop(tmp_path, database, mode)
    shop.write([user(i) for i in range(1, 21)])
    shop.sync()
    shop.write([user(i) for i in range(1, 21) if i not in (7, 8)])
    outcome = shop.sync()
    assert outcome.in_sync, outcome.message
    rows = shop.rows()
    if mode == "report":
        assert rows["user_00007"][3] is False
        assert "2 orphans reported, not deleted" in outcome.message
    elif mode == "soft-delete":
        assert rows["user_00007"][3] is True
        assert rows["user_00008"][3] is True
        assert rows["user_00009"][3] is False
        # A soft-deleted user who comes back is restored.
        shop.write([user(i) for i in range(1, 21)])
        restored = shop.sync()
        assert restored.applied is not None
        assert restored.applied.updated == 2
        assert shop.rows()["user_00007"][3] is False
    else:
        assert "user_00007" not in rows
        assert len(rows) == 18


def test_hard_delete_reports_foreign_key_conflicts(pg_url: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, pg_url, "delete")
    shop.write([user(i) for i in range(1, 21)])
    shop.sync()
    pg_query(
        pg_url,
        "INSERT INTO subscriptions (user_id, plan) SELECT id, 'pro' FROM users "
        "WHERE clerk_id = 'user_00007'",
    )
    shop.write([user(i) for i in range(1, 21) if i not in (7, 8)])
    outcome = shop.sync()
    assert outcome.applied is not None
    assert outcome.applied.deleted == 1
    assert outcome.applied.conflicts == ["user_00007"]
    assert "1 not deleted (still referenced): user_00007" in outcome.message
    assert "user_00007" in shop.rows()
    assert pg_query(pg_url, "SELECT count(*) FROM subscriptions") == [(1,)]


def test_hard_delete_refuses_to_cascade(pg_url: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, pg_url, "delete")
    pg_query(
        pg_url, "CREATE TABLE notes (id serial, user_id int REFERENCES users(id) ON DELETE CASCADE)"
    )
    shop.write([user(i) for i in range(1, 21)])
    shop.sync()
    shop.write([user(i) for i in range(1, 20)])
    outcome = shop.sync()
    assert outcome.reason == "IdentityFailed"
    assert "ON DELETE CASCADE" in outcome.message
    assert "notes" in outcome.message
    assert "user_00020" in shop.rows()


def test_empty_listing_never_deletes(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "delete")
    shop.write([user(i) for i in range(1, 21)])
    shop.sync()
    shop.write([])
    outcome = shop.sync()
    assert outcome.reason == "IncompleteListing"
    assert "listed no users while users has 20" in outcome.message
    assert len(shop.rows()) == 20


def test_too_many_deletions_wait_for_approval(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "soft-delete")
    shop.write([user(i) for i in range(1, 101)])
    shop.sync()
    shop.write([user(i) for i in range(1, 101) if i > 30])
    outcome = shop.sync()
    assert outcome.reason == "AwaitingApproval"
    assert (
        "30 users would be soft deleted, above max_deletions (10 here: the lower of count 10 "
        "and percent 50 of 100 users = 50): user_00001" in outcome.message
    )
    assert "user_00001" in outcome.message
    assert not any(r[3] for r in shop.rows().values())
    allowed = shop.sync(allow_deletions=30)
    assert allowed.applied is not None
    assert allowed.applied.soft_deleted == 30


def test_a_limit_of_zero_says_which_setting_makes_it_zero(database: str, tmp_path: Path) -> None:
    """The example policy's {count: 10, percent: 2} on a table of 3 users allows no deletion:
    the refusal says it is the percentage, not the count."""
    shop = Shop(tmp_path, database, "soft-delete")
    shop.policy_path.write_text(shop.policy_path.read_text().replace("percent: 50", "percent: 2"))
    shop.write([user(i) for i in range(1, 4)])
    assert shop.sync().in_sync
    shop.write([user(i) for i in range(1, 3)])
    outcome = shop.sync()
    assert outcome.reason == "AwaitingApproval"
    assert (
        "1 user would be soft deleted, above max_deletions (0 here: the lower of count 10 and "
        "percent 2 of 3 users = 0): user_00003; check the provider, then run `reconciler "
        f"identity sync --config {shop.policy_path} --target shop --allow-deletions 1`"
        in outcome.message
    )
    assert not any(r[3] for r in shop.rows().values())


class Breaking:
    """A provider whose listing breaks off after some users, like page 37 of 40."""

    name = "clerk"

    def __init__(self, users: list[dict[str, Any]], fail_after: int) -> None:
        self.records, self.fail_after = users, fail_after

    def users(self) -> Iterator[ProviderUser]:
        for index, record in enumerate(self.records):
            if index == self.fail_after:
                raise IncompleteListing("clerk: HTTP 502 on page 37")
            yield ProviderUser(record["id"], record["email"])

    def count(self) -> int:
        return len(self.records)


def test_listing_that_breaks_off_changes_nothing(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "delete")
    everyone = [user(i) for i in range(1, 41)]
    shop.write(everyone)
    shop.sync()
    with Ledger(shop.policy.ledger) as ledger:
        outcome = reconcile_identity(
            shop.target,
            ledger,
            dry_run=False,
            trigger="t",
            source="p",
            provider=Breaking(everyone, 36),
        )
    assert outcome.reason == "IncompleteListing"
    assert "page 37" in outcome.message
    assert len(shop.rows()) == 40


class CutShort(FileProvider):
    """A users file read while it was being rewritten: the listing stops at a row boundary,
    its last users missing, and the count read with it agrees."""

    def users(self) -> Iterator[ProviderUser]:
        yield from list(super().users())[:-3]

    def count(self) -> int | None:
        return sum(1 for _ in self.users())


def test_users_a_listing_left_out_are_not_deleted(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "soft-delete")
    shop.write([user(i) for i in range(1, 41)])
    shop.sync()
    outcome = shop.sync(provider=CutShort(shop.users_file))
    assert outcome.reason == "IncompleteListing", outcome.message
    assert "left out 3 users that file still has (user_00038, user_00039, user_00040)" in (
        outcome.message
    )
    assert not any(row[3] for row in shop.rows().values())
    assert shop.sync().in_sync
    assert not any(row[3] for row in shop.rows().values())


def test_an_allowed_mass_deletion_reaches_every_orphan(database: str, tmp_path: Path) -> None:
    """The diff keeps the first 1,000 orphan keys; allowed to delete more, the sync takes
    them all, not those 1,000 only."""
    shop = Shop(tmp_path, database, "soft-delete")
    shop.write([user(i) for i in range(1, 1301)])
    shop.sync()
    shop.write([user(i) for i in range(1201, 1301)])
    waiting = shop.sync()
    assert waiting.reason == "AwaitingApproval"
    allowed = shop.sync(allow_deletions=1200)
    assert allowed.applied is not None
    assert allowed.applied.soft_deleted == 1200
    assert sum(1 for row in shop.rows().values() if row[3]) == 1200
    assert shop.sync().in_sync


def test_a_users_file_exported_with_a_bom_or_in_latin1(tmp_path: Path) -> None:
    """Spreadsheets save CSV with a byte order mark: its first column is still ``id``. A
    file in another encoding is one line naming its line, and nothing is listed."""
    exported = tmp_path / "users.csv"
    exported.write_bytes(b"\xef\xbb\xbfid,email,first_name\nuser_1,ada@example.com,Ada\n")
    assert list(FileProvider(exported).users()) == [
        ProviderUser("user_1", "ada@example.com", "Ada")
    ]
    exported.write_bytes(b"id,email\nuser_1,ada@example.com\nuser_2,caf\xe9@example.com\n")
    with pytest.raises(ProviderUnavailable, match=r"users.csv:3:11: not UTF-8 \(byte 0xe9\)"):
        list(FileProvider(exported).users())


def test_identity_commands_on_a_policy_without_identity_are_errors(
    cli: Callable[..., Result], write_policy: Callable[[str], Path]
) -> None:
    """Exit 1, not a usage error's 2: for a plan, 2 means changes pending."""
    policy = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: m}\n"
    )
    for command in (["plan"], ["sync", "--yes"]):
        result = cli("identity", *command, "--config", policy)
        assert result.exit_code == 1, result.output
        assert result.stderr.strip() == (
            "reconciler: error: no identity to sync: target(s) shop have no `identity:` section"
        )


def test_a_database_that_cannot_be_reached_is_waited_for_not_a_failure(
    tmp_path: Path, write_policy: Callable[[str], Path]
) -> None:
    """DatabaseUnavailable clears by itself (retried); IdentityFailed pages a person."""
    (tmp_path / "users.yaml").write_text(yaml.safe_dump({"users": [user(1)]}))
    policy = load_policy(
        write_policy(
            """
            ledger: sqlite:///ledger.db
            targets:
              - name: shop  # nothing listens on port 1
                database: postgresql://postgres@127.0.0.1:1/shop
                migrations: {layout: prisma, path: migrations}
                identity: {provider: file, file: {path: users.yaml}, key: clerk_id}
            """
        )
    )
    with Ledger(policy.ledger) as ledger:
        outcome = reconcile_identity(
            policy.targets[0], ledger, dry_run=False, trigger="t", source="p"
        )
    assert outcome.reason == "DatabaseUnavailable"
    assert outcome.message.startswith("nothing changed: cannot connect to")
