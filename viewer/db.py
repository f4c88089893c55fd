"""PostgreSQL statements prepared on the server, for the few that run on every request.

Django binds parameters on the client and never prepares (so that it works behind
connection poolers). The hottest statements (ingest's insert of one more object, the
session with its user) save PostgreSQL planning them each time by running through a
server-binding psycopg cursor with ``prepare=True``, inside Django's connection and its
transaction state. ``LOUPE_DB_PREPARED_STATEMENTS=0`` turns this off behind a
transaction-pooling PgBouncer older than 1.21.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection


def prepared_statements() -> bool:
    return connection.vendor == "postgresql" and bool(settings.LOUPE_DB_PREPARED_STATEMENTS)


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A psycopg cursor on Django's PostgreSQL connection; database errors come out as
    Django's, as from ``connection.cursor()``."""
    import psycopg  # only with PostgreSQL

    connection.ensure_connection()
    connection.validate_no_broken_transaction()
    raw = connection.connection
    if prepared_statements() and raw.prepare_threshold is None:
        # Django sets None, which makes psycopg ignore prepare=True; 5 is psycopg's
        # default. Django's own statements are unaffected: they run through client-side
        # binding cursors, which psycopg never prepares.
        raw.prepare_threshold = 5
    with connection.wrap_database_errors, psycopg.Cursor(raw) as cursor:
        yield cursor
