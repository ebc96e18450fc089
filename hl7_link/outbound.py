"""The messages we send the HIS about an order: appointments (SIU) or order status updates (ORM/OMG).

A receiver chooses how bookings reach it (Receiver.appointment_style):

- SIU, as IHE RAD-48 Appointment Notification: booked -> SIU^S12, rescheduled -> SIU^S13, cancelled ->
  SIU^S15, no-show -> SIU^S26 (SCH-25 "Noshow"). The issue named S14, but HL7 defines S13 as
  "notification of appointment rescheduling" (a new time) and S14 as "modification" (other details), so
  a moved exam is an S13. The exam's progress
  (arrived, started, completed) is not an appointment: it goes as an order status update, below. So does
  the cancellation of an order that was never booked (cancelled while Requested): there is no
  appointment to cancel, only the order.
- ORDER, as IHE RAD-3 (the order filler's status updates to the placer): every kind as ORM^O01 (v2.3.1)
  or OMG^O19 (v2.5.1, timing in TQ1) with ORC-1 SC and ORC-5 the order's status: SC scheduled, IP arrived
  or started, CM completed, CA cancelled or a no-show (ORC-16 NOSHOW^No show: table 0038 has no code of its
  own for it).

The message is built when the outbox takes the event (hl7_link.outbox), from the order as it is then
(usually a moment after the commit) and the status the event recorded; it is stored and sent as built,
so a retry sends the same bytes with the same MSH-10. A requested order has no room and no time yet, so
those fields stay empty rather than carry a guess.

Times are the clinic's local time with its UTC offset (YYYYMMDDHHMMSS+0700): a receiver that reads the
offset and one that ignores it both read the right hour.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.utils import timezone

from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus, Priority

from .models import AppointmentStyle, Charset, Hl7Version, Receiver
from .parsing import escape

# Appointment events as SIU (trigger event, its HL7 table 0003 description for SCH-6, SCH-25 status).
SIU_EVENTS = {
    OrderEventKind.BOOKED: ("S12", "Notification of new appointment booking", "Booked"),
    OrderEventKind.RESCHEDULED: ("S13", "Notification of appointment rescheduling", "Booked"),
    OrderEventKind.CANCELLED: ("S15", "Notification of appointment cancellation", "Cancelled"),
    # SCH-25 "Noshow" is table 0278's own status for it.
    OrderEventKind.NO_SHOW: (
        "S26",
        "Notification that patient did not show up for scheduled appointment",
        "Noshow",
    ),
}

# The order's status -> ORC-5 (HL7 table 0038) in the status updates we send. Arrived counts as in
# process: the patient is in the department, which is what the placer has to learn from it.
ORDER_STATUS = {
    OrderStatus.REQUESTED: "",
    OrderStatus.SCHEDULED: "SC",
    OrderStatus.ARRIVED: "IP",
    OrderStatus.IN_PROGRESS: "IP",
    OrderStatus.COMPLETED: "CM",
    OrderStatus.CANCELLED: "CA",
    # Table 0038 has no no-show: the order will not be performed (a rebooking is a new order), so CA,
    # with ORC-16 NO_SHOW_REASON telling it from a cancellation. DC means stopped once under way.
    OrderStatus.NO_SHOW: "CA",
}

# ORC-16 (order control code reason, CE) of a no-show's status update.
NO_SHOW_REASON = ("NOSHOW", "No show")

# Our priorities -> HL7 table 0027 (TQ-6, TQ1-9): S stat, A as soon as possible, R routine.
PRIORITY_CODES = {
    Priority.STAT: "S",
    Priority.HIGH: "A",
    Priority.ROUTINE: "R",
    Priority.MEDIUM: "R",
    Priority.LOW: "R",
}

# MSH-18 of a receiver's character set (table 0211); TIS-620 has no code and goes with MSH-18 empty.
MSH18 = {
    Charset.ASCII: "",
    Charset.UTF8: "UNICODE UTF-8",
    Charset.LATIN1: "8859/1",
    Charset.TIS620: "",
}


def control_id(receiver: Receiver, event: OrderEvent) -> str:
    """MSH-10 of the message telling `receiver` of `event`: "<receiver id>.<event id>".

    Unique (one message per receiver and event, and event ids are never reused), fixed when the message
    is queued, and short enough for v2.3.1's 20 characters. The receiver recognises a re-sent message by
    it together with our MSH-3, so it does not need our application's name repeated.
    """
    return f"{receiver.pk}.{event.pk}"


def _ts(moment: datetime | None) -> str:
    return timezone.localtime(moment).strftime("%Y%m%d%H%M%S%z") if moment else ""


def _segment(*fields: str) -> str:
    return "|".join(fields).rstrip("|")


def _components(*values: str) -> str:
    """Escaped values joined as the components of one field."""
    return "^".join(escape(value) for value in values).rstrip("^")


def _is_v25(receiver: Receiver) -> bool:
    return receiver.version == Hl7Version.V251


def _msh(receiver: Receiver, event: OrderEvent, message_type: str) -> str:
    return _segment(
        "MSH",
        "^~\\&",
        escape(settings.HL7_APPLICATION),
        escape(settings.HL7_FACILITY),
        escape(receiver.receiving_application),
        escape(receiver.receiving_facility),
        _ts(timezone.now()),
        "",
        message_type,
        escape(control_id(receiver, event)),
        "P",
        receiver.version,
        "",
        "",
        "",
        "",
        "",
        MSH18.get(receiver.charset, ""),
    )


def _pid(order: Order) -> str:
    patient = order.patient
    identifiers = _components(patient.mrn, "", "", patient.issuer, "MR")
    if patient.national_id:
        identifiers += "~" + _components(patient.national_id, "", "", "TH", "NI")
    if patient.passport_number:
        identifiers += "~" + _components(patient.passport_number, "", "", patient.passport_country, "PPN")
    name = _components(
        patient.family_name, patient.given_name, patient.middle_name, patient.name_suffix, patient.name_prefix
    )
    return _segment(
        "PID", "1", "", identifiers, "", name, "", f"{patient.birth_date:%Y%m%d}", escape(patient.sex)
    )


def _placer(order: Order) -> str:
    return _components(order.placer_order_number, order.placer_authority) if order.placer_order_number else ""


def _filler(order: Order) -> str:
    return _components(order.accession_number, settings.HL7_APPLICATION)


def _service(order: Order) -> str:
    procedure = order.procedure
    return _components(procedure.code_value, procedure.code_meaning, procedure.coding_scheme)


def _scheduled(order: Order) -> bool:
    return order.scheduled_start is not None and order.room_id is not None


def _timing(order: Order) -> str:
    """TQ (SCH-11, ORC-7, OBR-27): ^^duration^start^end^priority; no time for a requested order."""
    priority = PRIORITY_CODES.get(order.priority, "R")
    if not _scheduled(order):
        return f"^^^^^{priority}"
    return "^".join(
        ["", "", f"M{order.duration_minutes}", _ts(order.scheduled_start), _ts(order.scheduled_end), priority]
    )


def _tq1(order: Order) -> str:
    scheduled = _scheduled(order)
    return _segment(
        "TQ1",
        "1",
        "",
        "",
        "",
        "",
        "",
        _ts(order.scheduled_start) if scheduled else "",
        _ts(order.scheduled_end) if scheduled else "",
        PRIORITY_CODES.get(order.priority, "R"),
    )


def _siu(receiver: Receiver, event: OrderEvent, order: Order) -> tuple[str, str]:
    trigger, description, filler_status = SIU_EVENTS[event.kind]
    v25 = _is_v25(receiver)
    message_type = f"SIU^{trigger}"
    if event.kind == OrderEventKind.CANCELLED and order.cancel_reason:
        description = order.cancel_reason
    duration = str(order.duration_minutes)
    sch = _segment(
        "SCH",
        _placer(order),
        _filler(order),
        "",
        "",
        "",
        _components(trigger, description),
        "",
        "",
        duration,
        "min",
        _timing(order),
        *[""] * 13,
        filler_status,
        _placer(order),
        _filler(order),
    )
    start = _ts(order.scheduled_start)
    room = order.room
    segments = [
        # Every SIU event has the message structure SIU_S12 (MSH-9.3 from v2.5 on).
        _msh(receiver, event, f"{message_type}^SIU_S12" if v25 else message_type),
        sch,
        *([_tq1(order)] if v25 else []),
        _pid(order),
        _segment("RGS", "1"),
        _segment("AIS", "1", "", _service(order), start, "", "", duration, "min", "", filler_status),
        _segment(
            "AIL",
            "1",
            "",
            _components(room.ae_title, room.name),
            escape(room.modality),
            "",
            start,
            "",
            "",
            duration,
            "min",
            "",
            filler_status,
        ),
    ]
    return message_type, "\r".join(segments) + "\r"


def _order_status(receiver: Receiver, event: OrderEvent, order: Order) -> tuple[str, str]:
    v25 = _is_v25(receiver)
    message_type = "OMG^O19" if v25 else "ORM^O01"
    status = ORDER_STATUS.get(event.status, "")
    reason = ("", order.cancel_reason) if event.status == OrderStatus.CANCELLED else ("", "")
    if event.status == OrderStatus.NO_SHOW:
        reason = NO_SHOW_REASON
    orc = _segment(
        "ORC",
        "SC",
        _placer(order),
        _filler(order),
        "",
        status,
        "",
        "" if v25 else _timing(order),
        "",
        _ts(event.at),
        "",
        "",
        _components("", order.requesting_physician) if order.requesting_physician else "",
        *[""] * 3,
        _components(*reason) if reason[1] else "",
    )
    scheduled = _scheduled(order)
    obr = _segment(
        "OBR",
        "1",
        _placer(order),
        _filler(order),
        _service(order),
        *[""] * 11,
        _components("", order.requesting_physician) if order.requesting_physician else "",
        *[""] * 7,
        escape(order.procedure.modality),
        "",
        "",
        "" if v25 else _timing(order),
        "",
        "",
        "",
        _components("", order.reason) if order.reason else "",
        *[""] * 4,
        _ts(order.scheduled_start) if scheduled else "",
    )
    segments = [_msh(receiver, event, f"{message_type}^OMG_O19" if v25 else message_type), _pid(order), orc]
    if v25:
        segments.append(_tq1(order))
    segments.append(obr)
    if not v25:
        # IHE's ZDS in v2.3.1: the Study Instance UID, so the HIS can open the images in the PACS.
        segments.append(
            _segment(
                "ZDS", _components(order.study_instance_uid, settings.HL7_APPLICATION, "Application", "DICOM")
            )
        )
    return message_type, "\r".join(segments) + "\r"


def build(receiver: Receiver, event: OrderEvent, order: Order) -> tuple[str, str]:
    """The message telling `receiver` of `event` (of `order`): (message type such as "SIU^S12", text).

    The text's segments end in \\r; MSH-10 is control_id(receiver, event). Encoding it in the receiver's
    character set is the outbox's business (hl7_link.outbox).
    """
    if receiver.appointment_style == AppointmentStyle.SIU and event.kind in SIU_EVENTS and _scheduled(order):
        return _siu(receiver, event, order)
    return _order_status(receiver, event, order)
