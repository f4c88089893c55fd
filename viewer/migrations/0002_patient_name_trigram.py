"""On PostgreSQL, a trigram index makes the worklist's name search (LIKE '%term%') fast.

SQLite has no such index; its LIKE scan stays cheap at the sizes SQLite is meant for.
"""

from django.db import migrations


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS patient_name_trgm_idx ON viewer_patient "
        "USING gin (patient_name_search gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS patient_name_trgm_idx")


class Migration(migrations.Migration):
    dependencies = [("viewer", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
