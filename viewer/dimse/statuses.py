"""Failure statuses of a refused object, shared by STOW-RS and C-STORE.

The codes are those of the C-STORE service (PS3.4 §B.2.3), which STOW-RS reuses as its
Failure Reason (0008,1197) values (PS3.18 Table 10.5.3-1 / §10.5.3.1): one mapping from
ingest's refusal (its ``code`` and HTTP status) to the status a peer understands.
"""

from __future__ import annotations

from viewer.services.ingest import IngestResult

SUCCESS = 0x0000
PROCESSING_FAILURE = 0x0110  # general failure in processing the operation
SOP_CLASS_NOT_SUPPORTED = 0x0122  # the object is not of a storage SOP class
OUT_OF_RESOURCES = 0xA700  # too large, the archive cannot write, the decoders are busy
DATASET_DOES_NOT_MATCH = 0xA900  # the data set contradicts its SOP class or the target
CANNOT_UNDERSTAND = 0xC000  # the bytes cannot be parsed as a DICOM object

_BY_CODE = {
    "object_too_large": OUT_OF_RESOURCES,
    "inflated_too_large": OUT_OF_RESOURCES,
    "frame_too_large": OUT_OF_RESOURCES,
    "upload_too_large": OUT_OF_RESOURCES,
    "storage_error": OUT_OF_RESOURCES,
    "decoder_busy": OUT_OF_RESOURCES,
    "other_study": DATASET_DOES_NOT_MATCH,
    "missing_uid": DATASET_DOES_NOT_MATCH,  # a Type 1 UID of the SOP class is absent
    "sop_mismatch": DATASET_DOES_NOT_MATCH,
    "bad_pixel_module": DATASET_DOES_NOT_MATCH,
    "pixel_data_mismatch": DATASET_DOES_NOT_MATCH,
    "dicomdir": SOP_CLASS_NOT_SUPPORTED,
    "sop_instance_conflict": PROCESSING_FAILURE,
    "database_error": PROCESSING_FAILURE,  # the object was not stored: send it again
    "study_mismatch": PROCESSING_FAILURE,
    "patient_mismatch": PROCESSING_FAILURE,
}


def failure_status(result: IngestResult) -> int:
    """The status for a refused object: by its code, else by its HTTP status (413, 503
    and 507 are resources; any other 4xx means the bytes were not understood)."""
    if result.code in _BY_CODE:
        return _BY_CODE[result.code]
    if result.http_status in (413, 503, 507):
        return OUT_OF_RESOURCES
    if 400 <= result.http_status < 500 and result.http_status != 409:
        return CANNOT_UNDERSTAND
    return PROCESSING_FAILURE
