"""QIDO-RS on the series keys of PS3.18 Table 10.6.1-5 that are not plain columns of a
series: (0040,0244)/(0040,0245) Performed Procedure Step Start Date/Time and the
(0040,0275) Request Attributes Sequence items' (0040,0009) Scheduled Procedure Step ID and
(0040,1001) Requested Procedure ID. Real CT slices of the corpus, given these attributes
and stored through ingest; searched through Django's test client at the series, instance
and study levels, and once through dicomweb-client against the live server."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from django.conf import settings
from django.test import Client
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import client_for
from tests.factories import StoredStudy, changed, corpus_files
from viewer.models import AuditEvent, Study
from viewer.services import ingest

pytestmark = pytest.mark.django_db

SPS = "RequestAttributesSequence.ScheduledProcedureStepID"
RP = "RequestAttributesSequence.RequestedProcedureID"


@dataclass(frozen=True)
class Procedures:
    """Patient A's CT study with two more series made from its slices: ``first`` (two
    instances; PPS 20240305 08:15, items SPS-1001/RP-77 and SPS-1002/RP-78 on the first
    instance, SPS-9999/RP-99 on the second) and ``second`` (PPS 20240410 14:30:00.5, item
    SPS-2001/RP-77); ``ct`` is the study's own series (PPS 20100227 16:19:37.171, no
    items), ``mr`` patient B's (PPS 20220407 15:01:38.082, no items)."""

    study: str
    first: str
    second: str
    ct: str
    mr: str


def item(scheduled: str, requested: str) -> Dataset:
    found = Dataset()
    found.ScheduledProcedureStepID = scheduled
    found.RequestedProcedureID = requested
    return found


def store(path: Path, **values: Any) -> None:
    data = changed(path.read_bytes(), SOPInstanceUID=generate_uid(), **values)
    result = ingest.ingest_bytes(data, source=path.name)
    assert result.ok, result.as_dict()


@pytest.fixture
def procedures(shared_dicom: Path, patient_a: StoredStudy, patient_b: StoredStudy) -> Procedures:
    slices = corpus_files(shared_dicom, "ct-series", 6)[3:]
    first, second = generate_uid(), generate_uid()
    common = {"SeriesInstanceUID": first, "SeriesNumber": 101}
    store(
        slices[0],
        **common,
        PerformedProcedureStepStartDate="20240305",
        PerformedProcedureStepStartTime="081500",
        RequestAttributesSequence=[item("SPS-1001", "RP-77"), item("SPS-1002", "RP-78")],
    )
    store(  # a later instance of the series: its values are not merged into the index
        slices[1],
        **common,
        PerformedProcedureStepStartDate="20240306",
        RequestAttributesSequence=[item("SPS-9999", "RP-99")],
    )
    store(
        slices[2],
        SeriesInstanceUID=second,
        SeriesNumber=102,
        PerformedProcedureStepStartDate="20240410",
        PerformedProcedureStepStartTime="143000.5",
        RequestAttributesSequence=[item("SPS-2001", "RP-77")],
    )
    return Procedures(patient_a.study, first, second, patient_a.series, patient_b.series)


def value(found: dict[str, Any], tag: str) -> Any:
    values = found.get(tag, {}).get("Value")
    return values[0] if values else None


def series_uids(client: Client, route: str = "/dicom-web/series", **params: str) -> list[str]:
    response = client.get(route, params)
    assert response.status_code == 200, response.content
    return sorted(value(found, "0020000E") for found in response.json())


def test_an_id_matches_if_any_item_of_the_series_has_it(
    logged_in_client: Client, procedures: Procedures
) -> None:
    p = procedures
    assert series_uids(logged_in_client, **{SPS: "SPS-1002"}) == [p.first]
    assert series_uids(logged_in_client, **{SPS: "SPS-1001"}) == [p.first]
    assert series_uids(logged_in_client, **{RP: "RP-77"}) == sorted([p.first, p.second])
    assert series_uids(logged_in_client, **{RP: "RP-78"}) == [p.first]
    # PS3.18 Table 10.6.1-5's name for the sequence is taken too.
    named = "RequestAttributeSequence.ScheduledProcedureStepID"
    assert series_uids(logged_in_client, **{named: "SPS-2001"}) == [p.second]
    # Within the study, and both IDs at once (each must match).
    route = f"/dicom-web/studies/{p.study}/series"
    assert series_uids(logged_in_client, route, **{SPS: "SPS-1001", RP: "RP-77"}) == [p.first]


def test_wildcards_match_each_value_never_across_two(
    logged_in_client: Client, procedures: Procedures
) -> None:
    p = procedures
    assert series_uids(logged_in_client, **{SPS: "SPS-100?"}) == [p.first]
    assert series_uids(logged_in_client, **{SPS: "SPS-*"}) == sorted([p.first, p.second])
    assert series_uids(logged_in_client, **{SPS: "*01"}) == sorted([p.first, p.second])
    assert series_uids(logged_in_client, **{SPS: "*02"}) == [p.first]
    assert series_uids(logged_in_client, **{SPS: "SPS-1001*1002"}) == []  # not across items
    assert series_uids(logged_in_client, **{RP: "RP-7?"}) == sorted([p.first, p.second])
    assert series_uids(logged_in_client, **{RP: "R.*"}) == []  # a dot is a dot


def test_the_tag_form(logged_in_client: Client, procedures: Procedures) -> None:
    p = procedures
    assert series_uids(logged_in_client, **{"00400275.00400009": "SPS-2001"}) == [p.second]
    assert series_uids(logged_in_client, **{"00400275.00401001": "RP-78"}) == [p.first]
    assert series_uids(logged_in_client, **{"00400275.RequestedProcedureID": "RP-78"}) == [p.first]
    assert series_uids(logged_in_client, **{"00400244": "20240410"}) == [p.second]


def test_no_match(logged_in_client: Client, procedures: Procedures) -> None:
    assert series_uids(logged_in_client, **{RP: "RP-7"}) == []  # a whole value, not a part
    assert series_uids(logged_in_client, **{SPS: "sps-1001"}) == []  # SH: case-sensitive
    assert series_uids(logged_in_client, **{SPS: "SPS-9999"}) == []  # a later instance's
    assert series_uids(logged_in_client, PerformedProcedureStepStartDate="20240306") == []
    assert series_uids(logged_in_client, PerformedProcedureStepStartDate="20250101-") == []
    fuzzy = series_uids(logged_in_client, **{SPS: "sps-1001", "fuzzymatching": "true"})
    assert fuzzy == [procedures.first]  # fuzzymatching: text case-insensitive


def test_performed_procedure_step_dates_and_times_take_ranges(
    logged_in_client: Client, procedures: Procedures
) -> None:
    p = procedures

    def found(**params: str) -> list[str]:
        return series_uids(logged_in_client, **params)

    assert found(PerformedProcedureStepStartDate="20240305") == [p.first]
    assert found(PerformedProcedureStepStartDate="20240301-20240331") == [p.first]
    assert found(PerformedProcedureStepStartDate="20240101-") == sorted([p.first, p.second])
    assert found(PerformedProcedureStepStartDate="-20231231") == sorted([p.ct, p.mr])
    assert found(PerformedProcedureStepStartDate="20100227") == [p.ct]
    assert found(PerformedProcedureStepStartTime="14") == [p.second]  # 14:00-14:59:59.999999
    assert found(PerformedProcedureStepStartTime="0800-0900") == [p.first]
    assert found(PerformedProcedureStepStartTime="143000.5") == [p.second]
    assert found(PerformedProcedureStepStartTime="1500-") == sorted([p.ct, p.mr])
    assert found(
        PerformedProcedureStepStartDate="20240101-", PerformedProcedureStepStartTime="-1200"
    ) == [p.first]


def test_series_answers_carry_them_when_known(
    logged_in_client: Client, procedures: Procedures
) -> None:
    p = procedures
    answers = logged_in_client.get(f"/dicom-web/studies/{p.study}/series").json()
    by_uid = {value(a, "0020000E"): a for a in answers}
    first = by_uid[p.first]
    assert first["00400244"] == {"vr": "DA", "Value": ["20240305"]}
    assert first["00400245"] == {"vr": "TM", "Value": ["081500"]}
    assert first["00400275"] == {
        "vr": "SQ",
        "Value": [
            {
                "00400009": {"vr": "SH", "Value": ["SPS-1001"]},
                "00401001": {"vr": "SH", "Value": ["RP-77"]},
            },
            {
                "00400009": {"vr": "SH", "Value": ["SPS-1002"]},
                "00401001": {"vr": "SH", "Value": ["RP-78"]},
            },
        ],
    }
    assert value(by_uid[p.second], "00400245") == "143000.500000"
    ct = by_uid[p.ct]  # its own series, without Request Attributes: left out, not empty
    assert value(ct, "00400244") == "20100227" and value(ct, "00400245") == "161937.171000"
    assert "00400275" not in ct
    # Asked for: returned, empty where there is nothing.
    for include in ("RequestAttributesSequence", "00400275", "00400275.00400009"):
        asked = logged_in_client.get(
            f"/dicom-web/studies/{p.study}/series",
            {"SeriesInstanceUID": p.ct, "includefield": include},
        ).json()
        assert asked[0]["00400275"] == {"vr": "SQ"}, include
    # Matched on universally: returned too.
    universal = logged_in_client.get("/dicom-web/series", {SPS: "*"}).json()
    assert len(universal) == 4 and all("00400275" in a for a in universal)
    # A series' instances: returned when asked with includefield (PS3.18 §10.6.3.3.3).
    instances = logged_in_client.get(f"/dicom-web/studies/{p.study}/series/{p.first}/instances")
    assert len(instances.json()) == 2 and all("00400275" not in i for i in instances.json())
    asked = logged_in_client.get(
        f"/dicom-web/studies/{p.study}/series/{p.first}/instances",
        {"includefield": "RequestAttributesSequence"},
    ).json()
    assert [len(i["00400275"]["Value"]) for i in asked] == [2, 2]


def test_instances_across_series_and_studies_are_narrowed(
    logged_in_client: Client, procedures: Procedures
) -> None:
    p = procedures
    in_study = logged_in_client.get(f"/dicom-web/studies/{p.study}/instances", {SPS: "SPS-1001"})
    assert in_study.status_code == 200
    assert {value(i, "0020000E") for i in in_study.json()} == {p.first}
    assert len(in_study.json()) == 2  # both of its instances
    assert value(in_study.json()[0], "00400275") is not None  # the matched series key
    everywhere = logged_in_client.get(
        "/dicom-web/instances", {"PerformedProcedureStepStartDate": "20240410"}
    ).json()
    assert [value(i, "0020000E") for i in everywhere] == [p.second]
    assert value(everywhere[0], "00400244") == "20240410"
    studies = logged_in_client.get("/dicom-web/studies", {RP: "RP-78"}).json()
    assert [value(s, "0020000D") for s in studies] == [p.study]
    assert "00400275" not in studies[0]  # a series attribute is not a study's
    assert logged_in_client.get("/dicom-web/studies", {RP: "RP-99"}).json() == []


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"OtherPatientIDsSequence.PatientID": "1"}, "sequence matching"),
        ({"00101002.00100020": "1"}, "sequence matching"),
        ({"RequestAttributesSequence.AccessionNumber": "1"}, "sequence matching"),
        ({"RequestAttributesSequence.ScheduledProcedureStepID.X": "1"}, "'X'"),
        ({"RequestAttributesSequence.Nonsense": "1"}, "Nonsense"),
        ({"ScheduledProcedureStepID": "SPS-1001"}, SPS),
        ({"00401001": "RP-77"}, RP),
        ({"RequestAttributesSequence": "SPS-1001"}, "is a sequence"),
        ({SPS: "SPS-1001\\SPS-1002"}, "backslash"),
        ({"PerformedProcedureStepStartDate": "20241301"}, "PerformedProcedureStepStartDate"),
        ({"PerformedProcedureStepStartTime": "1430-1200"}, "ends before it starts"),
    ],
)
def test_other_sequence_keys_and_bad_values_are_400(
    logged_in_client: Client, procedures: Procedures, params: dict[str, str], named: str
) -> None:
    response = logged_in_client.get("/dicom-web/series", params)
    assert response.status_code == 400, response.content
    assert named in response.json()["message"]
    if "sequence matching" in named:
        assert response.json()["code"] == "unsupported_matching_key"


def test_an_other_sequence_in_includefield_is_left_out(
    logged_in_client: Client, procedures: Procedures
) -> None:
    response = logged_in_client.get(
        "/dicom-web/series", {"SeriesInstanceUID": procedures.first, "includefield": "00081199"}
    )
    assert response.status_code == 200 and "00081199" not in response.json()[0]


def test_a_search_on_them_is_audited_by_name(
    logged_in_client: Client, procedures: Procedures
) -> None:
    logged_in_client.get(
        "/dicom-web/series", {SPS: "SPS-1*", "PerformedProcedureStepStartDate": ""}
    )
    event = AuditEvent.objects.filter(event_id=AuditEvent.EventId.QUERY).latest("recorded_at")
    assert event.detail == {"filters": ["PerformedProcedureStepStartDate", SPS]}
    assert "SPS-1" not in str(event.detail)


def test_a_deidentified_share_keeps_the_dates_and_hides_the_ids(
    radiologist: Any, procedures: Procedures
) -> None:
    from viewer.services import sharing

    study = Study.objects.get(study_instance_uid=procedures.study)
    created = sharing.create_for_user(radiologist, [study], deidentify=True)
    guest = Client()
    assert guest.get(f"/s/{created.token}").status_code == 302
    answers = guest.get(f"/dicom-web/studies/{procedures.study}/series").json()
    first = next(a for a in answers if value(a, "0020000E") == procedures.first)
    assert value(first, "00400244") == "20240305"  # Retain Longitudinal Temporal (E.3.6)
    assert "00400275" not in first and "SPS-1001" not in str(answers)
    every = guest.get("/dicom-web/series", {"includefield": "all"}).json()
    assert "SPS-" not in str(every) and "RP-" not in str(every)
    refused = guest.get("/dicom-web/series", {SPS: "SPS-1001"})
    assert refused.status_code == 400 and refused.json()["code"] == "deidentified_share"
    dated = guest.get("/dicom-web/series", {"PerformedProcedureStepStartDate": "20240305"})
    assert [value(a, "0020000E") for a in dated.json()] == [procedures.first]


# -- through dicomweb-client, against the live server ---------------------------------------


@pytest.mark.django_db(transaction=True)
def test_dicomweb_client_searches_on_them(
    live_server: Any, radiologist: Any, procedures: Procedures
) -> None:
    session = requests.Session()
    name = settings.SESSION_COOKIE_NAME
    session.cookies.set(name, client_for(radiologist).cookies[name].value)
    dicomweb = DICOMwebClient(url=f"{live_server.url}/dicom-web", session=session)
    p = procedures

    def found(study: str | None = None, **filters: Any) -> list[str]:
        answers = dicomweb.search_for_series(study_instance_uid=study, search_filters=filters)
        return sorted(value(a, "0020000E") for a in answers)

    assert found(**{SPS: "SPS-2*"}) == [p.second]
    assert found(p.study, **{RP: "RP-77"}) == sorted([p.first, p.second])
    assert found(**{"00400275.00401001": "RP-78"}) == [p.first]
    assert found(PerformedProcedureStepStartDate="20240301-20240430") == sorted([p.first, p.second])
    assert found(PerformedProcedureStepStartTime="08") == [p.first]
    assert found(**{SPS: "nothing"}) == []
    answer = dicomweb.search_for_series(search_filters={"SeriesInstanceUID": p.second})[0]
    assert answer["00400275"]["Value"] == [
        {
            "00400009": {"vr": "SH", "Value": ["SPS-2001"]},
            "00401001": {"vr": "SH", "Value": ["RP-77"]},
        }
    ]
    with pytest.raises(requests.HTTPError) as refused:
        dicomweb.search_for_series(search_filters={"OtherPatientIDsSequence.PatientID": "x"})
    assert refused.value.response is not None and refused.value.response.status_code == 400
