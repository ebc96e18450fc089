"""The messages built for the HIS (hl7_link.outbound), read back with python-hl7 as the HIS would."""

from __future__ import annotations

import hl7
import pytest
from django.utils import timezone

from hl7_link.models import AppointmentStyle, Charset, Hl7Version, Receiver
from hl7_link.outbound import build
from scheduling import services
from scheduling.models import OrderEvent, OrderEventKind, OrderStatus
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, ThaiPatientFactory
from tests.hl7.conftest import NATIONAL_ID, THAI_FAMILY, THAI_GIVEN, tomorrow

pytestmark = pytest.mark.django_db


def receiver(**fields) -> Receiver:
    values = {
        "name": "HIS",
        "host": "127.0.0.1",
        "port": 2576,
        "receiving_application": "HOSXP",
        "receiving_facility": "HOSPITAL",
        "charset": Charset.UTF8,
        "version": Hl7Version.V231,
        "appointment_style": AppointmentStyle.SIU,
    }
    values.update(fields)
    return Receiver.objects.create(**values)


def last_event(order) -> OrderEvent:
    return order.events.order_by("-id").first()


def parsed(text: str) -> hl7.Message:
    assert "\n" not in text and text.endswith("\r")
    return hl7.parse(text)


def value(message: hl7.Message, segment: str, field: int, *path: int) -> str:
    """A field as the HIS reads it: whole ("SIU^S12") or one component (repetition, component...)."""
    try:
        if not path:
            return message.unescape(str(message.segment(segment)[field]))
        return message.unescape(str(message.extract_field(segment, 1, field, *path)))
    except (KeyError, IndexError):
        return ""


def ts(moment) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z")


@pytest.fixture
def booked(user):
    patient = PatientFactory(
        mrn="HN0042",
        issuer="HOSP",
        national_id=NATIONAL_ID,
        passport_number="AB1234567",
        passport_country="GBR",
    )
    procedure = ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head", coding_scheme="HIS")
    room = RoomFactory(name="CT 1", ae_title="CT01")
    return services.order_book(
        patient=patient,
        procedure=procedure,
        room=room,
        start=tomorrow(9),
        user=user,
        placer_order_number="PL77",
        placer_authority="HOSXP",
    )


def test_it_builds_siu_s12_for_a_booking(settings, booked):
    settings.HL7_APPLICATION, settings.HL7_FACILITY = "RIS", "RADIOLOGY"
    his = receiver()
    event = last_event(booked)

    message_type, text = build(his, event, booked)

    message = parsed(text)
    assert message_type == "SIU^S12"
    assert [str(s[0]) for s in message] == ["MSH", "SCH", "PID", "RGS", "AIS", "AIL"]
    assert [value(message, "MSH", n) for n in (3, 4, 5, 6, 9, 10, 12, 18)] == [
        "RIS",
        "RADIOLOGY",
        "HOSXP",
        "HOSPITAL",
        "SIU^S12",
        f"{his.pk}.{event.pk}",
        "2.3.1",
        "UNICODE UTF-8",
    ]
    assert value(message, "SCH", 1, 1, 1) == "PL77" and value(message, "SCH", 1, 1, 2) == "HOSXP"
    assert value(message, "SCH", 2, 1, 1) == booked.accession_number
    assert value(message, "SCH", 11, 1, 3) == "M30"
    assert value(message, "SCH", 11, 1, 4) == ts(booked.scheduled_start)
    assert value(message, "SCH", 11, 1, 5) == ts(booked.scheduled_end)
    assert value(message, "SCH", 25) == "Booked"
    assert value(message, "SCH", 27, 1, 1) == booked.accession_number
    pid3 = message.segment("PID")[3]
    assert [str(rep) for rep in pid3] == ["HN0042^^^HOSP^MR", f"{NATIONAL_ID}^^^TH^NI", "AB1234567^^^GBR^PPN"]
    assert value(message, "PID", 5, 1, 1) == "Jaidee"
    assert value(message, "PID", 7) == "19800517" and value(message, "PID", 8) == "M"
    assert [value(message, "AIS", 3, 1, n) for n in (1, 2, 3)] == ["CTHEAD", "CT Head", "HIS"]
    assert value(message, "AIS", 4) == ts(booked.scheduled_start)
    assert value(message, "AIS", 7) == "30"
    assert [value(message, "AIL", 3, 1, n) for n in (1, 2)] == ["CT01", "CT 1"]


def test_it_builds_s13_for_a_reschedule_and_s15_with_the_reason_for_a_cancellation(user, booked):
    his = receiver()
    moved = services.order_reschedule(order=booked, start=tomorrow(11), user=user)

    message_type, text = build(his, last_event(moved), moved)
    assert message_type == "SIU^S13"
    assert value(parsed(text), "SCH", 11, 1, 4) == ts(tomorrow(11))

    # The reason carries the separators a HIS would split on: escaped, and read back whole.
    cancelled = services.order_cancel(order=moved, reason="Patient ill | call ^back & rebook", user=user)
    message_type, text = build(his, last_event(cancelled), cancelled)
    message = parsed(text)
    assert message_type == "SIU^S15"
    assert value(message, "SCH", 25) == "Cancelled"
    assert "\\F\\" in text and "\\S\\" in text and "\\T\\" in text
    assert value(message, "SCH", 6, 1, 2) == "Patient ill | call ^back & rebook"


def test_progress_goes_as_order_status_even_to_an_siu_receiver(user, booked):
    his = receiver()
    steps = []
    order = booked
    for step in (services.order_arrive, services.order_start, services.order_complete):
        order = step(order=order, user=user)
        steps.append((last_event(order), order))

    statuses = []
    for event, order in steps:
        message_type, text = build(his, event, order)
        message = parsed(text)
        assert message_type == "ORM^O01"
        assert [str(s[0]) for s in message] == ["MSH", "PID", "ORC", "OBR", "ZDS"]
        assert value(message, "ORC", 1) == "SC"
        assert value(message, "ORC", 2, 1, 1) == "PL77"
        assert value(message, "ORC", 3, 1, 1) == booked.accession_number
        assert value(message, "OBR", 4, 1, 1) == "CTHEAD"
        assert value(message, "OBR", 24) == "CT"
        assert value(message, "ZDS", 1, 1, 1) == booked.study_instance_uid
        statuses.append(value(message, "ORC", 5))
    assert statuses == ["IP", "IP", "CM"]


def test_an_order_receiver_on_251_gets_omg_with_tq1(user, booked):
    his = receiver(version=Hl7Version.V251, appointment_style=AppointmentStyle.ORDER)

    message_type, text = build(his, last_event(booked), booked)

    message = parsed(text)
    assert message_type == "OMG^O19"
    assert value(message, "MSH", 9) == "OMG^O19^OMG_O19" and value(message, "MSH", 12) == "2.5.1"
    assert [str(s[0]) for s in message] == ["MSH", "PID", "ORC", "TQ1", "OBR"]
    assert value(message, "ORC", 1) == "SC" and value(message, "ORC", 5) == "SC"
    assert value(message, "TQ1", 7) == ts(booked.scheduled_start)
    assert value(message, "TQ1", 9) == "R"
    assert value(message, "OBR", 36) == ts(booked.scheduled_start)
    cancelled = services.order_cancel(order=booked, reason="Duplicate", user=user)
    _type, text = build(his, last_event(cancelled), cancelled)
    assert value(parsed(text), "ORC", 5) == "CA"
    assert value(parsed(text), "ORC", 16, 1, 2) == "Duplicate"


def test_siu_on_251_names_the_structure_and_carries_tq1(booked):
    his = receiver(version=Hl7Version.V251)

    _type, text = build(his, last_event(booked), booked)

    message = parsed(text)
    assert value(message, "MSH", 9) == "SIU^S12^SIU_S12"
    assert [str(s[0]) for s in message] == ["MSH", "SCH", "TQ1", "PID", "RGS", "AIS", "AIL"]


def test_a_requested_order_cancelled_is_an_order_cancellation_without_room_or_time(user):
    order = services.order_request(
        patient=PatientFactory(),
        procedure=ProcedureFactory(),
        user=user,
        requested_start=tomorrow(10),
        placer_order_number="PL9",
        placer_authority="HOSXP",
    )
    # The order as a cancellation from the To schedule list leaves it: no room, no time.
    order.status, order.cancel_reason = OrderStatus.CANCELLED, "Not needed"
    event = OrderEvent(id=10**9, order=order, kind=OrderEventKind.CANCELLED, status=order.status, version=2)

    message_type, text = build(receiver(), event, order)

    message = parsed(text)
    assert message_type == "ORM^O01"
    assert value(message, "ORC", 5) == "CA"
    assert value(message, "ORC", 2, 1, 1) == "PL9"
    assert value(message, "ORC", 7, 1, 4) == "" and value(message, "OBR", 36) == ""
    assert "AIL" not in text and "SCH" not in text


@pytest.mark.parametrize(
    ("charset", "msh18"),
    [(Charset.UTF8, "UNICODE UTF-8"), (Charset.LATIN1, "8859/1"), (Charset.TIS620, ""), (Charset.ASCII, "")],
)
def test_msh18_follows_the_receivers_character_set(booked, charset, msh18):
    _type, text = build(receiver(charset=charset), last_event(booked), booked)
    assert value(parsed(text), "MSH", 18) == msh18


def test_a_thai_name_is_written_as_text(user):
    patient = ThaiPatientFactory()
    order = services.order_book(
        patient=patient, procedure=ProcedureFactory(), room=RoomFactory(), start=tomorrow(9), user=user
    )
    _type, text = build(receiver(), last_event(order), order)
    message = parsed(text)
    assert value(message, "PID", 5, 1, 1) == THAI_FAMILY
    assert value(message, "PID", 5, 1, 2) == THAI_GIVEN
    assert OrderEventKind.BOOKED == last_event(order).kind
