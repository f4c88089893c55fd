"""ehrlaunch.iid: HL7 CX identifiers and IHE Invoke Image Display parameters, parsed
strictly; every bad value refused by name."""

from __future__ import annotations

import datetime as dt

import pytest

from ehrlaunch.errors import LaunchRefused
from ehrlaunch.iid import parse_cx, parse_iid

# --- HL7 CX ---------------------------------------------------------------------------


def test_cx_with_universal_issuer() -> None:
    ref = parse_cx("123^^^&1.2.3.4&ISO")
    assert ref.patient_id == "123"
    assert ref.issuers == ("1.2.3.4",)
    assert ref.pairs() == (("123", "1.2.3.4"),)


def test_cx_with_namespace_and_universal_issuer_keeps_both_candidates() -> None:
    ref = parse_cx("MRN42^^^HOSP&1.2.3&ISO")
    assert ref.pairs() == (("MRN42", "HOSP"), ("MRN42", "1.2.3"))


def test_cx_without_issuer_matches_only_patients_without_one() -> None:
    assert parse_cx("C3N-00247").pairs() == (("C3N-00247", ""),)


def test_cx_escapes_are_decoded() -> None:
    assert parse_cx("A\\S\\B^^^HOSP").patient_id == "A^B"


@pytest.mark.parametrize("bad", ["", "   ", "^^^HOSP", "x" * 65, "12\x003"])
def test_cx_refuses_unusable_identifiers(bad: str) -> None:
    with pytest.raises(LaunchRefused) as raised:
        parse_cx(bad)
    assert raised.value.code == "bad_patient_id"
    assert "patientID" in raised.value.message


# --- IHE Invoke Image Display (RAD-106) ----------------------------------------------------


def test_iid_study_by_uid_list() -> None:
    iid = parse_iid({"requestType": "STUDY", "studyUID": "1.2.3, 1.2.4"})
    assert iid.request_type == "STUDY"
    assert iid.study_uids == ("1.2.3", "1.2.4")
    assert iid.patient is None


def test_iid_study_by_accession_list() -> None:
    iid = parse_iid({"requestType": "STUDY", "accessionNumber": "A1,A2"})
    assert iid.accession_numbers == ("A1", "A2")


def test_iid_patient_with_every_optional_parameter() -> None:
    iid = parse_iid(
        {
            "requestType": "PATIENT",
            "patientID": "123^^^&1.2.3&ISO",
            "patientName": "DOE^JANE",
            "patientBirthDate": "19600704",
            "lowerDateTime": "2025-01-01T00:00:00Z",
            "upperDateTime": "2026-12-31T23:59:59+01:00",
            "mostRecentResults": "3",
            "modalitiesInStudy": "ct,MR",
            "viewerType": "IHE_BIR",
            "diagnosticQuality": "true",
            "keyImagesOnly": "false",
        }
    )
    assert iid.patient is not None and iid.patient.pairs() == (("123", "1.2.3"),)
    assert iid.patient_name == "DOE^JANE"
    assert iid.patient_birth_date == dt.date(1960, 7, 4)
    assert iid.lower_datetime == dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    assert iid.upper_datetime is not None and iid.upper_datetime.utcoffset() == dt.timedelta(
        hours=1
    )
    assert iid.most_recent_results == 3
    assert iid.modalities == ("CT", "MR")
    assert iid.viewer_type == "IHE_BIR"
    assert iid.diagnostic_quality is True and iid.key_images_only is False


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({}, "requestType is missing"),
        ({"requestType": "SERIES"}, "requestType must be STUDY or PATIENT"),
        ({"requestType": "STUDY"}, "exactly one of studyUID or accessionNumber"),
        ({"requestType": "STUDY", "studyUID": "1.2", "accessionNumber": "A"}, "exactly one"),
        ({"requestType": "STUDY", "studyUID": "1.2.3/../x"}, "studyUID holds an invalid UID"),
        ({"requestType": "STUDY", "studyUID": ","}, "studyUID is empty"),
        ({"requestType": "STUDY", "accessionNumber": "X" * 17}, "accessionNumber"),
        ({"requestType": "STUDY", "studyUID": "1.2", "patientID": "1"}, "not patient parameters"),
        ({"requestType": "PATIENT"}, "needs patientID"),
        ({"requestType": "PATIENT", "patientID": "1", "studyUID": "1.2"}, "not studyUID"),
        (
            {"requestType": "PATIENT", "patientID": "1", "mostRecentResults": "0"},
            "mostRecentResults",
        ),
        (
            {"requestType": "PATIENT", "patientID": "1", "mostRecentResults": "-2"},
            "mostRecentResults",
        ),
        (
            {"requestType": "PATIENT", "patientID": "1", "lowerDateTime": "yesterday"},
            "lowerDateTime",
        ),
        (
            {
                "requestType": "PATIENT",
                "patientID": "1",
                "lowerDateTime": "2026-01-02",
                "upperDateTime": "2026-01-01",
            },
            "lowerDateTime is after upperDateTime",
        ),
        (
            {"requestType": "PATIENT", "patientID": "1", "patientBirthDate": "1960-13-45"},
            "patientBirthDate",
        ),
        (
            {"requestType": "PATIENT", "patientID": "1", "modalitiesInStudy": "CT;DROP"},
            "modalitiesInStudy",
        ),
        (
            {"requestType": "STUDY", "studyUID": "1.2", "diagnosticQuality": "maybe"},
            "diagnosticQuality",
        ),
        ({"requestType": "STUDY", "studyUID": "1.2", "keyImagesOnly": "2"}, "keyImagesOnly"),
        ({"requestType": "STUDY", "studyUID": "1.2", "viewerType": "<b>"}, "viewerType"),
        (
            {"requestType": "STUDY", "studyUID": "1.2", "studyuid": "1.3"},
            "unknown parameter 'studyuid'",
        ),
    ],
)
def test_iid_bad_values_are_refused_by_name(params: dict[str, str], named: str) -> None:
    with pytest.raises(LaunchRefused) as raised:
        parse_iid(params)
    assert named in raised.value.message
    assert raised.value.status == 400


def test_an_iid_parameter_with_nul_is_refused() -> None:
    with pytest.raises(LaunchRefused) as raised:
        parse_iid({"requestType": "STUDY", "accessionNumber": "A\x001"})
    assert raised.value.code == "bad_parameter" and "NUL" in raised.value.message


@pytest.mark.parametrize("count", ["²", "١٢", "0", "1001", "12345"])
def test_most_recent_results_takes_ascii_digits_from_1_to_1000_only(count: str) -> None:
    """'²' passes str.isdigit() and then fails int() with a ValueError."""
    with pytest.raises(LaunchRefused) as raised:
        parse_iid({"requestType": "PATIENT", "patientID": "P1", "mostRecentResults": count})
    assert raised.value.code == "bad_parameter" and "mostRecentResults" in raised.value.message
