"""Issue 13 with DCMTK as the modality: `manage.py serve_dicom` (a subprocess reading the test database)
over TLS with echoscu and findscu, and findscu's wildcard query answered at once while idle sockets are open.
"""

from __future__ import annotations

import socket
import subprocess
import time
from contextlib import ExitStack

import pytest

from tests.factories import PatientFactory
from tests.mwl_server.dicom import CALLING_AE, SERVER_AE, require
from tests.mwl_server.process import serve_dicom
from tests.mwl_server.tls import self_signed

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


def dcmtk(program: str, port: int, *args: str, tls: list[str] | None = None) -> subprocess.CompletedProcess:
    command = [require(program), *(tls or []), "-aet", CALLING_AE, "-aec", SERVER_AE, *args]
    return subprocess.run([*command, "127.0.0.1", str(port)], capture_output=True, timeout=30, check=False)


@pytest.fixture
def certificates(tmp_path):
    return {"server": self_signed(tmp_path, "server"), "modality": self_signed(tmp_path, "modality")}


def test_echoscu_and_findscu_over_tls_with_a_client_certificate(tmp_path, book, certificates):
    book(patient=PatientFactory(family_name="Jaidee", given_name="Somchai"))
    (server_cert, server_key), (modality_cert, modality_key) = (
        certificates["server"],
        certificates["modality"],
    )
    tls = ["+tls", str(modality_key), str(modality_cert), "+cf", str(server_cert)]
    env = {
        "DICOM_SERVER_TLS_CERT": str(server_cert),
        "DICOM_SERVER_TLS_KEY": str(server_key),
        "DICOM_SERVER_TLS_CA": str(modality_cert),
    }
    with serve_dicom(
        tmp_path, up=lambda port: dcmtk("echoscu", port, tls=tls).returncode == 0, **env
    ) as port:
        assert dcmtk("echoscu", port, tls=tls).returncode == 0
        # Plain TCP, or TLS without the client certificate the CA signed, gets nothing.
        assert dcmtk("echoscu", port).returncode != 0
        assert dcmtk("echoscu", port, tls=["+tla", "+cf", str(server_cert)]).returncode != 0

        out = tmp_path / "answers"
        out.mkdir()
        keys = ["-k", "PatientName=Jai*", "-k", "PatientID", "-k", "AccessionNumber"]
        found = dcmtk("findscu", port, "-W", "-X", "-od", str(out), *keys, tls=tls)
        assert found.returncode == 0, found.stderr.decode(errors="replace")
        assert len(list(out.glob("rsp*.dcm"))) == 1


def test_findscu_wildcards_are_answered_at_once_beside_idle_sockets(tmp_path, book):
    book(patient=PatientFactory(family_name="Jaidee", given_name="Somchai"))
    with serve_dicom(tmp_path) as port, ExitStack() as stack:
        for n in range(50):
            sock = stack.enter_context(socket.socket())
            sock.bind((f"127.0.0.{2 + n % 10}", 0))
            sock.connect(("127.0.0.1", port))
        began = time.monotonic()
        found = dcmtk("findscu", port, "-W", "-k", "PatientName=" + "*" * 40 + "Z", "-k", "PatientID")
        seconds = time.monotonic() - began
        echoed = dcmtk("echoscu", port)
    assert found.returncode == 0, found.stderr.decode(errors="replace")
    assert echoed.returncode == 0
    assert seconds < 3  # findscu itself takes a few hundred milliseconds to start
