"""The DICOM listener: Modality Worklist C-FIND, MPPS N-CREATE/N-SET and C-ECHO (pynetdicom).

Each association runs in its own thread. Handlers never let an exception reach pynetdicom: every
failure becomes a DICOM status with an ErrorComment, and is logged. Each handler closes its database
connection when done, since association threads come and go.

Before pynetdicom sees a connection (RisAssociationServer), it must send its whole A-ASSOCIATE-RQ within
DICOM_SERVER_REQUEST_TIMEOUT, and one address may hold only DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS
connections: pynetdicom counts every connection against its association limit from the moment it is
accepted, so ten sockets that sent nothing used to lock every scanner out for 30 s (issue 13).
"""

from __future__ import annotations

import logging
import select
import socket
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import close_old_connections, connection
from pydicom.dataset import Dataset
from pydicom.uid import UID
from pynetdicom import AE, evt
from pynetdicom import _config as pynetdicom_config
from pynetdicom.sop_class import (
    ModalityPerformedProcedureStep,
    ModalityWorklistInformationFind,
    Verification,
)
from pynetdicom.transport import RequestHandler, ThreadedAssociationServer

from access_audit.services import access_record_station_find

from . import access, services
from .services import DicomFailure

logger = logging.getLogger(__name__)

# Never a valid AE title (backslash): with no known caller at all, nobody gets in.
_NOBODY = "\\"
# An A-ASSOCIATE-RQ is a few kilobytes even with every presentation context a modality offers.
MAX_ASSOCIATE_RQ = 64 * 1024
A_ASSOCIATE_RQ = 0x01
# A C-FIND identifier is a few hundred bytes; a bigger one is refused before it is decoded.
MAX_IDENTIFIER_BYTES = 64 * 1024


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
    identifier = event.request.Identifier
    if identifier is not None and len(identifier.getbuffer()) > MAX_IDENTIFIER_BYTES:
        logger.warning("C-FIND from %s refused: identifier over %d bytes", calling, MAX_IDENTIFIER_BYTES)
        yield _status(services.OUT_OF_RESOURCES, "query too large"), None
        return
    try:
        query = event.identifier
        # Touch every element so a dataset that cannot be decoded fails here, not half-way.
        list(query.iterall())
    except Exception as exc:  # any decoding error is the peer's malformed identifier
        logger.warning("C-FIND from %s: unreadable identifier: %s", calling, exc)
        yield _status(services.IDENTIFIER_DOES_NOT_MATCH, "Identifier cannot be decoded"), None
        return
    # Answers leave as they are found (the first of a match-all after one chunk of orders, not after
    # all of them); the database connection is this thread's, closed when the last answer is out.
    transfer_syntax = UID(event.context.transfer_syntax)
    with _db():
        try:
            answers = services.worklist_answers(
                query,
                implicit_vr=transfer_syntax.is_implicit_VR,
                little_endian=transfer_syntax.is_little_endian,
            )
        except DicomFailure as exc:
            logger.warning("C-FIND from %s refused (0x%04X): %s", calling, exc.status, exc.message)
            yield _status(exc.status, exc.message), None
            return
        sent: list[dict[str, str]] = []
        try:
            for answer in answers:
                if event.is_cancelled:
                    logger.info("C-FIND from %s cancelled after %d item(s)", calling, len(sent))
                    yield 0xFE00, None
                    return
                sent.append(_traced(answer))
                yield 0xFF00, answer
            logger.info("C-FIND from %s: %d item(s)", calling, len(sent))
        except DicomFailure as exc:
            logger.warning(
                "C-FIND from %s stopped (0x%04X) after %d item(s): %s",
                calling,
                exc.status,
                len(sent),
                exc.message,
            )
            yield _status(exc.status, exc.message), None
        except Exception:
            logger.exception("C-FIND from %s failed after %d item(s)", calling, len(sent))
            yield _status(services.UNABLE_TO_PROCESS, "Unable to process"), None
        finally:
            # What left the server is on record, also when the query ended early.
            access_record_station_find(
                calling_ae=calling, address=event.assoc.requestor.address, query=query, answers=sent
            )


def _traced(answer: Dataset) -> dict[str, str]:
    """The keys the access record traces an answer by (it reads them with .get), without keeping the
    whole answer, nor decoding it: an ASCII value is read from its bytes."""
    kept = {}
    for tag, keyword in ((0x00080050, "AccessionNumber"), (0x0020000D, "StudyInstanceUID")):
        if tag in answer:
            elem = answer.get_item(tag)
            value = elem.value.decode("ascii", "replace") if elem.is_raw and elem.value else elem.value
            kept[keyword] = str(value or "").strip(" \0")
    return kept


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
                calling_address=event.assoc.requestor.address,
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
                calling_address=event.assoc.requestor.address,
            )
    except DicomFailure as exc:
        logger.warning("MPPS N-SET from %s refused (0x%04X): %s", calling, exc.status, exc.message)
        return _status(exc.status, exc.message), None
    except Exception:
        logger.exception("MPPS N-SET from %s failed", calling)
        return _status(services.PROCESSING_FAILURE, "Processing failure"), None
    return 0x0000, attributes


def handle_requested(event) -> None:
    """An AE title on DICOM_SERVER_ALLOWED_ADDRESSES calling from elsewhere is rejected (calling AE title
    not recognised), before any other check."""
    assoc = event.assoc
    calling = str(assoc.requestor.primitive.calling_ae_title or "").strip()
    address = assoc.requestor.address
    if access.address_allowed(ae_title=calling, address=address):
        return
    logger.warning(
        "association from %s (%s) rejected: not an address allowed for that AE title", calling, address
    )
    assoc.acse.send_reject(0x01, 0x01, 0x03)
    # As pynetdicom does after its own rejections: wait until the rejection is sent and the peer gone.
    assoc.kill()


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
    (evt.EVT_REQUESTED, handle_requested),
    (evt.EVT_REJECTED, handle_rejected),
]


class GuardedRequestHandler(RequestHandler):
    """Hands a connection to pynetdicom only once its whole association request has arrived."""

    server: RisAssociationServer

    def handle(self) -> None:
        try:
            ready = self.server.await_associate_request(self.request, self.client_address)
        finally:
            self.server.pending_done(self.client_address)
        if ready:
            super().handle()
        else:
            self.server.shutdown_request(self.request)


class RisAssociationServer(ThreadedAssociationServer):
    """pynetdicom's threaded server with limits on the connections that have not associated yet.

    Waiting connections are counted here, not by pynetdicom (whose maximum_associations then counts only
    connections that did send a request): at most DICOM_SERVER_MAX_PENDING in all, and an address may
    hold DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS connections, waiting or associated. A TLS handshake
    happens in the connection's own thread, with the same timeout, never in the accepting one.
    """

    request_queue_size = 128  # a burst of connections is accepted, not left to SYN retries
    block_on_close = False  # shutdown does not wait for connections that are still waiting

    def __init__(self, *args, **kwargs):
        self._pending: Counter[str] = Counter()
        self._pending_lock = threading.Lock()
        self._last_warning: dict[str, float] = {}
        super().__init__(*args, request_handler=GuardedRequestHandler, **kwargs)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = self.socket.accept()
        if self.ssl_context:
            client = self.ssl_context.wrap_socket(client, server_side=True, do_handshake_on_connect=False)
        return client, address

    def verify_request(self, request, client_address) -> bool:
        host = client_address[0]
        with self._pending_lock:
            waiting = self._pending.total()
            if waiting >= settings.DICOM_SERVER_MAX_PENDING:
                self._warn(
                    host, "connection from %s closed: %d connections are waiting to associate", waiting
                )
                return False
            associated = sum(1 for a in self.active_associations if a.requestor.address == host)
            held = self._pending[host] + associated
            if held >= settings.DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS:
                self._warn(host, "connection from %s closed: it holds %d connections already", held)
                return False
            self._pending[host] += 1
        return True

    def pending_done(self, client_address) -> None:
        host = client_address[0]
        with self._pending_lock:
            self._pending[host] -= 1
            if self._pending[host] <= 0:
                del self._pending[host]

    def _warn(self, host: str, message: str, count: int) -> None:
        # Once a minute per address: a flood of connections must not become a flood of log lines.
        now = time.monotonic()
        if now - self._last_warning.get(host, -60.0) >= 60:
            self._last_warning[host] = now
            logger.warning(message, host, count)

    def await_associate_request(self, sock: socket.socket, client_address) -> bool:
        """Wait until `sock` holds a whole A-ASSOCIATE-RQ, for DICOM_SERVER_REQUEST_TIMEOUT at most."""
        deadline = time.monotonic() + settings.DICOM_SERVER_REQUEST_TIMEOUT
        try:
            if isinstance(sock, ssl.SSLSocket):
                return _await_tls(sock, deadline)
            return _await_plain(sock, deadline)
        except (OSError, ValueError) as exc:
            logger.info("connection from %s closed before associating: %s", client_address[0], exc)
            return False


def _await_plain(sock: socket.socket, deadline: float) -> bool:
    # Peeked, not read: the bytes stay in the socket for pynetdicom.
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([sock], [], [], remaining)[0]:
            break
        head = sock.recv(6 + MAX_ASSOCIATE_RQ, socket.MSG_PEEK)
        if not head or head[0] != A_ASSOCIATE_RQ:
            return False  # closed, or not DICOM
        if len(head) >= 6:
            (length,) = struct.unpack(">I", head[2:6])
            if length > MAX_ASSOCIATE_RQ:
                return False
            if len(head) >= 6 + length:
                return True
        time.sleep(0.02)  # part of the request is there; select() would return at once
    return False


def _await_tls(sock: ssl.SSLSocket, deadline: float) -> bool:
    # Encrypted bytes cannot be peeked: the handshake and the first bytes of the request must arrive
    # in time; a request that then stalls is left to pynetdicom's ACSE timeout.
    sock.settimeout(max(deadline - time.monotonic(), 0.001))
    sock.do_handshake()
    ready = sock.pending() > 0
    if not ready:
        remaining = deadline - time.monotonic()
        ready = remaining > 0 and bool(select.select([sock], [], [], remaining)[0])
    sock.settimeout(None)
    return ready


def tls_context() -> ssl.SSLContext | None:
    """The server's TLS context from DICOM_SERVER_TLS_CERT/KEY/CA, or None for plain TCP (the default)."""
    if not settings.DICOM_SERVER_TLS_CERT:
        if settings.DICOM_SERVER_TLS_KEY or settings.DICOM_SERVER_TLS_CA:
            raise ssl.SSLError("DICOM_SERVER_TLS_KEY or _CA is set without DICOM_SERVER_TLS_CERT")
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.DICOM_SERVER_TLS_CERT, settings.DICOM_SERVER_TLS_KEY or None)
    if settings.DICOM_SERVER_TLS_CA:
        context.load_verify_locations(settings.DICOM_SERVER_TLS_CA)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def build_ae(ae_title: str | None = None) -> RisAE:
    ae = RisAE(ae_title=ae_title or settings.DICOM_SERVER_AE)
    # Like wlmscpfs: a modality calling another AE title is misconfigured, and is told so at once.
    ae.require_called_aet = True
    ae.add_supported_context(Verification)
    ae.add_supported_context(ModalityWorklistInformationFind)
    ae.add_supported_context(ModalityPerformedProcedureStep)
    ae.acse_timeout = ae.dimse_timeout = 30
    ae.network_timeout = 60
    # Only connections that sent a whole request count (RisAssociationServer keeps the others apart).
    ae.maximum_associations = settings.DICOM_SERVER_MAX_ASSOCIATIONS
    return ae


def _quiet_pynetdicom() -> None:
    """Unless pynetdicom's logger is at DEBUG, stop it formatting what it would log there.

    pynetdicom renders every C-FIND answer as text (LOG_RESPONSE_IDENTIFIERS) and every DIMSE message
    (its "standard" event handlers) before the logger drops them: more than half of the server's time
    per answer, and patient names and IDs have no place in the log anyway.
    """
    if logging.getLogger("pynetdicom").isEnabledFor(logging.DEBUG):
        return
    pynetdicom_config.LOG_RESPONSE_IDENTIFIERS = False
    pynetdicom_config.LOG_REQUEST_IDENTIFIERS = False
    pynetdicom_config.LOG_HANDLER_LEVEL = "none"


def start_server(
    *, host: str | None = None, port: int | None = None, ae_title: str | None = None, block: bool = False
) -> ThreadedAssociationServer | None:
    """Listen on host:port (settings by default), over TLS when DICOM_SERVER_TLS_CERT is set. Blocks when
    `block`; else returns the server, whose shutdown() stops it."""
    _quiet_pynetdicom()
    ae = build_ae(ae_title)
    address = (host if host is not None else settings.DICOM_SERVER_BIND, port or settings.DICOM_SERVER_PORT)
    context = tls_context()
    # Checked now, not at the first association: a typo in either setting stops the start.
    access.room_callers()
    access.allowed_networks()
    # AE.start_server() always builds pynetdicom's own server class; this is what it does, with ours.
    server = ae.make_server(
        address, ssl_context=context, evt_handlers=HANDLERS, server_class=RisAssociationServer
    )
    ae._servers.append(server)  # AssociationServer.shutdown() removes it from there
    logger.info("DICOM server %s listening on %s:%s%s", ae.ae_title, *address, " (TLS)" if context else "")
    if block:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            server.shutdown()
        return None
    threading.Thread(target=server.serve_forever, name="AcceptorServer", daemon=True).start()
    return server
