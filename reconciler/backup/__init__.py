"""Backups: drivers behind one interface (take, list, verify, restore, prune).

- ``pg_dump``: custom-format dumps in a directory; ``pg_restore`` restores;
- ``sqlite``: SQLite's online backup API (a consistent copy of a live file);
- ``neon``: a branch of the target's Neon branch, through the Neon API.

``open_driver`` picks one from the policy. A backup is only trusted once a restore of it
matched the live census (``verify``).
"""

from reconciler.backup.base import Artifact, BackupDriver, BackupError
from reconciler.backup.drivers import open_driver

__all__ = ["Artifact", "BackupDriver", "BackupError", "open_driver"]
