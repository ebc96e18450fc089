"""What the DICOM server does with a request: worklist answers from the database, MPPS into orders.

Kept apart from the network code (server.py) so each step can be called and tested with a dataset
built in a test. Failures raise DicomFailure with the status the peer should receive.
"""

from __future__ import annotations

import logging
import time
from datetime import date
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from pydicom.dataset import Dataset

from scheduling import services as scheduling
from scheduling.models import ACTIVE_STATUSES, Order, OrderStatus, Room
from scheduling.selectors import day_bounds
from worklist_export.dataset import ExportError, order_dataset
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


def _prefiltered(query: Dataset) -> QuerySet[Order]:
    """The worklist orders narrowed in SQL by the keys that map onto columns; Python matches the rest."""
    orders = worklist_orders()
    sps_seq = query.get("ScheduledProcedureStepSequence")
    sps = sps_seq[0] if sps_seq else Dataset()
    ae = matching.single_value(_element(sps, "ScheduledStationAETitle"))
    if ae is not None:
        orders = orders.filter(room__ae_title=ae)
    modality = matching.single_value(_element(sps, "Modality"))
    if modality is not None:
        orders = orders.filter(procedure__modality=modality)
    start_date = _element(sps, "ScheduledProcedureStepStartDate")
    if start_date is not None and not matching.is_universal(start_date):
        lower, upper = matching.split_range(str(start_date.value), "ScheduledProcedureStepStartDate")
        if lower:
            orders = orders.filter(scheduled_start__gte=day_bounds(_day(lower))[0])
        if upper:
            orders = orders.filter(scheduled_start__lt=day_bounds(_day(upper))[1])
    patient_id = matching.single_value(_element(query, "PatientID"))
    if patient_id is not None:
        orders = orders.filter(patient__mrn=patient_id)
    accession = matching.single_value(_element(query, "AccessionNumber"))
    if accession is not None:
        orders = orders.filter(accession_number=accession)
    return orders.order_by("scheduled_start", "pk")


def _day(value: str) -> date:
    return date(int(value[:4]), int(value[4:6]), int(value[6:8]))


def worklist_find(query: Dataset) -> list[Dataset]:
    """The worklist items matching `query` (PS3.4 Annex K), each with only the requested keys.

    The items are the ones the export writes as .wl files (same orders, same builder), so the built-in
    server answers exactly what wlmscpfs or Orthanc would. Raises DicomFailure on a malformed identifier.
    """
    try:
        matching.validate_query(query)
    except matching.QueryTooLarge as exc:
        raise DicomFailure(OUT_OF_RESOURCES, f"query too large: {exc}") from None
    except matching.QueryError as exc:
        raise DicomFailure(IDENTIFIER_DOES_NOT_MATCH, str(exc)) from None
    answers = []
    # Matching is cheap per item, but a query that selects nothing in SQL reads the whole window; it
    # must not keep a thread busy for ever (issue 13), so it gives up after DICOM_SERVER_FIND_TIME_LIMIT.
    deadline = time.monotonic() + settings.DICOM_SERVER_FIND_TIME_LIMIT
    for order in _prefiltered(query):
        if time.monotonic() > deadline:
            raise DicomFailure(OUT_OF_RESOURCES, "query took too long; narrow it (date, station)")
        try:
            item = order_dataset(order)
        except ExportError as exc:
            # The export leaves such an order out of the folder too; the clerk sees the error there.
            logger.warning("worklist: order %s left out: %s", order.accession_number, exc)
            continue
        if matching.dataset_matches(query, item):
            answers.append(matching.answer_for(query, item))
    return answers


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
    stations = {order.room.ae_title, *room_callers().get(order.room.ae_title, [])}
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
    completes the order, DISCONTINUED returns it to the front desk with the reason.

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
                if order.status != OrderStatus.COMPLETED:
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
