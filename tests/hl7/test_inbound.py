"""The inbound pipeline: who may send, what is taken, one effect per control ID, the log, the answer."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import OperationalError, connection

from hl7_link import handlers
from hl7_link.inbound import receive, reprocess
from hl7_link.models import AckCode, Charset, Message, Receiver, Sender
from hl7_link.services import receiver_save, sender_for, sender_save
from scheduling.models import Order, OrderEvent, Patient
from tests.hl7.conftest import THAI_FAMILY, adt, counts, hl7_message, obr, orc, orm, parse_ack, pid

# --- senders ---------------------------------------------------------------------------------------


def test_a_new_sender_gets_an_account_that_cannot_log_in(db):
    sender = sender_save(sender=Sender(application="HOSXP"))
    assert sender.user.username == "hl7-hosxp"
    assert not sender.user.has_usable_password()
    other = sender_save(sender=Sender(application="hosxp "))
    assert other.user.username == "hl7-hosxp-2" and other.application == "hosxp"


def test_disabling_a_sender_disables_its_account(hl7_sender):
    hl7_sender.enabled = False
    sender_save(sender=hl7_sender)
    assert not get_user_model().objects.get(pk=hl7_sender.user_id).is_active


def test_a_new_receiver_starts_at_the_end_of_the_event_stream(db, hl7_sender, hl7_catalog):
    receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1")))
    last = OrderEvent.objects.latest("id").id
    receiver = receiver_save(receiver=Receiver(name="HIS", host="127.0.0.1", port=2576))
    assert receiver.last_event_id == last
    receiver.port = 2577
    receiver_save(receiver=receiver)
    assert Receiver.objects.get().last_event_id == last


def test_an_unknown_sender_is_refused_and_logged_without_a_sender(db):
    answer = parse_ack(receive(adt("A04", pid(), application="STRANGER")))
    assert answer.code == "AR"
    assert answer.errors[0].startswith("ERR|MSH^1^3^204&")
    assert "HL7_KNOWN_SENDERS" in answer.errors[0]
    message = Message.objects.get()
    assert (message.sender, message.sending_application, message.ack_code) == (None, "STRANGER", AckCode.AR)
    assert not Patient.objects.exists()


def test_a_sender_listed_in_the_settings_is_created_at_its_first_message(db, settings):
    settings.HL7_KNOWN_SENDERS = ["THAIHIS"]
    settings.HL7_DEFAULT_CHARSET = Charset.TIS620
    raw = adt("A04", pid(family=THAI_FAMILY), application="THAIHIS", encoding="tis_620")
    assert parse_ack(receive(raw), "tis_620").code == "AA"
    sender = Sender.objects.get()
    assert (sender.application, sender.default_charset, sender.user.username) == (
        "THAIHIS",
        "TIS-620",
        "hl7-thaihis",
    )
    assert sender_for("THAIHIS") == sender
    assert Patient.objects.get().family_name == THAI_FAMILY


def test_a_disabled_sender_is_refused(hl7_sender):
    hl7_sender.enabled = False
    sender_save(sender=hl7_sender)
    answer = parse_ack(receive(adt("A04", pid())))
    assert answer.code == "AR" and "disabled" in answer.text
    assert not Patient.objects.exists()


def test_a_sender_is_held_to_its_addresses(hl7_sender):
    hl7_sender.allowed_addresses = "10.1.0.0/16, 192.168.5.5"
    hl7_sender.save()
    refused = parse_ack(receive(adt("A04", pid(mrn="HN1")), peer="10.2.0.1"))
    assert refused.code == "AR" and "10.2.0.1" in refused.text
    assert parse_ack(receive(adt("A04", pid(mrn="HN2")), peer="10.1.3.4")).code == "AA"
    assert parse_ack(receive(adt("A04", pid(mrn="HN3")), peer="192.168.5.5")).code == "AA"
    assert sorted(Patient.objects.values_list("mrn", flat=True)) == ["HN2", "HN3"]


@pytest.mark.parametrize(
    ("header", "code", "field"),
    [
        ({"message_type": "ADT^A01", "version": "2.6"}, "203", "12"),
        ({"message_type": "ORM^O01", "version": "2.4"}, "203", "12"),
        ({"message_type": "SIU^S12", "version": "2.3.1"}, "200", "9"),
        ({"message_type": "ADT^A03", "version": "2.3.1"}, "201", "9"),
        ({"message_type": "ADT^A01", "version": "2.5.1", "processing_id": "D"}, "202", "11"),
        ({"message_type": "ADT^A01", "charset": "EBCDIC"}, "103", "18"),
        ({"message_type": "ADT^A01", "control_id": "X" * 200}, "102", "10"),
    ],
)
def test_what_is_not_taken_is_rejected_with_ar(hl7_sender, header, code, field):
    answer = parse_ack(receive(hl7_message(pid(), **header)))
    assert answer.code == "AR"
    err = answer.segments("ERR")[0]
    # v2.5 ERR-2/ERR-3, v2.3.1 ERR-1 segment^seq^field^code
    text = str(err)
    assert f"MSH^1^{field}" in text and code in text
    assert not Patient.objects.exists()


@pytest.mark.parametrize("version", ["2.3", "2.4", "2.5"])
def test_adt_is_taken_in_the_versions_around(hl7_sender, version):
    assert parse_ack(receive(adt("A04", pid(), version=version))).code == "AA"


def test_training_messages_are_taken(hl7_sender):
    assert parse_ack(receive(hl7_message(pid(), message_type="ADT^A04", processing_id="T"))).code == "AA"


def test_a_message_without_a_control_id_is_rejected(hl7_sender):
    raw = b"MSH|^~\\&|HOSXP|H|RIS|R|20260101||ADT^A04||P|2.3.1\rPID|1||HN1^^^^MR||A^B||19800101\r"
    assert parse_ack(receive(raw)).code == "AR"
    assert not Patient.objects.exists()


@pytest.mark.parametrize("raw", [b"", b"hello", b"\x0b\x1c\r", b"MSH", b"MSHabcdefgh\r"])
def test_what_is_not_a_message_gets_a_parsable_ar(db, raw):
    answer = parse_ack(receive(raw))
    assert answer.code == "AR"
    assert Message.objects.get().ack_code == AckCode.AR


# --- one effect per control ID --------------------------------------------------------------------


def test_a_message_sent_again_gets_the_same_answer_and_acts_once(hl7_sender, hl7_catalog):
    raw = orm(pid(), orc(placer="PL1"), obr(placer="PL1"), control_id="C1")
    first = receive(raw)
    second = receive(raw)
    assert first == second
    assert Order.objects.count() == 1
    message = Message.objects.get()
    assert message.attempts == 1


def test_an_ae_is_answered_again_too(hl7_sender, hl7_catalog):
    raw = orm(pid(), orc(placer="PL1"), obr(placer="PL1", code="NOPE"), control_id="C2")
    assert receive(raw) == receive(raw)
    assert Message.objects.get().attempts == 1


def test_the_same_control_id_from_another_sender_is_another_message(hl7_sender, thai_sender):
    receive(adt("A04", pid(mrn="HN1"), control_id="SAME"))
    receive(adt("A04", pid(mrn="HN2"), control_id="SAME", application="THAIHIS"))
    assert Patient.objects.count() == 2


def test_a_rejected_message_sent_again_once_the_cause_is_fixed_is_applied(hl7_sender):
    raw = adt("A04", pid(family=THAI_FAMILY), encoding="tis_620", control_id="C3")
    assert parse_ack(receive(raw)).code == "AR"
    hl7_sender.default_charset = Charset.TIS620
    sender_save(sender=hl7_sender)
    assert parse_ack(receive(raw), "tis_620").code == "AA"
    message = Message.objects.get()
    assert (message.ack_code, message.attempts, message.error) == (AckCode.AA, 2, "")
    assert Patient.objects.get().family_name == THAI_FAMILY


def test_an_unknown_senders_message_is_reprocessed_once_it_is_configured(db):
    receive(adt("A04", pid(), application="NEWHIS"))
    message = Message.objects.get()
    sender = sender_save(sender=Sender(application="NEWHIS"))
    message = reprocess(message)
    assert (message.ack_code, message.sender) == (AckCode.AA, sender)
    assert Patient.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_connections_with_the_same_control_id_act_once(hl7_sender):
    raw = adt("A04", pid(mrn="HN1"), control_id="RACE")
    answers, barrier = [], threading.Barrier(4)

    def send():
        try:
            barrier.wait()
            answers.append(receive(raw))
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 4 and len(set(answers)) == 1
    assert parse_ack(answers[0]).code == "AA"
    assert Patient.objects.count() == 1
    assert Message.objects.count() == 1


# --- the transaction ------------------------------------------------------------------------------


def test_an_unexpected_failure_is_ae_207_logged_and_leaves_nothing(
    hl7_sender, hl7_catalog, monkeypatch, caplog
):
    real = handlers.order_new

    def fails_after_saving(ctx, group, control):
        real(ctx, group, control)
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(handlers, "order_new", fails_after_saving)
    before = counts()
    answer = parse_ack(receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1"))))
    assert answer.code == "AE"
    assert "207" in answer.errors[0]
    assert "disk on fire" not in answer.text
    assert counts() == before
    assert Message.objects.get().ack_code == AckCode.AE
    assert any("disk on fire" in (r.exc_text or "") for r in caplog.records if r.exc_info)


def test_a_database_failure_answers_ae_and_logs_nothing_so_the_resend_acts(hl7_sender, monkeypatch):
    def down(ctx):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(handlers, "adt", down)
    raw = adt("A04", pid(), control_id="DB1")
    answer = parse_ack(receive(raw))
    assert answer.code == "AE" and "send it again" in answer.text
    assert not Message.objects.exists()
    monkeypatch.undo()
    assert parse_ack(receive(raw)).code == "AA"
    assert Patient.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_aa_is_answered_only_after_the_commit(hl7_sender):
    # Another connection (the front desk's) sees the patient and the log row the moment AA is in hand.
    answer = parse_ack(receive(adt("A04", pid(mrn="HN1"))))
    assert answer.code == "AA"
    seen = {}

    def look():
        try:
            seen["patient"] = Patient.objects.filter(mrn="HN1").exists()
            seen["logged"] = Message.objects.filter(ack_code=AckCode.AA, patient__mrn="HN1").exists()
        finally:
            connection.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    assert seen == {"patient": True, "logged": True}


def test_the_answer_goes_back_in_the_senders_character_set(thai_sender, hl7_catalog):
    raw = orm(
        pid(family=THAI_FAMILY),
        orc(placer="PL1"),
        obr(placer="PL1", code="XRAY", meaning="เอกซเรย์ทรวงอก"),
        application="THAIHIS",
        encoding="tis_620",
    )
    reply = receive(raw)
    answer = parse_ack(reply, "tis_620")
    assert answer.code == "AE"
    assert "เอกซเรย์ทรวงอก" in answer.errors[0]
    assert answer.value("MSH-18") == ""
