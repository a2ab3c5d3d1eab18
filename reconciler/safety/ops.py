"""Migration SQL as a list of operations the rules understand, parsed with pglast.

pglast wraps libpg_query, PostgreSQL's own parser: whatever the server accepts, this reads
the same way (quoted identifiers, schemas, ``DO $$`` bodies, multi-command ``ALTER TABLE``).
Each statement becomes zero or more small, typed operations with the line it starts on;
statements no rule cares about become nothing. Names are folded as PostgreSQL folds them
(unquoted lowercase), and the schema is dropped when it is ``public``.

Statements are read from libpg_query's JSON tree (``libpg_query.tree``), not from pglast's
node classes: building those objects costs about ten times the parse itself, and a
pre-commit hook lints a whole history at every commit. In that tree a node is
``{"TypeName": {fields}}``, an enum is its name (``"AT_AddColumn"``), and a field that is
false, zero or empty is left out. pglast itself is imported only where its node objects and
printer are needed (a type change's ``USING`` printed back as SQL, a syntax error's
position); an ``UPDATE`` keeps its text for the data-aware checks to print (``printed``), so
a migration of DDL and ``UPDATE``s is read without it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from msgspec.json import Decoder
from msgspec.structs import replace

from reconciler.safety import libpg_query
from reconciler.safety.operations import AT_TIME_ZONE, LOSSY_CALLS, Op, ParsedSql
from reconciler.safety.renumbering import renumbering
from reconciler.safety.types import SqlType, named_type
from reconciler.source.base import DECLARED_TYPE

__all__ = ["LOSSY_CALLS", "Op", "ParsedSql", "parse"]

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


def parse(sql: str) -> ParsedSql:
    """The operations of ``sql``; a syntax error is returned, never raised."""
    parsed = libpg_query.tree(sql)
    if parsed is None:
        return _syntax_error(sql)
    tree = _read_tree(parsed)
    data = sql.encode()  # libpg_query's offsets count bytes
    ops: list[Op] = []
    items = tree.get("stmts", [])
    declared: dict[str, SqlType] = {}
    end = 0
    for item in items:
        start, length = item.get("stmt_location", 0), item.get("stmt_len", 0)
        text = (data[start : start + length] if length else data[start:]).decode()
        leading = len(text) - len(text.lstrip())
        line = data.count(b"\n", 0, start) + text.count("\n", 0, leading) + 1
        if DECLARED_TYPE.encode() in data[end:start]:  # comments lie between statements
            declared.update(_declarations(data[end:start].decode()))
        end = start + length
        kind, node = next(iter(item.get("stmt", {}).items()), ("", {}))
        read = _READERS.get(kind)
        if read is not None:
            found = read(node, partial(Op, line=line, statement=_clean(text)))
            if declared and kind == "AlterTableStmt":
                found = [_with_declared(op, declared) for op in found]
            if kind == "AlterTableStmt" and any(op.any_using for op in found):
                from reconciler.safety.printed import using_sql  # pglast's node objects

                found = using_sql(found, text)
            if kind == "UpdateStmt":  # printed when live data is measured (``printed``)
                found = [replace(op, text=text) for op in found]
            ops.extend(found)
    opaque = tuple(o for o in ops if o.kind == "do-block")
    return ParsedSql(tuple(ops), statements=len(items), opaque=opaque)


_read_tree: Callable[[str], dict[str, Any]] = Decoder(dict[str, Any]).decode
"""libpg_query's JSON as dicts and lists, the very values ``json.loads`` makes: msgspec's
decoder, already loaded for the operations, takes about 70% of its time on a history."""


_DECLARATION = re.compile(
    rf'^[ \t]*{re.escape(DECLARED_TYPE)} "((?:[^"]|"")+)" (.+?)[ \t]*$', re.MULTILINE
)


def _declarations(gap: str) -> dict[str, SqlType]:
    """The old types an Alembic revision declared (``DECLARED_TYPE`` comments), by column."""
    found = {}
    for quoted, spelled in _DECLARATION.findall(gap):
        typed = _type_of(spelled)
        if typed is not None:
            found[quoted.replace('""', '"')] = typed
    return found


def _with_declared(op: Op, declared: dict[str, SqlType]) -> Op:
    """The next type change of a column with the old type declared for it just before:
    Alembic renders one ``alter_column`` as a few statements (the type, then NOT NULL, or
    the other way round), and the declaration goes in front of the first."""
    if op.kind != "alter-type" or op.column not in declared:
        return op
    return replace(op, declared_type=declared.pop(op.column))


def _type_of(spelled: str) -> SqlType | None:
    """A type as DDL spells it (``VARCHAR(250)``, ``TIMESTAMP WITH TIME ZONE``), read by
    PostgreSQL's grammar as a cast's target; None when it does not read as one type."""
    parsed = libpg_query.tree(f"SELECT NULL::{spelled}")
    if parsed is None:
        return None
    tree = _read_tree(parsed)
    stmts = tree.get("stmts", [])
    targets = stmts[0]["stmt"].get("SelectStmt", {}).get("targetList", []) if stmts else []
    if len(stmts) != 1 or len(targets) != 1:
        return None
    cast = targets[0].get("ResTarget", {}).get("val", {}).get("TypeCast")
    return _sql_type(cast.get("typeName")) if cast else None


def _syntax_error(sql: str) -> ParsedSql:
    """pglast's own parse of the script reports the error at a character offset."""
    from pglast import parse_sql
    from pglast.parser import ParseError

    try:
        parse_sql(sql)
    except ParseError as exc:
        position = exc.args[1] if len(exc.args) > 1 and isinstance(exc.args[1], int) else -1
        line = _line(sql, position) if position >= 0 else _last_line(sql)
        return ParsedSql(error=f"line {line}: {exc.args[0]}", error_line=line)
    raise AssertionError("libpg_query rejected what pglast accepts")  # pragma: no cover


def _line(sql: str, offset: int) -> int:
    return sql.count("\n", 0, max(offset, 0)) + 1


def _last_line(sql: str) -> int:
    """Where an error "at end of input" is: the last line with code on it."""
    return len(sql.rstrip().splitlines()) or 1


def _clean(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if not ln.strip().startswith("--")]
    return " ".join(" ".join(lines).split())


# -- reading the tree ---------------------------------------------------------------------------
Tree = dict[str, Any]
Make = Callable[..., Op]


def _name(relation: Tree | None) -> str:
    relation = relation or {}
    schema, name = relation.get("schemaname"), relation.get("relname", "")
    return name if schema in (None, "public") else f"{schema}.{name}"


def _strings(items: Iterable[Tree] | None) -> list[str]:
    return [n["String"].get("sval", "") for n in items or () if "String" in n]


def _qualified(parts: list[str]) -> str:
    if len(parts) > 1 and parts[-2] == "public":
        return parts[-1]
    return ".".join(parts[-2:]) if len(parts) > 1 else (parts[0] if parts else "")


def _listed(node: Tree) -> list[str]:
    """The names of a ``List``, a ``TypeName`` or a ``String`` node."""
    if "List" in node:
        return _strings(node["List"].get("items"))
    if "TypeName" in node:
        return _strings(node["TypeName"].get("names"))
    return _strings([node])


def _type(type_name: Tree | None) -> tuple[str, int | None]:
    if not type_name:
        return "", None
    parts = [p for p in _strings(type_name.get("names")) if p != "pg_catalog"]
    length = None
    for mod in type_name.get("typmods", ()):
        const = mod.get("A_Const", {})
        if "ival" in const:
            length = const["ival"].get("ival", 0)
            break
    return (parts[-1] if parts else ""), length


def _sql_type(type_name: Tree | None) -> SqlType | None:
    """The type as the catalog will name it: aliases folded, every modifier kept."""
    if not type_name:
        return None
    mods = tuple(
        m["A_Const"].get("ival", {}).get("ival", 0)
        for m in type_name.get("typmods", ())
        if "ival" in m.get("A_Const", {})
    )
    return named_type(_strings(type_name.get("names")), mods, bool(type_name.get("arrayBounds")))


def _nodes(node: object, kind: str) -> Iterator[Tree]:
    """Every ``kind`` node inside ``node``, in the order they appear."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == kind and isinstance(value, dict):
                yield value
            yield from _nodes(value, kind)
    elif isinstance(node, list):
        for item in node:
            yield from _nodes(item, kind)


def _column_refs(node: object) -> Iterator[str]:
    for ref in _nodes(node, "ColumnRef"):
        names = _strings(ref.get("fields"))
        if names:
            yield names[-1]


def _null_tests(node: Tree | None) -> Iterator[str]:
    """Columns that ``node`` (a WHERE clause) requires to be NULL, through ANDs."""
    node = node or {}
    test = node.get("NullTest")
    if test is not None and test.get("nulltesttype") == "IS_NULL":
        yield from _column_refs(test.get("arg"))
    both = node.get("BoolExpr")
    if both is not None and both.get("boolop") == "AND_EXPR":
        for arg in both.get("args", ()):
            yield from _null_tests(arg)


def _empty_tests(node: Tree | None) -> Iterator[str]:
    """Columns that ``node`` (a WHERE clause) requires to be ``''``, through ANDs."""
    node = node or {}
    test = node.get("A_Expr")
    if test is not None and test.get("kind") == "AEXPR_OP" and _strings(test.get("name")) == ["="]:
        sides = [test.get("lexpr", {}), test.get("rexpr", {})]
        if any(side.get("A_Const", {}).get("sval", {}).get("sval", None) == "" for side in sides):
            for side in sides:
                yield from _column_refs(side)
    both = node.get("BoolExpr")
    if both is not None and both.get("boolop") == "AND_EXPR":
        for arg in both.get("args", ()):
            yield from _empty_tests(arg)


def _volatile(expr: Tree | None) -> bool:
    """Whether a default calls a function whose value differs row by row."""
    return any(
        names[-1].lower() in VOLATILE_DEFAULTS
        for call in _nodes(expr, "FuncCall")
        if (names := _strings(call.get("funcname")))
    )


# -- one reader per kind of statement -----------------------------------------------------------
def _create_table(node: Tree, mk: Make) -> list[Op]:
    defs = [e["ColumnDef"] for e in node.get("tableElts", ()) if "ColumnDef" in e]
    return [
        mk(
            "create-table",
            _name(node.get("relation")),
            columns=tuple(d.get("colname", "") for d in defs),
            column_types=tuple(_sql_type(d.get("typeName")) or SqlType("") for d in defs),
            if_not_exists=bool(node.get("if_not_exists")),
            keys=_keys(node, defs),
            **_primary(node, defs),
            not_nulls=_not_nulls(node, defs),
            refers=_refers(node, defs),
        )
    ]


def _primary(node: Tree, defs: list[Tree]) -> dict[str, Any]:
    """The PRIMARY KEY of a CREATE TABLE, inline or not, and its name: the one written, else
    the one PostgreSQL gives it (``<table>_pkey``)."""
    table = (node.get("relation") or {}).get("relname", "")
    found = [
        (tuple(_strings(c["Constraint"].get("keys"))), c["Constraint"].get("conname", ""))
        for c in node.get("tableElts", ())
        if c.get("Constraint", {}).get("contype") == "CONSTR_PRIMARY"
    ]
    found += [
        ((d.get("colname", ""),), c["Constraint"].get("conname", ""))
        for d in defs
        for c in d.get("constraints", ())
        if c.get("Constraint", {}).get("contype") == "CONSTR_PRIMARY"
    ]
    if len(found) != 1 or not found[0][0]:
        return {}
    columns, name = found[0]
    name = name or f"{table}_pkey"
    return {"primary_key": columns, "primary_name": name} if len(name) <= 63 else {}


def _keys(node: Tree, defs: list[Tree]) -> tuple[tuple[str, ...], ...]:
    """The PRIMARY KEY and UNIQUE column sets of a CREATE TABLE, inline or not."""
    unique = ("CONSTR_PRIMARY", "CONSTR_UNIQUE")
    found = [
        tuple(_strings(c["Constraint"].get("keys")))
        for c in node.get("tableElts", ())
        if c.get("Constraint", {}).get("contype") in unique
    ]
    found += [
        (d.get("colname", ""),)
        for d in defs
        for c in d.get("constraints", ())
        if c.get("Constraint", {}).get("contype") in unique
    ]
    return tuple(k for k in found if k)


def _not_nulls(node: Tree, defs: list[Tree]) -> tuple[str, ...]:
    """The columns a CREATE TABLE declares NOT NULL: inline, or by its PRIMARY KEY."""
    found = [
        d.get("colname", "")
        for d in defs
        if d.get("is_not_null")
        or any(
            c.get("Constraint", {}).get("contype") in ("CONSTR_NOTNULL", "CONSTR_PRIMARY")
            for c in d.get("constraints", ())
        )
    ]
    for item in node.get("tableElts", ()):
        if item.get("Constraint", {}).get("contype") == "CONSTR_PRIMARY":
            found += _strings(item["Constraint"].get("keys"))
    return tuple(dict.fromkeys(c for c in found if c))


def _refers(node: Tree, defs: list[Tree]) -> tuple[tuple[str, str], ...]:
    """(column, referenced table) for each foreign key a CREATE TABLE declares."""
    found = [(d.get("colname", ""), table) for d in defs for table in _column_refers(d)]
    for item in node.get("tableElts", ()):
        con = item.get("Constraint", {})
        if con.get("contype") == "CONSTR_FOREIGN" and con.get("pktable"):
            found += [(c, _name(con["pktable"])) for c in _strings(con.get("fk_attrs"))]
    return tuple(dict.fromkeys(found))


def _column_refers(col: Tree) -> list[str]:
    """The tables a column definition's own ``REFERENCES`` name."""
    return [
        _name(c["Constraint"]["pktable"])
        for c in col.get("constraints", ())
        if c.get("Constraint", {}).get("contype") == "CONSTR_FOREIGN"
        and c["Constraint"].get("pktable")
    ]


def _insert(node: Tree, mk: Make) -> list[Op]:
    cols = tuple(t["ResTarget"].get("name", "") for t in node.get("cols", ()) if "ResTarget" in t)
    select = node.get("selectStmt")
    return [
        mk(
            "insert",
            _name(node.get("relation")),
            columns=cols,
            reads=_reads(select),
            empty_when=() if node.get("withClause") else _empty_when(select),
            calls=_plain_calls(select),
            fresh=_fresh(node, cols),
            fed=_inserted_values(node, cols),
            **_whole_select(node, cols),
            **_flag_select(node, cols),
            **_per_row(node, cols),
        )
    ]


def _fresh(node: Tree, cols: tuple[str, ...]) -> tuple[str, ...]:
    """The target columns an ``INSERT ... SELECT`` fills with a generated value."""
    stmt = (node.get("selectStmt") or {}).get("SelectStmt") or {}
    targets = [t.get("ResTarget", {}).get("val", {}) for t in stmt.get("targetList", ())]
    if len(targets) != len(cols):
        return ()
    return tuple(
        column
        for column, value in zip(cols, targets, strict=True)
        if "FuncCall" in _uncast(value) and _volatile(_uncast(value))
    )


_MERGING = ("groupClause", "havingClause", "distinctClause", "limitCount", "limitOffset",
            "withClause", "valuesLists")  # fmt: skip
"""What makes a SELECT return fewer rows than it reads, or merge them."""


def _one_table_select(
    node: Tree, cols: tuple[str, ...], where: bool = True
) -> tuple[Tree, set[str], list[Tree]] | None:
    """The table an ``INSERT ... SELECT`` reads, its names (name and alias) and the values
    it gives each target column, when it reads that one table and gives at most one row per
    row: no CTE, ``ON CONFLICT``, set operation, join or anything in ``_MERGING`` (nor a
    WHERE unless ``where``), and one value per column; None otherwise."""
    stmt = (node.get("selectStmt") or {}).get("SelectStmt") or {}
    tables = stmt.get("fromClause", ())
    if (
        node.get("withClause")
        or node.get("onConflictClause")
        or any(stmt.get(key) for key in _MERGING)
        or (not where and stmt.get("whereClause"))
        or stmt.get("op", "SETOP_NONE") != "SETOP_NONE"
        or len(tables) != 1
        or "RangeVar" not in tables[0]
    ):
        return None
    relation = tables[0]["RangeVar"]
    names = {relation.get("relname", ""), relation.get("alias", {}).get("aliasname", "")} - {""}
    targets = [t.get("ResTarget", {}).get("val", {}) for t in stmt.get("targetList", ())]
    return (relation, names, targets) if len(targets) == len(cols) else None


def _flag_select(node: Tree, cols: tuple[str, ...]) -> dict[str, Any]:
    """An ``INSERT ... SELECT`` of the rows of one table where a column is true, with
    nothing else that drops or merges rows: the column and the columns read bare."""
    stmt = (node.get("selectStmt") or {}).get("SelectStmt") or {}
    flag = _true_test(stmt.get("whereClause"))
    read = _one_table_select(node, cols) if flag else None
    if read is None or flag is None:
        return {}
    relation, names, targets = read
    if flag[0] and flag[0] not in names:
        return {}
    pairs = []
    for column, value in zip(cols, targets, strict=True):
        found = _whole_value(value, names)
        if found is not None and not found[1]:
            pairs.append((column, found[0]))
    return {"flag": (_name(relation), flag[1]), "flag_copies": tuple(pairs)}


def _true_test(where: Tree | None) -> tuple[str, str] | None:
    """(qualifier or "", column) when ``where`` is exactly ``col``, ``col = true``,
    ``true = col`` or ``col IS TRUE``: true for the rows where the column is true, and
    only those (NULL and false rows are not kept)."""
    where = where or {}
    test = where.get("BooleanTest")
    if test is not None and test.get("booltesttype") == "IS_TRUE":
        return _bare_column(test.get("arg", {}))
    expr = where.get("A_Expr")
    if expr is not None and expr.get("kind") == "AEXPR_OP" and _strings(expr.get("name")) == ["="]:
        left, right = expr.get("lexpr", {}), expr.get("rexpr", {})
        for column, other in ((left, right), (right, left)):
            if other.get("A_Const", {}).get("boolval", {}).get("boolval") is True:
                return _bare_column(column)
        return None
    return _bare_column(where)


def _bare_column(node: Tree) -> tuple[str, str] | None:
    """(qualifier or "", name) of a column reference with at most one qualifier."""
    fields = node.get("ColumnRef", {}).get("fields", ())
    parts = _strings(fields)
    if not parts or len(parts) != len(fields) or len(parts) > 2:
        return None
    return ("" if len(parts) == 1 else parts[0]), parts[-1]


def _per_row(node: Tree, cols: tuple[str, ...]) -> dict[str, Any]:
    """An ``INSERT ... SELECT`` that makes at most one row per row of the one table it
    reads: the columns it takes unchanged, and the columns its WHERE requires to be NULL."""
    read = _one_table_select(node, cols)
    if read is None:
        return {}
    relation, names, targets = read
    source = _name(relation)
    pairs = tuple(
        (source, column, found[0])
        for column, value in zip(cols, targets, strict=True)
        if (found := _whole_value(value, names)) is not None and not found[1]
    )
    stmt = (node.get("selectStmt") or {}).get("SelectStmt") or {}
    guards = tuple(
        name
        for test in _conjuncts(stmt.get("whereClause"))
        if test.get("NullTest", {}).get("nulltesttype") == "IS_NULL"
        and (name := _column_of(test["NullTest"].get("arg", {}), names))
    )
    return {"per_row": pairs, "null_guarded": guards} if pairs else {}


def _column_of(node: Tree, names: set[str]) -> str:
    """The column ``node`` names, bare or qualified by one of ``names``; else empty."""
    fields = _strings(node.get("ColumnRef", {}).get("fields"))
    if len(fields) == 1 or (len(fields) == 2 and fields[0] in names):
        return fields[-1]
    return ""


def _create_function(node: Tree, mk: Make) -> list[Op]:
    """``CREATE FUNCTION``: whether it returns a set (``SETOF``, ``RETURNS TABLE``)."""
    returns = node.get("returnType") or {}
    table = any(
        p.get("FunctionParameter", {}).get("mode") == "FUNC_PARAM_TABLE"
        for p in node.get("parameters", ())
    )
    name = (_strings(node.get("funcname"))[-1:] or [""])[0].lower()
    return [mk("create-function", name, returns_set=bool(returns.get("setof")) or table)]


def _whole_select(node: Tree, cols: tuple[str, ...]) -> dict[str, Any]:
    """An ``INSERT ... SELECT`` that copies every row of one table, or every row where some
    of its columns are not NULL: its column pairs, and those columns (``Op.copy_guard``)."""
    read = _one_table_select(node, cols)
    if read is None:
        return {}
    relation, names, targets = read
    where = ((node.get("selectStmt") or {}).get("SelectStmt") or {}).get("whereClause")
    guard = [
        _column_of(test.get("NullTest", {}).get("arg", {}), names)
        if test.get("NullTest", {}).get("nulltesttype") == "IS_NOT_NULL"
        else ""
        for test in _conjuncts(where)
    ]
    if "" in guard:
        return {}  # any other condition may skip rows that hold values
    pairs = []
    for column, value in zip(cols, targets, strict=True):
        found = _whole_value(value, names)
        if found is not None:
            pairs.append((column, *found))
    if not pairs:
        return {}
    return {
        "whole_copies": tuple(pairs),
        "copied_table": _name(relation),
        "copy_guard": tuple(guard),
    }


def _whole_value(value: Tree, names: set[str]) -> tuple[str, tuple[SqlType, ...]] | None:
    """A value that is one column of the table being read (named bare, or by ``names``, its
    table's name or alias), through casts only: the column and the casts, innermost first."""
    casts: list[SqlType] = []
    while "TypeCast" in value:
        typed = _sql_type(value["TypeCast"].get("typeName"))
        if typed is None:
            return None
        casts.append(typed)
        value = value["TypeCast"].get("arg", {})
    fields = value.get("ColumnRef", {}).get("fields", ())
    parts = _strings(fields)
    if not parts or len(parts) != len(fields) or len(parts) > 2:
        return None
    if len(parts) == 2 and parts[0] not in names:
        return None
    return parts[-1], tuple(reversed(casts))


def _only_null_tests(node: Tree | None) -> bool:
    """Whether ``node`` (a WHERE clause) is nothing but ``col IS NULL`` tests joined by AND."""
    node = node or {}
    test = node.get("NullTest")
    if test is not None:
        return bool(test.get("nulltesttype") == "IS_NULL")
    both = node.get("BoolExpr")
    if both is not None and both.get("boolop") == "AND_EXPR":
        return all(_only_null_tests(arg) for arg in both.get("args", ()))
    return False


def _plain_calls(select: Tree | None) -> tuple[str, ...]:
    stmt = (select or {}).get("SelectStmt") or {}
    if stmt.get("groupClause"):
        return ()
    names = (
        _strings(call.get("funcname"))[-1:]
        for call in _nodes([stmt.get("targetList"), stmt.get("havingClause")], "FuncCall")
        if not call.get("over")
    )
    return tuple(sorted({n[0].lower() for n in names if n}))


AGGREGATES = frozenset(
    {
        "count", "sum", "avg", "min", "max", "array_agg", "string_agg", "json_agg",
        "jsonb_agg", "json_object_agg", "jsonb_object_agg", "json_objectagg", "json_arrayagg",
        "bool_and", "bool_or", "every", "bit_and", "bit_or", "bit_xor", "xmlagg",
        "range_agg", "range_intersect_agg", "any_value", "stddev", "stddev_pop",
        "stddev_samp", "variance", "var_pop", "var_samp", "corr", "covar_pop", "covar_samp",
        "regr_avgx", "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope",
        "regr_sxx", "regr_sxy", "regr_syy", "mode", "percentile_cont", "percentile_disc",
        "rank", "dense_rank", "percent_rank", "cume_dist",
    }
)  # fmt: skip
"""PostgreSQL's aggregate functions: without GROUP BY they return a row over no rows."""


def _empty_when(select: Tree | None) -> tuple[tuple[str, ...], ...]:
    """When a SELECT provably returns no row: groups of tables, one of which all empty is
    enough. Nothing is proven for VALUES, set operations, WITH, GROUP BY () or an
    aggregate without GROUP BY (``SELECT count(*) FROM empty`` returns one row)."""
    stmt = (select or {}).get("SelectStmt")
    if not stmt or stmt.get("op", "SETOP_NONE") != "SETOP_NONE":
        return ()
    if stmt.get("valuesLists") or stmt.get("withClause"):
        return ()
    group = stmt.get("groupClause")
    if next(_nodes(group, "GroupingSet"), None) is not None:
        return ()
    if not group and (stmt.get("havingClause") or _aggregates(stmt.get("targetList"))):
        return ()
    groups: list[tuple[str, ...]] = []
    for item in stmt.get("fromClause", ()):
        groups += _empty_if(item)  # a FROM list is a cross join: any empty item is enough
    return tuple(groups)


def _empty_if(item: Tree) -> list[tuple[str, ...]]:
    if "RangeVar" in item:
        return [(_name(item["RangeVar"]),)]
    join = item.get("JoinExpr")
    if join is None:
        return []  # a subquery or a function: its rows are not known
    left, right = _empty_if(join.get("larg", {})), _empty_if(join.get("rarg", {}))
    kind = join.get("jointype", "JOIN_INNER")
    if kind == "JOIN_INNER":
        return left + right
    if kind == "JOIN_LEFT":
        return left
    if kind == "JOIN_RIGHT":
        return right
    if kind == "JOIN_FULL":
        return [a + b for a in left for b in right]
    return []


def _aggregates(node: object) -> bool:
    flags = ("agg_star", "agg_distinct", "agg_filter", "agg_order", "agg_within_group")
    for call in _nodes(node, "FuncCall"):
        if call.get("over"):
            continue  # a window function: one result per row
        names = _strings(call.get("funcname"))
        if any(call.get(f) for f in flags) or (names and names[-1].lower() in AGGREGATES):
            return True
    return False


def _reads(select: Tree | None) -> tuple[tuple[str, str], ...]:
    """The (table, column) pairs a SELECT reads. A column written without its table is
    paired with every table of the query when there are several: it may be any of them."""
    if not select:
        return ()
    aliases: dict[str, str] = {}
    for rel in _nodes(select, "RangeVar"):
        table = _name(rel)
        aliases[rel.get("alias", {}).get("aliasname") or rel.get("relname", "")] = table
        aliases.setdefault(table, table)
    tables = sorted(set(aliases.values()))
    pairs: set[tuple[str, str]] = set()
    for ref in _nodes(select, "ColumnRef"):
        fields = ref.get("fields", ())
        name = "*" if fields and "A_Star" in fields[-1] else (_strings(fields[-1:]) or [""])[0]
        qualifier = _strings(fields[:-1])
        if qualifier and qualifier[-1] in aliases:
            pairs.add((aliases[qualifier[-1]], name))
        elif not qualifier:
            pairs.update((table, name) for table in tables)
    return tuple(sorted(pairs))


def _copy(node: Tree, mk: Make) -> list[Op]:
    """``COPY t FROM``: rows written into t (``COPY t TO`` only reads)."""
    if not node.get("is_from") or not node.get("relation"):
        return []
    columns = tuple(_strings(node.get("attlist")))
    return [mk("insert", _name(node.get("relation")), columns=columns, fed=("*",))]


def _merge(node: Tree, mk: Make) -> list[Op]:
    """``MERGE INTO t``: may insert rows into t (its UPDATE and DELETE arms are not read)."""
    return [mk("insert", _name(node.get("relation")), fed=("*",))]


_MADE_HERE = frozenset(
    {"now", "gen_random_uuid", "uuid_generate_v4", "nextval", "random", "clock_timestamp"}
)
"""Functions whose value the statement makes, reading no table."""


def _fed(values: Iterable[tuple[str, Tree]]) -> tuple[str, ...]:
    """The columns among ``(column, value)`` whose value may hold data older than the
    statement: it reads a column, a subquery or a function other than ``_MADE_HERE``. A
    constant, a cast of one, ``now()`` or a new id hold nothing older."""
    fed = set()
    for column, value in values:
        calls = {
            n[-1].lower() for c in _nodes(value, "FuncCall") if (n := _strings(c.get("funcname")))
        }
        if (
            next(_nodes(value, "ColumnRef"), None) is not None
            or next(_nodes(value, "SubLink"), None) is not None
            or calls - _MADE_HERE
            or column == "*"
        ):
            fed.add(column)
    return tuple(sorted(fed))


def _inserted_values(node: Tree, cols: tuple[str, ...]) -> tuple[str, ...]:
    """``Op.fed`` of an INSERT: by position, over every row of a ``VALUES`` list or the one
    target list of a ``SELECT``; every column (``*``) without a column list, or when a set
    operation or a CTE makes the rows."""
    stmt = (node.get("selectStmt") or {}).get("SelectStmt") or {}
    rows = [list(row.get("List", {}).get("items", ())) for row in stmt.get("valuesLists", ())]
    if not rows and stmt.get("targetList"):
        rows = [[t.get("ResTarget", {}).get("val", {}) for t in stmt["targetList"]]]
    plain = stmt.get("op", "SETOP_NONE") == "SETOP_NONE" and not node.get("withClause")
    if not cols or not rows or not plain or any(len(row) != len(cols) for row in rows):
        return ("*",)
    return _fed((c, v) for row in rows for c, v in zip(cols, row, strict=True))


def _do_block(node: Tree, mk: Make) -> list[Op]:
    return [mk("do-block")]


def _create_index(node: Tree, mk: Make) -> list[Op]:
    params = [p.get("IndexElem", {}).get("name") for p in node.get("indexParams", ())]
    return [
        mk(
            "create-index",
            _name(node.get("relation")),
            concurrently=bool(node.get("concurrent")),
            unique=bool(node.get("unique")),
            columns=tuple(name for name in params if name),
            new_name=node.get("idxname", ""),
            filtered="whereClause" in node or not all(params),
        )
    ]


def _boundary(node: Tree, mk: Make) -> list[Op]:
    """``BEGIN``, ``COMMIT``, ``VACUUM``...: the script's transaction ends here (reconciler
    runs the parts of such a script one at a time), so a later statement that fails does
    not roll back an earlier one."""
    return [mk("boundary")]


_CONSTRAINT_KINDS = {
    "CONSTR_FOREIGN": "foreign",
    "CONSTR_CHECK": "check",
    "CONSTR_UNIQUE": "unique",
    "CONSTR_PRIMARY": "primary",
}


def _alter_table(node: Tree, mk: Make) -> list[Op]:
    table = _name(node.get("relation"))
    out: list[Op] = []
    for item in node.get("cmds", ()):
        cmd = item.get("AlterTableCmd")
        if cmd is None:
            continue
        sub, name, definition = cmd.get("subtype"), cmd.get("name", ""), cmd.get("def", {})
        if sub == "AT_AddColumn" and "ColumnDef" in definition:
            out.append(_add_column(table, definition["ColumnDef"], mk))
        elif sub == "AT_DropColumn":
            cascade = cmd.get("behavior") == "DROP_CASCADE"
            out.append(mk("drop-column", table, name, cascade=cascade))
        elif sub == "AT_AlterColumnType" and "ColumnDef" in definition:
            typed = definition["ColumnDef"].get("typeName")
            type_name, length = _type(typed)
            out.append(
                mk(
                    "alter-type",
                    table,
                    name,
                    type_name=type_name,
                    type_length=length,
                    sql_type=_sql_type(typed),
                    any_using="raw_default" in definition["ColumnDef"],
                    **_using(definition["ColumnDef"].get("raw_default"), name),
                )
            )
        elif sub == "AT_SetNotNull":
            out.append(mk("set-not-null", table, name))
        elif sub == "AT_DropNotNull":
            out.append(mk("drop-not-null", table, name))
        elif sub == "AT_AddConstraint" and "Constraint" in definition:
            con = definition["Constraint"]
            kind = _CONSTRAINT_KINDS.get(con.get("contype", ""), "other")
            keys = _strings(con.get("keys")) or _strings(con.get("fk_attrs"))
            out.append(
                mk(
                    "add-constraint",
                    table,
                    constraint=kind,
                    columns=tuple(keys),
                    not_valid=bool(con.get("skip_validation")),
                    unique=kind in ("unique", "primary"),
                    new_name=con.get("conname", ""),
                    excludes=_excludes(con.get("raw_expr")) if kind == "check" else (),
                    concurrently=bool(con.get("indexname")),
                    references=(
                        (_name(con["pktable"]), tuple(_strings(con.get("pk_attrs"))))
                        if kind == "foreign" and con.get("pktable")
                        else ("", ())
                    ),
                )
            )
        elif sub == "AT_DropConstraint":
            out.append(mk("drop-constraint", table, new_name=name))
    return out


_KEEP = object()
"""A ``CASE`` branch whose value is the column itself."""


def _using(expr: Tree | None, column: str) -> dict[str, Any]:
    """The ``USING`` of an ``ALTER COLUMN ... TYPE``, as ``Op`` fields: the column itself,
    through casts and a time zone conversion, is read as those steps (the rules tell whether
    each keeps the values); a ``CASE`` that maps the column's values (the enum recreation
    that renames or folds labels) is read as a mapping; anything else is an expression."""
    if expr is None:
        return {}
    steps = _steps(expr, column)
    if steps is not None:
        return {"using": "column", "using_steps": steps[0], "using_zone": steps[1]}
    other = {"using": "other", "using_lossy": _lossy(expr)}
    case = _uncast(expr).get("CaseExpr")
    if case is None:
        return other
    subject = case.get("arg")
    if subject is not None and _value(subject, column) is not _KEEP:
        return other
    pairs: list[tuple[str, str | None]] = []
    for item in case.get("args", ()):
        when = item.get("CaseWhen", {})
        keys = _when_values(when.get("expr", {}), column, simple=subject is not None)
        target = _value(when.get("result", {}), column)
        if keys is None or not (target is None or isinstance(target, str)):
            return other
        pairs += ((key, target) for key in keys if key not in dict(pairs))
    default = _value(case["defresult"], column) if "defresult" in case else None
    if not (default is None or default is _KEEP or isinstance(default, str)):
        return other
    return {
        "using": "case",
        "case_map": tuple(pairs),
        "case_else": default if isinstance(default, str) else None,
        "case_else_keeps": default is _KEEP,
    }


def _steps(node: Tree, column: str) -> tuple[tuple[SqlType, ...], str] | None:
    """``column`` through casts and at most one ``AT TIME ZONE`` of a constant zone: the
    steps, innermost first, and the zone; None for any other expression."""
    steps: list[SqlType] = []
    zone = ""
    while True:
        if "TypeCast" in node:
            typed = _sql_type(node["TypeCast"].get("typeName"))
            if typed is None:
                return None
            steps.append(typed)
            node = node["TypeCast"].get("arg", {})
            continue
        converted = None if zone else _zone_of(node)
        if converted is None:
            break
        zone, node = converted
        steps.append(AT_TIME_ZONE)
    if "ColumnRef" not in node or _strings(node["ColumnRef"].get("fields"))[-1:] != [column]:
        return None
    return tuple(reversed(steps)), zone


def _zone_of(node: Tree) -> tuple[str, Tree] | None:
    """``value AT TIME ZONE 'zone'`` (``timezone('zone', value)``): the zone as written
    (``interval -08:00`` for an interval) and the value; None for anything else, a zone that
    is not a constant too."""
    call = node.get("FuncCall")
    if call is None or _strings(call.get("funcname"))[-1:] != ["timezone"]:
        return None
    args = call.get("args", ())
    if len(args) != 2 or call.get("over") or call.get("agg_star"):
        return None
    zone = args[0]
    prefix = ""
    if "TypeCast" in zone:
        typed = _sql_type(zone["TypeCast"].get("typeName"))
        if typed is None or typed.name != "interval":
            return None
        prefix, zone = "interval ", zone["TypeCast"].get("arg", {})
    text = zone.get("A_Const", {}).get("sval", {}).get("sval")
    if not isinstance(text, str):
        return None
    return prefix + text, args[1]


def _uncast(node: Tree) -> Tree:
    while "TypeCast" in node:
        node = node["TypeCast"].get("arg", {})
    return node


def _value(node: Tree, column: str) -> object:
    """A string constant, None for NULL, ``_KEEP`` for the column, anything else: ``...``."""
    node = _uncast(node)
    if "A_Const" in node:
        const = node["A_Const"]
        if const.get("isnull"):
            return None
        return const["sval"].get("sval", "") if "sval" in const else ...
    if "ColumnRef" in node and _strings(node["ColumnRef"].get("fields"))[-1:] == [column]:
        return _KEEP
    return ...


def _when_values(expr: Tree, column: str, simple: bool) -> list[str] | None:
    """The values a ``WHEN`` matches: ``WHEN 'a'`` (simple CASE), ``WHEN col = 'a'``,
    ``WHEN col IN ('a', 'b')``, or those joined with OR; None for anything else."""
    if simple:
        value = _value(expr, column)
        return [value] if isinstance(value, str) else None
    if "BoolExpr" in expr and expr["BoolExpr"].get("boolop") == "OR_EXPR":
        found: list[str] = []
        for arg in expr["BoolExpr"].get("args", ()):
            values = _when_values(arg, column, simple)
            if values is None:
                return None
            found += values
        return found
    test = expr.get("A_Expr", {})
    if _strings(test.get("name")) != ["="] or test.get("kind") not in ("AEXPR_OP", "AEXPR_IN"):
        return None
    left, right = test.get("lexpr", {}), test.get("rexpr", {})
    if _value(left, column) is not _KEEP:
        left, right = right, left
    if _value(left, column) is not _KEEP:
        return None
    items = right["List"].get("items", ()) if "List" in right else [right]
    constants = [_value(item, column) for item in items]
    strings = [v for v in constants if isinstance(v, str)]
    return strings if len(strings) == len(constants) else None


def _add_column(table: str, col: Tree, mk: Make) -> Op:
    type_name, length = _type(col.get("typeName"))
    not_null = bool(col.get("is_not_null"))
    has_default = volatile = False
    for item in col.get("constraints", ()):
        con = item.get("Constraint", {})
        contype = con.get("contype")
        if contype in ("CONSTR_NOTNULL", "CONSTR_PRIMARY"):
            not_null = True
        elif contype == "CONSTR_DEFAULT":
            has_default = True
            volatile = volatile or _volatile(con.get("raw_expr"))
        elif contype in ("CONSTR_IDENTITY", "CONSTR_GENERATED"):
            has_default = volatile = True  # computed for every existing row: a rewrite
    if type_name.lower() in SERIALS:
        has_default = volatile = True
    return mk(
        "add-column",
        table,
        col.get("colname", ""),
        refers=tuple((col.get("colname", ""), t) for t in _column_refers(col)),
        type_name=type_name,
        type_length=length,
        sql_type=_sql_type(col.get("typeName")),
        not_null=not_null,
        has_default=has_default,
        volatile_default=volatile,
    )


_DROPPED = {
    "OBJECT_TABLE": "drop-table",
    "OBJECT_SCHEMA": "drop-schema",
    "OBJECT_INDEX": "drop-index",
    "OBJECT_TYPE": "drop-type",
}


def _drop(node: Tree, mk: Make) -> list[Op]:
    kind = _DROPPED.get(node.get("removeType", ""))
    if kind is None:
        return []
    concurrently, cascade = bool(node.get("concurrent")), node.get("behavior") == "DROP_CASCADE"
    return [
        mk(kind, _qualified(_listed(obj)), concurrently=concurrently, cascade=cascade)
        for obj in node.get("objects", ())
    ]


def _rename(node: Tree, mk: Make) -> list[Op]:
    renamed, new_name = node.get("renameType"), node.get("newname", "")
    if renamed == "OBJECT_COLUMN":
        column = node.get("subname", "")
        return [mk("rename-column", _name(node.get("relation")), column, new_name=new_name)]
    if renamed == "OBJECT_TABLE":
        return [mk("rename-table", _name(node.get("relation")), new_name=new_name)]
    if renamed == "OBJECT_TYPE":
        return [mk("rename-type", _qualified(_listed(node.get("object", {}))), new_name=new_name)]
    return []


def _truncate(node: Tree, mk: Make) -> list[Op]:
    """``filtered``: ``TRUNCATE ONLY``, which leaves the rows of the tables that inherit."""
    relations = [r.get("RangeVar") or {} for r in node.get("relations", ())]
    return [mk("truncate", _name(r), filtered=not r.get("inh")) for r in relations]


def _delete(node: Tree, mk: Make) -> list[Op]:
    """``filtered`` also by a ``USING`` list (joined with an empty table, it deletes
    nothing) and by ``ONLY`` (the rows of the tables that inherit stay, and a query of the
    table still reads them): only a DELETE with none of them empties its table."""
    where = node.get("whereClause")
    guarded = tuple(_null_tests(where)) if where is not None and _only_null_tests(where) else ()
    relation = node.get("relation") or {}
    filtered = where is not None or bool(node.get("usingClause")) or not relation.get("inh")
    return [mk("delete", _name(relation), filtered=filtered, null_guarded=guarded)]


def _update(node: Tree, mk: Make) -> list[Op]:
    columns: list[str] = []
    nulls: list[str] = []
    copies: list[tuple[str, str]] = []
    lossy: list[str] = []
    for item in node.get("targetList", ()):
        target = item.get("ResTarget", {})
        name = target.get("name")
        if not name:
            continue
        columns.append(name)
        value = target.get("val", {})
        if value.get("A_Const", {}).get("isnull"):
            nulls.append(name)
        copies += ((name, ref) for ref in _column_refs(value))
        if _lossy(value):
            lossy.append(name)
    return [
        mk(
            "update",
            _name(node.get("relation")),
            columns=tuple(columns),
            filtered="whereClause" in node,
            sets_null=tuple(nulls),
            null_guarded=tuple(_null_tests(node.get("whereClause"))),
            copies_from=tuple(copies),
            onto_itself=_onto_itself(node),
            lossy_calls=tuple(lossy),
            empty_guarded=tuple(_empty_tests(node.get("whereClause"))),
            whole_copies=_whole_update(node),
            wrapped_copies=_wrapped_update(node),
            mapped_copies=_mapped_copies(node),
            moves=_moves(node),
            link=_link(node),
            fed=_fed(
                (t.get("ResTarget", {}).get("name") or "*", t.get("ResTarget", {}).get("val", {}))
                for t in node.get("targetList", ())
            ),
            **renumbering(node),
            mapped_links=_mapped_links(node),
        )
    ]


def _onto_itself(node: Tree) -> tuple[str, ...]:
    """The columns an UPDATE sets to themselves, bare (``SET c = c``; ``c = (c)`` too, the
    tree keeps no parentheses); none when it joins or has a ``WITH``, where a bare name may
    be another table's column."""
    if node.get("fromClause") or node.get("withClause"):
        return ()
    found = []
    for item in node.get("targetList", ()):
        target = item.get("ResTarget", {})
        name = target.get("name")
        fields = target.get("val", {}).get("ColumnRef", {}).get("fields", ())
        if name and "indirection" not in target and len(fields) == 1 and _strings(fields) == [name]:
            found.append(name)
    return tuple(found)


def _lossy(value: Tree) -> bool:
    """Whether an expression calls a function that keeps only part of its argument, casts
    to ``date`` (``LOSSY_CALLS``), or divides: ``/`` drops an integer's remainder and rounds
    any other number, ``%`` keeps only the remainder."""
    calls = {n[-1].lower() for c in _nodes(value, "FuncCall") if (n := _strings(c.get("funcname")))}
    casts = {t.name for c in _nodes(value, "TypeCast") if (t := _sql_type(c.get("typeName")))}
    divides = any(
        e.get("kind") == "AEXPR_OP" and _strings(e.get("name")) in (["/"], ["%"])
        for e in _nodes(value, "A_Expr")
    )
    return bool(calls & LOSSY_CALLS) or "date" in casts or divides


def _mapped_copies(node: Tree) -> tuple[tuple[str, str], ...]:
    """``SET new = CASE`` over one column ``old``, mapping constants one to one, ELSE NULL
    (or none), in an UPDATE of every row (see ``Op.mapped_copies``)."""
    if node.get("whereClause") or node.get("fromClause") or node.get("withClause"):
        return ()
    found = []
    for item in node.get("targetList", ()):
        target = item.get("ResTarget", {})
        value = target.get("val", {})
        sources = set(_column_refs(value))
        if not target.get("name") or "CaseExpr" not in _uncast(value) or len(sources) != 1:
            continue
        (source,) = sources
        case = _using(value, source)
        pairs = case.get("case_map", ())
        targets = [new for _, new in pairs]
        if (
            case.get("using") == "case"
            and case["case_else"] is None
            and not case["case_else_keeps"]
            and None not in targets
            and len(set(targets)) == len(targets)
            and target["name"] != source
        ):
            found.append((target["name"], source))
    return tuple(found)


def _link(node: Tree) -> tuple[str, str, str, str]:
    """``UPDATE a SET x = b.v FROM b WHERE a.p = b.k``, or the same written as a scalar
    subquery over every row, ``UPDATE a SET x = (SELECT b.v FROM b WHERE b.k = a.p)``: one
    target, one joined table, one equality, nothing else; (b, k, p, v), or empty.

    The subquery sets ``x`` of each ``a`` row to the ``v`` of the ``b`` row naming it, as the
    join does; it also sets ``x`` to NULL where none does, which is the UPDATE's own finding
    (``update-overwrites``), not the link's. Its value may be written bare (``SELECT "id"``):
    inside the subquery a bare name is ``b``'s column when ``b`` has one, and the key on
    ``b.v`` that ``copies._link_kept`` requires proves that it has."""
    targets = node.get("targetList", ())
    if node.get("withClause") or len(targets) != 1:
        return ("", "", "", "")
    target = targets[0].get("ResTarget", {})
    if target.get("indirection"):
        return ("", "", "", "")
    query, bare = node, False
    sublink = target.get("val", {}).get("SubLink", {})
    if sublink.get("subLinkType") == "EXPR_SUBLINK" and not (
        node.get("fromClause") or node.get("whereClause")
    ):
        query, bare = sublink.get("subselect", {}).get("SelectStmt", {}), True
        if set(query) - {"targetList", "fromClause", "whereClause", "limitOption", "op"}:
            return ("", "", "", "")
        if query.get("op", "SETOP_NONE") != "SETOP_NONE" or len(query.get("targetList", ())) != 1:
            return ("", "", "", "")
        target = query["targetList"][0].get("ResTarget", {})
    tables = query.get("fromClause", ())
    test = (query.get("whereClause") or {}).get("A_Expr", {})
    if len(tables) != 1 or "RangeVar" not in tables[0]:
        return ("", "", "", "")
    if test.get("kind") != "AEXPR_OP" or _strings(test.get("name")) != ["="]:
        return ("", "", "", "")
    joined, relation = tables[0]["RangeVar"], node.get("relation") or {}
    mine = {relation.get("relname", ""), relation.get("alias", {}).get("aliasname", "")} - {""}
    theirs = {joined.get("relname", ""), joined.get("alias", {}).get("aliasname", "")} - {""}
    if mine & theirs:
        return ("", "", "", "")
    sides = [_qualified_ref(test.get(side, {})) for side in ("lexpr", "rexpr")]
    value = _qualified_ref(target.get("val", {}))
    fields = _strings(target.get("val", {}).get("ColumnRef", {}).get("fields", ()))
    if bare and len(fields) == 1:
        value = (next(iter(theirs)), fields[0])
    if target.get("indirection") or value[0] not in theirs:
        return ("", "", "", "")
    ours = [col for qual, col in sides if qual in mine]
    other = [col for qual, col in sides if qual in theirs]
    if len(ours) != 1 or len(other) != 1:
        return ("", "", "", "")
    return (_name(joined), other[0], ours[0], value[1])


def _mapped_links(node: Tree) -> tuple[tuple[str, str, str, str, str, str, str, str], ...]:
    """``UPDATE a SET x = m.v FROM s JOIN m ON m.w = 'p_' || s.k WHERE a.c = s.k``: each
    target set from a joined table found through a key expression (see ``Op.mapped_links``).
    Only inner joins of tables: a condition ANDed anywhere only drops rows from the match,
    which a later ``SET NOT NULL`` of ``x`` rules out (for the rules to check)."""
    relation = node.get("relation") or {}
    aliases, conditions = _inner_joins(node.get("fromClause", ()))
    if node.get("withClause") or aliases is None or _name(relation) in aliases.values():
        return ()
    mine = {relation.get("relname", ""), relation.get("alias", {}).get("aliasname", "")} - {""}
    if mine & aliases.keys():
        return ()
    conditions += _conjuncts(node.get("whereClause"))
    equal = [pair for c in conditions if (pair := _equality(c)) is not None]
    found = []
    for item in node.get("targetList", ()):
        target = item.get("ResTarget", {})
        qualifier, value = _qualified_ref(target.get("val", {}))
        if target.get("indirection") or qualifier not in aliases:
            continue
        for left, right in (pair for e in equal for pair in (e, e[::-1])):
            if _qualified_ref(left) == ("", "") or _qualified_ref(left)[0] != qualifier:
                continue
            keyed = _prefixed(right)
            if keyed is None:
                continue
            prefix, (source, key) = keyed
            link = _link_column(source, key, mine, aliases, equal)
            if source != qualifier and link:
                table = _name(relation) if source in mine else aliases[source]
                found.append(
                    (
                        target["name"],
                        link,
                        aliases[qualifier],
                        value,
                        _qualified_ref(left)[1],
                        prefix,
                        table,
                        key,
                    )
                )
    return tuple(found)


def _inner_joins(items: list[Tree]) -> tuple[dict[str, str] | None, list[Tree]]:
    """The tables of a FROM list of inner joins, by alias, and their ``ON`` conditions;
    None for anything else (an outer join, ``USING``, a subquery, a function)."""
    aliases: dict[str, str] = {}
    conditions: list[Tree] = []
    pending = list(items)
    while pending:
        item = pending.pop()
        if "RangeVar" in item:
            rel = item["RangeVar"]
            name = rel.get("alias", {}).get("aliasname") or rel.get("relname", "")
            if name in aliases:
                return None, []
            aliases[name] = _name(rel)
            continue
        join = item.get("JoinExpr")
        if join is None or join.get("jointype", "JOIN_INNER") != "JOIN_INNER":
            return None, []
        if join.get("usingClause") or join.get("isNatural") or join.get("alias"):
            return None, []
        conditions += _conjuncts(join.get("quals"))
        pending += [join.get("larg", {}), join.get("rarg", {})]
    return aliases, conditions


def _conjuncts(node: Tree | None) -> list[Tree]:
    """The conditions ANDed in ``node``."""
    if not node:
        return []
    both = node.get("BoolExpr")
    if both is not None and both.get("boolop") == "AND_EXPR":
        return [c for arg in both.get("args", ()) for c in _conjuncts(arg)]
    return [node]


def _equality(node: Tree) -> tuple[Tree, Tree] | None:
    test = node.get("A_Expr", {})
    if test.get("kind") != "AEXPR_OP" or _strings(test.get("name")) != ["="]:
        return None
    return test.get("lexpr", {}), test.get("rexpr", {})


def _prefixed(node: Tree) -> tuple[str, tuple[str, str]] | None:
    """``'p_' || q.k`` (or ``q.k``, or ``q.k::text``) as ('p_', (q, k)); None otherwise."""
    prefix = ""
    test = node.get("A_Expr", {})
    if test:
        const = test.get("lexpr", {}).get("A_Const", {})
        if test.get("kind") != "AEXPR_OP" or _strings(test.get("name")) != ["||"]:
            return None
        if "sval" not in const:
            return None
        prefix, node = const["sval"].get("sval", ""), test.get("rexpr", {})
        cast = node.get("TypeCast", {})
        if cast and _strings(cast.get("typeName", {}).get("names"))[-1:] == ["text"]:
            node = cast.get("arg", {})
    ref = _qualified_ref(node)
    return (prefix, ref) if ref[0] else None


def _link_column(
    source: str,
    key: str,
    mine: set[str],
    aliases: dict[str, str],
    equal: list[tuple[Tree, Tree]],
) -> str:
    """The column of the updated table whose value the key ``source.key`` is: the key
    itself when ``source`` is the updated table, else the column ``a.c`` of an equality
    ``a.c = source.key``; empty when there is none, or several."""
    if source in mine:
        return key
    if source not in aliases:
        return ""
    found = {
        _qualified_ref(ours)[1]
        for pair in equal
        for ours, theirs in (pair, pair[::-1])
        if _qualified_ref(ours)[0] in mine and _qualified_ref(theirs) == (source, key)
    }
    return found.pop() if len(found) == 1 else ""


def _excludes(expr: Tree | None) -> tuple[tuple[str, str], ...]:
    """Pairs of columns a CHECK never lets both be non-null: read only when the check is
    built of ``IS [NOT] NULL`` tests (which are never NULL themselves) with AND, OR, NOT,
    by trying every way its columns can be NULL or not."""
    columns = sorted(set(_column_refs(expr)))
    if not expr or not 2 <= len(columns) <= 6:
        return ()
    found = []
    for a, b in ((a, b) for i, a in enumerate(columns) for b in columns[i + 1 :]):
        rest = [c for c in columns if c not in (a, b)]
        results = [
            _nulls_pass(expr, {a: True, b: True, **dict(zip(rest, nulls, strict=True))})
            for nulls in _choices(len(rest))
        ]
        if all(r is False for r in results):
            found.append((a, b))
    return tuple(found)


def _choices(count: int) -> list[tuple[bool, ...]]:
    """Every tuple of ``count`` booleans."""
    return [tuple(bool(i >> bit & 1) for bit in range(count)) for i in range(2**count)]


def _nulls_pass(node: Tree, valued: dict[str, bool]) -> bool | None:
    """Whether a check of null tests passes when the columns in ``valued`` hold a value
    (True) or NULL; None when it is not made only of those tests."""
    test = node.get("NullTest")
    if test is not None:
        fields = _strings(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
        if len(fields) != 1 or fields[0] not in valued:
            return None
        return bool(valued[fields[0]] == (test.get("nulltesttype") == "IS_NOT_NULL"))
    both = node.get("BoolExpr")
    if both is None:
        return None
    args = [_nulls_pass(arg, valued) for arg in both.get("args", ())]
    if None in args:
        return None
    if both.get("boolop") == "AND_EXPR":
        return all(args)
    if both.get("boolop") == "OR_EXPR":
        return any(args)
    return not args[0] if both.get("boolop") == "NOT_EXPR" and len(args) == 1 else None


def _qualified_ref(node: Tree) -> tuple[str, str]:
    """(qualifier, column) of a ``q.col`` reference, else empty strings."""
    fields = node.get("ColumnRef", {}).get("fields", ())
    parts = _strings(fields)
    return (parts[0], parts[1]) if len(parts) == len(fields) == 2 else ("", "")


def _moves(node: Tree) -> tuple[tuple[str, str], ...]:
    """Columns whose values the UPDATE moves to another column of the same row: two
    ``CASE`` on one condition (evaluated once per row on the old row, so both agree,
    unless it calls a volatile function), one keeping the column where the other is NULL."""
    relation = node.get("relation") or {}
    names = {relation.get("relname", ""), relation.get("alias", {}).get("aliasname", "")} - {""}
    branches: dict[str, tuple[str, object, object]] = {}
    for item in node.get("targetList", ()):
        target = item.get("ResTarget", {})
        case = target.get("val", {}).get("CaseExpr")
        if not target.get("name") or case is None or case.get("arg") or len(case["args"]) != 1:
            continue
        when = case["args"][0].get("CaseWhen", {})
        if _volatile(when.get("expr")):
            continue
        sides = [when.get("result", {}), case.get("defresult", {"A_Const": {"isnull": True}})]
        then, otherwise = (_null_or_column(side, names) for side in sides)
        branches[target["name"]] = (json.dumps(_unplaced(when.get("expr"))), then, otherwise)
    found = []
    for column, (condition, then, otherwise) in branches.items():
        if (then, otherwise) != (None, column):
            continue
        for other, (same, other_then, other_else) in branches.items():
            if other != column and same == condition and (other_then, other_else) == (column, None):
                found.append((column, other))
    return tuple(found)


def _null_or_column(node: Tree, names: set[str]) -> object:
    """None for NULL, a column's name for a column of the updated table, else ``...``."""
    if node.get("A_Const", {}).get("isnull"):
        return None
    found = _whole_value(node, names)
    return found[0] if found is not None and not found[1] else ...


def _unplaced(node: object) -> object:
    """``node`` without its offsets in the text: two spellings of one expression compare equal."""
    if isinstance(node, dict):
        return {k: _unplaced(v) for k, v in node.items() if k != "location"}
    if isinstance(node, list):
        return [_unplaced(v) for v in node]
    return node


def _whole_update(node: Tree) -> tuple[tuple[str, str, tuple[SqlType, ...]], ...]:
    """``UPDATE t SET new = old`` over every row: no FROM (a join may not match every row),
    no WITH, and no WHERE but ``IS NULL`` tests on the columns it sets (a fill, whole only
    when those columns hold no value yet: for the rules to know), or tests that skip only
    the rows where ``old`` itself is empty (``_skips_only_empty``)."""
    found = _copied_values(node)
    return tuple(
        (name, *whole) for name, value, names in found if (whole := _whole_value(value, names))
    )


def _wrapped_update(node: Tree) -> tuple[tuple[str, str], ...]:
    """``UPDATE t SET new = jsonb_build_object('kind', 'custom', 'address', old)`` over the
    rows ``_whole_update`` accepts: ``old`` kept under a key of its own (``Op.wrapped_copies``)."""
    return tuple(
        (name, column)
        for name, value, names in _copied_values(node)
        if (column := _wrapped_value(value, names))
    )


def _copied_values(node: Tree) -> list[tuple[str, Tree, set[str]]]:
    """(target, value, names of the table) for each plain assignment of an UPDATE whose rows
    are every row (see ``_whole_update``); a value read from a column other than the one a
    WHERE requires to be non-empty is left out, since the rows skipped may hold it."""
    if node.get("fromClause") or node.get("withClause"):
        return []
    where = node.get("whereClause")
    targets = [t.get("ResTarget", {}) for t in node.get("targetList", ())]
    set_names = {t.get("name") for t in targets}
    skipped: set[str] = set()
    for test in _conjuncts(where):
        if _only_null_tests(test):
            if set(_null_tests(test)) - set_names:
                return []  # a row skipped for a NULL elsewhere may hold a value
        elif column := _non_empty_test(test):
            skipped.add(column)
        else:
            return []
    relation = node.get("relation") or {}
    names = {relation.get("relname", ""), relation.get("alias", {}).get("aliasname", "")} - {""}
    found = []
    for target in targets:
        name, value = target.get("name"), target.get("val", {})
        if not name or target.get("indirection"):
            continue
        read = set(_column_refs(value))
        if name in read or (skipped and read != skipped):
            continue
        found.append((name, value, names))
    return found


def _non_empty_test(node: Tree) -> str:
    """The column ``node`` requires to hold a value that is not empty (``col IS NOT NULL``,
    ``col <> ''``, ``col != ''``), or empty: the rows it skips lose nothing that is data."""
    test = node.get("NullTest")
    if test is not None:
        if test.get("nulltesttype") != "IS_NOT_NULL":
            return ""
        fields = _strings(test.get("arg", {}).get("ColumnRef", {}).get("fields"))
        return fields[-1] if fields else ""
    expr = node.get("A_Expr")
    if expr is None or expr.get("kind") != "AEXPR_OP" or _strings(expr.get("name")) != ["<>"]:
        return ""  # libpg_query spells != as <>
    left, right = expr.get("lexpr", {}), expr.get("rexpr", {})
    for column, other in ((left, right), (right, left)):
        if other.get("A_Const", {}).get("sval", {}).get("sval", None) == "":
            fields = _strings(column.get("ColumnRef", {}).get("fields"))
            return fields[-1] if fields else ""
    return ""


def _wrapped_value(value: Tree, names: set[str]) -> str:
    """The column a ``jsonb_build_object(...)`` keeps whole: its arguments are pairs of a
    distinct constant key and a value, every value a constant but one, a column of the
    table read bare; empty for anything else."""
    call = value.get("FuncCall", {})
    if [n.lower() for n in _strings(call.get("funcname"))][-1:] not in (
        ["jsonb_build_object"],
        ["json_build_object"],
    ):
        return ""
    args = call.get("args", ())
    if not args or len(args) % 2 or call.get("agg_star") or call.get("func_variadic"):
        return ""
    keys = [a.get("A_Const", {}).get("sval", {}).get("sval") for a in args[::2]]
    if None in keys or len(set(keys)) != len(keys):
        return ""
    columns = [found for a in args[1::2] if (found := _whole_value(a, names)) and not found[1]]
    constants = sum(1 for a in args[1::2] if "A_Const" in a)
    if len(columns) != 1 or constants != len(args) // 2 - 1:
        return ""
    return columns[0][0]


def _define(node: Tree, mk: Make) -> list[Op]:
    """``CREATE AGGREGATE``: a function that returns a row over no rows."""
    if node.get("kind") != "OBJECT_AGGREGATE":
        return []
    return [mk("create-aggregate", (_strings(node.get("defnames"))[-1:] or [""])[0].lower())]


def _create_enum(node: Tree, mk: Make) -> list[Op]:
    labels = tuple(_strings(node.get("vals")))
    return [mk("create-enum", _qualified(_strings(node.get("typeName"))), labels=labels)]


_READERS: dict[str, Callable[[Tree, Make], list[Op]]] = {
    "AlterSystemStmt": _boundary,
    "AlterTableStmt": _alter_table,
    "CopyStmt": _copy,
    "CreateEnumStmt": _create_enum,
    "CreateFunctionStmt": _create_function,
    "CreateStmt": _create_table,
    "CreateTrigStmt": lambda node, mk: [mk("create-trigger", _name(node.get("relation")))],
    "CreatedbStmt": _boundary,
    "DefineStmt": _define,
    "DeleteStmt": _delete,
    "DoStmt": _do_block,
    "DropStmt": _drop,
    "DropdbStmt": _boundary,
    "IndexStmt": _create_index,
    "InsertStmt": _insert,
    "MergeStmt": _merge,
    "RenameStmt": _rename,
    "TransactionStmt": _boundary,
    "TruncateStmt": _truncate,
    "UpdateStmt": _update,
    "VacuumStmt": _boundary,
}
"""The statements rules read; any other kind yields no operation."""
