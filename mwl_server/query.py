"""'Query as a modality': the C-FIND a room's scanner runs, sent to a worklist server, answers as received."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import date

from django.conf import settings
from django.utils.translation import gettext as _
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import ModalityWorklistInformationFind

from scheduling.models import ACTIVE_STATUSES, Order, Room
from scheduling.selectors import day_bounds

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    host: str
    port: int
    called_ae: str
    # wlmscpfs serves one folder per called AE title: a room with its own title is asked by that title.
    room_called_ae: bool = False


@dataclass
class WorklistRow:
    patient_name: str
    patient_id: str
    accession: str
    start_date: str
    start_time: str
    description: str
    station_ae: str


@dataclass
class QueryResult:
    target: Target
    calling_ae: str
    rows: list[WorklistRow] = field(default_factory=list)
    error: str = ""
    # The room's active orders of the day that are not among the answers: the scanner will not see them.
    missing: list[Order] = field(default_factory=list)


def query_targets() -> dict[str, Target]:
    """The servers the page can ask (MWL_QUERY_TARGETS)."""
    return {
        key: Target(
            key=key,
            label=conf.get("label", key),
            host=conf["host"],
            port=int(conf["port"]),
            called_ae=conf["called_ae"],
            room_called_ae=bool(conf.get("room_called_ae", False)),
        )
        for key, conf in settings.MWL_QUERY_TARGETS.items()
    }


def target_for_room(*, target: Target, room: Room) -> Target:
    """`target` as the room's scanner calls it: with the room's own called AE title where the server
    tells rooms apart by it (wlmscpfs, where the export writes the room's files into that AE's folder)."""
    override = room.called_ae_title.strip()
    if target.room_called_ae and override:
        return replace(target, called_ae=override)
    return target


def room_orders_missing(*, room: Room, day: date, answers: list[WorklistRow]) -> list[Order]:
    """The room's active orders (scheduled, arrived, in progress) starting on `day` whose accession
    number is not among `answers`, in start order."""
    start, end = day_bounds(day)
    received = {row.accession for row in answers}
    orders = Order.objects.filter(
        room=room, status__in=ACTIVE_STATUSES, scheduled_start__gte=start, scheduled_start__lt=end
    ).order_by("scheduled_start", "pk")
    return [order for order in orders if order.accession_number not in received]


# The return keys a scanner usually asks for (empty: send me the value), at the top and in the SPS item.
RETURN_KEYS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "AccessionNumber",
    "StudyInstanceUID",
    "RequestedProcedureID",
    "RequestedProcedureDescription",
)
SPS_RETURN_KEYS = (
    "ScheduledStationAETitle",
    "ScheduledProcedureStepStartDate",
    "ScheduledProcedureStepStartTime",
    "Modality",
    "ScheduledProcedureStepDescription",
    "ScheduledProcedureStepID",
)


def modality_query_dataset(*, room: Room, day: date) -> Dataset:
    """The broad query of a scanner: its AE title, its modality, the day; the usual return keys."""
    query = Dataset()
    query.SpecificCharacterSet = room.worklist_charset
    for keyword in RETURN_KEYS:
        setattr(query, keyword, "")
    sps = Dataset()
    for keyword in SPS_RETURN_KEYS:
        setattr(sps, keyword, "")
    sps.ScheduledStationAETitle = room.ae_title
    sps.ScheduledProcedureStepStartDate = f"{day:%Y%m%d}"
    sps.Modality = room.modality
    query.ScheduledProcedureStepSequence = [sps]
    return query


def _text(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value)


def _row(answer: Dataset) -> WorklistRow:
    sps_seq = answer.get("ScheduledProcedureStepSequence") or []
    sps = sps_seq[0] if len(sps_seq) else Dataset()
    return WorklistRow(
        patient_name=_text(answer, "PatientName"),
        patient_id=_text(answer, "PatientID"),
        accession=_text(answer, "AccessionNumber"),
        start_date=_text(sps, "ScheduledProcedureStepStartDate"),
        start_time=_text(sps, "ScheduledProcedureStepStartTime"),
        description=_text(sps, "ScheduledProcedureStepDescription")
        or _text(answer, "RequestedProcedureDescription"),
        station_ae=_text(sps, "ScheduledStationAETitle"),
    )


def modality_query(*, room: Room, day: date, target: Target, timeout: float | None = None) -> QueryResult:
    """Run the room's C-FIND against `target` with the room's AE title as calling AE (and the room's
    called AE title where the target uses it).

    Never raises for network trouble: the result's `error` says what went wrong (refused, no answer,
    failure status), in words for the person at the page. When the server answered, `missing` lists
    the room's active orders of the day it left out.
    """
    timeout = timeout if timeout is not None else settings.MWL_QUERY_TIMEOUT
    target = target_for_room(target=target, room=room)
    result = QueryResult(target=target, calling_ae=room.ae_title)
    ae = AE(ae_title=room.ae_title)
    ae.add_requested_context(ModalityWorklistInformationFind)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = ae.connection_timeout = timeout
    where = _("%(label)s at %(host)s:%(port)s (called AE %(called)s)") % {
        "label": target.label,
        "host": target.host,
        "port": target.port,
        "called": target.called_ae,
    }
    try:
        assoc = ae.associate(target.host, target.port, ae_title=target.called_ae)
    except Exception as exc:  # a bad host name or the like; shown to the user
        result.error = _("Could not reach %(where)s: %(error)s") % {"where": where, "error": exc}
        return result
    if assoc.is_rejected:
        result.error = _(
            "%(where)s rejected the association from calling AE %(calling)s: "
            "the server does not know this AE title, or the called AE title is wrong."
        ) % {"where": where, "calling": room.ae_title}
        return result
    if not assoc.is_established:
        result.error = _(
            "%(where)s did not answer within %(seconds)s s (connection refused or timed out)."
        ) % {"where": where, "seconds": f"{timeout:g}"}
        return result
    final = None
    try:
        for status, identifier in assoc.send_c_find(
            modality_query_dataset(room=room, day=day), ModalityWorklistInformationFind
        ):
            if not status:
                result.error = _("%(where)s stopped answering (timeout or aborted association).") % {
                    "where": where
                }
                break
            if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                result.rows.append(_row(identifier))
            else:
                final = status
    finally:
        if assoc.is_established:
            assoc.release()
    if not result.error and final is not None and final.Status != 0x0000:
        comment = final.get("ErrorComment", "")
        result.error = _("%(where)s answered with failure status %(status)s.") % {
            "where": where,
            "status": f"0x{final.Status:04X}" + (f" ({comment})" if comment else ""),
        }
    if not result.error:
        result.missing = room_orders_missing(room=room, day=day, answers=result.rows)
    return result
