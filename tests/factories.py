"""The objects tests make again and again: a small CT, a stored study, a registered EHR
and a signed launch from it, an object with attributes changed.

Everything here is made from real data at run time: pydicom's own test files, or the
shared corpus (``tests.conftest.SHARED_DICOM``), read in place and never copied into the
project. The personas that use them (a radiologist, an administrator, a clinician
launched for patient A, an outsider) are fixtures in ``tests/conftest.py``.
"""

from __future__ import annotations

import io
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pydicom
from pydicom.data import get_testdata_file

from ehrlaunch.models import EhrSystem
from viewer.models import Instance
from viewer.services import ingest

EHR_ISSUER = "https://ehr.example.org"
EHR_SECRET = "a-shared-secret-of-forty-characters-long"
EHR_ORIGINS = ("https://ehr.example.org", "https://ehr2.example.org")
# Patient A is the corpus's chest CT (ct-series), patient B its brain MR (mr-series).
PATIENT_A = "C3N-00247"
PATIENT_B = "crlab"


def pydicom_test_file(name: str) -> bytes:
    """One of the test files shipped inside pydicom (e.g. ``CT_small.dcm``), as bytes."""
    path = get_testdata_file(name)
    assert path is not None, f"pydicom has no test file {name}"
    return Path(str(path)).read_bytes()


def ct_small() -> bytes:
    """pydicom's CT_small.dcm: one 128 × 128 16-bit CT slice, explicit VR little endian."""
    return pydicom_test_file("CT_small.dcm")


def changed(data: bytes, **values: Any) -> bytes:
    """``data`` re-written with the given keywords set (SOP Instance UID kept consistent
    with the file meta's Media Storage SOP Instance UID)."""
    dataset = pydicom.dcmread(io.BytesIO(data))
    for keyword, value in values.items():
        setattr(dataset, keyword, value)
    if "SOPInstanceUID" in values:
        dataset.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.UID(values["SOPInstanceUID"])
    out = io.BytesIO()
    dataset.save_as(out, enforce_file_format=True)
    return out.getvalue()


@dataclass(frozen=True)
class StoredStudy:
    """A study stored through ingest: its UIDs, one of its instances, and the routes that
    show it."""

    study: str
    series: str
    instance: str

    def routes(self) -> list[str]:
        """Every route that reveals this study: pages, API, DICOMweb rendered, tiles."""
        s = f"/dicom-web/studies/{self.study}"
        i = f"{s}/series/{self.series}/instances/{self.instance}"
        return [
            f"/studies/{self.study}/",
            f"/viewer/{self.study}/",
            f"/api/studies/{self.study}",
            f"/api/studies/{self.study}/series/{self.series}/instances/{self.instance}",
            f"{s}/thumbnail",
            f"{s}/series/{self.series}/thumbnail",
            f"{i}/thumbnail",
            f"{i}/rendered",
            f"{i}/frames/1/rendered",
            f"{i}/frames/1/tiles/0/0/0",
        ]

    def row(self) -> Instance:
        return Instance.objects.select_related("series__study__patient").get(
            sop_instance_uid=self.instance
        )


def store_files(paths: list[Path]) -> StoredStudy:
    """Store ``paths`` through ingest (each must be accepted); the study of the first."""
    results = [ingest.ingest_file(path) for path in paths]
    assert all(r.ok for r in results), [r.as_dict() for r in results if not r.ok]
    first = Instance.objects.select_related("series__study").get(
        sop_instance_uid=results[0].sop_instance_uid
    )
    return StoredStudy(
        first.series.study.study_instance_uid,
        first.series.series_instance_uid,
        first.sop_instance_uid,
    )


def corpus_files(shared_dicom: Path, folder: str, count: int | None = None) -> list[Path]:
    """The first ``count`` files (by name) of a corpus folder."""
    files = sorted(p for p in (shared_dicom / folder).iterdir() if p.is_file())
    return files[:count] if count is not None else files


def register_ehr(**fields: Any) -> EhrSystem:
    """A registered EHR signing its launches with HS256 (EHR_SECRET), framing from
    EHR_ORIGINS, whose role "MD" is a clinician and "RAD" a radiologist."""
    values: dict[str, Any] = {
        "name": "Chart",
        "issuer": EHR_ISSUER,
        "algorithm": "HS256",
        "shared_secret": EHR_SECRET,
        "allowed_origins": "\n".join(EHR_ORIGINS),
        "role_mapping": {"MD": "clinician", "RAD": "radiologist"},
        **fields,
    }
    return EhrSystem.objects.create(**values)


def launch_claims(study: str | None = None, **claims: Any) -> dict[str, Any]:
    """The claims of a launch by ``register_ehr``'s EHR: Dr Seventeen (role MD) for
    patient A, valid two minutes, single-use (a new ``jti``); ``claims`` override or add
    claims, and one given as None is left out."""
    now = int(time.time())
    body: dict[str, Any] = {
        "iss": EHR_ISSUER,
        "aud": "loupe",
        "iat": now,
        "exp": now + 120,
        "jti": str(uuid.uuid4()),
        "sub": "dr-17",
        "name": "Dr Seventeen",
        "role": "MD",
        "patient": PATIENT_A,
    }
    if study:
        body["study"] = [study]
    body.update(claims)
    return {name: value for name, value in body.items() if value is not None}


def signed_launch(study: str | None = None, **claims: Any) -> str:
    """``launch_claims`` signed with the EHR's shared secret (HS256)."""
    return jwt.encode(launch_claims(study, **claims), EHR_SECRET, algorithm="HS256")
