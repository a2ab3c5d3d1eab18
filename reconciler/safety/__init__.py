"""Safety: every statement a migration will run, judged against the live data first.

- ``ops``: SQL → typed operations, with PostgreSQL's own parser (pglast);
- ``rules``: operations and live facts → findings (the golden rules, data loss, locking);
- ``analyse``: a batch of pending migrations, in order, facts gathered once;
- ``gate``: findings and the policy's approvals → may this step run now?
"""

from reconciler.safety.analyse import Parsed, facts_request, judge_batch, parse_migration
from reconciler.safety.findings import Finding
from reconciler.safety.gate import Verdict, gate_step

__all__ = [
    "Finding",
    "Parsed",
    "Verdict",
    "facts_request",
    "gate_step",
    "judge_batch",
    "parse_migration",
]
