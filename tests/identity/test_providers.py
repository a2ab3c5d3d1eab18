"""The Clerk and SCIM providers against real HTTP doubles: every user listed once and in
order, rate limits and server errors ridden out, and every listing that cannot finish
reported as incomplete (so the sync deletes nothing), never with the credential in it."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from reconciler.errors import IncompleteListing, ProviderUnavailable
from reconciler.identity.base import ProviderUser
from reconciler.identity.clerk import ClerkProvider
from reconciler.identity.scim import ScimProvider
from reconciler.secrets import Secret
from tests.identity.doubles import (
    ClerkDouble,
    Population,
    ScimDouble,
    clerk_id,
    created_ms,
    scim_id,
    scim_user,
    updated_ms,
)

KEY = "sk_test_4f1c9e2b7a6d3e8f0a1b2c3d"
TOKEN = "scim-token-9d8c7b6a5f4e3d2c1b0a"
WRONG = "sk_test_wrong_77aa88bb99cc00dd"
BACKOFF = 0.5


def at(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


OPENED: list[ClerkProvider | ScimProvider] = []
"""Providers made by a test, closed after it (each keeps its HTTP client until then)."""


@pytest.fixture(autouse=True)
def close_providers() -> Iterator[None]:
    yield
    while OPENED:
        OPENED.pop().close()


class Clerk(ClerkProvider):
    """The provider, its waits recorded instead of taken."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []
        OPENED.append(self)

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


class Scim(ScimProvider):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.waits: list[float] = []
        OPENED.append(self)

    def _sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def clerk_api() -> Iterator[Callable[..., ClerkDouble]]:
    """Start a Clerk double: ``clerk_api(users, **knobs)``; stopped after the test."""
    with ExitStack() as stack:

        def start(users: Any, key: str = KEY, **knobs: Any) -> ClerkDouble:
            if isinstance(users, int):
                users = Population(users)
            return stack.enter_context(ClerkDouble(users, key, **knobs))

        yield start


@pytest.fixture
def scim_api() -> Iterator[Callable[..., ScimDouble]]:
    with ExitStack() as stack:

        def start(users: Any, token: str = TOKEN, **knobs: Any) -> ScimDouble:
            if isinstance(users, int):
                users = Population(users, scim_user)
            return stack.enter_context(ScimDouble(users, token, **knobs))

        yield start


def clerk(double: ClerkDouble, key: str = KEY, **options: Any) -> Clerk:
    return Clerk(Secret(key), double.url, **{"backoff": BACKOFF, **options})


def scim(double: ScimDouble, token: str = TOKEN, **options: Any) -> Scim:
    return Scim(double.url, Secret(token), **{"backoff": BACKOFF, **options})


def drain(users: Iterator[ProviderUser], into: list[ProviderUser]) -> None:
    """Collect users into ``into`` (kept when the listing raises part-way)."""
    for user in users:
        into.append(user)


# -- Clerk: pagination --------------------------------------------------------------------


def test_clerk_lists_every_user_once_in_order_with_the_cursor(clerk_api: Any) -> None:
    api = clerk_api(1234)
    users = list(clerk(api).users())
    assert [u.id for u in users] == [clerk_id(i) for i in range(1234)]
    assert api.requests["/users"] == 3
    queries = [s.query for s in api.seen]
    assert queries[0] == {"limit": "500", "order_by": "+created_at"}
    assert queries[1] == {
        "limit": "500",
        "order_by": "+created_at",
        "starting_after": clerk_id(499),
    }
    assert queries[2]["starting_after"] == clerk_id(999)
    assert not any("offset" in q for q in queries)
    assert {s.headers["Authorization"] for s in api.seen} == {f"Bearer {KEY}"}


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (499, 1), (500, 2), (1000, 3)])
def test_clerk_a_short_page_ends_the_listing(clerk_api: Any, count: int, requests: int) -> None:
    api = clerk_api(count)
    assert [u.id for u in clerk(api).users()] == [clerk_id(i) for i in range(count)]
    assert api.requests["/users"] == requests


def test_clerk_falls_back_to_offset_when_the_cursor_is_refused(
    clerk_api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    api = clerk_api(1234)
    api.reject_starting_after = True
    with caplog.at_level(logging.WARNING, logger="reconciler.identity.clerk"):
        users = list(clerk(api).users())
    assert [u.id for u in users] == [clerk_id(i) for i in range(1234)]
    queries = [s.query for s in api.seen]
    assert [q.get("starting_after") for q in queries] == [None, clerk_id(499), None, None]
    assert [q.get("offset") for q in queries] == [None, None, "500", "1000"]
    assert "refused starting_after" in caplog.text
    assert "form_param_unknown" in caplog.text


def test_clerk_notices_a_cursor_the_server_ignores(clerk_api: Any) -> None:
    api = clerk_api(1234)
    api.ignore_starting_after = True
    users = list(clerk(api).users())
    assert [u.id for u in users] == [clerk_id(i) for i in range(1234)]
    assert [s.query.get("offset") for s in api.seen] == [None, None, "500", "1000"]


def test_clerk_streams_page_by_page(clerk_api: Any) -> None:
    api = clerk_api(1234)
    users = clerk(api).users()
    assert isinstance(users, Generator)
    assert api.total_requests == 0
    next(users)
    assert api.total_requests == 1
    for _ in range(499):
        next(users)
    assert api.total_requests == 1
    next(users)
    assert api.total_requests == 2
    users.close()


def test_clerk_a_limit_over_500_is_refused(clerk_api: Any) -> None:
    api = clerk_api(10)
    answer = httpx.get(
        f"{api.url}/users", params={"limit": 501}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert answer.status_code == 422
    error = answer.json()["errors"][0]
    assert error["code"] == "form_param_value_invalid"
    assert error["meta"] == {"param_name": "limit"}
    with pytest.raises(ValueError, match="between 1 and 500"):
        ClerkProvider(Secret(KEY), api.url, page_size=501)


# -- Clerk: rate limits and failures -------------------------------------------------------


def test_clerk_429_waits_as_retry_after_says(clerk_api: Any) -> None:
    api = clerk_api(700)
    api.rate_limit(3, "0")
    provider = clerk(api)
    assert len(list(provider.users())) == 700
    assert provider.waits == [0.0, 0.0, 0.0]
    assert api.requests["/users"] == 5
    api.rate_limit(1, "2")
    assert provider.count() == 700
    assert provider.waits[-1] == 2.0


def test_clerk_429_without_retry_after_backs_off_exponentially(clerk_api: Any) -> None:
    api = clerk_api(10)
    api.rate_limit(3, None)
    provider = clerk(api)
    assert len(list(provider.users())) == 10
    assert provider.waits == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF]


def test_clerk_a_retry_after_past_five_minutes_gives_up_and_says_when(clerk_api: Any) -> None:
    api = clerk_api(10)
    api.rate_limit(1, "3600")
    with pytest.raises(ProviderUnavailable) as caught:
        list(clerk(api).users())
    assert "HTTP 429" in str(caught.value)
    assert caught.value.retry_after == 3600.0


@pytest.mark.parametrize("status", [500, 502, 503])
def test_clerk_server_errors_are_retried(clerk_api: Any, status: int) -> None:
    api = clerk_api(1234)
    api.fail(2, status)
    provider = clerk(api)
    assert [u.id for u in provider.users()] == [clerk_id(i) for i in range(1234)]
    assert provider.waits == [BACKOFF, 2 * BACKOFF]
    assert api.requests["/users"] == 5


def test_clerk_lost_connections_are_retried(clerk_api: Any) -> None:
    api = clerk_api(600)
    users = clerk(api).users()
    first = next(users)
    api.disconnect(2)
    rest = list(users)
    assert [first.id, *(u.id for u in rest)] == [clerk_id(i) for i in range(600)]


def test_clerk_a_5xx_that_persists_is_provider_unavailable(clerk_api: Any) -> None:
    api = clerk_api(1234)
    api.fail(100, 503)
    provider = clerk(api, max_retries=3)
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.users())
    assert type(caught.value) is ProviderUnavailable
    message = str(caught.value)
    assert "\n" not in message
    assert "page 1 " in message
    assert "HTTP 503 Service Unavailable" in message
    assert "service_unavailable: Service unavailable, please try again later" in message
    assert "gave up after 4 attempts" in message
    assert api.requests["/users"] == 4
    assert provider.waits == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF]


def test_clerk_a_failure_on_page_37_of_40_is_an_incomplete_listing(clerk_api: Any) -> None:
    api = clerk_api(1000)
    api.fail_from_page(37, 500)
    provider = clerk(api, page_size=25, max_retries=2)
    got: list[ProviderUser] = []
    with pytest.raises(IncompleteListing) as caught:
        drain(provider.users(), got)
    assert [u.id for u in got] == [clerk_id(i) for i in range(36 * 25)]
    message = str(caught.value)
    assert "page 37 of the user listing" in message
    assert "HTTP 500" in message
    assert "internal_clerk_error" in message
    assert "broke off after 36 pages (900 users)" in message
    assert api.requests["/users"] == 36 + 3


def test_clerk_an_unreachable_api_is_retried_then_unavailable(clerk_api: Any) -> None:
    api = clerk_api(10)
    api.stop()
    provider = clerk(api, max_retries=2)
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.users())
    assert type(caught.value) is ProviderUnavailable
    assert "cannot reach 127.0.0.1" in str(caught.value)
    assert "gave up after 3 attempts" in str(caught.value)
    assert provider.waits == [BACKOFF, 2 * BACKOFF]


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("cut", "body that is not JSON"),
        ("no-id", "entry 251 has no id"),
        ("not-a-list", "expected a JSON array of users, got a JSON object"),
    ],
)
def test_clerk_a_truncated_page_is_an_incomplete_listing(
    clerk_api: Any, how: str, says: str
) -> None:
    api = clerk_api(1234)
    api.truncate_page(2, how)
    got: list[ProviderUser] = []
    with pytest.raises(IncompleteListing) as caught:
        drain(clerk(api).users(), got)
    assert len(got) == 500
    assert "page 2 of the user listing is truncated" in str(caught.value)
    assert says in str(caught.value)
    assert api.requests["/users"] == 2


def test_clerk_a_truncated_first_page_is_an_incomplete_listing_too(clerk_api: Any) -> None:
    api = clerk_api(10)
    api.truncate_page(1, "cut")
    with pytest.raises(IncompleteListing):
        list(clerk(api).users())


def test_clerk_an_empty_page_ends_the_listing_and_the_count_tells(clerk_api: Any) -> None:
    api = clerk_api(1234)
    api.truncate_page(2, "empty")
    provider = clerk(api)
    assert len(list(provider.users())) == 500
    assert provider.count() == 1234


@pytest.mark.parametrize("call", ["users", "count"])
def test_clerk_a_wrong_key_is_unavailable_at_once_and_never_shown(
    clerk_api: Any, call: str
) -> None:
    api = clerk_api(10, echo_credentials=True)
    provider = clerk(api, key=WRONG)
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.users()) if call == "users" else provider.count()
    assert type(caught.value) is ProviderUnavailable
    message = str(caught.value)
    assert WRONG not in message
    assert WRONG not in repr(caught.value)
    assert "HTTP 401" in message
    assert "authentication_invalid" in message
    assert "secret key was refused" in message
    assert api.total_requests == 1
    assert provider.waits == []
    assert WRONG not in repr(provider)


# -- Clerk: mapping and count ---------------------------------------------------------------


def test_clerk_maps_users(clerk_api: Any) -> None:
    api = clerk_api(200)
    users = {u.id: u for u in clerk(api).users()}
    ada = users[clerk_id(0)]
    assert ada == ProviderUser(
        id=clerk_id(0),
        email="ada.lovelace.0@example.com",
        first_name="Ada",
        last_name="Lovelace",
        active=True,
        updated_at=at(updated_ms(0)),
        external_id="crm-0000000",
    )
    assert users[clerk_id(3)].email == "work.3@example.com"  # the second address is primary
    assert users[clerk_id(96)].email is None  # no address at all
    assert users[clerk_id(1)].external_id is None
    assert users[clerk_id(49)].active is False  # banned
    assert users[clerk_id(72)].active is True  # locked: a lockout after failed sign-ins
    assert users[clerk_id(71)].active is True
    assert users[clerk_id(88)].active is False  # deprovisioned: restricted from signing in
    moment = users[clerk_id(123)].updated_at
    assert moment == at(updated_ms(123))
    assert moment is not None
    assert moment.tzinfo is not None
    assert moment.microsecond == (updated_ms(123) % 1000) * 1000
    assert moment > at(created_ms(123))


def test_clerk_maps_changed_and_removed_users(clerk_api: Any) -> None:
    population = Population(
        10,
        overrides={
            4: {"primary_email_address_id": "idn_gone"},
            5: {"banned": True, "first_name": "Changed"},
            6: None,
        },
    )
    api = clerk_api(population)
    users = {u.id: u for u in clerk(api, page_size=3).users()}
    assert len(users) == 9
    assert clerk_id(6) not in users
    assert users[clerk_id(4)].email is None
    assert (users[clerk_id(5)].active, users[clerk_id(5)].first_name) == (False, "Changed")
    assert list(users) == [clerk_id(i) for i in range(10) if i != 6]


def test_clerk_lists_plain_lists_and_factories(clerk_api: Any) -> None:
    made = [{"id": f"user_{n:03d}", "email_addresses": [], "updated_at": 0} for n in range(7)]
    for users in (made, lambda: iter(made)):
        api = clerk_api(users)
        assert [u.id for u in clerk(api, page_size=2).users()] == [u["id"] for u in made]
        assert api.requests["/users"] == 4


def test_clerk_count(clerk_api: Any) -> None:
    api = clerk_api(1234)
    provider = clerk(api)
    assert provider.count() == 1234
    api.count_answer = 1200
    assert provider.count() == 1200
    assert api.requests == {"/users/count": 2}


def test_clerk_counts_and_lists_with_one_client_closed_once(
    clerk_api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.Client] = []

    class Counted(httpx.Client):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            made.append(self)

    monkeypatch.setattr(httpx, "Client", Counted)
    api = clerk_api(1200)
    with clerk(api) as provider:
        assert provider.count() == 1200
        assert len(list(provider.users())) == 1200
        assert provider.count() == 1200
    assert len(made) == 1, "one client (one SSL context) for every call of the provider"
    assert made[0].is_closed
    provider.close()  # a second close does nothing


def test_clerk_leaves_a_client_it_was_given_open(clerk_api: Any) -> None:
    api = clerk_api(3)
    with httpx.Client() as given:
        with clerk(api, client=given) as provider:
            assert provider.count() == 3
        assert not given.is_closed


@pytest.mark.parametrize("collecting", [True, False])
def test_clerk_pages_leave_the_garbage_collector_as_they_found_it(
    clerk_api: Any, collecting: bool
) -> None:
    api = clerk_api(1200)
    if not collecting:
        gc.disable()
    try:
        assert len(list(clerk(api).users())) == 1200
        assert gc.isenabled() is collecting
    finally:
        gc.enable()


# -- SCIM --------------------------------------------------------------------------------


def test_scim_pages_by_start_index_until_total_results(scim_api: Any) -> None:
    api = scim_api(234)
    users = list(scim(api).users())
    assert [u.id for u in users] == [scim_id(i) for i in range(234)]
    assert [s.query for s in api.seen] == [
        {"startIndex": str(start), "count": "100"} for start in (1, 101, 201)
    ]
    headers = api.seen[0].headers
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Accept"] == "application/scim+json"


@pytest.mark.parametrize(("count", "requests"), [(0, 1), (100, 1), (300, 3), (301, 4)])
def test_scim_stops_at_total_results(scim_api: Any, count: int, requests: int) -> None:
    api = scim_api(count)
    assert [u.id for u in scim(api).users()] == [scim_id(i) for i in range(count)]
    assert api.requests["/Users"] == requests


def test_scim_pages_shorter_than_asked_are_followed(scim_api: Any) -> None:
    api = scim_api(234, max_count=40)
    users = list(scim(api).users())
    assert [u.id for u in users] == [scim_id(i) for i in range(234)]
    assert [s.query["startIndex"] for s in api.seen] == ["1", "41", "81", "121", "161", "201"]


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("empty", "no Resources at startIndex=101 while totalResults is 234"),
        ("no-id", "resource 51 has no id"),
        ("cut", "not JSON"),
        ("not-a-list", "Resources is a JSON object, not a list"),
    ],
)
def test_scim_a_truncated_page_is_an_incomplete_listing(scim_api: Any, how: str, says: str) -> None:
    api = scim_api(234)
    api.truncate_page(2, how)
    got: list[ProviderUser] = []
    with pytest.raises(IncompleteListing) as caught:
        drain(scim(api).users(), got)
    assert len(got) == 100
    assert "page 2 of the user listing is truncated" in str(caught.value)
    assert says in str(caught.value)


def test_scim_a_server_ignoring_start_index_is_an_incomplete_listing(scim_api: Any) -> None:
    api = scim_api(234)
    api.ignore_start_index = True
    got: list[ProviderUser] = []
    with pytest.raises(IncompleteListing, match="the server answered startIndex=1"):
        drain(scim(api).users(), got)
    assert len(got) == 100


def test_scim_users_removed_during_the_listing_make_it_incomplete(scim_api: Any) -> None:
    api = scim_api(234)
    got: list[ProviderUser] = []
    users = scim(api).users()
    got.append(next(users))
    api.population.remove(10)  # user 100 moves to index 99: page 2 would skip it
    with pytest.raises(IncompleteListing, match="totalResults fell from 234 to 233"):
        drain(users, got)
    assert len(got) == 100


def test_scim_users_added_during_the_listing_are_listed(scim_api: Any) -> None:
    population = Population(234, scim_user, overrides={233: None})
    api = scim_api(population)
    users = scim(api).users()
    got = [next(users)]
    population.count = 240  # created meanwhile, after every listed one
    got.extend(users)
    assert [u.id for u in got] == [scim_id(i) for i in range(240) if i != 233]


def test_scim_maps_users_and_chooses_the_primary_email(scim_api: Any) -> None:
    population = Population(
        120,
        scim_user,
        overrides={
            110: {"emails": [], "userName": "someone@example.org"},
            111: {"active": "False", "meta": {"lastModified": "2024-05-06T07:08:09+02:00"}},
        },
    )
    api = scim_api(population)
    users = {u.id: u for u in scim(api).users()}
    assert users[scim_id(0)] == ProviderUser(
        id=scim_id(0),
        email="ada.lovelace.0@example.com",
        first_name="Ada",
        last_name="Lovelace",
        active=True,
        updated_at=at(updated_ms(0)),
        external_id="hr-0000000",
    )
    assert users[scim_id(3)].email == "edsger.dijkstra.3@example.com"  # primary, not first
    assert users[scim_id(5)].email == "donald.knuth.5@example.net"  # no primary: the first
    assert users[scim_id(96)].email is None  # no emails, userName not an address
    assert users[scim_id(110)].email == "someone@example.org"  # no emails: the userName
    assert users[scim_id(49)].active is False
    assert users[scim_id(111)].active is False
    assert users[scim_id(111)].updated_at == datetime(2024, 5, 6, 5, 8, 9, tzinfo=UTC)
    assert users[scim_id(17)].updated_at == at(updated_ms(17))


def test_scim_count(scim_api: Any) -> None:
    api = scim_api(234)
    provider = scim(api)
    assert provider.count() == 234
    assert api.seen[-1].query == {"startIndex": "1", "count": "0"}
    api.count_answer = 230
    assert provider.count() == 230
    api.count_answer = None
    api.reject_zero_count = True
    assert provider.count() == 234
    assert [s.query["count"] for s in api.seen[-2:]] == ["0", "1"]


def test_scim_429_and_5xx_are_retried(scim_api: Any) -> None:
    api = scim_api(234)
    api.rate_limit(2, "0")
    api.fail(2, 502)
    provider = scim(api)
    assert [u.id for u in provider.users()] == [scim_id(i) for i in range(234)]
    assert provider.waits == [0.0, 0.0, BACKOFF, 2 * BACKOFF]
    assert api.requests["/Users"] == 3 + 4


def test_scim_a_5xx_that_persists_is_provider_unavailable(scim_api: Any) -> None:
    api = scim_api(234)
    api.fail(100, 500)
    with pytest.raises(ProviderUnavailable) as caught:
        list(scim(api, max_retries=2).users())
    assert type(caught.value) is ProviderUnavailable
    message = str(caught.value)
    assert "scim: page 1 of the user listing: HTTP 500 Internal Server Error" in message
    assert "There was an internal error on our servers" in message
    assert "gave up after 3 attempts" in message


def test_scim_a_failure_on_page_37_of_40_is_an_incomplete_listing(scim_api: Any) -> None:
    api = scim_api(1000)
    api.fail_from_page(37, 503)
    got: list[ProviderUser] = []
    with pytest.raises(IncompleteListing) as caught:
        drain(scim(api, page_size=25, max_retries=1).users(), got)
    assert [u.id for u in got] == [scim_id(i) for i in range(900)]
    assert "page 37" in str(caught.value)
    assert "broke off after 36 pages (900 users)" in str(caught.value)


def test_scim_a_wrong_token_is_unavailable_at_once_and_never_shown(scim_api: Any) -> None:
    api = scim_api(10, echo_credentials=True)
    provider = scim(api, token=WRONG)
    with pytest.raises(ProviderUnavailable) as caught:
        list(provider.users())
    assert type(caught.value) is ProviderUnavailable
    message = str(caught.value)
    assert WRONG not in message
    assert "HTTP 401" in message
    assert "Authorization failure" in message
    assert "token was refused" in message
    assert api.total_requests == 1


# -- asked about one by one, before anyone is deleted -----------------------------------


def test_clerk_says_which_users_it_still_has(clerk_api: Any) -> None:
    api = clerk_api(30)
    api.population.remove(4)
    provider = clerk(api)
    asked = [clerk_id(3), clerk_id(4), "user_not/a real?id"]
    assert provider.still_present(asked) == [clerk_id(3)]
    assert api.requests[f"/users/{clerk_id(3)}"] == 1
    assert any(s.path.endswith("/users/user_not%2Fa%20real%3Fid") for s in api.seen)


def test_clerk_lookups_wait_out_rate_limits(clerk_api: Any) -> None:
    api = clerk_api(30)
    api.rate_limit(2, retry_after="3")
    provider = clerk(api)
    assert provider.still_present([clerk_id(7)]) == [clerk_id(7)]
    assert provider.waits == [3.0, 3.0]


def test_a_404_that_is_not_the_apis_stops_the_lookups(clerk_api: Any, scim_api: Any) -> None:
    for provider, double in ((clerk, clerk_api(5)), (scim, scim_api(5))):
        double.html_lookups = True
        with pytest.raises(ProviderUnavailable, match="nothing deleted") as caught:
            provider(double).still_present(["someone"])
        assert not isinstance(caught.value, IncompleteListing)


def test_scim_says_which_users_it_still_has(scim_api: Any) -> None:
    api = scim_api(30)
    api.population.remove(4)
    assert scim(api).still_present([scim_id(4), scim_id(3)]) == [scim_id(3)]


def test_scim_listing_skips_a_user_when_one_goes_and_one_comes(scim_api: Any) -> None:
    """totalResults stays the same, so the listing cannot tell; asking about the users it
    left out can."""
    population = Population(233, scim_user)
    api = scim_api(population)

    def one_goes_one_comes() -> None:
        population.remove(10)
        population.count = 234  # user 233 is created: the total is unchanged

    api.after_page(1, one_goes_one_comes)
    provider = scim(api)
    listed = {u.id for u in provider.users()}
    left_out = sorted({scim_id(i) for i in range(233)} - listed)
    assert left_out == [scim_id(100)]  # user 10 was listed before it went
    assert provider.still_present([scim_id(10), *left_out]) == [scim_id(100)]


@pytest.mark.parametrize(
    ("changes", "email", "updated_at"),
    [
        ({}, "ada@example.com", datetime(2026, 1, 1, tzinfo=UTC)),
        ({"primary_email_address_id": None}, None, datetime(2026, 1, 1, tzinfo=UTC)),
        ({"updated_at": 10**20}, "ada@example.com", None),
        ({"updated_at": float("nan")}, "ada@example.com", None),
        ({"updated_at": True}, "ada@example.com", None),
    ],
    ids=["primary", "no-primary", "year-3-billion", "nan", "boolean"],
)
def test_clerk_users_odd_fields(
    changes: dict[str, object], email: str | None, updated_at: datetime | None
) -> None:
    """A null primary id picks no address (not one whose id is missing too), and an
    updated_at no datetime can hold is unknown rather than a traceback."""
    from reconciler.identity.clerk_user import from_clerk

    data: dict[str, Any] = {
        "id": "user_1",
        "primary_email_address_id": "idn_1",
        "email_addresses": [
            {"email_address": "stray@example.com"},
            {"id": "idn_1", "email_address": "ada@example.com"},
        ],
        "updated_at": 1767225600000,
        "banned": False,
        "locked": True,
    }
    user = from_clerk({**data, **changes})
    assert (user.email, user.updated_at, user.active) == (email, updated_at, True)
