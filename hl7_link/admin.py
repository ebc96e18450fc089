"""The HL7 link in the admin: who may send (senders), who is told (receivers), and the two logs, read-only.

Senders and receivers are saved through hl7_link.services, as every other door would: a new sender gets
the account its orders are booked by, a new receiver starts at the end of the order-event stream.
The message log and the outbox are records of what happened and are never edited here; the Interface
page reads a message field by field and reprocesses it.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from api.models import validate_networks
from scheduling.admin import EstimatedCountPaginator

from .models import OUTBOUND_KINDS, Message, OutboundMessage, Receiver, Sender
from .parsing import split_address
from .services import receiver_save, sender_save


class SenderForm(forms.ModelForm):
    """Refuses at the field what the listener could not use: an address list that would admit no one
    (inbound refuses every message of a sender whose list does not parse), a room field that names no
    field."""

    allowed_addresses = forms.CharField(
        label=_("allowed addresses"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        validators=[validate_networks],
        help_text=Sender._meta.get_field("allowed_addresses").help_text,
    )

    class Meta:
        model = Sender
        fields = [
            "application",
            "description",
            "enabled",
            "default_charset",
            "issuer",
            "station_field",
            "allowed_addresses",
        ]

    def clean_station_field(self) -> str:
        value = self.cleaned_data["station_field"].strip().upper()
        if value:
            try:
                split_address(value)
            except ValueError:
                raise forms.ValidationError(
                    _("Write a field like PV1-3 or OBR-24 (segment, dash, field number)."), code="address"
                ) from None
        return value


@admin.register(Sender)
class SenderAdmin(admin.ModelAdmin):
    form = SenderForm
    list_display = ["application", "description", "enabled", "default_charset", "user"]
    list_filter = ["enabled"]
    search_fields = ["application", "description"]
    fields = [
        "application",
        "description",
        "enabled",
        "default_charset",
        "issuer",
        "station_field",
        "allowed_addresses",
        "user",
        "created_at",
    ]
    readonly_fields = ["user", "created_at"]

    def save_model(self, request: HttpRequest, obj: Sender, form: forms.ModelForm, change: bool) -> None:
        saved = sender_save(sender=obj)
        obj.pk, obj.user_id = saved.pk, saved.user_id

    def has_delete_permission(self, request: HttpRequest, obj: Sender | None = None) -> bool:
        return False  # its account and messages name it in the history: disable it instead


class ReceiverForm(forms.ModelForm):
    kinds = forms.MultipleChoiceField(
        label=_("events sent"),
        choices=[(str(kind), kind.label) for kind in OUTBOUND_KINDS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Bookings, reschedules and cancellations, and the exam's progress at the scanner."),
    )

    class Meta:
        model = Receiver
        fields = [
            "name",
            "host",
            "port",
            "receiving_application",
            "receiving_facility",
            "charset",
            "version",
            "appointment_style",
            "kinds",
            "enabled",
        ]


@admin.register(Receiver)
class ReceiverAdmin(admin.ModelAdmin):
    form = ReceiverForm
    list_display = ["name", "host", "port", "enabled", "failures", "next_attempt_at"]
    list_filter = ["enabled"]
    readonly_fields = ["last_event_id", "failures", "next_attempt_at", "last_error", "interface_link"]

    @admin.display(description=_("delivery"))
    def interface_link(self, receiver: Receiver) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("hl7_link:outbound"), _("See it on the Interface page")
        )

    def save_model(self, request: HttpRequest, obj: Receiver, form: forms.ModelForm, change: bool) -> None:
        obj.pk = receiver_save(receiver=obj).pk


class ReadOnlyLogAdmin(admin.ModelAdmin):
    """A log: looked at, never written. Counted by estimate: the log reaches millions of rows."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyLogAdmin):
    list_display = [
        "received_at",
        "sending_application",
        "control_id",
        "message_type",
        "ack_code",
        "interface_link",
    ]
    list_filter = ["ack_code", "sender"]
    search_fields = ["control_id"]
    ordering = ["-received_at", "-id"]
    fields = [
        "interface_link",
        "sender",
        "sending_application",
        "sending_facility",
        "control_id",
        "message_type",
        "version",
        "charset",
        "peer",
        "received_at",
        "processed_at",
        "attempts",
        "ack_code",
        "error",
        "patient",
        "order",
    ]
    readonly_fields = fields

    @admin.display(description=_("Interface page"))
    def interface_link(self, message: Message) -> str:
        return format_html(
            '<a href="{}">{}</a>',
            reverse("hl7_link:message_detail", args=[message.pk]),
            _("Read it field by field"),
        )

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).defer("raw", "ack")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Message], search_term: str
    ) -> tuple[QuerySet[Message], bool]:
        # An exact control ID, not icontains over a million rows (the Interface page searches more).
        if search_term.strip():
            return queryset.filter(control_id=search_term.strip()), False
        return queryset, False


@admin.register(OutboundMessage)
class OutboundMessageAdmin(ReadOnlyLogAdmin):
    list_display = [
        "id",
        "created_at",
        "receiver",
        "control_id",
        "message_type",
        "state",
        "attempts",
        "ack_code",
    ]
    list_filter = ["state", "receiver"]
    search_fields = ["control_id"]
    ordering = ["-id"]
    list_select_related = ["receiver"]
    fields = [
        "receiver",
        "order",
        "event",
        "control_id",
        "message_type",
        "state",
        "attempts",
        "created_at",
        "sent_at",
        "ack_code",
        "last_error",
        "text_lines",
    ]
    readonly_fields = fields

    @admin.display(description=_("message"))
    def text_lines(self, outbound: OutboundMessage) -> str:
        # Segments end with CR, which a browser does not break on.
        return format_html("<pre>{}</pre>", "\n".join(outbound.text.split("\r")))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[OutboundMessage], search_term: str
    ) -> tuple[QuerySet[OutboundMessage], bool]:
        if search_term.strip():
            return queryset.filter(control_id=search_term.strip()), False
        return queryset, False
