"""libpg_query's JSON called through ``ctypes`` gives what pglast's ``parse_sql_json`` gives.

The comparison runs over every SQL file of the repository's examples and tests, and over
scripts chosen for what a binding gets wrong: text beyond ASCII (byte offsets), a syntax
error, an empty script, a ``DO`` body and a statement PostgreSQL 17 added.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pglast.parser import ParseError, parse_sql_json

from reconciler.safety import libpg_query
from reconciler.safety.ops import parse
from tests.conftest import ROOT

SCRIPTS = [
    'ALTER TABLE "users" ADD COLUMN "nickname" TEXT;',
    "COMMENT ON TABLE users IS 'Zoë ☕ 用户'; ALTER TABLE users DROP COLUMN \"naïve\";",
    "ALTER TABLE users ADD COLUMN",  # a syntax error at the end of the input
    "SELEC 1; DROP TABLE users;",
    "",
    "-- only a comment\n",
    "DO $$ BEGIN PERFORM 1; END $$;",
    "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE RETURNING *;",
]


def _pglast(sql: str) -> str | None:
    try:
        return str(parse_sql_json(sql))
    except ParseError:
        return None


def _files() -> list[Path]:
    return sorted(p for where in ("examples", "tests") for p in (ROOT / where).rglob("*.sql"))


@pytest.mark.parametrize("sql", SCRIPTS)
def test_the_same_tree_as_pglast(sql: str) -> None:
    assert libpg_query.tree(sql) == _pglast(sql)


def test_the_same_tree_as_pglast_for_every_sql_file_here() -> None:
    files = _files()
    assert len(files) > 10
    for path in files:
        sql = path.read_text(encoding="utf-8", errors="replace")
        assert libpg_query.tree(sql) == _pglast(sql), path


def test_the_binding_is_the_c_function_not_pglasts_wrapper() -> None:
    assert libpg_query._extension() is not None  # pglast's wheels ship the extension
    assert libpg_query._bind() is not libpg_query._through_pglast


def test_without_the_extension_pglast_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    """Another build of pglast (no extension file, or one that hides the symbol): the same
    trees through pglast's own wrapper, and the same findings."""
    monkeypatch.setattr(libpg_query, "_extension", lambda: None)
    monkeypatch.setattr(libpg_query, "_bound", [])
    assert libpg_query._bind() is libpg_query._through_pglast
    for sql in SCRIPTS:
        assert libpg_query.tree(sql) == _pglast(sql)
    assert parse(SCRIPTS[2]).error_line == 1
    monkeypatch.setattr(libpg_query, "_extension", lambda: str(ROOT / "pyproject.toml"))
    assert libpg_query._bind() is libpg_query._through_pglast  # not a shared object


def test_a_syntax_error_still_names_its_line() -> None:
    parsed = parse("ALTER TABLE users ADD COLUMN a int;\n\nSELEC 1;\n")
    assert parsed.error_line == 3
    assert parsed.error is not None
    assert "syntax error" in parsed.error


def test_threads_parse_at_once() -> None:
    """The daemon lints from worker threads; ctypes lets go of the GIL during the call, as
    pglast does, and libpg_query keeps its memory per thread."""
    from concurrent.futures import ThreadPoolExecutor

    scripts = [f'ALTER TABLE "t{i}" ADD COLUMN "c{i}" TEXT;' for i in range(200)]
    with ThreadPoolExecutor(8) as pool:
        trees = list(pool.map(libpg_query.tree, scripts))
    for i, text in enumerate(trees):
        assert text is not None
        (stmt,) = json.loads(text)["stmts"]
        assert stmt["stmt"]["AlterTableStmt"]["relation"]["relname"] == f"t{i}"
