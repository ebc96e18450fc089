"""Shared pieces for the HL7 tests: senders, a small catalog with rooms, and message builders.

The builders write messages as a HIS does (segments ending in \\r, `|^~\\&`), one segment per function
with the fields the RIS reads as keyword arguments; `hl7_message(...)` joins them behind an MSH and
encodes them. `parse_ack` reads an answer with python-hl7, as the HIS would.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from itertools import count

import hl7
import pytest
from django.utils import timezone

from hl7_link.models import Charset, Sender
from hl7_link.services import sender_save
from scheduling.models import Procedure, Room
from tests.factories import ProcedureFactory, RoomFactory

_control_ids = count(1)

# A Thai patient as HOSxP sends one (HN as MR, the national ID as NI).
THAI_FAMILY = "ใจดี"
THAI_GIVEN = "สมชาย"
# A valid Thai national ID (check digit 0) and one with a wrong check digit.
NATIONAL_ID = "1101700203450"
BAD_NATIONAL_ID = "1101700203451"


def next_control_id() -> str:
    return f"MSG{next(_control_ids):06d}"


def msh(
    *,
    message_type: str = "ADT^A01",
    version: str = "2.3.1",
    control_id: str | None = None,
    application: str = "HOSXP",
    facility: str = "HOSPITAL",
    charset: str = "",
    processing_id: str = "P",
) -> str:
    fields = [
        "MSH",
        "^~\\&",
        application,
        facility,
        "RIS",
        "RADIOLOGY",
        "20260101120000",
        "",
        message_type,
        control_id or next_control_id(),
        processing_id,
        version,
        "",
        "",
        "",
        "",
        "",
        charset,
    ]
    return "|".join(fields).rstrip("|")


def pid(
    *,
    mrn: str = "HN0001",
    issuer: str = "",
    national_id: str = "",
    family: str = "Jaidee",
    given: str = "Somchai",
    middle: str = "",
    suffix: str = "",
    prefix: str = "",
    birth: str = "19800517",
    sex: str = "M",
    address: str = "",
    phone: str = "",
    identifiers: str | None = None,
) -> str:
    """PID; `identifiers` replaces the whole PID-3 when given."""
    pid3 = identifiers
    if pid3 is None:
        pid3 = f"{mrn}^^^{issuer}^MR"
        if national_id:
            pid3 += f"~{national_id}^^^TH^NI"
    name = "^".join([family, given, middle, suffix, prefix]).rstrip("^")
    fields = ["PID", "1", "", pid3, "", name, "", birth, sex, "", "", address, "", phone]
    return "|".join(fields).rstrip("|")


def pv1(*, location: str = "", referring: str = "") -> str:
    return "|".join(["PV1", "1", "O", location, "", "", "", "", referring]).rstrip("|")


def mrg(*, mrn: str, issuer: str = "") -> str:
    return f"MRG|{mrn}^^^{issuer}^MR"


def orc(
    *,
    control: str = "NW",
    placer: str = "PL0001",
    filler: str = "",
    start: str = "",
    priority: str = "",
    ordering: str = "",
    reason: str = "",
) -> str:
    timing = f"^^^{start}^^{priority}".rstrip("^") if (start or priority) else ""
    fields = ["ORC", control, f"{placer}^HOSXP" if placer else "", filler, "", "", "", timing]
    fields += ["", "", "", "", ordering, "", "", "", reason]
    return "|".join(fields).rstrip("|")


def obr(
    *,
    placer: str = "PL0001",
    code: str = "CTHEAD",
    meaning: str = "CT Head",
    start: str = "",
    priority: str = "",
    ordering: str = "",
    reason: str = "",
    section: str = "",
) -> str:
    fields = ["OBR", "1", placer, "", f"{code}^{meaning}^HIS" if code else ""]
    fields += [""] * 11 + [ordering]  # OBR-16
    fields += [""] * 7 + [section]  # OBR-24
    fields += ["", ""]
    fields.append(f"^^^{start}^^{priority}".rstrip("^") if (start or priority) else "")  # OBR-27
    fields += ["", "", "", reason]  # OBR-31
    return "|".join(fields).rstrip("|")


def tq1(*, start: str = "", priority: str = "") -> str:
    return "|".join(["TQ1", "1", "", "", "", "", "", start, "", priority]).rstrip("|")


def hl7_message(*segments: str, encoding: str = "ascii", terminator: str = "\r", **header) -> bytes:
    """An MSH built from `header` (see msh()) and `segments`, encoded as the sender would."""
    text = terminator.join([msh(**header), *segments]) + terminator
    return text.encode(encoding)


def adt(event: str = "A01", *segments: str, version: str = "2.3.1", **kwargs) -> bytes:
    """ADT^<event>: a PID (built from the kwargs pid() takes) unless `segments` are given."""
    header = {k: kwargs.pop(k) for k in ("control_id", "application", "charset", "encoding") if k in kwargs}
    body = segments or (pid(**kwargs),)
    return hl7_message(*body, message_type=f"ADT^{event}", version=version, **header)


def orm(*segments: str, **header) -> bytes:
    """ORM^O01 v2.3.1 of `segments` (default: a PID and one NW order for CTHEAD)."""
    body = segments or (pid(), pv1(), orc(), obr())
    return hl7_message(*body, message_type="ORM^O01", version="2.3.1", **header)


def omg(*segments: str, **header) -> bytes:
    """OMG^O19 v2.5.1 of `segments` (default: a PID and one NW order with TQ1)."""
    body = segments or (pid(), pv1(), orc(), tq1(), obr())
    return hl7_message(*body, message_type="OMG^O19^OMG_O19", version="2.5.1", **header)


@dataclass
class Ack:
    """An answer as the HIS reads it."""

    message: hl7.Message

    def value(self, address: str) -> str:
        segment, _, rest = address.partition("-")
        field, component, subcomponent = ([int(p) for p in rest.split(".")] + [1, 1])[:3]
        try:
            return str(self.message.extract_field(segment, 1, field, 1, component, subcomponent))
        except (KeyError, IndexError):
            return ""

    def field(self, address: str) -> str:
        """A whole field as sent ("MSH-9" -> "ACK^A08")."""
        segment, _, number = address.partition("-")
        found = self.segments(segment)
        if not found or int(number) >= len(found[0]):
            return ""
        return str(found[0][int(number)])

    @property
    def code(self) -> str:
        return self.value("MSA-1")

    @property
    def text(self) -> str:
        return self.value("MSA-3")

    def segments(self, segment_id: str) -> list:
        try:
            return list(self.message.segments(segment_id))
        except KeyError:
            return []

    @property
    def errors(self) -> list[str]:
        return [str(segment) for segment in self.segments("ERR")]


def parse_ack(raw: bytes, encoding: str = "ascii") -> Ack:
    text = raw.decode(encoding)
    assert text.startswith("MSH|^~\\&|"), text
    assert "\n" not in text
    return Ack(hl7.parse(text))


def tomorrow(hour: int, minute: int = 0) -> datetime:
    day = timezone.localdate() + timedelta(days=1)
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def hl7_ts(moment: datetime) -> str:
    """A time stamp as a HIS in the clinic writes it: local time, no offset."""
    return timezone.localtime(moment).strftime("%Y%m%d%H%M")


@pytest.fixture
def hl7_sender(db) -> Sender:
    """HOSXP, configured in the admin: ASCII unless MSH-18 says otherwise."""
    return sender_save(sender=Sender(application="HOSXP", description="Hospital HIS"))


@pytest.fixture
def thai_sender(db) -> Sender:
    """A Thai HIS that sends TIS-620 with MSH-18 empty."""
    return sender_save(sender=Sender(application="THAIHIS", default_charset=Charset.TIS620))


@pytest.fixture
def hl7_catalog(db) -> dict[str, object]:
    """CTHEAD (CT, 30 min) with two CT rooms open 08:00-17:00 every day, and an ultrasound."""
    return {
        "ct_head": ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head", modality="CT"),
        "us_abd": ProcedureFactory(
            code_value="USABD", code_meaning="US Abdomen", modality="US", body_part="ABDOMEN"
        ),
        "ct1": RoomFactory(name="CT 1", ae_title="CT01", modality="CT"),
        "ct2": RoomFactory(name="CT 2", ae_title="CT02", modality="CT"),
        "us1": RoomFactory(name="US 1", ae_title="US01", modality="US"),
    }


def counts() -> tuple[int, ...]:
    """How many patients, orders and procedures there are: a refused message changes none."""
    from scheduling.models import Order, OrderEvent, Patient

    return (
        Patient.objects.count(),
        Order.objects.count(),
        OrderEvent.objects.count(),
        Procedure.objects.count(),
        Room.objects.count(),
    )
