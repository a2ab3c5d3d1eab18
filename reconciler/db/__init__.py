"""Connections to the databases reconciler manages: URLs, drivers, transactions, locks.

Everything above this layer speaks to a target through ``Database`` and never imports a
driver; PostgreSQL goes through psycopg 3, SQLite through the standard library.
"""
