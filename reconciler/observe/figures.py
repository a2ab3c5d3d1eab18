"""The names of the figures ``facts`` measures and the rules read, apart from ``facts``
itself: static lint judges with no live figure, and need not import the queries."""

REWRITE_FIGURES = ("changed", "nulled", "collapsed", "json_dropped", "cut")
"""What ``measure_rewrite`` counts for an UPDATE's column, each under ``(figure, column,
new value, table, WHERE, casts)``: the rows whose value changes; non-empty values made NULL;
rows whose new value is shared with a row that held another value (distinct values made
one); JSON values whose scalars are not all in the new value; rows where a cast of the new
value, or its assignment to the column's type, changes what it was given (rounded,
truncated)."""

CONVERSION_FIGURES = REWRITE_FIGURES
"""What ``measure_conversion`` counts for an ``ALTER COLUMN ... TYPE ... USING``, each under
``(figure, column, USING as SQL, new type as SQL, new type's name, "USING")``: the figures
of an UPDATE, ``cut`` being the rows whose expression's value the conversion to the new
type changes."""
