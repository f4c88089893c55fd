"""The measurements API's rules over HTTP, on real CT and MR from the shared corpus:
values checked against numpy computed here from the file; every bad input a 400 or 404
with nothing saved; author / other user / administrator; a clinician launched for
patient A; CSV and JSON export; the audit rows."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
import pytest
from django.test import Client

from tests.conftest import client_for
from tests.factories import StoredStudy, corpus_files
from tests.undecodable import rle_ct
from viewer.models import AuditEvent, Instance, Measurement
from viewer.services import rendering

pytestmark = pytest.mark.django_db

HU = "[hnsf'U]"
MEASUREMENT_FIELDS = {
    "id",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "frame",
    "kind",
    "points",
    "label",
    "author",
    "created_at",
    "updated_at",
    "result",
}
QUANTITIES = ("length", "angle", "area", "mean", "std", "min", "max", "pixels", "value")
CSV_HEADER = [
    "id",
    "created_at",
    "updated_at",
    "author",
    "study_instance_uid",
    "series_instance_uid",
    "sop_instance_uid",
    "frame",
    "kind",
    "label",
    "points",
    *(f"{name}{part}" for name in QUANTITIES for part in ("", "_unit")),
    "spacing_attribute",
    "values",
]


# Requests.


def fields(stored: StoredStudy, **changed: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "study_instance_uid": stored.study,
        "series_instance_uid": stored.series,
        "sop_instance_uid": stored.instance,
        "frame": 1,
        "kind": "length",
        "points": [[100.25, 120.5], [130.25, 160.5]],
        "label": "",
    }
    found.update(changed)
    return found


def post(client: Client, body: Any) -> Any:
    data = body if isinstance(body, str) else json.dumps(body)
    return client.post("/api/measurements", data, content_type="application/json")


def patch(client: Client, measurement_id: str, body: Any) -> Any:
    return client.patch(
        f"/api/measurements/{measurement_id}", json.dumps(body), content_type="application/json"
    )


def delete(client: Client, measurement_id: str) -> Any:
    return client.delete(f"/api/measurements/{measurement_id}")


def listing(client: Client, study: str, **query: str) -> Any:
    return client.get(f"/api/studies/{study}/measurements", query)


def made(client: Client, stored: StoredStudy, **changed: Any) -> dict[str, Any]:
    response = post(client, fields(stored, **changed))
    assert response.status_code == 201, response.content[:400]
    answer: dict[str, Any] = response.json()
    return answer


def refused(response: Any, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.content[:400]
    answer: dict[str, Any] = response.json()
    assert set(answer) == {"code", "message"}
    assert answer["message"]
    if code is not None:
        assert answer["code"] == code, answer
    return answer


# The image, read here independently of the server.


def first_ct_file(shared_dicom: Path) -> pydicom.Dataset:
    """ct-series' first file by name: the instance ``patient_a`` names."""
    return pydicom.dcmread(corpus_files(shared_dicom, "ct-series", 1)[0])


def hounsfield(dataset: pydicom.Dataset) -> np.ndarray:
    stored = dataset.pixel_array.astype(np.float64)
    return stored * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)


# Values on the CT.


def test_a_length_on_the_ct_is_in_mm_from_pixel_spacing(
    shared_dicom: Path, radiologist: Any, patient_a: StoredStudy
) -> None:
    dataset = first_ct_file(shared_dicom)
    assert dataset.SOPInstanceUID == patient_a.instance
    row_mm, column_mm = (float(v) for v in dataset.PixelSpacing)
    answer = made(client_for(radiologist), patient_a, points=[[10.5, 20.0], [40.5, 60.0]])

    assert set(answer) >= MEASUREMENT_FIELDS
    assert answer["kind"] == "length"
    assert answer["frame"] == 1
    assert answer["sop_instance_uid"] == patient_a.instance
    assert answer["series_instance_uid"] == patient_a.series
    assert answer["study_instance_uid"] == patient_a.study
    assert answer["points"] == [[10.5, 20.0], [40.5, 60.0]]
    assert answer["author"] == {"username": "radiologist", "display": "radiologist"}
    assert answer["result"]["spacing_attribute"] == "PixelSpacing"
    assert answer["result"]["length"]["unit"] == "mm"
    expected = math.hypot(30 * column_mm, 40 * row_mm)
    assert answer["result"]["length"]["value"] == pytest.approx(expected, rel=1e-9)
    assert Measurement.objects.filter(pk=answer["id"]).exists()


def test_an_ellipse_gives_hu_statistics_of_the_pixel_centres_inside_it(
    shared_dicom: Path, radiologist: Any, patient_a: StoredStudy
) -> None:
    dataset = first_ct_file(shared_dicom)
    values = hounsfield(dataset)
    row_mm, column_mm = (float(v) for v in dataset.PixelSpacing)
    x0, y0, x1, y1 = 200.3, 180.7, 260.1, 230.2
    answer = made(client_for(radiologist), patient_a, kind="ellipse", points=[[x0, y0], [x1, y1]])

    rows, columns = np.mgrid[0 : values.shape[0], 0 : values.shape[1]]
    a, b = (x1 - x0) / 2, (y1 - y0) / 2
    u = (columns + 0.5 - (x0 + a)) / a
    v = (rows + 0.5 - (y0 + b)) / b
    inside = values[u * u + v * v <= 1]
    result = answer["result"]
    for name, expected in (
        ("mean", inside.mean()),
        ("std", inside.std()),
        ("min", inside.min()),
        ("max", inside.max()),
    ):
        assert result[name]["unit"] == HU, name
        assert result[name]["value"] == pytest.approx(float(expected), rel=1e-9, abs=1e-9), name
    assert result["pixels"]["value"] == inside.size
    assert result["area"]["unit"] == "mm2"
    assert result["area"]["value"] == pytest.approx(math.pi * a * b * row_mm * column_mm, rel=1e-9)
    assert result["spacing_attribute"] == "PixelSpacing"
    assert result["values"] == "modality"


def test_the_probe_reads_stored_times_slope_plus_intercept(
    shared_dicom: Path, radiologist: Any, patient_a: StoredStudy
) -> None:
    values = hounsfield(first_ct_file(shared_dicom))
    answer = made(client_for(radiologist), patient_a, kind="point", points=[[301.9, 250.1]])
    assert answer["result"]["value"] == {"value": float(values[250, 301]), "unit": HU}
    assert answer["result"]["pixel"] == {"column": 301, "row": 250}


# Bad input: a 400 or 404 that names the problem, and nothing saved.


@pytest.mark.parametrize(
    ("changed", "code"),
    [
        ({"points": [[10.0, 10.0], [513.0, 10.0]]}, "point_outside_image"),
        ({"points": [[-0.5, 10.0], [20.0, 10.0]]}, "point_outside_image"),
        ({"points": [[10.0, 10.0]]}, "wrong_number_of_points"),
        ({"kind": "angle", "points": [[1.0, 1.0], [2.0, 2.0]]}, "wrong_number_of_points"),
        ({"kind": "rectangle", "points": [[10.0, 10.0], [10.0, 50.0]]}, "zero_area"),
        ({"kind": "ellipse", "points": [[10.0, 10.0], [10.0, 10.0]]}, "zero_area"),
        ({"kind": "polygon", "points": [[1.0, 1.0], [5.0, 5.0], [9.0, 9.0]]}, "zero_area"),
        ({"kind": "volume"}, "unknown_kind"),
    ],
)
def test_a_measurement_that_cannot_be_made_is_a_400_and_nothing_is_saved(
    radiologist: Any, patient_a: StoredStudy, changed: dict[str, Any], code: str
) -> None:
    refused(post(client_for(radiologist), fields(patient_a, **changed)), 400, code)
    assert not Measurement.objects.exists()


def test_frame_2_of_a_single_frame_instance_is_a_400_naming_the_count(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    for frame in (2, 0, -1):
        answer = refused(
            post(client_for(radiologist), fields(patient_a, frame=frame)), 400, "no_such_frame"
        )
        assert "1" in answer["message"]
    assert not Measurement.objects.exists()


def test_a_label_over_1000_characters_is_a_400_and_1000_are_kept(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    refused(post(client, fields(patient_a, label="x" * 1001)), 400, "label_too_long")
    assert not Measurement.objects.exists()
    assert made(client, patient_a, label="y" * 1000)["label"] == "y" * 1000


def test_a_label_with_a_control_character_is_a_400_and_line_breaks_are_kept(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    for label in ("nul\x00inside", "bell\x07", "escape\x1b[31m"):
        refused(post(client, fields(patient_a, label=label)), 400, "bad_label")
    assert not Measurement.objects.exists()
    assert made(client, patient_a, label="two\nlines\tand a tab")["label"] == (
        "two\nlines\tand a tab"
    )


def test_a_patch_naming_a_field_as_null_is_a_400_and_changes_nothing(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    first = made(client, patient_a, label="kept")
    for name in ("points", "label", "kind", "frame"):
        answer = refused(patch(client, first["id"], {name: None}), 400, "null_field")
        assert name in answer["message"]
    row = Measurement.objects.get(pk=first["id"])
    assert (row.label, row.points) == ("kept", first["points"])


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ("{not json", None),
        ("[1, 2]", None),
        ({"kind": "length"}, "study_instance_uid"),
        ("missing points", "points"),
        ("missing kind", "kind"),
        ("points as text", "points"),
        ("frame as text", "frame"),
        ("label as a number", "label"),
        ("an unknown field", "colour"),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(
    radiologist: Any, patient_a: StoredStudy, body: Any, named: str | None
) -> None:
    good = fields(patient_a)
    sent: Any = (
        {
            "missing points": {k: v for k, v in good.items() if k != "points"},
            "missing kind": {k: v for k, v in good.items() if k != "kind"},
            "points as text": {**good, "points": "10,20 30,40"},
            "frame as text": {**good, "frame": "one"},
            "label as a number": {**good, "label": 7},
            "an unknown field": {**good, "colour": "red"},
        }.get(body, body)
        if isinstance(body, str)
        else body
    )
    answer = refused(post(client_for(radiologist), sent), 400)
    if named is not None:
        assert named in answer["message"]
    assert not Measurement.objects.exists()


def test_frame_and_label_have_defaults(radiologist: Any, patient_a: StoredStudy) -> None:
    body = {k: v for k, v in fields(patient_a).items() if k not in ("frame", "label")}
    response = post(client_for(radiologist), body)
    assert response.status_code == 201, response.content[:400]
    assert (response.json()["frame"], response.json()["label"]) == (1, "")


def test_another_patients_instance_is_the_same_404_as_an_unknown_one(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    unknown = refused(
        post(clinician_for_patient_a, fields(patient_a, sop_instance_uid="1.2.3.4.5")), 404
    )
    other = refused(post(clinician_for_patient_a, fields(patient_b)), 404)
    assert other == unknown
    assert not Measurement.objects.exists()
    # The clinician may measure the launched patient's images.
    made(clinician_for_patient_a, patient_a)


def test_an_outsider_gets_404_and_nobody_logged_in_401(
    outsider: Any, patient_a: StoredStudy
) -> None:
    refused(post(client_for(outsider), fields(patient_a)), 404)
    refused(post(Client(), fields(patient_a)), 401)
    assert listing(Client(), patient_a.study).status_code == 401
    assert not Measurement.objects.exists()


def test_a_session_without_the_csrf_token_may_not_post(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(radiologist)
    assert post(client, fields(patient_a)).status_code == 403
    assert not Measurement.objects.exists()


def stored_multiframe(client: Client, bad_frames: frozenset[int]) -> StoredStudy:
    """pydicom's CT_small as a three-frame RLE object whose ``bad_frames`` (0-based) do
    not decode, stored through the API (its first frame is checked at ingest)."""
    rendering.clear_caches()
    data = rle_ct(3, bad_frames)
    response = client.post("/api/instances", data=data, content_type="application/dicom")
    assert response.status_code == 200, response.content[:400]
    dataset = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
    return StoredStudy(dataset.StudyInstanceUID, dataset.SeriesInstanceUID, dataset.SOPInstanceUID)


def test_each_frame_of_a_multiframe_object_is_measured_and_named(radiologist: Any) -> None:
    client = client_for(radiologist)
    stored = stored_multiframe(client, frozenset())
    box = [[20.0, 20.0], [60.0, 50.0]]
    on_3 = made(client, stored, frame=3, kind="rectangle", points=box)
    assert on_3["frame"] == 3
    assert on_3["result"]["pixels"]["value"] == 40 * 30
    answer = refused(post(client, fields(stored, frame=4, points=box)), 400, "no_such_frame")
    assert "3" in answer["message"]
    assert Measurement.objects.count() == 1


def test_a_frame_that_does_not_decode_is_the_decoders_422_and_nothing_is_saved(
    radiologist: Any,
) -> None:
    client = client_for(radiologist)
    stored = stored_multiframe(client, frozenset({1}))
    box = [[20.0, 20.0], [60.0, 50.0]]
    first = refused(post(client, fields(stored, frame=2, kind="ellipse", points=box)), 422)
    assert first["code"] == "undecodable" and "frame 2" in first["message"]
    assert list(Instance.objects.get(sop_instance_uid=stored.instance).undecodable) == ["2"]
    # Now answered from the index's flag, without decoding again.
    again = refused(post(client, fields(stored, frame=2, kind="point", points=[[5.0, 5.0]])), 422)
    assert again == first
    assert not Measurement.objects.exists()
    made(client, stored, frame=3, kind="ellipse", points=box)


def test_a_length_on_a_frame_flagged_undecodable_is_refused_too(radiologist: Any) -> None:
    client = client_for(radiologist)
    stored = stored_multiframe(client, frozenset({1}))
    box = [[20.0, 20.0], [60.0, 50.0]]
    refused(post(client, fields(stored, frame=2, kind="ellipse", points=box)), 422)
    refused(post(client, fields(stored, frame=2, kind="length", points=box)), 422)
    assert not Measurement.objects.exists()


def test_an_outsider_may_not_list_a_studys_measurements(
    radiologist: Any, outsider: Any, patient_a: StoredStudy
) -> None:
    made(client_for(radiologist), patient_a)
    refused(listing(client_for(outsider), patient_a.study), 404)
    refused(listing(client_for(outsider), patient_a.study, format="csv"), 404)


# Changes: recomputed; the author or an administrator.


def test_the_author_patches_points_and_label_and_the_result_is_recomputed(
    shared_dicom: Path, radiologist: Any, patient_a: StoredStudy
) -> None:
    column_mm = float(first_ct_file(shared_dicom).PixelSpacing[1])
    client = client_for(radiologist)
    first = made(client, patient_a, points=[[10.0, 10.0], [20.0, 10.0]], label="before")
    response = patch(client, first["id"], {"points": [[10.0, 10.0], [110.0, 10.0]]})
    assert response.status_code == 200, response.content[:400]
    changed = response.json()
    assert changed["id"] == first["id"]
    assert changed["points"] == [[10.0, 10.0], [110.0, 10.0]]
    assert changed["label"] == "before"
    assert changed["result"]["length"]["value"] == pytest.approx(100 * column_mm, rel=1e-9)
    assert changed["updated_at"] >= first["updated_at"]

    relabelled = patch(client, first["id"], {"label": "after"}).json()
    assert relabelled["label"] == "after"
    assert relabelled["points"] == changed["points"]
    row = Measurement.objects.get(pk=first["id"])
    assert (row.label, row.result["length"]) == ("after", changed["result"]["length"])


def test_a_bad_patch_changes_nothing(radiologist: Any, patient_a: StoredStudy) -> None:
    client = client_for(radiologist)
    first = made(client, patient_a, label="kept")
    refused(patch(client, first["id"], {"points": [[0.0, 0.0], [900.0, 0.0]]}), 400)
    refused(patch(client, first["id"], {"label": "z" * 1001}), 400, "label_too_long")
    refused(
        patch(client, first["id"], {"points": [[1.0, 1.0]], "label": "lost"}),
        400,
        "wrong_number_of_points",
    )
    refused(patch(client, first["id"], {"sop_instance_uid": "1.2.3.4.5"}), 400, "read_only_field")
    row = Measurement.objects.get(pk=first["id"])
    assert (row.label, row.points, row.result) == ("kept", first["points"], first["result"])


def test_another_user_may_see_but_not_change_or_delete(
    radiologist: Any, django_user_model: Any, patient_a: StoredStudy
) -> None:
    first = made(client_for(radiologist), patient_a, label="mine")
    colleague = client_for(
        django_user_model.objects.create_user("colleague", password="another-test-password")
    )
    seen = listing(colleague, patient_a.study).json()
    assert [m["id"] for m in seen] == [first["id"]]
    refused(patch(colleague, first["id"], {"label": "theirs"}), 403)
    refused(delete(colleague, first["id"]), 403)
    assert Measurement.objects.get(pk=first["id"]).label == "mine"


def test_an_administrator_may_change_and_delete_anyones(
    radiologist: Any, administrator: Any, patient_a: StoredStudy
) -> None:
    first = made(client_for(radiologist), patient_a)
    admin = client_for(administrator)
    response = patch(admin, first["id"], {"label": "checked"})
    assert response.status_code == 200, response.content[:400]
    assert response.json()["author"]["username"] == "radiologist"  # the author stays
    assert delete(admin, first["id"]).status_code == 204
    assert not Measurement.objects.exists()


def test_the_author_deletes_and_then_it_is_not_found(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    first = made(client, patient_a)
    response = delete(client, first["id"])
    assert response.status_code == 204
    assert not response.content
    refused(delete(client, first["id"]), 404)
    refused(patch(client, first["id"], {"label": "x"}), 404)
    assert listing(client, patient_a.study).json() == []


@pytest.mark.parametrize("measurement_id", ["00000000-0000-0000-0000-000000000000", "not-a-uuid"])
def test_an_unknown_id_is_a_404(radiologist: Any, measurement_id: str) -> None:
    client = client_for(radiologist)
    refused(patch(client, measurement_id, {"label": "x"}), 404)
    refused(delete(client, measurement_id), 404)


# The launched clinician: another patient's measurements do not exist for them.


def test_the_clinician_for_patient_a_gets_404_for_patient_bs_measurements(
    radiologist: Any,
    clinician_for_patient_a: Client,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
) -> None:
    on_a = made(client_for(radiologist), patient_a, label="on A")
    on_b = made(client_for(radiologist), patient_b, label="on B")
    assert on_b["result"]["spacing_attribute"] == "PixelSpacing"

    unknown_study = refused(listing(clinician_for_patient_a, "1.2.3.4.5.6"), 404)
    assert refused(listing(clinician_for_patient_a, patient_b.study), 404) == unknown_study
    assert refused(patch(clinician_for_patient_a, on_b["id"], {"label": "x"}), 404) == refused(
        patch(clinician_for_patient_a, "00000000-0000-0000-0000-000000000000", {"label": "x"}),
        404,
    )
    refused(delete(clinician_for_patient_a, on_b["id"]), 404)
    refused(clinician_for_patient_a.get(f"/api/measurements/{on_b['id']}"), 404)
    assert Measurement.objects.get(pk=on_b["id"]).label == "on B"

    seen = listing(clinician_for_patient_a, patient_a.study).json()
    assert [m["id"] for m in seen] == [on_a["id"]]
    one = clinician_for_patient_a.get(f"/api/measurements/{on_a['id']}")
    assert (one.status_code, one.json()) == (200, on_a)
    # The radiologist's measurement is not the clinician's to change.
    refused(patch(clinician_for_patient_a, on_a["id"], {"label": "x"}), 403)


# Listing and export.


def test_the_list_is_the_studys_measurements_newest_first(
    radiologist: Any, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    client = client_for(radiologist)
    ids = [made(client, patient_a, label=f"m{i}")["id"] for i in range(3)]
    made(client, patient_b)
    response = listing(client, patient_a.study)
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    found = response.json()
    assert [m["id"] for m in found] == ids[::-1]
    assert all(set(m) >= MEASUREMENT_FIELDS for m in found)
    assert all(m["study_instance_uid"] == patient_a.study for m in found)


def test_json_export_is_the_list_as_an_attachment(radiologist: Any, patient_a: StoredStudy) -> None:
    client = client_for(radiologist)
    made(client, patient_a, kind="ellipse", points=[[200.0, 200.0], [240.0, 230.0]])
    response = listing(client, patient_a.study, format="json")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith("attachment")
    assert json.loads(response.content) == listing(client, patient_a.study).json()


def test_csv_export_has_one_row_per_measurement_and_no_formulas(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    length = made(client, patient_a, label="+1 plain, with a comma")
    ellipse = made(
        client,
        patient_a,
        kind="ellipse",
        points=[[200.0, 200.0], [240.0, 230.0]],
        label='=HYPERLINK("http://evil.example","x")',
    )
    response = listing(client, patient_a.study, format="csv")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith("attachment")
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert table[0] == CSV_HEADER
    rows = [dict(zip(CSV_HEADER, row, strict=True)) for row in table[1:]]
    assert [r["id"] for r in rows] == [ellipse["id"], length["id"]]  # newest first

    for m, row in zip((ellipse, length), rows, strict=True):
        for name in QUANTITIES:
            quantity = m["result"].get(name)
            if quantity is None:
                assert (row[name], row[f"{name}_unit"]) == ("", ""), name
            else:
                assert float(row[name]) == pytest.approx(quantity["value"], rel=1e-12), name
                assert row[f"{name}_unit"] == quantity["unit"]
        assert json.loads(row["points"]) == m["points"]
        assert (row["kind"], row["frame"], row["author"]) == (m["kind"], "1", "radiologist")
        assert row["sop_instance_uid"] == patient_a.instance
        assert row["spacing_attribute"] == "PixelSpacing"
    assert rows[0]["values"] == "modality"
    assert [r["label"] for r in rows] == [
        '\'=HYPERLINK("http://evil.example","x")',
        "'+1 plain, with a comma",
    ]


def test_exports_are_audited_as_exports_and_the_plain_list_is_not(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    made(client, patient_a)
    listing(client, patient_a.study)
    assert not AuditEvent.objects.filter(event_id="110106").exists()
    for export in ("json", "csv"):
        assert listing(client, patient_a.study, format=export).status_code == 200
    exports = AuditEvent.objects.filter(event_id="110106", study_uids=[patient_a.study])
    assert sorted(e.detail["kind"] for e in exports) == ["measurements-csv", "measurements-json"]
    refused(listing(client, patient_a.study, format="xlsx"), 400)


# Audit.


def test_create_update_and_delete_are_audited_with_their_action(
    radiologist: Any, patient_a: StoredStudy
) -> None:
    client = client_for(radiologist)
    first = made(client, patient_a)
    patch(client, first["id"], {"label": "changed"})
    delete(client, first["id"])
    rows = AuditEvent.objects.filter(
        event_id="110103", outcome=0, study_uids=[patient_a.study]
    ).order_by("recorded_at")
    actions = [row.action for row in rows]
    assert "R" in actions  # the pixel values read: an image access
    assert [a for a in actions if a != "R"] == ["C", "U", "D"]
    for row in rows:
        assert row.user_id == "radiologist"
        assert row.patient_id == "C3N-00247"


def test_a_refused_measurement_of_another_patient_is_audited(
    clinician_for_patient_a: Client, patient_b: StoredStudy
) -> None:
    post(clinician_for_patient_a, fields(patient_b))
    refusals = AuditEvent.objects.filter(event_id="110103", outcome=4, study_uids=[patient_b.study])
    assert refusals.exists()
    assert not AuditEvent.objects.filter(action="C").exists()
