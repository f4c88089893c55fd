"""The audit trail (DICOM PS3.15 A.5.3): the AuditEvent table, append-only at the database.

Triggers refuse UPDATE and DELETE of any audit row, whoever sends them (the ORM, raw SQL,
a shell); on PostgreSQL TRUNCATE too, unless the table is already empty (so a test
database can still be flushed once its rows are gone). They guard against the
application and its operators rewriting history; a database role that owns the table can
drop them, so a deployment that wants more runs the application as a role with INSERT
and SELECT only on viewer_auditevent.

On SQLite, a later migration that alters this table makes Django rebuild it, which drops
its triggers: such a migration must run ``create_triggers`` again.
"""

import django.utils.timezone
import uuid
from django.db import migrations, models


MESSAGE = "audit events are append-only"

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER viewer_auditevent_no_update BEFORE UPDATE ON viewer_auditevent
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER viewer_auditevent_no_delete BEFORE DELETE ON viewer_auditevent
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS viewer_auditevent_no_update",
    "DROP TRIGGER IF EXISTS viewer_auditevent_no_delete",
]

POSTGRESQL_TRIGGERS = [
    f"""CREATE OR REPLACE FUNCTION viewer_auditevent_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'TRUNCATE' AND NOT EXISTS (SELECT 1 FROM viewer_auditevent) THEN
            RETURN NULL;
        END IF;
        RAISE EXCEPTION '{MESSAGE} (% refused)', TG_OP USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER viewer_auditevent_no_update_delete BEFORE UPDATE OR DELETE
    ON viewer_auditevent FOR EACH ROW EXECUTE FUNCTION viewer_auditevent_append_only()""",
    """CREATE TRIGGER viewer_auditevent_no_truncate BEFORE TRUNCATE
    ON viewer_auditevent FOR EACH STATEMENT EXECUTE FUNCTION viewer_auditevent_append_only()""",
]
POSTGRESQL_DROP = [
    "DROP TRIGGER IF EXISTS viewer_auditevent_no_truncate ON viewer_auditevent",
    "DROP TRIGGER IF EXISTS viewer_auditevent_no_update_delete ON viewer_auditevent",
    "DROP FUNCTION IF EXISTS viewer_auditevent_append_only()",
]


def _statements(vendor, sqlite, postgresql):
    return {"sqlite": sqlite, "postgresql": postgresql}.get(vendor, [])


def create_triggers(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, SQLITE_TRIGGERS, POSTGRESQL_TRIGGERS):
        schema_editor.execute(sql, params=None)


def drop_triggers(apps, schema_editor):
    for sql in _statements(schema_editor.connection.vendor, SQLITE_DROP, POSTGRESQL_DROP):
        schema_editor.execute(sql, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('viewer', '0002_postgresql_indexes'),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('event_id', models.CharField(choices=[('110100', 'Application Activity'), ('110101', 'Audit Log Used'), ('110103', 'DICOM Instances Accessed'), ('110104', 'DICOM Instances Transferred'), ('110106', 'Export'), ('110112', 'Query'), ('110114', 'User Authentication')], max_length=8)),
                ('event_type', models.CharField(blank=True, choices=[('', '-'), ('110120', 'Application Start'), ('110122', 'Login'), ('110123', 'Logout')], max_length=8)),
                ('action', models.CharField(choices=[('C', 'Create'), ('R', 'Read'), ('U', 'Update'), ('D', 'Delete'), ('E', 'Execute')], max_length=1)),
                ('recorded_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('outcome', models.PositiveSmallIntegerField(choices=[(0, 'Success'), (4, 'Minor failure'), (8, 'Serious failure'), (12, 'Major failure')])),
                ('user_id', models.CharField(blank=True, max_length=255)),
                ('alternative_user_id', models.CharField(blank=True, max_length=255)),
                ('client_address', models.CharField(blank=True, max_length=64)),
                ('patient_id', models.CharField(blank=True, max_length=64)),
                ('issuer_of_patient_id', models.CharField(blank=True, max_length=64)),
                ('study_uids', models.JSONField(blank=True, default=list)),
                ('channel', models.CharField(choices=[('ehr', 'EHR launch'), ('sso', 'Single sign-on'), ('share', 'Share link'), ('direct', 'Direct log-in')], default='direct', max_length=8)),
                ('request_id', models.CharField(blank=True, max_length=64)),
                ('session_hash', models.CharField(blank=True, max_length=64)),
                ('aggregation_key', models.CharField(blank=True, max_length=64, null=True, unique=True)),
                ('instance_count', models.PositiveIntegerField(default=0)),
                ('detail', models.JSONField(blank=True, default=dict)),
            ],
            options={
                'indexes': [models.Index(fields=['patient_id', 'issuer_of_patient_id', '-recorded_at'], name='audit_patient_idx'), models.Index(fields=['-recorded_at'], name='audit_recorded_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('outcome__in', [0, 4, 8, 12])), name='audit_outcome_valid'), models.CheckConstraint(condition=models.Q(('action__in', ['C', 'R', 'U', 'D', 'E'])), name='audit_action_valid')],
            },
        ),
        migrations.RunPython(create_triggers, drop_triggers),
    ]
