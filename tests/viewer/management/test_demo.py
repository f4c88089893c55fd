"""manage.py demo: migrates, creates the demo user, imports the phantom and the samples."""

from __future__ import annotations

import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.test import Client

from viewer.demo import phantom
from viewer.models import AuditEvent, HangingProtocol, Instance, Patient, ShareLink, Study
from viewer.services import hanging

pytestmark = pytest.mark.django_db


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", "--no-serve", stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_demo_sets_up_phantom_prior_and_samples(settings: Any, tmp_path: Path) -> None:
    settings.DATA_DIR = tmp_path
    output = run_demo()
    password = re.search(r"log in as:\s+demo / (\S+)", output)
    assert password and authenticate(username="demo", password=password.group(1)) is not None

    patient = Patient.objects.get(patient_id=phantom.PATIENT_ID, issuer_of_patient_id="LOUPE")
    current, prior = Study.objects.filter(patient=patient).order_by("-study_date")
    assert current.study_date and prior.study_date
    assert (current.study_date.year - prior.study_date.year) == 1
    assert current.number_of_study_related_instances == phantom.NUM_SLICES
    assert prior.number_of_study_related_instances == phantom.NUM_SLICES
    slice0 = Instance.objects.filter(series__study=current).order_by("instance_number").first()
    assert slice0 is not None
    assert (slice0.rows, slice0.columns) == (512, 512)
    assert slice0.pixel_spacing_row_mm == phantom.ROW_SPACING_MM
    assert [p["explanation"] for p in slice0.window_presets] == list(phantom.WINDOW_EXPLANATIONS)

    truth = json.loads((tmp_path / "demo" / "ct-phantom" / "ground_truth.json").read_text())
    by_key = {study["key"]: study for study in truth["studies"]}
    assert by_key["current"]["lesion_diameter_mm"] == 20.0
    assert by_key["prior"]["lesion_diameter_mm"] == 14.0
    assert by_key["current"]["study_instance_uid"] == current.study_instance_uid
    modalities = set(Study.objects.values_list("modalities_in_study", flat=True))
    assert {"CT", "MR", "CR", "US"} <= modalities
    assert Instance.objects.filter(number_of_frames__gt=1).exists()  # multi-frame samples

    again = run_demo()
    assert "demo studies: 0 new" in again


def test_demo_loads_the_shipped_protocols_and_hangs_the_phantom_prior_beside_the_current(
    settings: Any, tmp_path: Path
) -> None:
    """The current phantom study, with no study named to compare, is hung by "CT chest
    with prior" beside its prior (the same patient), both axial series, linked; even in a
    database whose protocols were deleted or changed since migrate loaded them."""
    settings.DATA_DIR = tmp_path
    HangingProtocol.objects.all().delete()
    HangingProtocol.objects.create(
        name="Default",
        priority=10_000,
        match={"modality": ["XA"]},
        layout="1x1",
        viewports=[{"study": "current", "series": {}}],
    )
    output = run_demo()
    shipped = {p.stem for p in hanging.SHIPPED_DIR.glob("*.json")}
    assert f"hanging protocols: {len(shipped)} shipped ones loaded" in output
    assert HangingProtocol.objects.filter(source="shipped").count() == len(shipped)
    assert HangingProtocol.objects.get(name="Default").priority == -1000  # as its file says

    current_uid, prior_uid = (s["study_instance_uid"] for s in phantom.ground_truth()["studies"])
    current = Study.objects.get(study_instance_uid=current_uid)
    result = hanging.hang(current, Study.objects.all())
    assert result.chosen is not None
    assert result.chosen.protocol.name == "CT chest with prior"
    assert [
        (v.role, v.study.study_instance_uid if v.study else None) for v in result.chosen.viewports
    ] == [
        ("current", current_uid),
        ("prior 1", prior_uid),
    ]
    assert all(v.series is not None and v.series.plane == "axial" for v in result.chosen.viewports)
    assert result.chosen.sync() == {"scroll": True, "window": True, "zoom": True}


def test_demo_prints_a_live_tumor_board_link_for_the_phantom_that_opens(
    settings: Any, tmp_path: Path
) -> None:
    settings.DATA_DIR = tmp_path
    run_demo()
    output = run_demo()  # a re-run (everything a duplicate) prints a link as well
    link = re.search(r"tumor board:\s+http://127\.0\.0\.1:8000(/s/[A-Za-z0-9_-]{43})\n", output)
    present = re.search(r"present it:\s+http://127\.0\.0\.1:8000(/viewer/\S+)\n", output)
    assert link and present, output
    current_uid = phantom.ground_truth()["studies"][0]["study_instance_uid"]
    share = ShareLink.objects.get(token_sha256=hashlib.sha256(link[1][3:].encode()).hexdigest())
    assert share.live and share.study_uids == [current_uid]
    assert share.created_by.username == "demo" and share.presenter == share.created_by
    assert not share.deidentify
    assert present[1] == f"/viewer/{current_uid}/?present={share.id}"
    # Anyone with the link, no account: the phantom in the viewer, read-only and live.
    follower = Client()
    opened = follower.get(link[1], HTTP_ACCEPT="text/html")
    assert opened.status_code == 302 and opened.headers["Location"] == f"/viewer/{current_uid}/"
    page = follower.get(opened.headers["Location"], HTTP_ACCEPT="text/html").content.decode()
    assert f'data-share-id="{share.id}"' in page and 'data-share-live="true"' in page
    assert follower.get(f"/api/studies/{current_uid}").status_code == 200
    exported = AuditEvent.objects.filter(event_id="110106", user_id="demo")
    assert exported.filter(detail__share_link_id=share.id).exists()
