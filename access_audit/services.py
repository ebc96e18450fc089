"""Recording reads of patient data, and purging records older than the retention.

The pages, the "Query as a modality" page and the DICOM server call these after they have loaded what
they are about to show (a 404 or an unreadable file records nothing) and before they answer.

When the record cannot be written, the read is served anyway and the record goes to the log instead,
in full (ERROR, logger "access_audit.services"), so it can be put back from there. Refusing the read
would be the stricter reading of accountability, but the record lives in the same database as the
patient: the likely causes (a full disk, a lock timeout, a database going read-only) would then stop
every patient page and every scanner's worklist at once, and a radiology department that cannot see
who is on the table is a patient-safety problem, not a privacy gain. The log line keeps the read
accountable; the ERROR level is what monitoring should alert on. Only database errors are caught: a
programming error in here surfaces, as everywhere else.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone
from pydicom.dataset import Dataset

from ris.proxy import client_ip
from scheduling.models import Order, Patient

from .models import AccessAction, AccessEvent

if TYPE_CHECKING:
    from mwl_server.query import QueryResult

logger = logging.getLogger(__name__)

SUMMARY_MAX = AccessEvent._meta.get_field("query_summary").max_length
AE_MAX = AccessEvent._meta.get_field("calling_ae").max_length
# Rows deleted per statement by the purge, so a large backlog never holds one long lock.
PURGE_BATCH = 5000


def _describe(event: AccessEvent) -> str:
    return (
        f"action={event.action} at={event.at.isoformat()} user={event.user_id} "
        f"calling_ae={event.calling_ae!r} address={event.address} patient={event.patient_id} "
        f"order={event.order_id} items={event.item_count} query={event.query_summary!r}"
    )


def _write(events: list[AccessEvent]) -> None:
    """Insert `events` in one statement (per batch) or, if the database refuses, log them in full."""
    try:
        # A savepoint: a failed INSERT must not break a transaction the caller may be in (PostgreSQL
        # refuses every later statement of an aborted transaction).
        with transaction.atomic():
            AccessEvent.objects.bulk_create(events)
    except DatabaseError as exc:
        logger.error(
            "access NOT recorded in the database (%s); the read was served. %s",
            exc,
            "; ".join(_describe(event) for event in events),
        )


def access_record(
    *, request: HttpRequest, action: AccessAction, patient: Patient | None = None, order: Order | None = None
) -> None:
    """Record that the logged-in user of `request` read `patient` (or `order`, and so its patient).

    Never raises for a database error: see the module's docstring.
    """
    # By id: the order's patient need not be loaded for this.
    patient_id = patient.pk if patient is not None else (order.patient_id if order is not None else None)
    event = AccessEvent(
        action=action, user=request.user, address=client_ip(request), patient_id=patient_id, order=order
    )
    _write([event])


def query_summary(query: Dataset) -> str:
    """The matching keys of a worklist query (those with a value), `Keyword=value` separated by spaces;
    the return keys (empty) and SpecificCharacterSet left out. Cut to fit the column."""
    parts = []
    for element in query.iterall():
        if element.VR == "SQ" or element.keyword == "SpecificCharacterSet":
            continue
        value = "" if element.value is None else str(element.value)
        if value:
            parts.append(f"{element.keyword or element.tag}={value}")
    return " ".join(parts)[:SUMMARY_MAX]


def _answer_events(
    *, template: dict, accessions: Sequence[str], study_uids: Sequence[str] = ()
) -> list[AccessEvent]:
    """One event per order among the answers (found by accession number, else by study instance UID),
    or a single event without a patient when none is known: the query is on record either way."""
    wanted_accessions = {a for a in accessions if a}
    wanted_uids = {u for u in study_uids if u}
    orders = []
    if wanted_accessions or wanted_uids:
        orders = list(
            Order.objects.filter(
                Q(accession_number__in=wanted_accessions) | Q(study_instance_uid__in=wanted_uids)
            )
            .order_by("pk")
            .values_list("pk", "patient_id")
        )
    if not orders:
        return [AccessEvent(**template)]
    return [AccessEvent(**template, order_id=pk, patient_id=patient_id) for pk, patient_id in orders]


def access_record_modality_query(*, request: HttpRequest, query: Dataset, result: QueryResult) -> None:
    """Record the "Query as a modality" page: the user, the keys sent, and one row per order among the
    answers shown (each with the total number of items). Never raises for a database error."""
    summary = f"{result.target.key} {result.target.called_ae}: {query_summary(query)}"
    template = {
        "action": AccessAction.MODALITY_QUERY,
        "user": request.user,
        "address": client_ip(request),
        "calling_ae": result.calling_ae[:AE_MAX],
        "query_summary": summary[:SUMMARY_MAX],
        "item_count": len(result.rows),
        "at": timezone.now(),
    }
    try:
        events = _answer_events(template=template, accessions=[row.accession for row in result.rows])
    except DatabaseError as exc:
        logger.error("access NOT recorded (%s): %s", exc, _describe(AccessEvent(**template)))
        return
    _write(events)


def access_record_station_find(
    *, calling_ae: str, address: str | None, query: Dataset, answers: Sequence[Dataset]
) -> None:
    """Record a C-FIND answered by the built-in DICOM server: the calling AE title and address, the
    matching keys, and one row per order answered, written in one INSERT (not one per item).

    Answers are traced to orders by AccessionNumber, or StudyInstanceUID when the station did not ask
    for the accession number; a station that asked for neither is on record without the patients.
    Never raises for a database error: a modality's worklist is not held up by its audit trail.
    """
    template = {
        "action": AccessAction.STATION_FIND,
        "calling_ae": (calling_ae or "?")[:AE_MAX],
        "address": address or None,
        "query_summary": query_summary(query),
        "item_count": len(answers),
        "at": timezone.now(),
    }
    try:
        events = _answer_events(
            template=template,
            accessions=[str(answer.get("AccessionNumber", "") or "") for answer in answers],
            study_uids=[str(answer.get("StudyInstanceUID", "") or "") for answer in answers],
        )
    except DatabaseError as exc:
        logger.error("access NOT recorded (%s): %s", exc, _describe(AccessEvent(**template)))
        return
    _write(events)


def access_log_purge(*, retention_days: int | None = None, now: datetime | None = None) -> int:
    """Delete the records older than `retention_days` (ACCESS_AUDIT_RETENTION_DAYS by default); how
    many were deleted. Refuses a retention under one day: that would empty the log."""
    days = settings.ACCESS_AUDIT_RETENTION_DAYS if retention_days is None else retention_days
    if days < 1:
        raise ValueError(f"access log retention must be at least 1 day, not {days}")
    cutoff = (now or timezone.now()) - timedelta(days=days)
    deleted = 0
    while True:
        batch = list(
            AccessEvent.objects.filter(at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:PURGE_BATCH]
        )
        if not batch:
            return deleted
        count, _ = AccessEvent.objects.filter(pk__in=batch).delete()
        deleted += count
