"""What a migration's SQL parses to, kept on disk between processes.

A pre-commit hook lints the whole history at every commit, and a history's files seldom
change: importing the parser and parsing 163 files costs more than the rules that judge
them. So the operations a file parses to (``ParsedSql``, never findings: those depend on the
whole history, the live data and the policy, and the rules always run) are stored under a
digest of the SQL text, the dialect, reconciler's version, pglast's version and the source
of the modules that parse. A run whose files are all stored never imports pglast.

Where: ``$RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``, else
``~/.cache/reconciler``; entries live in its ``parse/`` folder, one small file each: a
line with the entry's key and the digest of the rest, then the operations as MessagePack.
Nothing but migration SQL's operations is written (no URL, no secret). The cache is a
speed-up and never a source of truth: an entry that cannot be read, does not decode, or was
written for another key is ignored and written again; a folder that cannot be written
means no cache; each entry is written to a temporary file and renamed into place, so
concurrent writers never leave half an entry. Deleting the folder is always safe, and the
cache prunes itself: the first process of a day that writes an entry deletes the entries
written more than ``MAX_AGE_DAYS`` ago (those of an older reconciler or pglast, of a
migration since edited; one still in use is parsed once and written again) and temporary
files a writer killed mid-way left behind.

Off unless a command turns it on (``enable``): the command line does, for ``lint``,
``plan``, ``apply`` and ``check`` (``--no-cache`` to skip it); the daemon and library
callers keep their parses in memory only (``analyse``).
"""

from __future__ import annotations

import os
import threading
import time
from importlib.machinery import PathFinder
from pathlib import Path
from typing import Any

import msgspec

from reconciler import __version__
from reconciler.digests import blake2b
from reconciler.safety.operations import ParsedSql
from reconciler.textfiles import read_bytes

FORMAT = 3
"""Bumped when the layout of an entry changes (3: keys and digests are BLAKE2b's)."""

_SOURCES = (
    "safety/ops.py",
    "safety/printed.py",
    "safety/libpg_query.py",
    "safety/renumbering.py",
    "safety/operations.py",
    "safety/types.py",
    "safety/analyse.py",
    "safety/parse_cache.py",
    "db/sqlite.py",
)
"""The modules whose code decides what a text parses to (relative to the package): a change
to any of them makes every entry a miss, even within one version."""

MAX_AGE_DAYS = 30
"""Entries written longer ago than this are deleted by the next process that writes one."""

_state: dict[str, Any] = {"enabled": False}
_folders: dict[tuple[str | None, ...], str] = {}
"""``parse/`` of ``cache_dir()``, by the variables that decide it."""
_made: set[str] = set()
"""The folders this process has created (or found): created once, not once an entry."""
_pruned: set[str] = set()
"""The folders this process has pruned (``prune``): once a process."""
_DAY = 86400.0


def enable(on: bool = True) -> None:
    """Turn the disk cache on (or off) for this process."""
    _state["enabled"] = on


def cache_dir() -> Path:
    """``$RECONCILER_CACHE_DIR``, else ``$XDG_CACHE_HOME/reconciler``, else
    ``~/.cache/reconciler``."""
    explicit = os.environ.get("RECONCILER_CACHE_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return Path(xdg) / "reconciler"
    return Path.home() / ".cache" / "reconciler"


def load(sql: str, dialect: str) -> ParsedSql | None:
    """The stored parse of ``sql``, or None (cache off, no entry, or an entry unusable)."""
    if not _state["enabled"]:
        return None
    key = _key(sql, dialect)
    try:
        header, _, payload = read_bytes(_entry(key)).partition(b"\n")
        if header != _header(key, payload):
            return None  # truncated, altered, or written for another text
        return loads(payload)
    except (OSError, ValueError, RecursionError):
        return None  # absent, unreadable or foreign: parsed again and rewritten


def store(sql: str, dialect: str, parsed: ParsedSql) -> None:
    """Keep ``parsed`` for the next process; a cache that cannot be written is skipped."""
    if not _state["enabled"]:
        return
    key = _key(sql, dialect)
    path = _entry(key)
    payload = dumps(parsed)
    # Written whole under a name no other writer uses, then renamed over the entry: a
    # reader sees the old entry, the new one, or none, never part of one.
    temporary = f"{path}.{os.getpid()}-{threading.get_ident()}.tmp"
    try:
        folder = os.path.dirname(path)
        if folder not in _made:
            os.makedirs(folder, exist_ok=True)
            _made.add(folder)
        try:
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileNotFoundError:  # the folder was removed since: made again
            os.makedirs(folder, exist_ok=True)
            handle = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(_header(key, payload) + b"\n" + payload)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError:
        return  # read-only, full or missing: no cache this time, same verdicts
    if folder not in _pruned:
        _pruned.add(folder)
        prune(folder)


def prune(folder: str, now: float | None = None) -> int:
    """Delete the entries of ``folder`` written more than ``MAX_AGE_DAYS`` ago, and the
    temporary files older than a day, at most once a day (the stamp file ``parse.pruned``
    beside the folder records when): the number deleted. Anything that cannot be read or
    deleted is left as it is."""
    now = time.time() if now is None else now
    stamp = folder.rstrip(os.sep) + ".pruned"
    try:
        if now - os.stat(stamp).st_mtime < _DAY:
            return 0
    except OSError:
        pass  # never pruned (or the stamp is gone): prune now
    deleted = 0
    try:
        with open(stamp, "wb"):
            pass
        with os.scandir(folder) as entries:
            for entry in entries:
                age = now - entry.stat().st_mtime
                old = age > MAX_AGE_DAYS * _DAY if "." not in entry.name else age > _DAY
                if old and entry.is_file():
                    os.unlink(entry.path)
                    deleted += 1
    except OSError:
        pass
    return deleted


def _header(key: str, payload: bytes) -> bytes:
    """An entry's first line: its key and the digest of the rest, so a file cut short,
    altered on disk or holding another text's parse is never read as this one's."""
    return f"{key} {blake2b(payload, digest_size=32).hexdigest()}".encode()


def _entry(key: str) -> str:
    """The file of ``key``: ``<cache_dir>/parse/<key>``."""
    where = tuple(
        os.environ.get(name) for name in ("RECONCILER_CACHE_DIR", "XDG_CACHE_HOME", "HOME")
    )
    folder = _folders.get(where)
    if folder is None:
        folder = _folders[where] = os.path.join(cache_dir(), "parse")
    return os.path.join(folder, key)


def _key(sql: str, dialect: str) -> str:
    digest = blake2b(_identity().encode(), digest_size=32)
    digest.update(b"\0" + dialect.encode() + b"\0" + sql.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def _identity() -> str:
    """Format, reconciler's version, pglast's version and the parsing code, read once."""
    known = _state.get("identity")
    if known is None:
        code = blake2b(digest_size=32)
        package = Path(__file__).resolve().parent.parent
        for name in _SOURCES:
            try:
                code.update(name.encode() + b"\0" + (package / name).read_bytes())
            except OSError:
                code.update(name.encode() + b"\0missing")
        known = f"{FORMAT}|{__version__}|{_parser_version()}|{code.hexdigest()}"
        _state["identity"] = known
    return str(known)


def _parser_version() -> str:
    """pglast's installed version, read from its metadata folder's name (importing pglast,
    or ``importlib.metadata``, costs what the cache saves); where there is none, the size
    and time of each of its files."""
    spec = PathFinder.find_spec("pglast")
    if spec is None or spec.origin is None:
        return "no pglast"
    package = Path(spec.origin).parent
    try:
        infos = sorted(p.name for p in package.parent.glob("pglast-*.dist-info"))
        if infos:
            return ",".join(infos)
        return ",".join(
            f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
            for p in sorted(package.iterdir())
            if p.is_file()
        )
    except OSError:
        return "unknown pglast"


# -- entries -------------------------------------------------------------------------------
_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(ParsedSql)
"""MessagePack, typed: each operation is written with only the fields that differ from their
defaults (``Op`` omits them) and read back by msgspec into ``Op`` and ``SqlType`` directly,
every field checked against its annotation."""


def dumps(parsed: ParsedSql) -> bytes:
    """``parsed`` as an entry's payload."""
    return _ENCODER.encode(parsed)


def loads(payload: bytes) -> ParsedSql:
    """The inverse of ``dumps``; raises ``ValueError`` for anything ``dumps`` cannot have
    written (a field of the wrong type, one this version does not have, no ``kind``)."""
    try:
        return _DECODER.decode(payload)
    except msgspec.MsgspecError as error:
        raise ValueError(str(error)) from None
