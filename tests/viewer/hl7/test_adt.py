"""viewer/hl7/adt.py: ER7 text -> typed actions, or a refusal that names the reason."""

from __future__ import annotations

import pytest

from tests.viewer.hl7.messages import a24, a37, a40, adt, mrg, pid
from viewer.hl7.adt import (
    AdtRefused,
    Link,
    Merge,
    Unlink,
    format_identity,
    parse_adt,
    read,
)


def refusal(text: str) -> AdtRefused:
    with pytest.raises(AdtRefused) as caught:
        parse_adt(text)
    return caught.value


def test_a24_links_the_two_pid_identities_with_the_issuer_namespace() -> None:
    message = parse_adt(a24("MRN-7^^^NORTH&1.2.3.4&ISO^MR", "PLASTIC", control="CTL-1"))
    assert message.actions == (Link(("MRN-7", "NORTH"), ("PLASTIC", "")),)
    assert message.header.control_id == "CTL-1"
    assert message.header.trigger == "A24"
    assert message.header.user_id == "hl7:EPIC^NORTH"


def test_issuer_is_the_universal_id_where_the_namespace_is_empty() -> None:
    message = parse_adt(a24("77^^^&2.16.840.1.113883.19&ISO", "88^^^SOUTH"))
    assert message.actions == (Link(("77", "2.16.840.1.113883.19"), ("88", "SOUTH")),)


def test_a37_unlinks_the_same_pairs_a24_links() -> None:
    first, second = "A1^^^X~A2^^^Y", "B1^^^Z~B2^^^W"
    links = parse_adt(a24(first, second)).actions
    unlinks = parse_adt(a37(first, second)).actions
    assert len(links) == 3
    assert unlinks == tuple(Unlink(link.a, link.b) for link in links if isinstance(link, Link))


def test_repetitions_every_first_identity_with_the_second_first_and_back() -> None:
    message = parse_adt(a24("A1^^^X~A2^^^Y", "B1^^^Z~B2^^^W"))
    assert message.actions == (
        Link(("A1", "X"), ("B1", "Z")),
        Link(("A2", "Y"), ("B1", "Z")),
        Link(("A1", "X"), ("B2", "W")),
    )


def test_a40_merges_mrg_1_into_the_pid_3_identity() -> None:
    message = parse_adt(a40("NEW-1^^^NORTH", "OLD-9^^^NORTH~OLD-10^^^SOUTH"))
    assert message.actions == (
        Merge(("NEW-1", "NORTH"), ("OLD-9", "NORTH")),
        Merge(("NEW-1", "NORTH"), ("OLD-10", "SOUTH")),
    )


def test_a40_with_two_patient_groups_merges_each_into_its_own_pid() -> None:
    text = adt("A40", pid("S1^^^N"), mrg("M1^^^N"), pid("S2^^^N"), mrg("M2^^^N"))
    assert parse_adt(text).actions == (
        Merge(("S1", "N"), ("M1", "N")),
        Merge(("S2", "N"), ("M2", "N")),
    )


def test_the_name_never_links_anyone() -> None:
    """Two PIDs with the same name and different identifiers link the identifiers; the
    name (PID-5) is in no action."""
    message = parse_adt(adt("A24", pid("1^^^N", "SMITH^JOHN"), pid("2^^^N", "SMITH^JOHN")))
    assert message.actions == (Link(("1", "N"), ("2", "N")),)
    assert "SMITH" not in repr(message)


def test_escaped_characters_in_an_identifier_are_unescaped() -> None:
    message = parse_adt(a24("A\\T\\B^^^N", "C^^^N"))
    assert message.actions == (Link(("A&B", "N"), ("C", "N")),)


@pytest.mark.parametrize("ending", ["\n", "\r\n"])
def test_segments_may_end_with_lf_or_crlf(ending: str) -> None:
    text = a24("1^^^N", "2^^^N").replace("\r", ending)
    assert parse_adt(text).actions == (Link(("1", "N"), ("2", "N")),)


def test_an_identity_with_itself_is_skipped_and_a_message_of_nothing_else_refused() -> None:
    assert parse_adt(a24("1^^^N~2^^^N", "2^^^N")).actions == (Link(("1", "N"), ("2", "N")),)
    refused = refusal(a24("1^^^N", "1^^^N"))
    assert refused.ack_code == "AE"
    assert "same patient identity" in refused.message


@pytest.mark.parametrize(
    ("text", "ack_code", "reason"),
    [
        ("", "AR", "does not begin with an MSH segment"),
        ("hello world", "AR", "does not begin with an MSH segment"),
        ("PID|||1", "AR", "does not begin with an MSH segment"),
        ("MSH", "AR", "MSH-1 and MSH-2"),
        ("MSH|", "AR", "MSH-1 and MSH-2"),
        ("MSH|^~\\&", "AR", "MSH-1 and MSH-2"),
        ("MSHA^~\\&|x", "AR", "MSH-1 and MSH-2"),
        ("MSH|^^\\&|x", "AR", "MSH-1 and MSH-2"),
        ("MSH|^~|x", "AR", "MSH-1 and MSH-2"),
        ("MSH|^~\\&|", "AR", "a message without MSH-9 is not a message Loupe applies"),
        (
            adt("A24", pid("1"), pid("2")).replace("ADT^A24", "ORU^R01"),
            "AR",
            "ORU^R01 is not a message Loupe applies",
        ),
        (adt("A01", pid("1")), "AR", "ADT^A01 is not a message Loupe applies"),
        (a24("1", "2", control=""), "AR", "MSH-10 (message control ID) is empty"),
        (a24("1", "2") + a24("3", "4"), "AR", "more than one MSH segment"),
        (
            adt("A24", pid("1")),
            "AE",
            "ADT^A24 needs two PID segments (one for each patient); it has 1",
        ),
        (adt("A37", pid("1"), pid("2"), pid("3")), "AE", "ADT^A37 needs two PID segments"),
        (
            adt("A24", "PID|1", pid("2")),
            "AE",
            "PID-3 (patient identifier list) of the first PID is empty",
        ),
        (a24("1", ""), "AE", "PID-3 (patient identifier list) of the second PID is empty"),
        (a24("1", '""'), "AE", "repetition 1 has no ID (CX.1)"),
        (a24("1", "^^^N"), "AE", "of the second PID repetition 1 has no ID (CX.1)"),
        (a24("1~^^^N", "2"), "AE", "of the first PID repetition 2 has no ID (CX.1)"),
        (adt("A40", pid("1")), "AE", "PID segment 1 of ADT^A40 is followed by 0 MRG segments"),
        (adt("A40", mrg("1"), pid("2")), "AE", "an MRG segment comes before any PID segment"),
        (adt("A40", mrg("1")), "AE", "an MRG segment comes before any PID segment"),
        (adt("A40", "EVN|x"), "AE", "ADT^A40 needs a PID segment"),
        (adt("A40", pid("1"), mrg("2"), mrg("3")), "AE", "followed by 2 MRG segments"),
        (
            adt("A40", pid("1"), "MRG|"),
            "AE",
            "MRG-1 (prior patient identifier list) of MRG 1 is empty",
        ),
        (a40("1^^^N", "1^^^N"), "AE", "name the same patient identity: nothing to merge"),
    ],
)
def test_refused_with_the_reason(text: str, ack_code: str, reason: str) -> None:
    refused = refusal(text)
    assert reason in refused.message
    assert refused.ack_code == ack_code


def test_a_refusal_names_the_field_for_err_2() -> None:
    refused = refusal(a24("1", "^^^N"))
    assert refused.location == ("PID", 2, 3)
    assert refused.hl7_error == "101"  # required field missing (HL7 table 0357)
    assert refusal(adt("A01", pid("1"))).hl7_error == "201"  # unsupported event code
    assert refusal(adt("A24", pid("1")).replace("ADT^A24", "ORU^R01")).hl7_error == "200"


@pytest.mark.parametrize(
    "garbage",
    [
        "MSH|^~\\&|\x00\x01\x02|||||||",
        "MSH|^~\\&|a|b|c|d|e||ADT^A24|1\r\r\r|||",
        "MSH|^~\\&|a|b|c|d|e||ADT^A24^^^^^^^^|1\rPID|||~~~~\rPID|||&&&^^^&&&",
        "MSH|^~\\&|a|b|c|d|e||ADT^^A24|1\rPID|||1\rPID|||2",
        "MSH|^~\\&|a|b|c|d|e||^A24|1",
        "MSH|^~\\&" + "|" * 5000,
        "MSH|^~\\&|" + "^" * 5000 + "~" * 5000,
        "MSH|^~\\&|a|b|c|d|e||ADT^A40|1\rPID|||1\rMRG|\\\\\\\\",
        "MSH|^~\\&|a|b|c|d|e||ADT^A24|1\rPID|||1^^^" + "&" * 50 + "\rPID|||\\X00\\",
    ],
)
def test_garbage_is_refused_or_read_never_an_unexpected_exception(garbage: str) -> None:
    try:
        parse_adt(garbage)
    except AdtRefused as refused:
        assert refused.ack_code in {"AE", "AR"}
        assert refused.message


def test_read_keeps_one_message_with_its_segments() -> None:
    message = read(a24("1", "2"))
    assert [str(segment[0]) for segment in message] == ["MSH", "EVN", "PID", "PV1", "PID"]


def test_format_identity_reads_like_a_cx() -> None:
    assert format_identity(("MRN-7", "NORTH")) == "MRN-7^^^NORTH"
    assert format_identity(("PLASTIC", "")) == "PLASTIC"
