"""hl7_link.parsing: the header from the bytes, the character set, escapes, addresses and time stamps."""

from datetime import UTC, date, datetime, timedelta

import pytest
from django.utils import timezone

from hl7_link.models import Charset
from hl7_link.parsing import (
    Parsed,
    ParseProblem,
    codec_for,
    decode,
    escape,
    parse_date,
    parse_ts,
    read_header,
    split_address,
    unescape,
)
from tests.hl7.conftest import THAI_FAMILY, hl7_message, pid


def test_the_header_is_read_from_the_bytes_before_decoding():
    raw = hl7_message(pid(family=THAI_FAMILY), encoding="tis_620", message_type="ADT^A08", control_id="X1")
    header = read_header(raw)
    assert header.sending_application == "HOSXP"
    assert (header.message_code, header.trigger_event) == ("ADT", "A08")
    assert (header.control_id, header.version, header.processing_id, header.charset) == (
        "X1",
        "2.3.1",
        "P",
        "",
    )


def test_a_message_without_msh_is_refused_as_a_segment_sequence_error():
    with pytest.raises(ParseProblem) as caught:
        read_header(b"PID|1||HN1\r")
    assert caught.value.code == 100


@pytest.mark.parametrize(
    ("msh18", "default", "codec"),
    [
        ("UNICODE UTF-8", Charset.ASCII, "utf-8"),
        ("8859/1", Charset.TIS620, "iso8859_1"),
        ("8859/11", Charset.ASCII, "tis_620"),
        ("8859/5", Charset.ASCII, "iso8859_5"),
        ("", Charset.TIS620, "tis_620"),
        ("", Charset.ASCII, "ascii"),
        ("", Charset.UTF8, "utf-8"),
        ("", Charset.LATIN1, "latin-1"),
    ],
)
def test_msh18_chooses_the_codec_and_empty_falls_back_to_the_senders_default(msh18, default, codec):
    header = read_header(hl7_message(pid(), charset=msh18))
    assert codec_for(header, default) == codec


def test_an_unknown_msh18_is_refused_at_msh18():
    header = read_header(hl7_message(pid(), charset="KLINGON"))
    with pytest.raises(ParseProblem) as caught:
        codec_for(header, Charset.ASCII)
    assert caught.value.field == "MSH-18"
    assert "KLINGON" in caught.value.text


def test_a_byte_ascii_cannot_hold_is_named_with_the_fix():
    raw = hl7_message(pid(family=THAI_FAMILY), encoding="tis_620")
    with pytest.raises(ParseProblem) as caught:
        decode(raw, "ascii", declared="")
    assert f"0x{THAI_FAMILY.encode('tis_620')[0]:02X}" in caught.value.text
    assert "character set" in caught.value.text


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segment_terminators_are_normalised(terminator):
    text = decode(hl7_message(pid(), terminator=terminator), "ascii", declared="")
    assert text.split("\r")[1].startswith("PID|")
    assert "\n" not in text


def test_values_are_read_by_address_and_unescaped():
    raw = hl7_message(pid(family="O\\T\\Brien\\F\\x", given="Ann\\S\\e", address="1 Road\\.br\\Bangkok"))
    parsed = Parsed(decode(raw, "ascii", declared=""), codec="ascii")
    assert parsed.value("PID-5.1") == "O&Brien|x"
    assert parsed.value("PID-5.2") == "Ann^e"
    assert parsed.value("PID-11") == "1 Road\nBangkok"
    assert parsed.value("PID-3.5") == "MR"
    assert parsed.value("ZZZ-1") == ""
    assert parsed.value("PID-99.3") == ""


def test_hex_escapes_are_bytes_of_the_messages_character_set():
    thai = THAI_FAMILY.encode("tis_620").hex().upper()
    assert unescape(f"\\X{thai}\\", "\r|~^&", "\\", "tis_620") == THAI_FAMILY
    assert unescape("\\XC3A9\\", "\r|~^&", "\\", "utf-8") == "é"


@pytest.mark.parametrize("value", ["\\Xzz\\", "\\X1\\", "abc\\", "\\Q\\", "\\E", "\\X\\"])
def test_a_bad_escape_stays_as_it_came(value):
    assert unescape(value, "\r|~^&", "\\", "utf-8") == value


def test_the_messages_own_encoding_characters_are_used():
    raw = b"MSH#*@!%#HIS#F#RIS#R#20260101##ADT*A01#1#P#2.3.1\rPID#1##HN1*!!!*MR##Fam*Giv!F!x\r"
    parsed = Parsed(decode(raw, "ascii", declared=""), codec="ascii")
    assert parsed.value("PID-5.1") == "Fam"
    assert parsed.value("PID-5.2") == "Giv#x"
    assert read_header(raw).message_code == "ADT"


def test_addresses():
    assert split_address("pid-5.2") == ("PID", 5, 2, 1)
    assert split_address("OBR-27.4.1") == ("OBR", 27, 4, 1)
    with pytest.raises(ValueError):
        split_address("PV1 3")


def test_a_time_stamp_without_offset_is_the_clinics_local_time():
    moment, has_time = parse_ts("202601021430", field="TQ1-7")
    assert has_time
    assert timezone.localtime(moment).replace(tzinfo=None) == datetime(2026, 1, 2, 14, 30)


def test_a_time_stamp_with_offset_keeps_it():
    moment, _ = parse_ts("20260102143000.5+0000", field="ORC-7")
    assert moment == datetime(2026, 1, 2, 14, 30, 0, 500000, tzinfo=UTC)
    moment, _ = parse_ts("202601021430-0130", field="ORC-7")
    assert moment.utcoffset() == -timedelta(hours=1, minutes=30)


def test_a_date_alone_has_no_time():
    moment, has_time = parse_ts("20260102", field="ORC-7")
    assert not has_time and timezone.localtime(moment).date() == date(2026, 1, 2)


@pytest.mark.parametrize(
    "value", ["2026013", "20261301", "20260230", "tomorrow", "202601021499", "2026+2500"]
)
def test_what_is_not_a_time_stamp_is_refused_at_its_field(value):
    with pytest.raises(ParseProblem) as caught:
        parse_ts(value, field="ORC-7")
    assert caught.value.field == "ORC-7"


def test_a_buddhist_era_year_is_refused_as_such():
    with pytest.raises(ParseProblem) as caught:
        parse_ts("256901021430", field="TQ1-7")
    assert "Buddhist" in caught.value.text


def test_a_birth_date_is_the_date_written():
    assert parse_date("19800517", field="PID-7") == date(1980, 5, 17)
    assert parse_date("198005172330+0000", field="PID-7") == date(1980, 5, 17)
    assert parse_date("", field="PID-7") is None


def test_our_values_are_escaped_for_the_ack():
    assert escape("a|b^c~d\\e&f\rg") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f g"
