"""Alembic environment: runs the migrations on the connection walletfaq passes in.

walletfaq builds the Alembic ``Config`` in code (:mod:`walletfaq.store.migrate`), with the open
connection in ``config.attributes["connection"]``; there is no ``alembic.ini``.
"""

from __future__ import annotations

from alembic import context

VERSION_TABLE = "walletfaq_alembic_version"

connection = context.config.attributes["connection"]
context.configure(connection=connection, version_table=VERSION_TABLE, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
