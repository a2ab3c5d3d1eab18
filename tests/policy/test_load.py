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
from reconciler.policy import Policy, load_policy

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
    assert str(caught.value) == f"{policy}:2: not UTF-8 (byte 0xe9); save the file as UTF-8"
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
