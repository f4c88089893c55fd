"""The shipped hanging protocols (viewer/hanging_protocols/*.json) loaded at migrate time.

A protocol of the same name already in the database (made in the admin, or loaded from a
file) is left as it is. Later changes to the shipped files are loaded with
``manage.py load_hanging_protocols``, which validates them first; the files are validated
by the tests (tests/viewer/management/test_load_hanging_protocols.py), so this migration
only reads them. Reversing it deletes the shipped rows of those names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.db import migrations

SHIPPED_DIR = Path(__file__).resolve().parent.parent / "hanging_protocols"


def _documents() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(SHIPPED_DIR.glob("*.json")):
        parsed = json.loads(path.read_text(encoding="utf-8"))
        documents.extend(parsed if isinstance(parsed, list) else [parsed])
    return documents


def load_shipped(apps: Any, schema_editor: Any) -> None:
    protocol = apps.get_model("viewer", "HangingProtocol")
    for document in _documents():
        protocol.objects.get_or_create(
            name=document["name"],
            defaults={
                "description": document.get("description", ""),
                "priority": document.get("priority", 0),
                "enabled": document.get("enabled", True),
                "match": document.get("match", {}),
                "layout": document["layout"],
                "viewports": document["viewports"],
                "sync": document.get("sync", {}),
                "source": "shipped",
            },
        )


def unload_shipped(apps: Any, schema_editor: Any) -> None:
    protocol = apps.get_model("viewer", "HangingProtocol")
    names = [document["name"] for document in _documents()]
    protocol.objects.filter(name__in=names, source="shipped").delete()


class Migration(migrations.Migration):
    dependencies = [("viewer", "0006_patient_identity_and_hanging_protocols")]

    operations = [migrations.RunPython(load_shipped, unload_shipped)]
