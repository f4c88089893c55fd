"""The session user, fetched for less on every request.

Django's ``ModelBackend.get_user`` builds, compiles and runs an ORM query for the user
of the session on every request (0.3-0.4 ms of CPU, as much as reading a DICOM header).
This subclass runs the same row fetch as one fixed SQL statement, converts the columns
with the converters the ORM would apply and builds the user with ``Model.from_db``, as
the ORM does. Everything else is Django's: the password check at login, the
``is_active`` rule, and the session hash that logs a session out after a password
change (``django.contrib.auth.get_user``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class _UserQuery:
    sql: str
    attnames: list[str]
    columns: list[tuple[Any, list[Callable[..., Any]]]]  # (Col, its converters) per column


_queries: dict[str, _UserQuery] = {}


def _user_query(connection: BaseDatabaseWrapper) -> _UserQuery:
    query = _queries.get(connection.alias)
    if query is None:
        model = get_user_model()
        fields = model._meta.concrete_fields
        table = model._meta.db_table
        quote = connection.ops.quote_name
        columns = []
        for field in fields:
            col = field.get_col(table)
            columns.append(
                (col, connection.ops.get_db_converters(col) + col.get_db_converters(connection))
            )
        query = _queries[connection.alias] = _UserQuery(
            f"SELECT {', '.join(quote(f.column) for f in fields)} FROM {quote(table)} "  # noqa: S608
            f"WHERE {quote(model._meta.pk.column)} = %s",
            [f.attname for f in fields],
            columns,
        )
    return query


class SessionUserBackend(ModelBackend):
    def get_user(self, user_id: Any) -> Any:
        model = get_user_model()
        connection = connections[DEFAULT_DB_ALIAS]
        query = _user_query(connection)
        with connection.cursor() as cursor:
            cursor.execute(query.sql, [model._meta.pk.get_db_prep_value(user_id, connection)])
            row = cursor.fetchone()
        if row is None:
            return None
        values = []
        for value, (col, converters) in zip(row, query.columns, strict=True):
            for converter in converters:
                value = converter(value, col, connection)
            values.append(value)
        user = model.from_db(DEFAULT_DB_ALIAS, query.attnames, values)
        return user if self.user_can_authenticate(user) else None
