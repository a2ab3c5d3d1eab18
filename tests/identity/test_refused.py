"""Users the table refuses (a unique email another row holds, or a user listed before them
takes) are not in sync: the sync says how many and why, and ``identity plan`` predicts
them from the data, on real PostgreSQL and SQLite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.identity.test_sync import Shop, database, user

__all__ = ["database"]  # the fixture, used by name


def test_users_a_unique_index_refuses_are_predicted_and_reported(
    database: str, tmp_path: Path, cli: Callable[..., Result]
) -> None:
    shop = Shop(tmp_path, database, "report")
    # A row of the application's own, no provider id, holding an address.
    shop.execute("INSERT INTO users (email, name) VALUES ('taken@example.com', 'Own')")
    listing = [user(i) for i in range(1, 11)]
    listing[6] = user(7, email="u3@example.com")  # the address of user 3, listed before it
    listing[8] = user(9, email="taken@example.com")  # the address of the row above
    shop.write(listing)

    plan = shop.sync(dry_run=True)
    assert plan.reason == "Pending", plan.message
    assert plan.diff is not None
    assert plan.diff.missing == 10
    assert plan.diff.refused == 2
    assert plan.diff.refused_sample == ("user_00007", "user_00009")
    assert plan.diff.refused_by == ("users_email_key",)
    assert (
        "2 users would be refused by users (unique index users_email_key: another row holds "
        "the same value, or a user listed before them): user_00007, user_00009"
    ) in plan.message

    synced = shop.sync()
    assert synced.reason == "UsersRefused", synced.message
    assert not synced.in_sync
    assert synced.applied is not None
    assert synced.applied.created == 8
    assert sorted(synced.applied.refusals) == ["user_00007", "user_00009"]
    why = (
        'duplicate key value violates unique constraint "users_email_key" (SQLSTATE 23505)'
        if database.startswith("postgresql")
        else "UNIQUE constraint failed: users.email"
    )
    assert f"2 refused by users: {why}: user_00007, user_00009" in synced.message
    assert "user_00007" not in shop.rows()
    assert shop.rows()["user_00003"][0] == "u3@example.com"

    # A change the index refuses: user 2 takes the address user 4 has.
    listing[1] = user(2, email="u4@example.com")
    shop.write(listing)
    after = cli("identity", "plan", "--config", shop.policy_path)
    assert after.exit_code == 1, after.output
    assert "Identity shop: UsersRefused: 10 listed; 2 missing, 1 changed" in after.output
    assert "  ! refused (3, unique index users_email_key): user_00002, user_00007, user_00009" in (
        after.output
    )
    again = shop.sync()
    assert again.reason == "UsersRefused"
    assert again.applied is not None
    assert sorted(again.applied.refusals) == ["user_00002", "user_00007", "user_00009"]
    assert shop.rows()["user_00002"][0] == "u2@example.com"


def test_a_table_that_takes_everyone_is_in_sync(database: str, tmp_path: Path) -> None:
    shop = Shop(tmp_path, database, "report")
    shop.write([user(i) for i in range(1, 6)])
    assert shop.sync().reason == "InSync"
    plan = shop.sync(dry_run=True)
    assert plan.reason == "InSync"
    assert plan.diff is not None
    assert plan.diff.refused == 0
