"""Every file of ../shared/dicom through POST /api/instances, checked against manifest.json.

Which files of ``malformed/`` are refused at ingest, and which are stored and left to
the renderer to refuse:

* refused at ingest, because the object itself is not a storable DICOM instance or its
  header contradicts its pixel data (both cheap to prove without decoding):
  - ``CT_no_meta_misaligned_odd_length``: no preamble and no data set at byte 0;
  - ``CT_tomo_truncated_pixeldata_GH1376``, ``oob_rows_cols_46341``/``65535``, and
    ``MR_truncated_pixeldata``: Rows × Columns × … need more bytes than Pixel Data holds
    (or than one frame may need), or Pixel Data runs past the end of the file;
  - ``CT_undefined_length_unparseable_GH177``, ``deeply_nested_sequence``: the data set
    cannot be read (broken undefined length; nesting beyond the limit);
  - ``MR_j2k_file_too_short``: the file stops after its meta; ``meta_missing_transfer_syntax``:
    no Transfer Syntax UID; ``badVR_NumberOfFrames_1A``: Number of Frames is not an integer;
* refused at ingest by the decode check (LOUPE_INGEST_DECODE_CHECK=first, the default),
  because their header is consistent and only decoding the codestream shows the damage:
  ``NM_WG04_JPLY_bad_SOS`` (bad JPEG scan header), ``NM_j2k_with_embedded_sequence_delimiter``
  (J2K bytes overwritten), ``jpeg_ts_but_raw_payload_genFile`` (JPEG transfer syntax, raw
  payload) and ``CR_WG04_RG2_JPLY_unfixed`` (bad JPEG header; it also carries the SOP
  Instance UID of ``compressed/CR_WG04_RG2_JPLY_jpeg_extended_12bit`` with other bytes,
  which the check finds first). With the check off they are stored and refused at render
  (``tests/viewer/dicomweb/test_rendered.py``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from pydicom.uid import ImplicitVRLittleEndian

from viewer.dicom.archive import iter_paths
from viewer.models import Instance, Series, Study
from viewer.services import ingest, storage

REFUSED_AT_INGEST = {
    "compressed/RGB_htj2k_lossless.dcm": "missing_uid",  # no Study Instance UID
    "dicomdir/DICOMDIR": "dicomdir",
    "dicomdir/DICOMDIR-bigEnd": "dicomdir",
    "dicomdir/DICOMDIR-empty.dcm": "dicomdir",
    "dicomdir/DICOMDIR-implicit": "dicomdir",
    "dicomdir/DICOMDIR-nooffset": "dicomdir",
    "dicomdir/DICOMDIR-nopatient": "dicomdir",
    "dicomdir/DICOMDIR-reordered": "dicomdir",
    "malformed/CT_no_meta_misaligned_odd_length.dcm": "not_dicom",
    "malformed/CT_tomo_truncated_pixeldata_GH1376.dcm": "pixel_data_mismatch",
    "malformed/CT_undefined_length_unparseable_GH177.dcm": "unparseable",
    "malformed/MR_j2k_file_too_short.dcm": "truncated",
    "malformed/MR_truncated_pixeldata.dcm": "truncated",
    "malformed/badVR_NumberOfFrames_1A.dcm": "bad_pixel_module",
    "malformed/deeply_nested_sequence.dcm": "nesting_too_deep",
    "malformed/meta_missing_transfer_syntax.dcm": "missing_transfer_syntax",
    "malformed/oob_rows_cols_46341.dcm": "frame_too_large",
    "malformed/oob_rows_cols_65535.dcm": "frame_too_large",
    # Same SOP Instance UID as a file earlier in path order, different bytes:
    "charset/chrFrenMulti.dcm": "sop_instance_conflict",
    "charset/chrJapMultiExplicitIR6.dcm": "sop_instance_conflict",
    "malformed/CR_WG04_RG2_JPLY_unfixed.dcm": "undecodable",
    "malformed/NM_WG04_JPLY_bad_SOS.dcm": "undecodable",
    "malformed/NM_j2k_with_embedded_sequence_delimiter.dcm": "undecodable",
    "malformed/jpeg_ts_but_raw_payload_genFile.dcm": "undecodable",
    "odd-cases/RGB_3x3_odd_length_pixeldata.dcm": "sop_instance_conflict",
}


def post(client: Any, data: bytes) -> Any:
    return client.post("/api/instances", data=data, content_type="application/dicom")


def assert_store_consistent() -> None:
    """Every row has its file with the right SHA-256; every file has its row; no temp."""
    rows = {i.storage_key: i.sha256 for i in Instance.objects.all()}
    assert set(storage.all_keys()) == set(rows), "orphan file or row without file"
    for key, sha in rows.items():
        assert hashlib.sha256(storage.read(key)).hexdigest() == sha
    assert list(Path(settings.LOUPE_TEMP_DIR).iterdir()) == []


@pytest.mark.django_db(transaction=True)
def test_every_corpus_file_is_stored_as_the_manifest_says_or_refused_with_a_reason(
    logged_in_client: Any, manifest: list[dict[str, Any]], shared_dicom: Path
) -> None:
    outcomes: dict[str, dict[str, Any]] = {}
    for entry in sorted(manifest, key=lambda e: e["path"]):
        response = post(logged_in_client, (shared_dicom / entry["path"]).read_bytes())
        assert response.status_code < 500, entry["path"]
        (result,) = response.json()["results"]
        assert (response.status_code >= 400) == (result["status"] == "rejected")
        outcomes[entry["path"]] = result

    refused = {path: r["code"] for path, r in outcomes.items() if r["status"] == "rejected"}
    assert refused == REFUSED_AT_INGEST
    assert all(outcomes[path]["reason"] for path in refused)

    stored = [e for e in manifest if outcomes[e["path"]]["status"] == "stored"]
    assert len(stored) == len(manifest) - len(REFUSED_AT_INGEST) == 307
    assert Instance.objects.count() == len(stored)
    for entry in stored:
        instance = Instance.objects.select_related("series__study").get(
            sop_instance_uid=entry["sop_instance_uid"]
        )
        assert instance.sha256 == entry["sha256"], entry["path"]
        assert instance.size_bytes == entry["size_bytes"]
        assert instance.series.series_instance_uid == entry["series_uid"]
        assert instance.series.study.study_instance_uid == entry["study_uid"]
        assert instance.rows == entry["rows"]
        assert instance.columns == entry["columns"]
        assert instance.number_of_frames == (entry["frames"] or 0), entry["path"]
        assert instance.series.modality == (entry["modality"] or "")
        assert instance.transfer_syntax_uid == (entry["transfer_syntax"] or ImplicitVRLittleEndian)
        assert instance.photometric_interpretation == (entry["photometric"] or "")

    # The study counts agree with the rows.
    for study in Study.objects.all():
        series = Series.objects.filter(study=study)
        assert study.number_of_study_related_series == series.count()
        assert (
            study.number_of_study_related_instances
            == Instance.objects.filter(series__study=study).count()
        )
    assert_store_consistent()

    # A second import of the whole corpus, this time as a folder walk, adds nothing.
    before = (Instance.objects.count(), sorted(storage.all_keys()))
    second = [ingest.ingest_item(i) for i in iter_paths([shared_dicom], ingest.archive_limits())]
    assert (Instance.objects.count(), sorted(storage.all_keys())) == before
    counts = ingest.summarize(second)
    assert counts["stored"] == 0 and counts["replaced"] == 0
    assert counts["duplicate"] == 307
    assert_store_consistent()


@pytest.mark.django_db
def test_ct_series_index_fields(logged_in_client: Any, shared_dicom: Path) -> None:
    for path in sorted((shared_dicom / "ct-series").glob("*.dcm")):
        assert post(logged_in_client, path.read_bytes()).status_code == 200
    study = Study.objects.get()
    assert study.number_of_study_related_instances == 99
    assert study.modalities_in_study == "CT"
    assert str(study.study_date) == "2010-02-27"
    instance = Instance.objects.filter(series__study=study).order_by("instance_number").first()
    assert instance is not None
    assert instance.spacing_attribute == "PixelSpacing"
    assert instance.pixel_spacing_row_mm == pytest.approx(0.564453125, abs=1e-3)
    assert instance.rescale_intercept == -1024
    presets = [(p["center"], p["width"], p["explanation"]) for p in instance.window_presets]
    assert presets == [(-500.0, 1500.0, "WINDOW1"), (40.0, 400.0, "WINDOW2")]
    assert instance.window_center == -500.0 and instance.window_width == 1500.0
    assert isinstance(instance.image_position_patient, list)
    assert len(instance.image_position_patient) == 3
