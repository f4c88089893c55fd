"""manage.py load_hanging_protocols [FILE_OR_DIR ...] [--replace]: the shipped set by
default, upserts by name, validates every file before writing anything, a bad file a
CommandError naming the file and the field."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from viewer.models import HangingProtocol
from viewer.services import hanging

pytestmark = pytest.mark.django_db

SHIPPED_NAMES = {json.loads(p.read_text())["name"] for p in hanging.SHIPPED_DIR.glob("*.json")}


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("load_hanging_protocols", *args, stdout=out)
    return out.getvalue()


def protocol(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "name": name,
        "layout": "1x1",
        "viewports": [{"study": "current", "series": {"modality": "CT"}}],
        **fields,
    }


def write(path: Path, content: Any) -> Path:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def snapshot() -> list[tuple[Any, ...]]:
    return list(
        HangingProtocol.objects.order_by("name").values_list(
            "name", "priority", "layout", "viewports", "match", "sync", "source"
        )
    )


def test_no_argument_loads_the_shipped_set() -> None:
    HangingProtocol.objects.all().delete()
    output = run()
    assert f"{len(SHIPPED_NAMES)} created, 0 updated" in output
    assert set(HangingProtocol.objects.values_list("name", flat=True)) == SHIPPED_NAMES
    assert set(HangingProtocol.objects.values_list("source", flat=True)) == {"shipped"}
    again = run()
    assert f"0 created, {len(SHIPPED_NAMES)} updated" in again


def test_a_file_upserts_by_name(tmp_path: Path) -> None:
    HangingProtocol.objects.filter(name="Default").update(priority=3, source="admin")
    path = write(
        tmp_path / "mine.json",
        [protocol("Default", priority=-5), protocol("CT lung", priority=20, sync={"zoom": True})],
    )
    output = run(str(path))
    assert "1 created, 1 updated" in output and "created: CT lung" in output
    default = HangingProtocol.objects.get(name="Default")
    assert (default.priority, default.source, default.layout) == (-5, "file", "1x1")
    lung = HangingProtocol.objects.get(name="CT lung")
    assert lung.sync == {"zoom": True} and lung.match == {}
    assert HangingProtocol.objects.filter(name="MR brain").exists()  # others kept


def test_a_folder_and_replace(tmp_path: Path) -> None:
    folder = tmp_path / "protocols"
    folder.mkdir()
    write(folder / "a.json", protocol("A"))
    write(folder / "b.json", protocol("B"))
    write(folder / "notes.txt", "not a protocol")
    output = run(str(folder), "--replace")
    assert "2 created, 0 updated, " in output and f"{len(SHIPPED_NAMES)} deleted" in output
    assert set(HangingProtocol.objects.values_list("name", flat=True)) == {"A", "B"}


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "bad.json: not JSON (line 1, column 2"),
        (protocol("X", layout="4x4"), "bad.json: layout: '4x4' is not one of"),
        ([protocol("X"), protocol("Y", priority="high")], "bad.json[1]: priority: must be"),
        (
            protocol("X", viewports=[{"series": {"thickness_mm": {"max": "thin"}}}]),
            "bad.json: viewports[0].series.thickness_mm.max: must be a number of mm",
        ),
        (protocol("X", match={"body_part": "CHEST", "orientaton": "axial"}), "match.orientaton"),
        ({"layout": "1x1", "viewports": [{}]}, "bad.json: name: is missing"),
        ([protocol("Twice"), protocol("Twice")], "the name 'Twice' is also in bad.json"),
    ],
)
def test_a_bad_file_names_file_and_field_and_writes_nothing(
    tmp_path: Path, content: Any, words: str
) -> None:
    good = write(tmp_path / "a-good.json", protocol("Good"))
    bad = write(tmp_path / "bad.json", content)
    before = snapshot()
    with pytest.raises(CommandError) as caught:
        run(str(good), str(bad), "--replace")
    assert words in str(caught.value), str(caught.value)
    assert str(caught.value).startswith("nothing loaded: ")
    assert snapshot() == before  # not even the good file, nothing deleted


def test_a_missing_path_or_an_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="no such file or folder"):
        run(str(tmp_path / "absent.json"))
    with pytest.raises(CommandError, match=r"no protocol files \(\*\.json\) found"):
        run(str(tmp_path))


def test_the_migration_left_the_shipped_set_in_place() -> None:
    assert SHIPPED_NAMES <= set(HangingProtocol.objects.values_list("name", flat=True))
