"""Loading a policy: what a user writes is validated, and every error points at its line."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel

from reconciler.errors import PolicyError
from reconciler.policy import DAEMON_SECTIONS, Policy, load_policy

GOOD = """
ledger: sqlite:///var/ledger.db
targets:
  - name: shop
    environment: staging
    database: ${DATABASE_URL:-sqlite:///var/shop.db}
    migrations:
      layout: prisma
      path: migrations
      revision: head
    apply: manual
    timeouts: {lock: 2s, statement: 1h30m}
"""


def test_valid_policy_resolves_paths_against_the_policy_folder(
    write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    policy = load_policy(write_policy(GOOD), environ={})
    target = policy.target("shop")
    assert target.environment == "staging"
    assert target.apply == "manual"
    assert target.migrations.path == tmp_path / "migrations"
    assert target.database.sqlite_path == tmp_path / "var" / "shop.db"
    assert policy.ledger.sqlite_path == tmp_path / "var" / "ledger.db"
    assert (target.timeouts.lock, target.timeouts.statement) == (2.0, 5400.0)


def test_environment_reference_takes_the_variable(write_policy: Callable[[str], Path]) -> None:
    policy = load_policy(write_policy(GOOD), environ={"DATABASE_URL": "postgresql://db/shop"})
    assert policy.targets[0].database.dialect == "postgresql"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("layout: prisma", "layout: flyway"),
            "policy.yaml:7:7: targets[0].migrations.layout: must be one of prisma, alembic",
        ),
        (
            ("layout: prisma", "layot: prisma"),
            "policy.yaml:7:7: targets[0].migrations.layot: unknown key (did you mean 'layout'?)",
        ),
        (
            ("environment: staging", "environment: prod"),
            "policy.yaml:4:5: targets[0].environment: must be one of production, staging, "
            "development",
        ),
        (
            # PostgreSQL refuses a timeout over INT_MAX ms: said when the policy loads.
            ("{lock: 2s,", "{lock: 30d,"),
            "policy.yaml:11:16: targets[0].timeouts.lock: at most 24d (PostgreSQL's limit for "
            "a timeout is 2147483647 ms); 0 disables it",
        ),
        (
            ("{lock: 2s,", "{lock: soon,"),
            "policy.yaml:11:16: targets[0].timeouts.lock: must be a duration such as 30s, 5m, 2h "
            "or 7d, not 'soon'",
        ),
        (
            ("apply: manual", "apply: [auto]"),
            "policy.yaml:10:5: targets[0].apply: must be one of auto, manual",
        ),
        (
            (
                "    migrations:\n      layout: prisma\n      path: migrations\n",
                "    migrations:\n",
            ),
            "policy.yaml:6:5: targets[0].migrations.layout: required",
        ),
        (
            ("name: shop", "name: Shop Floor"),
            "policy.yaml:3:5: targets[0].name: must be lowercase letters, digits, '-' or '_'",
        ),
        (
            ("${DATABASE_URL:-sqlite:///var/shop.db}", "${SHOP_DB}"),
            "policy.yaml:5:5: targets[0].database: environment variable SHOP_DB is not set",
        ),
        (
            ("${DATABASE_URL:-sqlite:///var/shop.db}", "mysql://db/shop"),
            "policy.yaml:5:5: targets[0].database: unsupported database 'mysql'",
        ),
        (
            ("  - name: shop\n", "  - name: shop\n    name: again\n"),
            "policy.yaml:4:5: targets[0].name: duplicate key",
        ),
        (
            ("path: migrations", "path: [migrations"),
            "policy.yaml:9:15: invalid YAML: expected ',' or ']'",
        ),
    ],
)
def test_bad_input_names_file_line_and_field(
    write_policy: Callable[[str], Path], change: tuple[str, str], expected: str
) -> None:
    text = GOOD.replace(*change)
    assert text != GOOD
    path = write_policy(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path, environ={})
    message = str(caught.value)
    assert message.startswith(str(path.parent / expected.split(":")[0]))
    assert expected.split("policy.yaml", 1)[1] in message.replace(str(path), "")


def test_required_fields_and_empty_policies(write_policy: Callable[[str], Path]) -> None:
    with pytest.raises(PolicyError, match=r":1:1: the policy is empty"):
        load_policy(write_policy("# nothing yet\n"), environ={})
    with pytest.raises(PolicyError, match=r"targets: must list at least one entry"):
        load_policy(write_policy("targets: []\n"), environ={})
    with pytest.raises(PolicyError, match=r":2:5: targets\[0\]\.database: required"):
        load_policy(
            write_policy("targets:\n  - name: a\n    migrations: {layout: prisma, path: m}\n"),
            environ={},
        )


def test_duplicate_target_names_are_refused(write_policy: Callable[[str], Path]) -> None:
    text = GOOD + GOOD.split("targets:\n", 1)[1]
    with pytest.raises(PolicyError, match="target name 'shop' is used twice"):
        load_policy(write_policy(text), environ={})


def test_every_problem_is_reported_one_per_line(write_policy: Callable[[str], Path]) -> None:
    text = GOOD.replace("layout: prisma", "layout: flyway").replace("apply: manual", "aply: x")
    with pytest.raises(PolicyError) as caught:
        load_policy(write_policy(text), environ={})
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    assert all(line.count(":") >= 3 for line in lines)


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match=r"policy file not found"):
        load_policy(tmp_path / "nope.yaml")


def test_text_that_is_not_utf8_is_named_by_line_and_a_bom_is_fine(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_bytes(b"ledger: sqlite:///l.db\n# caf\xe9\ntargets: []\n")
    with pytest.raises(PolicyError) as caught:
        load_policy(policy, environ={})
    assert str(caught.value) == f"{policy}:2:6: not UTF-8 (byte 0xe9); save the file as UTF-8"
    policy.write_bytes(
        b"\xef\xbb\xbfledger: sqlite:///l.db\ntargets:\n  - name: shop\n"
        b"    database: sqlite:///shop.db\n    migrations: {layout: prisma, path: m}\n"
    )
    assert load_policy(policy, environ={}).targets[0].name == "shop"


def test_secrets_never_show_in_repr_or_errors(write_policy: Callable[[str], Path]) -> None:
    secret = "s3cr3t-Pa55word"
    url = f"postgresql://app:{secret}@db.internal:5432/shop"
    policy = load_policy(write_policy(GOOD), environ={"DATABASE_URL": url})
    assert secret not in repr(policy)
    assert secret not in str(policy.targets[0].database)
    assert "app:***@db.internal" in repr(policy.targets[0])
    bad = GOOD.replace("layout: prisma", "layout: nope")
    with pytest.raises(PolicyError) as caught:
        load_policy(write_policy(bad), environ={"DATABASE_URL": url})
    assert secret not in str(caught.value)


def test_literal_dollar_brace_is_kept(write_policy: Callable[[str], Path]) -> None:
    text = GOOD.replace("revision: head", "revision: $${NOT_A_VAR}")
    policy = load_policy(write_policy(text), environ={})
    assert policy.targets[0].migrations.revision == "${NOT_A_VAR}"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            "    timeouts: 5\n",
            "policy.yaml:5:5: targets[0].timeouts: must be a mapping such as "
            "{lock: 5s, statement: 10m}",
        ),
        (
            "    windows: [nightly]\n",
            "policy.yaml:5:15: targets[0].windows[0]: must be a mapping such as {days: [mon, ",
        ),
        (
            "    identity: {provider: file, file: users.yaml, key: clerk_id}\n",
            "policy.yaml:5:32: targets[0].identity.file: must be a mapping such as "
            "{path: users.yaml}",
        ),
        (
            "    safety: {approvals: [drop it]}\n",
            "policy.yaml:5:26: targets[0].safety.approvals[0]: must be a mapping such as "
            "{migration: ",
        ),
        ("retention: 30d\n", "policy.yaml:5:1: retention: must be a mapping such as {runs: "),
    ],
    ids=["timeouts", "window", "identity-file", "approval", "retention"],
)
def test_a_section_given_as_a_plain_value_shows_what_to_write(
    write_policy: Callable[[str], Path], line: str, expected: str
) -> None:
    """Not pydantic's 'a valid dictionary or instance of Timeouts': the user wrote no class."""
    path = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///shop.db\n"
        "    migrations: {layout: prisma, path: migrations}\n" + line
    )
    with pytest.raises(PolicyError) as caught:
        load_policy(path, environ={})
    message = str(caught.value)
    assert message.startswith(f"{path.parent}/{expected}"), message
    assert "instance" not in message


def sections() -> set[type[BaseModel]]:
    """Every section of the policy, nested ones included."""
    found: set[type[BaseModel]] = set()

    def visit(annotation: object) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation not in found:
                found.add(annotation)
                for field in annotation.model_fields.values():
                    visit(field.annotation)
            return
        for arg in get_args(annotation):
            visit(arg)

    for field in Policy.model_fields.values():
        visit(field.annotation)
    return found


@pytest.mark.parametrize(
    "section", sorted(sections(), key=lambda s: s.__name__), ids=lambda s: s.__name__
)
def test_every_section_has_an_example_that_is_valid(
    section: type[BaseModel], tmp_path: Path
) -> None:
    example = getattr(section, "EXAMPLE", None)
    assert example, f"{section.__name__} has no EXAMPLE for its errors"
    text = re.sub(r"\$\{\w+\}", "an-example-credential", example)
    section.model_validate(yaml.safe_load(text), context={"base_dir": tmp_path})


DEEP = "[" * 2000 + "]" * 2000
CHAIN = (
    "chain0: &c0 "
    + "[" * 40
    + "]" * 40
    + "\n"
    + "".join(f"chain{i}: &c{i} " + "[" * 30 + f"*c{i - 1}" + "]" * 30 + "\n" for i in range(1, 40))
)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (("lock: 2s", "lock: !!bool maybe"), ":11:16: targets[0].timeouts.lock: not a valid true"),
        (("lock: 2s", "lock: !!int ''"), ":11:16: targets[0].timeouts.lock: not a valid integer"),
        (
            ("revision: head", "revision: !!timestamp x"),
            ":9:7: targets[0].migrations.revision: not a valid date",
        ),
        (("lock: 2s", "lock: ="), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: <<"), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: 2026-01-01"), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: [2s]"), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: {s: 2}"), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: " + "9" * 400), ":11:16: targets[0].timeouts.lock: must be at most"),
        (("lock: 2s", "lock: .nan"), ":11:16: targets[0].timeouts.lock: must be a duration"),
        (("lock: 2s", "lock: " + "9" * 5000), ":11:16: targets[0].timeouts.lock: a number of more"),
        (
            ("apply: manual", "schedule: {jitter: " + "9" * 400 + "}"),
            ":10:16: targets[0].schedule.jitter: must be a percentage such as 10%",
        ),
        (
            ("apply: manual", "windows: [{from: '1:00', to: '2:00', timezone: " + "Z" * 300 + "}]"),
            ":10:42: targets[0].windows[0].timezone: unknown time zone",
        ),
        (
            ("apply: manual", "windows: [{from: '1:00', to: '2:00', timezone: Europe}]"),
            ":10:42: targets[0].windows[0].timezone: unknown time zone 'Europe'",
        ),
        (
            ("apply: manual", "apply: " + DEEP),
            ":10:73: invalid YAML: nested more than 64 levels deep",
        ),
        (("ledger:", CHAIN + "ledger:"), "invalid YAML: aliases nest this more than 64 levels"),
        (("ledger:", "? [a, b]\n: 1\nledger:"), ":1:3: (top level): a key must be a plain name"),
        (("ledger:", "? {a: 1}\n: 1\nledger:"), ":1:3: (top level): a key must be a plain name"),
        (("ledger:", '"led\\nger": 1\nledger:'), ":1:1: led\\nger: unknown key"),
        (("name: shop", 'name: "\\ud800"'), ":3:5: targets[0].name: holds a lone surrogate"),
        (("lock: 2s", "lock: !!set {a}"), ":11:16: targets[0].timeouts.lock: tag !!set is not"),
        (("timeouts:", "timeouts: !!omap"), ":11:5: targets[0].timeouts: tag !!omap is not"),
        (
            ("path: migrations", "path: !!binary bWln"),
            ":8:7: targets[0].migrations.path: tag !!binary is not",
        ),
        (
            ("path: migrations", "path: &a m\n      x: &a n"),
            "duplicate anchor 'a' (first at line 8)",
        ),
        (
            ("path: migrations", 'path: "m\\0"'),
            ":8:7: targets[0].migrations.path: the path holds a NUL",
        ),
        (
            ("path: migrations", "path: " + "m" * 300),
            ":8:7: targets[0].migrations.path: the path is",
        ),
        (
            ("path: migrations", "path: loop/x"),
            ":8:7: targets[0].migrations.path: the path runs into",
        ),
    ],
)
def test_input_the_loader_once_died_on_is_one_line(
    write_policy: Callable[[str], Path],
    tmp_path: Path,
    change: tuple[str, str],
    expected: str,
) -> None:
    """Each of these raised something else than ``PolicyError`` (a ``KeyError``, a
    ``RecursionError``, an ``OverflowError`` ...) or gave a message of several lines."""
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    text = GOOD.replace(*change)
    assert text != GOOD
    path = write_policy(text)
    with pytest.raises(PolicyError) as caught:
        load_policy(path, environ={})
    message = str(caught.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith(str(path) + ":")
    assert expected in message


DAEMON = GOOD + (
    "server: {listen: '0.0.0.0:9108', token: '${RECONCILER_TOKEN}'}\n"
    "notifications: {url: '${NOTIFY_URL}', format: slack}\n"
)


def test_the_daemon_sections_are_resolved_only_when_needed(
    write_policy: Callable[[str], Path],
) -> None:
    path = write_policy(DAEMON)
    policy = load_policy(path, environ={})  # what check, plan, lint ... load
    assert policy.server.token is None
    assert policy.server.listen == "0.0.0.0:9108"  # what needs no variable is read
    assert policy.notifications is None  # a notification needs its URL
    environ = {"RECONCILER_TOKEN": "tok-Resolved-3b2a1", "NOTIFY_URL": "https://hooks.example/x"}
    served = load_policy(path, environ=environ, needs=DAEMON_SECTIONS)
    assert served.server.token is not None
    assert served.server.token.reveal() == "tok-Resolved-3b2a1"
    assert "tok-Resolved-3b2a1" not in repr(served)
    assert served.notifications is not None
    assert served.notifications.format == "slack"
    with pytest.raises(PolicyError) as caught:
        load_policy(path, environ={"NOTIFY_URL": "https://hooks.example/x"}, needs=["server"])
    assert str(caught.value) == (
        f"{path}:12:34: server.token: environment variable RECONCILER_TOKEN is not set "
        "(write ${RECONCILER_TOKEN:-default} to give a default)"
    )
    # Unneeded, the token's variable is not even read: set, it is not taken.
    assert load_policy(path, environ=environ).server.token is None


def test_an_unneeded_section_is_still_checked(write_policy: Callable[[str], Path]) -> None:
    for text, expected in (
        (DAEMON.replace("0.0.0.0:9108", "nowhere"), ":12:10: server.listen: must be host:port"),
        (DAEMON.replace("token:", "tokn:"), ":12:34: server.tokn: unknown key"),
        (
            DAEMON.replace("format: slack", "format: xml"),
            ":13:39: notifications.format: must be one of json, slack",
        ),
    ):
        with pytest.raises(PolicyError) as caught:
            load_policy(write_policy(text), environ={})
        assert expected in str(caught.value)


def test_an_empty_token_is_no_token(write_policy: Callable[[str], Path]) -> None:
    text = DAEMON.replace("${RECONCILER_TOKEN}", "${RECONCILER_TOKEN:-}")
    policy = load_policy(write_policy(text), environ={"NOTIFY_URL": "x"}, needs=DAEMON_SECTIONS)
    assert policy.server.token is None
    given = load_policy(
        write_policy(text),
        environ={"NOTIFY_URL": "x", "RECONCILER_TOKEN": "tok-Given-9a8b7c"},
        needs=DAEMON_SECTIONS,
    )
    assert given.server.token is not None
    assert given.server.token.reveal() == "tok-Given-9a8b7c"
    # Other secrets may not be empty.
    clerk = GOOD + (
        "    identity: {provider: clerk, key: clerk_id, clerk: {secret_key: '${CLERK_KEY:-}'}}\n"
    )
    with pytest.raises(PolicyError, match="secret_key: must be a non-empty string"):
        load_policy(write_policy(clerk), environ={})


def test_a_key_of_another_section_gets_no_hint_naming_itself(
    write_policy: Callable[[str], Path],
) -> None:
    """``path`` is a key of ``migrations``, not of ``backup``: "did you mean 'path'?" there
    would send the reader in a circle."""
    text = GOOD.replace("apply: manual", "apply: manual\n    backup: {driver: sqlite, path: b}")
    with pytest.raises(PolicyError) as raised:
        load_policy(write_policy(text), environ={})
    assert str(raised.value).endswith("targets[0].backup.path: unknown key")
