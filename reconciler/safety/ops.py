"""Migration SQL as a list of operations the rules understand, parsed with pglast.

pglast wraps libpg_query, PostgreSQL's own parser: whatever the server accepts, this reads
the same way (quoted identifiers, schemas, ``DO $$`` bodies, multi-command ``ALTER TABLE``).
Each statement becomes zero or more small, typed operations with the line it starts on;
statements no rule cares about become nothing. Names are folded as PostgreSQL folds them
(unquoted lowercase), and the schema is dropped when it is ``public``.

A script is parsed once into libpg_query's JSON tree, which is cheap; only the statements a
rule reads in detail (``ALTER TABLE``, ``DROP``, ``UPDATE`` ...) are parsed again into pglast's
node classes. Building those objects costs ten times the parse, and ``CREATE TABLE``, which
the rules need only the name and column names of, is most of a history's text.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from pglast import ast, parse_sql
from pglast.enums import AlterTableType as AT
from pglast.enums import ConstrType, ObjectType
from pglast.parser import ParseError, parse_sql_json

SERIALS = frozenset({"serial", "bigserial", "smallserial", "serial4", "serial8", "serial2"})
VOLATILE_DEFAULTS = {
    "random",
    "clock_timestamp",
    "gen_random_uuid",
    "uuid_generate_v4",
    "timeofday",
    "nextval",
    "uuid_generate_v1",
    "uuidv7",
    "uuidv4",
}


@dataclass(frozen=True)
class Op:
    """One thing a statement does to one table (or schema, or type)."""

    kind: str
    """drop-table, drop-schema, drop-column, add-column, alter-type, set-not-null,
    create-index, drop-index, add-constraint, rename-column, rename-table, truncate, delete,
    update, create-enum, rename-type, drop-type, do-block, create-table, insert."""
    table: str = ""
    column: str = ""
    line: int = 0
    statement: str = ""
    # Details, used by the rules that need them.
    type_name: str = ""
    """add-column / alter-type: the (new) type, e.g. ``varchar(20)``, ``int4``."""
    type_length: int | None = None
    not_null: bool = False
    has_default: bool = False
    volatile_default: bool = False
    concurrently: bool = False
    unique: bool = False
    columns: tuple[str, ...] = ()
    """create-index / add-constraint / insert / update: the columns involved."""
    constraint: str = ""
    """add-constraint: foreign, check, unique, primary."""
    not_valid: bool = False
    new_name: str = ""
    where: str = ""
    """delete / update: the WHERE clause as SQL, or '' when there is none."""
    using: str = ""
    """alter-type: the USING expression, or ''."""
    sets_null: tuple[str, ...] = ()
    """update: columns set to NULL."""
    null_guarded: tuple[str, ...] = ()
    """update: columns whose WHERE requires them to be NULL (backfills)."""
    copies_from: tuple[tuple[str, str], ...] = ()
    """update: (target column, source column) pairs for ``SET new = old``."""
    labels: tuple[str, ...] = ()
    """create-enum: its labels."""
    cascade: bool = False


@dataclass(frozen=True)
class ParsedSql:
    ops: tuple[Op, ...] = ()
    error: str | None = None
    """``line N: message`` when PostgreSQL's grammar rejects the text."""
    error_line: int = 0
    statements: int = 0
    opaque: tuple[Op, ...] = field(default_factory=tuple)
    """Statements whose effect cannot be analysed (``DO`` blocks, dynamic SQL)."""


def parse(sql: str) -> ParsedSql:
    """The operations of ``sql``; a syntax error is returned, never raised."""
    try:
        tree = json.loads(parse_sql_json(sql))
    except ParseError:
        return _syntax_error(sql)
    data = sql.encode()  # libpg_query's offsets count bytes
    ops: list[Op] = []
    items = tree.get("stmts", [])
    for item in items:
        start, length = item.get("stmt_location", 0), item.get("stmt_len", 0)
        text = (data[start : start + length] if length else data[start:]).decode()
        leading = len(text) - len(text.lstrip())
        line = data.count(b"\n", 0, start) + text.count("\n", 0, leading) + 1
        kind, node = next(iter(item.get("stmt", {}).items()), ("", {}))
        read = _FROM_TREE.get(kind)
        found = read(node, partial(Op, line=line, statement=_clean(text))) if read else None
        if found is not None:
            ops.extend(found)
        elif kind in _FROM_NODES:
            stmt = parse_sql(text)[0].stmt
            if stmt is not None:
                ops.extend(_ops(stmt, line, _clean(text)))
    opaque = tuple(o for o in ops if o.kind == "do-block")
    return ParsedSql(tuple(ops), statements=len(items), opaque=opaque)


def _syntax_error(sql: str) -> ParsedSql:
    """pglast's own parse of the script reports the error at a character offset."""
    try:
        parse_sql(sql)
    except ParseError as exc:
        position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else -1
        line = _line(sql, position) if position >= 0 else _last_line(sql)
        return ParsedSql(error=f"line {line}: {exc.args[0]}", error_line=line)
    raise AssertionError("libpg_query rejected what pglast accepts")  # pragma: no cover


# -- statements read from libpg_query's JSON tree ---------------------------------------------
# In that tree a node is ``{"TypeName": {fields}}``, enums are their names, and a field that
# is false, zero or empty is left out. Each reader gives the same operations as ``_ops``
# would, or None where that takes an expression printed back to SQL (a ``USING`` clause, a
# ``CHECK``): then the statement is read as pglast nodes, whose printer does that.
Tree = dict[str, Any]
TreeReader = Callable[[Tree, Callable[..., Op]], "list[Op] | None"]


def _tree_name(relation: Tree) -> str:
    schema, name = relation.get("schemaname"), relation.get("relname", "")
    return name if schema in (None, "public") else f"{schema}.{name}"


def _tree_strings(items: list[Tree] | None) -> list[str]:
    return [n["String"].get("sval", "") for n in items or () if "String" in n]


def _tree_type(type_name: Tree | None) -> tuple[str, int | None]:
    if not type_name:
        return "", None
    parts = [p for p in _tree_strings(type_name.get("names")) if p != "pg_catalog"]
    length = None
    for mod in type_name.get("typmods", ()):
        const = mod.get("A_Const", {})
        if "ival" in const:
            length = const["ival"].get("ival", 0)
            break
    return (parts[-1] if parts else ""), length


def _tree_calls(node: object) -> Iterator[str]:
    """The names of the functions an expression calls."""
    if isinstance(node, dict):
        call = node.get("FuncCall")
        if isinstance(call, dict):
            names = _tree_strings(call.get("funcname"))
            if names:
                yield names[-1].lower()
        for value in node.values():
            yield from _tree_calls(value)
    elif isinstance(node, list):
        for item in node:
            yield from _tree_calls(item)


def _create_table(node: Tree, mk: Callable[..., Op]) -> list[Op]:
    columns = tuple(
        e["ColumnDef"].get("colname", "") for e in node.get("tableElts", ()) if "ColumnDef" in e
    )
    return [mk("create-table", _tree_name(node.get("relation", {})), columns=columns)]


def _insert(node: Tree, mk: Callable[..., Op]) -> list[Op]:
    cols = tuple(t["ResTarget"].get("name", "") for t in node.get("cols", ()) if "ResTarget" in t)
    return [mk("insert", _tree_name(node.get("relation", {})), columns=cols)]


def _do_block(node: Tree, mk: Callable[..., Op]) -> list[Op]:
    return [mk("do-block")]


def _create_index(node: Tree, mk: Callable[..., Op]) -> list[Op]:
    params = (p.get("IndexElem", {}).get("name") for p in node.get("indexParams", ()))
    return [
        mk(
            "create-index",
            _tree_name(node.get("relation", {})),
            concurrently=bool(node.get("concurrent")),
            unique=bool(node.get("unique")),
            columns=tuple(name for name in params if name),
            new_name=node.get("idxname", ""),
        )
    ]


_CONSTRAINT_KINDS = {
    "CONSTR_FOREIGN": "foreign",
    "CONSTR_CHECK": "check",
    "CONSTR_UNIQUE": "unique",
    "CONSTR_PRIMARY": "primary",
}


def _alter_table_tree(node: Tree, mk: Callable[..., Op]) -> list[Op] | None:
    table = _tree_name(node.get("relation", {}))
    out: list[Op] = []
    for item in node.get("cmds", ()):
        cmd = item.get("AlterTableCmd")
        if cmd is None:
            continue
        sub, name, definition = cmd.get("subtype"), cmd.get("name", ""), cmd.get("def", {})
        if sub == "AT_AddColumn" and "ColumnDef" in definition:
            out.append(_add_column_tree(table, definition["ColumnDef"], mk))
        elif sub == "AT_DropColumn":
            out.append(
                mk("drop-column", table, name, cascade=cmd.get("behavior") == "DROP_CASCADE")
            )
        elif sub == "AT_AlterColumnType" and "ColumnDef" in definition:
            column = definition["ColumnDef"]
            if "raw_default" in column:
                return None  # USING: printed by pglast
            type_name, length = _tree_type(column.get("typeName"))
            out.append(
                mk("alter-type", table, name, type_name=type_name, type_length=length, using="")
            )
        elif sub == "AT_SetNotNull":
            out.append(mk("set-not-null", table, name))
        elif sub == "AT_AddConstraint" and "Constraint" in definition:
            con = definition["Constraint"]
            if "raw_expr" in con:
                return None  # CHECK (...): printed by pglast
            kind = _CONSTRAINT_KINDS.get(con.get("contype", ""), "other")
            keys = _tree_strings(con.get("keys")) or _tree_strings(con.get("fk_attrs"))
            out.append(
                mk(
                    "add-constraint",
                    table,
                    constraint=kind,
                    columns=tuple(keys),
                    not_valid=bool(con.get("skip_validation")),
                    unique=kind in ("unique", "primary"),
                    new_name=con.get("conname", ""),
                    where="",
                    concurrently=bool(con.get("indexname")),
                )
            )
    return out


def _add_column_tree(table: str, col: Tree, mk: Callable[..., Op]) -> Op:
    type_name, length = _tree_type(col.get("typeName"))
    not_null = bool(col.get("is_not_null"))
    has_default = volatile = False
    for item in col.get("constraints", ()):
        con = item.get("Constraint", {})
        contype = con.get("contype")
        if contype in ("CONSTR_NOTNULL", "CONSTR_PRIMARY"):
            not_null = True
        elif contype == "CONSTR_DEFAULT":
            has_default = True
            volatile = volatile or any(
                fn in VOLATILE_DEFAULTS for fn in _tree_calls(con.get("raw_expr"))
            )
        elif contype in ("CONSTR_IDENTITY", "CONSTR_GENERATED"):
            has_default = volatile = True  # computed for every existing row: a rewrite
    if type_name.lower() in SERIALS:
        has_default = volatile = True
    return mk(
        "add-column",
        table,
        col.get("colname", ""),
        type_name=type_name,
        type_length=length,
        not_null=not_null,
        has_default=has_default,
        volatile_default=volatile,
    )


_FROM_TREE: dict[str, TreeReader] = {
    "CreateStmt": _create_table,
    "InsertStmt": _insert,
    "DoStmt": _do_block,
    "IndexStmt": _create_index,
    "AlterTableStmt": _alter_table_tree,
}
"""Statements whose operations the JSON tree gives (unless their reader says None)."""
_FROM_NODES = frozenset(
    {
        "AlterTableStmt",
        "DropStmt",
        "IndexStmt",
        "RenameStmt",
        "TruncateStmt",
        "DeleteStmt",
        "UpdateStmt",
        "CreateEnumStmt",
    }
)
"""Statements ``_ops`` reads as pglast nodes; any other kind yields no operation."""


def _line(sql: str, offset: int) -> int:
    return sql.count("\n", 0, max(offset, 0)) + 1


def _last_line(sql: str) -> int:
    """Where an error "at end of input" is: the last line with code on it."""
    return len(sql.rstrip().splitlines()) or 1


def _clean(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if not ln.strip().startswith("--")]
    return " ".join(" ".join(lines).split())


def _name(rel: ast.RangeVar | None) -> str:
    if rel is None:
        return ""
    schema, name = rel.schemaname, rel.relname or ""
    return name if schema in (None, "public") else f"{schema}.{name}"


def _names(items: tuple[ast.Node, ...] | None) -> list[str]:
    return [n.sval or "" for n in items or () if isinstance(n, ast.String)]


def _qualified(parts: list[str]) -> str:
    if len(parts) > 1 and parts[-2] == "public":
        return parts[-1]
    return ".".join(parts[-2:]) if len(parts) > 1 else (parts[0] if parts else "")


def _type(type_name: ast.TypeName | None) -> tuple[str, int | None]:
    if type_name is None:
        return "", None
    parts = [p for p in _names(type_name.names) if p != "pg_catalog"]
    name = parts[-1] if parts else ""
    length = None
    for mod in type_name.typmods or ():
        if isinstance(mod, ast.A_Const) and isinstance(mod.val, ast.Integer):
            length = mod.val.ival
            break
    return name, length


def _sql(node: ast.Node | None) -> str:
    if node is None:
        return ""
    from pglast.stream import RawStream  # its printers take longer to import than most parses

    return str(RawStream()(node))


def _volatile(expr: ast.Node | None) -> bool:
    """Whether the default calls a function whose value differs row by row."""
    return any(fn in VOLATILE_DEFAULTS for fn in _calls(expr))


def _calls(node: object) -> Iterator[str]:
    if isinstance(node, ast.FuncCall):
        names = _names(node.funcname)
        if names:
            yield names[-1].lower()
    if isinstance(node, ast.Node):
        for attr in node:  # pglast nodes iterate over their attribute names
            yield from _calls(getattr(node, attr))
    elif isinstance(node, tuple):
        for item in node:
            yield from _calls(item)


def _ops(stmt: ast.Node, line: int, text: str) -> Iterator[Op]:
    mk = partial(Op, line=line, statement=text)
    if isinstance(stmt, ast.AlterTableStmt):
        yield from _alter_table(stmt, mk)
    elif isinstance(stmt, ast.DropStmt):
        yield from _drop(stmt, mk)
    elif isinstance(stmt, ast.IndexStmt):
        yield mk(
            "create-index",
            _name(stmt.relation),
            concurrently=bool(stmt.concurrent),
            unique=bool(stmt.unique),
            columns=tuple(p.name for p in stmt.indexParams or () if getattr(p, "name", None)),
            new_name=stmt.idxname or "",
        )
    elif isinstance(stmt, ast.RenameStmt):
        if stmt.renameType == ObjectType.OBJECT_COLUMN:
            yield mk(
                "rename-column",
                _name(stmt.relation),
                stmt.subname or "",
                new_name=stmt.newname or "",
            )
        elif stmt.renameType == ObjectType.OBJECT_TABLE:
            yield mk("rename-table", _name(stmt.relation), new_name=stmt.newname or "")
        elif stmt.renameType == ObjectType.OBJECT_TYPE:
            old = _qualified(
                _names(
                    stmt.object.names
                    if isinstance(stmt.object, ast.TypeName)
                    else getattr(stmt.object, "items", None)
                    if stmt.object is not None
                    else ()
                )
            )
            if not old and isinstance(stmt.object, tuple):
                old = _qualified(_names(stmt.object))
            yield mk("rename-type", old, new_name=stmt.newname or "")
    elif isinstance(stmt, ast.TruncateStmt):
        for rel in stmt.relations or ():
            yield mk("truncate", _name(rel))
    elif isinstance(stmt, ast.DeleteStmt):
        yield mk("delete", _name(stmt.relation), where=_sql(stmt.whereClause))
    elif isinstance(stmt, ast.UpdateStmt):
        yield _update(stmt, mk)
    elif isinstance(stmt, ast.CreateEnumStmt):
        labels = tuple(_names(stmt.vals))
        yield mk("create-enum", _qualified(_names(stmt.typeName)), labels=labels)


def _alter_table(stmt: ast.AlterTableStmt, mk: Callable[..., Op]) -> Iterator[Op]:
    table = _name(stmt.relation)
    for cmd in stmt.cmds or ():
        if not isinstance(cmd, ast.AlterTableCmd):
            continue
        sub = cmd.subtype
        if sub == AT.AT_AddColumn and isinstance(cmd.def_, ast.ColumnDef):
            yield _add_column(table, cmd.def_, mk)
        elif sub == AT.AT_DropColumn:
            yield mk("drop-column", table, cmd.name or "", cascade=cmd.behavior == 1)
        elif sub == AT.AT_AlterColumnType and isinstance(cmd.def_, ast.ColumnDef):
            name, length = _type(cmd.def_.typeName)
            yield mk(
                "alter-type",
                table,
                cmd.name or "",
                type_name=name,
                type_length=length,
                using=_sql(cmd.def_.raw_default),
            )
        elif sub == AT.AT_SetNotNull:
            yield mk("set-not-null", table, cmd.name or "")
        elif sub == AT.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint):
            con = cmd.def_
            kind = (
                {
                    ConstrType.CONSTR_FOREIGN: "foreign",
                    ConstrType.CONSTR_CHECK: "check",
                    ConstrType.CONSTR_UNIQUE: "unique",
                    ConstrType.CONSTR_PRIMARY: "primary",
                }.get(con.contype, "other")
                if con.contype is not None
                else "other"
            )
            keys = tuple(_names(con.keys)) or tuple(_names(con.fk_attrs))
            yield mk(
                "add-constraint",
                table,
                constraint=kind,
                columns=keys,
                not_valid=bool(con.skip_validation),
                unique=kind in ("unique", "primary"),
                new_name=con.conname or "",
                where=_sql(con.raw_expr),
                concurrently=bool(con.indexname),
            )


def _add_column(table: str, col: ast.ColumnDef, mk: Callable[..., Op]) -> Op:
    name, length = _type(col.typeName)
    not_null = bool(col.is_not_null)
    has_default = volatile = False
    for con in col.constraints or ():
        if not isinstance(con, ast.Constraint):
            continue
        if con.contype in (ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY):
            not_null = True
        elif con.contype == ConstrType.CONSTR_DEFAULT:
            has_default = True
            volatile = volatile or _volatile(con.raw_expr)
        elif con.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            has_default = volatile = True  # computed for every existing row: a rewrite
    if name.lower() in SERIALS:
        has_default = volatile = True
    return mk(
        "add-column",
        table,
        col.colname or "",
        type_name=name,
        type_length=length,
        not_null=not_null,
        has_default=has_default,
        volatile_default=volatile,
    )


def _drop(stmt: ast.DropStmt, mk: Callable[..., Op]) -> Iterator[Op]:
    kinds = {
        ObjectType.OBJECT_TABLE: "drop-table",
        ObjectType.OBJECT_SCHEMA: "drop-schema",
        ObjectType.OBJECT_INDEX: "drop-index",
        ObjectType.OBJECT_TYPE: "drop-type",
    }
    kind = kinds.get(stmt.removeType) if stmt.removeType is not None else None
    if kind is None:
        return
    for obj in stmt.objects or ():
        if isinstance(obj, ast.String):
            name = obj.sval
        elif isinstance(obj, ast.TypeName):
            name = _qualified(_names(obj.names))
        else:
            name = _qualified(_names(obj if isinstance(obj, tuple) else ()))
        yield mk(kind, name, concurrently=bool(stmt.concurrent), cascade=stmt.behavior == 1)


def _update(stmt: ast.UpdateStmt, mk: Callable[..., Op]) -> Op:
    columns: list[str] = []
    nulls: list[str] = []
    copies: list[tuple[str, str]] = []
    for target in stmt.targetList or ():
        if not isinstance(target, ast.ResTarget) or not target.name:
            continue
        columns.append(target.name)
        value = target.val
        if isinstance(value, ast.A_Const) and value.isnull:
            nulls.append(target.name)
        for ref in _column_refs(value):
            copies.append((target.name, ref))
    guarded = tuple(ref for ref in _null_tests(stmt.whereClause))
    return mk(
        "update",
        _name(stmt.relation),
        columns=tuple(columns),
        where=_sql(stmt.whereClause),
        sets_null=tuple(nulls),
        null_guarded=guarded,
        copies_from=tuple(copies),
    )


def _column_refs(node: object) -> Iterator[str]:
    if isinstance(node, ast.ColumnRef):
        names = _names(node.fields)
        if names:
            yield names[-1]
    elif isinstance(node, ast.Node):
        for attr in node:  # pglast nodes iterate over their attribute names
            yield from _column_refs(getattr(node, attr))
    elif isinstance(node, tuple):
        for item in node:
            yield from _column_refs(item)


def _null_tests(node: object) -> Iterator[str]:
    """Columns that ``node`` (a WHERE clause) requires to be NULL, through ANDs."""
    if isinstance(node, ast.NullTest) and node.nulltesttype == 0:
        yield from _column_refs(node.arg)
    elif isinstance(node, ast.BoolExpr) and node.boolop == 0:  # AND
        for arg in node.args or ():
            yield from _null_tests(arg)
