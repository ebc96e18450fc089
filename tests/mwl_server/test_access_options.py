"""Issue 13.4: the two options for sites that want them, an address allow-list per AE title and DICOM
over TLS, against serve_dicom's server on a loopback port (in this process: the settings are the test's).
"""

from __future__ import annotations

import socket
import ssl
import time

import pytest
from django.core.management import CommandError, call_command

from mwl_server.access import address_allowed
from tests.mwl_server.dicom import echo, running_server
from tests.mwl_server.tls import self_signed

pytestmark = pytest.mark.django_db(transaction=True)


def echo_from(port: int, *, calling: str = "TESTSCU", bind: str = "127.0.0.1", tls=None) -> str:
    return echo(port, calling=calling, bind=bind, tls=tls, timeout=5)


@pytest.fixture
def callers(settings, room):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False


# --- the address allow-list ------------------------------------------------------------------------


def test_an_ae_title_on_the_allow_list_is_rejected_from_another_address(callers, settings):
    settings.DICOM_SERVER_ALLOWED_ADDRESSES = "CT01=127.0.0.2, 10.1.2.0/28; MR01=10.1.3.7"
    with running_server() as port:
        assert echo_from(port, calling="CT01", bind="127.0.0.1") == "rejected"
        assert echo_from(port, calling="CT01", bind="127.0.0.2") == "ok"
        # An AE title the list does not name may call from anywhere.
        assert echo_from(port, calling="TESTSCU", bind="127.0.0.3") == "ok"


def test_the_allow_list_takes_networks_and_ipv4_mapped_addresses(settings):
    settings.DICOM_SERVER_ALLOWED_ADDRESSES = "CT01=10.1.2.0/28,fd00::5"
    assert address_allowed(ae_title="CT01", address="10.1.2.14")
    assert address_allowed(ae_title="CT01 ", address="::ffff:10.1.2.3")
    assert address_allowed(ae_title="CT01", address="fd00::5")
    assert not address_allowed(ae_title="CT01", address="10.1.2.16")
    assert not address_allowed(ae_title="CT01", address="not-an-address")
    assert address_allowed(ae_title="MR01", address="192.0.2.1")


@pytest.mark.parametrize(
    "setting, value",
    [
        ("DICOM_SERVER_ALLOWED_ADDRESSES", "CT01"),
        ("DICOM_SERVER_ALLOWED_ADDRESSES", "CT01=10.1.2.300"),
        ("DICOM_SERVER_ROOM_CALLERS", "=CT01WS"),
    ],
)
def test_serve_dicom_refuses_a_malformed_list(settings, setting, value):
    setattr(settings, setting, value)
    with pytest.raises(CommandError, match=setting):
        call_command("serve_dicom", port=1, bind="127.0.0.1")


# --- TLS -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tls")
    return {"server": self_signed(folder, "server"), "modality": self_signed(folder, "modality")}


def client_context(certificates, *, with_certificate: bool = False) -> tuple[ssl.SSLContext, str]:
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(certificates["server"][0]))
    if with_certificate:
        context.load_cert_chain(*map(str, certificates["modality"]))
    return context, "127.0.0.1"


@pytest.fixture
def tls_server(callers, settings, certificates):
    settings.DICOM_SERVER_TLS_CERT, settings.DICOM_SERVER_TLS_KEY = map(str, certificates["server"])
    with running_server() as port:
        yield port


def test_over_tls_a_modality_gets_its_echo_and_plain_tcp_gets_nothing(tls_server, certificates):
    assert echo_from(tls_server, tls=client_context(certificates)) == "ok"
    assert echo_from(tls_server) == "failed"


def test_a_connection_that_never_starts_its_tls_handshake_holds_up_nobody(tls_server, certificates):
    # pynetdicom does the handshake in the thread that accepts every connection; ours does not.
    with socket.create_connection(("127.0.0.1", tls_server)):
        time.sleep(0.3)
        began = time.monotonic()
        assert echo_from(tls_server, tls=client_context(certificates)) == "ok"
        assert time.monotonic() - began < 2


def test_with_a_ca_file_a_modality_without_a_certificate_is_refused(callers, settings, certificates):
    settings.DICOM_SERVER_TLS_CERT, settings.DICOM_SERVER_TLS_KEY = map(str, certificates["server"])
    settings.DICOM_SERVER_TLS_CA = str(certificates["modality"][0])
    with running_server() as port:
        assert echo_from(port, tls=client_context(certificates)) == "failed"
        assert echo_from(port, tls=client_context(certificates, with_certificate=True)) == "ok"


def test_serve_dicom_refuses_a_missing_certificate(settings, tmp_path):
    settings.DICOM_SERVER_TLS_CERT = str(tmp_path / "missing.pem")
    with pytest.raises(CommandError, match="TLS"):
        call_command("serve_dicom", port=1, bind="127.0.0.1")


def test_plain_tcp_stays_the_default(callers, settings):
    assert settings.DICOM_SERVER_TLS_CERT == ""
    with running_server() as port:
        assert echo(port) == "ok"
