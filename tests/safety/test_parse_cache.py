"""The parse cache gives back exactly what the parser gave, or nothing.

What a migration's SQL parses to is kept on disk (``safety.parse_cache``); a stored entry
must decode to an equal ``ParsedSql`` for every SQL text the project knows (the examples and
every SQL snippet of the tests), and anything else in the folder (a truncated, corrupt or
foreign file, a folder that cannot be written, two writers at once) must be no entry at all.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from msgspec.structs import asdict, fields, replace

from reconciler.safety import parse_cache
from reconciler.safety.analyse import parse_text
from reconciler.safety.operations import Op, ParsedSql
from reconciler.safety.printed import print_updates
from reconciler.safety.types import SqlType
from tests.conftest import EXAMPLES, ROOT

SQL_WORDS = re.compile(
    r"\b(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE|TRUNCATE|COPY|MERGE|DO|COMMENT)\b", re.I
)


RECREATED_ENUMS = [
    'ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING (CASE "role"::text '
    "WHEN 'GUEST' THEN 'USER' WHEN 'ADMIN' THEN 'ADMIN' ELSE NULL END)::\"Role_new\";",
    'ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING (CASE WHEN "role" IN '
    "('A', 'B') THEN 'AB' ELSE \"role\" END)::text::\"Role_new\";",
    'ALTER TABLE "users" ALTER COLUMN "role" TYPE "Role_new" USING (CASE WHEN "role" = '
    "'A' THEN NULL ELSE 'OTHER' END)::\"Role_new\";",
    'ALTER TABLE "users" ALTER COLUMN "n" TYPE BIGINT USING ("n" * 2);',
    'ALTER TABLE "users" ALTER COLUMN "at" TYPE DATE USING date_trunc(\'day\', "at");',
    'ALTER TABLE "users" ALTER COLUMN "at" TYPE TIMESTAMPTZ(3) USING '
    "(\"at\" AT TIME ZONE 'Europe/Paris')::timestamptz(3);",
]
"""The ``USING`` forms the tests build with f-strings, written out (``case_map``...)."""


def corpus() -> list[tuple[str, str, str]]:
    """(name, dialect, SQL): every .sql file of the examples, and every string of the tests
    that reads as SQL (parsed as PostgreSQL; the SQLite example's files as SQLite too)."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted(EXAMPLES.rglob("*.sql")):
        text = path.read_text(encoding="utf-8")
        found[(text, "postgresql")] = str(path.relative_to(ROOT))
        if "/prisma/" in path.as_posix():
            found[(text, "sqlite")] = str(path.relative_to(ROOT))
    for module in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(module.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if SQL_WORDS.search(text) and (";" in text or "\n" in text or len(text) > 20):
                    found.setdefault((text, "postgresql"), f"{module.name}:{node.lineno}")
    for number, text in enumerate(RECREATED_ENUMS):
        found[(text, "postgresql")] = f"RECREATED_ENUMS[{number}]"
    return [(name, dialect, text) for (text, dialect), name in found.items()]


CORPUS = corpus()


def read(entry: Path) -> Any:
    """An entry's parse: the MessagePack after its first line (key and digest), as plain
    data."""
    return msgspec.msgpack.decode(entry.read_bytes().partition(b"\n")[2])


def write(entry: Path, data: object) -> None:
    """``data`` as the entry's parse, behind a header that matches it."""
    payload = msgspec.msgpack.encode(data)
    entry.write_bytes(parse_cache._header(entry.name, payload) + b"\n" + payload)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "cache"))
    parse_cache.enable()
    yield tmp_path / "cache" / "parse"
    parse_cache.enable(False)


def test_the_corpus_is_large_and_varied() -> None:
    """Guards the test below: it must see real histories, errors and every kind of field."""
    assert len(CORPUS) > 300
    parsed = [parse_text(text, dialect) for _, dialect, text in CORPUS]
    assert sum(p.error is not None for p in parsed) >= 5
    assert sum(bool(p.opaque) for p in parsed) >= 5
    defaults = {f.name: f.default for f in fields(Op)}
    assert defaults.pop("kind") is msgspec.NODEFAULT
    used = {
        name
        for p in parsed
        for op in p.ops
        for name in defaults
        if getattr(op, name) != defaults[name]
    }
    # Every field of an operation is written and read back, but an UPDATE's expressions
    # printed as SQL: they are printed after the cache, only when live data is measured.
    assert used == set(defaults) - PRINTED_LATER
    printed = {
        name
        for p in parsed
        for op in print_updates(p.ops)
        for name in PRINTED_LATER
        if getattr(op, name) != defaults[name]
    }
    assert printed == PRINTED_LATER


PRINTED_LATER = {"rewrites", "rewrite_casts", "source", "where"}
"""``Op`` fields ``printed.print_updates`` fills from ``Op.text``."""


def test_every_parse_of_the_corpus_comes_back_equal() -> None:
    for name, dialect, text in CORPUS:
        parsed = parse_text(text, dialect)
        again = parse_cache.loads(parse_cache.dumps(parsed))
        assert again == parsed, name
        assert [asdict(op) for op in again.ops] == [asdict(op) for op in parsed.ops], name
        assert again.opaque == parsed.opaque, name


def test_a_stored_parse_is_read_back_instead_of_parsing(cache: Path) -> None:
    sql = 'ALTER TABLE "users" DROP COLUMN "name";\n'
    assert parse_cache.load(sql, "postgresql") is None
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    (entry,) = cache.iterdir()
    # What is read is what the file holds: a changed entry (same key) is what comes back.
    data = read(entry)
    data["ops"][0]["table"] = "accounts"
    write(entry, data)
    loaded = parse_cache.load(sql, "postgresql")
    assert loaded is not None
    assert loaded.ops[0].table == "accounts"


def test_an_entry_altered_on_disk_is_not_read(cache: Path) -> None:
    sql = 'ALTER TABLE "users" DROP COLUMN "name";\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    (entry,) = cache.iterdir()
    stored = entry.read_bytes()
    assert stored.count(b'"users"') == 1
    entry.write_bytes(stored.replace(b'"users"', b'"userz"'))  # a flipped bit
    assert parse_cache.load(sql, "postgresql") is None


def test_entries_are_per_text_and_dialect(cache: Path) -> None:
    sql = 'DROP TABLE "users";\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    assert parse_cache.load(sql, "sqlite") is None
    assert parse_cache.load(sql + " ", "postgresql") is None
    assert parse_cache.load(sql, "postgresql") == parse_text(sql, "postgresql")


def test_off_reads_and_writes_nothing(cache: Path) -> None:
    sql = 'DROP TABLE "users";\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    parse_cache.enable(False)
    assert parse_cache.load(sql, "postgresql") is None
    parse_cache.store("SELECT 1;", "postgresql", ParsedSql())
    assert len(list(cache.iterdir())) == 1


WELL_FORMED = {"ops": [], "error": None, "error_line": 0, "statements": 0, "opaque": []}


@pytest.mark.parametrize(
    ("damage", "signed"),
    [
        (b"", False),  # empty
        (b"KEY", False),  # cut short after its key
        (b"\x00\xff\xfe garbage", False),  # not text
        (b"[1, 2, 3]", True),  # a list, not an entry
        (b'{"ops": [{"kind": 3}]}', True),  # a field of the wrong type
        (b'{"ops": [{"table": "users"}]}', True),  # no kind
        (b'{"ops": [{"kind": "drop-table", "colour": "red"}]}', True),  # unknown field
        (b'{"ops": [{"kind": "add-column", "sql_type": [1]}]}', True),  # a type garbled
        (b"\x91" * 100_000 + b"\xc0", True),  # nested beyond the decoder's depth
    ],
)
def test_a_damaged_or_foreign_entry_is_ignored_and_rewritten(
    cache: Path, damage: bytes, signed: bool
) -> None:
    sql = 'ALTER TABLE "users" DROP COLUMN "name";\n'
    expected = parse_text(sql, "postgresql")
    parse_cache.store(sql, "postgresql", expected)
    (entry,) = cache.iterdir()
    damage = damage.replace(b"KEY", entry.name.encode())
    if signed and damage.startswith((b"{", b"[")):
        data = json.loads(damage)
        write(entry, {**WELL_FORMED, **data} if isinstance(data, dict) else data)
    elif signed:
        entry.write_bytes(parse_cache._header(entry.name, damage) + b"\n" + damage)
    else:
        entry.write_bytes(damage)
    assert parse_cache.load(sql, "postgresql") is None
    parse_cache.store(sql, "postgresql", expected)  # what the caller does after a miss
    assert parse_cache.load(sql, "postgresql") == expected


def test_an_entry_of_another_text_is_not_read(cache: Path) -> None:
    one, other = 'DROP TABLE "a";\n', 'DROP TABLE "b";\n'
    parse_cache.store(one, "postgresql", parse_text(one, "postgresql"))
    parse_cache.store(other, "postgresql", parse_text(other, "postgresql"))
    entry_of = {text: cache / parse_cache._key(text, "postgresql") for text in (one, other)}
    entry_of[one].write_bytes(entry_of[other].read_bytes())  # whole, valid, wrong name
    assert parse_cache.load(one, "postgresql") is None
    assert parse_cache.load(other, "postgresql") == parse_text(other, "postgresql")


def test_an_unreadable_entry_is_a_miss(cache: Path) -> None:
    sql = 'DROP TABLE "users";\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    (entry,) = cache.iterdir()
    entry.unlink()
    entry.mkdir()  # cannot be read as a file, by anyone (root included)
    assert parse_cache.load(sql, "postgresql") is None
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))  # no error either
    assert parse_cache.load(sql, "postgresql") is None
    assert [p.name for p in cache.iterdir()] == [entry.name]  # no temporary file left


def test_a_folder_that_cannot_be_written_means_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(blocked))
    parse_cache.enable()
    try:
        sql = 'DROP TABLE "users";\n'
        parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))  # no error
        assert parse_cache.load(sql, "postgresql") is None
        if os.geteuid() != 0:
            folder = tmp_path / "read-only"
            folder.mkdir()
            folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
            monkeypatch.setenv("RECONCILER_CACHE_DIR", str(folder))
            parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
            assert parse_cache.load(sql, "postgresql") is None
    finally:
        parse_cache.enable(False)


def test_concurrent_writers_leave_one_whole_entry(cache: Path) -> None:
    sql = 'ALTER TABLE "users" ADD COLUMN "age" INTEGER NOT NULL;\n'
    expected = parse_text(sql, "postgresql")
    # Entries of different sizes for the same key: a torn write would be caught on reading.
    variants = [
        replace(
            expected,
            ops=tuple(replace(op, statement=op.statement + " " * n) for op in expected.ops),
        )
        for n in range(8)
    ]
    errors: list[BaseException] = []
    seen: list[ParsedSql | None] = []

    def write(parsed: ParsedSql) -> None:
        try:
            for _ in range(40):
                parse_cache.store(sql, "postgresql", parsed)
                seen.append(parse_cache.load(sql, "postgresql"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(v,)) for v in variants]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(s in variants for s in seen)  # never a half-written entry
    (entry,) = cache.iterdir()  # no temporary file left behind
    assert re.fullmatch("[0-9a-f]{64}", entry.name)


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RECONCILER_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert parse_cache.cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RECONCILER_CACHE_DIR")
    assert parse_cache.cache_dir() == tmp_path / "xdg" / "reconciler"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parse_cache.cache_dir() == tmp_path / "home" / ".cache" / "reconciler"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert parse_cache.cache_dir() == tmp_path / "home" / ".cache" / "reconciler"


def test_an_entry_holds_operations_only(cache: Path) -> None:
    sql = 'UPDATE "users" SET "email" = NULL WHERE "email" = \'\';\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    (entry,) = cache.iterdir()
    data = read(entry)
    assert set(data) <= set(ParsedSql.__struct_fields__)  # the fields left at their defaults
    assert set(data) == {"ops", "statements"}  # are left out
    assert all(set(op) <= set(Op.__struct_fields__) for op in data["ops"])


def test_sql_types_survive(cache: Path) -> None:
    sql = 'CREATE TABLE "t" ("a" VARCHAR(20), "b" NUMERIC(10, 2)[], "c" "Role");\n'
    parsed = parse_text(sql, "postgresql")
    assert parsed.ops[0].column_types[0] == SqlType("varchar", (20,))
    parse_cache.store(sql, "postgresql", parsed)
    loaded = parse_cache.load(sql, "postgresql")
    assert loaded == parsed
    assert loaded is not None
    assert all(type(t) is SqlType for t in loaded.ops[0].column_types)
    assert all(type(m) is int for t in loaded.ops[0].column_types for m in t.mods)


def test_a_folder_removed_while_running_is_made_again(cache: Path) -> None:
    one, other = 'DROP TABLE "a";\n', 'DROP TABLE "b";\n'
    parse_cache.store(one, "postgresql", parse_text(one, "postgresql"))
    shutil.rmtree(cache.parent)  # someone cleans the cache between two writes
    parse_cache.store(other, "postgresql", parse_text(other, "postgresql"))
    assert parse_cache.load(other, "postgresql") == parse_text(other, "postgresql")


def test_old_entries_and_leftovers_are_pruned_once_a_day(cache: Path) -> None:
    """The first write of a day deletes entries written more than ``MAX_AGE_DAYS`` ago
    (an older version's, an edited migration's) and temporary files a killed writer left;
    entries still fresh stay, and a process that only reads deletes nothing."""
    sql = 'ALTER TABLE "users" DROP COLUMN "name";\n'
    parse_cache.store(sql, "postgresql", parse_text(sql, "postgresql"))
    (kept,) = cache.iterdir()
    stale, leftover, recent = cache / ("0" * 64), cache / f"{'1' * 64}.7-7.tmp", cache / ("2" * 64)
    for path in (stale, leftover, recent):
        path.write_bytes(b"x")
    month_ago = time.time() - (parse_cache.MAX_AGE_DAYS + 1) * 86400
    os.utime(stale, (month_ago, month_ago))
    os.utime(leftover, (time.time() - 2 * 86400,) * 2)
    os.utime(recent, (time.time() - 2 * 86400,) * 2)
    stamp = cache.parent / "parse.pruned"
    assert parse_cache.prune(str(cache)) == 0  # the store above pruned today already
    os.utime(stamp, (time.time() - 2 * 86400,) * 2)
    assert parse_cache.load(sql, "postgresql") is not None  # reading prunes nothing
    assert {p.name for p in cache.iterdir()} == {kept.name, stale.name, leftover.name, recent.name}
    assert parse_cache.prune(str(cache)) == 2
    assert {p.name for p in cache.iterdir()} == {kept.name, recent.name}
    assert parse_cache.prune(str(cache)) == 0  # once a day
