"""Decoding stored pixel data under the configured isolation, and remembering what does
not decode.

Every decode of a stored object's frame goes through ``pixels.decode_frame`` with this
process's decoder pool (``viewer.dicom.decoder_pool``, limits from the LOUPE_DECODER_*
settings): ingest's check before it answers "stored" (``check_before_storing``) and
rendering (``decode_stored``). A frame that fails for a reason the same bytes would give
again is flagged in the index (``Instance.undecodable``, frame number -> reason; the
study counts its flagged instances), and later requests for it are answered from the
flag without running a decoder again.
"""

from __future__ import annotations

import logging
import threading

import numpy as np
import numpy.typing as npt
from django.conf import settings
from django.db import transaction
from pydicom.dataset import Dataset
from pydicom.uid import UID

from viewer.dicom import decoder_pool, pixels
from viewer.dicom.io import open_stored
from viewer.errors import UndecodableFrame, ViewerError
from viewer.models import Instance, Study
from viewer.services import storage

log = logging.getLogger(__name__)


def decoders() -> decoder_pool.DecoderPool | None:
    """This process's decoder pool (None where LOUPE_DECODER_PROCESSES is 0)."""
    if settings.LOUPE_DECODER_PROCESSES == 0:
        return None
    return decoder_pool.shared(
        decoder_pool.Limits(
            processes=settings.LOUPE_DECODER_PROCESSES,
            cpu_seconds=settings.LOUPE_DECODER_CPU_SECONDS,
            memory_bytes=settings.LOUPE_DECODER_MEMORY_BYTES,
            timeout_seconds=float(settings.LOUPE_DECODER_TIMEOUT_SECONDS),
        )
    )


def start_in_background() -> None:
    """Fork this process's decoder processes on a thread of their own (a server process
    calls this once its application is loaded)."""
    pool = decoders()
    if pool is not None:
        threading.Thread(target=pool.warm, name="loupe-decoder-start", daemon=True).start()


def decode(dataset: Dataset, frame: int) -> npt.NDArray[np.generic]:
    """Frame ``frame`` (0-based) of ``dataset``, decoded under the configured limits."""
    return pixels.decode_frame(
        dataset, frame, max_frame_bytes=settings.LOUPE_MAX_FRAME_BYTES, decoders=decoders()
    )


def decode_stored(instance: Instance, frame: int) -> tuple[Dataset, npt.NDArray[np.generic]]:
    """A stored instance's data set and frame ``frame`` (0-based), decoded. A frame
    flagged undecodable is refused from its flag before the file is read; one that fails
    now for good is flagged."""
    known = instance.undecodable.get(str(frame + 1))
    if known:
        raise UndecodableFrame(known)
    dataset = open_stored(storage.read(instance.storage_key))
    try:
        return dataset, decode(dataset, frame)
    except UndecodableFrame as failure:
        if failure.lasting:
            flag_undecodable(instance, frame, failure.message)
        raise


def check_before_storing(dataset: Dataset, number_of_frames: int) -> dict[str, str]:
    """Decode the frames of a compressed object that LOUPE_INGEST_DECODE_CHECK names
    (the first, all, or none); the ones that fail, as frame number -> reason.

    Native (uncompressed) pixel data needs no check: its length was validated against
    the Image Pixel module. A decoder that ran out of wall-clock time proves nothing
    about the object, so ingest is refused with 503 (try again) rather than answered.
    """
    policy = settings.LOUPE_INGEST_DECODE_CHECK
    if policy == "off" or "PixelData" not in dataset or number_of_frames < 1:
        return {}
    if not UID(str(dataset.file_meta.TransferSyntaxUID)).is_encapsulated:
        return {}
    failures: dict[str, str] = {}
    for frame in range(1 if policy == "first" else number_of_frames):
        try:
            decode(dataset, frame)
        except UndecodableFrame as failure:
            if not failure.lasting:
                raise ViewerError(
                    f"the object's pixel data could not be checked in time ({failure.message}); "
                    "send it again",
                    code="decoder_busy",
                    status=503,
                ) from None
            failures[str(frame + 1)] = failure.message
            if settings.LOUPE_INGEST_UNDECODABLE == "reject":
                break
    return failures


def flag_undecodable(instance: Instance, frame: int, reason: str) -> None:
    """Remember in the index that frame ``frame`` (0-based) of ``instance`` does not decode."""
    with transaction.atomic():
        row = Instance.objects.select_for_update().only("undecodable").get(pk=instance.pk)
        flags = {**row.undecodable, str(frame + 1): reason}
        Instance.objects.filter(pk=row.pk).update(undecodable=flags)
        recount_undecodable(instance.series.study_id)
    instance.undecodable = flags
    log.warning("instance row %s: frame %d flagged undecodable: %s", instance.pk, frame + 1, reason)


def recount_undecodable(study_id: int) -> None:
    """Set a study's count of instances flagged undecodable from its instances' flags."""
    flagged = Instance.objects.filter(series__study_id=study_id).exclude(undecodable={}).count()
    Study.objects.filter(pk=study_id).update(number_of_undecodable_instances=flagged)
