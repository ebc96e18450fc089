"""hl7_link.mllp: the framing, the client connection and the threaded listener, over real sockets.

The listener here runs in a thread of the test with a stand-in for the inbound pipeline: these tests are
about bytes on the wire. tests/hl7/test_listener.py drives `manage.py serve_hl7` with mllp_send.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from hl7_link.management.commands.serve_hl7 import ack_code, msh_summary, refuse_oversize
from hl7_link.mllp import (
    END_BLOCK,
    START_BLOCK,
    FrameReader,
    FrameTooLarge,
    MllpConnection,
    MllpError,
    MllpServer,
    frame,
)

ORM = b"MSH|^~\\&|HIS|HOSP|RIS|RAD|20260105083000||ORM^O01|MSG0001|P|2.3.1\rPID|||HN1\r"


def echo_ack(payload: bytes, peer: str) -> bytes:
    """A stand-in for hl7_link.inbound.receive: AA for the control ID it was sent."""
    _, control_id = msh_summary(payload)
    return f"MSH|^~\\&|RIS|RAD|HIS|HOSP|20260105083001||ACK|A{control_id}|P|2.3.1\rMSA|AA|{control_id}\r".encode()


def message(control_id: str) -> bytes:
    return ORM.replace(b"MSG0001", control_id.encode())


@contextmanager
def listening(handle: Callable[[bytes, str], bytes] = echo_ack, **options) -> Iterator[MllpServer]:
    options = {"idle_timeout": 30, "max_connections": 8, "max_bytes": 10_000, **options}
    server = MllpServer("127.0.0.1", 0, handle, **options)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,), kwargs={"drain_seconds": 10})
    thread.start()
    try:
        yield server
    finally:
        stop.set()
        thread.join(20)
        assert not thread.is_alive(), "the listener did not stop"


def test_it_frames_a_payload():
    assert frame(b"MSH|x") == b"\x0bMSH|x\x1c\x0d"


def test_it_reads_frames_split_anywhere_and_skips_bytes_between_them():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader = FrameReader(ours, max_bytes=1000)
        stream = b"\r\n" + frame(b"one") + b"noise" + frame(b"two\rsegment") + frame(b"three")
        # One byte at a time: an end block split over two reads is still found.
        for byte in stream:
            theirs.sendall(bytes([byte]))
        assert reader.read() == b"one"
        assert reader.read() == b"two\rsegment"
        assert reader.read() == b"three"
        theirs.close()
        assert reader.read() is None


def test_a_connection_closed_inside_a_frame_is_an_error():
    ours, theirs = socket.socketpair()
    with ours:
        theirs.sendall(START_BLOCK + b"MSH|half")
        theirs.close()
        with pytest.raises(MllpError, match="inside a frame"):
            FrameReader(ours, max_bytes=1000).read()


def test_an_oversize_frame_is_read_past_and_the_next_one_read_cleanly():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        reader = FrameReader(ours, max_bytes=100)
        big = ORM + b"x" * 5000
        sender = threading.Thread(target=theirs.sendall, args=(frame(big) + frame(b"next"),))
        sender.start()
        with pytest.raises(FrameTooLarge) as caught:
            reader.read()
        assert caught.value.size == len(big)
        assert caught.value.head.startswith(b"MSH|^~\\&|HIS")
        assert reader.read() == b"next"
        sender.join()


def test_a_read_that_timed_out_resumes_where_the_bytes_stopped():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.settimeout(0.1)
        reader = FrameReader(ours, max_bytes=1000)
        theirs.sendall(START_BLOCK + b"MSH|first half ")
        with pytest.raises(TimeoutError):
            reader.read()
        theirs.sendall(b"second half" + END_BLOCK)
        assert reader.read() == b"MSH|first half second half"


def test_the_client_sends_one_frame_and_returns_the_answer_payload():
    with listening() as server, MllpConnection("127.0.0.1", server.port, timeout=5) as link:
        assert link.send(message("C1")).endswith(b"MSA|AA|C1\r")
        assert link.send(message("C2")).endswith(b"MSA|AA|C2\r")


def test_the_client_raises_when_the_peer_closes_without_answering():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]

        def hang_up():
            sock, _ = listener.accept()
            with sock:
                sock.recv(1000)

        thread = threading.Thread(target=hang_up)
        thread.start()
        with MllpConnection("127.0.0.1", port, timeout=5) as link, pytest.raises(MllpError):
            link.send(ORM)
        thread.join()


def test_the_client_times_out_waiting_for_an_answer():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        with MllpConnection("127.0.0.1", port, timeout=0.3) as link, pytest.raises(TimeoutError):
            link.send(ORM)


def test_answers_come_back_in_order_on_each_connection():
    def slow_first(payload: bytes, peer: str) -> bytes:
        if b"|S1|" in payload:
            time.sleep(0.3)
        return echo_ack(payload, peer)

    with listening(slow_first) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"".join(frame(message(f"S{n}")) for n in range(1, 6)))
        reader = FrameReader(sock, max_bytes=10_000)
        sock.settimeout(5)
        assert [ack_code(reader.read()) for _ in range(5)] == ["AA"] * 5
    # The order itself: each ACK names its message.
    with listening(slow_first) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"".join(frame(message(f"S{n}")) for n in range(1, 6)))
        reader = FrameReader(sock, max_bytes=10_000)
        sock.settimeout(5)
        assert [reader.read().split(b"|")[-1] for _ in range(5)] == [f"S{n}\r".encode() for n in range(1, 6)]


def test_the_peer_address_reaches_the_handler():
    peers = []

    def record(payload: bytes, peer: str) -> bytes:
        peers.append(peer)
        return echo_ack(payload, peer)

    with listening(record) as server, MllpConnection("127.0.0.1", server.port, timeout=5) as link:
        link.send(ORM)
    assert peers == ["127.0.0.1"]


def test_an_oversize_message_is_refused_with_ar_and_the_connection_goes_on():
    with listening(refuse_oversize=refuse_oversize, max_bytes=500) as server:
        with MllpConnection("127.0.0.1", server.port, timeout=5, max_bytes=10_000) as link:
            refusal = link.send(ORM + b"OBX|" + b"x" * 2000 + b"\r")
            assert refusal.startswith(b"MSH|^~\\&|RIS|")
            assert b"|HIS|HOSP|" in refusal
            assert b"\rMSA|AR|MSG0001|" in refusal
            assert ack_code(refusal) == "AR"
            assert ack_code(link.send(message("AFTER"))) == "AA"


def test_an_oversize_frame_without_msh_closes_the_connection():
    with listening(refuse_oversize=refuse_oversize, max_bytes=500) as server:
        with MllpConnection("127.0.0.1", server.port, timeout=5) as link, pytest.raises(MllpError):
            link.send(b"garbage" * 200)


def test_a_silent_connection_is_closed_after_the_idle_timeout():
    with listening(idle_timeout=0.6) as server, socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        started = time.monotonic()
        assert sock.recv(10) == b""
        assert 0.5 < time.monotonic() - started < 3


def test_connections_beyond_the_limit_are_closed_at_once():
    with listening(max_connections=2) as server:
        held = [MllpConnection("127.0.0.1", server.port, timeout=5) for _ in range(2)]
        try:
            for link in held:
                assert ack_code(link.send(ORM)) == "AA"
            with (
                MllpConnection("127.0.0.1", server.port, timeout=5) as third,
                pytest.raises((MllpError, OSError)),
            ):
                third.send(ORM)
        finally:
            for link in held:
                link.close()
        # A closed connection frees its place.
        deadline = time.monotonic() + 5
        while server.threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        with MllpConnection("127.0.0.1", server.port, timeout=5) as again:
            assert ack_code(again.send(ORM)) == "AA"


def test_stopping_finishes_the_message_in_hand_and_answers_it():
    started, finished = threading.Event(), threading.Event()

    def slow(payload: bytes, peer: str) -> bytes:
        started.set()
        time.sleep(1)
        finished.set()
        return echo_ack(payload, peer)

    server = MllpServer("127.0.0.1", 0, slow, idle_timeout=30, max_connections=4, max_bytes=10_000)
    stop = threading.Event()
    thread = threading.Thread(target=server.serve, args=(stop,))
    thread.start()
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.settimeout(5)
        sock.sendall(frame(message("INHAND")))
        assert started.wait(5)
        stop.set()
        reader = FrameReader(sock, max_bytes=10_000)
        assert reader.read().endswith(b"MSA|AA|INHAND\r")
        # Then the connection ends and no new connection is taken.
        assert reader.read() is None
    thread.join(10)
    assert not thread.is_alive() and finished.is_set()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
