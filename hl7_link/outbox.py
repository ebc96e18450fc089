"""The outbox to the HIS: every committed order change a receiver wants, sent in order, at least once.

Two steps, each safe to run at any time and from several processes:

- outbox_fill(receiver) takes the order events after the receiver's cursor (Receiver.last_event_id;
  scheduling.events.events_after, whose ids come in commit order) and queues one OutboundMessage per
  event of a kind the receiver wants, built then (hl7_link.outbound), in one transaction with the cursor's
  move. An event exists only if its change committed, so nothing is sent for a change that rolled back;
  the cursor moves only with the rows, so nothing committed is skipped, whether the fill runs a moment
  after the commit or an hour later.
- outbox_deliver(receiver) sends the receiver's pending messages in id order over one MLLP connection,
  one at a time, each waiting for its ACK: AA/CA -> sent; AE/AR -> refused, kept with the receiver's
  text for the Interface page, and the next message goes; no answer (refused connection, timeout,
  connection cut, an answer that is no ACK of it) -> delivery stops, the receiver's failures and
  last error are recorded and the next attempt waits 1 s, 2 s, 4 s ... up to HL7_RETRY_MAX_SECONDS. The
  message that got no answer is sent again later with the same MSH-10 (at-least-once: the receiver may
  have applied it before the connection broke, and recognises it by that control ID). A connection the
  receiver closed after an answer is opened again once before that counts (gateways that take one
  message per connection). One delivery at a time per receiver: on PostgreSQL a session advisory lock
  keyed by the receiver (a second worker skips it rather than wait, and the lock goes with a dead
  connection); elsewhere (SQLite, one `make run` process) a lock in the process, and a second process
  sending too could only repeat a message under its same MSH-10. No database transaction stays open
  while a message travels.

Who runs them: after each commit that wrote events, outbox_events_consumer. With a broker it queues
hl7_link.tasks.outbox_run, which fills and delivers for every enabled receiver in the worker; beat runs
the same task every 30 s, which catches up on a task lost with a broker that was down and retries a
receiver whose backoff has run out. Without a broker (CELERY_TASK_ALWAYS_EAGER: `make run` and the
default tests) a task would run inside the clerk's request and make the booking wait on the HIS's network
(up to HL7_SEND_TIMEOUT, and longer while it is down): there the consumer only fills, which is a few
database writes, and delivery is left to `manage.py hl7_outbox --every N`, the loop `make run` starts.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _
from kombu.exceptions import OperationalError as BrokerError

from scheduling.events import events_after
from scheduling.models import OrderEvent

from . import outbound
from .mllp import MllpConnection, MllpError
from .models import OUTBOUND_KINDS, OutboundMessage, OutboundState, Receiver
from .parsing import DEFAULT_CODECS

logger = logging.getLogger(__name__)

# Events taken, and messages sent, per round: bounded transactions and queries during an hour's backlog.
BATCH = 500

# What an ACK's MSA-1 means for the message: taken (AA, CA in enhanced mode) or refused for good.
ACCEPTED = ("AA", "CA")
# The longest receiver's text kept on a refused message.
ACK_TEXT_MAX = 2000

# pg_try_advisory_lock(class, receiver id): the class is a constant no other lock of the project uses.
_DELIVERY_LOCK_CLASS = 0x484C37  # "HL7"
_local_locks: dict[int, threading.Lock] = {}
_local_locks_guard = threading.Lock()


class Unencodable(Exception):
    """The message holds a letter the receiver's character set cannot carry (a Thai name to ASCII)."""


def codec(receiver: Receiver) -> str:
    """The Python codec of the receiver's character set (TIS-620 -> tis_620)."""
    return DEFAULT_CODECS.get(receiver.charset, "ascii")


def encoded(receiver: Receiver, text: str) -> bytes:
    """`text` in the receiver's character set; raises Unencodable naming the letters it cannot hold."""
    name = codec(receiver)
    try:
        return text.encode(name)
    except UnicodeEncodeError:
        letters = []
        for char in text:
            try:
                char.encode(name)
            except UnicodeEncodeError:
                if char not in letters:
                    letters.append(char)
        raise Unencodable(
            _(
                "The receiver's character set %(charset)s cannot hold %(letters)s: choose UTF-8 (or TIS-620 "
                "for Thai) in the receiver's settings."
            )
            % {"charset": receiver.get_charset_display(), "letters": " ".join(letters[:10])}
        ) from None


# --- fill -----------------------------------------------------------------------------------------


def _fill_batch(receiver_id: int) -> tuple[int, int]:
    """Take up to BATCH events after the cursor: (events taken, messages queued)."""
    with transaction.atomic():
        # The lock makes two fills of one receiver take turns: the second reads the moved cursor.
        receiver = Receiver.objects.select_for_update().filter(pk=receiver_id, enabled=True).first()
        if receiver is None:
            return 0, 0
        events: list[OrderEvent] = list(
            events_after(receiver.last_event_id).select_related(
                "order__patient", "order__procedure", "order__room"
            )[:BATCH]
        )
        if not events:
            return 0, 0
        wanted = set(receiver.kinds) & {str(kind) for kind in OUTBOUND_KINDS}
        rows = []
        for event in events:
            if event.kind not in wanted:
                continue
            message_type, text = outbound.build(receiver, event, event.order)
            row = OutboundMessage(
                receiver=receiver,
                event=event,
                order_id=event.order_id,
                control_id=outbound.control_id(receiver, event),
                message_type=message_type,
                text=text,
            )
            try:
                encoded(receiver, text)
            except Unencodable as exc:
                # Refused now, not at every delivery: it can never be sent in this character set.
                row.state = OutboundState.REJECTED
                row.last_error = str(exc)
            rows.append(row)
        # A row already there (a cursor written back by a stale save of the receiver) is the same
        # message with the same control ID: keep the first.
        OutboundMessage.objects.bulk_create(rows, ignore_conflicts=True)
        Receiver.objects.filter(pk=receiver.pk).update(last_event_id=events[-1].id)
    return len(events), len(rows)


def outbox_fill(receiver: Receiver) -> int:
    """Queue the messages of every event after the receiver's cursor; the number queued.

    Each batch of events is taken in one transaction with the cursor's move (past every event read,
    also those of kinds the receiver does not want), so a crash in between leaves neither.
    """
    queued = 0
    while True:
        taken, batch = _fill_batch(receiver.pk)
        queued += batch
        if taken < BATCH:
            return queued


# --- deliver --------------------------------------------------------------------------------------


@contextmanager
def _delivery_lock(receiver_id: int) -> Iterator[bool]:
    """True when this process may deliver to the receiver now; False when another delivery has it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [_DELIVERY_LOCK_CLASS, receiver_id])
            held = cursor.fetchone()[0]
        try:
            yield held
        finally:
            if held:
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            "SELECT pg_advisory_unlock(%s, %s)", [_DELIVERY_LOCK_CLASS, receiver_id]
                        )
                except DatabaseError:
                    # The connection died (a database restart): the lock went with it.
                    logger.info(
                        "HL7 outbox: delivery lock of receiver %s released with its connection", receiver_id
                    )
        return
    with _local_locks_guard:
        lock = _local_locks.setdefault(receiver_id, threading.Lock())
    held = lock.acquire(blocking=False)
    try:
        yield held
    finally:
        if held:
            lock.release()


@dataclass(frozen=True)
class Ack:
    code: str
    control_id: str
    text: str


def read_ack(payload: bytes, codec_name: str) -> Ack | None:
    """MSA-1, MSA-2 and the receiver's text (MSA-3 and its ERR segments) of an answer; None if no ACK."""
    text = payload.decode(codec_name, errors="replace")
    segments = [s for s in text.replace("\n", "\r").split("\r") if s.strip()]
    if not segments or not segments[0].startswith("MSH") or len(segments[0]) < 4:
        return None
    separator = segments[0][3]
    msa = next((s.split(separator) for s in segments if s.startswith(f"MSA{separator}")), None)
    if msa is None or len(msa) < 2:
        return None
    words = [msa[3].strip()] if len(msa) > 3 and msa[3].strip() else []
    words += [s for s in segments if s.startswith(f"ERR{separator}")]
    return Ack(
        code=msa[1].strip().upper(), control_id=msa[2].strip() if len(msa) > 2 else "", text="\n".join(words)
    )


def _record_failure(receiver: Receiver, error: str) -> None:
    failures = receiver.failures + 1
    wait = min(2 ** (failures - 1), settings.HL7_RETRY_MAX_SECONDS)
    receiver.failures = failures
    receiver.last_error = error
    receiver.next_attempt_at = timezone.now() + timedelta(seconds=wait)
    Receiver.objects.filter(pk=receiver.pk).update(
        failures=F("failures") + 1, last_error=error, next_attempt_at=receiver.next_attempt_at
    )
    logger.warning("HL7 outbox: %s: %s; next attempt in %d s", receiver, error, wait)


def _record_success(receiver: Receiver) -> None:
    if receiver.failures or receiver.last_error or receiver.next_attempt_at:
        Receiver.objects.filter(pk=receiver.pk).update(failures=0, last_error="", next_attempt_at=None)
        receiver.failures, receiver.last_error, receiver.next_attempt_at = 0, "", None


def _finish(
    row: OutboundMessage, *, state: str, ack_code: str = "", error: str = "", sent: bool = True
) -> None:
    OutboundMessage.objects.filter(pk=row.pk).update(
        state=state,
        ack_code=ack_code,
        last_error=error[:ACK_TEXT_MAX],
        sent_at=timezone.now() if sent else None,
        attempts=F("attempts") + (1 if sent else 0),
    )


def _pending(receiver_id: int):
    return OutboundMessage.objects.filter(receiver_id=receiver_id, state=OutboundState.PENDING).order_by("id")


class _Link:
    """The connection of one delivery run, opened again once when the receiver closed it after an
    answer: some HIS gateways take one message per connection. A message that fails on a fresh
    connection is a failure of the receiver."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver
        self.connection: MllpConnection | None = None
        self.used = False

    def open(self) -> None:
        self.connection = MllpConnection(
            self.receiver.host, self.receiver.port, timeout=settings.HL7_SEND_TIMEOUT
        )
        self.used = False

    def send(self, payload: bytes) -> bytes:
        assert self.connection is not None
        try:
            answer = self.connection.send(payload)
        except (OSError, MllpError):
            if not self.used:
                raise
            # Sent again with the same MSH-10: had the receiver read it, it knows it by that.
            self.close()
            self.open()
            answer = self.connection.send(payload)
        self.used = True
        return answer

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


# An ACK's MSA-1 in original and enhanced mode; anything else is not an answer to the message.
ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")


def _unanswered(receiver: Receiver, row: OutboundMessage, error: str) -> None:
    """`row` is not known to have been taken: it stays pending, to go again after the backoff."""
    OutboundMessage.objects.filter(pk=row.pk).update(attempts=F("attempts") + 1)
    _record_failure(receiver, error)


def _send_pending(receiver: Receiver) -> tuple[int, bool]:
    """Send the pending messages until none is left or the receiver fails: (answered, failed)."""
    rows = list(_pending(receiver.pk)[:BATCH])
    if not rows:
        return 0, False
    address = f"{receiver.host}:{receiver.port}"
    link = _Link(receiver)
    try:
        link.open()
    except OSError as exc:
        _record_failure(
            receiver, _("Cannot connect to %(address)s: %(error)s") % {"address": address, "error": exc}
        )
        return 0, True
    answered = 0
    name = codec(receiver)
    try:
        while rows:
            for row in rows:
                try:
                    payload = encoded(receiver, row.text)
                except Unencodable as exc:
                    # The receiver's character set was changed after the message was queued.
                    _finish(row, state=OutboundState.REJECTED, error=str(exc), sent=False)
                    continue
                where = {"address": address, "control_id": row.control_id}
                try:
                    answer = link.send(payload)
                except (OSError, MllpError) as exc:
                    error = str(exc) or type(exc).__name__
                    _unanswered(
                        receiver,
                        row,
                        _("No answer from %(address)s to %(control_id)s: %(error)s")
                        % {**where, "error": error},
                    )
                    return answered, True
                ack = read_ack(answer, name)
                if ack is None or ack.code not in ACK_CODES:
                    _unanswered(
                        receiver,
                        row,
                        _("%(address)s answered %(control_id)s with something that is not an ACK.") % where,
                    )
                    return answered, True
                if ack.control_id and ack.control_id != row.control_id:
                    _unanswered(
                        receiver,
                        row,
                        _("%(address)s answered %(control_id)s with the ACK of %(other)s.")
                        % {**where, "other": ack.control_id},
                    )
                    return answered, True
                if ack.code in ACCEPTED:
                    _finish(row, state=OutboundState.SENT, ack_code=ack.code)
                else:
                    _finish(
                        row,
                        state=OutboundState.REJECTED,
                        ack_code=ack.code,
                        error=ack.text or _("Refused with %(code)s, without a reason.") % {"code": ack.code},
                    )
                    logger.warning(
                        "HL7 outbox: %s refused %s with %s: %s", receiver, row.control_id, ack.code, ack.text
                    )
                answered += 1
                _record_success(receiver)
            rows = list(_pending(receiver.pk)[:BATCH])
    finally:
        link.close()
    return answered, False


def outbox_deliver(receiver: Receiver) -> int:
    """Send the receiver's pending messages in order; the number answered (sent or refused).

    Does nothing while the receiver's backoff runs (next_attempt_at in the future), or while another
    process delivers to it. Slow network I/O only, no transaction held.
    """
    answered = 0
    while True:
        receiver = Receiver.objects.filter(pk=receiver.pk, enabled=True).first()
        if receiver is None or (receiver.next_attempt_at and receiver.next_attempt_at > timezone.now()):
            return answered
        with _delivery_lock(receiver.pk) as mine:
            if not mine:
                return answered
            done, failed = _send_pending(receiver)
            answered += done
        # A message queued while this delivery was finishing saw the lock held and left: look again.
        if failed or not _pending(receiver.pk).exists():
            return answered


@dataclass(frozen=True)
class Round:
    """What one run did for one receiver; `error` is set when delivery failed in this run."""

    receiver: Receiver
    queued: int
    answered: int
    pending: int
    error: str


def outbox_run_all() -> list[Round]:
    """Fill and deliver for every enabled receiver (the task and the command)."""
    rounds = []
    for receiver in Receiver.objects.filter(enabled=True).order_by("pk"):
        queued = outbox_fill(receiver)
        answered = outbox_deliver(receiver)
        after = Receiver.objects.get(pk=receiver.pk)
        error = after.last_error if after.failures > receiver.failures else ""
        rounds.append(Round(after, queued, answered, _pending(receiver.pk).count(), error))
    return rounds


# --- after commit -----------------------------------------------------------------------------------


def outbox_events_consumer(events) -> None:
    """The HL7 link's part of the order-event stream: after a commit, get the new events on their way.

    Cheap, and never raises for the clerk's request: the change is committed, and the cursor makes sure
    whoever runs next (the task, beat, the `hl7_outbox` loop) takes these events anyway.
    """
    from .tasks import outbox_run

    kinds = {event.kind for event in events} & {str(kind) for kind in OUTBOUND_KINDS}
    if not kinds:
        return
    try:
        receivers = [r for r in Receiver.objects.filter(enabled=True) if kinds & set(r.kinds)]
        if not receivers:
            return
        if outbox_run.app.conf.task_always_eager:
            # No worker (CELERY_TASK_ALWAYS_EAGER): fill here, database only; deliver from
            # `manage.py hl7_outbox --every N`.
            for receiver in receivers:
                outbox_fill(receiver)
            return
    except DatabaseError as exc:
        logger.warning(
            "HL7 outbox not filled after events %s (%s); the next run takes them", [e.id for e in events], exc
        )
        return
    try:
        outbox_run.delay()
    except BrokerError as exc:
        logger.warning("HL7 outbox run not queued (broker unavailable: %s); beat takes the events", exc)
