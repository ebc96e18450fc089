"""`manage.py serve_hl7` in its own process, with Debian's `mllp_send` as the HIS.

What the HIS sees (the ACKs mllp_send prints) is checked against what the RIS saved (the test database
the listener wrote to).
"""

from __future__ import annotations

import pytest

from hl7_link.models import AckCode, Message
from scheduling.models import Order, OrderStatus, Patient
from tests.factories import ProcedureFactory, RoomFactory
from tests.hl7.serve import Listener, adt_a04, day_at, mllp_send, msa, orm_nw, segment, write_messages

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def catalog(db):
    """One CT room open every day 08:00-17:00 and the procedure the messages order."""
    room = RoomFactory(name="CT 1", ae_title="CT01")
    procedure = ProcedureFactory(code_value="CTHEADWO", code_meaning="CT Head without contrast")
    return room, procedure


@pytest.fixture
def listener(tmp_path, worklist_dir, catalog):
    running = Listener(tmp_path, {}).start()
    yield running
    running.stop()


def test_an_adt_a04_from_a_text_file_registers_the_patient(listener, tmp_path):
    # --loose: a file typed by hand, segments on lines of their own (mllp_send turns \n into \r).
    text = adt_a04("ADT0001", mrn="HN100234", national_id="3100700012340").replace(b"\r", b"\n")
    (tmp_path / "a04.txt").write_bytes(text)

    [ack] = mllp_send(listener.port, tmp_path / "a04.txt", "--loose")

    assert msa(ack) == ("AA", "ADT0001")
    patient = Patient.objects.get(mrn="HN100234", issuer="HOSP")
    assert (patient.family_name, patient.given_name) == ("Jaidee", "Somchai")
    assert patient.national_id == "3100700012340"
    assert "HL7 127.0.0.1 ADT^A04 ADT0001 -> AA in" in listener.output()


def test_an_orm_nw_books_the_exam_and_the_ack_carries_our_accession(
    listener, tmp_path, worklist_dir, catalog
):
    room, _ = catalog
    path = write_messages(
        tmp_path / "orm.hl7", [orm_nw("ORM0001", placer="ORD7001", mrn="HN100235", start=day_at(1, 10))]
    )

    [ack] = mllp_send(listener.port, path)

    assert msa(ack) == ("AA", "ORM0001")
    assert segment(ack, b"MSH")[9] == b"ORR^O02"
    order = Order.objects.get(placer_order_number="ORD7001")
    orc = segment(ack, b"ORC")
    assert orc[1] == b"OK"
    assert orc[2].split(b"^")[0] == b"ORD7001"
    assert orc[3].split(b"^")[0].decode() == order.accession_number
    assert order.status == OrderStatus.SCHEDULED and order.room == room
    assert order.patient.mrn == "HN100235"
    # On the worklist at once: the file the modality's server reads.
    assert (worklist_dir / f"{order.accession_number}.wl").is_file()
    assert "HL7 127.0.0.1 ORM^O01 ORM0001 -> AA in" in listener.output()


def test_an_unknown_sender_gets_ar_and_nothing_is_saved(listener, tmp_path):
    path = write_messages(
        tmp_path / "orm.hl7",
        [orm_nw("X0001", placer="ORD9", mrn="HN100236", start=day_at(1, 11), sender="STRANGER")],
    )

    [ack] = mllp_send(listener.port, path)

    assert msa(ack) == ("AR", "X0001")
    assert b"STRANGER" in segment(ack, b"MSA")[3]
    assert not Order.objects.exists()
    assert not Patient.objects.filter(mrn="HN100236").exists()


def test_a_message_sent_again_gets_its_first_ack_and_books_once(listener, tmp_path):
    message = orm_nw("ORM0002", placer="ORD7002", mrn="HN100237", start=day_at(1, 11))
    path = write_messages(tmp_path / "twice.hl7", [message, message])

    first, again = mllp_send(listener.port, path)

    assert msa(first) == ("AA", "ORM0002")
    assert again == first
    assert Order.objects.filter(placer_order_number="ORD7002").count() == 1
    assert Message.objects.filter(control_id="ORM0002").count() == 1


def test_answers_come_in_the_order_of_the_messages_on_one_connection(listener, tmp_path):
    messages = [
        orm_nw(f"SEQ{n:03d}", placer=f"SEQ{n}", mrn=f"HN2{n:05d}", start=day_at(n + 1, 9)) for n in range(8)
    ]

    acks = mllp_send(listener.port, write_messages(tmp_path / "many.hl7", messages))

    assert [msa(ack) for ack in acks] == [("AA", f"SEQ{n:03d}") for n in range(8)]


@pytest.fixture
def small_listener(tmp_path, worklist_dir, catalog):
    running = Listener(tmp_path, {"HL7_MAX_MESSAGE_BYTES": "2000"}).start()
    yield running
    running.stop()


def test_an_oversize_message_gets_ar_and_the_next_one_is_taken(small_listener, tmp_path):
    huge = orm_nw("BIG0001", placer="ORD8", mrn="HN100238", start=day_at(1, 12), extra="NTE|1||" + "x" * 5000)
    normal = orm_nw("ORM0003", placer="ORD7003", mrn="HN100239", start=day_at(1, 13))

    refused, taken = mllp_send(small_listener.port, write_messages(tmp_path / "big.hl7", [huge, normal]))

    assert msa(refused) == ("AR", "BIG0001")
    assert b"above the limit of 2000 bytes" in refused
    assert msa(taken) == ("AA", "ORM0003")
    assert not Order.objects.filter(placer_order_number="ORD8").exists()
    assert Order.objects.filter(placer_order_number="ORD7003").exists()
    # Not in the message log (it never reached the pipeline): the listener's log is its record.
    assert not Message.objects.filter(control_id="BIG0001").exists()
    assert "BIG0001 -> AR: Message of" in small_listener.output()


def test_an_application_error_is_ae_and_saves_nothing(listener, tmp_path):
    path = write_messages(
        tmp_path / "orm.hl7",
        [orm_nw("ORM0004", placer="ORD7004", mrn="HN100240", start=day_at(1, 14), code="NOPE")],
    )

    [ack] = mllp_send(listener.port, path)

    assert msa(ack) == ("AE", "ORM0004")
    assert b"NOPE" in ack
    assert not Order.objects.exists()
    assert Message.objects.get(control_id="ORM0004").ack_code == AckCode.AE
