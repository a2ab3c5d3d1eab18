"""Database URLs as the policy writes them, parsed once and never printed with a password.

A policy names databases as ``postgresql://user:pass@host/db`` (``postgres://`` and
``postgresql+psycopg://`` too) or ``sqlite:///relative/or/absolute.db``. Relative SQLite paths
are resolved against the policy file's folder, like every other path in the policy, so a
command gives the same result from any working directory.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from reconciler import secrets

Dialect = Literal["postgresql", "sqlite"]


@dataclass(frozen=True, repr=False)
class DatabaseUrl:
    """A parsed database URL; ``str`` and ``repr`` hide the password."""

    url: URL
    dialect: Dialect

    @property
    def redacted(self) -> str:
        return self.url.render_as_string(hide_password=True)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted!r})"

    @property
    def sqlite_path(self) -> Path:
        """The database file of a SQLite URL."""
        assert self.dialect == "sqlite"
        assert self.url.database
        return Path(self.url.database)

    @property
    def database_name(self) -> str:
        return self.url.database or ""

    def sqlalchemy_url(self) -> URL:
        """The URL for SQLAlchemy and Alembic, pinned to the psycopg 3 driver."""
        if self.dialect == "postgresql":
            return self.url.set(drivername="postgresql+psycopg")
        return self.url

    def libpq_conninfo(self) -> str:
        """A libpq URI for psycopg (password included: never log it)."""
        assert self.dialect == "postgresql"
        return self.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def with_database(self, name: str) -> DatabaseUrl:
        """The same server with another database (scratch copies, maintenance connections)."""
        return DatabaseUrl(self.url.set(database=name), self.dialect)


def parse_database_url(text: str, base_dir: Path | None = None) -> DatabaseUrl:
    """Parse ``text``; raises ``ValueError`` with a one-line reason that holds no secret."""
    try:
        url = make_url(text.strip())
    except (ArgumentError, ValueError):
        raise ValueError(
            "must be a database URL such as postgresql://user@host/db or sqlite:///file.db"
        ) from None
    backend = url.get_backend_name()
    if backend in ("postgresql", "postgres"):
        if url.password:
            secrets.register(str(url.password))
        if not url.database:
            raise ValueError("a PostgreSQL URL must name a database: postgresql://host/dbname")
        return DatabaseUrl(url.set(drivername="postgresql"), "postgresql")
    if backend == "sqlite":
        database = url.database or ""
        if not database or database == ":memory:":
            raise ValueError("a SQLite URL must name a file: sqlite:///path/to/file.db")
        path = usable_path(Path(database), base_dir)
        return DatabaseUrl(url.set(drivername="sqlite", database=str(path)), "sqlite")
    raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")


def usable_path(path: Path, base_dir: Path | None = None) -> Path:
    """``path``, resolved against ``base_dir`` when relative. Raises ``ValueError`` (one line)
    for a path no system call can take: a NUL character, text that is no file name, a name
    or a whole longer than the system allows, a loop of symbolic links. Whether it exists is
    for its user to say."""
    relative = not path.is_absolute() and base_dir is not None
    joined = base_dir / path if relative and base_dir is not None else path
    if "\0" in str(joined):
        raise ValueError("the path holds a NUL character")
    try:
        encoded = os.fsencode(joined)
    except UnicodeError:
        raise ValueError("the path is not text a file name can hold") from None
    if _too_long(encoded):
        raise ValueError("the path is longer than the system allows")
    try:
        os.stat(joined)
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise ValueError("the path is longer than the system allows") from None
        if exc.errno == errno.ELOOP:
            raise ValueError("the path runs into a loop of symbolic links") from None
    if not relative:
        return joined
    try:
        return joined.resolve()
    except RuntimeError:  # pathlib's report of a loop of symbolic links
        raise ValueError("the path runs into a loop of symbolic links") from None


def _too_long(encoded: bytes) -> bool:
    """Longer than the system takes, even where the path does not exist yet (a missing folder
    makes ``stat`` say "not found" before it looks at the length of the names after it)."""
    try:
        name_max, path_max = os.pathconf("/", "PC_NAME_MAX"), os.pathconf("/", "PC_PATH_MAX")
    except (OSError, ValueError):
        name_max, path_max = 255, 4096
    return len(encoded) >= path_max or any(len(part) > name_max for part in encoded.split(b"/"))
