"""Issue 13.3: connections that never send an association request must not lock the scanners out.

Against a real `manage.py serve_dicom` process. The idle sockets come from other loopback addresses
(127.0.0.2 and up: all of 127/8 is loopback on Linux), as an attacker's would come from another host;
the scanner calls from 127.0.0.1. Figures are printed (-s).
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from tests.mwl_server.dicom import echo
from tests.mwl_server.process import serve_dicom

pytestmark = pytest.mark.django_db(transaction=True)


@contextmanager
def idle_sockets(port: int, count: int, addresses: list[str]) -> Iterator[list[socket.socket]]:
    """`count` TCP connections to the server, spread over `addresses`, that send nothing."""
    with ExitStack() as stack:
        sockets = []
        for n in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind((addresses[n % len(addresses)], 0))
            sock.settimeout(5)
            sock.connect(("127.0.0.1", port))
            sockets.append(sock)
        time.sleep(0.5)  # let the server accept them all
        yield sockets


def closed_by_server(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        return sock.recv(1) == b""
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True


def echo_latencies(port: int, times: int = 5) -> tuple[list[str], float]:
    results, slowest = [], 0.0
    for _ in range(times):
        began = time.monotonic()
        results.append(echo(port, timeout=10))
        slowest = max(slowest, time.monotonic() - began)
    return results, slowest


def test_fifty_idle_sockets_from_ten_addresses_leave_the_scanners_working(tmp_path):
    with serve_dicom(tmp_path) as port:
        addresses = [f"127.0.0.{n}" for n in range(2, 12)]
        with idle_sockets(port, 50, addresses):
            results, slowest = echo_latencies(port)
    print(f"\nC-ECHO with 50 idle sockets (10 addresses) open: slowest of 5 {slowest * 1000:.0f} ms")
    assert results == ["ok"] * 5
    assert slowest < 1


def test_one_address_gets_only_its_share_of_connections(tmp_path):
    with serve_dicom(tmp_path, DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS="10") as port:
        with idle_sockets(port, 50, ["127.0.0.2"]) as sockets:
            dropped = sum(closed_by_server(sock, within=0.2) for sock in sockets)
            results, slowest = echo_latencies(port)
    print(f"\nC-ECHO with 50 idle sockets (1 address) open: slowest of 5 {slowest * 1000:.0f} ms")
    assert dropped == 40
    assert results == ["ok"] * 5
    assert slowest < 1


def test_an_idle_or_slow_connection_is_closed_after_the_request_timeout(tmp_path):
    # The first 10 bytes of an A-ASSOCIATE-RQ announcing 200 more, which never come.
    partial = struct.pack(">BBIHH", 0x01, 0, 204, 1, 0)
    with serve_dicom(tmp_path, DICOM_SERVER_REQUEST_TIMEOUT="1") as port:
        with idle_sockets(port, 2, ["127.0.0.2"]) as (idle, slow):
            slow.sendall(partial)
            began = time.monotonic()
            assert closed_by_server(idle, within=5)
            assert closed_by_server(slow, within=5)
            waited = time.monotonic() - began
        assert echo(port) == "ok"
    assert waited < 3


def test_reconnecting_idle_sockets_do_not_lock_out_the_scanners(tmp_path):
    with serve_dicom(tmp_path, DICOM_SERVER_REQUEST_TIMEOUT="1") as port:
        results = []
        for _ in range(3):
            # Ten idle sockets from each of two addresses, opened again as soon as the server drops them.
            with idle_sockets(port, 20, ["127.0.0.2", "127.0.0.3"]):
                results += echo_latencies(port, times=2)[0]
                time.sleep(1.2)
    assert results == ["ok"] * 6
