"""What a message does to the department's records: ADT registers, updates and merges patients; ORM^O01
and OMG^O19 place, cancel and change orders. Every change goes through scheduling.services, as the
sender's account, so the booking rules, the history and the worklist are those of the front desk.

A handler raises ack.Problem (or the services' ValidationError) to refuse the message; the caller
applies it in a savepoint, so a refusal leaves nothing of the change behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.utils.translation import gettext as _

from scheduling import services
from scheduling.models import Order, OrderStatus, Patient, Priority, Procedure, Room
from scheduling.validators import (
    default_issuer,
    validate_country_alpha3,
    validate_passport_number,
    validate_thai_national_id,
)

from .ack import OrderReply, Problem
from .models import Sender
from .parsing import Header, Parsed, ParseProblem, parse_date, parse_ts, split_address
from .services import one

# HL7 sends "" (two double quotes) to say "clear this field"; an empty field means "not sent".
HL7_NULL = '""'

# ORC-7.6 / OBR-27.6 / TQ1-9 (HL7 table 0027) -> our priorities.
PRIORITIES = {
    "S": Priority.STAT,
    "A": Priority.HIGH,
    "C": Priority.HIGH,
    "T": Priority.HIGH,
    "R": Priority.ROUTINE,
    "P": Priority.ROUTINE,
    "PRN": Priority.ROUTINE,
}

# Our order status -> ORC-5 (HL7 table 0038); a requested order is not scheduled yet: no status.
ORDER_STATUS_CODES = {
    OrderStatus.REQUESTED: "",
    OrderStatus.SCHEDULED: "SC",
    OrderStatus.ARRIVED: "SC",
    OrderStatus.IN_PROGRESS: "IP",
    OrderStatus.COMPLETED: "CM",
    OrderStatus.CANCELLED: "CA",
    OrderStatus.NO_SHOW: "CA",  # as hl7_link.outbound says it: the order will not be performed
}

# ORC-1 -> (the reply when done, the reply when refused).
ORDER_CONTROLS = {"NW": ("OK", "UA"), "CA": ("CR", "UC"), "DC": ("DR", "UD"), "XO": ("XR", "UX")}

# The most an order's text fields (reason, clinicians) hold: DICOM LO.
TEXT_MAX = 64
# The length of an exam's notes: room for a reason too long for the reason field (DICOM LO).
NOTES_MAX = 1024


@dataclass
class OrderGroup:
    """One order of an ORM/OMG: its ORC and the segments that follow it (OBR, TQ1), with their
    occurrence numbers for ERR."""

    orc: object
    orc_seq: int
    obr: object | None = None
    obr_seq: int = 1
    tq1: object | None = None
    tq1_seq: int = 1


@dataclass
class Context:
    parsed: Parsed
    header: Header
    sender: Sender
    patient: Patient | None = None
    order: Order | None = None
    replies: list[OrderReply] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    group: OrderGroup | None = None

    @property
    def user(self):
        return self.sender.user


# --- field addresses, for naming where a service's refusal came from ------------------------------


def start_field(ctx: Context) -> str:
    group = ctx.group
    if group is not None and group.tq1 is not None:
        return "TQ1-7"
    return "ORC-7"


def hl7_field_of(ctx: Context, name: str) -> str:
    """The HL7 field that carried a service's field `name` ("birth_date" -> "PID-7")."""
    fields = {
        "mrn": "PID-3",
        "issuer": "PID-3",
        "national_id": "PID-3",
        "passport_number": "PID-3",
        "passport_country": "PID-3",
        "family_name": "PID-5",
        "given_name": "PID-5",
        "middle_name": "PID-5",
        "name_prefix": "PID-5",
        "name_suffix": "PID-5",
        "birth_date": "PID-7",
        "sex": "PID-8",
        "address": "PID-11",
        "phone": "PID-13",
        "procedure": "OBR-4",
        "duration_minutes": "OBR-4",
        "placer_order_number": "ORC-2",
        "requesting_physician": "ORC-12",
        "referring_physician": "PV1-8",
        "reason": "OBR-31",
        "priority": "TQ1-9" if start_field(ctx) == "TQ1-7" else "ORC-7",
        "start": start_field(ctx),
        "room": ctx.sender.station_field.strip().upper() or "OBR-24",
    }
    return fields.get(name, "")


def _sequence_of(ctx: Context, segment: str) -> int:
    group = ctx.group
    if group is None:
        return 1
    return {"ORC": group.orc_seq, "OBR": group.obr_seq, "TQ1": group.tq1_seq}.get(segment, 1)


def problems_from_validation(ctx: Context, error: ValidationError) -> list[Problem]:
    """A service's refusal as ERR problems, each at the HL7 field that carried the value refused."""
    if not hasattr(error, "error_dict"):
        segment = "ORC" if ctx.group is not None else ("PID" if ctx.parsed.has("PID") else "MSH")
        return [
            Problem(" ".join(error.messages), code=207, segment=segment, sequence=_sequence_of(ctx, segment))
        ]
    problems = []
    for name, errors in error.error_dict.items():
        address = hl7_field_of(ctx, name) or ("ORC" if ctx.group is not None else "PID")
        codes = {e.code for e in errors}
        if codes & {"placer_number_taken", "mrn_taken", "national_id_taken", "passport_taken"}:
            code = 205
        elif "required" in codes:
            code = 101
        elif address in ("ORC", "PID"):
            code = 207
        else:
            code = 102
        messages = [message for e in errors for message in e.messages]
        segment = address.split("-")[0]
        problems.append(
            Problem.at(address, " ".join(messages), code=code, sequence=_sequence_of(ctx, segment))
        )
    return problems


# --- reading values -----------------------------------------------------------------------------


def _first(parsed: Parsed, segment_id: str):
    found = parsed.segments(segment_id)
    return found[0] if found else None


def _sent(parsed: Parsed, segment, number: int) -> bool:
    """Whether the field carries anything (a value, or HL7's "" to clear it)."""
    if segment is None:
        return False
    return any(part.strip() for rep in parsed.repetitions(segment, number) for comp in rep for part in comp)


def _text(value: str) -> str:
    """One line of text: line breaks (\\.br\\) and runs of spaces made one space; "" (HL7 null) empty."""
    return "" if value == HL7_NULL else " ".join(value.split())


def _component(components: list[str], number: int) -> str:
    return _text(components[number - 1]) if number <= len(components) else ""


def _name_part(value: str) -> str:
    # A clinician's name is one text field here (DICOM PN's separators ^ and = not allowed in it).
    return " ".join(value.replace("^", " ").replace("=", " ").replace("\\", " ").split())


def person(parsed: Parsed, segment, number: int) -> str:
    """An XCN (ORC-12, OBR-16, PV1-8) as the name the front desk reads: "Dr Somchai Jaidee"."""
    if segment is None:
        return ""
    comps = parsed.components(segment, number)
    # XCN: id ^ family ^ given ^ middle ^ suffix ^ prefix ^ degree
    family, given, middle = _component(comps, 2), _component(comps, 3), _component(comps, 4)
    suffix, prefix = _component(comps, 5), _component(comps, 6)
    name = Patient.compose_display_name(prefix, given, middle, family, suffix) or _component(comps, 1)
    # The clinician's name must not refuse an order: cut to the field's length rather than refuse it.
    return _name_part(name)[:TEXT_MAX]


@dataclass
class Identity:
    mrn: str
    issuer: str
    national_id: str
    # A foreigner's passport (PID-3 type PPN, the issuing country's ISO 3166 alpha-3 code in CX-4).
    passport_number: str = ""
    passport_country: str = ""

    @property
    def identifiers(self) -> dict[str, str]:
        """The identifiers besides the MRN that PID-3 carried, as the patient services take them."""
        found = {"national_id": self.national_id} if self.national_id else {}
        if self.passport_number:
            found |= {"passport_number": self.passport_number, "passport_country": self.passport_country}
        return found


def _identifier(parsed: Parsed, segment, number: int, sender: Sender, address: str) -> Identity:
    """The patient identifiers of a CX list (PID-3, MRG-1): MR -> MRN, NI -> national ID, PPN -> passport.

    A passport without its country (CX-4) is left out: the number alone names no one.
    """
    mrn = issuer = national_id = passport_number = passport_country = ""
    fallback: tuple[str, str] | None = None
    for index in range(1, len(parsed.repetitions(segment, number)) + 1):
        comps = parsed.components(segment, number, index)
        value, authority, kind = _component(comps, 1), _component(comps, 4), _component(comps, 5).upper()
        if not value:
            continue
        if kind == "NI":
            national_id = national_id or value
        elif kind == "PPN":
            if authority and not passport_number:
                passport_number, passport_country = value.upper(), authority.upper()
        elif kind == "MR" and not mrn:
            mrn, issuer = value, authority
        elif fallback is None:
            fallback = (value, authority)
    if not mrn and fallback is not None:
        mrn, issuer = fallback
    if not mrn:
        raise Problem.at(
            address,
            _("%(field)s holds no patient identifier (an MR, or a first repetition that is not NI).")
            % {"field": address},
            code=101,
        )
    return Identity(
        mrn=mrn,
        issuer=issuer or sender.issuer or default_issuer(),
        national_id=national_id,
        passport_number=passport_number,
        passport_country=passport_country,
    )


def identity(ctx: Context, pid) -> Identity:
    found = _identifier(ctx.parsed, pid, 3, ctx.sender, "PID-3")
    if found.national_id:
        try:
            validate_thai_national_id(found.national_id)
        except ValidationError as exc:
            raise Problem.at(
                "PID-3",
                _("National ID %(value)s (PID-3, type NI): %(error)s")
                % {"value": found.national_id[:20], "error": " ".join(exc.messages)},
                code=102,
            ) from exc
    if found.passport_number:
        try:
            validate_passport_number(found.passport_number)
            validate_country_alpha3(found.passport_country)
        except ValidationError as exc:
            raise Problem.at(
                "PID-3",
                _("Passport %(value)s of %(country)s (PID-3, type PPN): %(error)s")
                % {
                    "value": found.passport_number[:20],
                    "country": found.passport_country[:10],
                    "error": " ".join(exc.messages),
                },
                code=102,
            ) from exc
    return found


def patient_fields(ctx: Context, pid) -> dict[str, object]:
    """The patient's details from PID, only those the message sends (an empty field changes nothing)."""
    parsed, fields = ctx.parsed, {}
    if _sent(parsed, pid, 5):
        # XPN: family ^ given ^ middle ^ suffix ^ prefix (suffix before prefix, unlike DICOM PN).
        comps = parsed.components(pid, 5)
        fields.update(
            family_name=_component(comps, 1),
            given_name=_component(comps, 2),
            middle_name=_component(comps, 3),
            name_suffix=_component(comps, 4),
            name_prefix=_component(comps, 5),
        )
    if _sent(parsed, pid, 7):
        value = parsed.field_value(pid, 7)
        try:
            fields["birth_date"] = None if value == HL7_NULL else parse_date(value, field="PID-7")
        except ParseProblem as exc:
            raise Problem.at("PID-7", exc.text, code=102) from exc
        if fields["birth_date"] is None:
            raise Problem.at("PID-7", _("PID-7 (birth date) cannot be cleared."), code=101)
    if _sent(parsed, pid, 8):
        sex = _text(parsed.field_value(pid, 8)).upper()
        fields["sex"] = sex if sex in ("M", "F", "O") else ""
    if _sent(parsed, pid, 11):
        # XAD: street ^ other ^ city ^ state ^ postal code ^ country
        comps = parsed.components(pid, 11)
        parts = [_component(comps, n) for n in (1, 2, 3)]
        parts.append(" ".join(p for p in (_component(comps, 4), _component(comps, 5)) if p))
        parts.append(_component(comps, 6))
        fields["address"] = ", ".join(p for p in parts if p)
    if _sent(parsed, pid, 13):
        comps = parsed.components(pid, 13)
        # XTN: the number as text (1), or v2.5's area code (6) and local number (7).
        phone = _component(comps, 1) or " ".join(p for p in (_component(comps, 6), _component(comps, 7)) if p)
        fields["phone"] = phone
    return fields


def find_patient(mrn: str, issuer: str) -> Patient | None:
    """The patient with this MRN; a merged record gives the record it was merged into."""
    patient = one(Patient.objects.filter(mrn=mrn, issuer=issuer))
    seen = set()
    while patient is not None and patient.merged_into_id is not None and patient.pk not in seen:
        seen.add(patient.pk)
        patient = patient.merged_into
    return patient


def _register(
    ctx: Context, who: Identity, fields: dict[str, object], *, identifiers: dict[str, str]
) -> Patient:
    if not fields.get("family_name"):
        raise Problem.at("PID-5", _("PID-5 (patient name) is required to register a patient."), code=101)
    if not fields.get("birth_date"):
        raise Problem.at("PID-7", _("PID-7 (birth date) is required to register a patient."), code=101)
    # The HIS is the patient master: two people may share a name and a birth date, its MRNs tell them
    # apart, so the front desk's duplicate warning does not apply.
    return services.patient_register(
        mrn=who.mrn, issuer=who.issuer, confirm_duplicate=True, user=ctx.user, **fields, **identifiers
    )


def _update(ctx: Context, patient: Patient, changes: dict[str, object]) -> Patient:
    changes = {name: value for name, value in changes.items() if getattr(patient, name) != value}
    if not changes:
        # Nothing new (an A08 that repeats the record): no version, no history, no worklist rewrite.
        return patient
    return services.patient_update(patient=patient, user=ctx.user, **changes)


def patient_from_pid(ctx: Context, pid, *, update: bool) -> Patient:
    """The patient PID names: registered when new; updated from PID when `update` (ADT)."""
    who = identity(ctx, pid)
    fields = patient_fields(ctx, pid)
    patient = find_patient(who.mrn, who.issuer)
    if patient is None:
        return _register(ctx, who, fields, identifiers=who.identifiers)
    if update:
        fields |= who.identifiers
        patient = _update(ctx, patient, fields)
    return patient


# --- ADT ----------------------------------------------------------------------------------------


def adt(ctx: Context) -> None:
    event = ctx.header.trigger_event.upper()
    pid = _first(ctx.parsed, "PID")
    if pid is None:
        raise Problem(_("The message has no PID segment."), code=100, segment="PID")
    if event == "A40":
        merge(ctx)
    else:
        ctx.patient = patient_from_pid(ctx, pid, update=True)


def merge(ctx: Context) -> None:
    """A40: each PID (the record that stays) with the MRG after it (the identifier merged into it)."""
    pairs, pid, pid_seq = [], None, 0
    for segment, segment_id in zip(ctx.parsed.message, ctx.parsed.segment_ids, strict=True):
        if segment_id == "PID":
            pid, pid_seq = segment, pid_seq + 1
        elif segment_id == "MRG" and pid is not None:
            pairs.append((pid, segment))
            pid = None
    if not pairs:
        raise Problem(_("An A40 needs an MRG segment after its PID."), code=100, segment="MRG")
    for sequence, (pid, mrg) in enumerate(pairs, start=1):
        old = _identifier(ctx.parsed, mrg, 1, ctx.sender, "MRG-1")
        source = one(Patient.objects.filter(mrn=old.mrn, issuer=old.issuer))
        if source is None:
            raise Problem(
                _("MRG-1: no patient with MRN %(mrn)s of %(issuer)s to merge.")
                % {"mrn": old.mrn[:64], "issuer": old.issuer[:64]},
                code=204,
                segment="MRG",
                sequence=sequence,
                field=1,
            )
        who = identity(ctx, pid)
        target = find_patient(who.mrn, who.issuer)
        if target is None:
            # The surviving record is new to us: register it, without the national ID the old record
            # still holds (one living record per ID), and give it the ID once the old one is merged.
            target = _register(ctx, who, patient_fields(ctx, pid), identifiers={})
        if source.merged_into_id == target.pk:
            ctx.patient = target  # merged already (the HIS sent the merge again): nothing to do
            continue
        if source.pk == target.pk:
            raise Problem(
                _("MRG-1 and PID-3 name the same patient (%(mrn)s): nothing to merge.")
                % {"mrn": who.mrn[:64]},
                code=207,
                segment="MRG",
                sequence=sequence,
                field=1,
            )
        target = services.patient_merge(source=source, target=target, user=ctx.user)
        if who.national_id and target.national_id != who.national_id:
            target = services.patient_update(patient=target, user=ctx.user, national_id=who.national_id)
        ctx.patient = target


# --- orders -------------------------------------------------------------------------------------


def order_groups(parsed: Parsed) -> list[OrderGroup]:
    groups: list[OrderGroup] = []
    counts = {"ORC": 0, "OBR": 0, "TQ1": 0}
    for segment, segment_id in zip(parsed.message, parsed.segment_ids, strict=True):
        if segment_id in counts:
            counts[segment_id] += 1
        if segment_id == "ORC":
            groups.append(OrderGroup(orc=segment, orc_seq=counts["ORC"]))
        elif segment_id == "OBR" and groups and groups[-1].obr is None:
            groups[-1].obr, groups[-1].obr_seq = segment, counts["OBR"]
        elif segment_id == "TQ1" and groups and groups[-1].tq1 is None:
            groups[-1].tq1, groups[-1].tq1_seq = segment, counts["TQ1"]
    return groups


def orders(ctx: Context) -> None:
    groups = order_groups(ctx.parsed)
    if not groups:
        raise Problem(_("The message has no ORC segment."), code=100, segment="ORC")
    # The answer names every order of the message; until one is done it reads "unable" (UA, UC...).
    for group in groups:
        control = ctx.parsed.field_value(group.orc, 1).upper()
        unable = ORDER_CONTROLS.get(control, ("", "UA"))[1]
        ctx.replies.append(OrderReply(control=unable, placer=placer_number(ctx, group), unable=unable))
    for index, group in enumerate(groups):
        ctx.group = group
        control = ctx.parsed.field_value(group.orc, 1).upper()
        handler = {"NW": order_new, "CA": order_stop, "DC": order_stop, "XO": order_change}.get(control)
        if handler is None:
            raise Problem(
                _("ORC-1 order control “%(code)s” is not supported: send NW, CA, DC or XO.")
                % {"code": control[:10]},
                code=103,
                segment="ORC",
                sequence=group.orc_seq,
                field=1,
            )
        order = handler(ctx, group, control)
        ctx.order = order
        ctx.patient = order.patient
        ctx.replies[index] = OrderReply(
            control=ORDER_CONTROLS[control][0],
            placer=order.placer_order_number,
            filler=order.accession_number,
            status=ORDER_STATUS_CODES.get(order.status, ""),
            unable=ORDER_CONTROLS[control][1],
        )
    ctx.group = None


def placer_number(ctx: Context, group: OrderGroup) -> str:
    number = ctx.parsed.field_value(group.orc, 2)
    if not number and group.obr is not None:
        number = ctx.parsed.field_value(group.obr, 2)
    return _text(number)


def _problem(ctx: Context, address: str, text: str, *, code: int) -> Problem:
    segment = address.split("-")[0]
    return Problem.at(address, text, code=code, sequence=_sequence_of(ctx, segment))


def _procedure(ctx: Context, group: OrderGroup) -> Procedure:
    if group.obr is None:
        raise _problem(ctx, "OBR", _("The order has no OBR segment."), code=100)
    comps = ctx.parsed.components(group.obr, 4)
    code, meaning, scheme = _component(comps, 1), _component(comps, 2), _component(comps, 3)
    if not code:
        raise _problem(ctx, "OBR-4", _("OBR-4 (the procedure code) is empty."), code=101)
    candidates = list(Procedure.objects.filter(code_value=code))
    if len(candidates) > 1:
        candidates = [p for p in candidates if p.coding_scheme == scheme] or candidates
    if not candidates or len(candidates) > 1:
        raise _problem(
            ctx,
            "OBR-4",
            _(
                "Procedure code %(code)s (OBR-4, %(meaning)s) is not in the catalog: add it (code value "
                "%(code)s) and reprocess the message."
            )
            % {"code": code[:32], "meaning": meaning[:64] or "-"},
            code=103,
        )
    procedure = candidates[0]
    if not procedure.active:
        raise _problem(
            ctx,
            "OBR-4",
            _("Procedure code %(code)s (OBR-4) is not offered (inactive in the catalog).")
            % {"code": code[:32]},
            code=103,
        )
    return procedure


@dataclass
class Timing:
    start: datetime | None
    has_time: bool
    priority: str | None


def timing(ctx: Context, group: OrderGroup) -> Timing:
    """The requested start and priority: TQ1-7/TQ1-9 (v2.5), else ORC-7.4/.6, else OBR-27.4/.6."""
    parsed = ctx.parsed
    if group.tq1 is not None:
        raw, address = parsed.field_value(group.tq1, 7), "TQ1-7"
        priority = parsed.field_value(group.tq1, 9)
    else:
        raw, address = parsed.field_value(group.orc, 7, 4), "ORC-7"
        priority = parsed.field_value(group.orc, 7, 6)
        if not raw and group.obr is not None:
            raw, address = parsed.field_value(group.obr, 27, 4), "OBR-27"
        if not priority and group.obr is not None:
            priority = parsed.field_value(group.obr, 27, 6)
    try:
        start, has_time = parse_ts(_text(raw), field=address)
    except ParseProblem as exc:
        raise _problem(ctx, address, exc.text, code=102) from exc
    priority = _text(priority).upper()
    return Timing(
        start=start,
        has_time=has_time,
        priority=PRIORITIES.get(priority, Priority.ROUTINE) if priority else None,
    )


def _reason(ctx: Context, group: OrderGroup) -> tuple[str | None, str]:
    """OBR-31 as the reason (its text, else its code), and the whole text for the notes when it is
    longer than the reason field holds. None: not sent."""
    if group.obr is None or not _sent(ctx.parsed, group.obr, 31):
        return None, ""
    comps = ctx.parsed.components(group.obr, 31)
    text = _component(comps, 2) or _component(comps, 1)
    text = text.replace("\\", "/")
    if len(text) <= TEXT_MAX:
        return text, ""
    return text[: TEXT_MAX - 1] + "…", _("Reason for exam (OBR-31): %(text)s") % {"text": text[:NOTES_MAX]}


def _physicians(ctx: Context, group: OrderGroup) -> dict[str, str]:
    found = {}
    requesting = person(ctx.parsed, group.orc, 12)
    if not requesting and group.obr is not None:
        requesting = person(ctx.parsed, group.obr, 16)
    if requesting:
        found["requesting_physician"] = requesting
    referring = person(ctx.parsed, _first(ctx.parsed, "PV1"), 8)
    if referring:
        found["referring_physician"] = referring
    return found


def _station_room(ctx: Context, group: OrderGroup) -> Room | None:
    """The room named by the sender's configured field (its AE title or name); None: not configured
    or empty in this message."""
    address = ctx.sender.station_field.strip().upper()
    if not address:
        return None
    try:
        segment_id, number, _c, _s = split_address(address)
    except ValueError as exc:
        raise Problem(
            _("The sender's field naming the room, “%(field)s”, is not a field like PV1-3 or OBR-24.")
            % {"field": address},
            code=207,
            segment="MSH",
            field=3,
        ) from exc
    segment = {"ORC": group.orc, "OBR": group.obr, "TQ1": group.tq1}.get(segment_id, None)
    if segment is None and segment_id not in ("ORC", "OBR", "TQ1"):
        segment = _first(ctx.parsed, segment_id)
    if segment is None:
        return None
    value = _text(ctx.parsed.field_value(segment, number))
    if not value:
        return None
    room = Room.objects.filter(Q(ae_title__iexact=value) | Q(name__iexact=value), active=True).first()
    if room is None:
        raise _problem(
            ctx,
            address,
            _("%(field)s names the room “%(value)s”: no room in service has that AE title or name.")
            % {"field": address, "value": value[:64]},
            code=103,
        )
    return room


def _find_order(ctx: Context, group: OrderGroup) -> Order:
    number = placer_number(ctx, group)
    if not number:
        raise _problem(ctx, "ORC-2", _("ORC-2 (the placer order number) is empty."), code=101)
    order = (
        Order.objects.filter(placer_authority=ctx.sender.application, placer_order_number=number)
        .select_related("patient", "procedure", "room")
        .first()
    )
    if order is None:
        raise _problem(
            ctx,
            "ORC-2",
            _("No order with placer number %(number)s from %(sender)s.")
            % {"number": number[:32], "sender": ctx.sender.application},
            code=204,
        )
    return order


def order_new(ctx: Context, group: OrderGroup, control: str) -> Order:
    """NW: a new order, booked when its time is given and a room is free then, else Requested."""
    number = placer_number(ctx, group)
    if not number:
        raise _problem(ctx, "ORC-2", _("ORC-2 (the placer order number) is empty."), code=101)
    procedure = _procedure(ctx, group)
    pid = _first(ctx.parsed, "PID")
    if pid is None:
        raise Problem(_("The message has no PID segment."), code=100, segment="PID")
    patient = patient_from_pid(ctx, pid, update=False)
    when = timing(ctx, group)
    reason, notes = _reason(ctx, group)
    room = _station_room(ctx, group)
    details = {
        "priority": when.priority or Priority.ROUTINE,
        "reason": reason or "",
        "notes": notes,
        "placer_order_number": number,
        "placer_authority": ctx.sender.application,
        **_physicians(ctx, group),
    }
    if when.start is not None and not when.has_time:
        # A day without a time: nothing to book at; the front desk schedules it from its list.
        order = services.order_request(
            patient=patient, procedure=procedure, user=ctx.user, requested_start=when.start, **details
        )
    else:
        order = services.order_place(
            patient=patient,
            procedure=procedure,
            user=ctx.user,
            start=when.start,
            rooms=[room] if room is not None else None,
            **details,
        )
    note = getattr(order, "placement_note", "")
    if note:
        ctx.notes.append(str(note))
    return order


def order_stop(ctx: Context, group: OrderGroup, control: str) -> Order:
    """CA (cancel) and DC (discontinue): the order is cancelled, with the reason the HIS gave."""
    order = _find_order(ctx, group)
    if order.status in (OrderStatus.CANCELLED, OrderStatus.NO_SHOW):
        # Cancelled already (the HIS sent it again), or a no-show (final too, told as CA): the same answer.
        return order
    if order.status in (OrderStatus.IN_PROGRESS, OrderStatus.COMPLETED):
        raise _problem(
            ctx,
            "ORC-1",
            _("Order %(accession)s is %(status)s: it can no longer be cancelled.")
            % {"accession": order.accession_number, "status": order.get_status_display().lower()},
            code=207,
        )
    comps = ctx.parsed.components(group.orc, 16)
    reason = _component(comps, 2) or _component(comps, 1)
    if not reason:
        template = _("Cancelled by %(sender)s") if control == "CA" else _("Discontinued by %(sender)s")
        reason = template % {"sender": ctx.sender.application}
    return services.order_cancel(order=order, reason=reason[:200], user=ctx.user)


def order_change(ctx: Context, group: OrderGroup, control: str) -> Order:
    """XO: new details (priority, reason, clinicians) and perhaps a new time for an order."""
    order = _find_order(ctx, group)
    if group.obr is not None:
        code = _component(ctx.parsed.components(group.obr, 4), 1)
        if code and code != order.procedure.code_value:
            raise _problem(
                ctx,
                "OBR-4",
                _(
                    "A change (XO) cannot change the procedure (%(old)s to %(new)s): cancel the order "
                    "and send a new one."
                )
                % {"old": order.procedure.code_value, "new": code[:32]},
                code=207,
            )
    when = timing(ctx, group)
    reason, notes = _reason(ctx, group)
    changes: dict[str, str] = dict(_physicians(ctx, group))
    if when.priority:
        changes["priority"] = when.priority
    if reason is not None:
        changes["reason"] = reason
        if notes:
            changes["notes"] = notes
    changes = {name: value for name, value in changes.items() if getattr(order, name) != value}
    if changes:
        order = services.order_update_details(order=order, user=ctx.user, **changes)
    if when.start is None:
        return order
    if order.status == OrderStatus.REQUESTED:
        room = _station_room(ctx, group)
        return services.order_try_schedule(
            order=order, user=ctx.user, start=when.start, rooms=[room] if room is not None else None
        )
    if order.scheduled_start == when.start:
        return order
    if order.status not in services.RESCHEDULABLE:
        raise _problem(
            ctx,
            start_field(ctx),
            _("Order %(accession)s is %(status)s: its time can no longer be changed.")
            % {"accession": order.accession_number, "status": order.get_status_display().lower()},
            code=207,
        )
    return services.order_reschedule(order=order, start=when.start, user=ctx.user, room=order.room)
