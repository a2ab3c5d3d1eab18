"""An UPDATE's expressions are printed back as SQL only when live data is measured.

Static lint judges an UPDATE from libpg_query's tree, so the parse cache keeps its text
unprinted and a pre-commit hook never loads pglast's printer for it. The measuring SELECT of
a data-aware check is made of those expressions: a process that reads the cached parse
must print them, or the UPDATE would go unmeasured and be judged as if there were no data.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from reconciler.safety import parse_cache
from tests.conftest import run_process
from tests.drift.history import write_history
from tests.schema.alembic_scripts import query

SCHEMA = 'CREATE TABLE "Profile" (id INTEGER PRIMARY KEY, bio TEXT);\n'
CUT = 'UPDATE "Profile" SET bio = left(bio, 3) WHERE id < 100;\n'


def test_a_cached_static_parse_is_printed_and_measured_against_live_rows(
    write_policy: Callable[[str], Path], tmp_path: Path, pg_url: str
) -> None:
    history = {"20260101000000_init": SCHEMA, "20260102000000_cut": CUT}
    migrations = write_history(tmp_path / "migrations", "postgresql", history)
    cache = tmp_path / "cache"
    env = {"RECONCILER_CACHE_DIR": str(cache)}
    later = tmp_path / "later"
    (migrations / "20260102000000_cut").rename(later)
    policy = write_policy(
        f"ledger: sqlite:///{tmp_path / 'ledger.db'}\ntargets:\n  - name: app\n"
        f"    environment: production\n    database: {pg_url}\n"
        f"    migrations: {{layout: prisma, path: {migrations}}}\n"
    )
    applied = run_process("apply", "-c", policy, "--yes", env=env)
    assert applied.returncode == 0, applied.stderr
    query(
        pg_url,
        """INSERT INTO "Profile" VALUES (1, 'abcdef'), (2, 'xy'), (3, NULL), (4, 'ghijkl')""",
    )
    later.rename(migrations / "20260102000000_cut")

    static = run_process("lint", migrations, env=env)  # the hook: stores the parse
    assert static.returncode == 1, static.stdout + static.stderr
    assert "overwrites Profile.bio (rows matching its WHERE clause) (static" in static.stdout
    entries = list((cache / "parse").iterdir())
    stored = [parse_cache.loads(e.read_bytes().partition(b"\n")[2]) for e in entries]
    (update,) = [op for parsed in stored for op in parsed.ops if op.kind == "update"]
    assert (update.text, update.rewrites) == (CUT.rstrip(";\n"), ())  # stored unprinted

    live = run_process("lint", "-c", policy, env=env)  # reads that entry back
    assert live.returncode == 1, live.stdout + live.stderr
    # Measured on the 4 rows: 2 values cut short by left(), 'xy' and NULL unchanged.
    measured = "overwrites Profile.bio: 2 values change, of which 2 cut short by left"
    assert measured in live.stdout, live.stdout
