"""What the DICOM server does with a request: worklist answers from the database, MPPS into orders.

Kept apart from the network code (server.py) so each step can be called and tested with a dataset
built in a test. Failures raise DicomFailure with the status the peer should receive.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from scheduling import services as scheduling
from scheduling.models import ACTIVE_STATUSES, Completion, Order, OrderStatus, Room
from scheduling.selectors import day_bounds
from worklist_export.dataset import ExportError, item_dataset, order_source, source_fingerprint
from worklist_export.encoding import source_bytes
from worklist_export.services import order_belongs_on_worklist, worklist_orders

from . import matching
from .access import room_callers
from .models import MppsOperation, MppsRefusal, MppsStatus, PerformedProcedureStep

logger = logging.getLogger(__name__)

MODALITY_USERNAME = "modality"

# DIMSE status codes (PS3.7 Annex C, PS3.4 C.4.1.1.4 and F.7.2).
PROCESSING_FAILURE = 0x0110
NO_SUCH_SOP_INSTANCE = 0x0112
DUPLICATE_SOP_INSTANCE = 0x0111
INVALID_ATTRIBUTE_VALUE = 0x0106
MISSING_ATTRIBUTE = 0x0120
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
IDENTIFIER_DOES_NOT_MATCH = 0xA900
UNABLE_TO_PROCESS = 0xC000


class DicomFailure(Exception):
    """A request the server refuses; `status` goes back to the peer, the message into the log."""

    def __init__(self, status: int, message: str, *, order: Order | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.order = order  # the order the refused request was about, when known


# --- who may call ----------------------------------------------------------------------------------


def known_callers() -> list[str]:
    """Calling AE titles allowed to associate: DICOM_SERVER_KNOWN_CALLERS, every active room's, and the
    AE titles DICOM_SERVER_ROOM_CALLERS lists for the rooms."""
    rooms = Room.objects.filter(active=True).values_list("ae_title", flat=True)
    extra = [ae for callers in room_callers().values() for ae in callers]
    return sorted({*(a.strip() for a in settings.DICOM_SERVER_KNOWN_CALLERS), *rooms, *extra} - {""})


# --- worklist ---------------------------------------------------------------------------------------


def _element(ds: Dataset, keyword: str):
    return ds[keyword] if keyword in ds else None


# The patient columns a PatientName can start with (dataset._patient_name: the name as registered, or
# the romanised one for a Latin-1 room), and every column of the PN's components.
_FAMILY_COLUMNS = ("patient__family_name", "patient__romanized_family_name")
_NAME_COLUMNS = (
    *_FAMILY_COLUMNS,
    "patient__given_name",
    "patient__middle_name",
    "patient__name_prefix",
    "patient__name_suffix",
    "patient__romanized_given_name",
    "patient__romanized_middle_name",
)


def _name_filter(elem: DataElement | None) -> Q | None:
    """A condition on the patient's columns that every order whose PatientName matches `elem` meets
    (a superset: matching.dataset_matches still decides), or None when the key narrows nothing.

    The family name is the PN's first component, so a key's literal start up to its first wildcard
    or '^' (matching.pn_family_start) is the start of the family name, as registered or romanised,
    in any case (a regular expression with each letter's case variants, as Python's matcher folds
    them). The validators forbid ^ and = inside a name part; a row that has one anyway (a bulk load
    that bypassed them) would shift the components, so it is always let through to the matcher.
    """
    if elem is None or elem.VR != "PN" or matching.is_universal(elem):
        return None
    values = matching._values(elem.value)
    if len(values) != 1:
        return None
    start = matching.pn_family_start(str(values[0]))
    if start is None:
        return None
    literal, whole = start
    pattern = r"^\s*" + "".join(matching.case_class(ch) for ch in literal) + (r"\s*$" if whole else "")
    condition = Q()
    for column in _FAMILY_COLUMNS:
        condition |= Q(**{f"{column}__regex": pattern})
    for column in _NAME_COLUMNS:
        condition |= Q(**{f"{column}__regex": r"[=^]"})
    return condition


def _prefiltered(query: Dataset) -> QuerySet[Order]:
    """The worklist orders narrowed in SQL by the keys that map onto columns; Python matches the rest.

    Each condition keeps every order the matcher could accept for its key (and may keep more): a
    single value on a column the item copies unchanged, the date range by the clinic's days, and the
    patient name by its family name's start (_name_filter).
    """
    orders = worklist_orders()
    sps_seq = query.get("ScheduledProcedureStepSequence")
    sps = sps_seq[0] if sps_seq else Dataset()
    exact = (
        (sps, "ScheduledStationAETitle", "room__ae_title"),
        (sps, "Modality", "procedure__modality"),
        (sps, "ScheduledProcedureStepID", "sps_id"),
        (query, "PatientID", "patient__mrn"),
        (query, "AccessionNumber", "accession_number"),
        (query, "RequestedProcedureID", "requested_procedure_id"),
        (query, "StudyInstanceUID", "study_instance_uid"),
    )
    for ds, keyword, column in exact:
        value = matching.single_value(_element(ds, keyword))
        if value is not None:
            orders = orders.filter(**{column: value})
    start_date = _element(sps, "ScheduledProcedureStepStartDate")
    if start_date is not None and not matching.is_universal(start_date):
        lower, upper = matching.split_range(str(start_date.value), "ScheduledProcedureStepStartDate")
        if lower:
            orders = orders.filter(scheduled_start__gte=day_bounds(_day(lower))[0])
        if upper:
            orders = orders.filter(scheduled_start__lt=day_bounds(_day(upper))[1])
    name = _name_filter(_element(query, "PatientName"))
    if name is not None:
        orders = orders.filter(name)
    return orders.order_by("scheduled_start", "pk")


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


# Orders read from the database per round trip while answers stream out: the first answer leaves
# after one chunk, and memory holds one chunk, whatever the size of the worklist.
FIND_CHUNK = 500


def worklist_answers(
    query: Dataset, *, implicit_vr: bool = True, little_endian: bool = True
) -> Iterator[Dataset]:
    """The worklist items matching `query` (PS3.4 Annex K), each with only the requested keys, one at
    a time as they are found, in start order.

    The items are the ones the export writes as .wl files (same orders, same bytes): each is read back
    from its encoded bytes and answered with those bytes (matching.answer_for), so the built-in server
    answers exactly what wlmscpfs or Orthanc would. `implicit_vr`/`little_endian`: the transfer syntax
    the answers will be sent in (matching.mark_encoded_as).

    Raises DicomFailure at once for a malformed identifier; while iterating, DicomFailure
    (OUT_OF_RESOURCES) once the query has worked DICOM_SERVER_FIND_TIME_LIMIT seconds of processor
    time or found more
    than DICOM_SERVER_MAX_ANSWERS items: the answers sent until then stand, the failure says the
    list is incomplete.
    """
    try:
        matching.validate_query(query)
    except matching.QueryTooLarge as exc:
        raise DicomFailure(OUT_OF_RESOURCES, f"query too large: {exc}") from None
    except matching.QueryError as exc:
        raise DicomFailure(IDENTIFIER_DOES_NOT_MATCH, str(exc)) from None
    return _answers(query, implicit_vr=implicit_vr, little_endian=little_endian)


def _answers(query: Dataset, *, implicit_vr: bool, little_endian: bool) -> Iterator[Dataset]:
    keys = matching.matching_keys(query)
    limit = settings.DICOM_SERVER_MAX_ANSWERS
    # A query that selects nothing in SQL reads the whole window; it must not keep a thread busy for
    # ever (issue 13). What counts is this thread's processor time here, between answers: a peer that
    # reads slowly is the network timeouts' business, and neither it nor a loaded machine may turn a
    # complete answer into a failure.
    budget = settings.DICOM_SERVER_FIND_TIME_LIMIT
    resumed = time.thread_time()
    found = 0
    for order in _prefiltered(query).iterator(chunk_size=FIND_CHUNK):
        if time.thread_time() - resumed > budget:
            raise DicomFailure(OUT_OF_RESOURCES, "query took too long; narrow it (date, station)")
        try:
            item = _item(order)
        except ExportError as exc:
            # The export leaves such an order out of the folder too; the clerk sees the error there.
            logger.warning("worklist: order %s left out: %s", order.accession_number, exc)
            continue
        if not matching.dataset_matches(keys, item):
            continue
        found += 1
        if found > limit:
            raise DicomFailure(OUT_OF_RESOURCES, f"more than {limit} items; narrow the query (date, station)")
        answer = matching.mark_encoded_as(
            matching.answer_for(query, item), implicit_vr=implicit_vr, little_endian=little_endian
        )
        budget -= time.thread_time() - resumed
        yield answer
        resumed = time.thread_time()


# Order pk -> (source fingerprint, the item read back from its bytes), in this server process. The
# fingerprint covers everything the item is made of (worklist_export.dataset.source_fingerprint), so an
# entry is used only while the order's item is byte for byte the one cached; the dict is bounded, and
# the oldest entries go first (DICOM_SERVER_ITEM_CACHE items; about 14 kB each). Encoding and reading
# an item back is more than half of a match-all's work.
_items: dict[int, tuple[str, Dataset]] = {}
_items_lock = threading.Lock()


def _item(order: Order) -> Dataset:
    """`order`'s worklist item as the export writes it (raises ExportError), from the cache when its
    source is unchanged."""
    source = order_source(order)
    fingerprint = source_fingerprint(source)
    cached = _items.get(order.pk)
    if cached is not None and cached[0] == fingerprint:
        return cached[1]
    item = item_dataset(source_bytes(source))
    with _items_lock:
        _items.pop(order.pk, None)
        _items[order.pk] = (fingerprint, item)
        while len(_items) > settings.DICOM_SERVER_ITEM_CACHE:
            del _items[next(iter(_items))]
    return item


def worklist_find(query: Dataset) -> list[Dataset]:
    """All of worklist_answers(query) as a list (raises DicomFailure as it does)."""
    return list(worklist_answers(query))


# --- MPPS ---------------------------------------------------------------------------------------------


def modality_user():
    """The system user that MPPS changes are made by."""
    user, created = get_user_model().objects.get_or_create(username=MODALITY_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


SUMMARY_KEYWORDS = (
    "PerformedProcedureStepStatus",
    "PerformedProcedureStepID",
    "PerformedStationAETitle",
    "PerformedStationName",
    "PerformedLocation",
    "Modality",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "PerformedProcedureStepEndDate",
    "PerformedProcedureStepEndTime",
    "PerformedProcedureStepDescription",
    "PatientID",
    "PatientName",
    "StudyID",
)
REFERENCE_KEYWORDS = (
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "ScheduledProcedureStepID",
)


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


def mpps_summary(ds: Dataset) -> dict[str, Any]:
    """The attributes worth keeping from an MPPS request, as plain text."""
    summary = {k: _text(ds, k) for k in SUMMARY_KEYWORDS if _text(ds, k)}
    refs = [
        {k: _text(item, k) for k in REFERENCE_KEYWORDS if _text(item, k)}
        for item in ds.get("ScheduledStepAttributesSequence") or []
    ]
    if refs:
        summary["references"] = refs
    series = ds.get("PerformedSeriesSequence")
    if series is not None:
        summary["series_count"] = len(series)
    reason = _discontinue_reason(ds)
    if reason:
        summary["discontinue_reason"] = reason
    return summary


def _order_for(ds: Dataset) -> Order:
    """The order an MPPS refers to, by StudyInstanceUID, SPS ID, accession or requested procedure ID."""
    refs = ds.get("ScheduledStepAttributesSequence")
    if refs is None or len(refs) == 0:
        raise DicomFailure(MISSING_ATTRIBUTE, "ScheduledStepAttributesSequence is missing or empty")
    lookups = (
        ("StudyInstanceUID", "study_instance_uid"),
        ("ScheduledProcedureStepID", "sps_id"),
        ("AccessionNumber", "accession_number"),
        ("RequestedProcedureID", "requested_procedure_id"),
    )
    for item in refs:
        for keyword, field in lookups:
            value = _text(item, keyword)
            if value:
                order = Order.objects.filter(**{field: value}).first()
                if order is not None:
                    return order
    wanted = ", ".join(f"{k}={_text(i, k)}" for i in refs for k in REFERENCE_KEYWORDS if _text(i, k))
    raise DicomFailure(PROCESSING_FAILURE, f"no order matches the MPPS references ({wanted or 'none given'})")


def _start(order: Order, user) -> Order:
    """Bring an order to IN_PROGRESS through the services (arriving it first if needed)."""
    if order.status == OrderStatus.SCHEDULED:
        order = scheduling.order_arrive(order=order, user=user)
    if order.status == OrderStatus.ARRIVED:
        order = scheduling.order_start(order=order, user=user)
    return order


def _discontinue_reason(ds: Dataset) -> str:
    codes = ds.get("PerformedProcedureStepDiscontinuationReasonCodeSequence") or []
    for code in codes:
        meaning = _text(code, "CodeMeaning")
        if meaning:
            return meaning[:200]
    return ""


def mpps_check_create(*, order: Order, attributes: Dataset, calling_ae: str) -> None:
    """Refuse an N-CREATE for `order` unless its station sent it, for an exam on the worklist now and
    (when a PatientID is sent) for the order's patient. Writes nothing.

    Accession numbers are sequential and station AE titles guessable: without these checks one station
    could start, and then complete, every room's exams (issue 13).
    """
    accession = order.accession_number
    # A requested order is in no room yet: no station may start it (the accession number is known
    # before it is booked: the hospital system has it from our acknowledgement).
    room = order.room
    stations = set() if room is None else {room.ae_title, *room_callers().get(room.ae_title, [])}
    if calling_ae not in stations:
        raise DicomFailure(
            NOT_AUTHORIZED, f"{calling_ae or 'no AE'} is not the station of order {accession}", order=order
        )
    if order.status not in ACTIVE_STATUSES:
        raise DicomFailure(
            PROCESSING_FAILURE,
            f"order {accession} is {order.get_status_display().lower()}; it cannot start",
            order=order,
        )
    if not order_belongs_on_worklist(order):
        raise DicomFailure(PROCESSING_FAILURE, f"order {accession} is not on the worklist now", order=order)
    patient_id = _text(attributes, "PatientID")
    if patient_id and patient_id != order.patient.mrn:
        raise DicomFailure(
            INVALID_ATTRIBUTE_VALUE, f"PatientID is not the patient of order {accession}", order=order
        )


def mpps_check_update(*, step: PerformedProcedureStep, calling_ae: str) -> None:
    """Refuse an N-SET unless the AE that created the step sends it, and the step is still open."""
    if calling_ae != step.calling_ae:
        raise DicomFailure(
            NOT_AUTHORIZED, f"MPPS {step.sop_instance_uid} was created by another AE", order=step.order
        )
    if step.is_final:
        # PS3.4 F.7.2.2.2: a COMPLETED or DISCONTINUED step may no longer be updated.
        raise DicomFailure(
            PROCESSING_FAILURE,
            f"MPPS {step.sop_instance_uid} is {step.status}; no more updates",
            order=step.order,
        )


def mpps_refusal_record(
    *,
    operation: str,
    failure: DicomFailure,
    sop_instance_uid: str,
    calling_ae: str,
    calling_address: str,
) -> MppsRefusal:
    """Keep a refused MPPS request (after its transaction rolled back) and log it."""
    logger.warning(
        "MPPS %s %s from %s (%s) refused (0x%04X): %s",
        operation,
        sop_instance_uid,
        calling_ae,
        calling_address,
        failure.status,
        failure.message,
    )
    return MppsRefusal.objects.create(
        order=failure.order,
        operation=operation,
        sop_instance_uid=sop_instance_uid[:64],
        calling_ae=calling_ae[:16],
        address=calling_address[:45],
        status=failure.status,
        reason=failure.message[:200],
    )


def mpps_create(
    *, sop_instance_uid: str, attributes: Dataset, calling_ae: str, calling_address: str = ""
) -> PerformedProcedureStep:
    """N-CREATE from `calling_ae`: the modality started the exam. The referenced order goes IN_PROGRESS.

    Raises DicomFailure (and records an MppsRefusal) when the request is refused.
    """
    try:
        return _mpps_create(sop_instance_uid=sop_instance_uid, attributes=attributes, calling_ae=calling_ae)
    except DicomFailure as failure:
        mpps_refusal_record(
            operation=MppsOperation.N_CREATE,
            failure=failure,
            sop_instance_uid=sop_instance_uid,
            calling_ae=calling_ae,
            calling_address=calling_address,
        )
        raise


def _mpps_create(*, sop_instance_uid: str, attributes: Dataset, calling_ae: str) -> PerformedProcedureStep:
    if not sop_instance_uid:
        raise DicomFailure(PROCESSING_FAILURE, "N-CREATE without an Affected SOP Instance UID")
    status = _text(attributes, "PerformedProcedureStepStatus")
    if status != MppsStatus.IN_PROGRESS:
        raise DicomFailure(
            INVALID_ATTRIBUTE_VALUE,
            f"PerformedProcedureStepStatus must be 'IN PROGRESS' in N-CREATE, not {status!r}",
        )
    user = modality_user()
    with transaction.atomic():
        if PerformedProcedureStep.objects.filter(sop_instance_uid=sop_instance_uid).exists():
            raise DicomFailure(DUPLICATE_SOP_INSTANCE, f"MPPS {sop_instance_uid} already exists")
        order = _order_for(attributes)
        mpps_check_create(order=order, attributes=attributes, calling_ae=calling_ae)
        try:
            order = _start(order, user)
        except ValidationError as exc:
            raise DicomFailure(PROCESSING_FAILURE, "; ".join(exc.messages), order=order) from None
        step = PerformedProcedureStep.objects.create(
            sop_instance_uid=sop_instance_uid,
            order=order,
            status=MppsStatus.IN_PROGRESS,
            calling_ae=calling_ae[:16],
            attributes=mpps_summary(attributes),
        )
    logger.info("MPPS %s from %s: order %s in progress", sop_instance_uid, calling_ae, order.accession_number)
    return step


def mpps_update(
    *, sop_instance_uid: str, attributes: Dataset, calling_ae: str, calling_address: str = ""
) -> PerformedProcedureStep:
    """N-SET from `calling_ae` (the AE that created the step): new attributes for a step; COMPLETED
    completes the order (unless its room completes by hand, Room.completion MANUAL), DISCONTINUED
    returns it to the front desk with the reason.

    Raises DicomFailure (and records an MppsRefusal) when the request is refused.
    """
    try:
        return _mpps_update(sop_instance_uid=sop_instance_uid, attributes=attributes, calling_ae=calling_ae)
    except DicomFailure as failure:
        mpps_refusal_record(
            operation=MppsOperation.N_SET,
            failure=failure,
            sop_instance_uid=sop_instance_uid,
            calling_ae=calling_ae,
            calling_address=calling_address,
        )
        raise


def _mpps_update(*, sop_instance_uid: str, attributes: Dataset, calling_ae: str) -> PerformedProcedureStep:
    status = _text(attributes, "PerformedProcedureStepStatus")
    if status and status not in MppsStatus.values:
        raise DicomFailure(INVALID_ATTRIBUTE_VALUE, f"unknown PerformedProcedureStepStatus {status!r}")
    user = modality_user()
    with transaction.atomic():
        step = (
            PerformedProcedureStep.objects.select_for_update()
            .select_related("order")
            .filter(sop_instance_uid=sop_instance_uid)
            .first()
        )
        if step is None:
            raise DicomFailure(NO_SUCH_SOP_INSTANCE, f"no MPPS {sop_instance_uid}")
        mpps_check_update(step=step, calling_ae=calling_ae)
        order = step.order
        try:
            if status == MppsStatus.COMPLETED:
                if order.status == OrderStatus.CANCELLED:
                    raise DicomFailure(
                        PROCESSING_FAILURE,
                        f"order {order.accession_number} was cancelled meanwhile",
                        order=order,
                    )
                # A room whose exams staff complete by hand (Room.completion MANUAL): the step is
                # recorded as COMPLETED, the order stays where it is for a person to close.
                manual = order.room is not None and order.room.completion == Completion.MANUAL
                if order.status != OrderStatus.COMPLETED and not manual:
                    order = scheduling.order_complete(order=_start(order, user), user=user)
            elif status == MppsStatus.DISCONTINUED:
                step.discontinue_reason = _discontinue_reason(attributes) or "Discontinued at modality"
                if order.status == OrderStatus.IN_PROGRESS:
                    order = scheduling.order_discontinue(
                        order=order, reason=step.discontinue_reason, user=user
                    )
        except ValidationError as exc:
            raise DicomFailure(PROCESSING_FAILURE, "; ".join(exc.messages), order=order) from None
        if status:
            step.status = status
        if step.is_final:
            step.ended_at = timezone.now()
        step.attributes = {**step.attributes, **mpps_summary(attributes)}
        step.save()
    logger.info(
        "MPPS %s from %s: %s, order %s now %s",
        sop_instance_uid,
        calling_ae,
        step.status,
        order.accession_number,
        order.status,
    )
    return step
