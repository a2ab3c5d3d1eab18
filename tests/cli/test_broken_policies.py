"""Policy files the loader once died on, run as a user would: ``check`` and ``plan`` answer
with one line, ``reconciler: error: FILE:LINE:COLUMN: [FIELD: ]MESSAGE``, exit 1, and
leave everything as it was (no database, no ledger)."""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.conftest import PRISMA_SQLITE

Cli = Callable[..., Result]

GOOD = """\
ledger: sqlite:///var/ledger.db
retention: {runs: 365d, quiet: 7d}
targets:
  - name: shop
    database: sqlite:///var/shop.db
    migrations: {layout: prisma, path: migrations}
    timeouts: {lock: 5s, statement: 10m}
    safety:
      approvals:
        - migration: 20261001090000_init
          checksum: abcdef12
          rules: [drop-column]
          reason: reviewed before the release
          expires: 2026-12-31
"""

TOO_LONG = "n" * 300  # longer than a file name may be (255 bytes on Linux)

BROKEN = {
    "empty-duration-in-retention": (
        ("quiet: 7d}", "quiet: }"),
        "2:25: retention.quiet: must be a duration such as 30s, 5m, 2h or 7d",
    ),
    "empty-duration-in-timeouts": (
        ("{lock: 5s,", "{lock: ,"),
        "7:16: targets[0].timeouts.lock: must be a duration such as 30s, 5m, 2h or 7d",
    ),
    "impossible-date": (
        ("expires: 2026-12-31", "expires: 2026-02-30"),
        "14:11: targets[0].safety.approvals[0].expires: not a valid date: "
        "day is out of range for month",
    ),
    "nul-character": (
        ("name: shop", "name: sh\0op"),
        "4:13: invalid YAML: control character U+0000 is not allowed",
    ),
    "escape-character": (
        ("reason: reviewed", "reason: \x1b[31mreviewed"),
        "13:19: invalid YAML: control character U+001B is not allowed",
    ),
    "bell-in-a-comment": (
        ("ledger: sqlite:///var/ledger.db", "ledger: sqlite:///var/ledger.db  # \x07"),
        "1:36: invalid YAML: control character U+0007 is not allowed",
    ),
    "unknown-tag": (
        ("name: shop", "name: !prod shop"),
        "4:5: targets[0].name: tag !prod is not supported; write the value without a tag",
    ),
    "python-tag": (
        ("{lock: 5s,", "{lock: !!python/object/apply:os.system [true],"),
        "7:16: targets[0].timeouts.lock: tag !!python/object/apply:os.system is not "
        "supported; write the value without a tag",
    ),
    "recursive-alias": (
        ("retention: {runs: 365d, quiet: 7d}", "retention: &r {runs: 365d, quiet: *r}"),
        "2:35: invalid YAML: recursive alias: *r is inside &r",
    ),
    "path-too-long-in-the-policy": (
        ("path: migrations}", f"path: {TOO_LONG}}}"),
        "6:34: targets[0].migrations.path: the path is longer than the system allows",
    ),
    "database-path-too-long": (
        ("sqlite:///var/shop.db", f"sqlite:///var/{TOO_LONG}.db"),
        "5:5: targets[0].database: the path is longer than the system allows",
    ),
    "ledger-path-too-long": (
        ("sqlite:///var/ledger.db", f"sqlite:///{'/'.join(['d' * 250] * 20)}/l.db"),
        "1:1: ledger: the path is longer than the system allows",
    ),
}


def laughs(levels: int = 9) -> str:
    """The "billion laughs": each alias list repeats the one before it ten times, so the
    last expands to 10^9 strings (about 1.5 GB as Python objects)."""
    lines = ['lol0: &lol0 "lol"']
    for level in range(1, levels + 1):
        lines.append(f"lol{level}: &lol{level} [" + ", ".join([f"*lol{level - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


def state(folder: Path) -> set[Path]:
    return set(folder.rglob("*"))


def one_error_line(result: Result, policy: Path) -> str:
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    prefix = f"reconciler: error: {policy}:"
    assert lines[0].startswith(prefix), lines[0]
    rest = lines[0][len(prefix) :]
    assert re.match(r"\d+:\d+: \S", rest), lines[0]
    return rest


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    return tmp_path


def test_the_unbroken_policy_passes_check(cli: Cli, folder: Path) -> None:
    policy = folder / "policy.yaml"
    policy.write_text(GOOD, encoding="utf-8")
    result = cli("check", "-c", policy)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("command", ["check", "plan"])
@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_a_broken_policy_is_one_line_and_changes_nothing(
    cli: Cli, folder: Path, case: str, command: str
) -> None:
    (old, new), expected = BROKEN[case]
    assert old in GOOD
    policy = folder / "policy.yaml"
    policy.write_text(GOOD.replace(old, new, 1), encoding="utf-8")
    before = state(folder)
    assert one_error_line(cli(command, "-c", policy), policy) == expected
    assert state(folder) == before


@pytest.mark.parametrize("command", ["check", "plan"])
def test_a_config_path_longer_than_the_system_allows(cli: Cli, folder: Path, command: str) -> None:
    for policy in (folder / f"{TOO_LONG}.yaml", folder.joinpath(*["d" * 250] * 20, "p.yaml")):
        message = one_error_line(cli(command, "-c", policy), policy)
        assert message == "1:1: cannot read the policy: File name too long"


@pytest.mark.parametrize("command", ["check", "plan"])
def test_billion_laughs_are_refused_before_they_expand(
    cli: Cli, folder: Path, command: str
) -> None:
    policy = folder / "policy.yaml"
    policy.write_text(laughs() + GOOD, encoding="utf-8")
    started = time.monotonic()
    message = one_error_line(cli(command, "-c", policy), policy)
    assert time.monotonic() - started < 5
    # Refused at the alias that crosses the limit: the eighth of the lines of 11111.
    assert message == "6:63: invalid YAML: aliases expand the policy by more than 100000 values"


def test_aliases_within_the_limit_are_read(cli: Cli, folder: Path) -> None:
    """Anchors and aliases are ordinary YAML: a policy may share a section between targets."""
    policy = folder / "policy.yaml"
    shared = GOOD.replace("    timeouts: {lock: 5s", "    timeouts: &timeouts {lock: 5s")
    second = (
        "  - name: shop-copy\n"
        "    database: sqlite:///var/copy.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    timeouts: *timeouts\n"
    )
    policy.write_text(shared + second, encoding="utf-8")
    result = cli("check", "-c", policy)
    assert result.exit_code == 0, result.output
    assert "2 target(s)" in result.stdout
