"""An UPDATE that renumbers a column 1, 2, 3... in the column's own order, read from the tree.

Hoppscotch repairs its ``orderIndex`` columns this way::

    WITH ordered AS (
      SELECT id, ROW_NUMBER() OVER (PARTITION BY "teamID", "parentID"
                                    ORDER BY "orderIndex" ASC, "createdOn" ASC, id ASC) AS n
      FROM "TeamCollection")
    UPDATE "TeamCollection" tc SET "orderIndex" = o.n FROM ordered o WHERE tc.id = o.id;

Every row gets the rank of its own ``orderIndex`` among the rows of its group: two rows
whose values differed keep them in the same order, so the order, which is all such a column
means, is kept. That holds only for exactly this shape, and each condition below is there
because, without it, rows could end up in another order or equal:

- ``row_number()`` (``rank()`` and ``dense_rank()`` give tied rows one number), written
  inline in the ``OVER``, whose ``ORDER BY`` starts with the column itself, bare
  (``ASC`` or ``DESC``, no ``USING``, no ``COLLATE``, no expression);
- ``PARTITION BY`` plain columns other than the renumbered one (a partition by the column
  itself would number each value's rows from 1 again);
- the numbers come from a SELECT over every row of the same table (one ``FROM`` item, no
  ``WHERE``, ``GROUP BY``, ``DISTINCT``, ``LIMIT`` or set operation): a row left out of the
  numbering would keep an old value among the new ones;
- the UPDATE is joined back on equalities between the same columns of the table and of
  the SELECT, nothing else: whether those columns are a key (each row matched once, none
  missed) is for the rules, which know the constraints and the data.

The column's type matters too (numbers written into a text column sort as text): that is
also for the rules.
"""

from __future__ import annotations

from typing import Any

Tree = dict[str, Any]

_ROW_NUMBER = (["row_number"], ["pg_catalog", "row_number"])
_LEAVES_ROWS_OUT = (
    "whereClause",
    "groupClause",
    "havingClause",
    "distinctClause",
    "limitCount",
    "limitOffset",
    "withClause",
    "valuesLists",
    "intoClause",
    "lockingClause",
    "windowClause",
    "groupDistinct",
)


def renumbering(node: Tree) -> dict[str, Any]:
    """``Op`` fields for an UPDATE (``node``) that renumbers a column in its own order:
    ``renumbered``, ``renumber_key``, ``renumber_groups``, ``renumber_descending``; empty
    for any other UPDATE."""
    found = _numbers(node)
    if found is None:
        return {}
    select, alias = found
    table = node.get("relation") or {}
    source = (select.get("fromClause") or [{}])[0].get("RangeVar", {})
    if _relation(source) != _relation(table):
        return {}
    inside = _names(source)
    outputs = _outputs(select, inside)
    mine = _names(table)
    if mine & {alias}:
        return {}
    assigned = _assignment(node, alias, outputs)
    if assigned is None:
        return {}
    column, window = assigned
    order = _order(window, column, inside)
    key = _key(node.get("whereClause"), mine, alias, outputs)
    if order is None or not key:
        return {}
    return {
        "renumbered": column,
        "renumber_key": key,
        "renumber_groups": order[0],
        "renumber_descending": order[1],
    }


def _numbers(node: Tree) -> tuple[Tree, str] | None:
    """The SELECT that computes the numbers over the whole table, and the name the UPDATE's
    ``FROM`` gives it: a common table expression (the only one) or a subquery."""
    tables = node.get("fromClause") or []
    if len(tables) != 1:
        return None
    item = tables[0]
    ctes = (node.get("withClause") or {}).get("ctes") or []
    if "RangeVar" in item and len(ctes) == 1 and not node["withClause"].get("recursive"):
        ref, cte = item["RangeVar"], ctes[0].get("CommonTableExpr", {})
        if ref.get("schemaname") or ref.get("relname") != cte.get("ctename"):
            return None
        select = (cte.get("ctequery") or {}).get("SelectStmt")
        alias = (ref.get("alias") or {}).get("aliasname") or ref.get("relname", "")
    elif "RangeSubselect" in item and not ctes and not item["RangeSubselect"].get("lateral"):
        sub = item["RangeSubselect"]
        select = (sub.get("subquery") or {}).get("SelectStmt")
        alias = (sub.get("alias") or {}).get("aliasname", "")
    else:
        return None
    if not select or not alias or any(select.get(key) for key in _LEAVES_ROWS_OUT):
        return None
    if select.get("op", "SETOP_NONE") != "SETOP_NONE" or len(select.get("fromClause") or []) != 1:
        return None
    return select, alias


def _relation(ref: Tree) -> tuple[object, ...]:
    """A table reference without its alias and position: two that read the same rows."""
    schema = ref.get("schemaname") or "public"
    return (schema, ref.get("relname"), bool(ref.get("inh")), ref.get("catalogname"))


def _names(ref: Tree) -> set[str]:
    """The names a column of ``ref`` may be qualified with: its alias, else its name."""
    alias = (ref.get("alias") or {}).get("aliasname")
    return {alias} if alias else {ref.get("relname", "")}


def _column(node: Tree, names: set[str]) -> str | None:
    """The column a bare ``c`` or qualified ``q.c`` reference names (``q`` in ``names``)."""
    fields = (node or {}).get("ColumnRef", {}).get("fields", ())
    parts = [str(f["String"].get("sval", "")) for f in fields if "String" in f]
    if len(parts) != len(fields) or not 1 <= len(parts) <= 2:
        return None
    if len(parts) == 2 and parts[0] not in names:
        return None
    return parts[-1]


def _outputs(select: Tree, inside: set[str]) -> dict[str, tuple[str, Any]]:
    """The SELECT's output columns by name: ``("column", name)`` for a column of the table,
    ``("row_number", window)`` for ``row_number() OVER (...)``."""
    found: dict[str, tuple[str, Any]] = {}
    for item in select.get("targetList") or []:
        target = item.get("ResTarget", {})
        value = target.get("val") or {}
        column = _column(value, inside)
        call = value.get("FuncCall")
        name = target.get("name") or column
        if not name or name in found:
            found[name or ""] = ("other", None)  # a name given twice is ambiguous
        elif column is not None:
            found[name] = ("column", column)
        elif call is not None and _plain_row_number(call):
            found[name] = ("row_number", call["over"])
        else:
            found[name] = ("other", None)
    return found


def _plain_row_number(call: Tree) -> bool:
    names = [f["String"].get("sval", "") for f in call.get("funcname", ()) if "String" in f]
    over = call.get("over") or {}
    return (
        names in _ROW_NUMBER
        and not any(call.get(k) for k in ("args", "agg_star", "agg_filter", "agg_distinct"))
        and bool(over)
        and not over.get("refname")
        and not over.get("name")
    )


def _assignment(node: Tree, alias: str, outputs: dict[str, tuple[str, Any]]) -> Any:
    """(column, window) of the one ``SET c = alias.n`` where ``n`` is the row number."""
    found = []
    for item in node.get("targetList") or []:
        target = item.get("ResTarget", {})
        value = _column(target.get("val") or {}, {alias})
        if target.get("indirection") or value is None or not target.get("name"):
            continue
        kind, window = outputs.get(value, ("other", None))
        if kind == "row_number":
            found.append((target["name"], window))
    return found[0] if len(found) == 1 else None


def _order(window: Tree, column: str, inside: set[str]) -> tuple[tuple[str, ...], bool] | None:
    """The partition columns and whether the order is descending, when the window orders
    by ``column`` first and partitions by other plain columns only."""
    orders = window.get("orderClause") or []
    first = orders[0].get("SortBy", {}) if orders else {}
    if _column(first.get("node") or {}, inside) != column:
        return None
    if first.get("sortby_dir") not in ("SORTBY_DEFAULT", "SORTBY_ASC", "SORTBY_DESC"):
        return None
    groups = [_column(item, inside) for item in window.get("partitionClause") or []]
    if any(group is None or group == column for group in groups):
        return None
    return tuple(g for g in groups if g is not None), first["sortby_dir"] == "SORTBY_DESC"


def _key(
    where: Tree | None, mine: set[str], alias: str, outputs: dict[str, tuple[str, Any]]
) -> tuple[str, ...]:
    """The table's columns the WHERE matches to the same columns of the numbers, when it is
    nothing but such equalities (ANDed); empty otherwise."""
    where = where or {}
    tests = where.get("BoolExpr", {}).get("args", []) if "BoolExpr" in where else [where]
    if "BoolExpr" in where and where["BoolExpr"].get("boolop") != "AND_EXPR":
        return ()
    key: list[str] = []
    for test in tests:
        expr = test.get("A_Expr", {})
        names = [n["String"].get("sval") for n in expr.get("name", ()) if "String" in n]
        if expr.get("kind") != "AEXPR_OP" or names != ["="]:
            return ()
        sides = [expr.get("lexpr") or {}, expr.get("rexpr") or {}]
        for own, theirs in (sides, sides[::-1]):
            column, output = _qualified(own, mine), _qualified(theirs, {alias})
            if column is not None and output is not None:
                break
        else:
            return ()
        if outputs.get(output) != ("column", column) or column in key:
            return ()
        key.append(column)
    return tuple(key)


def _qualified(node: Tree, names: set[str]) -> str | None:
    """``q.c`` with ``q`` in ``names``: the column; a bare name is ambiguous here."""
    fields = node.get("ColumnRef", {}).get("fields", ())
    return _column(node, names) if len(fields) == 2 else None
