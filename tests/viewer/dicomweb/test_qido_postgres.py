"""QIDO-RS on PostgreSQL under gunicorn: the wildcard, person-name and fuzzy matching are
regular expressions, which SQLite runs with Python's ``re`` and PostgreSQL with its own
engine; the same searches must find the same studies on both."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from dicomweb_client.api import DICOMwebClient

from tests.conftest import PASSWORD
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
def loupe(postgres: Server, shared_dicom: Path, tmp_path: Path) -> Iterator[DICOMwebClient]:
    env = migrated_database(postgres, "qido", tmp_path / "data")
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
    ]
    manage(env, "import_dicom", *map(str, files), "--no-progress")
    server = start_loupe(env, tmp_path / "server")
    try:
        yield DICOMwebClient(url=f"{server.url}/dicom-web", session=sign_in(server.url))
    finally:
        server.stop()


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
