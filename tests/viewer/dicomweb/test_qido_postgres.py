"""QIDO-RS on PostgreSQL under gunicorn: the wildcard, person-name and fuzzy matching are
regular expressions, which SQLite runs with Python's ``re`` and PostgreSQL with its own
engine; the same searches must find the same studies on both. So is the matching of a
Request Attributes ID among a series' backslash-separated values."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.conftest import PASSWORD
from tests.factories import changed
from tests.servers import Server, manage, migrated_database, start_loupe

pytestmark = pytest.mark.postgres
TIMEOUT = 30


def sign_in(url: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{url}/login/", timeout=TIMEOUT)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert token is not None
    answer = session.post(
        f"{url}/login/",
        data={"username": "radiologist", "password": PASSWORD, "csrfmiddlewaretoken": token[1]},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert answer.status_code == 302, answer.text[:300]
    return session


@pytest.fixture
def loupe(
    postgres: Server, shared_dicom: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[DICOMwebClient]:
    # A database of each test's own (named after it: the server lives for the session).
    database = "qido_" + request.node.name.removeprefix("test_")[:40]
    env = migrated_database(postgres, database, tmp_path / "data")
    env.update(
        {
            "LOUPE_SECRET_KEY": "qido-postgres-test-" + "k" * 40,
            "LOUPE_EMBED": "0",  # plain http on loopback: cookies without Secure
            "LOUPE_LOG_LEVEL": "WARNING",
        }
    )
    env.pop("LOUPE_REDIS_URL", None)
    manage(
        env,
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        f"User.objects.create_user('radiologist', password={PASSWORD!r})",
    )
    files = [
        *sorted((shared_dicom / "ct-prior-pair-mini").iterdir()),
        *sorted((shared_dicom / "mr-series").glob("*.dcm"))[:2],
        *(shared_dicom / "charset" / n for n in ("chrH31.dcm", "chrFren.dcm", "chrGreek.dcm")),
        *request_attributes_series(shared_dicom, tmp_path / "made"),
    ]
    manage(env, "import_dicom", *map(str, files), "--no-progress")
    server = start_loupe(env, tmp_path / "server")
    try:
        yield DICOMwebClient(url=f"{server.url}/dicom-web", session=sign_in(server.url))
    finally:
        server.stop()


REQUESTED_SERIES = 901  # the series with Request Attributes items, in patient B's study


def request_attributes_series(shared_dicom: Path, folder: Path) -> list[Path]:
    """A third MR slice of patient B as one more series of the study, with two Request
    Attributes items (SPS-1001/RP-77, SPS-1002/RP-78), written to ``folder``."""
    items = []
    for scheduled, requested in (("SPS-1001", "RP-77"), ("SPS-1002", "RP-78")):
        item = Dataset()
        item.ScheduledProcedureStepID, item.RequestedProcedureID = scheduled, requested
        items.append(item)
    source = sorted((shared_dicom / "mr-series").glob("*.dcm"))[2]
    folder.mkdir()
    made = folder / "requested.dcm"
    made.write_bytes(
        changed(
            source.read_bytes(),
            SOPInstanceUID=generate_uid(),
            SeriesInstanceUID=generate_uid(),
            SeriesNumber=REQUESTED_SERIES,
            RequestAttributesSequence=items,
        )
    )
    return [made]


def names(dicomweb: DICOMwebClient, **params: Any) -> list[str]:
    found = dicomweb.search_for_studies(**params)
    return sorted(s["00100010"]["Value"][0]["Alphabetic"] for s in found)


def test_matching_on_postgresql(loupe: DICOMwebClient) -> None:
    assert names(loupe, search_filters={"PatientName": "te*"}) == ["Test", "Test"]
    assert names(loupe, search_filters={"PatientName": "yamada^tarou"}) == ["Yamada^Tarou"]
    assert names(loupe, search_filters={"PatientName": "BUC^J?R*"}) == ["Buc^Jérôme"]
    assert names(loupe, search_filters={"PatientName": "διονυσιος"}) == ["Διονυσιος"]
    assert names(loupe, search_filters={"PatientName": "Yamada"}) == []
    fuzzy = {"fuzzymatching": True}
    assert names(loupe, search_filters={"PatientName": "tar yam"}, **fuzzy) == ["Yamada^Tarou"]
    assert names(loupe, search_filters={"PatientName": "aro"}, **fuzzy) == []
    assert names(loupe, search_filters={"PatientName": "jér"}, **fuzzy) == ["Buc^Jérôme"]
    assert names(loupe, search_filters={"StudyDescription": "Test CT*"}) == ["Test", "Test"]
    assert names(loupe, search_filters={"StudyDescription": "test ct 2"}, **fuzzy) == ["Test"]
    assert names(loupe, search_filters={"PatientID": "TEST_?"}) == ["Test", "Test"]
    assert names(loupe, search_filters={"StudyDate": "20150101-"}) == ["HFS", "Test"]
    assert names(loupe, search_filters={"ModalitiesInStudy": "MR\\OT"}) == [
        "Buc^Jérôme",
        "HFS",
        "Yamada^Tarou",
        "Διονυσιος",
    ]
    assert names(loupe, search_filters={"Modality": "M?"}) == ["HFS"]
    pages = [
        [s["0020000D"]["Value"][0] for s in loupe.search_for_studies(limit=4, offset=o)]
        for o in (0, 4)
    ]
    assert [len(p) for p in pages] == [4, 2] and len({*pages[0], *pages[1]}) == 6
    series = loupe.search_for_series(search_filters={"PatientName": "hfs", "SeriesNumber": 3})
    assert len(series) == 1 and series[0]["00080060"]["Value"] == ["MR"]


def test_request_attributes_matching_on_postgresql(loupe: DICOMwebClient) -> None:
    def numbers(**filters: Any) -> list[int]:
        found = loupe.search_for_series(search_filters=filters)
        return sorted(s["00200011"]["Value"][0] for s in found)

    sps = "RequestAttributesSequence.ScheduledProcedureStepID"
    assert numbers(**{sps: "SPS-1002"}) == [REQUESTED_SERIES]
    assert numbers(**{sps: "SPS-100?"}) == [REQUESTED_SERIES]
    assert numbers(**{sps: "*01"}) == [REQUESTED_SERIES]
    assert numbers(**{sps: "SPS-1001*1002"}) == []  # never across two values
    assert numbers(**{sps: "SPS-1"}) == []
    assert numbers(**{"00400275.00401001": "RP-78"}) == [REQUESTED_SERIES]
    assert numbers(**{"00400275.00401001": "rp-7?"}) == []
    fuzzy = loupe.search_for_series(
        search_filters={"00400275.00401001": "rp-7?"}, fuzzymatching=True
    )
    assert [s["00200011"]["Value"][0] for s in fuzzy] == [REQUESTED_SERIES]
    mr = numbers(PatientID="crlab", PerformedProcedureStepStartDate="20220407")
    assert mr == [3, REQUESTED_SERIES]
    assert numbers(PerformedProcedureStepStartTime="1501-1502") == [3, REQUESTED_SERIES]
