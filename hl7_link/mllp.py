"""MLLP, the framing HL7 v2 travels in over TCP: 0x0B + message + 0x1C 0x0D, one answer per frame.

Used both ways: the listener (`manage.py serve_hl7`) reads the HIS's frames with `FrameReader`, and the
outbox delivers to the HIS's receivers with `MllpConnection`. The framing is all this module knows; what a
message means is hl7_link.inbound's and hl7_link.outbound's business.

A frame above HL7_MAX_MESSAGE_BYTES is read to its end and dropped, never held in memory whole; the
listener answers it with AR when its first bytes hold an MSH segment (serve_hl7), else closes the connection.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import NoReturn

from django.conf import settings

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c\x0d"

# How much of an oversize frame is kept: enough for its MSH segment, so that the listener can still
# answer AR to the right control ID.
OVERSIZE_HEAD_BYTES = 4096

_RECV_BYTES = 65536

logger = logging.getLogger(__name__)


class MllpError(Exception):
    """The peer broke the framing: closed in the middle of a frame, or sent no answer."""


class FrameTooLarge(MllpError):
    """A frame above the size cap. It was read to its end and dropped, so the next frame reads cleanly.

    `head` holds its first bytes (the MSH segment, normally) for the refusal.
    """

    def __init__(self, size: int, limit: int, head: bytes):
        super().__init__(f"frame of {size} bytes or more, above the limit of {limit} bytes")
        self.size = size
        self.limit = limit
        self.head = head


def frame(payload: bytes) -> bytes:
    """One message wrapped for the wire."""
    return START_BLOCK + payload + END_BLOCK


class FrameReader:
    """Reads frames from a connected socket, one `read()` per frame.

    Bytes before a start block are skipped: some senders put a newline or a keep-alive between frames.
    Socket timeouts and errors pass through as they are (TimeoutError, OSError); after a timeout `read()`
    may be called again and carries on where the bytes stopped, so a listener can poll with a short timeout.
    """

    def __init__(self, sock: socket.socket, *, max_bytes: int | None = None):
        self._sock = sock
        self._buffer = bytearray()
        self.max_bytes = max_bytes if max_bytes is not None else settings.HL7_MAX_MESSAGE_BYTES
        # While an oversize frame is being read past: its size so far and its first bytes.
        self._dropping: tuple[int, bytes] | None = None

    def read(self) -> bytes | None:
        """The next frame's payload, or None when the peer closed the connection between frames.

        Raises FrameTooLarge for a frame above `max_bytes` (after reading past it), MllpError when the
        connection ends inside a frame.
        """
        if self._dropping is not None:
            self._drop_oversize()
        if not self._skip_to_start():
            return None
        # From here on the buffer starts with the start block; the search resumes one byte back, in case
        # the 0x1C of the end block came at the end of the previous read.
        searched = 1
        while True:
            end = self._buffer.find(END_BLOCK, max(searched - 1, 1))
            if end != -1:
                payload = bytes(self._buffer[1:end])
                del self._buffer[: end + len(END_BLOCK)]
                if len(payload) > self.max_bytes:
                    raise FrameTooLarge(len(payload), self.max_bytes, payload[:OVERSIZE_HEAD_BYTES])
                return payload
            searched = len(self._buffer)
            if searched - 1 > self.max_bytes:
                self._dropping = (searched - 1, bytes(self._buffer[1 : 1 + OVERSIZE_HEAD_BYTES]))
                # Keep the last byte: it may be the 0x1C of an end block split across two reads.
                del self._buffer[:-1]
                self._drop_oversize()
            if not self._fill():
                raise MllpError(f"connection closed inside a frame ({len(self._buffer) - 1} bytes read)")

    def _skip_to_start(self) -> bool:
        while True:
            start = self._buffer.find(START_BLOCK)
            if start != -1:
                del self._buffer[:start]
                return True
            self._buffer.clear()
            if not self._fill():
                return False

    def _drop_oversize(self) -> NoReturn:
        assert self._dropping is not None
        while True:
            size, head = self._dropping
            end = self._buffer.find(END_BLOCK)
            if end != -1:
                self._dropping = None
                del self._buffer[: end + len(END_BLOCK)]
                # The byte kept from the previous read was counted already.
                raise FrameTooLarge(size + end - 1, self.max_bytes, head)
            self._dropping = (size + len(self._buffer) - 1, head)
            del self._buffer[:-1]
            if not self._fill():
                self._dropping = None
                raise MllpError(f"connection closed inside an oversize frame ({size} bytes read)")

    def _fill(self) -> bool:
        data = self._sock.recv(_RECV_BYTES)
        if not data:
            return False
        self._buffer += data
        return True


class MllpConnection:
    """A client connection to an MLLP receiver (the HIS): one frame out, its one answer back.

        with MllpConnection("his.hospital.local", 2575, timeout=10) as link:
            ack = link.send(message_bytes)

    `timeout` (seconds) applies to connecting and to each wait for the answer; it raises TimeoutError.
    A refused or dropped connection raises OSError; a peer that closes without answering raises MllpError.
    """

    def __init__(self, host: str, port: int, *, timeout: float, max_bytes: int | None = None):
        self.host = host
        self.port = port
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._reader = FrameReader(self._sock, max_bytes=max_bytes)

    def send(self, payload: bytes) -> bytes:
        """Send one message and return the payload of the answer frame (the ACK)."""
        self._sock.sendall(frame(payload))
        answer = self._reader.read()
        if answer is None:
            raise MllpError(f"{self.host}:{self.port} closed the connection without answering")
        return answer

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> MllpConnection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class MllpServer:
    """A threaded MLLP listener: one thread per connection, each frame answered in order on it.

    `handle(payload, peer)` turns one frame's payload into the answer's payload (for the HIS link:
    hl7_link.inbound.receive); it must not raise. `refuse_oversize(error, peer)` answers a frame above the
    size cap, or returns None to close that connection instead. `connection_ended()` runs in each connection's
    thread as it ends (the command closes that thread's database connection there).

    `serve(stop)` accepts until `stop` is set, then lets every connection finish the message in hand (its
    answer written) and returns. Connections beyond `max_connections` are closed at once: the HIS retries,
    which is better than a thread per half-open socket.
    """

    # How often a waiting connection looks at the stop flag; reads resume after it (FrameReader).
    POLL_SECONDS = 0.5

    def __init__(
        self,
        host: str,
        port: int,
        handle: Callable[[bytes, str], bytes],
        *,
        idle_timeout: float,
        max_connections: int,
        refuse_oversize: Callable[[FrameTooLarge, str], bytes | None] = lambda error, peer: None,
        connection_ended: Callable[[], None] = lambda: None,
        max_bytes: int | None = None,
    ):
        self.handle = handle
        self.refuse_oversize = refuse_oversize
        self.connection_ended = connection_ended
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.max_bytes = max_bytes
        self._listener = socket.create_server((host, port), reuse_port=False, backlog=64)
        self.address = self._listener.getsockname()[:2]
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    @property
    def port(self) -> int:
        return self.address[1]

    def serve(self, stop: threading.Event, *, drain_seconds: float = 60) -> None:
        """Accept connections until `stop` is set; then wait up to `drain_seconds` for the messages in hand."""
        self._stop = stop
        self._listener.settimeout(self.POLL_SECONDS)
        try:
            while not stop.is_set():
                try:
                    sock, address = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    # Out of file descriptors and the like: wait, and let the connections end.
                    logger.warning("HL7 listener: accept failed: %s", exc)
                    stop.wait(self.POLL_SECONDS)
                    continue
                self._start(sock, address[0])
        finally:
            self._listener.close()
            deadline = time.monotonic() + drain_seconds
            for thread in self.threads():
                thread.join(max(0.0, deadline - time.monotonic()))

    def threads(self) -> list[threading.Thread]:
        with self._lock:
            return list(self._threads)

    def _start(self, sock: socket.socket, peer: str) -> None:
        with self._lock:
            busy = len(self._threads) >= self.max_connections
            if not busy:
                thread = threading.Thread(target=self._connection, args=(sock, peer), name=f"hl7 {peer}")
                self._threads.add(thread)
        if busy:
            logger.warning("HL7 %s: refused, %d connections open already", peer, self.max_connections)
            sock.close()
            return
        thread.start()

    def _connection(self, sock: socket.socket, peer: str) -> None:
        try:
            with sock:
                self._converse(sock, peer)
        finally:
            try:
                self.connection_ended()
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

    def _converse(self, sock: socket.socket, peer: str) -> None:
        reader = FrameReader(sock, max_bytes=self.max_bytes)
        quiet_since = time.monotonic()
        # Before each frame, not in the middle of one: a message in hand is answered even when stopping.
        while not self._stop.is_set():
            sock.settimeout(self.POLL_SECONDS)
            try:
                payload = reader.read()
            except TimeoutError:
                if time.monotonic() - quiet_since > self.idle_timeout:
                    logger.info("HL7 %s: closed after %.0f s without a message", peer, self.idle_timeout)
                    return
                continue
            except FrameTooLarge as exc:
                answer = self.refuse_oversize(exc, peer)
                if answer is None:
                    logger.warning("HL7 %s: %s; connection closed", peer, exc)
                    return
                logger.warning("HL7 %s: %s; refused", peer, exc)
            except (MllpError, OSError) as exc:
                logger.warning("HL7 %s: connection lost: %s", peer, exc)
                return
            else:
                if payload is None:
                    return
                answer = self.handle(payload, peer)
            # A slow reader gets the idle timeout for the answer, not the polling interval.
            sock.settimeout(self.idle_timeout)
            try:
                sock.sendall(frame(answer))
            except OSError as exc:
                logger.warning("HL7 %s: the answer could not be sent: %s", peer, exc)
                return
            quiet_since = time.monotonic()
