"""Ingest's fast path: one more object of a series already stored, in one statement.

An INSERT … SELECT from the series row found by its UID and joined to its study and
patient (so that a series stored under other parents yields no row), with the row's
series and study counts updated in the same statement on PostgreSQL (data-modifying
CTEs, prepared once per connection), or in the same transaction on SQLite. It declines
(changes nothing, answers False) whenever the general path of ``viewer.services.ingest``
must decide: the series is not stored, its study or patient differ, or the SOP Instance
UID is stored already.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from viewer.db import prepared_cursor
from viewer.dicom.index import IndexFields
from viewer.models import Instance, Patient, Series, Study
from viewer.services import storage


def insert(fields: IndexFields, stored: storage.Stored) -> bool:
    """The common case, a new SOP Instance UID in a series already stored under the same
    study and patient: insert its row and count it in its series and study, in one
    statement on PostgreSQL (prepared once per connection). Changes nothing and returns
    False when the series is not stored, its study or patient differ, or the SOP
    Instance UID is stored already: the general path then decides what happens."""
    statement = _known_series_statement()
    parents = [
        fields.series["series_instance_uid"],
        fields.study["study_instance_uid"],
        fields.patient["patient_id"],
        fields.patient["issuer_of_patient_id"],
        fields.patient["issuer_of_patient_id_qualifiers"],
    ]
    values = {
        **fields.instance,
        "storage_key": storage.key_for(stored.sha256),
        "sha256": stored.sha256,
        "size_bytes": stored.size,
        "received_at": timezone.now(),
    }
    params = [f.get_db_prep_save(values[f.attname], connection) for f in statement.fields]
    if connection.vendor == "postgresql":
        return _execute_prepared(statement.sql, params + parents) == 1
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement.sql, params + parents)
        if cursor.rowcount != 1:
            return False
        _count_instance_in(parents[0], parents[1])
    return True


@dataclass(frozen=True)
class _Statement:
    sql: str
    fields: list[Field[Any, Any]]  # the Instance fields whose values follow, in order


_statements: dict[str, _Statement] = {}


def _known_series_statement() -> _Statement:
    """INSERT … SELECT from the series row found by its UID and joined to its study and
    patient, so that a series stored under other parents yields no row. On PostgreSQL
    the counts are updated in the same statement (data-modifying CTEs); parameters get
    explicit casts, as they are bound on the server."""
    vendor = connection.vendor
    if vendor in _statements:
        return _statements[vendor]
    fields = [
        f for f in Instance._meta.concrete_fields if not f.primary_key and f.attname != "series_id"
    ]
    postgres = vendor == "postgresql"
    placeholders = ", ".join(
        f"CAST(%s AS {f.db_type(connection)})" if postgres else "%s" for f in fields
    )
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    text = "CAST(%s AS text)" if postgres else "%s"
    insert = (
        f"INSERT INTO {Instance._meta.db_table} (series_id, {columns}) "  # noqa: S608
        f"SELECT se.id, {placeholders} FROM {Series._meta.db_table} se "
        f"JOIN {Study._meta.db_table} st ON st.id = se.study_id "
        f"JOIN {Patient._meta.db_table} pa ON pa.id = st.patient_id "
        f"WHERE se.series_instance_uid = {text} AND st.study_instance_uid = {text} "
        f"AND pa.patient_id = {text} AND pa.issuer_of_patient_id = {text} "
        f"AND pa.issuer_of_patient_id_qualifiers = {text} "
        "ON CONFLICT (sop_instance_uid) DO NOTHING"
    )
    if postgres:
        insert = (
            f"WITH new AS ({insert} RETURNING series_id), "  # noqa: S608
            f"counted AS (UPDATE {Series._meta.db_table} se SET "
            "number_of_series_related_instances = se.number_of_series_related_instances + 1 "
            "FROM new WHERE se.id = new.series_id RETURNING se.study_id) "
            f"UPDATE {Study._meta.db_table} st SET number_of_study_related_instances = "
            "st.number_of_study_related_instances + 1 FROM counted WHERE st.id = counted.study_id"
        )
    _statements[vendor] = _Statement(insert, fields)
    return _statements[vendor]


def _execute_prepared(sql: str, params: list[Any]) -> int:
    """Run one statement with server-side binding, prepared at its first use on this
    connection unless settings.LOUPE_DB_PREPARED_STATEMENTS is off; the row count."""
    with prepared_cursor() as cursor:
        cursor.execute(sql, params, prepare=bool(settings.LOUPE_DB_PREPARED_STATEMENTS))
        return int(cursor.rowcount)


def _count_instance_in(series_uid: str, study_uid: str) -> None:
    """Add one instance to the counts of an existing series and its study."""
    with connection.cursor() as cursor:  # plain SQL: this runs for every object
        cursor.execute(
            f"UPDATE {Series._meta.db_table} SET number_of_series_related_instances = "  # noqa: S608
            "number_of_series_related_instances + 1 WHERE series_instance_uid = %s",
            [series_uid],
        )
        cursor.execute(
            f"UPDATE {Study._meta.db_table} SET number_of_study_related_instances = "  # noqa: S608
            "number_of_study_related_instances + 1 WHERE study_instance_uid = %s",
            [study_uid],
        )
