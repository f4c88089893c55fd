"""PostgreSQL-only indexes for the worklist at 100,000 studies and more.

* a trigram index makes the name search (LIKE '%term%') an index scan;
* a (study_date, study_time, id) DESC NULLS LAST index matches the worklist's default
  order exactly (PostgreSQL's plain DESC index puts NULLs first), so the first page is
  read from the index instead of sorting every study.

SQLite has neither operator class nor NULLS LAST indexes; its DESC order puts NULLs last
already, and its LIKE scan stays cheap at the sizes SQLite is meant for.
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
    schema_editor.execute(
        "CREATE INDEX IF NOT EXISTS study_worklist_order_idx ON viewer_study "
        "(study_date DESC NULLS LAST, study_time DESC NULLS LAST, id DESC)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS patient_name_trgm_idx")
        schema_editor.execute("DROP INDEX IF EXISTS study_worklist_order_idx")


class Migration(migrations.Migration):
    dependencies = [("viewer", "0001_initial")]
    operations = [migrations.RunPython(create, drop)]
