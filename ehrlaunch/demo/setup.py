"""Register the demo EHR with Loupe and write the config its server reads.

A fresh shared secret on every run; the EHR is allowed to frame Loupe from its own origin
only (``http://localhost:<port>``), and its "physician" role maps to Loupe's clinician.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from ehrlaunch.models import EhrSystem
from viewer.demo.phantom import DEFAULT_SPEC, ground_truth

# What the chart says beside each phantom study (ground_truth's keys).
NOTES = {"current": "current · opens with the prior beside it", "prior": "prior"}


def _date(value: str) -> str:
    """A DICOM DA (YYYYMMDD) as the chart shows it (YYYY-MM-DD)."""
    return f"{value[:4]}-{value[4:6]}-{value[6:]}"


def configure(folder: Path, *, loupe_url: str, port: int) -> Path:
    origin = f"http://localhost:{port}"
    secret = secrets.token_urlsafe(48)
    EhrSystem.objects.update_or_create(
        issuer=origin,
        defaults={
            "name": "Demo EHR",
            "audience": "loupe",
            "algorithm": "HS256",
            "shared_secret": secret,
            "allowed_origins": origin,
            "role_mapping": {"physician": "clinician", "radiologist": "radiologist"},
            "default_patient_issuer": DEFAULT_SPEC.issuer_of_patient_id,
            "active": True,
        },
    )
    truth = ground_truth(DEFAULT_SPEC)
    birth = DEFAULT_SPEC.patient_birth_date
    config = {
        "port": port,
        "loupe_url": loupe_url.rstrip("/"),
        "issuer": origin,
        "audience": "loupe",
        "secret": secret,
        "user": "dr.demo",
        "user_name": "Dr Demo (physician)",
        "role": "physician",
        "patient": {
            "name": "Phantom, Torso",
            "id": DEFAULT_SPEC.patient_id,
            "issuer": DEFAULT_SPEC.issuer_of_patient_id,
            "birth_date": _date(birth),
            "sex": DEFAULT_SPEC.patient_sex,
        },
        # The chart's imaging list: the current study (launched by default; Loupe hangs
        # its prior beside it by the "CT chest with prior" protocol) and the prior.
        "studies": [
            {
                "key": study["key"],
                "label": f"{study['study_description']} · {_date(study['study_date'])}",
                "uid": study["study_instance_uid"],
                "note": NOTES.get(study["key"], ""),
            }
            for study in truth["studies"]
        ],
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "demo-ehr.json"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(config, handle, indent=2)
    return path
