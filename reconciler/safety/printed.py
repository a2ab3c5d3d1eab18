"""Parts of a statement printed back as SQL, from pglast's node objects and printer.

The data-aware checks measure what an ``UPDATE`` or a type change's ``USING`` does to the
rows with a ``SELECT`` that computes the same expressions (``observe.facts``), so those
expressions are needed as SQL, and only pglast's printer writes them back faithfully. Its
node objects cost about ten times the JSON parse (``ops``) and its import about as much as
the rules spend on a whole history, so this module is imported only when something needs
it. A ``USING`` is printed when it is parsed: static lint names it in its finding. An
``UPDATE`` keeps its text (``Op.text``) and is printed only when live data is measured
(``print_updates``, from ``analyse``): static lint judges it from the tree alone, and a
history of DDL and ``UPDATE``s is linted without pglast's Python layer.
"""

from __future__ import annotations

from typing import Any

from msgspec.structs import replace
from pglast import ast, parse_sql
from pglast.parser import ParseError
from pglast.stream import RawStream

from reconciler.safety.operations import Op
from reconciler.safety.types import SqlType, named_type


def using_sql(ops: list[Op], text: str) -> list[Op]:
    """Each type change's ``USING`` expression and new type as SQL, for the SELECT that
    measures what it does to the values."""
    try:
        (stmt,) = [raw.stmt for raw in parse_sql(text)]
    except (ParseError, ValueError):  # pragma: no cover - libpg_query read it once already
        return ops
    if not isinstance(stmt, ast.AlterTableStmt):  # pragma: no cover
        return ops
    found: dict[str, tuple[str, str]] = {}
    for cmd in stmt.cmds or ():
        definition = getattr(cmd, "def_", None)
        if (
            isinstance(cmd, ast.AlterTableCmd)
            and cmd.name
            and isinstance(definition, ast.ColumnDef)
            and definition.raw_default is not None
            and definition.typeName is not None
        ):
            found[cmd.name] = (_sql(definition.raw_default), _sql(definition.typeName))
    return [
        replace(op, using_sql=found[op.column][0], type_sql=found[op.column][1])
        if op.kind == "alter-type" and op.column in found
        else op
        for op in ops
    ]


def print_updates(ops: tuple[Op, ...]) -> tuple[Op, ...]:
    """``ops`` with each UPDATE's assignments and WHERE printed as SQL, for the SELECT that
    measures what it changes (``observe.facts``); its ``text`` is emptied, so an UPDATE is
    printed once however often this is called."""
    return tuple(
        replace(op, text="", **_update_parts(op.text)) if op.kind == "update" and op.text else op
        for op in ops
    )


def _update_parts(text: str) -> dict[str, Any]:
    """``Op.rewrites``, ``rewrite_casts``, ``source`` and ``where`` of the UPDATE ``text``;
    none when it joins (``FROM``) or has a ``WITH``: a SELECT cannot measure it alone."""
    try:
        (stmt,) = [raw.stmt for raw in parse_sql(text)]
    except (ParseError, ValueError):  # pragma: no cover - libpg_query read it once already
        return {}
    if not isinstance(stmt, ast.UpdateStmt) or stmt.fromClause or stmt.withClause:
        return {}
    if stmt.relation is None:  # pragma: no cover - the grammar requires one
        return {}
    return {
        "rewrites": tuple((name, _sql(value)) for name, value in _measured_values(stmt)),
        "rewrite_casts": tuple(
            cast for name, value in _measured_values(stmt) for cast in _casts(name, value)
        ),
        "source": _sql(stmt.relation),
        "where": _sql(stmt.whereClause) if stmt.whereClause is not None else "",
    }


def _measured_values(stmt: ast.UpdateStmt) -> list[tuple[str, ast.Node]]:
    """(column, new value) of each plain assignment: a ``SELECT`` can compute it row by row
    (not ``SET (a, b) = ...``, ``DEFAULT`` or an element of an array or a field)."""
    return [
        (target.name, target.val)
        for target in stmt.targetList or ()
        if isinstance(target, ast.ResTarget)
        and target.name
        and target.indirection is None
        and isinstance(target.val, ast.Node)
        and not isinstance(target.val, (ast.MultiAssignRef, ast.SetToDefault))
    ]


def _casts(column: str, value: ast.Node) -> list[tuple[str, str, str, str]]:
    """``Op.rewrite_casts`` of one assignment: when its value reads the column, the
    assignment to the column's own type (an empty type), and each cast of what it reads."""
    if not _reads_column(value, column):
        return []
    found = [(column, _sql(value), "", "")]
    for cast in _ast_nodes(value, ast.TypeCast):
        typed = _ast_type(cast.typeName)
        if typed is not None and _reads_column(cast.arg, column):
            found.append((column, _sql(cast.arg), str(typed), typed.name))
    return found


def _reads_column(node: ast.Node, column: str) -> bool:
    """Whether ``node`` reads ``column`` (bare or qualified): a cast cuts a value of the
    column it assigns only when what it is given comes from that column."""
    return any(
        getattr(ref.fields[-1], "sval", None) == column for ref in _ast_nodes(node, ast.ColumnRef)
    )


def _ast_nodes(node: object, kind: type[ast.Node]) -> list[Any]:
    """Every ``kind`` node inside a pglast node object (a subquery's too)."""
    found: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, kind):
            found.append(item)
        if isinstance(item, ast.Node):
            stack.extend(getattr(item, name) for name in item)
        elif isinstance(item, tuple):
            stack.extend(item)
    return found


def _ast_type(type_name: ast.TypeName | None) -> SqlType | None:
    """``_sql_type`` for a pglast node object: the type as the catalog names it."""
    if type_name is None or not type_name.names:
        return None
    mods = tuple(
        m.val.ival or 0
        for m in type_name.typmods or ()
        if isinstance(m, ast.A_Const) and isinstance(m.val, ast.Integer)
    )
    names = [getattr(n, "sval", "") for n in type_name.names]
    return named_type(names, mods, bool(type_name.arrayBounds))


def _sql(node: ast.Node) -> str:
    """``node`` printed back as SQL (a stream collects everything it prints: one each)."""
    return str(RawStream()(node))
