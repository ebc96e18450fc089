"""The Interface page's reading of a message: numbered as HL7 counts, named, split, decoded."""

from hl7_link.fields import field_name, message_rows, segment_lines
from hl7_link.views import decode_for_display

MESSAGE = (
    "MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203100000||ORM^O01|C1|P|2.3.1\r"
    "PID|1||HN1^^^HOSPITAL^MR~1234567890121^^^^NI||ใจดี^สมชาย||19800517|M\r"
    "ZXY|1|custom\r"
)


def rows_by_location(text: str) -> dict[str, object]:
    return {row.location: row for segment in message_rows(text) for row in segment.fields}


def test_msh_is_numbered_from_the_field_separator():
    rows = rows_by_location(MESSAGE)
    assert rows["MSH-1"].value == "|" and rows["MSH-1"].name == "Field Separator"
    assert rows["MSH-2"].value == "^~\\&" and not rows["MSH-2"].structured
    assert rows["MSH-9"].repetitions == [["ORM", "O01"]] and rows["MSH-9"].name == "Message Type"
    assert rows["MSH-10"].value == "C1" and rows["MSH-12"].name == "Version ID"


def test_fields_are_split_into_repetitions_and_components_and_empty_ones_left_out():
    rows = rows_by_location(MESSAGE)
    assert rows["PID-3"].repetitions == [
        ["HN1", "", "", "HOSPITAL", "MR"],
        ["1234567890121", "", "", "", "NI"],
    ]
    assert rows["PID-5"].name == "Patient Name" and rows["PID-5"].repetitions == [["ใจดี", "สมชาย"]]
    assert rows["PID-8"].value == "M" and not rows["PID-8"].structured
    assert "PID-2" not in rows and "PID-4" not in rows


def test_a_segment_the_ris_does_not_read_is_shown_by_number():
    segments = message_rows(MESSAGE)
    assert [segment.segment for segment in segments] == ["MSH", "PID", "ZXY"]
    assert segments[2].name == "" and segments[2].fields[1].location == "ZXY-2"
    assert segments[2].fields[1].name == ""


def test_the_names_cover_the_segments_of_orders_and_acks():
    assert field_name("OBR", 4) == "Universal Service Identifier"
    assert field_name("ORC", 2) == "Placer Order Number"
    assert field_name("TQ1", 7) == "Start Date/Time"
    assert field_name("IPC", 1) == "Accession Identifier"
    assert field_name("ZDS", 1) == "Study Instance UID"
    assert field_name("MRG", 1) == "Prior Patient Identifier List"
    assert field_name("PV1", 19) == "Visit Number"
    assert field_name("EVN", 1) == "Event Type Code"
    assert field_name("ERR", 3) == "HL7 Error Code"
    assert field_name("MSA", 2) == "Message Control ID"
    assert field_name("PID", 99) == "" and field_name("ZZZ", 1) == ""


def test_a_sender_that_ends_segments_with_newlines_is_read_the_same():
    assert segment_lines(MESSAGE.replace("\r", "\r\n")) == segment_lines(MESSAGE) == MESSAGE.split("\r")[:3]


def test_tis620_bytes_without_msh18_are_read_by_the_senders_default():
    decoded = decode_for_display(MESSAGE.encode("tis-620"), default_charset="TIS-620")
    assert "ใจดี^สมชาย" in decoded.text and not decoded.lossy


def test_msh18_wins_over_the_senders_default():
    text = MESSAGE.replace("|P|2.3.1", "|P|2.3.1||||||UNICODE UTF-8").replace("ใจดี", "Müller")
    decoded = decode_for_display(text.encode("utf-8"), default_charset="TIS-620")
    assert "Müller" in decoded.text and not decoded.lossy


def test_bytes_the_character_set_cannot_hold_are_shown_replaced_and_flagged():
    decoded = decode_for_display(MESSAGE.encode("tis-620"), default_charset="")
    assert decoded.lossy and "\ufffd" in decoded.text and "HN1^^^HOSPITAL" in decoded.text
    garbage = decode_for_display(b"\x00\xffnot hl7")
    assert garbage.lossy and "not hl7" in garbage.text
