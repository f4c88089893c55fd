"""viewer.services.hanging: the shape of a protocol (every bad field named), and the
shipped set hanging real studies: the ct-prior-pair brain CTs, the demo phantom's chest
CT and its prior, a chest radiograph, a brain MR, an ultrasound cine; the admin's form
validating through the service."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import client_for
from tests.factories import StoredStudy, corpus_files, ct_small, store_files
from tests.factories import changed as changed_file
from viewer.demo import phantom
from viewer.models import HangingProtocol, Series, Study
from viewer.services import hanging

pytestmark = pytest.mark.django_db

GOOD: dict[str, Any] = json.loads((hanging.SHIPPED_DIR / "ct-chest-with-prior.json").read_text())


def shipped(name: str) -> dict[str, Any]:
    return next(
        d
        for p in sorted(hanging.SHIPPED_DIR.glob("*.json"))
        for d in [json.loads(p.read_text())]
        if d["name"] == name
    )


# ---------------------------------------------------------------------------------------
# The shape
# ---------------------------------------------------------------------------------------


def test_every_shipped_protocol_is_valid_and_in_the_database_after_migrate() -> None:
    names = set()
    for path in sorted(hanging.SHIPPED_DIR.glob("*.json")):
        for document in hanging.read_protocol_file(path):
            names.add(document["name"])
    assert names == {
        "CT chest with prior",
        "CT with prior",
        "Two-view chest radiograph",
        "MR brain",
        "Ultrasound cine",
        "Default",
    }
    rows = HangingProtocol.objects.filter(name__in=names)
    assert {r.name for r in rows} == names  # migration 0008
    assert {r.source for r in rows} == {"shipped"}


def changed(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the field at ``path`` (dots and [i]) set to ``value`` (a missing
    sentinel deletes it)."""
    document = copy.deepcopy(GOOD)
    parts = path.replace("[", ".").replace("]", "").split(".")
    holder: Any = document
    for part in parts[:-1]:
        holder = holder[int(part)] if part.isdigit() else holder[part]
    last = parts[-1]
    if value is MISSING:
        del holder[last]
    elif last.isdigit():
        holder[int(last)] = value
    else:
        holder[last] = value
    return document


MISSING = object()


@pytest.mark.parametrize(
    ("path", "value", "field", "words"),
    [
        ("name", MISSING, "name", "is missing"),
        ("name", "  ", "name", "must not be empty"),
        ("name", 7, "name", "must be a string"),
        ("priority", "high", "priority", "whole number"),
        ("priority", True, "priority", "whole number"),
        ("enabled", "yes", "enabled", "true or false"),
        ("colour", "red", "colour", "unknown field"),
        ("match", [], "match", "must be an object"),
        ("match.modality", [], "match.modality", "non-empty list"),
        ("match.modallity", ["CT"], "match.modallity", "unknown field"),
        ("match.study_description", "(", "match.study_description", "regular expression"),
        ("match.orientation", "diagonal", "match.orientation", "'diagonal' is not one of"),
        ("match.min_priors", -1, "match.min_priors", "between 0 and"),
        ("match.max_priors", 0, "match.max_priors", "less than min_priors"),
        ("layout", "3x3", "layout", "'3x3' is not one of 1x1, 1x2, 2x1, 2x2"),
        ("layout", "1x1", "viewports", "has 2 viewports; layout 1x1 has 1"),
        ("viewports", [], "viewports", "non-empty list"),
        ("viewports[0].study", "previous", "viewports[0].study", "not one of current, prior"),
        ("viewports[0].prior", 1, "viewports[0].prior", 'only for "study": "prior"'),
        ("viewports[1].prior", 0, "viewports[1].prior", "between 1 and"),
        ("viewports[1].series", "match_current:1", "viewports[1].series", "earlier viewport"),
        ("viewports[1].series", "same as 0", "viewports[1].series", "match_current:N"),
        ("viewports[0].series", None, "viewports[1].series", "viewport 0 hangs no series"),
        ("viewports[0].series.prefer", "best", "viewports[0].series.prefer", "'best'"),
        (
            "viewports[0].series.thickness_mm.max",
            "5",
            "viewports[0].series.thickness_mm.max",
            "number of mm",
        ),
        (
            "viewports[0].series.thickness_mm.min",
            9,
            "viewports[0].series.thickness_mm.max",
            "less than min",
        ),
        ("viewports[0].series.any_of", [{}], "viewports[0].series.any_of[0]", "at least one"),
        (
            "viewports[0].series.any_of",
            [{"prefer": "thinnest"}],
            "viewports[0].series.any_of[0].prefer",
            "unknown field",
        ),
        ("viewports[0].preset", "x" * 41, "viewports[0].preset", "at most 40"),
        ("viewports[0].cine", "no", "viewports[0].cine", "true or false"),
        ("sync.scroll", 1, "sync.scroll", "true or false"),
        ("sync.pan", True, "sync.pan", "unknown field"),
    ],
)
def test_a_bad_field_is_named(path: str, value: Any, field: str, words: str) -> None:
    with pytest.raises(hanging.InvalidProtocol) as caught:
        hanging.validate_protocol(changed(path, value))
    assert caught.value.field == field, caught.value.message
    assert words in caught.value.message
    assert caught.value.message.startswith(f"{field}: ")
    assert caught.value.status == 400


def test_optional_fields_may_be_left_out() -> None:
    minimal = {"name": "Minimal", "layout": "1x1", "viewports": [{"series": None}]}
    assert hanging.validate_protocol(minimal) is minimal
    assert hanging.validate_sync({"scroll": True}) == {
        "scroll": True,
        "window": False,
        "zoom": False,
    }


# ---------------------------------------------------------------------------------------
# Hanging real studies with the shipped set
# ---------------------------------------------------------------------------------------


def store_prior_pair(shared_dicom: Path) -> tuple[StoredStudy, StoredStudy]:
    """ct-prior-pair: each study's localizer and three slices of its axial series."""
    base = "ct-prior-pair"
    prior = store_files(
        corpus_files(shared_dicom, f"{base}/study1-prior-0928/S100_localizer")
        + corpus_files(shared_dicom, f"{base}/study1-prior-0928/S201_std_brain_5mm", 3)
    )
    current = store_files(
        corpus_files(shared_dicom, f"{base}/study2-current-0934/S100_localizer")
        + corpus_files(shared_dicom, f"{base}/study2-current-0934/S201_stereotaxis_tilt", 3)
    )
    return prior, current


def series_named(study: Study, description: str) -> str:
    return Series.objects.get(study=study, series_description=description).series_instance_uid


def by_name(result: hanging.Hanging) -> dict[str, hanging.HungProtocol]:
    return {h.protocol.name: h for h in result.protocols}


def hang(uid: str, compared: list[str] = ()) -> hanging.Hanging:  # type: ignore[assignment]
    study = Study.objects.get(study_instance_uid=uid)
    return hanging.hang(
        study,
        Study.objects.all(),
        [Study.objects.get(study_instance_uid=c) for c in compared],
    )


def test_ct_prior_pair_hangs_the_tilted_axial_beside_the_priors_axial(
    shared_dicom: Path,
) -> None:
    prior, current = store_prior_pair(shared_dicom)
    result = hang(current.study)
    assert result.chosen is not None
    assert result.chosen.protocol.name == "CT with prior"
    assert result.chosen.protocol.layout == "1x2"
    left, right = result.chosen.viewports
    current_study = Study.objects.get(study_instance_uid=current.study)
    prior_study = Study.objects.get(study_instance_uid=prior.study)
    assert (left.role, left.study) == ("current", current_study)
    assert left.series is not None
    assert left.series.series_instance_uid == series_named(current_study, "STEREOTAXIS")
    assert (right.role, right.study) == ("prior 1", prior_study)
    assert right.series is not None
    assert right.series.series_instance_uid == series_named(prior_study, "STD BRAIN 5MM")
    assert result.chosen.sync() == {"scroll": True, "window": True, "zoom": True}
    names = by_name(result)
    assert not names["CT chest with prior"].matches  # a brain is not a chest
    assert names["Default"].matches
    assert result.protocols[0] is result.chosen
    # every enabled protocol is answered: the chosen, the matching ones, then the rest
    assert len(result.protocols) == HangingProtocol.objects.filter(enabled=True).count()
    flags = [h.matches for h in result.protocols]
    assert flags == sorted(flags, reverse=True)


def test_the_prior_study_itself_has_no_prior_and_hangs_by_default(shared_dicom: Path) -> None:
    prior, _current = store_prior_pair(shared_dicom)
    result = hang(prior.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Default"
    (only,) = result.chosen.viewports
    assert only.series is not None and only.series.description == "STD BRAIN 5MM"
    ct_with_prior = by_name(result)["CT with prior"]
    assert not ct_with_prior.matches
    assert ct_with_prior.viewports[1].study is None  # no prior 1
    assert ct_with_prior.viewports[1].series is None


def test_a_compared_study_fills_the_first_prior_slot(shared_dicom: Path) -> None:
    prior, current = store_prior_pair(shared_dicom)
    # the later study compared with the earlier one: it takes "prior 1"
    result = hang(prior.study, [current.study])
    assert result.chosen is not None and result.chosen.protocol.name == "CT with prior"
    right = result.chosen.viewports[1]
    assert right.study is not None and right.study.study_instance_uid == current.study
    assert right.series is not None and right.series.description == "STEREOTAXIS"


def store_phantom(tmp_path: Path) -> tuple[str, str]:
    spec = dataclasses.replace(phantom.DEFAULT_SPEC, num_slices=3)
    stored = store_files(phantom.write_phantom(tmp_path / "phantom", spec))
    current = Study.objects.get(study_date=phantom.CURRENT_STUDY.date)
    assert stored.study in {current.study_instance_uid}
    prior = Study.objects.get(study_date=phantom.PRIOR_STUDY.date)
    return current.study_instance_uid, prior.study_instance_uid


def test_phantom_current_hangs_ct_chest_with_prior(tmp_path: Path) -> None:
    current, prior = store_phantom(tmp_path)
    result = hang(current)
    assert result.chosen is not None and result.chosen.protocol.name == "CT chest with prior"
    left, right = result.chosen.viewports
    assert left.study is not None and left.study.study_instance_uid == current
    assert right.study is not None and right.study.study_instance_uid == prior
    assert left.series is not None and right.series is not None and left.exact and right.exact
    assert (left.preset, right.preset) == ("Soft tissue", "Soft tissue")
    assert by_name(result)["CT with prior"].matches  # also fits, at a lower priority
    assert result.protocols[1].protocol.name == "CT with prior"


def test_the_relevant_prior_is_prior_1_before_a_newer_irrelevant_one(tmp_path: Path) -> None:
    current, prior = store_phantom(tmp_path)
    head_mr = changed_file(
        ct_small(),
        PatientID=phantom.PATIENT_ID,
        IssuerOfPatientID=phantom.ISSUER_OF_PATIENT_ID,
        PatientName=phantom.DEFAULT_SPEC.patient_name,
        StudyInstanceUID="1.2.826.0.1.3680043.8.498.1001",
        SeriesInstanceUID="1.2.826.0.1.3680043.8.498.1002",
        SOPInstanceUID="1.2.826.0.1.3680043.8.498.1003",
        StudyDate="20260101",
        Modality="MR",
        BodyPartExamined="HEAD",
    )
    path = tmp_path / "mr.dcm"
    path.write_bytes(head_mr)
    newer = store_files([path])
    HangingProtocol.objects.create(
        name="Two priors",
        match={"min_priors": 2},
        layout="1x2",
        viewports=[
            {"study": "prior", "prior": 1, "series": {"prefer": "most_images"}},
            {"study": "prior", "prior": 2, "series": {"prefer": "most_images"}},
        ],
    )
    result = hang(current)
    assert result.chosen is not None and result.chosen.protocol.name == "CT chest with prior"
    assert result.chosen.viewports[1].study is not None
    assert result.chosen.viewports[1].study.study_instance_uid == prior
    first, second = by_name(result)["Two priors"].viewports
    assert first.study is not None and first.study.study_instance_uid == prior
    assert second.study is not None and second.study.study_instance_uid == newer.study
    assert (second.role, by_name(result)["Two priors"].matches) == ("prior 2", True)


def test_ultrasound_cine_plays(shared_dicom: Path) -> None:
    stored = store_files([shared_dicom / "us-rgb-multiframe/Issue164_US_87frames_jpeg.dcm"])
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Ultrasound cine"
    assert result.chosen.protocol.layout == "1x1"
    (only,) = result.chosen.viewports
    assert only.cine is True and only.series is not None and only.series.frames == 87


def test_a_single_frame_ultrasound_is_no_cine(shared_dicom: Path) -> None:
    stored = store_files([shared_dicom / "us-rgb-multiframe/US_GE_V830_RGB_uncompressed.dcm"])
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Default"
    assert result.chosen.viewports[0].cine is False
    assert not by_name(result)["Ultrasound cine"].matches


def test_chest_radiograph_hangs_the_frontal_view_and_leaves_the_missing_lateral_empty(
    shared_dicom: Path,
) -> None:
    # The corpus's DX chest (Series Description "pa"); the corpus has no lateral view.
    stored = store_files([shared_dicom / "cr-monochrome1/966_fixed.dcm"])
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Two-view chest radiograph"
    frontal, lateral = result.chosen.viewports
    assert frontal.series is not None and frontal.series.series_instance_uid == stored.series
    assert frontal.exact
    assert lateral.study is not None and lateral.series is None


def test_chest_radiograph_without_a_description_still_hangs_its_image(
    shared_dicom: Path,
) -> None:
    # NEMA RG1: View Position PA (not indexed), no Series Description: the nearest series.
    stored = store_files([shared_dicom / "cr-monochrome1/RG1_J2KI.dcm"])
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Two-view chest radiograph"
    frontal = result.chosen.viewports[0]
    assert frontal.series is not None and not frontal.exact


def test_mr_brain_hangs_the_only_series_there_is(shared_dicom: Path) -> None:
    # mr-series is one sagittal T1: the T1 cell gets it, T2 and FLAIR stay empty.
    stored = store_files(corpus_files(shared_dicom, "mr-series", 2))
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "MR brain"
    assert result.chosen.protocol.layout == "2x2"
    t1, t2, flair = result.chosen.viewports
    assert t1.series is not None and t1.series.series_instance_uid == stored.series
    assert not t1.exact  # sagittal, not the axial asked for
    assert t2.series is None and flair.series is None


def test_a_disabled_protocol_is_not_offered(shared_dicom: Path) -> None:
    HangingProtocol.objects.filter(name="MR brain").update(enabled=False)
    stored = store_files(corpus_files(shared_dicom, "mr-series", 1))
    result = hang(stored.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Default"
    assert "MR brain" not in by_name(result)


def test_no_protocol_at_all_chooses_none(shared_dicom: Path) -> None:
    HangingProtocol.objects.all().delete()
    stored = store_files(corpus_files(shared_dicom, "mr-series", 1))
    result = hang(stored.study)
    assert result.chosen is None and result.protocols == []


def test_match_on_descriptions_orientation_and_number_of_priors(shared_dicom: Path) -> None:
    prior, current = store_prior_pair(shared_dicom)
    base = {"layout": "1x1", "viewports": [{"series": {"modality": "CT"}}]}
    HangingProtocol.objects.create(
        name="Stereotaxis",
        priority=100,
        match={
            "study_description": "trauma",
            "series_description": "^stereo",
            "orientation": "axial",
            "min_priors": 1,
            "max_priors": 1,
        },
        **base,
    )
    HangingProtocol.objects.create(name="Two priors", priority=200, match={"min_priors": 2}, **base)
    result = hang(current.study)
    assert result.chosen is not None and result.chosen.protocol.name == "Stereotaxis"
    assert (
        by_name(result)["Stereotaxis"].score == 4 + 1
    )  # four criteria (the priors one), one exact viewport
    assert not by_name(result)["Two priors"].matches
    assert not by_name(hang(prior.study))["Stereotaxis"].matches


# ---------------------------------------------------------------------------------------
# The admin
# ---------------------------------------------------------------------------------------


def admin_form(protocol: HangingProtocol, **fields: Any) -> dict[str, Any]:
    data = {
        "name": protocol.name,
        "description": protocol.description,
        "priority": protocol.priority,
        "enabled": "on" if protocol.enabled else "",
        "match": json.dumps(protocol.match),
        "layout": protocol.layout,
        "viewports": json.dumps(protocol.viewports),
        "sync": json.dumps(protocol.sync),
    }
    data.update(fields)
    return {k: v for k, v in data.items() if v != ""}


def test_admin_edits_a_protocol(administrator: Any) -> None:
    protocol = HangingProtocol.objects.get(name="MR brain")
    client = client_for(administrator)
    url = f"/admin/viewer/hangingprotocol/{protocol.pk}/change/"
    assert client.get(url).status_code == 200
    response = client.post(
        url, admin_form(protocol, priority=75, sync=json.dumps({"scroll": False}))
    )
    assert response.status_code == 302, response.content[:2000]
    protocol.refresh_from_db()
    assert protocol.priority == 75 and protocol.sync == {"scroll": False}
    assert protocol.source == "admin"
    assert client.get("/admin/viewer/hangingprotocol/").status_code == 200


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"viewports": json.dumps([{"series": "match_current:3"}])}, "earlier viewport"),
        ({"match": json.dumps({"modality": 5})}, "match.modality: must be a string"),
        ({"layout": "3x3"}, "&#x27;3x3&#x27; is not one of"),
        (
            {"layout": "1x1", "viewports": json.dumps([{}, {}])},
            "has 2 viewports; layout 1x1 has 1",
        ),
        ({"sync": json.dumps({"pan": True})}, "sync.pan: unknown field"),
        ({"viewports": "[{"}, "Enter a valid JSON"),
    ],
)
def test_admin_refuses_an_invalid_protocol(
    administrator: Any, fields: dict[str, Any], message: str
) -> None:
    protocol = HangingProtocol.objects.get(name="MR brain")
    before = (protocol.match, protocol.layout, protocol.viewports, protocol.sync)
    client = client_for(administrator)
    response = client.post(
        f"/admin/viewer/hangingprotocol/{protocol.pk}/change/", admin_form(protocol, **fields)
    )
    assert response.status_code == 200  # the form again, with its errors
    assert message in response.content.decode()
    protocol.refresh_from_db()
    assert (protocol.match, protocol.layout, protocol.viewports, protocol.sync) == before


def test_admin_adds_a_protocol(administrator: Any) -> None:
    client = client_for(administrator)
    response = client.post(
        "/admin/viewer/hangingprotocol/add/",
        {
            "name": "CT lung",
            "priority": 10,
            "enabled": "on",
            "match": json.dumps({"modality": ["CT"]}),
            "layout": "1x1",
            "viewports": json.dumps([{"series": {"modality": "CT"}, "preset": "Lung"}]),
            "sync": "{}",
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert HangingProtocol.objects.get(name="CT lung").source == "admin"
