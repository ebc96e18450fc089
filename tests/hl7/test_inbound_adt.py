"""ADT in: A01/A04/A05 register or update, A08 updates, A40 merges; PID read field by field."""

from datetime import date, timedelta

import pytest
from django.utils import timezone

from hl7_link.inbound import receive
from hl7_link.models import AckCode, Message
from scheduling import services
from scheduling.models import OrderEvent, OrderEventKind, Patient
from tests.hl7.conftest import (
    BAD_NATIONAL_ID,
    NATIONAL_ID,
    THAI_FAMILY,
    THAI_GIVEN,
    adt,
    counts,
    hl7_message,
    mrg,
    parse_ack,
    pid,
    tomorrow,
)


@pytest.mark.parametrize("event", ["A01", "A04", "A05", "A08"])
def test_a_new_patient_is_registered_with_every_field_pid_carries(hl7_sender, event):
    raw = adt(
        event,
        pid(
            mrn="HN100",
            issuer="HOSP1",
            family="Smith",
            given="Anna",
            middle="Maria",
            suffix="Jr",
            prefix="Dr",
            birth="19751231",
            sex="F",
            address="12 Sukhumvit Rd^Soi 3^Bangkok^^10110^TH",
            phone="021234567",
        ),
    )
    answer = parse_ack(receive(raw, peer="10.0.0.5"))
    assert answer.code == "AA", answer.text
    assert answer.field("MSH-9") == f"ACK^{event}"
    patient = Patient.objects.get(mrn="HN100")
    assert (patient.issuer, patient.family_name, patient.given_name, patient.middle_name) == (
        "HOSP1",
        "Smith",
        "Anna",
        "Maria",
    )
    # XPN puts the suffix (4th) before the prefix (5th).
    assert (patient.name_suffix, patient.name_prefix) == ("Jr", "Dr")
    assert (patient.birth_date, patient.sex, patient.phone) == (date(1975, 12, 31), "F", "021234567")
    assert patient.address == "12 Sukhumvit Rd, Soi 3, Bangkok, 10110, TH"
    message = Message.objects.get()
    assert (message.sender, message.patient, message.ack_code, message.peer) == (
        hl7_sender,
        patient,
        AckCode.AA,
        "10.0.0.5",
    )
    assert patient.history.first().history_user == hl7_sender.user


def test_the_issuer_is_the_senders_then_the_sites_when_pid3_has_no_authority(hl7_sender, settings):
    receive(adt("A04", pid(mrn="HN1")))
    assert Patient.objects.get(mrn="HN1").issuer == settings.RIS_ISSUER_OF_PATIENT_ID
    hl7_sender.issuer = "HOSXP-HN"
    hl7_sender.save()
    receive(adt("A04", pid(mrn="HN2")))
    assert Patient.objects.get(mrn="HN2").issuer == "HOSXP-HN"


def test_the_first_repetition_is_the_mrn_when_none_is_typed_mr(hl7_sender):
    raw = adt("A04", pid(identifiers=f"{NATIONAL_ID}^^^TH^NI~HN77~PP123^^^^PPN"))
    assert parse_ack(receive(raw)).code == "AA"
    assert Patient.objects.filter(mrn="HN77").exists()


def test_sex_u_is_left_empty(hl7_sender):
    receive(adt("A04", pid(mrn="HN3", sex="U")))
    assert Patient.objects.get(mrn="HN3").sex == ""


def test_a01_of_a_known_patient_updates_it(hl7_sender):
    receive(adt("A01", pid(mrn="HN4", family="Old")))
    receive(adt("A01", pid(mrn="HN4", family="New")))
    assert list(Patient.objects.values_list("family_name", flat=True)) == ["New"]


def test_a08_rewrites_the_worklist_items_of_the_patients_active_orders(hl7_sender, hl7_catalog):
    receive(adt("A04", pid(mrn="HN5", family="Jaidee")))
    patient = Patient.objects.get(mrn="HN5")
    order = services.order_book(
        patient=patient,
        procedure=hl7_catalog["ct_head"],
        room=hl7_catalog["ct1"],
        start=tomorrow(9),
        user=hl7_sender.user,
    )
    answer = parse_ack(receive(adt("A08", pid(mrn="HN5", family="Jaidee-Suk"))))
    assert answer.code == "AA"
    patient.refresh_from_db()
    assert patient.family_name == "Jaidee-Suk"
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.PATIENT_CHANGED).count() == 1


def test_an_a08_that_changes_nothing_writes_nothing(hl7_sender):
    receive(adt("A04", pid(mrn="HN6")))
    version = Patient.objects.get(mrn="HN6").version
    assert parse_ack(receive(adt("A08", pid(mrn="HN6")))).code == "AA"
    assert Patient.objects.get(mrn="HN6").version == version


def test_an_empty_field_keeps_the_value_and_two_quotes_clear_it(hl7_sender):
    receive(adt("A04", pid(mrn="HN7", phone="0812345678", address="Bangkok")))
    receive(adt("A08", pid(mrn="HN7", phone='""')))
    patient = Patient.objects.get(mrn="HN7")
    assert (patient.phone, patient.address) == ("", "Bangkok")


def test_a_merged_patient_found_by_its_mrn_is_updated_in_the_record_it_was_merged_into(hl7_sender):
    receive(adt("A04", pid(mrn="OLD1", family="Old")))
    receive(adt("A04", pid(mrn="NEW1", family="Kept")))
    old, kept = Patient.objects.get(mrn="OLD1"), Patient.objects.get(mrn="NEW1")
    Patient.objects.filter(pk=old.pk).update(merged_into=kept)
    assert parse_ack(receive(adt("A08", pid(mrn="OLD1", family="Kept", phone="099")))).code == "AA"
    assert Patient.objects.get(pk=kept.pk).phone == "099"
    assert Patient.objects.get(pk=old.pk).phone == ""


def test_a_national_id_is_taken_from_the_ni_repetition(hl7_sender):
    assert parse_ack(receive(adt("A04", pid(mrn="HN8", national_id=NATIONAL_ID)))).code == "AA"
    assert Patient.objects.get(mrn="HN8").national_id == NATIONAL_ID


def test_a_passport_is_taken_from_the_ppn_repetition_with_its_country(hl7_sender):
    raw = adt("A04", pid(identifiers="HN12^^^HOSP^MR~ab1234567^^^gbr^PPN"))
    assert parse_ack(receive(raw)).code == "AA"
    patient = Patient.objects.get(mrn="HN12")
    assert (patient.passport_number, patient.passport_country) == ("AB1234567", "GBR")
    # An A08 with another passport updates it; one without a PPN leaves it.
    receive(adt("A08", pid(identifiers="HN12^^^HOSP^MR~XY7654321^^^USA^PPN")))
    receive(adt("A08", pid(identifiers="HN12^^^HOSP^MR")))
    patient.refresh_from_db()
    assert (patient.passport_number, patient.passport_country) == ("XY7654321", "USA")


@pytest.mark.parametrize("passport", ["AB 12^^^GBR^PPN", "AB12^^^XXX^PPN"])
def test_a_malformed_passport_is_refused_at_pid3(hl7_sender, passport):
    before = counts()
    answer = parse_ack(receive(adt("A04", pid(identifiers=f"HN13^^^HOSP^MR~{passport}"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^3^102&")
    assert "PPN" in answer.text
    assert counts() == before


def test_a_passport_of_another_patient_is_refused_as_a_duplicate(hl7_sender):
    receive(adt("A04", pid(identifiers="HN14^^^HOSP^MR~AB1234567^^^GBR^PPN")))
    answer = parse_ack(receive(adt("A04", pid(identifiers="HN15^^^HOSP^MR~AB1234567^^^GBR^PPN"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^3^205&")
    assert not Patient.objects.filter(mrn="HN15").exists()


def test_a_national_id_with_a_wrong_check_digit_is_refused_at_pid3(hl7_sender):
    before = counts()
    answer = parse_ack(receive(adt("A04", pid(mrn="HN9", national_id=BAD_NATIONAL_ID))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^3^102&")
    assert BAD_NATIONAL_ID in answer.text
    assert counts() == before
    assert Message.objects.get().ack_code == AckCode.AE


def test_a_service_refusal_names_the_field_that_carried_it(hl7_sender):
    future = (timezone.localdate() + timedelta(days=3)).strftime("%Y%m%d")
    answer = parse_ack(receive(adt("A04", pid(mrn="HN10", birth=future))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^7^102&")
    assert not Patient.objects.exists()


def test_a_name_is_required_to_register(hl7_sender):
    answer = parse_ack(receive(adt("A04", pid(mrn="HN11", family="", given=""))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^5^101&")


def test_v251_errors_are_in_err2_err3_err4(hl7_sender):
    answer = parse_ack(receive(adt("A04", pid(mrn="HN12", birth="25230517"), version="2.5.1")))
    assert answer.code == "AE"
    assert answer.field("MSH-9") == "ACK^A04^ACK"
    assert answer.value("ERR-2") == "PID"
    assert answer.value("ERR-2.2") == "1" and answer.value("ERR-2.3") == "7"
    assert (answer.value("ERR-3"), answer.value("ERR-3.3"), answer.value("ERR-4")) == ("102", "HL70357", "E")
    assert "Buddhist" in answer.value("ERR-8")


def test_an_adt_without_pid_is_refused(hl7_sender):
    answer = parse_ack(receive(hl7_message("EVN|A08|20260101", message_type="ADT^A08")))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|PID^1^^100&")


def test_a_thai_name_in_tis620_without_msh18_arrives_intact(thai_sender):
    raw = adt(
        "A04",
        pid(mrn="HN13", family=THAI_FAMILY, given=THAI_GIVEN),
        application="THAIHIS",
        encoding="tis_620",
    )
    assert "MSH-18" not in raw.decode("tis_620")
    answer = parse_ack(receive(raw), "tis_620")
    assert answer.code == "AA", answer.text
    patient = Patient.objects.get(mrn="HN13")
    assert (patient.family_name, patient.given_name) == (THAI_FAMILY, THAI_GIVEN)
    assert Message.objects.get().charset == "TIS-620"


def test_a_thai_name_in_utf8_with_msh18(hl7_sender):
    raw = adt("A04", pid(mrn="HN14", family=THAI_FAMILY), charset="UNICODE UTF-8", encoding="utf-8")
    reply = receive(raw)
    answer = parse_ack(reply, "utf-8")
    assert answer.code == "AA"
    assert answer.value("MSH-18") == "UNICODE UTF-8"
    assert Patient.objects.get(mrn="HN14").family_name == THAI_FAMILY


def test_a_latin1_name_with_msh18_8859_1(hl7_sender):
    raw = adt("A04", pid(mrn="HN15", family="Müller", given="José"), charset="8859/1", encoding="latin-1")
    answer = parse_ack(receive(raw), "latin-1")
    assert (answer.code, answer.value("MSH-18")) == ("AA", "8859/1")
    assert Patient.objects.get(mrn="HN15").family_name == "Müller"


def test_thai_bytes_from_an_ascii_sender_are_refused_naming_the_byte_and_the_fix(hl7_sender):
    raw = adt("A04", pid(mrn="HN16", family=THAI_FAMILY), encoding="tis_620")
    answer = parse_ack(receive(raw))
    assert answer.code == "AR"
    assert "0x" in answer.text
    message = Message.objects.get()
    assert "character set" in message.error
    assert not Patient.objects.exists()


# --- A40 ------------------------------------------------------------------------------------------


def test_a40_merges_the_old_record_into_the_one_pid_names(hl7_sender, hl7_catalog):
    receive(adt("A04", pid(mrn="OLD2", family="Jaidee")))
    receive(adt("A04", pid(mrn="NEW2", family="Jaidee")))
    old, new = Patient.objects.get(mrn="OLD2"), Patient.objects.get(mrn="NEW2")
    order = services.order_book(
        patient=old,
        procedure=hl7_catalog["ct_head"],
        room=hl7_catalog["ct1"],
        start=tomorrow(10),
        user=hl7_sender.user,
    )
    answer = parse_ack(receive(adt("A40", pid(mrn="NEW2"), mrg(mrn="OLD2"))))
    assert answer.code == "AA", answer.text
    old.refresh_from_db()
    order.refresh_from_db()
    assert old.merged_into == new
    assert order.patient == new
    assert Message.objects.get(message_type="ADT^A40").patient == new


def test_a40_registers_the_surviving_record_when_it_is_new_and_moves_the_national_id(hl7_sender):
    receive(adt("A04", pid(mrn="OLD3", national_id=NATIONAL_ID)))
    answer = parse_ack(receive(adt("A40", pid(mrn="NEW3", national_id=NATIONAL_ID), mrg(mrn="OLD3"))))
    assert answer.code == "AA", answer.text
    new = Patient.objects.get(mrn="NEW3")
    assert Patient.objects.get(mrn="OLD3").merged_into == new
    assert new.national_id == NATIONAL_ID


def test_a40_sent_again_changes_nothing(hl7_sender):
    receive(adt("A04", pid(mrn="OLD4")))
    receive(adt("A04", pid(mrn="NEW4")))
    receive(adt("A40", pid(mrn="NEW4"), mrg(mrn="OLD4")))
    assert parse_ack(receive(adt("A40", pid(mrn="NEW4"), mrg(mrn="OLD4")))).code == "AA"


def test_a40_of_an_unknown_old_record_is_refused_at_mrg1(hl7_sender):
    receive(adt("A04", pid(mrn="NEW5")))
    before = counts()
    answer = parse_ack(receive(adt("A40", pid(mrn="NEW5"), mrg(mrn="NOPE"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|MRG^1^1^204&")
    assert counts() == before


def test_a40_without_mrg_is_refused(hl7_sender):
    answer = parse_ack(receive(adt("A40", pid(mrn="NEW6"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|MRG^1^^100&")
