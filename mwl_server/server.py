"""The DICOM listener: Modality Worklist C-FIND, MPPS N-CREATE/N-SET and C-ECHO (pynetdicom).

Each association runs in its own thread. Handlers never let an exception reach pynetdicom: every
failure becomes a DICOM status with an ErrorComment, and is logged. Each handler closes its database
connection when done, since association threads come and go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    Verification,
)
from pynetdicom.transport import ThreadedAssociationServer

from . import services
from .services import DicomFailure

logger = logging.getLogger(__name__)

# Never a valid AE title (backslash): with no known caller at all, nobody gets in.
_NOBODY = "\\"


class RisAE(AE):
    """An AE whose allowed calling AE titles are read from settings and rooms at each association."""

    @property
    def require_calling_aet(self) -> list[str]:
        if settings.DICOM_SERVER_ALLOW_ANY_CALLER:
            return []
        with _db():
            return services.known_callers() or [_NOBODY]

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        # Fixed by settings and rooms; pynetdicom's own assignment is ignored.
        pass


@contextmanager
def _db() -> Iterator[None]:
    close_old_connections()
    try:
        yield
    finally:
        connection.close()


def _status(code: int, comment: str = "") -> Dataset:
    status = Dataset()
    status.Status = code
    if comment:
        # ErrorComment is LO: at most 64 characters, plain ASCII is safest for every peer.
        status.ErrorComment = comment.encode("ascii", "replace").decode()[:64]
    return status


def _calling(event) -> str:
    return event.assoc.requestor.ae_title.strip()


def handle_echo(event) -> int:
    return 0x0000


def handle_find(event):
    """C-FIND in the Modality Worklist model: pending answers, then success or a failure status."""
    calling = _calling(event)
    try:
        query = event.identifier
        # Touch every element so a dataset that cannot be decoded fails here, not half-way.
        list(query.iterall())
    except Exception as exc:  # any decoding error is the peer's malformed identifier
        logger.warning("C-FIND from %s: unreadable identifier: %s", calling, exc)
        yield _status(services.IDENTIFIER_DOES_NOT_MATCH, "Identifier cannot be decoded"), None
        return
    try:
        with _db():
            answers = services.worklist_find(query)
    except DicomFailure as exc:
        logger.warning("C-FIND from %s refused (0x%04X): %s", calling, exc.status, exc.message)
        yield _status(exc.status, exc.message), None
        return
    except Exception:
        logger.exception("C-FIND from %s failed", calling)
        yield _status(services.UNABLE_TO_PROCESS, "Unable to process"), None
        return
    logger.info("C-FIND from %s: %d item(s)", calling, len(answers))
    for answer in answers:
        if event.is_cancelled:
            yield 0xFE00, None
            return
        yield 0xFF00, answer


def handle_n_create(event):
    calling = _calling(event)
    request = event.request
    if request.AffectedSOPClassUID != ModalityPerformedProcedureStep:
        return _status(0x0118, "No such SOP class"), None
    try:
        attributes = event.attribute_list
        with _db():
            services.mpps_create(
                sop_instance_uid=str(request.AffectedSOPInstanceUID or ""),
                attributes=attributes,
                calling_ae=calling,
            )
    except DicomFailure as exc:
        logger.warning("MPPS N-CREATE from %s refused (0x%04X): %s", calling, exc.status, exc.message)
        return _status(exc.status, exc.message), None
    except Exception:
        logger.exception("MPPS N-CREATE from %s failed", calling)
        return _status(services.PROCESSING_FAILURE, "Processing failure"), None
    return 0x0000, attributes


def handle_n_set(event):
    calling = _calling(event)
    request = event.request
    if request.RequestedSOPClassUID != ModalityPerformedProcedureStep:
        return _status(0x0118, "No such SOP class"), None
    try:
        attributes = event.attribute_list
        with _db():
            services.mpps_update(
                sop_instance_uid=str(request.RequestedSOPInstanceUID or ""),
                attributes=attributes,
                calling_ae=calling,
            )
    except DicomFailure as exc:
        logger.warning("MPPS N-SET from %s refused (0x%04X): %s", calling, exc.status, exc.message)
        return _status(exc.status, exc.message), None
    except Exception:
        logger.exception("MPPS N-SET from %s failed", calling)
        return _status(services.PROCESSING_FAILURE, "Processing failure"), None
    return 0x0000, attributes


def handle_rejected(event) -> None:
    logger.warning(
        "association from %s (%s) rejected: unknown calling AE title or wrong called AE title",
        _calling(event),
        event.assoc.requestor.address,
    )


HANDLERS = [
    (evt.EVT_C_ECHO, handle_echo),
    (evt.EVT_C_FIND, handle_find),
    (evt.EVT_N_CREATE, handle_n_create),
    (evt.EVT_N_SET, handle_n_set),
    (evt.EVT_REJECTED, handle_rejected),
]


def build_ae(ae_title: str | None = None) -> RisAE:
    ae = RisAE(ae_title=ae_title or settings.DICOM_SERVER_AE)
    # Like wlmscpfs: a modality calling another AE title is misconfigured, and is told so at once.
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    ae.add_supported_context(ModalityWorklistInformationFind)
    ae.add_supported_context(ModalityPerformedProcedureStep)
    ae.acse_timeout = ae.dimse_timeout = 30
    ae.network_timeout = 60
    return ae


def start_server(
    *, host: str | None = None, port: int | None = None, ae_title: str | None = None, block: bool = False
) -> ThreadedAssociationServer | None:
    """Listen on host:port (settings by default). Blocks when `block`; else returns the server, whose
    shutdown() stops it."""
    ae = build_ae(ae_title)
    address = (host if host is not None else settings.DICOM_SERVER_BIND, port or settings.DICOM_SERVER_PORT)
    logger.info("DICOM server %s listening on %s:%s", ae.ae_title, *address)
    return ae.start_server(address, block=block, evt_handlers=HANDLERS)
