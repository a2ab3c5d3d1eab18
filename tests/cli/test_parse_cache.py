"""The parse cache never changes a verdict: ``lint`` and ``plan`` print the same report with
an empty cache, a full one, a damaged one and ``--no-cache``, as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ALEMBIC, PRISMA_PG, PRISMA_SQLITE, ROOT
from tests.safety.test_parse_cache import CORPUS


def run(*args: str | Path, cache: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["RECONCILER_CACHE_DIR"] = str(cache)
    return subprocess.run(
        [sys.executable, "-m", "reconciler", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )


def entries(cache: Path) -> dict[str, bytes]:
    folder = cache / "parse"
    return {p.name: p.read_bytes() for p in folder.iterdir()} if folder.is_dir() else {}


def snippets(tmp_path: Path) -> list[Path]:
    """Every PostgreSQL SQL text of the tests and examples, one ``.sql`` file each."""
    folder = tmp_path / "snippets"
    folder.mkdir()
    paths = []
    for number, (_, dialect, text) in enumerate(CORPUS):
        if dialect == "postgresql":
            path = folder / f"{number:04}.sql"
            path.write_text(text, encoding="utf-8")
            paths.append(path)
    return paths


@pytest.mark.parametrize("fmt", ["json", "sarif"])
def test_lint_reports_the_same_cold_warm_and_without_cache(tmp_path: Path, fmt: str) -> None:
    cache = tmp_path / "cache"
    args = ["lint", "--format", fmt, PRISMA_PG, PRISMA_SQLITE, ALEMBIC, *snippets(tmp_path)]
    cold = run(*args, cache=cache)
    assert cold.returncode == 1, cold.stderr  # the tests' SQL holds blocking findings
    assert "Traceback" not in cold.stderr
    stored = entries(cache)
    assert len(stored) > 300
    warm = run(*args, cache=cache)
    assert entries(cache) == stored  # read, not written again
    bare = run("lint", "--no-cache", *args[1:], cache=tmp_path / "unused")
    assert not (tmp_path / "unused").exists()
    assert (warm.returncode, warm.stdout) == (cold.returncode, cold.stdout)
    assert (bare.returncode, bare.stdout) == (cold.returncode, cold.stdout)
    if fmt == "json":
        assert json.loads(cold.stdout)["migrations"] > 300


def test_a_damaged_cache_changes_nothing(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = ["lint", "--format", "json", PRISMA_PG, *snippets(tmp_path)[:80]]
    cold = run(*args, cache=cache)
    stored = entries(cache)
    for number, name in enumerate(sorted(stored)):
        path = cache / "parse" / name
        path.write_bytes([b"", stored[name][: len(stored[name]) // 2], b"\xff{"][number % 3])
    damaged = run(*args, cache=cache)
    assert (damaged.returncode, damaged.stdout) == (cold.returncode, cold.stdout)
    assert entries(cache) == stored  # each entry written again, whole


def test_a_cache_that_cannot_be_written_changes_nothing(tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    args = ["lint", "--format", "json", PRISMA_PG]
    result = run(*args, cache=blocked)
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout)["findings"]
    cached = run(*args, cache=tmp_path / "cache")
    assert (result.returncode, result.stdout) == (cached.returncode, cached.stdout)


def test_plan_uses_the_cache_and_plans_the_same(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    config = ROOT / "config.example.yaml"
    cold = run("plan", "-c", config, "-o", "json", cache=cache, cwd=tmp_path)
    assert cold.returncode == 2, cold.stderr
    assert len(entries(cache)) == len(list(PRISMA_SQLITE.glob("*/migration.sql")))
    warm = run("plan", "-c", config, "-o", "json", cache=cache, cwd=tmp_path)
    bare = run("plan", "--no-cache", "-c", config, "-o", "json", cache=cache, cwd=tmp_path)
    assert warm.stdout == cold.stdout
    assert bare.stdout == cold.stdout


def test_the_cache_holds_no_secret(tmp_path: Path) -> None:
    """A target's URL (with its password) is never in an entry: entries hold what the SQL
    does, keyed by a digest."""
    cache = tmp_path / "cache"
    secret = "s3cr3t-Pa55word"
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "targets:\n"
        "  - name: shop\n"
        f"    database: postgresql://owner:{secret}@127.0.0.1:1/shop\n"
        "    migrations:\n"
        "      layout: prisma\n"
        f"      path: {PRISMA_PG}\n",
        encoding="utf-8",
    )
    result = run("lint", "-c", policy, "--format", "json", cache=cache, cwd=tmp_path)
    assert "Traceback" not in result.stderr
    stored = entries(cache)
    assert stored
    assert not any(secret.encode() in data for data in stored.values())
    assert not any(secret in name for name in stored)
