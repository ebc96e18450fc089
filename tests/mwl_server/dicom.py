"""A modality's side of the DICOM talk, for every test tier that has one (mwl_server, interop, e2e).

Worklist queries as a modality builds them, C-ECHO, C-FIND, findscu, MPPS N-CREATE and N-SET over
pynetdicom, and serve_dicom's server on a free loopback port. The bench (bench/run.py) keeps its own.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import ModalityPerformedProcedureStep, ModalityWorklistInformationFind, Verification

from mwl_server import query as modality_query
from mwl_server.server import start_server
from scheduling.models import Order

SERVER_AE = "RISMWL"
CALLING_AE = "TESTSCU"

# The return keys a modality asks for: the "Query as a modality" page's, and the step's status.
RETURN_KEYS = modality_query.RETURN_KEYS
SPS_RETURN_KEYS = (*modality_query.SPS_RETURN_KEYS, "ScheduledProcedureStepStatus")


def require(binary: str, *fallbacks: str) -> str:
    """The path of a peer program (wlmscpfs, findscu, Orthanc); fail, never skip, when it is missing."""
    found = shutil.which(binary) or next((f for f in fallbacks if Path(f).is_file()), None)
    if found is None:
        pytest.fail(f"{binary} is not installed; the interop tests need it (apt-get install dcmtk orthanc).")
    return found


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A port free on 127.0.0.1 now, drawn at random below the kernel's ephemeral range.

    A server started on it in a subprocess (Orthanc, serve_dicom, serve_hl7, gunicorn) takes a moment to
    bind: meanwhile an ephemeral port (what bind(0) hands out) can be taken as the local port of any
    outgoing connection on the machine, or be handed to a pytest-xdist worker's own bind(0). Ports
    below that range are never given to outgoing connections, and drawn at random two workers seldom
    pick the same one; bind(0) is the last resort.
    """
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randrange(10_000, max(low, 10_001))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(ae_title: str = SERVER_AE) -> Iterator[int]:
    """serve_dicom's server in a thread of this process (so it shares the test database); the port."""
    port = free_port()
    server = start_server(host="127.0.0.1", port=port, ae_title=ae_title, block=False)
    try:
        yield port
    finally:
        server.shutdown()


def _ae(calling: str, *contexts, timeout: float = 10) -> AE:
    ae = AE(ae_title=calling)
    for context in contexts:
        ae.add_requested_context(context)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    return ae


def echo(
    port: int,
    *,
    calling: str = CALLING_AE,
    called: str = SERVER_AE,
    timeout: float = 10,
    bind: str = "127.0.0.1",
    tls=None,
) -> str:
    """'ok', 'rejected' or 'failed': a C-ECHO from `bind`, over TLS when `tls` is (context, hostname)."""
    assoc = _ae(calling, Verification, timeout=timeout).associate(
        "127.0.0.1", port, ae_title=called, bind_address=(bind, 0), tls_args=tls
    )
    if assoc.is_rejected:
        return "rejected"
    if not assoc.is_established:
        return "failed"
    try:
        status = assoc.send_c_echo()
        return "ok" if status and status.Status == 0 else "failed"
    finally:
        assoc.release()


def worklist_query(sps_keys: dict | None = None, /, *, charset: str = "ISO_IR 192", **keys) -> Dataset:
    """A Modality Worklist C-FIND identifier: the usual return keys, `keys` at the top level and
    `sps_keys` in the Scheduled Procedure Step item (a value there is a matching key)."""
    ds = Dataset()
    ds.SpecificCharacterSet = charset
    for keyword in RETURN_KEYS:
        setattr(ds, keyword, "")
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    sps = Dataset()
    for keyword in SPS_RETURN_KEYS:
        setattr(sps, keyword, "")
    for keyword, value in (sps_keys or {}).items():
        setattr(sps, keyword, value)
    ds.ScheduledProcedureStepSequence = [sps]
    return ds


def find(port: int, query: Dataset, *, calling: str = CALLING_AE, called: str = SERVER_AE):
    """(pending answers, final status dataset) of a worklist C-FIND."""
    assoc = _ae(calling, ModalityWorklistInformationFind).associate("127.0.0.1", port, ae_title=called)
    assert assoc.is_established, f"association to {called}@{port} refused"
    answers, final = [], None
    try:
        for status, identifier in assoc.send_c_find(query, ModalityWorklistInformationFind):
            assert status, "no C-FIND response"
            if status.Status in (0xFF00, 0xFF01):
                answers.append(identifier)
            else:
                final = status
    finally:
        assoc.release()
    return answers, final


def find_answers(
    port: int, query: Dataset, *, calling: str = CALLING_AE, called: str = SERVER_AE
) -> list[Dataset]:
    """The pending answers of a worklist C-FIND that must end in success."""
    answers, final = find(port, query, calling=calling, called=called)
    assert final is not None, "C-FIND ended without a final status"
    assert final.Status == 0x0000, f"C-FIND ended with status 0x{final.Status:04X}"
    return answers


def findscu(port: int, called_ae: str, keys: list[str], out: Path) -> list[Dataset]:
    """findscu -W with `keys` (-k each), as a DCMTK-based modality asks; the answers it wrote in `out`."""
    out.mkdir()
    args = [require("findscu"), "-W", "-aet", CALLING_AE, "-aec", called_ae, "-X", "-od", str(out)]
    for key in keys:
        args += ["-k", key]
    result = subprocess.run([*args, "127.0.0.1", str(port)], capture_output=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return [dcmread(path) for path in sorted(out.glob("rsp*.dcm"))]


def mpps_dataset(order: Order | None = None, *, status: str = "IN PROGRESS", **refs) -> Dataset:
    """The N-CREATE attributes a modality sends for `order` (PS3.4 Table F.7.2-1, the essentials)."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ref = Dataset()
    ref.AccessionNumber = order.accession_number if order else ""
    ref.StudyInstanceUID = order.study_instance_uid if order else ""
    ref.RequestedProcedureID = order.requested_procedure_id if order else ""
    ref.ScheduledProcedureStepID = order.sps_id if order else ""
    ref.ReferencedStudySequence = []
    for keyword, value in refs.items():
        setattr(ref, keyword, value)
    ds.ScheduledStepAttributesSequence = [ref]
    ds.PatientName = str(order.patient.family_name) if order else ""
    ds.PatientID = order.patient.mrn if order else ""
    ds.PerformedProcedureStepID = "PPS1"
    # A requested order has no room: the station is then whichever the test says (CT01 unless changed).
    ds.PerformedStationAETitle = order.room.ae_title if order and order.room else "CT01"
    ds.PerformedProcedureStepStartDate = "20261125"
    ds.PerformedProcedureStepStartTime = "093100"
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepDescription = "CT Head"
    ds.Modality = "CT"
    ds.PerformedProcedureStepEndDate = ""
    ds.PerformedProcedureStepEndTime = ""
    ds.PerformedSeriesSequence = []
    return ds


def mpps_set_dataset(status: str, reason: str = "") -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = status
    ds.PerformedProcedureStepEndDate = "20261125"
    ds.PerformedProcedureStepEndTime = "094500"
    if reason:
        code = Dataset()
        code.CodeValue = "110514"
        code.CodingSchemeDesignator = "DCM"
        code.CodeMeaning = reason
        ds.PerformedProcedureStepDiscontinuationReasonCodeSequence = [code]
    return ds


def new_uid() -> str:
    return generate_uid(prefix=None)


def n_create(port: int, uid: str, attributes: Dataset, *, calling: str = CALLING_AE) -> int:
    assoc = _ae(calling, ModalityPerformedProcedureStep).associate("127.0.0.1", port, ae_title=SERVER_AE)
    assert assoc.is_established
    try:
        status, _ = assoc.send_n_create(attributes, ModalityPerformedProcedureStep, uid)
        assert status, "no N-CREATE response"
        return status.Status
    finally:
        assoc.release()


def n_set(port: int, uid: str, attributes: Dataset, *, calling: str = CALLING_AE) -> int:
    assoc = _ae(calling, ModalityPerformedProcedureStep).associate("127.0.0.1", port, ae_title=SERVER_AE)
    assert assoc.is_established
    try:
        status, _ = assoc.send_n_set(attributes, ModalityPerformedProcedureStep, uid)
        assert status, "no N-SET response"
        return status.Status
    finally:
        assoc.release()
