"""FHIR R4 ImagingStudy read and search (``/fhir/ImagingStudy``) on stored corpus studies:
patient A's chest CT (three slices of ct-series) and patient B's brain MR (two slices of
mr-series). Every answer is parsed by fhir.resources 6.1, whose models are FHIR R4
(4.0.1)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pydicom
import pytest
from django.test import Client
from fhir.resources.bundle import Bundle
from fhir.resources.imagingstudy import ImagingStudy
from fhir.resources.operationoutcome import OperationOutcome
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import client_for
from tests.factories import PATIENT_A, PATIENT_B, StoredStudy, changed, corpus_files, ct_small
from viewer.models import AuditEvent, Patient, Study
from viewer.services import ingest

pytestmark = pytest.mark.django_db

SEARCH = "/fhir/ImagingStudy"
DCM = "http://dicom.nema.org/resources/ontology/DCM"
FHIR_JSON = "application/fhir+json"


def fhir_body(response: Any, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.content[:500]
    assert response["Content-Type"].startswith(FHIR_JSON)
    body: dict[str, Any] = json.loads(response.content)
    return body


def imaging_study(response: Any) -> dict[str, Any]:
    body = fhir_body(response)
    ImagingStudy.parse_obj(body)
    return body


def bundle(response: Any) -> dict[str, Any]:
    body = fhir_body(response)
    Bundle.parse_obj(body)
    assert body["type"] == "searchset"
    for entry in body.get("entry", []):
        ImagingStudy.parse_obj(entry["resource"])
        assert entry["fullUrl"] == f"http://testserver/fhir/ImagingStudy/{entry['resource']['id']}"
    return body


def outcome(response: Any, status: int) -> dict[str, Any]:
    body = fhir_body(response, status)
    OperationOutcome.parse_obj(body)
    assert body["issue"][0]["severity"] == "error"
    return body


def ids(body: dict[str, Any]) -> list[str]:
    return [entry["resource"]["id"] for entry in body.get("entry", [])]


def found(client: Client, **params: str) -> list[str]:
    return ids(bundle(client.get(SEARCH, params)))


@pytest.fixture
def radiologist_client(radiologist: Any) -> Client:
    return client_for(radiologist)


@pytest.fixture
def both(patient_a: StoredStudy, patient_b: StoredStudy) -> tuple[StoredStudy, StoredStudy]:
    return patient_a, patient_b


def test_a_read_maps_the_stored_study_its_series_and_instances(
    radiologist_client: Client, patient_a: StoredStudy, shared_dicom: Path
) -> None:
    body = imaging_study(radiologist_client.get(f"{SEARCH}/{patient_a.study}"))
    files = [
        pydicom.dcmread(p, stop_before_pixels=True)
        for p in corpus_files(shared_dicom, "ct-series", 3)
    ]
    first = files[0]
    assert body["id"] == first.StudyInstanceUID == patient_a.study
    assert body["status"] == "available"
    assert body["identifier"][0] == {
        "use": "official",
        "system": "urn:dicom:uid",
        "value": f"urn:oid:{first.StudyInstanceUID}",
    }
    accession = body["identifier"][1]
    assert accession["value"] == first.AccessionNumber
    assert accession["type"]["coding"][0]["code"] == "ACSN"
    assert "system" not in accession  # the corpus sends no Issuer of Accession Number
    assert body["modality"] == [{"system": DCM, "code": "CT"}]
    patient = Patient.objects.get(patient_id=PATIENT_A)
    assert body["subject"]["reference"] == f"Patient/{patient.pk}"
    assert body["subject"]["identifier"]["value"] == PATIENT_A
    assert "system" not in body["subject"]["identifier"]  # no issuer in the corpus
    assert "display" not in body["subject"]
    assert body["started"] == "2010-02-27T16:19:37+00:00"  # StudyDate/Time, TIME_ZONE UTC
    assert body["numberOfSeries"] == 1 and body["numberOfInstances"] == 3
    assert body["description"] == first.StudyDescription
    assert body["endpoint"] == [
        {"reference": "Endpoint/dicomweb-wado-rs"},
        {"reference": "Endpoint/ihe-iid"},
    ]
    (series,) = body["series"]
    assert series["uid"] == first.SeriesInstanceUID
    assert series["number"] == int(first.SeriesNumber)
    assert series["modality"] == {"system": DCM, "code": "CT"}
    assert series["description"] == first.SeriesDescription
    assert series["numberOfInstances"] == 3
    assert first.BodyPartExamined == "CHEST"
    assert series["bodySite"] == {
        "system": "http://snomed.info/sct",
        "code": "43799004",
        "display": "Chest",
    }
    by_number = sorted(files, key=lambda d: int(d.InstanceNumber))
    assert [i["uid"] for i in series["instance"]] == [d.SOPInstanceUID for d in by_number]
    assert [i["number"] for i in series["instance"]] == [int(d.InstanceNumber) for d in by_number]
    assert series["instance"][0]["sopClass"] == {
        "system": "urn:ietf:rfc:3986",
        "code": "urn:oid:1.2.840.10008.5.1.4.1.1.2",
        "display": "CT Image Storage",
    }
    # A read is recorded as the study's instances accessed (PS3.15 A.5.3.6).
    row = AuditEvent.objects.get(event_id=AuditEvent.EventId.INSTANCES_ACCESSED)
    assert row.study_uids == [patient_a.study] and row.patient_id == PATIENT_A
    assert row.outcome == AuditEvent.Outcome.SUCCESS and row.user_id == "radiologist"


def test_format_json_and_accept_json_are_answered_xml_is_406(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    url = f"{SEARCH}/{patient_a.study}"
    imaging_study(radiologist_client.get(url, {"_format": "json"}))
    imaging_study(radiologist_client.get(url, {"_format": "application/fhir+json"}))
    imaging_study(radiologist_client.get(url, HTTP_ACCEPT="application/json"))
    imaging_study(radiologist_client.get(url, HTTP_ACCEPT="text/html, */*;q=0.8"))
    for asked in ({"_format": "xml"}, {"_format": "application/fhir+xml"}):
        body = outcome(radiologist_client.get(url, asked), 406)
        assert "_format" in body["issue"][0]["diagnostics"]
    outcome(radiologist_client.get(url, HTTP_ACCEPT="application/fhir+xml"), 406)
    outcome(radiologist_client.get(SEARCH, HTTP_ACCEPT="application/xml"), 406)


def test_an_unknown_and_an_invisible_study_answer_the_same_404(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    client = clinician_for_patient_a
    imaging_study(client.get(f"{SEARCH}/{patient_a.study}"))
    invisible = outcome(client.get(f"{SEARCH}/{patient_b.study}"), 404)
    unknown = outcome(client.get(f"{SEARCH}/{generate_uid()}"), 404)
    assert invisible == unknown
    assert invisible["issue"][0]["code"] == "not-found"
    assert outcome(client.get(f"{SEARCH}/not_a_fhir_id!"), 404) == unknown
    refused = AuditEvent.objects.filter(
        outcome=AuditEvent.Outcome.MINOR_FAILURE, study_uids=[patient_b.study]
    )
    assert refused.count() == 1 and refused.get().patient_id == PATIENT_B


def test_a_launched_clinician_finds_only_the_launched_patient(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    client = clinician_for_patient_a
    assert found(client) == [patient_a.study]
    assert found(client, identifier=f"urn:oid:{patient_b.study}") == []
    assert found(client, **{"subject:identifier": PATIENT_B}) == []
    assert found(client, modality="MR") == []
    assert found(client, modality="CT") == [patient_a.study]


def test_search_answers_every_visible_study_newest_first_with_total_and_self_link(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, b = both
    body = bundle(radiologist_client.get(SEARCH))
    assert body["total"] == 2
    assert ids(body) == [b.study, a.study]  # 2022 before 2010
    assert all(e["search"] == {"mode": "match"} for e in body["entry"])
    relations = {link["relation"]: link["url"] for link in body["link"]}
    assert relations["self"].startswith("http://testserver/fhir/ImagingStudy?")
    assert "next" not in relations and "previous" not in relations


def test_search_by_identifier_study_uid_and_accession(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, b = both
    c = radiologist_client
    assert found(c, identifier=f"urn:oid:{a.study}") == [a.study]
    assert found(c, identifier=f"urn:dicom:uid|urn:oid:{b.study}") == [b.study]
    assert found(c, identifier=f"urn:oid:{a.study},urn:oid:{b.study}") == [b.study, a.study]
    assert found(c, identifier="1598252606449858") == [a.study]  # A's accession number
    assert found(c, identifier="|1598252606449858") == [a.study]  # ... stored with no issuer
    assert found(c, identifier="urn:oid:1.2.3|1598252606449858") == []
    assert found(c, identifier=f"urn:oid:{generate_uid()}") == []
    assert found(c, _id=a.study) == [a.study]
    of_type = "identifier:of-type"
    v2 = "http://terminology.hl7.org/CodeSystem/v2-0203"
    assert found(c, **{of_type: f"{v2}|ACSN|1598252606449858"}) == [a.study]
    assert found(c, **{of_type: f"{v2}|MR|1598252606449858"}) == []


def test_search_by_patient_and_subject_identifier(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, b = both
    c = radiologist_client
    pk_a = Patient.objects.get(patient_id=PATIENT_A).pk
    assert found(c, patient=str(pk_a)) == [a.study]
    assert found(c, patient=f"Patient/{pk_a}") == [a.study]
    assert found(c, patient=f"http://testserver/fhir/Patient/{pk_a}") == [a.study]
    assert found(c, patient="999999") == []
    assert found(c, **{"subject:identifier": PATIENT_A}) == [a.study]
    assert found(c, **{"subject:identifier": f"|{PATIENT_B}"}) == [b.study]
    assert found(c, **{"subject:identifier": f"urn:oid:1.2.3|{PATIENT_B}"}) == []
    # Parameters together are ANDed.
    assert found(c, patient=str(pk_a), modality="MR") == []


def test_search_by_modality(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, b = both
    c = radiologist_client
    assert found(c, modality="CT") == [a.study]
    assert found(c, modality=f"{DCM}|MR") == [b.study]
    assert found(c, modality="CT,MR") == [b.study, a.study]
    assert found(c, modality="http://snomed.info/sct|CT") == []
    assert found(c, modality="US") == []


@pytest.mark.parametrize(
    ("started", "which"),
    [
        ("ge2020-01-01", "b"),
        ("gt2020", "b"),
        ("lt2020", "a"),
        ("le2010-02-27", "a"),
        ("2010-02-27", "a"),
        ("eq2010-02", "a"),
        ("2010", "a"),
        ("eq2010-02-27T16:19:37", "a"),
        ("eq2010-02-27T16:19", "a"),
        ("eq2010-02-27T16:20", ""),
        ("gt2010-02-27T16:19:37", "b"),
        ("lt2010-02-27T16:19:37", ""),
        ("ge2010-02-27T16:19:37", "ab"),
        ("le2010-02-27T16:19:37", "a"),
        ("ne2010-02-27", "b"),
        ("2010-02-27T17:19:37+01:00", "a"),  # the same moment in another zone
        ("2010-02-27T16:19:37Z", "a"),
        ("lt2000,gt2021", "b"),
        ("2011", ""),
    ],
)
def test_search_by_started_with_prefixes_and_partial_dates(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy], started: str, which: str
) -> None:
    a, b = both
    expected = [s.study for s, name in ((b, "b"), (a, "a")) if name in which]
    assert found(radiologist_client, started=started) == expected


def test_started_repeated_is_a_range(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, _ = both
    response = radiologist_client.get(SEARCH, {"started": ["ge2010-01-01", "le2010-12-31"]})
    assert ids(bundle(response)) == [a.study]


def test_a_study_without_a_time_matches_by_its_day(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    data = changed(
        ct_small(),
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        StudyDate="20150301",
        StudyTime="",
    )
    result = ingest.ingest_bytes(data, source="test")
    assert result.ok, result
    uid = result.study_instance_uid
    c = radiologist_client
    body = imaging_study(c.get(f"{SEARCH}/{uid}"))
    assert body["started"] == "2015-03-01"
    assert uid in found(c, started="2015-03-01")
    assert uid in found(c, started="ge2015-03-01T12:00")  # its day reaches past noon
    assert uid in found(c, started="le2015-03-01T12:00")
    assert uid not in found(c, started="eq2015-03-01T12:00")  # a day is not in one minute
    assert uid not in found(c, started="gt2015-03-01")
    assert uid not in found(c, started="lt2015-03-01")
    assert uid in found(c, started="gt2015-02-28")


def test_paging_with_count_offset_and_links(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, b = both
    first = bundle(radiologist_client.get(SEARCH, {"_count": "1"}))
    assert first["total"] == 2 and ids(first) == [b.study]
    links = {link["relation"]: link["url"] for link in first["link"]}
    assert "previous" not in links
    following = urlsplit(links["next"])
    second = bundle(radiologist_client.get(f"{following.path}?{following.query}"))
    assert second["total"] == 2 and ids(second) == [a.study]
    links = {link["relation"]: link["url"] for link in second["link"]}
    assert "next" not in links and "_offset=0" in links["previous"]
    assert "_offset=1" in links["last"]
    only_total = bundle(radiologist_client.get(SEARCH, {"_count": "0"}))
    assert only_total["total"] == 2 and "entry" not in only_total
    capped = bundle(radiologist_client.get(SEARCH, {"_count": "100000"}))
    assert len(ids(capped)) == 2


def test_a_search_is_audited_as_a_query_with_parameter_names_only(
    radiologist_client: Client, both: tuple[StoredStudy, StoredStudy]
) -> None:
    a, _ = both
    found(radiologist_client, **{"subject:identifier": PATIENT_A, "modality": "CT"})
    query = AuditEvent.objects.get(event_id=AuditEvent.EventId.QUERY)
    assert query.detail["filters"] == ["modality", "subject:identifier"]
    assert query.instance_count == 1
    assert PATIENT_A not in json.dumps(query.detail)
    accessed = AuditEvent.objects.get(event_id=AuditEvent.EventId.INSTANCES_ACCESSED)
    assert accessed.study_uids == [a.study]


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"name": "Smith"}, "name"),
        ({"_sort": "started"}, "_sort"),
        ({"identifier:text": "x"}, "identifier:text"),
        ({"identifier:of-type": "ACSN|1"}, "identifier:of-type"),
        ({"subject": "Patient/1"}, "subject"),
        ({"started": "xx2020"}, "started"),
        ({"started": "2020-13"}, "started"),
        ({"started": "2020-02-30"}, "started"),
        ({"started": "yesterday"}, "started"),
        ({"_count": "-1"}, "_count"),
        ({"_count": "ten"}, "_count"),
        ({"_offset": "1.5"}, "_offset"),
        ({"patient": "Group/1"}, "patient"),
        ({"patient": "not an id"}, "patient"),
        ({"identifier": "urn:dicom:uid|1.2.3"}, "identifier"),
        ({"identifier": "a|b|c"}, "identifier"),
        ({"modality": ""}, "modality"),
    ],
)
def test_bad_parameters_are_400_naming_them(
    radiologist_client: Client, patient_a: StoredStudy, params: dict[str, str], named: str
) -> None:
    body = outcome(radiologist_client.get(SEARCH, params), 400)
    assert body["issue"][0]["diagnostics"].startswith(f"{named}:")
    assert body["issue"][0]["code"] == "invalid"


def test_a_read_with_a_search_parameter_is_400(
    radiologist_client: Client, patient_a: StoredStudy
) -> None:
    body = outcome(radiologist_client.get(f"{SEARCH}/{patient_a.study}", {"modality": "CT"}), 400)
    assert "modality" in body["issue"][0]["diagnostics"]


def test_without_a_session_every_resource_but_metadata_is_401(
    client: Client, patient_a: StoredStudy
) -> None:
    for url in (SEARCH, f"{SEARCH}/{patient_a.study}", "/fhir/Endpoint/dicomweb-wado-rs"):
        response = client.get(url)
        body = outcome(response, 401)
        assert body["issue"][0]["code"] == "login"
        assert response["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/fhir/metadata").status_code == 200
    refused = AuditEvent.objects.filter(outcome=AuditEvent.Outcome.MINOR_FAILURE)
    assert refused.filter(study_uids=[patient_a.study]).exists()


def test_an_account_with_no_role_finds_nothing(outsider: Any, patient_a: StoredStudy) -> None:
    client = client_for(outsider)
    body = bundle(client.get(SEARCH))
    assert body["total"] == 0 and "entry" not in body
    outcome(client.get(f"{SEARCH}/{patient_a.study}"), 404)


def test_only_get_is_allowed(radiologist_client: Client, patient_a: StoredStudy) -> None:
    response = radiologist_client.post(SEARCH, {}, content_type=FHIR_JSON)
    outcome(response, 405)
    assert response["Allow"] == "GET, HEAD"
    outcome(radiologist_client.delete(f"{SEARCH}/{patient_a.study}"), 405)


def test_an_unknown_resource_type_is_404(radiologist_client: Client) -> None:
    outcome(radiologist_client.get("/fhir/Patient/1"), 404)
    outcome(radiologist_client.get("/fhir/"), 404)


def _issued(**values: Any) -> str:
    data = changed(
        ct_small(),
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
        SOPInstanceUID=generate_uid(),
        **values,
    )
    dataset = pydicom.dcmread(io.BytesIO(data))
    assert dataset.PatientID == values["PatientID"]
    result = ingest.ingest_bytes(data, source="test")
    assert result.ok, result
    return str(result.study_instance_uid)


def test_issuers_become_identifier_systems_and_are_searchable(
    radiologist_client: Client,
) -> None:
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = "1.2.840.99999.7"
    qualifiers.UniversalEntityIDType = "ISO"
    accession_issuer = Dataset()
    accession_issuer.LocalNamespaceEntityID = "RIS North"
    with_oid = _issued(
        PatientID="QX-1",
        PatientName="Quaresma^Benedita",
        PatientBirthDate="19580314",
        IssuerOfPatientID="Zeta MRN",
        IssuerOfPatientIDQualifiersSequence=[qualifiers],
        AccessionNumber="ACC9",
        IssuerOfAccessionNumberSequence=[accession_issuer],
    )
    local_only = _issued(PatientID="QX-2", IssuerOfPatientID="Zeta MRN")
    c = radiologist_client
    body = imaging_study(c.get(f"{SEARCH}/{with_oid}"))
    assert body["subject"]["identifier"]["system"] == "urn:oid:1.2.840.99999.7"
    assert body["subject"]["identifier"]["value"] == "QX-1"
    assert "Quaresma" not in json.dumps(body) and "1958-03-14" not in json.dumps(body)
    accession = body["identifier"][1]
    assert accession["system"] == "urn:loupe:issuer:RIS%20North"
    assert accession["value"] == "ACC9"
    local = imaging_study(c.get(f"{SEARCH}/{local_only}"))
    assert local["subject"]["identifier"]["system"] == "urn:loupe:issuer:Zeta%20MRN"
    subject = "subject:identifier"
    assert found(c, **{subject: "urn:oid:1.2.840.99999.7|QX-1"}) == [with_oid]
    assert found(c, **{subject: "urn:loupe:issuer:Zeta%20MRN|QX-1"}) == [with_oid]
    assert found(c, **{subject: "urn:loupe:issuer:Zeta%20MRN|QX-2"}) == [local_only]
    assert found(c, **{subject: "urn:oid:1.2.840.99999.7|QX-2"}) == []
    assert found(c, **{subject: "|QX-1"}) == []  # it has an issuer
    assert sorted(found(c, **{subject: "urn:loupe:issuer:Zeta%20MRN|"})) == sorted(
        [with_oid, local_only]
    )
    assert found(c, identifier="urn:loupe:issuer:RIS%20North|ACC9") == [with_oid]
    assert found(c, identifier="urn:loupe:issuer:RIS%20South|ACC9") == []
    assert found(c, identifier="|ACC9") == []
    assert Study.objects.get(study_instance_uid=with_oid).issuer_of_accession_number == "RIS North"
