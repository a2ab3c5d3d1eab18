"""The ``neon`` backup driver against a local double of the Neon API whose branches are real
PostgreSQL databases: backups hold every row, copies and restores work, and the driver rides
out Neon's locks, rate limits, retries and failures without leaking the API key."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest

from reconciler.backup.base import Artifact, BackupError
from reconciler.backup.neon import NeonDriver
from reconciler.db.url import DatabaseUrl, parse_database_url
from reconciler.policy.model import NeonSettings
from tests.backup.neon_double import NeonDouble
from tests.conftest import pg_query

API_KEY = "neon-key-3f9c2a7e5b1d8c4f"
ROWS = 120


class Driver(NeonDriver):
    """The driver, its waits recorded (and still taken: the double works asynchronously)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        super()._sleep(seconds)


def driver_for(
    double: NeonDouble, url: str, *, key: str = API_KEY, timeout: float = 30.0, api_url: str = ""
) -> Driver:
    settings = NeonSettings(
        project_id=double.project_id,
        branch_id=double.root_branch_id,
        api_key=key,
        api_url=api_url or double.api_url,
    )
    return Driver("shop", parse_database_url(url), settings, poll_interval=0.05, timeout=timeout)


def rows(url: str | DatabaseUrl) -> list[tuple[object, ...]]:
    conninfo = url.libpq_conninfo() if isinstance(url, DatabaseUrl) else url
    return pg_query(conninfo, "SELECT id, name, price FROM items ORDER BY id")


def named(double: NeonDouble, prefix: str) -> list[str]:
    return [b.name for b in double.live_branches() if b.name.startswith(prefix)]


@pytest.fixture
def shop(pg_url: str) -> str:
    pg_query(pg_url, "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price numeric)")
    pg_query(
        pg_url,
        "INSERT INTO items SELECT g, 'item ' || g, g * 1.25 FROM generate_series(1, %s) g",
        (ROWS,),
    )
    return pg_url


@pytest.fixture
def neon(shop: str) -> Iterator[NeonDouble]:
    with NeonDouble(shop, api_key=API_KEY) as double:
        yield double
    assert not double.existing_databases()
    assert not double.errors, double.errors[0]


@pytest.fixture
def empty_db(pg_server: str) -> Iterator[str]:
    name = f"rt_{uuid.uuid4().hex[:12]}"
    pg_query(pg_server, f'CREATE DATABASE "{name}"')
    yield f"{pg_server.rsplit('/', 1)[0]}/{name}"
    pg_query(pg_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# -- the interface ----------------------------------------------------------------------------


def test_take_makes_a_branch_holding_every_row(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    expected = rows(shop)

    artifact = driver.take("schema-change")

    assert artifact.driver == "neon"
    assert artifact.target == "shop"
    assert artifact.location == f"neon:{neon.project_id}/{artifact.id}"
    assert artifact.size_bytes is None
    assert artifact.sha256 is None
    branch = neon.branch(artifact.id)
    assert branch is not None
    assert branch.parent_id == neon.root_branch_id
    assert re.fullmatch(r"rcl-backup-shop-\d{8}T\d{6}Z", branch.name)
    assert branch.endpoint_id is None  # a backup needs no compute
    assert branch.current_state == "ready"
    assert neon.requests["get_operation"] >= 1  # creation was asynchronous and polled
    assert len(expected) == ROWS
    assert rows(neon.database_url(artifact.id)) == expected

    pg_query(shop, "INSERT INTO items VALUES (9999, 'later', 1)")
    assert rows(neon.database_url(artifact.id)) == expected  # a snapshot, not a view


def test_a_session_open_on_the_parent_does_not_stop_a_backup(neon: NeonDouble, shop: str) -> None:
    # The double copies with CREATE DATABASE ... TEMPLATE, which needs the template to
    # itself: it ends other sessions first (on Neon the application never notices).
    with psycopg.connect(shop, autocommit=True) as held:
        held.execute("SELECT count(*) FROM items")
        artifact = driver_for(neon, shop).take("schema-change")

    assert rows(neon.database_url(artifact.id)) == rows(shop)


def test_list_shows_this_targets_backups_newest_first(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    driver.page_size = 1  # every branch on its own page: pagination is followed
    with httpx.Client(headers={"Authorization": f"Bearer {API_KEY}"}) as api:

        def create(name: str, parent: str) -> str:
            answer = api.post(
                f"{neon.api_url}/projects/{neon.project_id}/branches",
                json={"branch": {"parent_id": parent, "name": name}},
            )
            assert answer.status_code == 201, answer.text
            neon.wait_idle()
            return str(answer.json()["branch"]["id"])

        older = create("rcl-backup-shop-20200101T000000Z", neon.root_branch_id)
        create("rcl-backup-shop-eu-20200101T000000Z", neon.root_branch_id)  # another target
        create("rcl-backup-shop-20200102T000000Z", older)  # not a branch of the target's
        create("preview-feature-x", neon.root_branch_id)

    newest = driver.take("schema-change")
    listed = driver.list()

    assert [a.id for a in listed] == [newest.id, older]
    assert all(a.driver == "neon" and a.target == "shop" for a in listed)
    assert listed[1].location == f"neon:{neon.project_id}/{older}"
    assert neon.requests["list_branches"] >= 2


def test_copy_is_a_connectable_database_and_its_branch_goes_afterwards(
    neon: NeonDouble, shop: str
) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")

    with driver.copy(artifact) as url:
        assert isinstance(url, DatabaseUrl)
        assert url.database_name != parse_database_url(shop).database_name
        assert rows(url) == rows(shop)
        assert "***" in str(url)  # the scratch role's password never shows
        [scratch] = [b for b in neon.live_branches() if b.name.startswith("rcl-scratch-shop-")]
        assert scratch.parent_id == artifact.id
        assert scratch.endpoint_id is not None

    assert named(neon, "rcl-scratch-") == []
    assert scratch.database not in neon.existing_databases()
    assert neon.branch(artifact.id) is not None  # the backup itself stays


def test_copy_deletes_its_branch_when_the_body_raises(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")

    scratch: list[str] = []

    def verify() -> None:
        with driver.copy(artifact) as url:
            scratch.append(url.database_name)
            raise RuntimeError("census differs")

    with pytest.raises(RuntimeError, match="census differs"):
        verify()

    assert named(neon, "rcl-scratch-") == []
    assert scratch[0] not in neon.existing_databases()


def test_restore_into_an_empty_database_keeps_every_row(
    neon: NeonDouble, shop: str, empty_db: str
) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")
    pg_query(shop, "DELETE FROM items WHERE id > 10")  # the live data moves on

    driver.restore(artifact, parse_database_url(empty_db))

    restored = rows(empty_db)
    assert len(restored) == ROWS
    assert restored == rows(neon.database_url(artifact.id))
    assert named(neon, "rcl-scratch-") == []


def test_restore_into_a_populated_database_leaves_exactly_the_backup(
    neon: NeonDouble, shop: str, empty_db: str
) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")
    pg_query(empty_db, "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric)")
    pg_query(empty_db, "INSERT INTO items VALUES (0, 'stale', 1), (1, 'stale', 1)")
    pg_query(empty_db, "CREATE SCHEMA later; CREATE TABLE later.notes (body text)")

    driver.restore(artifact, parse_database_url(empty_db))

    assert rows(empty_db) == rows(neon.database_url(artifact.id))
    assert len(rows(empty_db)) == ROWS
    schemas = pg_query(empty_db, "SELECT 1 FROM pg_namespace WHERE nspname = 'later'")
    assert schemas == []
    assert named(neon, "rcl-scratch-") == []


def test_delete_removes_the_branch_and_check_notices(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")
    database = neon.database_url(artifact.id).rsplit("/", 1)[1]
    assert driver.check(artifact) is None

    driver.delete(artifact)

    assert neon.branch(artifact.id) is None
    assert database not in neon.existing_databases()
    assert driver.list() == []
    problem = driver.check(artifact)
    assert problem is not None
    assert artifact.id in problem
    assert "\n" not in problem
    driver.delete(artifact)  # already gone: Neon answers 204, nothing to do


def test_delete_refuses_the_targets_own_branch(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    live = Artifact(
        neon.root_branch_id,
        "shop",
        "neon",
        f"neon:{neon.project_id}/{neon.root_branch_id}",
        datetime.now(UTC),
    )

    with pytest.raises(BackupError, match="refusing to delete"):
        driver.delete(live)

    assert neon.requests["delete_branch"] == 0


# -- Neon's ways of saying "not now" -----------------------------------------------------------


def test_423_while_an_operation_runs_is_waited_out(neon: NeonDouble, shop: str) -> None:
    neon.hold(0.4)
    driver = driver_for(neon, shop)

    artifact = driver.take("schema-change")

    assert neon.answers[("create_branch", 423)] >= 1
    assert neon.answers[("create_branch", 201)] == 1
    assert rows(neon.database_url(artifact.id)) == rows(shop)


def test_423_past_the_timeout_gives_up_with_the_status(neon: NeonDouble, shop: str) -> None:
    neon.hold(1.0)
    driver = driver_for(neon, shop, timeout=0.3)
    started = time.monotonic()

    with pytest.raises(BackupError) as caught:
        driver.take("schema-change")

    message = str(caught.value)
    assert time.monotonic() - started < 0.9
    assert "HTTP 423" in message
    assert "creating branch rcl-backup-shop-" in message
    assert "0.3s timeout" in message
    assert "\n" not in message
    neon.wait_idle()
    assert named(neon, "rcl-backup-") == []


def test_429_backs_off_as_retry_after_says(neon: NeonDouble, shop: str) -> None:
    neon.inject(429, times=2)  # Retry-After: 0
    driver = driver_for(neon, shop)

    driver.take("schema-change")

    assert neon.answers[("create_branch", 429)] == 2
    assert driver.waits[:2] == [0.0, 0.0]


def test_429_without_retry_after_backs_off_exponentially(neon: NeonDouble, shop: str) -> None:
    neon.inject(429, times=3, retry_after="", route="list_branches")
    driver = driver_for(neon, shop)

    assert driver.list() == []

    assert driver.waits == [0.05, 0.1, 0.2]


@pytest.mark.parametrize("status", [503, 500, 502, 504])
def test_server_errors_are_retried(neon: NeonDouble, shop: str, status: int) -> None:
    neon.inject(status, times=2, route="create_branch")
    neon.inject(status, times=1, route="get_operation")
    driver = driver_for(neon, shop)

    artifact = driver.take("schema-change")

    assert neon.answers[("create_branch", status)] == 2
    assert neon.answers[("get_operation", status)] == 1
    assert rows(neon.database_url(artifact.id)) == rows(shop)


def test_a_500_that_persists_gives_up_after_a_few_tries(neon: NeonDouble, shop: str) -> None:
    neon.inject(500, times=50)
    driver = driver_for(neon, shop)

    with pytest.raises(BackupError) as caught:
        driver.take("schema-change")

    message = str(caught.value)
    assert "HTTP 500" in message
    assert "internal server error" in message
    assert "tried 4 times" in message
    assert "\n" not in message
    assert neon.requests["create_branch"] == 4
    neon.clear_injections()
    assert named(neon, "rcl-backup-") == []


def test_an_unreachable_api_is_retried_then_reported(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop, api_url="http://127.0.0.1:9/api/v2")

    with pytest.raises(BackupError, match=r"cannot reach the Neon API at 127\.0\.0\.1"):
        driver.take("schema-change")

    assert len(driver.waits) == 3  # four tries: the request never left, so POST is retried


# -- operations ---------------------------------------------------------------------------------


def test_an_operation_that_fails_then_finishes_succeeds(neon: NeonDouble, shop: str) -> None:
    neon.fail_next_operation(polls=3)
    driver = driver_for(neon, shop)

    artifact = driver.take("schema-change")

    [(operation_id, served)] = [
        (o.id, neon.served.get(o.id, []))
        for o in neon.operations.values()
        if o.branch_id == artifact.id
    ]
    assert served.count("failed") == 3
    assert served[-1] == "finished"
    assert neon.operations[operation_id].failures_count == 1
    assert rows(neon.database_url(artifact.id)) == rows(shop)


def test_an_operation_ending_in_error_fails_and_leaves_no_branch(
    neon: NeonDouble, shop: str
) -> None:
    neon.error_next_operation()
    driver = driver_for(neon, shop)

    with pytest.raises(BackupError) as caught:
        driver.take("schema-change")

    message = str(caught.value)
    assert message.startswith("Neon backup of shop: ")
    assert "create_branch" in message
    assert "ended in error: simulated failure" in message
    assert "\n" not in message
    assert named(neon, "rcl-backup-") == []
    assert neon.requests["delete_branch"] == 1
    assert not neon.existing_databases()


def test_a_copy_whose_branch_errors_leaves_no_scratch_branch(neon: NeonDouble, shop: str) -> None:
    driver = driver_for(neon, shop)
    artifact = driver.take("schema-change")
    neon.error_next_operation()

    with pytest.raises(BackupError, match="ended in error"), driver.copy(artifact):
        pytest.fail("the body runs only with a ready copy")

    assert named(neon, "rcl-scratch-") == []
    assert neon.branch(artifact.id) is not None


def test_an_operation_past_the_timeout_names_the_branch_left_behind(
    neon: NeonDouble, shop: str
) -> None:
    neon.op_delay = 0.6
    driver = driver_for(neon, shop, timeout=0.2)

    with pytest.raises(BackupError) as caught:
        driver.take("schema-change")

    message = str(caught.value)
    assert "create_branch" in message
    assert "still running after 0.2s" in message
    assert "left in place" in message
    neon.wait_idle()


# -- the API key --------------------------------------------------------------------------------


def test_a_wrong_api_key_is_one_line_with_the_status_and_never_the_key(
    neon: NeonDouble, shop: str, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "neon-key-wrong-77aa91c0e2"
    driver = driver_for(neon, shop, key=wrong)
    caplog.set_level(logging.DEBUG)

    with pytest.raises(BackupError) as caught:
        driver.take("schema-change")
    with pytest.raises(BackupError) as listed:
        driver.list()
    location = f"neon:{neon.project_id}/br-some-branch-1"
    problem = driver.check(
        Artifact("br-some-branch-1", "shop", "neon", location, datetime.now(UTC))
    )

    for message in (str(caught.value), str(listed.value), problem or ""):
        assert "HTTP 401" in message
        assert "\n" not in message
        assert wrong not in message
        assert API_KEY not in message
    assert "creating branch" in str(caught.value)
    assert problem is not None
    for record in caplog.records:
        assert wrong not in record.getMessage()
    assert wrong not in repr(driver)
    assert wrong not in repr(driver.settings)
    assert neon.answers[("create_branch", 401)] == 1  # a 401 is not retried
    assert named(neon, "rcl-backup-") == []
