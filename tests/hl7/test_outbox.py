"""The outbox to the HIS, end to end: orders changed through scheduling.services, messages received by a
real MLLP listener.

The listener is python-hl7's own asyncio MLLP server (hl7.mllp.start_hl7_server), independent of our
framing code, run in a thread: it records the bytes of every message it gets and answers with an ACK
built by python-hl7 (Message.create_ack), AA unless the test tells it otherwise for a control ID. The
HIS going down is the listener stopped; coming back, started again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from datetime import timedelta

import hl7
import pytest
from django.core.management import call_command
from django.db import transaction
from django.utils import timezone
from hl7.mllp import start_hl7_server

from hl7_link import outbox
from hl7_link.models import AppointmentStyle, Charset, Hl7Version, OutboundMessage, OutboundState, Receiver
from hl7_link.outbox import outbox_deliver, outbox_events_consumer, outbox_fill
from hl7_link.services import receiver_save
from scheduling import services
from scheduling.models import OrderEvent
from tests.factories import PatientFactory, ThaiPatientFactory
from tests.hl7.conftest import THAI_FAMILY, THAI_GIVEN, tomorrow

pytestmark = pytest.mark.django_db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HisListener:
    """A HIS's HL7 receiver on 127.0.0.1: records each message and answers it (python-hl7 throughout).

    `answers[control_id] = "AE"` answers that message with AE (and `reasons[control_id]` as MSA-3);
    a control ID in `silent` is read and the connection closed without an answer, once;
    `one_per_connection` closes each connection after its first answer, as some HIS gateways do.
    """

    def __init__(self, *, port: int | None = None, codec: str = "utf-8") -> None:
        self.port = port or free_port()
        self.codec = codec
        self.received: list[bytes] = []
        self.answers: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.silent: set[str] = set()
        self.one_per_connection = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._writers: set = set()

    # What the HIS got, read as it would read it.
    @property
    def messages(self) -> list[hl7.Message]:
        return [hl7.parse(raw.decode(self.codec)) for raw in self.received]

    @property
    def types(self) -> list[str]:
        return [str(m.segment("MSH")[9]) for m in self.messages]

    @property
    def control_ids(self) -> list[str]:
        return [str(m.segment("MSH")[10]) for m in self.messages]

    async def _client(self, reader, writer) -> None:
        self._writers.add(writer)
        try:
            while True:
                raw = await reader.readblock()
                self.received.append(raw)
                message = hl7.parse(raw.decode(self.codec))
                control_id = str(message.segment("MSH")[10])
                if control_id in self.silent:
                    self.silent.discard(control_id)
                    return
                ack = str(
                    message.create_ack(self.answers.get(control_id, "AA"), application="HIS", facility="HOSP")
                )
                if control_id in self.reasons:
                    # MSA-3, the text a HIS gives with its refusal.
                    ack = "\r".join(
                        f"{segment}|{self.reasons[control_id]}" if segment.startswith("MSA|") else segment
                        for segment in ack.split("\r")
                    )
                writer.writeblock(ack.encode(self.codec))
                await writer.drain()
                if self.one_per_connection:
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()

    def start(self) -> HisListener:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            server = loop.run_until_complete(start_hl7_server(self._client, "127.0.0.1", self.port))
            ready.set()
            try:
                loop.run_forever()
            finally:
                server.close()
                for writer in list(self._writers):
                    writer.close()
                loop.run_until_complete(server.wait_closed())
                loop.run_until_complete(asyncio.sleep(0))
                loop.close()

        self._thread = threading.Thread(target=run, name="his-listener", daemon=True)
        self._thread.start()
        assert ready.wait(5), "the HIS listener did not start"
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
            self._loop = self._thread = None


@pytest.fixture
def his() -> Iterator[HisListener]:
    listener = HisListener().start()
    try:
        yield listener
    finally:
        listener.stop()


def make_receiver(listener: HisListener, **fields) -> Receiver:
    values = {
        "name": "HIS",
        "host": "127.0.0.1",
        "port": listener.port,
        "receiving_application": "HOSXP",
        "receiving_facility": "HOSPITAL",
        "charset": Charset.UTF8,
        "version": Hl7Version.V231,
        "appointment_style": AppointmentStyle.SIU,
    }
    values.update(fields)
    return receiver_save(receiver=Receiver(**values))


@pytest.fixture
def receiver(his) -> Receiver:
    return make_receiver(his)


def field(message: hl7.Message, segment: str, number: int, *path: int) -> str:
    try:
        if not path:
            return message.unescape(str(message.segment(segment)[number]))
        return message.unescape(str(message.extract_field(segment, 1, number, *path)))
    except (KeyError, IndexError):
        return ""


def rows(receiver: Receiver) -> list[OutboundMessage]:
    return list(OutboundMessage.objects.filter(receiver=receiver).order_by("id"))


def allow_now(receiver: Receiver) -> None:
    """The backoff's wait is over (rather than sleep through it)."""
    Receiver.objects.filter(pk=receiver.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))


@pytest.fixture
def book(user, room, procedure, after_commit):
    """book(hour, patient=None) -> an order booked through the services, its commit's consumers run."""

    def make(hour: int, patient=None, **kwargs):
        with after_commit():
            return services.order_book(
                patient=patient or PatientFactory(),
                procedure=procedure,
                room=room,
                start=tomorrow(hour),
                user=user,
                **kwargs,
            )

    return make


def test_bookings_and_their_progress_reach_the_his_in_order(his, receiver, book, user, after_commit):
    first = book(9, placer_order_number="PL1", placer_authority="HOSXP")
    second = book(10)
    with after_commit():
        first = services.order_reschedule(order=first, start=tomorrow(11), user=user)
    for step in (services.order_arrive, services.order_start, services.order_complete):
        with after_commit():
            first = step(order=first, user=user)
    with after_commit():
        services.order_cancel(order=second, reason="Patient declined", user=user)

    # The consumer filled the outbox after each commit (no broker here): the HIS has nothing yet.
    assert len(rows(receiver)) == 7 and his.received == []
    assert outbox_deliver(receiver) == 7

    assert his.types == ["SIU^S12", "SIU^S12", "SIU^S13", "ORM^O01", "ORM^O01", "ORM^O01", "SIU^S15"]
    assert his.control_ids == [row.control_id for row in rows(receiver)]
    s12, _s12, s13, arrived, started, completed, s15 = his.messages
    assert field(s12, "SCH", 1, 1, 1) == "PL1"
    assert field(s12, "SCH", 2, 1, 1) == first.accession_number
    assert field(s13, "SCH", 11, 1, 4) == timezone.localtime(tomorrow(11)).strftime("%Y%m%d%H%M%S%z")
    assert field(s13, "AIL", 3, 1, 1) == first.room.ae_title
    assert [field(m, "ORC", 5) for m in (arrived, started, completed)] == ["IP", "IP", "CM"]
    assert field(s15, "SCH", 2, 1, 1) == second.accession_number and field(s15, "SCH", 25) == "Cancelled"
    assert {(row.state, row.ack_code, row.attempts) for row in rows(receiver)} == {
        (OutboundState.SENT, "AA", 1)
    }
    assert all(row.sent_at for row in rows(receiver))
    # Nothing is sent twice: a second run finds nothing pending.
    assert outbox_deliver(receiver) == 0 and len(his.received) == 7


def test_a_change_rolled_back_sends_nothing(his, receiver, book, user, procedure, room, after_commit):
    with after_commit(), contextlib.suppress(RuntimeError), transaction.atomic():
        services.order_book(
            patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow(9), user=user
        )
        raise RuntimeError("the clerk's request failed after the booking")
    assert outbox_fill(receiver) == 0
    assert outbox_deliver(receiver) == 0

    book(10)
    outbox_deliver(receiver)
    assert his.types == ["SIU^S12"]


def test_the_his_down_for_a_while_loses_nothing_and_gets_everything_in_order(his, receiver, book):
    his.stop()
    orders = [book(hour) for hour in (9, 10, 11)]

    started = timezone.now()
    assert outbox_deliver(receiver) == 0
    receiver.refresh_from_db()
    assert receiver.failures == 1 and "Cannot connect to 127.0.0.1" in receiver.last_error
    assert started + timedelta(seconds=1) <= receiver.next_attempt_at <= timezone.now() + timedelta(seconds=1)

    # Within the backoff nothing is tried (no second failure counted).
    assert outbox_deliver(receiver) == 0
    receiver.refresh_from_db()
    assert receiver.failures == 1

    allow_now(receiver)
    before = timezone.now()
    outbox_deliver(receiver)
    receiver.refresh_from_db()
    assert receiver.failures == 2 and receiver.next_attempt_at >= before + timedelta(seconds=2)
    assert {row.state for row in rows(receiver)} == {OutboundState.PENDING}

    # Back up, with one more booking queued meanwhile: the queue drains in order.
    later = book(12)
    his.start()
    allow_now(receiver)
    assert outbox_deliver(receiver) == 4
    assert [field(m, "SCH", 2, 1, 1) for m in his.messages] == [o.accession_number for o in [*orders, later]]
    receiver.refresh_from_db()
    assert (receiver.failures, receiver.last_error, receiver.next_attempt_at) == (0, "", None)


def test_the_backoff_doubles_up_to_the_limit(settings, receiver, his, book):
    settings.HL7_RETRY_MAX_SECONDS = 5
    his.stop()
    book(9)
    waits = []
    for _attempt in range(5):
        allow_now(receiver)
        before = timezone.now()
        outbox_deliver(receiver)
        receiver.refresh_from_db()
        waits.append(round((receiver.next_attempt_at - before).total_seconds()))
    assert waits == [1, 2, 4, 5, 5]
    assert receiver.failures == 5


def test_a_message_left_without_answer_is_sent_again_with_the_same_control_id(his, receiver, book):
    book(9)
    book(10)
    first, second = rows(receiver)
    # The HIS takes the first message and drops the connection before its ACK (a crash mid-stream).
    his.silent.add(first.control_id)

    assert outbox_deliver(receiver) == 0
    first.refresh_from_db()
    assert first.state == OutboundState.PENDING and first.attempts == 1
    receiver.refresh_from_db()
    assert receiver.failures == 1 and first.control_id in receiver.last_error

    allow_now(receiver)
    assert outbox_deliver(receiver) == 2
    # At least once, in order, and the repeat carries the control ID the HIS saw the first time.
    assert his.control_ids == [first.control_id, first.control_id, second.control_id]
    assert his.received[0] == his.received[1]
    first.refresh_from_db()
    assert first.state == OutboundState.SENT and first.attempts == 2


def test_a_his_that_closes_the_connection_after_each_answer_gets_every_message_in_one_run(
    his, receiver, book
):
    his.one_per_connection = True
    orders = [book(hour) for hour in (9, 10, 11)]

    assert outbox_deliver(receiver) == 3

    assert [field(m, "SCH", 2, 1, 1) for m in his.messages] == [o.accession_number for o in orders]
    receiver.refresh_from_db()
    assert receiver.failures == 0


def test_a_refused_message_is_kept_with_the_reason_and_the_next_still_goes(his, receiver, book):
    book(9)
    book(10)
    refused, accepted = rows(receiver)
    his.answers[refused.control_id] = "AE"
    his.reasons[refused.control_id] = "Unknown location CT01"

    assert outbox_deliver(receiver) == 2

    refused.refresh_from_db()
    accepted.refresh_from_db()
    assert (refused.state, refused.ack_code) == (OutboundState.REJECTED, "AE")
    assert "Unknown location CT01" in refused.last_error
    assert (accepted.state, accepted.ack_code) == (OutboundState.SENT, "AA")
    assert his.control_ids == [refused.control_id, accepted.control_id]
    receiver.refresh_from_db()
    assert receiver.failures == 0


def test_a_tis620_receiver_gets_the_thai_name_in_tis620_bytes(book):
    listener = HisListener(codec="tis_620").start()
    try:
        receiver = make_receiver(listener, charset=Charset.TIS620)
        book(9, patient=ThaiPatientFactory())
        assert outbox_deliver(receiver) == 1
    finally:
        listener.stop()

    raw = listener.received[0]
    assert THAI_FAMILY.encode("tis_620") in raw and THAI_GIVEN.encode("tis_620") in raw
    assert THAI_FAMILY.encode("utf-8") not in raw
    message = listener.messages[0]
    assert field(message, "PID", 5, 1, 1) == THAI_FAMILY
    assert field(message, "MSH", 18) == ""


def test_a_thai_name_to_an_ascii_receiver_is_refused_with_a_reason_and_the_rest_goes(his, book):
    receiver = make_receiver(his, charset=Charset.ASCII)
    book(9, patient=ThaiPatientFactory())
    book(10)

    assert outbox_deliver(receiver) == 1

    thai, latin = rows(receiver)
    assert thai.state == OutboundState.REJECTED and THAI_FAMILY[0] in thai.last_error
    assert "ASCII" in thai.last_error
    assert latin.state == OutboundState.SENT
    assert his.control_ids == [latin.control_id]


def test_events_of_kinds_not_wanted_are_passed_over_and_the_cursor_moves_past_them(
    his, book, user, after_commit
):
    receiver = make_receiver(his, kinds=["booked"])
    order = book(9)
    with after_commit():
        services.order_arrive(order=order, user=user)

    outbox_fill(receiver)
    receiver.refresh_from_db()
    assert receiver.last_event_id == OrderEvent.objects.latest("id").id
    assert [row.message_type for row in rows(receiver)] == ["SIU^S12"]


def test_a_new_receiver_starts_at_the_end_of_the_stream(his, book):
    book(9)
    receiver = make_receiver(his)
    assert outbox_fill(receiver) == 0
    book(10)
    assert outbox_fill(receiver) == 0  # the consumer filled it already after the commit
    assert len(rows(receiver)) == 1


def test_the_order_style_on_251_sends_omg(his, book, user, after_commit):
    receiver = make_receiver(his, version=Hl7Version.V251, appointment_style=AppointmentStyle.ORDER)
    order = book(9)
    with after_commit():
        services.order_cancel(order=order, reason="Duplicate", user=user)

    assert outbox_deliver(receiver) == 2

    assert his.types == ["OMG^O19^OMG_O19", "OMG^O19^OMG_O19"]
    assert [field(m, "ORC", 5) for m in his.messages] == ["SC", "CA"]
    assert field(his.messages[0], "TQ1", 7) == timezone.localtime(tomorrow(9)).strftime("%Y%m%d%H%M%S%z")


def test_a_disabled_receiver_is_neither_filled_nor_sent(his, book):
    receiver = make_receiver(his, enabled=False)
    book(9)
    assert outbox_fill(receiver) == 0 and outbox_deliver(receiver) == 0
    assert his.received == []


def test_only_one_delivery_at_a_time_per_receiver(his, receiver, book):
    book(9)
    with outbox._delivery_lock(receiver.pk) as mine:
        assert mine
        assert outbox_deliver(receiver) == 0
    assert his.received == []
    assert outbox_deliver(receiver) == 1


def test_the_consumer_never_raises_when_the_broker_is_down(receiver, book, caplog):
    from ris.celery import app

    book(9)
    # A broker that does not answer (nothing listens on the port), as Celery sees it with a worker.
    old = app.conf.broker_url, app.conf.task_always_eager
    app.conf.broker_url, app.conf.task_always_eager = f"redis://127.0.0.1:{free_port()}/0", False
    app._pool = None
    app.amqp._producer_pool = None
    try:
        with caplog.at_level(logging.WARNING, logger="hl7_link.outbox"):
            outbox_events_consumer(list(OrderEvent.objects.all()))
    finally:
        app.conf.broker_url, app.conf.task_always_eager = old
        app._pool = None
        app.amqp._producer_pool = None
    assert "broker unavailable" in caplog.text


def test_the_command_sends_the_outbox(his, receiver, book, capsys):
    book(9)
    call_command("hl7_outbox")
    assert his.types == ["SIU^S12"]
    assert "1 answered, 0 pending" in capsys.readouterr().out
