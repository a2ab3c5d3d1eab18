"""Database URLs as policies write them: parsed without SQLAlchemy, never shown with a
password, and handed to the client tools without one."""

from __future__ import annotations

from pathlib import Path

import pytest

from reconciler.db.connection import connect
from reconciler.db.url import parse_database_url

SECRET = "s3cr@t:p/w%"
QUOTED = "s3cr%40t%3Ap%2Fw%25"


@pytest.mark.parametrize(
    ("text", "redacted", "database"),
    [
        ("postgresql://app@db.internal/shop", "postgresql://app@db.internal/shop", "shop"),
        ("postgres://db:6543/shop", "postgresql://db:6543/shop", "shop"),
        ("postgresql+psycopg://app@h/shop", "postgresql://app@h/shop", "shop"),
        (f"postgresql://app:{QUOTED}@h/shop", "postgresql://app:***@h/shop", "shop"),
        ("postgresql://app@[::1]:5432/shop?sslmode=require", None, "shop"),
        ("postgresql://app@h1:5432,h2:5433/shop?target_session_attrs=read-write", None, "shop"),
    ],
)
def test_postgres_urls(text: str, redacted: str | None, database: str) -> None:
    url = parse_database_url(text)
    assert url.dialect == "postgresql"
    assert url.database_name == database
    assert str(url) == repr(url)[len("DatabaseUrl('") : -2] == (redacted or text)
    sqlalchemy = url.sqlalchemy_url()
    assert sqlalchemy.drivername == "postgresql+psycopg"
    assert sqlalchemy.database == database


def test_the_password_is_decoded_hidden_and_left_off_the_tools_command_line() -> None:
    url = parse_database_url(f"postgresql://app:{QUOTED}@h:5432/shop")
    assert url.password == SECRET
    assert SECRET not in str(url)
    assert QUOTED not in str(url)
    assert SECRET not in repr(url)
    assert url.libpq_conninfo() == f"postgresql://app:{QUOTED}@h:5432/shop"
    assert url.libpq_conninfo(password=False) == "postgresql://app@h:5432/shop"
    assert url.sqlalchemy_url().password == SECRET


def test_a_parsed_url_connects(pg_url: str) -> None:
    db = connect(parse_database_url(pg_url + "?application_name=ignored&connect_timeout=5"))
    try:
        assert db.query("SELECT current_database()")[0][0] == pg_url.rsplit("/", 1)[1]
    finally:
        db.close()


def test_sqlite_paths_are_resolved_against_the_policy_folder(tmp_path: Path) -> None:
    relative = parse_database_url("sqlite:///var/shop.db", tmp_path)
    assert relative.sqlite_path == tmp_path / "var" / "shop.db"
    absolute = parse_database_url(f"sqlite:///{tmp_path}/x.db", Path("/elsewhere"))
    assert absolute.sqlite_path == tmp_path / "x.db"
    assert str(absolute) == f"sqlite:///{tmp_path}/x.db"
    assert relative.with_database("other") != relative


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("shop.db", "must be a database URL"),
        ("mysql://h/db", "unsupported database 'mysql'"),
        ("postgresql://h/", "must name a database"),
        ("sqlite://", "must name a file"),
        ("sqlite:///:memory:", "must name a file"),
    ],
)
def test_bad_urls_say_what_is_wrong_in_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message) as caught:
        parse_database_url(text)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("postgresql://app:pw@DB.internal/shop", "postgres://other@db.internal:5432/shop", True),
        ("postgresql+psycopg://h/shop?sslmode=require", "postgresql://h:5432/shop", True),
        ("postgresql://[::1]/shop", "postgresql://[::1]:5432/shop", True),
        ("postgresql://h/shop", "postgresql://h:6543/shop", False),
        ("postgresql://h/shop", "postgresql://h/shop_copy", False),
        ("postgresql://h1/shop", "postgresql://h2/shop", False),
        ("sqlite:///data/../data/shop.db", "sqlite:///data/shop.db", True),
        ("sqlite:///shop.db", "sqlite:///copy.db", False),
        ("sqlite:///shop", "postgresql://h/shop", False),
    ],
)
def test_one_database_however_its_url_is_spelled(
    a: str, b: str, same: bool, tmp_path: Path
) -> None:
    """restore backs up the target's own database first whichever way --to names it."""
    from reconciler.db.url import same_database

    first, second = parse_database_url(a, tmp_path), parse_database_url(b, tmp_path)
    assert same_database(first, second) is same
    assert same_database(second, first) is same
