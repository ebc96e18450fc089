"""serve_hl7 stopped in the middle of a stream: killed outright, or asked to stop (SIGTERM).

The HIS is `mllp_send` streaming ORM^O01 NW messages one after another on one connection, each sent when
the previous one's ACK arrived, as HIS gateways do. Killed, the listener may have committed a message
whose ACK it never wrote: the HIS sends every message it got no ACK for again (same MSH-10) to the new
listener, and the message log answers the committed one with its first ACK instead of booking it twice.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time

import pytest

from hl7_link.mllp import frame
from hl7_link.models import AckCode, Message
from scheduling.models import Order
from tests.factories import ProcedureFactory, RoomFactory
from tests.hl7.serve import (
    Listener,
    answers,
    day_at,
    mllp_send,
    mllp_send_command,
    msa,
    orm_nw,
    segment,
    write_messages,
)

pytestmark = pytest.mark.django_db(transaction=True)

STREAM = 50


@pytest.fixture
def catalog(db):
    RoomFactory(name="CT 1", ae_title="CT01")
    ProcedureFactory(code_value="CTHEADWO", code_meaning="CT Head without contrast")


def stream() -> dict[str, bytes]:
    """STREAM new orders, each for its own patient on its own day (so each one is booked)."""
    return {
        f"F{n:03d}": orm_nw(f"F{n:03d}", placer=f"PL{n:03d}", mrn=f"HN9{n:05d}", start=day_at(n + 1, 9))
        for n in range(1, STREAM + 1)
    }


def send_until(listener: Listener, path, *, after_acks: int, then) -> list[bytes]:
    """Stream the file with mllp_send; after `after_acks` ACKs have come back, call `then()`; the ACKs
    mllp_send printed until it ended (it ends with an error once the listener is gone)."""
    client = subprocess.Popen(
        mllp_send_command(listener.port, path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PYTHONUNBUFFERED": "1", "PATH": "/usr/bin:/bin"},
    )
    printed = b""
    # mllp_send prints each ACK frame and a newline; an ACK itself holds no newline.
    for line in client.stdout:
        printed += line
        if len(answers(printed)) == after_acks:
            then()
            break
    printed += client.stdout.read()
    client.wait(timeout=60)
    return [ack for ack in answers(printed) if ack]


def accession(ack: bytes) -> str:
    return segment(ack, b"ORC")[3].split(b"^")[0].decode()


def test_killed_mid_stream_every_message_is_committed_once_and_every_aa_is_saved(
    tmp_path, worklist_dir, catalog
):
    messages = stream()
    listener = Listener(tmp_path, {}).start()
    try:
        first = send_until(
            listener,
            write_messages(tmp_path / "stream.hl7", messages.values()),
            after_acks=20,
            then=listener.kill,
        )
        first_codes = dict(msa(ack)[::-1] for ack in first)
        assert 20 <= len(first) < STREAM, "the listener was to be killed mid-stream"
        assert set(first_codes.values()) == {"AA"}

        # The HIS, to the restarted listener: everything it got no ACK for, with the same MSH-10.
        listener.start()
        unanswered = [control_id for control_id in messages if control_id not in first_codes]
        second = mllp_send(
            listener.port, write_messages(tmp_path / "again.hl7", [messages[c] for c in unanswered])
        )
    finally:
        listener.stop()

    assert [msa(ack) for ack in second] == [("AA", control_id) for control_id in unanswered]
    # Exactly once: one order per placer number, one log row per control ID.
    orders = {order.placer_order_number: order for order in Order.objects.filter(placer_authority="HIS")}
    assert sorted(orders) == [f"PL{n:03d}" for n in range(1, STREAM + 1)]
    assert Order.objects.filter(placer_authority="HIS").count() == STREAM
    logged = Message.objects.filter(sender__application="HIS")
    assert sorted(logged.values_list("control_id", flat=True)) == sorted(messages)
    assert set(logged.values_list("ack_code", flat=True)) == {AckCode.AA}
    # Every AA the HIS holds names an order that was saved, with the accession it was told.
    for ack in first + second:
        _, control_id = msa(ack)
        assert orders[f"PL{control_id[1:]}"].accession_number == accession(ack)


def test_sigterm_answers_the_message_in_hand_then_exits(tmp_path, worklist_dir, catalog):
    messages = stream()
    listener = Listener(tmp_path, {}).start()
    stopped_at = {}

    def terminate():
        stopped_at["time"] = time.monotonic()
        listener.process.send_signal(signal.SIGTERM)

    try:
        acks = send_until(
            listener,
            write_messages(tmp_path / "stream.hl7", messages.values()),
            after_acks=10,
            then=terminate,
        )
        returncode = listener.process.wait(timeout=30)
        exited_after = time.monotonic() - stopped_at["time"]
    finally:
        listener.stop()

    assert returncode == 0
    assert exited_after < 10
    assert "Stopped." in listener.output()
    assert 10 <= len(acks) < STREAM
    answered = {msa(ack)[1] for ack in acks}
    assert {msa(ack)[0] for ack in acks} == {"AA"}
    # Nothing committed without its ACK, nothing ACKed without its commit: the message in hand when the
    # signal came was finished, and no message after it was started.
    committed = set(Message.objects.filter(sender__application="HIS").values_list("control_id", flat=True))
    assert committed == answered
    assert Order.objects.filter(placer_authority="HIS").count() == len(answered)


def test_a_message_committed_whose_ack_never_arrived_is_answered_again_not_booked_again(
    tmp_path, worklist_dir, catalog
):
    message = orm_nw("LOST001", placer="PLLOST", mrn="HN800001", start=day_at(2, 9))
    listener = Listener(tmp_path, {}).start()
    try:
        # The HIS's side of the connection: the message goes out, and the listener dies once it has
        # committed it, before the HIS read any ACK (lost on the way, as far as the HIS knows).
        with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
            sock.sendall(frame(message))
            deadline = time.monotonic() + 30
            while not Message.objects.filter(control_id="LOST001").exclude(ack_code="").exists():
                assert time.monotonic() < deadline, listener.output()
                time.sleep(0.01)
            listener.kill()
        [booked] = Order.objects.filter(placer_order_number="PLLOST")

        listener.start()
        [ack] = mllp_send(listener.port, write_messages(tmp_path / "again.hl7", [message]))
    finally:
        listener.stop()

    assert msa(ack) == ("AA", "LOST001")
    assert accession(ack) == booked.accession_number
    assert Order.objects.filter(placer_order_number="PLLOST").count() == 1
    assert Message.objects.get(control_id="LOST001").attempts == 1
