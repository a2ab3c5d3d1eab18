"""Database URLs as the policy writes them, parsed once and never printed with a password.

A policy names databases as ``postgresql://user:pass@host/db`` (``postgres://`` and
``postgresql+psycopg://`` too) or ``sqlite:///relative/or/absolute.db``. Relative SQLite paths
are resolved against the policy file's folder, like every other path in the policy, so a
command gives the same result from any working directory.

The URL is split with the standard library rather than SQLAlchemy's ``make_url``: every
command reads a policy, and importing SQLAlchemy costs several tenths of a second that
``plan``, ``lint`` and ``check`` have no other use for. SQLAlchemy's form is built only for
the ledger and Alembic, which import it anyway (``sqlalchemy_url``).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import quote, unquote, urlsplit

from reconciler import secrets

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

Dialect = Literal["postgresql", "sqlite"]

_BAD_URL = "must be a database URL such as postgresql://user@host/db or sqlite:///file.db"


@dataclass(frozen=True, repr=False)
class DatabaseUrl:
    """A parsed database URL; ``str`` and ``repr`` hide the password."""

    dialect: Dialect
    database: str
    """The database name (PostgreSQL) or the absolute file path (SQLite)."""
    username: str = ""
    password: str = ""
    hosts: str = ""
    """What stands between ``@`` and the path: ``host``, ``host:port``, ``[::1]:5432``, or
    libpq's ``h1:5432,h2:5432``; kept as written."""
    query: str = ""
    """libpq parameters (``sslmode=require``), as written."""

    @property
    def redacted(self) -> str:
        return self._render(show_password=False)

    def __str__(self) -> str:
        return self.redacted

    def __repr__(self) -> str:
        return f"DatabaseUrl({self.redacted!r})"

    @property
    def sqlite_path(self) -> Path:
        """The database file of a SQLite URL."""
        assert self.dialect == "sqlite"
        return Path(self.database)

    @property
    def database_name(self) -> str:
        return self.database

    def sqlalchemy_url(self) -> URL:
        """The URL for SQLAlchemy and Alembic, pinned to the psycopg 3 driver."""
        from sqlalchemy.engine import make_url

        if self.dialect != "postgresql":
            return make_url(self._render())
        if "," not in self.hosts:
            return make_url(self._render(scheme="postgresql+psycopg"))
        # libpq's several hosts: SQLAlchemy takes them as repeated ``host`` parameters.
        hosts = "&".join(f"host={quote(h, safe=':[]')}" for h in self.hosts.split(","))
        query = "&".join(q for q in (self.query, hosts) if q)
        return make_url(replace(self, hosts="", query=query)._render(scheme="postgresql+psycopg"))

    def libpq_conninfo(self, *, password: bool = True) -> str:
        """A libpq URI for psycopg and the client tools. With ``password=False`` it carries
        none (it travels in ``PGPASSWORD``, out of sight of ``ps`` and ``/proc``). Never log
        the default form."""
        assert self.dialect == "postgresql"
        return self._render(show_password=password, mask="")

    def with_database(self, name: str) -> DatabaseUrl:
        """The same server with another database (scratch copies, maintenance connections)."""
        return replace(self, database=name)

    def _render(
        self, *, show_password: bool = True, mask: str = "***", scheme: str | None = None
    ) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.database}"
        userinfo = quote(self.username, safe="")
        shown = quote(self.password, safe="") if show_password else mask
        if self.password and shown:
            userinfo += ":" + shown
        at = f"{userinfo}@" if userinfo else ""
        query = f"?{self.query}" if self.query else ""
        return f"{scheme or self.dialect}://{at}{self.hosts}/{quote(self.database, safe='')}{query}"


def parse_database_url(text: str, base_dir: Path | None = None) -> DatabaseUrl:
    """Parse ``text``; raises ``ValueError`` with a one-line reason that holds no secret."""
    text = text.strip()
    scheme, sep, rest = text.partition("://")
    backend = scheme.split("+", 1)[0].lower()
    if not sep or not backend.replace("_", "").isalnum():
        raise ValueError(_BAD_URL)
    if backend in ("postgresql", "postgres"):
        return _postgres(text)
    if backend == "sqlite":
        database = unquote(rest.partition("/")[2].partition("?")[0])
        if not database or database == ":memory:":
            raise ValueError("a SQLite URL must name a file: sqlite:///path/to/file.db")
        path = usable_path(Path(database), base_dir)
        return DatabaseUrl("sqlite", str(path))
    raise ValueError(f"unsupported database {backend!r}: use postgresql:// or sqlite:///")


def _postgres(text: str) -> DatabaseUrl:
    try:
        parts = urlsplit(text)
    except ValueError:
        raise ValueError(_BAD_URL) from None
    userinfo, at, hosts = parts.netloc.rpartition("@")
    username, _, password = userinfo.partition(":") if at else ("", "", "")
    database = unquote(parts.path.lstrip("/"))
    if password:
        secrets.register(unquote(password))
    if not database:
        raise ValueError("a PostgreSQL URL must name a database: postgresql://host/dbname")
    return DatabaseUrl(
        "postgresql",
        database,
        username=unquote(username),
        password=unquote(password),
        hosts=hosts,
        query=parts.query,
    )


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


def same_database(a: DatabaseUrl, b: DatabaseUrl) -> bool:
    """Whether two URLs name one database however they are spelled: user, password and
    parameters aside, a host's case and PostgreSQL's default port, a SQLite file by any
    path that leads to it. ``restore`` asks, so that the target's own database is backed up
    first and confirmed in production whichever way ``--to`` writes it."""
    if a.dialect != b.dialect:
        return False
    if a.dialect == "sqlite":
        return os.path.realpath(a.sqlite_path) == os.path.realpath(b.sqlite_path)
    return a.database_name == b.database_name and _servers(a) == _servers(b)


def _servers(url: DatabaseUrl) -> list[str]:
    servers = []
    for host in url.hosts.lower().split(","):
        name, colon, port = host.rpartition(":")
        if not colon or "]" in port:  # no port, or a bare IPv6 address in brackets
            name, port = host, "5432"
        servers.append(f"{name or 'localhost'}:{port}")
    return servers
