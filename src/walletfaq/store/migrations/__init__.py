"""Alembic migrations of the store's schema, run by :mod:`walletfaq.store.migrate` on open."""
