"""The advisory lock keys reconciler takes on PostgreSQL, all in one namespace of its own.

A target's leadership is the two-int4 form ``(NAMESPACE, crc32 of its name)``; the ledger's
own migrations take the one-bigint form ``NAMESPACE << 32 | LEDGER``. PostgreSQL keeps the
two forms apart (``objsubid`` 2 and 1 in ``pg_locks``), so the ledger's key can never be
some target's, while both still show ``classid = NAMESPACE``.
"""

from __future__ import annotations

NAMESPACE = 0x7265636F  # "reco": keeps our keys apart from Prisma's and the application's
LEDGER = 0x6C656467  # "ledg"
LEDGER_MIGRATIONS = NAMESPACE << 32 | LEDGER
"""``pg_advisory_lock(bigint)`` held, session-level, while a replica migrates the ledger."""
