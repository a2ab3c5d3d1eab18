"""An Alembic revision's SQL is rendered once per content of its file: a run plans again
after each round of steps, and each rendering runs the application's ``env.py`` (MLflow's
67 revisions took about 2 s a plan)."""

from __future__ import annotations

from pathlib import Path

from msgspec.structs import replace

from reconciler.source.alembic import AlembicLayout
from tests.schema.alembic_scripts import add_revision, create_table, script_dir

COUNTING_ENV_PY = '''\
"""Offline-capable env.py that notes each run in runs.txt beside it."""

from pathlib import Path

from alembic import context

with open(Path(context.config.get_main_option("script_location")) / "runs.txt", "a") as f:
    f.write("run\\n")
context.configure(url=context.config.get_main_option("sqlalchemy.url"), literal_binds=True)
with context.begin_transaction():
    context.run_migrations()
'''

READS = """
bind = op.get_bind()
bind.execute(sa.text("SELECT 1")).scalar()
"""


def runs(folder: Path) -> int:
    path = folder / "runs.txt"
    return len(path.read_text().splitlines()) if path.exists() else 0


def test_a_revision_is_rendered_once_per_content(tmp_path: Path) -> None:
    folder = script_dir(tmp_path)
    (folder / "env.py").write_text(COUNTING_ENV_PY, encoding="utf-8")
    add_revision(folder, "a1", None, create_table("notes", "body"))
    add_revision(folder, "a2reads", "a1", READS)
    layout = AlembicLayout(folder)
    first, reads = layout.migrations()

    sql = layout.sql(first, "postgresql")
    assert sql is not None
    assert "CREATE TABLE notes" in sql
    assert layout.sql(first, "postgresql") == sql
    assert runs(folder) == 1

    assert layout.sql(reads, "postgresql") is None  # it cannot be rendered offline
    assert layout.sql(reads, "postgresql") is None
    assert layout.unanalysable(reads, "postgresql") is not None
    assert runs(folder) == 2

    changed = replace(first, checksum="0" * 64)  # the file changed on disk: render again
    assert layout.sql(changed, "postgresql") == sql
    assert layout.sql(first, "sqlite") is not None  # another dialect is another rendering
    assert runs(folder) == 4
