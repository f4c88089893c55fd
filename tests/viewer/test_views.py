"""The viewer page and the worklist's "compare with prior": which studies, who may see them."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.viewer.test_worklist import add_study

pytestmark = pytest.mark.django_db

CURRENT = "1.2.826.0.1.3680043.99.1"
PRIOR = "1.2.826.0.1.3680043.99.2"
OLDER = "1.2.826.0.1.3680043.99.3"
OTHER_PATIENT = "1.2.826.0.1.3680043.99.4"


@pytest.fixture
def studies() -> None:
    same = {"PatientID": "P-SAME", "PatientName": "Same^Patient"}
    add_study(1, StudyDate="20260315", **same)
    add_study(2, StudyDate="20250315", **same)
    add_study(3, StudyDate="20240101", **same)
    add_study(4, StudyDate="20200101")


def studies_on_page(client: Client, url: str) -> list[str]:
    response = client.get(url)
    assert response.status_code == 200
    marker = 'data-studies="'
    html = response.content.decode()
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)].split()


def test_the_viewer_shows_a_study_and_the_studies_to_compare_in_order(
    logged_in_client: Client, studies: None
) -> None:
    assert studies_on_page(logged_in_client, f"/viewer/{CURRENT}/") == [CURRENT]
    assert studies_on_page(logged_in_client, f"/viewer/{CURRENT}/?compare={PRIOR}") == [
        CURRENT,
        PRIOR,
    ]
    # Comma-separated or repeated, each once, the first study not again.
    url = f"/viewer/{CURRENT}/?compare={OLDER},{PRIOR}&compare={PRIOR}&compare={CURRENT}"
    assert studies_on_page(logged_in_client, url) == [CURRENT, OLDER, PRIOR]


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        (f"compare={OTHER_PATIENT}9", 404, "no such study"),
        ("compare=1.2.3.abc", 400, "compare: the study UID '1.2.3.abc' has characters"),
        ("compare=1,2,3,4", 400, "compare: 4 studies given; at most 3"),
    ],
)
def test_a_bad_compare_parameter_names_the_problem(
    logged_in_client: Client, studies: None, query: str, status: int, message: str
) -> None:
    response = logged_in_client.get(f"/viewer/{CURRENT}/?{query}")
    assert response.status_code == status
    assert response.json()["message"].startswith(message)


def test_unknown_first_and_compared_studies_get_the_same_404(
    logged_in_client: Client, studies: None
) -> None:
    first = logged_in_client.get("/viewer/1.2.3.4/")
    compared = logged_in_client.get(f"/viewer/{CURRENT}/?compare=1.2.3.4")
    assert first.status_code == compared.status_code == 404
    assert first.json() == compared.json() == {"code": "not_found", "message": "no such study"}


def test_the_viewer_page_needs_a_log_in(client: Client, studies: None) -> None:
    response = client.get(f"/viewer/{CURRENT}/?compare={PRIOR}")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_worklist_offers_compare_with_the_latest_prior_only_where_there_is_one(
    logged_in_client: Client, studies: None
) -> None:
    html = logged_in_client.get("/").content.decode()
    compare_links = [line for line in html.splitlines() if 'class="compare"' in line]
    # The 2026 study compares with 2025 (the latest earlier), 2025 with 2024; the oldest
    # study and the other patient's have none.
    assert len(compare_links) == 2
    assert f"/viewer/{CURRENT}/?compare={PRIOR}" in compare_links[0]
    assert f"/viewer/{PRIOR}/?compare={OLDER}" in compare_links[1]


def test_the_worklist_compares_with_the_relevant_prior_not_merely_the_latest(
    logged_in_client: Client,
) -> None:
    """A CT chest study whose latest earlier study is an MR: "compare with prior" opens the
    older CT chest (same modality, same body part), not the newer MR."""
    same = {"PatientID": "P-REL", "PatientName": "Relevant^Prior"}
    add_study(11, StudyDate="20260301", Modality="CT", BodyPartExamined="CHEST", **same)
    add_study(12, StudyDate="20260101", Modality="MR", BodyPartExamined="CHEST", **same)
    add_study(13, StudyDate="20250101", Modality="CT", BodyPartExamined="CHEST", **same)
    ct_now, mr, ct_before = (f"1.2.826.0.1.3680043.99.{n}" for n in (11, 12, 13))
    lines = logged_in_client.get("/").content.decode().splitlines()
    current_row = next(line for line in lines if f'href="/viewer/{ct_now}/"' in line)
    assert f"/viewer/{ct_now}/?compare={ct_before}" in current_row
    # The MR has no earlier MR, so no relevant prior and no link on its row.
    mr_row = next(line for line in lines if f'href="/viewer/{mr}/"' in line)
    assert 'class="compare"' not in mr_row
