"""The Interface page: what the HIS sent and what we answered, what we send it and what failed.

Admin role only (the log holds every patient the HIS ever sent): each view checks the role itself, and
LoginRequiredMiddleware has sent anonymous visitors to the login page before that.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from scheduling.models import Order, Patient
from scheduling.roles import ADMIN, require_role

from . import inbound, parsing
from .fields import message_rows, segment_lines
from .forms import MessageSearchForm
from .models import AckCode, Message, OutboundMessage, OutboundState, Receiver, Sender
from .tasks import outbox_run

MESSAGES_PER_PAGE = 50
# A free-text search looks the text up as an MRN, accession or placer number first (indexed), so a
# common value matches at most this many patients or orders before the log is filtered by them.
LINKED_RECORDS_LIMIT = 50
OUTBOUND_PROBLEMS_SHOWN = 50


@dataclass
class DecodedText:
    text: str
    codec: str
    # Bytes the character set cannot hold were shown as U+FFFD: say so rather than pass them off as sent.
    lossy: bool


def decode_for_display(raw: bytes, *, default_charset: str = "") -> DecodedText:
    """`raw` as text, read as the inbound pipeline reads it (MSH-18, else the sender's default: see
    hl7_link.parsing); a message it refused for its bytes or its header is shown all the same, the
    bytes the character set cannot hold replaced."""
    try:
        header = parsing.read_header(raw)
        codec = parsing.codec_for(header, default_charset)
        return DecodedText(parsing.decode(raw, codec, declared=header.charset), codec, lossy=False)
    except parsing.ParseProblem:
        codec = parsing.DEFAULT_CODECS.get(default_charset, "ascii")
        try:
            codec = parsing.codec_for(parsing.read_header(raw), default_charset)
        except parsing.ParseProblem:
            pass
        return DecodedText(raw.decode(codec, errors="replace"), codec, lossy=True)


def _message_text(message: Message, raw: bytes) -> DecodedText:
    return decode_for_display(
        bytes(raw), default_charset=message.sender.default_charset if message.sender else ""
    )


# --- the inbound log ----------------------------------------------------------------------------


def _day_start(day) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def _text_matches(query: str) -> Q:
    """Messages that touched the patient with this MRN or the order with this accession or placer
    number, or were refused with an error containing the text.

    The records are found through their own indexes first (MRN: migration 0007's UPPER(mrn) index;
    accession and placer number: their unique constraints, placer numbers per sending application),
    then the log by its patient and order columns. Only refused messages (AE, AR) carry an error, so
    the text is searched among those, through the ACK index, not in a million accepted ones.
    """
    patient_ids = list(
        Patient.objects.filter(mrn__iexact=query).values_list("pk", flat=True)[:LINKED_RECORDS_LIMIT]
    )
    applications = list(Sender.objects.values_list("application", flat=True))
    order_ids = list(
        Order.objects.filter(
            Q(accession_number=query) | Q(placer_authority__in=applications, placer_order_number=query)
        ).values_list("pk", flat=True)[:LINKED_RECORDS_LIMIT]
    )
    matches = Q(ack_code__in=[AckCode.AE, AckCode.AR], error__icontains=query)
    if patient_ids:
        matches |= Q(patient_id__in=patient_ids)
    if order_ids:
        matches |= Q(order_id__in=order_ids)
    return matches


def _control_id_matches(control_id: str, sender: Sender | None) -> Q:
    """A control ID through the unique index (sender, control ID): of the sender chosen, else of any
    sender we know; only when none of theirs has it, among the refused (AR) messages of senders we do
    not know (no sender row, so not in that index): walking the log for one ID would read all of it."""
    known = [sender.pk] if sender is not None else list(Sender.objects.values_list("pk", flat=True))
    ours = Q(sender_id__in=known, control_id=control_id)
    if sender is not None or Message.objects.filter(ours).exists():
        return ours
    return Q(sender__isnull=True, ack_code=AckCode.AR, control_id=control_id)


def message_search(
    *,
    sender: Sender | None = None,
    control_id: str = "",
    message_type: str = "",
    ack_code: str = "",
    date_from=None,
    date_to=None,
    q: str = "",
) -> QuerySet[Message]:
    """The log filtered by the Interface page's search, unordered (message_page orders and cuts it)."""
    found = Message.objects.all()
    if sender is not None:
        found = found.filter(sender=sender)
    if control_id:
        found = found.filter(_control_id_matches(control_id, sender))
    if message_type:
        found = found.filter(message_type__startswith=message_type)
    if ack_code:
        found = found.filter(ack_code=ack_code)
    if date_from:
        found = found.filter(received_at__gte=_day_start(date_from))
    if date_to:
        found = found.filter(received_at__lt=_day_start(date_to + timedelta(days=1)))
    if q:
        found = found.filter(_text_matches(q))
    return found


@dataclass
class MessagePage:
    messages: list[Message]
    # Cursors for the neighbouring pages (a message id), None at either end.
    older: int | None
    newer: int | None


def message_page(
    found: QuerySet[Message],
    *,
    before: int | None = None,
    after: int | None = None,
    size: int = MESSAGES_PER_PAGE,
) -> MessagePage:
    """One page of `found`, newest first, by keyset on (received_at, id): the index hl7_message_received_idx
    is walked from the cursor and stops after a page, however long the log. No count: counting a
    million rows on every page view would cost more than the page itself."""
    found = found.select_related("patient", "order").defer("raw", "ack")
    anchor_id = before or after
    anchor = None
    if anchor_id:
        anchor = next(
            iter(Message.objects.filter(pk=anchor_id).order_by().values_list("received_at", flat=True)), None
        )
    if anchor is not None and after:
        # The page just newer than the cursor: read upwards from it, shown newest first.
        rows = list(
            found.filter(Q(received_at__gt=anchor) | Q(received_at=anchor, pk__gt=after))
            .filter(received_at__gte=anchor)
            .order_by("received_at", "id")[: size + 1]
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return MessagePage(
            rows, older=rows[-1].pk if rows else None, newer=rows[0].pk if more_newer else None
        )
    if anchor is not None:
        found = found.filter(Q(received_at__lt=anchor) | Q(received_at=anchor, pk__lt=before)).filter(
            received_at__lte=anchor
        )
    rows = list(found.order_by("-received_at", "-id")[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    newer = rows[0].pk if anchor is not None and rows else None
    return MessagePage(rows, older=older, newer=newer)


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@require_GET
@require_role(ADMIN)
def message_list(request: HttpRequest) -> HttpResponse:
    form = MessageSearchForm(request.GET)
    if form.is_valid():
        found = message_search(**form.cleaned_data)
    else:
        found = Message.objects.none()
    page = message_page(found, before=_cursor(request, "before"), after=_cursor(request, "after"))
    context = {"form": form, "page": page, "tab": "inbound"}
    return render(request, "hl7_link/message_list.html", context)


@require_GET
@require_role(ADMIN)
def message_detail(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message.objects.select_related("sender", "patient", "order"), pk=pk)
    decoded = _message_text(message, message.raw)
    ack = _message_text(message, message.ack) if message.ack else None
    context = {
        "message": message,
        "decoded": decoded,
        "lines": segment_lines(decoded.text),
        "segments": message_rows(decoded.text),
        "ack_lines": segment_lines(ack.text) if ack else [],
        "ack_segments": message_rows(ack.text) if ack else [],
        "tab": "inbound",
    }
    return render(request, "hl7_link/message_detail.html", context)


ACK_LEVELS = {AckCode.AA: messages.SUCCESS, AckCode.AE: messages.WARNING, AckCode.AR: messages.ERROR}


@require_POST
@require_role(ADMIN)
def message_reprocess(request: HttpRequest, pk: int) -> HttpResponse:
    message = get_object_or_404(Message, pk=pk)
    try:
        message = inbound.reprocess(message, user=request.user)
    except ValidationError as error:
        # Accepted already (AA), or its control ID was processed since under another log row.
        for text in error.messages:
            messages.error(request, text)
        return redirect("hl7_link:message_detail", pk=message.pk)
    text = _("Reprocessed: the new ACK is %(code)s.") % {"code": message.ack_code or "—"}
    if message.error and message.ack_code != AckCode.AA:
        text = f"{text} {message.error}"
    messages.add_message(request, ACK_LEVELS.get(message.ack_code, messages.INFO), text)
    return redirect("hl7_link:message_detail", pk=message.pk)


# --- outbound -----------------------------------------------------------------------------------


@require_GET
@require_role(ADMIN)
def outbound(request: HttpRequest) -> HttpResponse:
    """Per receiver its delivery state, and the messages that failed or were refused, newest first."""
    receivers = list(Receiver.objects.order_by("name"))
    # Counted through the pending index (hl7_outbound_pending_idx): the sent history is never read.
    pending = dict(
        OutboundMessage.objects.filter(state=OutboundState.PENDING)
        .values("receiver")
        .annotate(count=Count("id"))
        .values_list("receiver", "count")
    )
    for receiver in receivers:
        receiver.pending = pending.get(receiver.pk, 0)
    problems = OutboundMessage.objects.select_related("receiver", "order").order_by("-id")
    context = {
        "receivers": receivers,
        # Tried and not yet taken: the head of a receiver's queue, holding up the rest of it.
        "failing": list(
            problems.filter(state=OutboundState.PENDING, attempts__gt=0)[:OUTBOUND_PROBLEMS_SHOWN]
        ),
        # Refused by the receiver (AE/AR): taken out of the queue, waiting for someone to look.
        "rejected": list(problems.filter(state=OutboundState.REJECTED)[:OUTBOUND_PROBLEMS_SHOWN]),
        "tab": "outbound",
    }
    return render(request, "hl7_link/outbound.html", context)


@require_POST
@require_role(ADMIN)
def receiver_retry(request: HttpRequest, pk: int) -> HttpResponse:
    """Try the receiver now instead of at the end of its backoff (after the HIS was fixed)."""
    receiver = get_object_or_404(Receiver, pk=pk)
    Receiver.objects.filter(pk=receiver.pk).update(next_attempt_at=None)
    transaction.on_commit(outbox_run.delay)
    messages.success(request, _("%(receiver)s will be tried again now.") % {"receiver": receiver.name})
    return redirect("hl7_link:outbound")
