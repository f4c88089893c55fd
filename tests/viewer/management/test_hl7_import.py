"""``manage.py hl7_import FILE...``: the ADT messages of files applied as the listener
applies them, one line for each, a refusal naming the problem and an honest exit status
(1: a message refused; 2: a file unreadable, and then nothing applied)."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from tests.conftest import PROJECT_DIR
from tests.viewer.hl7.messages import a24, a37, adt, pid
from tests.viewer.hl7.studies import store_two_identities, stored_objects
from viewer.models import AuditEvent, PatientLink, Study
from viewer.services import priors

pytestmark = pytest.mark.django_db

LINK = ("MRN-7^^^NORTH", "PLASTIC")  # PID-3 of the two PIDs: MRN-7 of NORTH, PLASTIC
PATIENT_RECORD = AuditEvent.EventId.PATIENT_RECORD.value


def run(*paths: Path) -> str:
    out = io.StringIO()
    call_command("hl7_import", *map(str, paths), stdout=out)
    return out.getvalue()


def refused(*paths: Path) -> tuple[CommandError, str]:
    out = io.StringIO()
    with pytest.raises(CommandError) as caught:
        call_command("hl7_import", *map(str, paths), stdout=out)
    return caught.value, out.getvalue()


def write(path: Path, *messages: str, ending: str = "\r") -> Path:
    path.write_bytes("".join(messages).replace("\r", ending).encode())
    return path


def prior_uids(study: Study) -> list[str]:
    current = Study.objects.get(pk=study.pk)
    return [p.study.study_instance_uid for p in priors.priors_of(current, Study.objects.all())]


def test_a_file_of_an_a24_links_and_the_other_identitys_study_is_a_prior(
    shared_dicom: Path, tmp_path: Path
) -> None:
    studies = store_two_identities(shared_dicom)
    before = stored_objects()
    assert prior_uids(studies.current) == []
    path = write(tmp_path / "a24.hl7", a24(*LINK, control="IMP-1"))

    output = run(path)
    assert output.splitlines() == [
        f"{path}: message 1 (ADT^A24 IMP-1): applied: link MRN-7^^^NORTH with PLASTIC",
        "1 message(s): 1 applied, 0 refused",
    ]
    assert prior_uids(studies.current) == [studies.other.study_instance_uid]
    assert stored_objects() == before
    link = PatientLink.objects.get()
    assert (link.source, link.created_by, link.reference) == ("hl7", "hl7:EPIC^NORTH", "IMP-1")
    records = AuditEvent.objects.filter(event_id=PATIENT_RECORD, action="C")
    assert sorted((r.patient_id, r.user_id, r.detail["reference"]) for r in records) == [
        ("MRN-7", "hl7:EPIC^NORTH", "IMP-1"),
        ("PLASTIC", "hl7:EPIC^NORTH", "IMP-1"),
    ]


def test_a_file_of_several_messages_applies_them_in_order(
    shared_dicom: Path, tmp_path: Path
) -> None:
    """As an interface engine logs them: MLLP-framed, LF line ends, in a batch."""
    studies = store_two_identities(shared_dicom)
    framed = [
        f"\x0b{message}\x1c\r"
        for message in (
            a24(*LINK, control="M1"),
            a24(*reversed(LINK), control="M2"),
            a37(*LINK, control="M3"),
            a24(*LINK, control="M4"),
        )
    ]
    batch = ["FHS|^~\\&|EPIC\r", "BHS|^~\\&|EPIC\r", *framed, "BTS|4\r", "FTS|1\r"]
    path = write(tmp_path / "engine.log", *batch, ending="\n")

    lines = run(path).splitlines()
    assert lines == [
        f"{path}: message 1 (ADT^A24 M1): applied: link MRN-7^^^NORTH with PLASTIC",
        f"{path}: message 2 (ADT^A24 M2): applied: link PLASTIC with MRN-7^^^NORTH "
        "(already linked)",
        f"{path}: message 3 (ADT^A37 M3): applied: unlink MRN-7^^^NORTH from PLASTIC",
        f"{path}: message 4 (ADT^A24 M4): applied: link MRN-7^^^NORTH with PLASTIC",
        "4 message(s): 4 applied, 0 refused",
    ]
    assert PatientLink.objects.get().reference == "M4"  # the last word: linked
    assert prior_uids(studies.current) == [studies.other.study_instance_uid]
    actions = AuditEvent.objects.filter(event_id=PATIENT_RECORD).order_by("recorded_at")
    assert [(r.action, r.detail["reference"]) for r in actions][::2] == [
        ("C", "M1"),
        ("D", "M3"),
        ("C", "M4"),
    ]


def test_several_files_are_applied_in_the_order_given(tmp_path: Path) -> None:
    first = write(tmp_path / "1.hl7", a24(*LINK, control="F1"))
    second = write(tmp_path / "2.hl7", a37(*LINK, control="F2"))
    output = run(first, second)
    assert f"{first}: message 1 (ADT^A24 F1): applied" in output
    assert f"{second}: message 1 (ADT^A37 F2): applied" in output
    assert output.endswith("2 message(s): 2 applied, 0 refused\n")
    assert not PatientLink.objects.exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        pytest.param(
            adt("A24", pid("PLASTIC"), control="BAD-1"),
            "message 1 (ADT^A24 BAD-1): refused: ADT^A24 needs two PID segments "
            "(one for each patient); it has 1",
            id="one-pid",
        ),
        pytest.param(
            adt("A24", pid("MRN-7^^^NORTH"), pid("^^^NORTH"), control="BAD-2"),
            "message 1 (ADT^A24 BAD-2): refused: PID-3 (patient identifier list) of the "
            "second PID repetition 1 has no ID (CX.1)",
            id="no-id",
        ),
        pytest.param(
            a24(*LINK, control="BAD-3").replace("ADT^A24^ADT_A24", "ORU^R01^ORU_R01"),
            "message 1 (ORU^R01 BAD-3): refused: ORU^R01 is not a message Loupe applies",
            id="another-message-type",
        ),
        pytest.param(
            a24("GOOD-1^^^NORTH~BAD\\E\\1^^^NORTH", "PLASTIC", control="BAD-4"),
            "message 1 (ADT^A24 BAD-4): refused: link BAD\\1^^^NORTH with PLASTIC:",
            id="a-link-the-cross-reference-refuses",
        ),
        pytest.param(
            "MSH|^~\\&|EPIC\r",
            "message 1 ((no MSH-9) (no MSH-10)): refused: a message without MSH-9 is not a "
            "message Loupe applies",
            id="a-bare-msh",
        ),
    ],
)
def test_a_bad_file_exits_1_naming_the_problem_and_changes_nothing(
    shared_dicom: Path, tmp_path: Path, text: str, reason: str
) -> None:
    store_two_identities(shared_dicom)
    before = stored_objects()
    path = write(tmp_path / "bad.hl7", text)

    error, output = refused(path)
    assert error.returncode == 1
    assert "message(s) refused" in str(error)
    assert f"{path}: {reason}" in output
    assert not PatientLink.objects.exists()
    assert not AuditEvent.objects.filter(event_id=PATIENT_RECORD).exists()
    assert stored_objects() == before


def test_a_message_is_applied_whole_or_not_at_all(tmp_path: Path) -> None:
    """The first pair of the message could be linked; the second cannot (a backslash in
    an LO Patient ID): neither is."""
    path = write(tmp_path / "half.hl7", a24("OK-1^^^N~BAD\\E\\1^^^N", "OTHER^^^N", control="H1"))
    error, output = refused(path)
    assert error.returncode == 1
    assert "refused: link BAD\\1^^^N with OTHER^^^N:" in output
    assert not PatientLink.objects.exists()
    assert not AuditEvent.objects.filter(event_id=PATIENT_RECORD).exists()


def test_a_refused_message_does_not_stop_the_others(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mixed.hl7",
        a24(*LINK, control="G1"),
        adt("A24", pid("PLASTIC"), control="B2"),
        a24("X-1^^^SOUTH", "X-2^^^SOUTH", control="G3"),
    )
    error, output = refused(path)
    assert (error.returncode, str(error)) == (1, "1 message(s) refused")
    assert f"{path}: message 2 (ADT^A24 B2): refused: ADT^A24 needs two PID segments" in output
    assert output.splitlines()[-1] == "3 message(s): 2 applied, 1 refused"
    assert sorted(PatientLink.objects.values_list("reference", flat=True)) == ["G1", "G3"]


def test_text_before_the_first_msh_is_refused_and_the_message_after_it_applied(
    tmp_path: Path,
) -> None:
    path = write(tmp_path / "cut.hl7", "PID|1||PLASTIC\r", a24(*LINK, control="AFTER"))
    error, output = refused(path)
    assert error.returncode == 1
    assert output.splitlines() == [
        f"{path}: message 0: refused: text before the first MSH segment",
        f"{path}: message 1 (ADT^A24 AFTER): applied: link MRN-7^^^NORTH with PLASTIC",
        "2 message(s): 1 applied, 1 refused",
    ]
    assert PatientLink.objects.get().reference == "AFTER"


@pytest.mark.parametrize(
    "text", ["", "\n\n", "FHS|^~\\&|EPIC\nFTS|0\n"], ids=["empty", "blank", "batch"]
)
def test_a_file_without_a_message_is_an_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.hl7"
    path.write_text(text)
    error, output = refused(path)
    assert error.returncode == 1
    assert str(error) == f"{path} holds no HL7 message (no MSH segment)"
    assert output == ""


def test_a_file_of_text_without_an_msh_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not an HL7 file\n")
    error, output = refused(path)
    assert (error.returncode, str(error)) == (1, "1 message(s) refused")
    assert output.splitlines() == [
        f"{path}: message 0: refused: text before the first MSH segment",
        "1 message(s): 0 applied, 1 refused",
    ]


def test_a_missing_file_exits_2_and_nothing_is_applied(tmp_path: Path) -> None:
    good = write(tmp_path / "good.hl7", a24(*LINK, control="G1"))
    missing = tmp_path / "missing.hl7"
    error, output = refused(good, missing)
    assert error.returncode == 2
    assert str(error) == f"cannot read {missing}: No such file or directory"
    assert output == ""
    assert not PatientLink.objects.exists()  # the readable file before it is not applied


@pytest.mark.parametrize(
    ("name", "text", "status", "message"),
    [
        ("missing.hl7", None, 2, "cannot read"),
        ("bad.hl7", adt("A24", pid("PLASTIC"), control="BAD-1"), 1, "1 message(s) refused"),
    ],
)
def test_manage_py_exit_status_and_message(
    tmp_path: Path, name: str, text: str | None, status: int, message: str
) -> None:
    """Refused before any database work: the command's own process, its exit status."""
    path = tmp_path / name
    if text is not None:
        write(path, text)
    done = subprocess.run(
        [sys.executable, "manage.py", "hl7_import", str(path)],
        cwd=PROJECT_DIR,
        env={**os.environ, "LOUPE_DATA_DIR": str(tmp_path / "data")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == status
    assert f"CommandError: {message}" in done.stderr
    assert "Traceback" not in done.stderr
