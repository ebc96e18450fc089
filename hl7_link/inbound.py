"""One inbound HL7 message, from its bytes to its ACK: `receive` (the listener's) and `reprocess` (the
Interface page's, after the cause of an error was fixed).

The order of things, and why:
1. MSH is read from the bytes (it is ASCII) to find the sender, whose default character set decodes a
   message with MSH-18 empty (Thai HIS products send TIS-620 so).
2. The sender must be configured (or listed in HL7_KNOWN_SENDERS), enabled, and connect from an allowed
   address; otherwise AR, logged without a sender.
3. Per sender, one message at a time, in the order received: a lock in this process, and the sender's
   row locked in the transaction for other processes, both held to the commit (the order the changes
   are applied in is their commit order); what the commit's hooks do after it (the worklist file,
   without a broker) overlaps the sender's next message. A control ID (MSH-10) already answered AA or
   AE gets that answer again and does nothing: the HIS re-sends when an ACK was lost.
4. The change is applied in a savepoint inside the transaction that writes the log row: AE rolls the
   change back and keeps the row; the answer is returned only after the commit, so AA means saved.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, InterfaceError, OperationalError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from api.models import parse_networks
from scheduling.models import Order, Patient

from . import ack, handlers
from .ack import Answer, Problem
from .models import AckCode, Message, Sender
from .parsing import Header, Parsed, ParseProblem, codec_for, decode, read_header
from .services import one, sender_for

logger = logging.getLogger(__name__)

# Versions (MSH-12) taken per message type; ADT also in the versions around them that HIS products use.
VERSIONS = {
    "ADT": ("2.3", "2.3.1", "2.4", "2.5", "2.5.1"),
    "ORM": ("2.3.1", "2.5.1"),
    "OMG": ("2.5.1",),
}
EVENTS = {
    "ADT": ("A01", "A04", "A05", "A08", "A40"),
    "ORM": ("O01",),
    "OMG": ("O19",),
}
# MSH-11: production and training; D (debugging) is refused, it must not book real exams.
PROCESSING_IDS = ("P", "T")
CONTROL_ID_MAX = Message._meta.get_field("control_id").max_length

_locks_guard = threading.Lock()
_sender_locks: dict[int, threading.Lock] = {}


def _sender_lock(sender: Sender) -> threading.Lock:
    with _locks_guard:
        return _sender_locks.setdefault(sender.pk, threading.Lock())


def _cut(value: str, field_name: str) -> str:
    return value[: Message._meta.get_field(field_name).max_length]


@dataclass
class Outcome:
    """What became of one message: the answer's bytes and what the log row records."""

    ack_code: str
    ack: bytes
    error: str = ""
    charset: str = ""
    patient: Patient | None = None
    order: Order | None = None


def _refusal(
    header: Header | None, problem: Problem, *, codec: str = "ascii", echo: str = "", label: str = ""
) -> Outcome:
    """The AR/AE answer to a message refused as a whole, in `codec` with MSH-18 `echo`."""
    answer = Answer(problem.ack_code, problem.text, [problem])
    text = ack.build(header, answer, charset=echo)
    return Outcome(problem.ack_code, ack.encode(text, codec), error=problem.text, charset=label)


def _check_header(header: Header) -> Problem | None:
    """AR for what we do not take: the message type, the event, the version, the processing ID."""
    code, event = header.message_code.upper(), header.trigger_event.upper()
    if code not in EVENTS:
        return Problem.at(
            "MSH-9",
            _("Message type %(type)s is not taken: send ADT, ORM^O01 or OMG^O19.")
            % {"type": header.message_type[:40]},
            code=200,
            ack_code=AckCode.AR,
        )
    if event not in EVENTS[code]:
        return Problem.at(
            "MSH-9",
            _("Event %(event)s of %(type)s is not taken (taken: %(events)s).")
            % {"event": event[:10], "type": code, "events": ", ".join(EVENTS[code])},
            code=201,
            ack_code=AckCode.AR,
        )
    if header.version not in VERSIONS[code]:
        return Problem.at(
            "MSH-12",
            _("HL7 version %(version)s is not taken for %(type)s (taken: %(versions)s).")
            % {"version": header.version[:16], "type": code, "versions": ", ".join(VERSIONS[code])},
            code=203,
            ack_code=AckCode.AR,
        )
    if header.processing_id.upper() not in PROCESSING_IDS:
        return Problem.at(
            "MSH-11",
            _("Processing ID %(id)s is not taken: send P (production) or T (training).")
            % {"id": header.processing_id[:3]},
            code=202,
            ack_code=AckCode.AR,
        )
    return None


def _check_sender(header: Header, sender: Sender | None, peer: str) -> Problem | None:
    application = header.sending_application[:180]
    if sender is None:
        return Problem.at(
            "MSH-3",
            _(
                "Sending application %(app)s is not known: add it under Interface > HL7 senders, or to "
                "HL7_KNOWN_SENDERS."
            )
            % {"app": application or "-"},
            code=204,
            ack_code=AckCode.AR,
        )
    if not sender.enabled:
        return Problem.at(
            "MSH-3",
            _("Sending application %(app)s is disabled (Interface > HL7 senders).") % {"app": application},
            code=207,
            ack_code=AckCode.AR,
        )
    if not _address_allowed(sender, peer):
        return Problem.at(
            "MSH-3",
            _("%(app)s may not send from address %(peer)s: add it to the sender's allowed addresses.")
            % {"app": application, "peer": peer or "-"},
            code=207,
            ack_code=AckCode.AR,
        )
    return None


def _address_allowed(sender: Sender, peer: str) -> bool:
    try:
        networks = parse_networks(sender.allowed_addresses)
    except ValidationError:
        return False  # the admin's form refuses such a list; a list edited around it admits no one
    if not networks:
        return True
    try:
        ip = ipaddress.ip_address(peer)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def _check_control_id(header: Header) -> Problem | None:
    if not header.control_id:
        return Problem.at("MSH-10", _("MSH-10 (message control ID) is empty."), code=101, ack_code=AckCode.AR)
    if len(header.control_id) > CONTROL_ID_MAX:
        return Problem.at(
            "MSH-10",
            _("MSH-10 (message control ID) is longer than %(max)d characters.") % {"max": CONTROL_ID_MAX},
            code=102,
            ack_code=AckCode.AR,
        )
    return None


def _apply(raw: bytes, header: Header, sender: Sender) -> Outcome:
    """Decode, parse and apply one message of an accepted sender, in a savepoint. Writes no log row."""
    label = header.charset or sender.default_charset
    try:
        codec = codec_for(header, sender.default_charset)
    except ParseProblem as exc:
        # A character set we cannot write either: the answer is ASCII, with MSH-18 empty.
        return _refusal(
            header, Problem.at(exc.field, exc.text, code=exc.code, ack_code=AckCode.AR), label=label
        )
    echo = header.charset  # the answer says MSH-18 as they did: empty when they left it empty
    try:
        parsed = Parsed(decode(raw, codec, declared=header.charset), codec=codec)
    except ParseProblem as exc:
        problem = Problem.at(exc.field, exc.text, code=exc.code, ack_code=AckCode.AR)
        return _refusal(header, problem, codec=codec, echo=echo, label=label)
    if problem := _check_header(header):
        return _refusal(header, problem, codec=codec, echo=echo, label=label)
    ctx = handlers.Context(parsed=parsed, header=header, sender=sender)
    handler = handlers.adt if header.message_code.upper() == "ADT" else handlers.orders
    problems: list[Problem] = []
    try:
        with transaction.atomic():
            handler(ctx)
    except Problem as exc:
        problems = [exc]
    except ParseProblem as exc:
        problems = [Problem.at(exc.field, exc.text, code=exc.code)]
    except ValidationError as exc:
        problems = handlers.problems_from_validation(ctx, exc)
    except (OperationalError, InterfaceError):
        raise  # the database itself failed: nothing is logged, the sender sends again
    except Exception:
        logger.exception("HL7 %s %s from %s failed", header.message_type, header.control_id, sender)
        problems = [Problem(_("The RIS failed to process this message; see its log."), code=207)]
    if problems:
        text = " ".join(p.text for p in problems)
        # Nothing was saved, also of the orders done before the refused one: each is "unable" (UA,
        # UC...), with no accession (ORC-3), and the log names no record.
        answer = Answer(AckCode.AE, text, problems, orders=[reply.refused() for reply in ctx.replies])
        return Outcome(
            AckCode.AE, ack.encode(ack.build(header, answer, charset=echo), codec), error=text, charset=label
        )
    answer = Answer(AckCode.AA, " ".join(ctx.notes), orders=ctx.replies)
    return Outcome(
        AckCode.AA,
        ack.encode(ack.build(header, answer, charset=echo), codec),
        charset=label,
        patient=ctx.patient,
        order=ctx.order,
    )


def _record(message: Message, header: Header | None, outcome: Outcome) -> None:
    if header is not None:
        message.sending_application = _cut(header.sending_application, "sending_application")
        message.sending_facility = _cut(header.sending_facility, "sending_facility")
        message.control_id = _cut(header.control_id, "control_id")
        message.message_type = _cut(header.message_type, "message_type")
        message.version = _cut(header.version, "version")
    message.charset = _cut(outcome.charset, "charset")
    message.ack_code = outcome.ack_code
    message.ack = outcome.ack
    message.error = outcome.error
    message.patient = outcome.patient
    message.order = outcome.order
    message.processed_at = timezone.now()
    message.attempts += 1
    message.save()


def _save_refusal(
    raw: bytes, peer: str, message: Message | None, header: Header | None, outcome: Outcome
) -> Message:
    message = message or Message(raw=raw, peer=_cut(peer, "peer"))
    message.sender = None
    _record(message, header, outcome)
    return message


def _run(
    raw: bytes, header: Header, sender: Sender, *, peer: str, message: Message | None
) -> tuple[Message, bytes]:
    """Apply the message of an accepted sender under its lock; the logged answer for a repeat.

    The lock is let go at the commit, before the commit's hooks run (the worklist file written in this
    process without a broker): the next message of the sender is applied after this one's commit, in
    the order received, while this one's file is written; this one's answer still goes only after its
    hooks, as before.
    """
    lock = _sender_lock(sender)
    lock.acquire()
    held = [True]

    def release() -> None:
        if held[0]:
            held[0] = False
            lock.release()

    try:
        return _run_locked(raw, header, sender, peer=peer, message=message, release=release)
    finally:
        release()  # rolled back, or inside a caller's transaction: the hook did not run (yet)


def _run_locked(
    raw: bytes,
    header: Header,
    sender: Sender,
    *,
    peer: str,
    message: Message | None,
    release: Callable[[], None],
) -> tuple[Message, bytes]:
    with transaction.atomic():
        # The first hook of the commit: the sender's row lock ends with the commit, this process's lock
        # right after it, before the hooks the change registered.
        transaction.on_commit(release)
        # Other processes (a second listener, the Interface page's reprocess) wait here.
        list(Sender.objects.select_for_update().filter(pk=sender.pk).values_list("pk", flat=True))
        logged = one(Message.objects.select_for_update().filter(sender=sender, control_id=header.control_id))
        if message is None:
            if logged is not None and logged.ack_code in (AckCode.AA, AckCode.AE):
                return logged, bytes(logged.ack)
            # New, or refused (AR) before: that took nothing, so it is applied now.
            message = logged or Message(sender=sender)
            message.raw, message.peer, message.received_at = raw, _cut(peer, "peer"), timezone.now()
        else:
            if logged is not None and logged.pk != message.pk:
                raise ValidationError(
                    _("%(app)s sent this control ID again (message %(id)d); that one was processed.")
                    % {"app": sender.application, "id": logged.pk}
                )
            message = Message.objects.select_for_update().get(pk=message.pk)
            if message.ack_code == AckCode.AA:
                raise ValidationError(_("This message was accepted (AA): it is not applied a second time."))
            message.sender = sender
        outcome = _apply(raw, header, sender)
        _record(message, header, outcome)
    return message, outcome.ack


def _handle(raw: bytes, peer: str, message: Message | None = None) -> tuple[Message, bytes]:
    try:
        header = read_header(raw)
    except ParseProblem as exc:
        outcome = _refusal(None, Problem.at(exc.field, exc.text, code=exc.code, ack_code=AckCode.AR))
        return _save_refusal(raw, peer, message, None, outcome), outcome.ack
    sender = sender_for(header.sending_application)
    if problem := _check_control_id(header) or _check_sender(header, sender, peer):
        # Logged without a sender: it takes no control-ID slot, so it acts when sent again once the
        # cause is fixed.
        outcome = _refusal(header, problem)
        return _save_refusal(raw, peer, message, header, outcome), outcome.ack
    try:
        return _run(raw, header, sender, peer=peer, message=message)
    except IntegrityError:
        # Two connections with the same control ID at once: the other one's row won; its answer
        # is this one's too.
        logged = one(Message.objects.filter(sender=sender, control_id=header.control_id))
        if message is None and logged is not None and logged.ack:
            return logged, bytes(logged.ack)
        raise


def receive(raw: bytes, *, peer: str = "") -> bytes:
    """The answer (ACK bytes) to one message as received from `peer`: see the module's docstring.

    Never raises: whatever goes wrong, the sender gets an answer it can parse.
    """
    try:
        # Our answers and log texts are English: the HIS's staff and the log reader share them.
        with translation.override("en"):
            _message, answer = _handle(bytes(raw), peer)
        return answer
    except Exception:
        logger.exception("HL7 message from %s could not be processed or logged", peer or "?")
        return ack.fallback(
            bytes(raw), "The RIS could not save this message (a database problem); send it again."
        )


def reprocess(message: Message, *, user=None) -> Message:
    """Apply a logged message again, once the cause of its AE or AR was fixed (a procedure added to the
    catalog, a sender configured). Its log row gets the new answer, error and time; a later repeat of its
    control ID gets the new answer. Refuses (ValidationError) a message that was accepted.

    The changes are made by the sender's account, as if the message had just arrived; `user` (who
    asked) is named in the log.
    """
    if message.ack_code == AckCode.AA:
        raise ValidationError(_("This message was accepted (AA): it is not applied a second time."))
    logger.info("HL7 message %s reprocessed by %s", message.pk, user or "-")
    with translation.override("en"):
        message, _answer = _handle(bytes(message.raw), message.peer, message)
    return message
