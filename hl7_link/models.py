"""The HL7 v2 link with the hospital information system: who may send, what came in, what goes out.

Inbound, a Sender is a system the listener (`manage.py serve_hl7`) accepts messages from, by its MSH-3
sending application; every message that arrives is kept raw in Message with the ACK it got, so a re-sent
message (same sender, same MSH-10) gets that ACK again and acts once, and the Interface page can show
and reprocess it. Outbound, a Receiver is a system told of the orders' changes: the outbox
(OutboundMessage) is filled from the order-event stream by the receiver's cursor and delivered in order.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scheduling.models import Order, OrderEvent, OrderEventKind, Patient


class Charset(models.TextChoices):
    """How a system's bytes are read (inbound, when MSH-18 is empty) or written (outbound).

    The values are HL7 table 0211's, except TIS-620: HL7 has no code for it, so it is sent with MSH-18
    empty, as Thai HIS products do.
    """

    ASCII = "", _("ASCII (MSH-18 empty)")
    UTF8 = "UNICODE UTF-8", _("Unicode UTF-8")
    LATIN1 = "8859/1", _("ISO 8859-1 (Latin-1)")
    TIS620 = "TIS-620", _("Thai TIS-620 (MSH-18 empty)")


class Sender(models.Model):
    """A system that sends us patients and orders (ADT, ORM, OMG), known by its MSH-3."""

    application = models.CharField(
        _("sending application (MSH-3)"),
        max_length=180,
        unique=True,
        help_text=_("As the system puts it in MSH-3, for example HOSXP."),
    )
    description = models.CharField(_("description"), max_length=200, blank=True)
    enabled = models.BooleanField(_("enabled"), default=True)
    default_charset = models.CharField(
        _("character set when MSH-18 is empty"),
        max_length=16,
        choices=Charset.choices,
        blank=True,
        default=Charset.ASCII,
        help_text=_("Thai systems often send TIS-620 without saying so in MSH-18."),
    )
    issuer = models.CharField(
        _("issuer of its MRNs"),
        max_length=64,
        blank=True,
        help_text=_(
            "The issuer of patient ID given to an MR identifier without an assigning authority; "
            "empty: the site's."
        ),
    )
    station_field = models.CharField(
        _("field naming the room"),
        max_length=16,
        blank=True,
        help_text=_(
            "A field whose value is a room's station AE title or name, for example PV1-3 or OBR-24; "
            "empty: the first free room of the procedure's modality, by name."
        ),
    )
    allowed_addresses = models.TextField(
        _("allowed addresses"),
        blank=True,
        help_text=_("Addresses or networks (CIDR) it may connect from; empty: any."),
    )
    # The account its orders and patients are booked and changed by (no password): the order history
    # and "booked by" name the HIS like a clerk.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="hl7_sender", editable=False
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        ordering = ["application"]
        verbose_name = _("HL7 sender")
        verbose_name_plural = _("HL7 senders")

    def __str__(self) -> str:
        return self.application


class AckCode(models.TextChoices):
    AA = "AA", _("Accepted (AA)")
    AE = "AE", _("Error (AE)")
    AR = "AR", _("Rejected (AR)")


class Message(models.Model):
    """One message as it arrived, with the ACK it got: the inbound log."""

    sender = models.ForeignKey(
        Sender, on_delete=models.PROTECT, null=True, blank=True, related_name="messages"
    )
    # As read from MSH, also when the sender is unknown or the message could not be parsed.
    sending_application = models.CharField(_("sending application"), max_length=180, blank=True)
    sending_facility = models.CharField(_("sending facility"), max_length=180, blank=True)
    control_id = models.CharField(_("control ID (MSH-10)"), max_length=199, blank=True)
    message_type = models.CharField(_("type"), max_length=40, blank=True)
    version = models.CharField(_("version"), max_length=16, blank=True)
    charset = models.CharField(_("character set"), max_length=16, blank=True)
    raw = models.BinaryField(_("message as received"))
    peer = models.CharField(_("from address"), max_length=64, blank=True)
    received_at = models.DateTimeField(_("received"), default=timezone.now)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)
    ack_code = models.CharField(_("ACK"), max_length=2, choices=AckCode.choices, blank=True)
    ack = models.BinaryField(_("ACK as sent"), blank=True, default=b"")
    error = models.TextField(_("error"), blank=True)
    # What the message touched, for the Interface page's links.
    patient = models.ForeignKey(Patient, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    attempts = models.PositiveIntegerField(_("times processed"), default=0)

    class Meta:
        ordering = ["-received_at", "-id"]
        verbose_name = _("HL7 message")
        verbose_name_plural = _("HL7 messages")
        constraints = [
            # A re-sent message is found by this and answered with its first ACK.
            models.UniqueConstraint(
                fields=["sender", "control_id"],
                condition=Q(sender__isnull=False),
                name="hl7_message_once_per_sender",
            ),
        ]
        indexes = [
            models.Index(fields=["received_at", "id"], name="hl7_message_received_idx"),
            models.Index(fields=["ack_code", "received_at"], name="hl7_message_ack_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.sending_application} {self.control_id} {self.message_type}"


class AppointmentStyle(models.TextChoices):
    # IHE RAD-48 Appointment Notification, or order status updates as RAD-3.
    SIU = "SIU", _("SIU appointments (S12 booked, S13 rescheduled, S15 cancelled)")
    ORDER = "ORDER", _("Order status updates (ORM/OMG with ORC-1 SC)")


class Hl7Version(models.TextChoices):
    V231 = "2.3.1", _("2.3.1 (ORM^O01)")
    V251 = "2.5.1", _("2.5.1 (OMG^O19)")


# What a receiver may be told of; the other event kinds (details, patient, catalog) are not sent.
OUTBOUND_KINDS = (
    OrderEventKind.BOOKED,
    OrderEventKind.RESCHEDULED,
    OrderEventKind.CANCELLED,
    OrderEventKind.ARRIVED,
    OrderEventKind.STARTED,
    OrderEventKind.COMPLETED,
    # New receivers get it; one configured before has it ticked in the admin when its HIS takes S26.
    OrderEventKind.NO_SHOW,
)


def default_outbound_kinds() -> list[str]:
    return [str(kind) for kind in OUTBOUND_KINDS]


class Receiver(models.Model):
    """A system told of bookings and status changes over MLLP (the HIS's HL7 gateway)."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    host = models.CharField(_("host"), max_length=255)
    port = models.PositiveIntegerField(_("port"))
    receiving_application = models.CharField(_("receiving application (MSH-5)"), max_length=180, blank=True)
    receiving_facility = models.CharField(_("receiving facility (MSH-6)"), max_length=180, blank=True)
    charset = models.CharField(
        _("character set"), max_length=16, choices=Charset.choices, blank=True, default=Charset.UTF8
    )
    version = models.CharField(
        _("HL7 version"), max_length=8, choices=Hl7Version.choices, default=Hl7Version.V231
    )
    appointment_style = models.CharField(
        _("bookings sent as"), max_length=8, choices=AppointmentStyle.choices, default=AppointmentStyle.SIU
    )
    kinds = models.JSONField(_("events sent"), default=default_outbound_kinds)
    enabled = models.BooleanField(_("enabled"), default=True)
    # The last order event the outbox has taken for this receiver (scheduling.events.events_after):
    # a new receiver starts at the stream's end, not with the department's whole past.
    last_event_id = models.BigIntegerField(_("last event taken"), default=0, editable=False)
    # Delivery state: consecutive failures and when to try again (backoff), shown on the Interface page.
    failures = models.PositiveIntegerField(_("failures in a row"), default=0, editable=False)
    next_attempt_at = models.DateTimeField(_("next attempt"), null=True, blank=True, editable=False)
    last_error = models.TextField(_("last error"), blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("HL7 receiver")
        verbose_name_plural = _("HL7 receivers")

    def __str__(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


class OutboundState(models.TextChoices):
    PENDING = "pending", _("Waiting to be sent")
    SENT = "sent", _("Sent (AA)")
    REJECTED = "rejected", _("Refused by the receiver (AE/AR)")


class OutboundMessage(models.Model):
    """One message for one receiver, built when its event was taken; sent in id order."""

    receiver = models.ForeignKey(Receiver, on_delete=models.CASCADE, related_name="outbox")
    event = models.ForeignKey(OrderEvent, on_delete=models.PROTECT, related_name="+")
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="+")
    # Stable across retries, so the receiver can recognise a message it already has (at-least-once).
    control_id = models.CharField(_("control ID (MSH-10)"), max_length=40, unique=True)
    message_type = models.CharField(_("type"), max_length=20)
    text = models.TextField(_("message"))
    state = models.CharField(
        _("state"), max_length=10, choices=OutboundState.choices, default=OutboundState.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("queued"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)
    ack_code = models.CharField(_("ACK"), max_length=2, blank=True)
    last_error = models.TextField(_("last error"), blank=True)

    class Meta:
        ordering = ["id"]
        verbose_name = _("HL7 outbound message")
        verbose_name_plural = _("HL7 outbound messages")
        constraints = [
            models.UniqueConstraint(fields=["receiver", "event"], name="hl7_outbound_once_per_event"),
        ]
        indexes = [
            models.Index(
                fields=["receiver", "id"],
                condition=Q(state="pending"),
                name="hl7_outbound_pending_idx",
            ),
            # The Interface page's list of messages the receiver refused, newest first.
            models.Index(fields=["id"], condition=Q(state="rejected"), name="hl7_outbound_rejected_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.control_id} {self.message_type} to {self.receiver_id}"
