"""The worklist page: search, sort, pagination, names in every character set, no markup."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pydicom
import pytest
from django.test import Client
from pydicom.data import get_testdata_file

from viewer.services import ingest
from viewer.worklist import PAGE_SIZE

pytestmark = pytest.mark.django_db

# Names as PS3.5 Annexes H, I, J and the SCS test set spell them, decoded.
EXPECTED_NAMES = {
    "chrArab.dcm": "قباني, لنزار",
    "chrFren.dcm": "Buc, Jérôme",
    "chrGerm.dcm": "Äneas, Rüdiger",
    "chrGreek.dcm": "Διονυσιος",
    "chrH31.dcm": "Yamada, Tarou = 山田, 太郎 = やまだ, たろう",
    "chrH32.dcm": "ﾔﾏﾀﾞ, ﾀﾛｳ = 山田, 太郎 = やまだ, たろう",
    "chrHbrw.dcm": "שרון, דבורה",
    "chrI2.dcm": "Hong, Gildong = 洪, 吉洞 = 홍, 길동",
    "chrRuss.dcm": "Люкceмбypг",
    "chrX1.dcm": "Wang, XiaoDong = 王, 小東",
    "chrX2.dcm": "Wang, XiaoDong = 王, 小东",
}


def study_bytes(**attributes: Any) -> bytes:
    path = get_testdata_file("CT_small.dcm")
    assert path is not None
    dataset = pydicom.dcmread(path)
    for name, value in attributes.items():
        setattr(dataset, name, value)
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


def add_study(n: int, **attributes: Any) -> None:
    values = {
        "StudyInstanceUID": f"1.2.826.0.1.3680043.99.{n}",
        "SeriesInstanceUID": f"1.2.826.0.1.3680043.99.{n}.1",
        "SOPInstanceUID": f"1.2.826.0.1.3680043.99.{n}.1.1",
        "PatientID": f"PID{n:05d}",
        "PatientName": f"Patient^Number{n:05d}",
        "AccessionNumber": f"ACC{n:05d}",
        "StudyDate": f"2024{(n % 12) + 1:02d}{(n % 28) + 1:02d}",
        **attributes,
    }
    result = ingest.ingest_bytes(study_bytes(**values), source=f"study {n}")
    assert result.status == "stored", result


def rows(response: Any) -> list[str]:
    html = response.content.decode()
    return [line for line in html.splitlines() if 'class="open"' in line]


def test_worklist_needs_a_login() -> None:
    response = Client().get("/")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login/")


@pytest.mark.parametrize("path", ["/", "/shares/"])
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_the_pages_answer_only_safe_methods(logged_in_client: Any, path: str, method: str) -> None:
    response = getattr(logged_in_client, method)(path)
    assert response.status_code == 405
    assert sorted(response["Allow"].split(", ")) == ["GET", "HEAD"]


def test_worklist_lists_searches_sorts_and_pages(logged_in_client: Any) -> None:
    for n in range(PAGE_SIZE + 5):
        add_study(n)
    add_study(900, PatientName="Zeta^Anna", PatientID="ZETA-1", Modality="MR", StudyDate="20200101")

    first = logged_in_client.get("/")
    assert first.status_code == 200
    assert len(rows(first)) == PAGE_SIZE
    assert f"{PAGE_SIZE + 6} studies" in first.content.decode()
    second = logged_in_client.get("/?page=2")
    assert len(rows(second)) == 6

    by_name = logged_in_client.get("/", {"name": "zeta"})
    assert len(rows(by_name)) == 1 and "Zeta, Anna" in rows(by_name)[0]
    assert len(rows(logged_in_client.get("/", {"patient_id": "ZETA"}))) == 1
    assert len(rows(logged_in_client.get("/", {"accession": "ACC0000"}))) == 10
    assert len(rows(logged_in_client.get("/", {"modality": "mr"}))) == 1
    in_range = logged_in_client.get("/", {"date_from": "2019-12-31", "date_to": "2020-01-01"})
    assert len(rows(in_range)) == 1
    oldest_first = rows(logged_in_client.get("/", {"sort": "date"}))
    assert "Zeta, Anna" in oldest_first[0]
    by_name_desc = rows(logged_in_client.get("/", {"sort": "-name"}))
    assert "Zeta, Anna" in by_name_desc[0]


def test_bad_filter_values_are_reported_not_fatal(logged_in_client: Any) -> None:
    add_study(1)
    response = logged_in_client.get("/", {"date_from": "yesterday", "sort": "drop table"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "is not a date" in html and "unknown sort" in html
    assert len(rows(response)) == 1


def test_markup_in_tags_is_shown_as_text(logged_in_client: Any) -> None:
    add_study(
        7,
        PatientName="<script>alert(1)</script>^<img src=x onerror=alert(2)>",
        StudyDescription='"><svg onload=alert(3)>',
        PatientID="javascript:alert(4)",
    )
    response = logged_in_client.get("/")
    html = response.content.decode()
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<svg" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'href="javascript:' not in html
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert response.headers["X-Frame-Options"] == "DENY"


def test_names_in_every_character_set_display_correctly(
    logged_in_client: Any, shared_dicom: Path
) -> None:
    for name in EXPECTED_NAMES:
        result = ingest.ingest_file(shared_dicom / "charset" / name)
        assert result.status == "stored", result
    html = logged_in_client.get("/").content.decode()
    for name, shown in EXPECTED_NAMES.items():
        assert shown in html, name


def test_study_page_lists_series_and_is_404_for_unknown_uid(logged_in_client: Any) -> None:
    add_study(3, SeriesDescription="AXIAL <b>bold</b>")
    page = logged_in_client.get("/studies/1.2.826.0.1.3680043.99.3/")
    assert page.status_code == 200
    assert "AXIAL &lt;b&gt;bold&lt;/b&gt;" in page.content.decode()
    assert logged_in_client.get("/studies/1.2.3.4.5.6/").status_code == 404


def test_rows_open_the_viewer_page(logged_in_client: Any) -> None:
    add_study(5)
    html = logged_in_client.get("/").content.decode()
    assert 'href="/viewer/1.2.826.0.1.3680043.99.5/"' in html
    page = logged_in_client.get("/viewer/1.2.826.0.1.3680043.99.5/")
    assert page.status_code == 200 and b'type="module"' in page.content
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert logged_in_client.get("/viewer/1.2.3.4.5/").status_code == 404
    assert Client().get("/viewer/1.2.826.0.1.3680043.99.5/").status_code == 302
