"""What a migration's SQL does, as the rules read it: operations, free of any parser.

``ops`` makes these from SQL with pglast; the parse cache (``parse_cache``) stores and
reloads them, so a run whose migrations are all cached never imports the parser. The rules
(``rules``) read only these.

These records, like every record static lint makes or reads (the rules' state, findings,
migrations, the lint report), are ``msgspec.Struct`` classes rather than dataclasses: a
dataclass compiles its ``__init__``, ``__eq__``, ``__repr__`` and ``__hash__`` from source
when its module loads, which for these 31 classes was a fifth of a warm ``lint``; a Struct's
are built in C. They are also what the parse cache decodes straight into.
"""

from __future__ import annotations

from msgspec import Struct, field

from reconciler.safety.types import AT_TIME_ZONE, SqlType

__all__ = ["AT_TIME_ZONE", "LOSSY_CALLS", "Op", "ParsedSql"]


class Op(
    Struct, frozen=True, omit_defaults=True, repr_omit_defaults=True, forbid_unknown_fields=True
):
    """One thing a statement does to one table (or schema, or type)."""

    kind: str
    """drop-table, drop-schema, drop-column, add-column, alter-type, set-not-null,
    create-index, drop-index, add-constraint, rename-column, rename-table, truncate, delete,
    update, create-enum, rename-type, drop-type, do-block, create-table, insert (also
    ``COPY ... FROM`` and ``MERGE``: rows written), drop-not-null, boundary (``BEGIN``,
    ``COMMIT``, ``VACUUM``...: where the script's transaction ends, so what follows may not
    roll back what precedes), create-function."""
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
    filtered: bool = False
    """delete / update: a WHERE clause limits the rows; create-index: the index is partial
    (``WHERE``) or indexes an expression, so it proves no key over ``columns``."""
    sets_null: tuple[str, ...] = ()
    """update: columns set to NULL."""
    null_guarded: tuple[str, ...] = ()
    """update: columns whose WHERE requires them to be NULL (backfills); insert with
    ``per_row``: the columns of the table read that its WHERE requires to be NULL."""
    copies_from: tuple[tuple[str, str], ...] = ()
    """update: (target column, source column) pairs for ``SET new = old``."""
    labels: tuple[str, ...] = ()
    """create-enum: its labels."""
    cascade: bool = False
    sql_type: SqlType | None = None
    """add-column / alter-type: the (new) type as PostgreSQL normalises it."""
    column_types: tuple[SqlType, ...] = ()
    """create-table: the type of each of ``columns``."""
    using: str = ""
    """alter-type: ``column`` when ``USING`` is the column itself, through casts and at most
    one ``AT TIME ZONE`` (``using_steps``); ``case`` when it is a ``CASE`` on the column's
    values that ``case_map`` reads completely; ``other`` for any other expression; empty
    without one."""
    using_steps: tuple[SqlType, ...] = ()
    """alter-type with ``using == "column"``: what is applied to the column, innermost
    first: a cast's type, or ``AT_TIME_ZONE`` for the time zone conversion."""
    using_zone: str = ""
    """alter-type: the zone of that ``AT TIME ZONE`` as written (``UTC``; ``interval
    -08:00`` for an interval)."""
    using_lossy: bool = False
    """alter-type: the ``USING`` calls a function that keeps only part of its argument
    (``LOSSY_CALLS``) or casts to ``date``: every value it changes is destroyed."""
    using_sql: str = ""
    """alter-type: the ``USING`` expression as SQL, for the SELECT that measures it."""
    type_sql: str = ""
    """alter-type with a ``USING``: the new type as SQL (``"Role_new"``, ``varchar(3)``)."""
    case_map: tuple[tuple[str, str | None], ...] = ()
    """alter-type with ``using == "case"``: (old value, new value or None for NULL)."""
    case_else: str | None = None
    """The ``ELSE`` value; None: NULL (or no ELSE), unless ``case_else_keeps``."""
    case_else_keeps: bool = False
    """``ELSE "col"``: the values no branch names keep their value."""
    any_using: bool = False
    """alter-type: a ``USING`` clause is written (even one that is the column, cast): the
    conversion is then that expression, not PostgreSQL's assignment cast."""
    declared_type: SqlType | None = None
    """alter-type: the column's type before the statement as an Alembic revision declares
    it (``alter_column(existing_type=...)``, compiled for the dialect): what the rules take
    as the old type when neither the history nor the catalog knows it (``declared``)."""
    text: str = ""
    """update: the statement as written, until its expressions are printed as SQL for the
    data-aware checks (``rewrites``, ``rewrite_casts``, ``source``, ``where``), which empties
    it (``printed.print_updates``). Static lint never needs them: it judges the tree. Not
    ``statement``, which is folded onto one line for the reports: there a ``--`` comment
    would swallow the rest of the statement."""
    onto_itself: tuple[str, ...] = ()
    """update: columns set to themselves, unqualified (``SET c = c``, as done to fire a
    trigger), in an UPDATE without ``FROM`` or ``WITH``: no value changes."""
    rewrites: tuple[tuple[str, str], ...] = ()
    """update: (column, new value as SQL) for each assignment a SELECT can measure; empty
    when the UPDATE joins (``FROM``) or has a ``WITH``: then nothing is measured."""
    rewrite_casts: tuple[tuple[str, str, str, str], ...] = ()
    """update: (column, argument as SQL, type as SQL, type's name) for each cast in a
    measured assignment whose argument reads the column it assigns (``SET n = n::int``), and
    the assignment itself when its value reads the column (type empty: the column's own):
    the measuring SELECT counts the values each changes (rounds, truncates). A cast of
    another column's value cuts nothing the assigned column held."""
    source: str = ""
    """update: the target table as SQL, with its alias (``"users" AS u``)."""
    where: str = ""
    """update: the WHERE clause as SQL, empty without one."""
    lossy_calls: tuple[str, ...] = ()
    """update: columns whose new value calls a function that drops part of a value
    (``date_trunc``, ``left``, ``round``...): every value it changes is destroyed."""
    empty_guarded: tuple[str, ...] = ()
    """update: columns whose WHERE requires them to be ``''`` (``SET c = NULL WHERE c = ''``)."""
    if_not_exists: bool = False
    """create-table: ``IF NOT EXISTS``: the table may already exist, with rows."""
    reads: tuple[tuple[str, str], ...] = ()
    """insert: the (table, column) pairs its SELECT reads (``*`` for every column): another
    table filled from a column, which a later drop of that column must give time to."""
    empty_when: tuple[tuple[str, ...], ...] = ()
    """insert: its SELECT returns no row when every table of one of these groups is empty
    (a join or a FROM list over an empty table); () when that cannot be proven."""
    calls: tuple[str, ...] = ()
    """insert: functions its SELECT calls without GROUP BY (not as window functions): if
    one is an aggregate, the SELECT returns a row even over no rows."""
    whole_copies: tuple[tuple[str, str, tuple[SqlType, ...]], ...] = ()
    """update / insert: (target column, source column, casts applied in order) for each
    value copied whole into every row: ``SET new = old`` (or ``old::t``) with no FROM and no
    WHERE but ``new IS NULL`` (then ``filtered``); ``INSERT INTO t (new) SELECT old FROM s``
    with one source table and nothing that drops rows (WHERE, DISTINCT, LIMIT, ON CONFLICT).
    Whether the casts lose nothing is for the rules, which know the types."""
    copied_table: str = ""
    """insert with ``whole_copies``: the table the SELECT reads them from."""
    fed: tuple[str, ...] = ()
    """insert / update: the columns it writes values into that may hold data older than the
    statement (read from a column, a subquery, a function), ``*`` for any column; the others
    get constants, ``now()`` or new ids. ``COPY`` and ``MERGE``: ``*``."""
    copy_guard: tuple[str, ...] = ()
    """insert with ``whole_copies``: the source columns its WHERE requires to be non-null
    (``WHERE old IS NOT NULL``, tests joined by AND, nothing else): the rows skipped hold
    nothing in those columns, so the copy of one is whole, of any other not."""
    wrapped_copies: tuple[tuple[str, str], ...] = ()
    """update: (target column, source column) for ``SET new = jsonb_build_object('k',
    'const', 'v', old)``: each value of ``old`` kept whole under a constant key of a JSON
    object whose other keys and values are constants, in every row ``whole_copies`` would
    copy. Whether ``old``'s type reads back unchanged from JSON is for the rules."""
    mapped_copies: tuple[tuple[str, str], ...] = ()
    """update with no WHERE: (target, source) for ``SET new = CASE WHEN old = 'a' THEN 'A'
    ... ELSE NULL END`` whose branches give distinct values: a value no branch names becomes
    NULL, so a later ``SET NOT NULL new`` proves every value was mapped, one to one."""
    references: tuple[str, tuple[str, ...]] = ("", ())
    """add-constraint (foreign): the table and columns referenced."""
    keys: tuple[tuple[str, ...], ...] = ()
    """create-table: the column sets of its PRIMARY KEY and UNIQUE constraints."""
    link: tuple[str, str, str, str] = ("", "", "", "")
    """update: ``UPDATE a SET x = b.v FROM b WHERE a.p = b.k`` read as (b, k, p, v), the
    target ``x`` being ``columns[0]``: a link held by ``b.k`` turned around into ``a.x``."""
    moves: tuple[tuple[str, str], ...] = ()
    """update: (column, other) where the same statement sets ``other = CASE WHEN c THEN
    column ELSE NULL END`` and ``column = CASE WHEN c THEN NULL ELSE column END``: each
    value of ``column`` stays or moves to ``other`` of the same row, none is lost."""
    renumbered: str = ""
    """update: the column it sets to ``row_number()`` over the whole table ordered first by
    that column, joined back on ``renumber_key`` (``renumbering``); empty for any other."""
    renumber_key: tuple[str, ...] = ()
    """update with ``renumbered``: the columns the numbers are joined back on."""
    renumber_groups: tuple[str, ...] = ()
    """update with ``renumbered``: the ``PARTITION BY`` columns (numbered from 1 in each)."""
    renumber_descending: bool = False
    """update with ``renumbered``: ``ORDER BY column DESC``: the numbers run the other way."""
    primary_key: tuple[str, ...] = ()
    """create-table: the columns of its PRIMARY KEY (also among ``keys``)."""
    primary_name: str = ""
    """create-table with ``primary_key``: the constraint's name, as PostgreSQL gives it."""
    not_nulls: tuple[str, ...] = ()
    """create-table: the columns declared NOT NULL, or part of its PRIMARY KEY."""
    refers: tuple[tuple[str, str], ...] = ()
    """create-table / add-column: (column, table) for each foreign key declared with the
    table or the column (``REFERENCES t``): that column holds keys of that table."""
    fresh: tuple[str, ...] = ()
    """insert: the columns its SELECT fills with a new generated value
    (``gen_random_uuid()``, ``nextval(...)``, cast or not), not with anything read."""
    flag: tuple[str, str] = ("", "")
    """insert: (table, column) when its SELECT reads that one table and keeps exactly the rows
    where the column is true (``WHERE col``, ``col = true``, ``col IS TRUE``), with nothing
    else that drops or merges rows (DISTINCT, GROUP BY, LIMIT, ON CONFLICT, a join)."""
    flag_copies: tuple[tuple[str, str], ...] = ()
    """insert with ``flag``: (target column, source column) for each value that is a column
    of the source read bare, with no cast."""
    mapped_links: tuple[tuple[str, str, str, str, str, str, str, str], ...] = ()
    """update: ``UPDATE a SET x = m.v FROM s JOIN m ON m.w = 'p_' || s.k WHERE a.c = s.k``
    (inner joins only, any other condition ANDed) read as (x, c, m, v, w, 'p_', s, k): the
    link ``a.c`` carried into ``a.x`` through the mapping table ``m``, whose ``w`` holds the
    prefix followed by the key ``s.k`` (``a.c`` itself when ``m.w = 'p_' || a.c``)."""
    per_row: tuple[tuple[str, str, str], ...] = ()
    """insert: (table read, target column, column read) for each column an ``INSERT ...
    SELECT`` takes unchanged from the one table it reads, row for row: no join, DISTINCT,
    GROUP BY, LIMIT, ON CONFLICT, CTE or set operation (a WHERE may skip rows; ``calls``
    says which functions may return several rows for one)."""
    returns_set: bool = False
    """create-function: it returns a set (``SETOF``, ``TABLE``): called in a SELECT list, it
    may turn one row into several."""
    excludes: tuple[tuple[str, str], ...] = ()
    """add-constraint (check): pairs of columns the check never lets both hold a value, as
    ``CHECK ((a IS NULL) OR (b IS NULL))`` or ``(a IS NULL AND b IS NOT NULL) OR (...)``."""


class ParsedSql(Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    ops: tuple[Op, ...] = ()
    error: str | None = None
    """``line N: message`` when PostgreSQL's grammar rejects the text."""
    error_line: int = 0
    statements: int = 0
    opaque: tuple[Op, ...] = field(default_factory=tuple)
    """Statements whose effect cannot be analysed (``DO`` blocks, dynamic SQL)."""


LOSSY_CALLS = frozenset(
    {
        "date_trunc",
        "trunc",
        "round",
        "floor",
        "ceil",
        "ceiling",
        "left",
        "right",
        "substr",
        "substring",
        "split_part",
        "date",
        "jsonb_strip_nulls",
        "json_strip_nulls",
    }
)
"""Functions whose result keeps only part of their argument: a truncated time, a rounded
number, a prefix of a text. A value they change cannot be told back from the result."""
