"""manage.py serve_hl7: the MLLP listener for the hospital information system's ADT and orders."""

import logging
import os
import signal
import threading
import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections, connections

from hl7_link import ack
from hl7_link.mllp import FrameTooLarge, MllpServer
from hl7_link.models import AckCode
from hl7_link.parsing import ParseProblem, read_header

logger = logging.getLogger("hl7_link.listener")


class Command(BaseCommand):
    help = (
        "Take HL7 v2 messages (ADT, ORM^O01, OMG^O19) from the HIS over MLLP on HL7_PORT and answer each "
        "with its ACK after it is committed. Runs until interrupted; SIGTERM lets the message in hand finish."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="Default: HL7_PORT.")
        parser.add_argument("--bind", default=None, help="Address to listen on. Default: HL7_BIND.")
        parser.add_argument(
            "--max-connections",
            type=int,
            default=32,
            help="Connections served at once; more are closed at once (the HIS retries). Default: 32.",
        )
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="Stop when the process that started this one ends (`make run` starts it beside runserver).",
        )

    def handle(self, *args, port=None, bind=None, max_connections=32, **options):
        # Imported here, not at the top: the management command list must load without the pipeline.
        from hl7_link.inbound import receive

        port = port if port is not None else settings.HL7_PORT
        bind = bind if bind is not None else settings.HL7_BIND
        if not 1 <= port <= 65535:
            raise CommandError(f"The port must be between 1 and 65535, not {port}.")
        if max_connections < 1:
            raise CommandError("--max-connections must be at least 1.")

        def handle_message(raw: bytes, peer: str) -> bytes:
            # Each message is a request of its own for the database connection: a connection the
            # database dropped (a restart) is replaced instead of failing every later message.
            close_old_connections()
            started = time.perf_counter()
            try:
                ack = receive(raw, peer=peer)
            finally:
                close_old_connections()
            message_type, control_id = msh_summary(raw)
            logger.info(
                "HL7 %s %s %s -> %s in %.0f ms",
                peer,
                message_type or "?",
                control_id or "?",
                ack_code(ack) or "?",
                (time.perf_counter() - started) * 1000,
            )
            return ack

        try:
            server = MllpServer(
                bind,
                port,
                handle_message,
                idle_timeout=settings.HL7_IDLE_TIMEOUT,
                max_connections=max_connections,
                refuse_oversize=refuse_oversize,
                # The thread's own connection: Django opens one per thread and never closes it itself.
                connection_ended=connections.close_all,
            )
        except OSError as exc:
            raise CommandError(f"Cannot listen on {bind}:{port}: {exc}") from exc

        stop = threading.Event()
        # SIGTERM (docker stop, systemd) and Ctrl-C: stop accepting, answer the messages in hand, exit.
        signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
        if options.get("stop_with_parent"):
            # A shell's background job ignores Ctrl-C; watching the parent ends it with `make run`.
            parent = os.getppid()
            threading.Thread(target=self._watch_parent, args=(parent, stop), daemon=True).start()
        self.stdout.write(
            f"HL7 listener (MLLP) on {bind}:{server.port}, at most {max_connections} connections; Ctrl-C to stop."
        )
        self.stdout.flush()
        server.serve(stop)
        self.stdout.write("Stopped.")

    @staticmethod
    def _watch_parent(parent: int, stop: threading.Event) -> None:
        while not stop.wait(1):
            if os.getppid() != parent:
                stop.set()


def msh_summary(raw: bytes) -> tuple[str, str]:
    """MSH-9 (message type) and MSH-10 (control ID) of a message for the log line, "" when unreadable."""
    try:
        header = read_header(raw)
    except ParseProblem:
        return "", ""
    return header.message_type, header.control_id


def ack_code(ack: bytes) -> str:
    """MSA-1 of an ACK (AA, AE, AR), "" without an MSA segment."""
    for segment in ack.replace(b"\n", b"\r").split(b"\r"):
        if segment.startswith(b"MSA") and len(segment) > 4:
            return segment[4:].split(segment[3:4], 1)[0].decode("latin-1")
    return ""


def refuse_oversize(error: FrameTooLarge, peer: str) -> bytes | None:
    """The AR for a frame above HL7_MAX_MESSAGE_BYTES, answered from its MSH; None (close) without one.

    The message never reaches hl7_link.inbound, so it is not in the message log: the warning logged here
    and the sender's own log are the record of it. The AR is ASCII: it holds only our names and the
    sender's MSH fields.
    """
    try:
        header = read_header(error.head)
    except ParseProblem:
        return None
    if not header.control_id:
        return None
    text = f"Message of {error.size} bytes, above the limit of {error.limit} bytes"
    logger.warning("HL7 %s %s %s -> AR: %s", peer, header.message_type, header.control_id, text)
    problem = ack.Problem(text, code=207, segment="MSH", ack_code=AckCode.AR)
    return ack.encode(ack.build(header, ack.Answer(AckCode.AR, text, [problem])), "ascii")
