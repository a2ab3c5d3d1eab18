"""Safety analysis of migrations: findings about what a statement would do to live data.

``analyse`` is the single entry the planner calls for every pending migration. It is pure:
the migration's text, the dialect and (later) live facts in, findings out.
"""

from reconciler.safety.analyse import analyse
from reconciler.safety.findings import BLOCKING, Finding, Severity

__all__ = ["BLOCKING", "Finding", "Severity", "analyse"]
