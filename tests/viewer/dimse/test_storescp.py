"""The C-STORE SCP (``manage.py storescp``, ``viewer.dimse.scp``) against dcmtk's
``storescu`` and ``echoscu``: every file of the corpus's compressed/ folder sent in its own
transfer syntax and stored unchanged, C-ECHO, allowed callers, duplicates, refusals,
the per-association audit record. The SCP runs in a thread of the test process (its
database is the test database); the command itself runs once as a subprocess."""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from django.conf import settings
from pynetdicom import AE

from tests.conftest import PROJECT_DIR, require
from viewer.dimse import scp
from viewer.models import AuditEvent, Instance
from viewer.services import storage

pytestmark = pytest.mark.django_db(transaction=True)

SCP_TITLE = "LOUPE"
CALLER = "MODALITY"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"


@pytest.fixture
def dcmtk() -> None:
    require(None if shutil.which("storescu") else "dcmtk (storescu, echoscu) is not installed")


def start(allowed: list[str] | None = None) -> scp.StoreSCP:
    server = scp.StoreSCP(ae_title=SCP_TITLE, port=0, allowed_callers=allowed or [])
    server.start()
    return server


@pytest.fixture
def server(dcmtk: None) -> Iterator[scp.StoreSCP]:
    running = start()
    yield running
    running.stop()


def own_syntax_profile(files: list[Path], folder: Path) -> list[str]:
    """storescu options proposing, for each file, one presentation context of its own
    SOP class with its own transfer syntax only (a dcmtk association profile, -xf):
    storescu then sends every object as it is in its file, never converted."""
    pairs: list[tuple[str, str]] = []
    for path in files:
        meta = header(path)
        pair = (str(meta.SOPClassUID), str(meta.file_meta.TransferSyntaxUID))
        if pair not in pairs:
            pairs.append(pair)
    syntaxes = sorted({ts for _, ts in pairs})
    lines = ["[[TransferSyntaxes]]"]
    for n, uid in enumerate(syntaxes):
        lines += [f"[TS{n}]", f"TransferSyntax1 = {uid}"]
    lines += ["[[PresentationContexts]]", "[Own]"]
    for n, (sop_class, uid) in enumerate(pairs, 1):
        lines.append(f"PresentationContext{n} = {sop_class}\\TS{syntaxes.index(uid)}")
    lines += ["[[Profiles]]", "[Own]", "PresentationContexts = Own"]
    config = folder / "own-syntaxes.cfg"
    config.write_text("\n".join(lines) + "\n")
    return ["-xf", str(config), "Own"]


def storescu(
    server: scp.StoreSCP, *files: Path, caller: str = CALLER, options: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    """dcmtk's storescu; by default ``-R`` (only the files' SOP classes are proposed)."""
    return subprocess.run(
        ["storescu", "-v", *(options or ["-R"]), "-aet", caller, "-aec", server.ae_title,
         "127.0.0.1", str(server.port), *map(str, files)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def pynetdicom_store(server: scp.StoreSCP, path: Path) -> tuple[int, str]:
    """C-STORE of ``path`` by pynetdicom's SCU (the file's bytes, not re-encoded): the
    status and the code that starts its Error Comment."""
    meta = header(path)
    ae = AE(ae_title=CALLER)
    ae.add_requested_context(str(meta.SOPClassUID), str(meta.file_meta.TransferSyntaxUID))
    association = ae.associate("127.0.0.1", server.port, ae_title=server.ae_title)
    assert association.is_established
    try:
        status = association.send_c_store(path)
    finally:
        association.release()
    return int(status.Status), str(status.get("ErrorComment", "")).split(":", 1)[0]


def echoscu(server: scp.StoreSCP | int, caller: str = CALLER) -> subprocess.CompletedProcess[str]:
    port = server if isinstance(server, int) else server.port
    return subprocess.run(
        ["echoscu", "-v", "-aet", caller, "-aec", SCP_TITLE, "127.0.0.1", str(port)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def header(path: Path) -> pydicom.Dataset:
    return pydicom.dcmread(path, stop_before_pixels=True)


def stored_objects() -> list[Path]:
    return [p for p in Path(settings.LOUPE_STORAGE_DIR).rglob("*") if p.is_file()]


def transfers(associations: int) -> list[AuditEvent]:
    """The Instances Transferred records, once ``associations`` associations have one
    (each is written when its association ends, in the SCP's thread, maybe just after
    the peer has gone)."""
    deadline = time.monotonic() + 30
    while True:
        rows = list(
            AuditEvent.objects.filter(event_id=AuditEvent.EventId.INSTANCES_TRANSFERRED).order_by(
                "recorded_at"
            )
        )
        if len({r.request_id for r in rows}) >= associations or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)


def test_every_compressed_file_is_stored_in_its_own_transfer_syntax(
    server: scp.StoreSCP, shared_dicom: Path, tmp_path: Path
) -> None:
    files = sorted(p for p in (shared_dicom / "compressed").rglob("*.dcm"))
    assert len(files) == 19
    # dcmtk 3.6.7 does not know HTJ2K (1.2.840.10008.1.2.4.201, added in 3.6.8): it reads
    # that file as explicit little endian and cannot send it unchanged. pynetdicom's SCU
    # sends it from its file, bytes as they are.
    htj2k = [p for p in files if header(p).file_meta.TransferSyntaxUID == HTJ2K_LOSSLESS]
    assert len(htj2k) == 1
    by_dcmtk = [p for p in files if p not in htj2k]
    sent = storescu(server, *by_dcmtk, options=own_syntax_profile(by_dcmtk, tmp_path))
    assert sent.returncode == 0, sent.stderr[-2000:]
    assert (sent.stdout + sent.stderr).count("Received Store Response (Success)") == 18
    # storescu names each object's syntax and the context's: the same, every time.
    conversions = re.findall(r"Converting transfer syntax: (.+) -> (.+)", sent.stdout + sent.stderr)
    assert len(conversions) == 18
    assert all(source == target for source, target in conversions), conversions
    # That file has no Study Instance UID (a Type 1 attribute): it is refused, named.
    assert pynetdicom_store(server, htj2k[0]) == (0xA900, "missing_uid")
    # With its study, series and patient added, it is stored in HTJ2K like the others.
    completed = tmp_path / "htj2k-with-study.dcm"
    dataset = pydicom.dcmread(htj2k[0])
    dataset.StudyInstanceUID = pydicom.uid.generate_uid()
    dataset.SeriesInstanceUID = pydicom.uid.generate_uid()
    dataset.PatientID = "HTJ2K-TEST"
    dataset.save_as(completed, enforce_file_format=True)
    assert pynetdicom_store(server, completed) == (0x0000, "")
    files = [*by_dcmtk, completed]
    for path in files:
        original = header(path)
        row = Instance.objects.get(sop_instance_uid=original.SOPInstanceUID)
        stored = pydicom.dcmread(io.BytesIO(storage.read(row.storage_key)))
        # Stored as sent: its transfer syntax, and its data set's bytes unchanged.
        assert stored.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, path
        assert row.transfer_syntax_uid == original.file_meta.TransferSyntaxUID
        assert stored.SOPClassUID == original.SOPClassUID
        if "PixelData" in stored:
            assert stored.PixelData == pydicom.dcmread(path).PixelData, path
    assert Instance.objects.count() == 19
    # One association: one audit record per patient, the calling AE title as the user.
    # Two associations (dcmtk's, pynetdicom's): audit records per association and
    # patient, the calling AE title as the user.
    rows = transfers(3)
    assert {r.user_id for r in rows} == {CALLER}
    assert {r.client_address for r in rows} == {"127.0.0.1"}
    assert sum(r.instance_count for r in rows) == 19
    per_association = {
        r.request_id: (r.outcome, r.detail.get("stored", 0), r.detail.get("rejected", 0))
        for r in rows
    }
    assert sorted(per_association.values()) == [(0, 1, 0), (0, 18, 0), (8, 0, 1)]


def test_echo_is_answered(server: scp.StoreSCP) -> None:
    answer = echoscu(server)
    assert answer.returncode == 0, answer.stderr
    assert "Received Echo Response (Success)" in answer.stdout + answer.stderr


def test_an_identical_resend_is_a_success_as_the_duplicate_it_is(
    server: scp.StoreSCP, shared_dicom: Path, tmp_path: Path
) -> None:
    path = shared_dicom / "compressed" / "CT_WG04_CT1_RLE_fragments.dcm"
    options = own_syntax_profile([path], tmp_path)
    first = storescu(server, path, options=options)
    again = storescu(server, path, options=options)
    for sent in (first, again):
        assert sent.returncode == 0, sent.stderr
        assert "Received Store Response (Success)" in sent.stdout + sent.stderr
    assert Instance.objects.count() == 1
    assert len(stored_objects()) == 1
    details = [r.detail for r in transfers(2)]
    assert [d.get("stored", 0) for d in details] == [1, 0]
    assert [d.get("duplicate", 0) for d in details] == [0, 1]


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("badVR_NumberOfFrames_1A.dcm", "0xa900", "bad_pixel_module"),
        ("oob_rows_cols_46341.dcm", "0xa700", "frame_too_large"),
    ],
)
def test_a_refused_object_gets_a_failure_status_naming_the_reason_and_is_not_stored(
    server: scp.StoreSCP, shared_dicom: Path, name: str, status: str, reason: str
) -> None:
    sent = storescu(server, shared_dicom / "malformed" / name, options=["-d", "-R"])
    output = sent.stdout + sent.stderr
    assert f"DIMSE Status                  : {status}" in output, output[-2000:]
    assert "ErrorComment" in output and f"[{reason}: " in output  # names the reason
    assert Instance.objects.count() == 0
    assert stored_objects() == []  # not half-stored: no file either
    (row,) = transfers(1)
    assert (row.user_id, row.outcome, row.detail.get("rejected")) == (CALLER, 8, 1)


def test_only_the_allowed_callers_may_associate(dcmtk: None, shared_dicom: Path) -> None:
    server = start(["MODALITY", "OTHER@10.9.9.9"])
    try:
        assert echoscu(server, caller="MODALITY").returncode == 0
        for refused in ("NOTALLOWED", "OTHER"):  # OTHER is allowed at another address only
            answer = echoscu(server, caller=refused)
            assert answer.returncode != 0
            assert "Calling AE Title Not Recognized" in answer.stdout + answer.stderr
        path = shared_dicom / "compressed" / "US_ATL_jpeg_baseline_YBR422.dcm"
        sent = storescu(server, path, caller="NOTALLOWED")
        assert sent.returncode != 0
        assert Instance.objects.count() == 0
    finally:
        server.stop()


def test_allowed_callers_entries() -> None:
    allowed = scp.parse_callers(["PACS", " CT1@192.168.1.20 ", ""])
    assert scp.caller_allowed(allowed, "PACS", "10.0.0.1")
    assert scp.caller_allowed(allowed, "CT1", "192.168.1.20")
    assert not scp.caller_allowed(allowed, "CT1", "192.168.1.21")
    assert not scp.caller_allowed(allowed, "MR1", "192.168.1.20")
    assert scp.caller_allowed((), "ANYONE", "10.0.0.1")


def test_the_command_listens_and_answers_echo(dcmtk: None) -> None:
    helped = subprocess.run(
        [sys.executable, "manage.py", "storescp", "--help"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert helped.returncode == 0, helped.stderr
    assert "--ae-title" in helped.stdout and "--port" in helped.stdout
    process = subprocess.Popen(
        [sys.executable, "manage.py", "storescp", "--port", "0", "--ae-title", SCP_TITLE],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "LOUPE_DIMSE_ALLOWED_CALLERS": ""},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"C-STORE SCP {SCP_TITLE} on 127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert echoscu(port).returncode == 0
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
    assert process.returncode == 0


def test_a_bad_port_is_refused_by_the_command() -> None:
    answer = subprocess.run(
        [sys.executable, "manage.py", "storescp", "--port", "70000"],
        cwd=PROJECT_DIR, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert answer.returncode == 2
    assert "--port 70000 is not a TCP port" in answer.stderr
