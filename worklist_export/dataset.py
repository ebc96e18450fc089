"""Order -> DICOM Modality Worklist item (PS3.4 Table K.6-1; see MWL-NOTES sections 1, 2 and 5).

Building happens in two steps. `order_source(order)` reads every value the item is made of into a plain,
already validated dict (every text checked against its VR limits and the room's character set);
encoding.source_bytes(source) encodes that dict, the one encoder of every item this system writes or
serves. The dict is also what `source_fingerprint` hashes, so reconciliation can tell an unchanged order
without encoding it, and nothing can change in the file without changing the fingerprint. pydicom reads
the encoded item back where a Dataset is wanted (`order_dataset`: the built-in server, the dump view).

A value a modality would drop or garble raises ExportError with a message for the clerk who can fix it:
a code and its parameters (worklist_export.problems), shown in each reader's language.
"""

from __future__ import annotations

import functools
import hashlib
import json
from io import BytesIO
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.utils import timezone
from pydicom import config as dicom_config
from pydicom.charset import python_encoding
from pydicom.dataset import Dataset
from pydicom.filereader import read_dataset
from pydicom.valuerep import validate_value

from scheduling.dicom import LATIN1, fits_charset, unencodable
from scheduling.models import CharacterSet, Order, OrderStatus
from scheduling.validators import AE_TITLE_RE

from . import problems
from .encoding import source_bytes
from .problems import ExportProblem

# Bump when the mapping below changes, so reconciliation rewrites every file once.
FORMAT_VERSION = "3"

# ScheduledProcedureStepStatus (0040,0020) per order status; only active orders are exported.
SPS_STATUS = {
    OrderStatus.SCHEDULED: "SCHEDULED",
    OrderStatus.ARRIVED: "ARRIVED",
    OrderStatus.IN_PROGRESS: "STARTED",
}

# Maximum length in characters per VR (PS3.5 Table 6.2-1); PN is per component group.
MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "PN": 64, "DS": 16, "UI": 64}


class ExportError(Exception):
    """An order cannot be written as a conformant worklist item; the message says what to fix.

    Raised with a code of worklist_export.problems and the values of its message (`field` is the
    English label of the field to fix), so the entry can say it in each reader's language; `message`
    and str() are the English text.
    """

    def __init__(self, code: str, *, field: str = "", **params: Any):
        self.problem = ExportProblem(code, {"field": field, **params} if field else params)
        self.code = code
        self.field = field
        self.message = self.problem.text
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


def _text(value: Any, *, vr: str, label: str, charset: str, required: bool = False) -> str:
    """`value` as a legal DICOM string of `vr` in `charset`, or ExportError naming `label`."""
    value = "" if value is None else str(value).strip()
    if not value:
        if required:
            raise ExportError(problems.VALUE_EMPTY, field=label)
        return value
    return _checked(value, vr, label, charset)


# Most values repeat from item to item (a room's AE title, station and location, a procedure's code):
# checking each once per export rather than once per item saves a fifth of a bulk export's time.
# Only values that pass are cached; a failing one raises again every time.
@functools.lru_cache(maxsize=4096)
def _checked(value: str, vr: str, label: str, charset: str) -> str:
    if "\\" in value:
        raise ExportError(problems.VALUE_BACKSLASH, field=label)
    limit = MAX_LENGTH[vr]
    parts = value.split("=") if vr == "PN" else [value]
    if any(len(part) > limit for part in parts):
        raise ExportError(problems.VALUE_TOO_LONG, field=label, limit=limit, value=value)
    if vr in ("AE", "CS", "DS", "UI") and len(value.encode("ascii", "replace")) > limit:
        raise ExportError(problems.VALUE_TOO_MANY_BYTES, field=label, limit=limit, value=value)
    bad = "".join(unencodable(value, charset))
    if bad:
        raise ExportError(
            problems.VALUE_UNENCODABLE, field=label, charset=charset, characters=bad, value=value
        )
    if vr == "AE" and not AE_TITLE_RE.match(value):
        # Stricter than PS3.5: newer DCMTK refuses other characters in AE titles (MWL-NOTES section 2).
        raise ExportError(problems.AE_TITLE_INVALID, field=label, value=value)
    try:
        validate_value(vr, value, dicom_config.RAISE)
    except ValueError as exc:
        # pydicom's wording names the VR, not the field: prefix what the clerk knows the value as.
        reason = str(exc).split(" Please see")[0]
        raise ExportError(problems.VALUE_INVALID, field=label, reason=reason, value=value) from None
    return value


def _patient_name(order: Order, charset: str) -> str:
    patient = order.patient
    if charset != LATIN1:
        return _text(patient.dicom_name, vr="PN", label="Patient name", charset=charset, required=True)

    # A Latin-1 station gets the romanised name when there is one, else the name as registered if
    # it happens to be Latin-1 already; never a name with '?' in place of the letters.
    if patient.has_romanized_name:
        return _text(
            patient.dicom_romanized_name,
            vr="PN",
            label="Romanised patient name",
            charset=charset,
            required=True,
        )
    name = patient.dicom_name
    if not fits_charset(name, charset):
        raise ExportError(
            problems.ROMANIZED_NAME_MISSING,
            field="Romanised patient name",
            patient=patient.display_name,
            room=order.room.name,
        )
    return _text(name, vr="PN", label="Patient name", charset=charset, required=True)


# The other identifiers of the patient, each an item of OtherPatientIDsSequence (0010,1002), PS3.3
# C.7.1.1: Patient ID, the Issuer of Patient ID macro (Table 10-18) and Type of Patient ID "TEXT" (printed,
# not an RFID or barcode). The issuer is the country that issued the number, as its ISO 3166 alpha-3
# code, in Issuer of Patient ID (0010,0021); what kind of number it is, in the Issuer of Patient ID
# Qualifiers Sequence's Identifier Type Code (0040,0035), from HL7 Table 0203 as the HIS sends it in
# PID-3.5: NI (national unique individual identifier), PPN (passport number). No Universal Entity ID:
# the Thai registration office has no OID we know of, and an invented one would mislead.
NATIONAL_ID_ISSUER = "THA"
NATIONAL_ID_TYPE = "NI"
PASSPORT_TYPE = "PPN"


def _other_ids(patient: Any, charset: str) -> list[dict[str, str]]:
    ids = []
    if patient.national_id:
        ids.append({"id": patient.national_id, "issuer": NATIONAL_ID_ISSUER, "type": NATIONAL_ID_TYPE})
    if patient.passport_number:
        ids.append({"id": patient.passport_number, "issuer": patient.passport_country, "type": PASSPORT_TYPE})
    return [
        {
            "id": _text(other["id"], vr="LO", label="Other patient ID", charset=charset, required=True),
            "issuer": _text(other["issuer"], vr="LO", label="Issuer of other patient ID", charset=charset),
            "type": other["type"],
        }
        for other in ids
    ]


def _code(value: str, scheme: str, meaning: str, *, charset: str, label: str) -> dict[str, str] | None:
    code = {
        "CodeValue": _text(value, vr="SH", label=f"{label} code value", charset=charset),
        "CodingSchemeDesignator": _text(scheme, vr="SH", label=f"{label} coding scheme", charset=charset),
        "CodeMeaning": _text(meaning, vr="LO", label=f"{label} code meaning", charset=charset),
    }
    # A code item needs all three; an incomplete one is left out rather than written half empty.
    return code if all(code.values()) else None


def order_source(order: Order) -> dict[str, Any]:
    """Every value of `order`'s worklist item, validated, as a JSON-able dict. Raises ExportError."""
    room, procedure, patient = order.room, order.procedure, order.patient
    charset = room.worklist_charset or CharacterSet.UTF8
    if charset not in python_encoding:
        raise ExportError(problems.CHARSET_UNKNOWN, field="Room", room=room.name, charset=charset)

    def text(value: Any, vr: str, label: str, required: bool = False) -> str:
        return _text(value, vr=vr, label=label, charset=charset, required=required)

    status = SPS_STATUS.get(order.status)
    if status is None:
        raise ExportError(problems.STATUS_NOT_EXPORTED, status=order.status)
    start = timezone.localtime(order.scheduled_start, ZoneInfo(settings.TIME_ZONE))
    code = _code(
        procedure.code_value,
        procedure.coding_scheme,
        procedure.code_meaning,
        charset=charset,
        label="Procedure",
    )
    description = text(procedure.code_meaning, "LO", "Procedure name")
    if not description and code is None:
        raise ExportError(problems.PROCEDURE_UNNAMED, field="Procedure")
    weight = patient.weight_kg
    return {
        "version": FORMAT_VERSION,
        "charset": charset,
        "station_ae": text(room.ae_title, "AE", "Room AE title", required=True),
        "start_date": start.strftime("%Y%m%d"),
        "start_time": start.strftime("%H%M%S"),
        "modality": text(procedure.modality, "CS", "Modality", required=True),
        "sps_description": description,
        "code": code,
        "sps_id": text(order.sps_id, "SH", "Scheduled procedure step ID", required=True),
        "station_name": text(room.station_name, "SH", "Room station name"),
        "location": text(room.location, "SH", "Room location"),
        "sps_status": status,
        "requested_procedure_id": text(order.requested_procedure_id, "SH", "Requested procedure ID", True),
        "study_uid": text(order.study_instance_uid, "UI", "Study instance UID", required=True),
        "priority": text(order.priority, "SH", "Priority"),
        "accession": text(order.accession_number, "SH", "Accession number"),
        # The ordering system's own number (Imaging Service Request module, top level of the item), so
        # whoever reads the item (a modality, a PACS, the HIS) can tell which of its orders this is.
        "placer_order_number": text(order.placer_order_number, "LO", "Placer order number"),
        # The validators forbid ^ in these fields: the whole text is the family-name component.
        "referring": text(order.referring_physician, "PN", "Referring physician"),
        "requesting": text(order.requesting_physician, "PN", "Requesting physician"),
        "patient_name": _patient_name(order, charset),
        "patient_id": text(patient.mrn, "LO", "Patient ID (MRN)", required=True),
        "issuer": text(patient.issuer, "LO", "Issuer of patient ID"),
        "other_ids": _other_ids(patient, charset),
        "birth_date": patient.birth_date.strftime("%Y%m%d") if patient.birth_date else "",
        "sex": text(patient.sex, "CS", "Sex"),
        "weight": text(format(weight.normalize(), "f") if weight is not None else "", "DS", "Weight"),
        "medical_alerts": text(patient.medical_alerts, "LO", "Medical alerts"),
        "allergies": text(patient.allergies, "LO", "Allergies"),
        "pregnancy": int(patient.pregnancy_status) if patient.pregnancy_status else None,
    }


def source_fingerprint(source: dict[str, Any]) -> str:
    """A hash of everything the item is made of: equal fingerprints give byte-identical datasets."""
    return hashlib.sha256(json.dumps(source, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def item_dataset(body: bytes) -> Dataset:
    """An encoded item (encoding.source_bytes) read back by pydicom, as a modality's toolkit reads it."""
    return read_dataset(BytesIO(body), is_implicit_VR=False, is_little_endian=True)


def order_body(order: Order) -> bytes:
    """The encoded worklist item of `order`, the dataset bytes of its .wl file. Raises ExportError."""
    return source_bytes(order_source(order))


def order_dataset(order: Order) -> Dataset:
    """The Modality Worklist item of `order`, exactly as its .wl file holds it (raises ExportError
    when a value cannot be written): the built-in server answers with it, the tests read it."""
    return item_dataset(order_body(order))
