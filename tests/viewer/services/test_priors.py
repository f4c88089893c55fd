"""viewer.services.priors: earlier studies of the same person, and the relevant one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.factories import changed, store_files
from viewer.models import Study
from viewer.services import identity, ingest, priors

pytestmark = pytest.mark.django_db

PRIOR_UID = "1.3.46.670589.33.1.27492712521914879309.27169771283235650014"
CURRENT_UID = "1.3.46.670589.33.1.15053592413351079234.27718218421047494460"


def _pair(shared_dicom: Path) -> tuple[Study, Study]:
    """The prior pair, one axial slice each (and the current's localizer)."""
    base = shared_dicom / "ct-prior-pair"
    store_files(sorted((base / "study1-prior-0928" / "S201_std_brain_5mm").iterdir())[:1])
    store_files(
        [
            base / "study2-current-0934" / "S100_localizer" / "I10",
            *sorted((base / "study2-current-0934" / "S201_stereotaxis_tilt").iterdir())[:1],
        ]
    )
    studies = Study.objects.select_related("patient")
    return studies.get(study_instance_uid=PRIOR_UID), studies.get(study_instance_uid=CURRENT_UID)


def _variant(shared_dicom: Path, n: int, **values: object) -> Study:
    """The prior's localizer re-written as a study of its own (UIDs ending in ``n``)."""
    source = shared_dicom / "ct-prior-pair" / "study1-prior-0928" / "S100_localizer" / "I10"
    root = "1.2.826.0.1.3680043.8.498.77"
    data = changed(
        source.read_bytes(),
        StudyInstanceUID=f"{root}.{n}.1",
        SeriesInstanceUID=f"{root}.{n}.2",
        SOPInstanceUID=f"{root}.{n}.3",
        **values,
    )
    result = ingest.ingest_bytes(data, source="test")
    assert result.ok, result.as_dict()
    return Study.objects.select_related("patient").get(study_instance_uid=f"{root}.{n}.1")


def test_the_same_day_earlier_study_is_the_relevant_prior(shared_dicom: Path) -> None:
    prior, current = _pair(shared_dicom)
    assert prior.study_date == current.study_date  # same day: the time decides

    found = priors.priors_of(current, Study.objects.all())

    assert [(p.study.pk, p.relevant, p.linked) for p in found] == [(prior.pk, True, False)]
    assert priors.relevant_prior(current, Study.objects.all()) == prior
    assert priors.priors_of(prior, Study.objects.all()) == []  # the later one is no prior
    assert priors.relevant_priors([current, prior], Study.objects.all()) == {current.pk: prior}


def test_only_visible_studies_are_priors(shared_dicom: Path) -> None:
    prior, current = _pair(shared_dicom)
    assert priors.priors_of(current, Study.objects.exclude(pk=prior.pk)) == []


def test_a_study_without_a_date_has_no_priors_and_is_nobodys(shared_dicom: Path) -> None:
    prior, current = _pair(shared_dicom)
    undated = _variant(shared_dicom, 1, StudyDate="")
    assert undated.study_date is None
    assert priors.priors_of(undated, Study.objects.all()) == []
    assert [p.study for p in priors.priors_of(current, Study.objects.all())] == [prior]


def test_another_issuers_patient_with_the_same_id_is_not_a_prior(shared_dicom: Path) -> None:
    _, current = _pair(shared_dicom)
    other = _variant(shared_dicom, 2, IssuerOfPatientID="OTHER", StudyDate="20100101")
    found = priors.priors_of(current, Study.objects.all())
    assert other.pk not in {p.study.pk for p in found}


def test_another_person_with_the_same_name_is_not_a_prior(shared_dicom: Path) -> None:
    prior, current = _pair(shared_dicom)
    namesake = _variant(shared_dicom, 3, PatientID="SOMEONE-ELSE", StudyDate="20100101")
    assert namesake.patient.patient_name == current.patient.patient_name
    assert [p.study for p in priors.priors_of(current, Study.objects.all())] == [prior]


def test_a_linked_identitys_study_is_a_prior_until_unlinked(shared_dicom: Path) -> None:
    prior, current = _pair(shared_dicom)
    other = _variant(shared_dicom, 4, PatientID="MRN-7", IssuerOfPatientID="HOSP")
    other_identity = identity.identity_of(other.patient)

    identity.link(identity.identity_of(current.patient), other_identity, source="api", user_id="u")
    current.patient.refresh_from_db()
    found = priors.priors_of(current, Study.objects.all())
    assert [(p.study.pk, p.linked) for p in found] == [(other.pk, True), (prior.pk, False)]
    assert sum(p.relevant for p in found) == 1

    identity.unlink(
        identity.identity_of(current.patient), other_identity, source="api", user_id="u"
    )
    current.patient.refresh_from_db()
    assert [p.study for p in priors.priors_of(current, Study.objects.all())] == [prior]


def test_another_modality_or_body_part_is_a_prior_but_not_the_relevant_one(
    shared_dicom: Path,
) -> None:
    prior, current = _pair(shared_dicom)
    later_mr = _variant(shared_dicom, 5, Modality="MR", StudyTime="092900")
    later_foot = _variant(shared_dicom, 6, BodyPartExamined="FOOT", StudyTime="093000")
    current_parts = priors.priors_of(current, Study.objects.all())
    assert [p.study.pk for p in current_parts] == [later_foot.pk, later_mr.pk, prior.pk]
    body = {p.study.pk: p.body_parts for p in current_parts}
    if body[prior.pk]:  # the pair records its body part: the foot is not the head
        assert [p.relevant for p in current_parts] == [False, False, True]
    else:
        assert [p.relevant for p in current_parts] == [True, False, False]
