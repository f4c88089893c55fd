"""The measurements API: create, list, export, change and delete; every bad input
answered with a code naming it and nothing saved; the author/other/administrator rules;
a clinician launched for patient A never sees patient B's measurements; audit rows."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy
from viewer.models import AuditEvent, Measurement

pytestmark = pytest.mark.django_db


def body(stored: StoredStudy, **fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "study_instance_uid": stored.study,
        "series_instance_uid": stored.series,
        "sop_instance_uid": stored.instance,
        "frame": 1,
        "kind": "ellipse",
        "points": [[200, 200], [260, 240]],
        "label": "nodule",
    }
    values.update(fields)
    return {k: v for k, v in values.items() if v is not None}


def post(client: Client, data: Any) -> Any:
    return client.post("/api/measurements", json.dumps(data), content_type="application/json")


def patch(client: Client, measurement_id: str, data: Any) -> Any:
    return client.patch(
        f"/api/measurements/{measurement_id}", json.dumps(data), content_type="application/json"
    )


@pytest.fixture
def radiologist_client(radiologist: Any) -> Client:
    return client_for(radiologist)


def test_create_answers_201_with_the_saved_measurement(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    response = post(radiologist_client, body(patient_a))
    assert response.status_code == 201, response.content
    found = response.json()
    saved = Measurement.objects.get()
    assert found["id"] == str(saved.pk)
    assert found["author"] == {"username": "radiologist", "display": "radiologist"}
    assert found["kind"] == "ellipse" and found["frame"] == 1 and found["label"] == "nodule"
    assert found["points"] == [[200.0, 200.0], [260.0, 240.0]]
    assert found["study_instance_uid"] == patient_a.study
    assert found["sop_instance_uid"] == patient_a.instance
    result = found["result"]
    assert result["mean"]["unit"] == "[hnsf'U]"
    assert result["area"]["unit"] == "mm2"
    assert result["pixels"]["unit"] == "{pixels}"
    assert result["spacing_attribute"] == "PixelSpacing"
    assert result["values"] == "modality"
    assert saved.result == result
    assert found["created_at"].endswith("Z")


@pytest.mark.parametrize(
    ("kind", "points", "quantity", "unit"),
    [
        ("length", [[10, 10], [110, 10]], "length", "mm"),
        ("angle", [[10, 10], [50, 50], [90, 10]], "angle", "deg"),
        ("angle", [[10, 10], [50, 50], [90, 10], [120, 40]], "angle", "deg"),
        ("rectangle", [[10, 10], [50, 50]], "area", "mm2"),
        ("polygon", [[10, 10], [50, 10], [30, 50]], "mean", "[hnsf'U]"),
        ("point", [[256.5, 256.5]], "value", "[hnsf'U]"),
        ("arrow", [[10, 10], [20, 20]], "length", "mm"),
    ],
)
def test_every_kind(
    radiologist_client: Client,
    patient_a: StoredStudy,
    kind: str,
    points: list[list[float]],
    quantity: str,
    unit: str,
) -> None:
    response = post(radiologist_client, body(patient_a, kind=kind, points=points))
    assert response.status_code == 201, response.content
    assert response.json()["result"][quantity]["unit"] == unit


BAD_INPUT = [
    ("point outside the image", {"points": [[10, 10], [600, 10]]}, 400, "point_outside_image"),
    ("frame that does not exist", {"frame": 2}, 400, "no_such_frame"),
    ("frame 0", {"frame": 0}, 400, "no_such_frame"),
    ("frame as text", {"frame": "1"}, 400, "bad_frame"),
    ("wrong number of points", {"points": [[10, 10]]}, 400, "wrong_number_of_points"),
    ("zero-area ROI", {"points": [[10, 10], [10, 50]]}, 400, "zero_area"),
    ("unknown kind", {"kind": "circle"}, 400, "unknown_kind"),
    ("label over 1000 characters", {"label": "x" * 1001}, 400, "label_too_long"),
    ("label not text", {"label": 5}, 400, "bad_label"),
    ("points not pairs", {"points": [[1, 2, 3], [4, 5, 6]]}, 400, "bad_points"),
    ("no points", {"points": None}, 400, "missing_field"),
    ("an unknown field", {"colour": "red"}, 400, "unknown_field"),
    ("an unknown instance", {"sop_instance_uid": "1.2.3.4"}, 404, "not_found"),
    ("an instance in another series path", {"series_instance_uid": "1.2.3"}, 404, "not_found"),
]


@pytest.mark.parametrize(
    ("what", "fields", "status", "code"), BAD_INPUT, ids=[c[0] for c in BAD_INPUT]
)
def test_bad_input_names_the_problem_and_saves_nothing(
    radiologist_client: Client,
    patient_a: StoredStudy,
    what: str,
    fields: dict[str, Any],
    status: int,
    code: str,
) -> None:
    response = post(radiologist_client, body(patient_a, **fields))
    assert response.status_code == status, response.content
    assert response.json()["code"] == code
    assert response.json()["message"]
    assert not Measurement.objects.exists()


def test_a_body_that_is_not_an_object(radiologist_client: Client, patient_a: StoredStudy) -> None:
    response = post(radiologist_client, [1, 2])
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_body"


def test_anonymous_gets_401(client: Client, patient_a: StoredStudy) -> None:
    assert post(client, body(patient_a)).status_code == 401
    assert client.get(f"/api/studies/{patient_a.study}/measurements").status_code == 401
    assert not Measurement.objects.exists()


def test_an_instance_the_user_may_not_see_is_404_like_an_unknown_one(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    hidden = post(clinician_for_patient_a, body(patient_b, points=[[10, 10], [50, 50]]))
    unknown = post(clinician_for_patient_a, body(patient_b, sop_instance_uid="1.2.3.4"))
    assert hidden.status_code == unknown.status_code == 404
    assert hidden.json() == unknown.json()
    assert not Measurement.objects.exists()


def test_the_launched_clinician_sees_only_patient_a(
    clinician_for_patient_a: Client,
    radiologist_client: Client,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
) -> None:
    on_a = post(radiologist_client, body(patient_a)).json()
    on_b = post(radiologist_client, body(patient_b, points=[[10, 10], [50, 50]])).json()
    listed = clinician_for_patient_a.get(f"/api/studies/{patient_a.study}/measurements")
    assert [m["id"] for m in listed.json()] == [on_a["id"]]
    refused = clinician_for_patient_a.get(f"/api/studies/{patient_b.study}/measurements")
    unknown = clinician_for_patient_a.get("/api/studies/1.2.3.4/measurements")
    assert refused.status_code == unknown.status_code == 404
    assert refused.json() == unknown.json()
    assert clinician_for_patient_a.get(f"/api/measurements/{on_b['id']}").status_code == 404
    assert patch(clinician_for_patient_a, on_b["id"], {"label": "x"}).status_code == 404
    assert clinician_for_patient_a.delete(f"/api/measurements/{on_b['id']}").status_code == 404
    assert Measurement.objects.get(pk=on_b["id"]).label == "nodule"
    # The clinician may measure on patient A's images.
    assert post(clinician_for_patient_a, body(patient_a, kind="length")).status_code == 201


def test_list_is_newest_first(radiologist_client: Client, patient_a: StoredStudy) -> None:
    ids = [post(radiologist_client, body(patient_a, label=str(n))).json()["id"] for n in range(3)]
    listed = radiologist_client.get(f"/api/studies/{patient_a.study}/measurements")
    assert listed.status_code == 200
    assert [m["id"] for m in listed.json()] == ids[::-1]
    assert "Content-Disposition" not in listed


def test_csv_and_json_export(radiologist_client: Client, patient_a: StoredStudy) -> None:
    post(radiologist_client, body(patient_a, label="=HYPERLINK(1)"))
    post(radiologist_client, body(patient_a, kind="length", points=[[0, 0], [100, 0]]))
    url = f"/api/studies/{patient_a.study}/measurements"
    as_csv = radiologist_client.get(url, {"format": "csv"})
    assert as_csv.status_code == 200
    assert as_csv["Content-Type"].startswith("text/csv")
    assert (
        as_csv["Content-Disposition"]
        == f'attachment; filename="measurements-{patient_a.study}.csv"'
    )
    rows = list(csv.DictReader(io.StringIO(as_csv.content.decode())))
    assert [r["kind"] for r in rows] == ["length", "ellipse"]
    assert rows[0]["length_unit"] == "mm" and float(rows[0]["length"]) > 0
    assert rows[1]["label"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    assert rows[1]["mean_unit"] == "[hnsf'U]"
    as_json = radiologist_client.get(url, {"format": "json"})
    assert as_json["Content-Disposition"].startswith("attachment")
    assert [m["kind"] for m in json.loads(as_json.content)] == ["length", "ellipse"]
    bad = radiologist_client.get(url, {"format": "xml"})
    assert bad.status_code == 400 and bad.json()["code"] == "unsupported_format"
    exports = AuditEvent.objects.filter(event_id="110106")
    assert sorted(e.detail["kind"] for e in exports) == ["measurements-csv", "measurements-json"]


def test_patch_recomputes_and_delete(radiologist_client: Client, patient_a: StoredStudy) -> None:
    made = post(radiologist_client, body(patient_a, kind="length", points=[[0, 0], [10, 0]]))
    found = made.json()
    first = found["result"]["length"]["value"]
    changed = patch(radiologist_client, found["id"], {"points": [[0, 0], [20, 0]], "label": "b"})
    assert changed.status_code == 200, changed.content
    assert changed.json()["result"]["length"]["value"] == pytest.approx(2 * first)
    assert changed.json()["label"] == "b"
    # The same UIDs may be sent back; another image may not.
    same = patch(radiologist_client, found["id"], {**found, "label": "c"})
    assert same.status_code == 200, same.content
    moved = patch(radiologist_client, found["id"], {"sop_instance_uid": "1.2.3"})
    assert moved.status_code == 400 and moved.json()["code"] == "read_only_field"
    bad = patch(radiologist_client, found["id"], {"points": [[0, 0], [9000, 0]]})
    assert bad.status_code == 400 and bad.json()["code"] == "point_outside_image"
    assert Measurement.objects.get().label == "c"
    assert radiologist_client.delete(f"/api/measurements/{found['id']}").status_code == 204
    assert not Measurement.objects.exists()
    assert radiologist_client.delete(f"/api/measurements/{found['id']}").status_code == 404
    assert radiologist_client.delete("/api/measurements/not-a-uuid").status_code == 404


def test_only_the_author_or_an_administrator_may_change(
    radiologist_client: Client,
    patient_a: StoredStudy,
    django_user_model: Any,
    administrator: Any,
) -> None:
    found = post(radiologist_client, body(patient_a)).json()
    other = client_for(
        django_user_model.objects.create_user("other-radiologist", password="a-long-test-password")
    )
    assert other.get(f"/api/measurements/{found['id']}").status_code == 200  # may see it
    refused = patch(other, found["id"], {"label": "mine now"})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert other.delete(f"/api/measurements/{found['id']}").status_code == 403
    assert Measurement.objects.get().label == "nodule"
    admin = client_for(administrator)
    assert patch(admin, found["id"], {"label": "checked"}).status_code == 200
    assert admin.delete(f"/api/measurements/{found['id']}").status_code == 204


def test_audit_rows(radiologist_client: Client, patient_a: StoredStudy) -> None:
    found = post(radiologist_client, body(patient_a)).json()
    patch(radiologist_client, found["id"], {"label": "x"})
    radiologist_client.delete(f"/api/measurements/{found['id']}")
    rows = AuditEvent.objects.filter(event_id="110103", study_uids=[patient_a.study])
    actions = sorted(r.action for r in rows if r.outcome == 0)
    assert {"C", "U", "D", "R"} <= set(actions)
    assert all(r.user_id == "radiologist" for r in rows)
    assert all(r.patient_id == "C3N-00247" for r in rows)
