"""`reconciler lint` as CI runs it: formats, exit codes, data-aware with a policy."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from click.testing import Result

from tests.conftest import ALEMBIC, EXAMPLES, PRISMA_PG, PRISMA_SQLITE, pg_query

Cli = Callable[..., Result]

RISKY = """-- AlterTable
ALTER TABLE "users" DROP COLUMN "name",
ADD COLUMN     "full_name" TEXT;

-- CreateIndex
CREATE INDEX "users_full_name_idx" ON "users"("full_name");
"""


def risky_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(PRISMA_PG, folder)
    path = folder / "20261201000000_rename_name" / "migration.sql"
    path.parent.mkdir()
    path.write_text(RISKY)
    return folder


def test_static_lint_of_paths_blocks_data_loss(cli: Cli, tmp_path: Path) -> None:
    folder = risky_folder(tmp_path)
    result = cli("lint", folder / "20261201000000_rename_name")
    assert result.exit_code == 1
    assert "static (no database)" in result.stdout
    assert "migration.sql:2: data-loss drop-column BLOCKS" in result.stdout
    assert "rename-as-drop-add BLOCKS" in result.stdout
    assert "migration.sql:6: locking index-without-concurrently" in result.stdout


@pytest.mark.parametrize("path", [PRISMA_PG, PRISMA_SQLITE, ALEMBIC])
def test_static_lint_of_the_example_histories_passes(cli: Cli, path: Path) -> None:
    result = cli("lint", path)
    assert result.exit_code == 0, result.output
    assert "0 blocking" in result.stdout


@pytest.mark.parametrize(
    ("path", "what"),
    [
        (EXAMPLES / "users.yaml", "not a migration"),
        (EXAMPLES / "prisma" / "schema.prisma", "not a migration"),
        (PRISMA_SQLITE / "migration_lock.toml", "not a migration"),
        (EXAMPLES, "not a migrations folder"),
        (ALEMBIC / "versions", "not a migrations folder"),
    ],
    ids=["yaml", "prisma-schema", "lock-file", "folder", "alembic-versions"],
)
def test_lint_of_what_is_not_a_migration_is_one_line_and_lints_nothing(
    cli: Cli, path: Path, what: str
) -> None:
    """Never read as SQL: a YAML file is not a migration with a syntax error."""
    result = cli("lint", PRISMA_PG, path)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"reconciler: error: {path}: {what}; lint takes .sql files, Alembic revisions (.py), "
        "Prisma migrations folders and Alembic script directories"
    ]


def test_lint_of_a_python_file_that_is_no_revision_says_so(cli: Cli) -> None:
    result = cli("lint", ALEMBIC / "env.py")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"reconciler: error: {ALEMBIC / 'env.py'}: not a revision of its Alembic script directory"
    ]


def test_one_migration_of_a_sqlite_history_is_linted_as_sqlite(cli: Cli) -> None:
    """As its whole folder is: migration_lock.toml names the provider it was written for."""
    for path in (PRISMA_SQLITE / "20261001090000_init", PRISMA_SQLITE):
        result = cli("lint", path)
        assert result.exit_code == 0, result.output
        assert "note: SQLite migrations" in result.stdout
        assert "syntax-error" not in result.stdout


def uris(node: object, key: str = "") -> list[tuple[str, str]]:
    """Every URI-valued property of a SARIF log (``uri``, ``helpUri``, ``informationUri``...)."""
    if isinstance(node, dict):
        return [pair for k, v in node.items() for pair in uris(v, k)]
    if isinstance(node, list):
        return [pair for item in node for pair in uris(item, key)]
    return [(key, node)] if isinstance(node, str) and key.lower().endswith("uri") else []


URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+")
"""RFC 3986: what a URI (reference) may hold unencoded."""


def test_sarif_output_is_valid_sarif(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = risky_folder(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # the migrations are not below it
    result = cli("lint", folder, "--format", "sarif")
    assert result.exit_code == 1
    sarif = json.loads(result.stdout)
    assert sarif["version"] == "2.1.0"
    run = sarif["runs"][0]
    rule_ids = [r["id"] for r in run["tool"]["driver"]["rules"]]
    assert "drop-column" in rule_ids
    for item in run["results"]:
        assert rule_ids[item["ruleIndex"]] == item["ruleId"]
        assert item["level"] in ("error", "warning", "note")
        region = item["locations"][0]["physicalLocation"]["region"]
        assert region["startLine"] >= 1
    levels = {r["ruleId"]: r["level"] for r in run["results"]}
    assert levels["drop-column"] == "error"
    assert levels["index-without-concurrently"] == "warning"
    # SARIF 2.1.0: informationUri and helpUri are absolute URIs; an artifact's uri is a URI
    # reference: relative to the checkout when below the working directory, else file://.
    found = uris(sarif)
    assert {key for key, _ in found} == {"uri"}, "no relative helpUri or informationUri"
    assert all(URI_CHARACTERS.fullmatch(value) for _, value in found), found
    assert all(value.startswith(f"file://{tmp_path}/") for _, value in found)
    assert urlsplit(sarif["$schema"]).scheme == "https"


def test_sarif_locations_are_relative_below_the_working_directory(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = risky_folder(tmp_path).rename(tmp_path / "db migrations")
    monkeypatch.chdir(tmp_path)
    sarif = json.loads(cli("lint", folder, "-f", "sarif").stdout)
    locations = {
        r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        for r in sarif["runs"][0]["results"]
    }
    assert "db%20migrations/20261201000000_rename_name/migration.sql" in locations
    assert all(uri.startswith("db%20migrations/") for uri in locations)


def test_github_format_annotates_lines(cli: Cli, tmp_path: Path) -> None:
    result = cli("lint", risky_folder(tmp_path), "-f", "github")
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("::")]
    assert any(
        ln.startswith("::error file=") and ",line=2,title=reconciler drop-column::" in ln
        for ln in lines
    )
    assert any(ln.startswith("::warning ") and "index-without-concurrently" in ln for ln in lines)
    assert result.stdout.splitlines()[-1] == (
        f"reconciler lint: {len(lines)} finding(s), 2 blocking, static (no database)."
    )


def test_json_format(cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths as the SARIF and github formats give them: relative below the working directory."""
    folder = risky_folder(tmp_path)
    monkeypatch.chdir(tmp_path)
    result = cli("lint", folder, "-f", "json")
    report = json.loads(result.stdout)
    assert report["failed"] is True
    drop = next(f for f in report["findings"] if f["rule"] == "drop-column")
    assert drop["blocking"] is True
    assert drop["static"] is True
    assert drop["line"] == 2
    assert drop["file"] == "migrations/20261201000000_rename_name/migration.sql"
    assert drop["target"] == "migrations"
    github = cli("lint", folder, "-f", "github").stdout
    assert f"::error file={drop['file']},line=2,title=reconciler drop-column::" in github


def test_lint_with_policy_is_data_aware_and_honours_approvals(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    folder = risky_folder(tmp_path)
    migration = folder / "20261201000000_rename_name" / "migration.sql"
    held = migration.read_text()
    migration.unlink()
    migration.parent.rmdir()
    text = (
        f"targets:\n  - name: shop\n    database: {pg_url}\n"
        "    migrations: {layout: prisma, path: migrations}\n"
    )
    policy = write_policy(text)
    assert cli("apply", "-c", policy, "--yes").exit_code == 0
    pg_query(pg_url, "INSERT INTO users (email, name) VALUES ('a@x', 'Ann'), ('b@x', NULL)")
    migration.parent.mkdir()
    migration.write_text(held)

    result = cli("lint", "-c", policy)
    assert result.exit_code == 1
    assert "data-aware" in result.stdout
    assert "drops users.name: 1 non-null value lost" in result.stdout

    import hashlib

    checksum = hashlib.sha256(migration.read_bytes()).hexdigest()[:12]
    approved = write_policy(
        text
        + (
            "    safety:\n      approvals:\n"
            "        - migration: 20261201000000_rename_name\n"
            f"          checksum: '{checksum}'\n"
            "          rules: [drop-column, rename-as-drop-add]\n"
            "          reason: Ann's name moved to full_name by hand\n"
        )
    )
    result = cli("lint", "-c", approved)
    assert result.exit_code == 0, result.output
    assert "(approved: Ann's name moved to full_name by hand)" in result.stdout


def test_unknown_rule_in_an_approval_is_a_policy_error(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///x.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    safety:\n      approvals:\n        - migration: 20261001090000_init\n"
        "          checksum: abcdef12\n          rules: [drop-colum]\n"
        "          reason: typo in the rule\n"
    )
    result = cli("check", "-c", policy)
    assert result.exit_code == 1
    assert (
        "policy.yaml:7:11: targets[0].safety.approvals[0]: unknown rule 'drop-colum'"
        in result.stderr
    )


def test_approval_for_a_migration_that_does_not_exist_stops_the_plan(
    cli: Cli, write_policy: Callable[[str], Path], tmp_path: Path
) -> None:
    shutil.copytree(PRISMA_SQLITE, tmp_path / "migrations")
    policy = write_policy(
        "targets:\n  - name: shop\n    database: sqlite:///x.db\n"
        "    migrations: {layout: prisma, path: migrations}\n"
        "    safety:\n      approvals:\n        - migration: 20991231000000_nope\n"
        "          checksum: abcdef12\n          rules: [drop-column]\n"
        "          reason: for a migration that is not there\n"
    )
    result = cli("plan", "-c", policy)
    assert result.exit_code == 1
    assert "blocked (InvalidPolicy)" in result.stdout
    assert "'20991231000000_nope'" in result.stdout
