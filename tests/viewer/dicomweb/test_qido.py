"""QIDO-RS (PS3.18 §10.6): searches at each level and across levels, every required
matching key Loupe indexes, wildcards, ranges, includefield, limit/offset, fuzzy person
names, scope, audit and the refusals; through dicomweb-client against the live server
(a real session cookie) and through Django's test client where that is simpler."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.test import Client

from tests.conftest import client_for
from tests.factories import PATIENT_A, PATIENT_B, StoredStudy, corpus_files, store_files
from viewer.models import AuditEvent, Instance, Study
from viewer.services import ingest

CT_STUDY_DATE = "20100227"
MINI_PRIOR = "1.2.3"  # ct-prior-pair-mini: TEST_1's two studies, 20100630 and 20150101
MINI_CURRENT = "2.3.4"


def value(item: dict[str, Any], tag: str) -> Any:
    """The first value of ``tag`` in one DICOM JSON object (None when empty or absent)."""
    values = item.get(tag, {}).get("Value")
    return values[0] if values else None


def uids(items: list[dict[str, Any]], tag: str = "0020000D") -> list[str]:
    return [value(item, tag) for item in items]


def web_client(live_server: Any, client: Client) -> DICOMwebClient:
    """dicomweb-client for the live server, with ``client``'s session cookie."""
    session = requests.Session()
    name = settings.SESSION_COOKIE_NAME
    session.cookies.set(name, client.cookies[name].value)
    return DICOMwebClient(url=f"{live_server.url}/dicom-web", session=session)


@pytest.fixture
def mini(shared_dicom: Path) -> list[StoredStudy]:
    """TEST_1's prior (1.2.3, 20100630) and current (2.3.4, 20150101) CT, one slice each."""
    return [store_files([path]) for path in corpus_files(shared_dicom, "ct-prior-pair-mini")]


@pytest.fixture
def names(shared_dicom: Path) -> None:
    """People with non-ASCII names (charset/): Yamada^Tarou=山田^太郎=..., Buc^Jérôme,
    Διονυσιος."""
    for name in ("chrH31.dcm", "chrFren.dcm", "chrGreek.dcm"):
        assert ingest.ingest_file(shared_dicom / "charset" / name).ok


# -- through dicomweb-client, against the live server ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_searches_each_level_and_across_levels(
    live_server: Any, radiologist: Any, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    dicomweb = web_client(live_server, client_for(radiologist))

    studies = dicomweb.search_for_studies()
    assert sorted(uids(studies)) == sorted([patient_a.study, patient_b.study])
    ct = next(s for s in studies if value(s, "0020000D") == patient_a.study)
    assert ct["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": PATIENT_A}]}
    assert value(ct, "00100020") == PATIENT_A
    assert value(ct, "00080020") == CT_STUDY_DATE
    assert value(ct, "00080030") == "161937.171000"
    assert ct["00080061"] == {"vr": "CS", "Value": ["CT"]}
    assert value(ct, "00201206") == 1 and value(ct, "00201208") == 3
    assert value(ct, "00080056") == "ONLINE"
    assert value(ct, "00080005") == "ISO_IR 192"
    # Built from the request's Host (which dicomweb-client sends without the port).
    assert value(ct, "00081190").startswith("http://localhost")
    assert value(ct, "00081190").endswith(f"/dicom-web/studies/{patient_a.study}")
    assert ct["00080090"] == {"vr": "PN"}  # empty, but returned (Type 2)
    assert value(ct, "00100040") == "F"

    series = dicomweb.search_for_series(study_instance_uid=patient_a.study)
    assert uids(series, "0020000E") == [patient_a.series]
    assert value(series[0], "00080060") == "CT"
    assert value(series[0], "00201209") == 3
    assert value(series[0], "00200011") == 2
    assert "00100010" not in series[0]  # a study's own series: no study attributes
    assert value(series[0], "00081190").endswith(
        f"/studies/{patient_a.study}/series/{patient_a.series}"
    )

    everywhere = dicomweb.search_for_series()  # /series: with each study's attributes
    assert sorted(uids(everywhere)) == sorted([patient_a.study, patient_b.study])
    mr = next(s for s in everywhere if value(s, "00080060") == "MR")
    assert mr["00100010"]["Value"][0]["Alphabetic"] == "HFS"

    instances = dicomweb.search_for_instances(
        study_instance_uid=patient_a.study, series_instance_uid=patient_a.series
    )
    assert len(instances) == 3
    assert [value(i, "00200013") for i in instances] == [44, 75, 79]  # by Instance Number
    first = instances[0]
    assert value(first, "00080016") == "1.2.840.10008.5.1.4.1.1.2"
    assert value(first, "00280010") == 512 and value(first, "00280011") == 512
    assert value(first, "00280100") == 16 and value(first, "00280008") == 1
    assert value(first, "00080056") == "ONLINE"
    stored = Instance.objects.get(sop_instance_uid=value(first, "00080018"))
    assert value(first, "00081190").endswith(
        f"/series/{patient_a.series}/instances/{stored.sop_instance_uid}"
    )

    in_study = dicomweb.search_for_instances(study_instance_uid=patient_b.study)
    assert len(in_study) == 2
    assert all(value(i, "00080060") == "MR" for i in in_study)  # the series' attributes
    assert all("00100010" not in i for i in in_study)

    all_instances = dicomweb.search_for_instances()
    assert len(all_instances) == 5
    assert {value(i, "00100020") for i in all_instances} == {PATIENT_A, PATIENT_B}


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_matching_keys(
    live_server: Any,
    radiologist: Any,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
    mini: list[StoredStudy],
) -> None:
    dicomweb = web_client(live_server, client_for(radiologist))

    def studies(**filters: Any) -> list[str]:
        return sorted(uids(dicomweb.search_for_studies(search_filters=filters)))

    assert studies(PatientID=PATIENT_B) == [patient_b.study]
    assert studies(PatientID="TEST*") == [MINI_PRIOR, MINI_CURRENT]
    assert studies(PatientID="C3N-0024?") == [patient_a.study]
    assert studies(PatientName="hfs") == [patient_b.study]  # PN: case-insensitive
    assert studies(PatientName="te*") == [MINI_PRIOR, MINI_CURRENT]
    assert studies(StudyDate=CT_STUDY_DATE) == [patient_a.study]
    assert studies(StudyDate="20100101-20101231") == sorted([patient_a.study, MINI_PRIOR])
    assert studies(StudyDate="20120101-") == sorted([patient_b.study, MINI_CURRENT])
    assert studies(StudyDate="-20100228") == [patient_a.study]
    assert studies(StudyTime="16") == [patient_a.study]  # 16:00:00-16:59:59.999999
    assert studies(StudyTime="1500-1502") == [patient_b.study]
    assert studies(AccessionNumber="1234") == [MINI_PRIOR]
    assert studies(AccessionNumber="1598*") == [patient_a.study]
    assert studies(StudyID="2") == [MINI_CURRENT]
    assert studies(ReferringPhysicianName="dr who") == [MINI_PRIOR, MINI_CURRENT]
    assert studies(ModalitiesInStudy="MR") == [patient_b.study]
    assert studies(ModalitiesInStudy="MR\\CT") == sorted(
        [patient_a.study, patient_b.study, MINI_PRIOR, MINI_CURRENT]
    )
    assert studies(StudyInstanceUID=f"{MINI_PRIOR},{patient_b.study}") == sorted(
        [MINI_PRIOR, patient_b.study]
    )
    assert studies(StudyInstanceUID=[MINI_CURRENT, patient_a.study]) == sorted(
        [MINI_CURRENT, patient_a.study]
    )  # repeated: a list too
    assert studies(StudyDescription="Test CT*") == [MINI_PRIOR, MINI_CURRENT]
    assert studies(StudyDescription="test ct") == []  # LO: case-sensitive
    assert studies(**{"00100020": PATIENT_A}) == [patient_a.study]  # by tag
    assert studies(Modality="MR") == [patient_b.study]  # a series key narrows studies
    assert studies(PatientID="TEST_1", StudyDate="20150101-") == [MINI_CURRENT]

    series = dicomweb.search_for_series(search_filters={"Modality": "CT", "PatientID": "TEST_1"})
    assert sorted(uids(series)) == [MINI_PRIOR, MINI_CURRENT]
    assert uids(dicomweb.search_for_series(search_filters={"SeriesNumber": 3}), "0020000E") == [
        patient_b.series
    ]
    assert dicomweb.search_for_series(
        study_instance_uid=patient_a.study, search_filters={"SeriesInstanceUID": patient_a.series}
    )
    assert not dicomweb.search_for_series(
        study_instance_uid=patient_a.study, search_filters={"SeriesInstanceUID": patient_b.series}
    )

    instances = dicomweb.search_for_instances(search_filters={"InstanceNumber": 75})
    assert len(instances) == 1 and value(instances[0], "0020000D") == patient_a.study
    ct_sop = "1.2.840.10008.5.1.4.1.1.2"
    assert len(dicomweb.search_for_instances(search_filters={"SOPClassUID": ct_sop})) == 5
    one = patient_b.instance
    found = dicomweb.search_for_instances(search_filters={"SOPInstanceUID": one})
    assert uids(found, "00080018") == [one]


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_includefield_limit_offset_fuzzy(
    live_server: Any,
    radiologist: Any,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
    mini: list[StoredStudy],
    names: None,
) -> None:
    dicomweb = web_client(live_server, client_for(radiologist))

    narrow = dicomweb.search_for_series(study_instance_uid=patient_a.study)[0]
    assert "00180015" not in narrow and "00080021" not in narrow
    wide = dicomweb.search_for_series(
        study_instance_uid=patient_a.study, fields=["BodyPartExamined", "00080021"]
    )[0]
    assert "00180015" in wide and value(wide, "00080021") == CT_STUDY_DATE
    every = dicomweb.search_for_instances(
        study_instance_uid=patient_a.study, series_instance_uid=patient_a.series, fields=["all"]
    )[0]
    assert every["00280030"]["vr"] == "DS" and len(every["00280030"]["Value"]) == 2
    assert len(every["00200037"]["Value"]) == 6
    assert value(every, "00281050") is not None and value(every, "00280101") == 12
    # A DICOM attribute Loupe does not index is left out, not refused.
    unindexed = dicomweb.search_for_studies(fields=["InstitutionName"])
    assert unindexed and all("00080080" not in s for s in unindexed)

    # limit and offset: pages in the same order (newest study first), nothing twice.
    everything = uids(dicomweb.search_for_studies())
    assert len(everything) == 7
    pages = [uids(dicomweb.search_for_studies(limit=3, offset=o)) for o in (0, 3, 6)]
    assert [len(p) for p in pages] == [3, 3, 1]
    assert [uid for page in pages for uid in page] == everything
    assert uids(dicomweb.search_for_studies(limit=2, get_remaining=True)) == everything
    assert dicomweb.search_for_studies(offset=100) == []

    # fuzzymatching: each word begins a name component, case-insensitively.
    def fuzzy(name: str) -> list[str]:
        found = dicomweb.search_for_studies(
            fuzzymatching=True, search_filters={"PatientName": name}
        )
        return [value(s, "00100010")["Alphabetic"] for s in found]

    assert fuzzy("aro") == []  # a component's beginning, not its middle
    assert fuzzy("taro") == ["Yamada^Tarou"]
    assert fuzzy("tar yam") == ["Yamada^Tarou"]
    assert fuzzy("jér") == ["Buc^Jérôme"]
    assert fuzzy("ΔΙΟΝ") == ["Διονυσιος"]  # Unicode case folding
    assert fuzzy("ucb") == []
    yamada = dicomweb.search_for_studies(search_filters={"PatientName": "YAMADA^TAROU"})
    assert yamada[0]["00100010"]["Value"][0] == {
        "Alphabetic": "Yamada^Tarou",
        "Ideographic": "山田^太郎",
        "Phonetic": "やまだ^たろう",
    }
    assert dicomweb.search_for_studies(search_filters={"PatientName": "Yamada"}) == []


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_scope_and_authentication(
    live_server: Any, clinician_for_patient_a: Client, patient_b: StoredStudy
) -> None:
    dicomweb = web_client(live_server, clinician_for_patient_a)
    studies = dicomweb.search_for_studies()
    assert {value(s, "00100020") for s in studies} == {PATIENT_A}
    assert dicomweb.search_for_studies(search_filters={"PatientID": PATIENT_B}) == []
    assert {value(i, "00100020") for i in dicomweb.search_for_instances()} == {PATIENT_A}
    with pytest.raises(requests.HTTPError) as refused:
        dicomweb.search_for_series(study_instance_uid=patient_b.study)
    assert refused.value.response is not None and refused.value.response.status_code == 404
    unknown = requests.get(f"{live_server.url}/dicom-web/studies/1.2.3.4/series", timeout=10)
    assert unknown.status_code == 401  # no session at all
    # A DICOMweb client is told it may send a bearer token (viewer.apitokens).
    assert unknown.headers["WWW-Authenticate"].startswith('Bearer realm="loupe"')

    anonymous = DICOMwebClient(url=f"{live_server.url}/dicom-web")
    with pytest.raises(requests.HTTPError) as unauthenticated:
        anonymous.search_for_studies()
    response = unauthenticated.value.response
    assert response is not None and response.status_code == 401


# -- through the test client -------------------------------------------------------------------


pytestmark = pytest.mark.django_db


def test_answers_dicom_json_and_200_with_an_empty_array(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    response = logged_in_client.get("/dicom-web/studies", {"PatientID": "nobody"})
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    assert response.json() == []
    for accept in ("application/dicom+json", "application/json", "*/*", "application/*"):
        assert logged_in_client.get("/dicom-web/studies", HTTP_ACCEPT=accept).status_code == 200
    refused = logged_in_client.get(
        "/dicom-web/studies", HTTP_ACCEPT='multipart/related; type="application/dicom+xml"'
    )
    assert refused.status_code == 406 and "application/dicom+json" in refused.json()["message"]
    assert logged_in_client.get("/dicom-web/series", {"accept": "text/html"}).status_code == 406


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"NoSuchKeyword": "1"}, "NoSuchKeyword"),
        ({"7777EEEE": "1"}, "7777EEEE"),
        ({"StudyDate": "2020"}, "StudyDate"),
        ({"StudyDate": "20201301"}, "StudyDate"),
        ({"StudyDate": "20201231-20200101"}, "ends before it starts"),
        ({"StudyTime": "25"}, "StudyTime"),
        ({"StudyInstanceUID": "1.2.*"}, "StudyInstanceUID"),
        ({"SeriesNumber": "two"}, "SeriesNumber"),
        ({"limit": "-1"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "x"}, "offset"),
        ({"offset": "99999999999999999999"}, "offset"),
        ({"limit": "\u0663"}, "limit"),  # an Arabic-Indic digit is not a number here
        ({"fuzzymatching": "maybe"}, "fuzzymatching"),
        ({"includefield": "NotAnAttribute"}, "NotAnAttribute"),
        ({"InstitutionName": "x"}, "InstitutionName"),
        ({"PerformedProcedureStepStartDate": "2020"}, "PerformedProcedureStepStartDate"),
        ({"RequestAttributeSequence.AccessionNumber": "1"}, "sequence matching"),
        ({"00101002.00100020": "1"}, "sequence matching"),
        ({"TimezoneOffsetFromUTC": "+0100"}, "TimezoneOffsetFromUTC"),
        ({"NumberOfStudyRelatedInstances": "3"}, "cannot be matched"),
    ],
)
def test_a_bad_parameter_is_400_naming_it(
    logged_in_client: Client, params: dict[str, str], named: str
) -> None:
    response = logged_in_client.get("/dicom-web/studies", params)
    assert response.status_code == 400, response.content
    assert named in response.json()["message"]


def test_a_repeated_single_valued_key_is_400(logged_in_client: Client) -> None:
    response = logged_in_client.get("/dicom-web/studies?PatientID=a&PatientID=b")
    assert response.status_code == 400 and "more than once" in response.json()["message"]


def test_retrieve_url_is_absolute_from_the_request(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    study = logged_in_client.get("/dicom-web/studies").json()[0]
    assert study["00081190"] == {
        "vr": "UR",
        "Value": [f"http://testserver/dicom-web/studies/{patient_a.study}"],
    }
    instance = logged_in_client.get(f"/dicom-web/studies/{patient_a.study}/instances").json()[0]
    sop = instance["00080018"]["Value"][0]
    assert instance["00081190"]["Value"] == [
        f"http://testserver/dicom-web/studies/{patient_a.study}/series/{patient_a.series}"
        f"/instances/{sop}"
    ]


def test_empty_value_is_universal_matching_and_returned(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    found = logged_in_client.get(
        f"/dicom-web/studies/{patient_a.study}/series", {"BodyPartExamined": ""}
    ).json()
    assert len(found) == 1 and "00180015" in found[0]
    # A UID list of nothing (repeated empty values, a lone comma) is universal too.
    for query in ("SeriesInstanceUID=&SeriesInstanceUID=", "SeriesInstanceUID=,"):
        assert len(logged_in_client.get(f"/dicom-web/series?{query}").json()) == 1


def test_limit_warns_of_more_and_caps_at_the_maximum(
    logged_in_client: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    response = logged_in_client.get("/dicom-web/studies", {"limit": "1"})
    assert len(response.json()) == 1 and response["Warning"].startswith("299 ")
    assert "additional results" in response["Warning"]
    assert "Warning" not in logged_in_client.get("/dicom-web/studies", {"limit": "2"})
    big = logged_in_client.get("/dicom-web/instances", {"limit": "999999999"})
    assert big.status_code == 200 and len(big.json()) == 5


def test_a_search_is_audited_with_attribute_names_never_values(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    logged_in_client.get(
        "/dicom-web/studies", {"PatientName": "C3N*", "StudyDate": "20100101-", "limit": "5"}
    )
    event = AuditEvent.objects.filter(event_id=AuditEvent.EventId.QUERY).latest("recorded_at")
    assert event.detail == {"filters": ["PatientName", "StudyDate"]}
    assert event.instance_count == 1
    assert "C3N" not in str(event.detail)


def test_an_unknown_and_an_invisible_study_are_the_same_404(
    clinician_for_patient_a: Client, patient_b: StoredStudy
) -> None:
    invisible = clinician_for_patient_a.get(f"/dicom-web/studies/{patient_b.study}/instances")
    unknown = clinician_for_patient_a.get("/dicom-web/studies/1.2.3.4.5/instances")
    assert invisible.status_code == unknown.status_code == 404
    assert invisible.json() == unknown.json()
    series = clinician_for_patient_a.get(
        f"/dicom-web/studies/{patient_b.study}/series/{patient_b.series}/instances"
    )
    assert series.status_code == 404


def test_a_launched_clinician_finds_only_their_patient_at_every_level(
    clinician_for_patient_a: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    for route in ("studies", "series", "instances"):
        found = clinician_for_patient_a.get(f"/dicom-web/{route}").json()
        assert found and {item["0020000D"]["Value"][0] for item in found} == {patient_a.study}
    across = clinician_for_patient_a.get("/dicom-web/series", {"Modality": "MR"}).json()
    assert across == []


def test_an_outsider_finds_nothing(outsider: Any, patient_a: StoredStudy) -> None:
    assert client_for(outsider).get("/dicom-web/studies").json() == []


def test_a_deidentified_share_answers_without_the_patient(
    radiologist: Any, patient_a: StoredStudy, mini: list[StoredStudy]
) -> None:
    from viewer.services import sharing

    created = sharing.create_for_user(
        radiologist, list(Study.objects.filter(study_instance_uid=MINI_PRIOR)), deidentify=True
    )
    guest = Client()
    assert guest.get(f"/s/{created.token}").status_code == 302
    found = guest.get("/dicom-web/studies", {"includefield": "all"}).json()
    assert [item["0020000D"]["Value"][0] for item in found] == [MINI_PRIOR]
    study = found[0]
    assert study["00100010"]["Value"] == [{"Alphabetic": "Anonymous"}]
    assert study["00100020"]["Value"] == ["de-identified"]
    for tag in ("00100030", "00100040", "00080050", "00200010", "00080090"):
        assert "Value" not in study[tag], tag
    assert "Test" not in str(study) and "1234" not in str(study) and "WHO" not in str(study)
    refused = guest.get("/dicom-web/studies", {"PatientName": "Test"})
    assert refused.status_code == 400 and refused.json()["code"] == "deidentified_share"
    instances = guest.get("/dicom-web/instances").json()
    assert len(instances) == 1 and instances[0]["00100020"]["Value"] == ["de-identified"]


def test_study_search_is_a_bounded_number_of_queries(
    logged_in_client: Client,
    patient_a: StoredStudy,
    patient_b: StoredStudy,
    mini: list[StoredStudy],
    django_assert_max_num_queries: Any,
) -> None:
    logged_in_client.get("/dicom-web/studies")  # the session and the audit keys, once
    with django_assert_max_num_queries(6):
        found = logged_in_client.get(
            "/dicom-web/studies", {"ModalitiesInStudy": "CT", "PatientName": "*"}
        ).json()
    assert len(found) == 3
    assert Study.objects.count() == 4


def test_fuzzy_matching_makes_text_case_insensitive(
    logged_in_client: Client, mini: list[StoredStudy]
) -> None:
    def found(**params: str) -> list[str]:
        body = logged_in_client.get("/dicom-web/studies", params).json()
        return sorted(item["0020000D"]["Value"][0] for item in body)

    assert found(StudyDescription="test ct 2") == []
    assert found(StudyDescription="test ct 2", fuzzymatching="true") == [MINI_CURRENT]
    assert found(StudyDescription="TEST*", fuzzymatching="true") == [MINI_PRIOR, MINI_CURRENT]


def test_several_code_values_match_any(
    logged_in_client: Client, patient_a: StoredStudy, patient_b: StoredStudy
) -> None:
    for modalities in ("CT,MR", "CT\\MR", "MR, CT"):
        body = logged_in_client.get("/dicom-web/series", {"Modality": modalities}).json()
        assert sorted(item["00080060"]["Value"][0] for item in body) == ["CT", "MR"]


def test_an_includefield_sequence_path_is_left_out_and_a_bad_one_refused(
    logged_in_client: Client, patient_a: StoredStudy
) -> None:
    fine = logged_in_client.get("/dicom-web/studies", {"includefield": "00081199.00081150"})
    assert fine.status_code == 200 and "00081199" not in fine.json()[0]
    bad = logged_in_client.get("/dicom-web/studies", {"includefield": "00081199.Nonsense"})
    assert bad.status_code == 400 and "Nonsense" in bad.json()["message"]


def test_a_key_loupe_does_not_index_says_so(logged_in_client: Client) -> None:
    response = logged_in_client.get("/dicom-web/series", {"TimezoneOffsetFromUTC": "+0100"})
    assert response.status_code == 400
    assert response.json()["code"] == "unsupported_matching_key"
    assert "§10.6.1.2.1" in response.json()["message"]


def test_head_and_other_methods(logged_in_client: Client, patient_a: StoredStudy) -> None:
    assert logged_in_client.head("/dicom-web/series").status_code == 200
    assert logged_in_client.delete("/dicom-web/series").status_code == 405
