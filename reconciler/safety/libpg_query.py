"""PostgreSQL's grammar as JSON, straight from the libpg_query that pglast ships.

The rules read libpg_query's JSON tree (``ops.parse``), and pglast's ``parse_sql_json`` is
a thin wrapper around one C function, ``pg_query_parse``. Importing pglast to reach it
builds its whole Python layer first (hundreds of node classes and enums, the printers):
about 170 million instructions, more than all the rules spend on a 163-migration
history. A pre-commit hook that lints a history with one new migration paid it for that
one file. So the same function is called here through ``ctypes``, from pglast's own
extension module, which exports libpg_query's public C API: the same grammar, the same
JSON, byte for byte (a test compares them), without the Python layer.

Only the JSON is taken from here. A script the grammar rejects returns None, and the
caller asks pglast for the message and the position (rare, and pglast's wording). Where
the extension cannot be found or does not export the function (another build of pglast),
``tree`` falls back to pglast's ``parse_sql_json``: slower, never different.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable
from importlib.machinery import EXTENSION_SUFFIXES, PathFinder


class _ParseResult(ctypes.Structure):
    """``PgQueryParseResult`` of ``pg_query.h``: only pointers, the error read for NULL."""

    _fields_ = (
        ("parse_tree", ctypes.c_void_p),
        ("stderr_buffer", ctypes.c_void_p),
        ("error", ctypes.c_void_p),
    )


def _extension() -> str | None:
    """The file of ``pglast.parser`` (without importing pglast), if there is one."""
    spec = PathFinder.find_spec("pglast")
    folders = spec.submodule_search_locations if spec is not None else None
    for folder in folders or ():
        for suffix in EXTENSION_SUFFIXES:
            candidate = os.path.join(folder, "parser" + suffix)
            if os.path.isfile(candidate):
                return candidate
    return None


def _bind() -> Callable[[str], str | None]:
    """``pg_query_parse`` from pglast's extension; pglast's own wrapper where that fails."""
    path = _extension()
    if path is None:
        return _through_pglast
    try:
        library = ctypes.CDLL(path)
        parse, free = library.pg_query_parse, library.pg_query_free_parse_result
    except (OSError, AttributeError):
        return _through_pglast
    parse.argtypes, parse.restype = (ctypes.c_char_p,), _ParseResult
    free.argtypes, free.restype = (_ParseResult,), None

    def tree(sql: str) -> str | None:
        result = parse(sql.encode("utf-8"))
        try:
            if result.error or not result.parse_tree:
                return None
            return ctypes.string_at(result.parse_tree).decode("utf-8")
        finally:
            free(result)

    return tree


def _through_pglast(sql: str) -> str | None:
    from pglast.parser import ParseError, parse_sql_json

    try:
        return str(parse_sql_json(sql))
    except ParseError:
        return None


_bound: list[Callable[[str], str | None]] = []


def tree(sql: str) -> str | None:
    """libpg_query's JSON parse tree of ``sql``; None when the grammar rejects it."""
    if not _bound:
        _bound.append(_bind())
    return _bound[0](sql)
