"""Orders: book, read, list, change details, reschedule, cancel, mark a no-show, and move along the
workflow.

Every change goes through scheduling.services, which hold an API client to the front desk's rules and
word their refusals as the forms do (api/problems.py turns them into problem documents). The views
here parse and check the request's shape (a 400 at the field), then call the service. Each answer
carrying an order has its ETag (its version): sent back as If-Match, a change is refused (412) when
someone changed the order in between.

The list is paged by a cursor on (scheduled_start, id), the sort of the order indexes: each page
starts where the last ended with a range scan, as cheap at two million orders as at a thousand, and a
booking or cancellation between two pages neither repeats nor skips a row. The orders without a time
follow, by (booked_at, id): the requested ones (from the hospital system, not booked yet: the front
desk's "To schedule" list, in the order of their own index) and requests cancelled before they were
booked. A cursor says which of the two runs it is in.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from access_audit.models import AccessAction
from access_audit.services import access_record
from scheduling import rules, selectors, services
from scheduling.models import Modality, Order, OrderStatus, Patient, Procedure, Room
from scheduling.services import ORDER_DETAIL_FIELDS
from scheduling.validators import validate_calendar_date

from .catalog import DurationField
from .idempotency import idempotent
from .models import Scope
from .views import (
    IDEMPOTENCY_KEY,
    IF_MATCH,
    ApiView,
    etag_header,
    if_match_version,
    location_header,
    problem_responses,
    single_query_values,
    with_etag,
)

# A page of the list: LIST_LIMIT orders unless the caller asks for fewer or more (up to LIST_LIMIT_MAX).
LIST_LIMIT = 50
LIST_LIMIT_MAX = 200


def order_url(order: Order) -> str:
    return reverse("api:order_detail", args=[order.pk])


def order_links(order: Order) -> dict[str, str]:
    return {"self": order_url(order), "worklist_item": reverse("api:order_worklist_item", args=[order.pk])}


# --- what an order looks like -------------------------------------------------------------------


class OrderPatientSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", help_text="As the front desk reads it.")

    class Meta:
        model = Patient
        fields = ["id", "mrn", "issuer", "name"]
        read_only_fields = fields


class OrderProcedureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Procedure
        fields = ["id", "code_value", "code_meaning", "modality"]
        read_only_fields = fields


class OrderRoomSerializer(serializers.ModelSerializer):
    class Meta:
        model = Room
        fields = ["id", "name", "ae_title"]
        read_only_fields = fields


OrderLinks = inline_serializer(
    name="OrderLinks",
    fields={
        "self": serializers.CharField(help_text="This order."),
        "worklist_item": serializers.CharField(
            help_text="Its worklist item as the DICOM JSON model, as a modality receives it."
        ),
    },
)


_UNBOOKED = "Null until it is booked (and for a request cancelled before it was)."


class OrderSerializer(serializers.ModelSerializer):
    patient = OrderPatientSerializer(read_only=True)
    procedure = OrderProcedureSerializer(read_only=True)
    # Null while the order is REQUESTED: the hospital system ordered it, the front desk has not yet
    # booked it (POST .../schedule); and for a request cancelled before it was booked.
    room = OrderRoomSerializer(read_only=True, allow_null=True, help_text=_UNBOOKED)
    start = serializers.DateTimeField(
        source="scheduled_start", read_only=True, allow_null=True, help_text=_UNBOOKED
    )
    end = serializers.DateTimeField(
        source="scheduled_end", read_only=True, allow_null=True, help_text=_UNBOOKED
    )
    requested_start = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text=(
            "The time the ordering system asked for (HL7), whether or not it was booked then; null "
            "when it asked for none, and for orders booked here."
        ),
    )
    booked_by = serializers.CharField(
        source="booked_by.username",
        read_only=True,
        help_text="The account that booked it: a clerk's, or an API client's.",
    )
    links = serializers.SerializerMethodField()

    class Meta:
        model = Order
        fields = [
            "id",
            "accession_number",
            "study_instance_uid",
            "requested_procedure_id",
            "sps_id",
            "status",
            "patient",
            "procedure",
            "room",
            "start",
            "end",
            "requested_start",
            "duration_minutes",
            "priority",
            "referring_physician",
            "requesting_physician",
            "reason",
            "notes",
            "placer_order_number",
            "cancel_reason",
            "discontinue_reason",
            "version",
            "booked_at",
            "updated_at",
            "booked_by",
            "links",
        ]
        read_only_fields = fields
        extra_kwargs = {"version": {"help_text": "The order's ETag, unquoted: one more at every change."}}

    @extend_schema_field(OrderLinks)
    def get_links(self, order: Order) -> dict[str, str]:
        return order_links(order)


OrderPage = inline_serializer(
    name="OrderPage",
    fields={
        "results": OrderSerializer(many=True),
        "next": serializers.CharField(
            allow_null=True, help_text="The next page (the same filters, a cursor); null on the last."
        ),
    },
)


# One field instance formats every date-time, as OrderSerializer's own fields do (the site's time zone).
_DATETIME = serializers.DateTimeField()


def order_representation(order: Order) -> dict[str, Any]:
    """OrderSerializer(order).data, built directly: the serializer documents the shape (the schema, and
    tests hold the two equal), this builds it in a tenth of the time. A ModelSerializer and its three
    nested ones introspected the models on every answer: 4 of the 22 ms of a booking."""
    patient, procedure, room = order.patient, order.procedure, order.room
    return {
        "id": order.pk,
        "accession_number": order.accession_number,
        "study_instance_uid": order.study_instance_uid,
        "requested_procedure_id": order.requested_procedure_id,
        "sps_id": order.sps_id,
        "status": order.status,
        "patient": {
            "id": patient.pk,
            "mrn": patient.mrn,
            "issuer": patient.issuer,
            "name": patient.display_name,
        },
        "procedure": {
            "id": procedure.pk,
            "code_value": procedure.code_value,
            "code_meaning": procedure.code_meaning,
            "modality": procedure.modality,
        },
        "room": None if room is None else {"id": room.pk, "name": room.name, "ae_title": room.ae_title},
        "start": _DATETIME.to_representation(order.scheduled_start),
        "end": _DATETIME.to_representation(order.scheduled_end),
        "requested_start": _DATETIME.to_representation(order.requested_start),
        "duration_minutes": order.duration_minutes,
        "priority": order.priority,
        "referring_physician": order.referring_physician,
        "requesting_physician": order.requesting_physician,
        "reason": order.reason,
        "notes": order.notes,
        "placer_order_number": order.placer_order_number,
        "cancel_reason": order.cancel_reason,
        "discontinue_reason": order.discontinue_reason,
        "version": order.version,
        "booked_at": _DATETIME.to_representation(order.booked_at),
        "updated_at": _DATETIME.to_representation(order.updated_at),
        "booked_by": order.booked_by.username,
        "links": order_links(order),
    }


def _answer(order: Order, status: int = 200, headers: dict | None = None) -> Response:
    return with_etag(Response(order_representation(order), status=status, headers=headers), order.version)


# --- what a request may say --------------------------------------------------------------------


def validate_start_in_calendar(value: datetime) -> None:
    # Beyond the schedule's calendar the end time (start + duration) can overflow: a server error.
    validate_calendar_date(timezone.localdate(value))


def start_field(**kwargs: Any) -> serializers.DateTimeField:
    return serializers.DateTimeField(
        validators=[validate_start_in_calendar],
        help_text=("ISO 8601, like 2026-03-02T09:30:00+07:00. Without an offset, the clinic's local time."),
        **kwargs,
    )


def duration_field() -> serializers.IntegerField:
    return DurationField(required=False, help_text="Minutes; the procedure's default duration when left out.")


def confirm_field() -> serializers.BooleanField:
    return serializers.BooleanField(
        default=False,
        help_text=(
            "Book even though the patient has another exam at an overlapping time (the 409 "
            "confirmation-required names this field)."
        ),
    )


ID_SCHEMA = {"type": "integer", "minimum": 1}


@extend_schema_field(ID_SCHEMA)
class RecordId(serializers.PrimaryKeyRelatedField):
    """A patient's, procedure's or room's id; one that does not exist is a 400 at its field."""


class OrderDetailsSerializer(serializers.ModelSerializer):
    """The clinical details of an order, held to the model's validators (the forms' wording)."""

    class Meta:
        model = Order
        fields = list(ORDER_DETAIL_FIELDS)


_DETAILS = ", ".join(ORDER_DETAIL_FIELDS)


class OrderDetailsChangeSerializer(OrderDetailsSerializer):
    """The details to change: at least one, and no other field."""

    # An unknown field is refused rather than ignored: {"note": ...} for "notes" would otherwise change
    # nothing, answer 200, and still make every copy of the order a client holds stale (a new version).
    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(self.initial_data) - set(self.fields))
        if unknown:
            message = _("Not a detail of an order; those are %(fields)s.") % {"fields": _DETAILS}
            raise serializers.ValidationError({name: [message] for name in unknown})
        if not data:
            raise serializers.ValidationError(_("Send at least one of %(fields)s.") % {"fields": _DETAILS})
        return data


class OrderDetailsChangeSchema(OpenApiSerializerExtension):
    """In the schema as OrderDetailsChangeSerializer validates: no other field, and at least one."""

    target_class = OrderDetailsChangeSerializer

    def map_serializer(self, auto_schema, direction):
        schema = auto_schema._map_serializer(self.target, direction, bypass_extensions=True)
        return {**schema, "additionalProperties": False, "minProperties": 1}


class OrderBookingSerializer(OrderDetailsSerializer):
    """A booking: who, what, where and when, with the order's details."""

    patient = RecordId(queryset=Patient.objects.all())
    # Inactive procedures and rooms are not a 400: the booking rules refuse them with their own message.
    procedure = RecordId(queryset=Procedure.objects.all())
    room = RecordId(queryset=Room.objects.prefetch_related("opening_hours"))
    start = start_field()
    duration_minutes = duration_field()
    confirm_patient_overlap = confirm_field()

    class Meta(OrderDetailsSerializer.Meta):
        fields = [
            "patient",
            "procedure",
            "room",
            "start",
            "duration_minutes",
            *ORDER_DETAIL_FIELDS,
            "placer_order_number",
            "confirm_patient_overlap",
        ]
        extra_kwargs = {
            "placer_order_number": {
                "help_text": (
                    "Your system's number for this order. A second booking with it is refused "
                    "(409, naming the order that has it), so a retry cannot book twice."
                )
            }
        }


class OrderRescheduleSerializer(serializers.Serializer):
    start = start_field()
    room = RecordId(
        queryset=Room.objects.prefetch_related("opening_hours"),
        required=False,
        help_text="Another room; the order's own when left out.",
    )
    duration_minutes = duration_field()
    confirm_patient_overlap = confirm_field()


class OrderScheduleSerializer(serializers.Serializer):
    """The booking of a requested order: where and when; the rest the order already says."""

    room = RecordId(
        queryset=Room.objects.prefetch_related("opening_hours"),
        help_text="The room to book it in: one of the procedure's modality (GET /api/v1/slots).",
    )
    start = start_field()
    duration_minutes = DurationField(required=False, help_text="Minutes; the order's duration when left out.")
    confirm_patient_overlap = confirm_field()


class OrderCancelSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=rules.REASON_MAX,
        # The cancel form's wording: an API client reads what a clerk would.
        error_messages={
            "required": gettext_lazy("Give a reason for the cancellation."),
            "blank": gettext_lazy("Give a reason for the cancellation."),
        },
        # Never fails (blank spaces are refused as blank first): it shows the schema that a reason of
        # spaces alone is no reason.
        validators=[RegexValidator(r"\S")],
    )


# The cursor of a page that ended in the run of the orders without a time starts with this word; one
# in the run of the orders with a time is "<start>|<id>" alone, as before there were requested orders
# (a client's stored link still works).
_UNBOOKED_RUN = "unbooked"


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: in which run, at which time (the start, or for an order without
    one the time it was received) and id."""

    unbooked: bool
    moment: datetime
    pk: int


def _cursor(order: Order) -> str:
    if order.scheduled_start is None:
        raw = f"{_UNBOOKED_RUN}|{order.booked_at.astimezone(UTC).isoformat()}|{order.pk}"
    else:
        raw = f"{order.scheduled_start.astimezone(UTC).isoformat()}|{order.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _position(cursor: str) -> Position:
    """The position a cursor says the previous page ended at; ValueError if _cursor() did not write it
    (a time in UTC, a decimal id): an edited cursor is a 400, never a server error."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        parts = raw.split("|")
        unbooked = len(parts) == 3 and parts[0] == _UNBOOKED_RUN
        if unbooked:
            parts = parts[1:]
        moment_text, pk = parts
        moment = datetime.fromisoformat(moment_text)
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise ValueError(cursor) from exc
    # Another offset could overflow when converted to UTC for the query (year 1 at +14:00).
    if moment.utcoffset() != timedelta(0) or not (pk.isascii() and pk.isdigit()):
        raise ValueError(cursor)
    return Position(unbooked=unbooked, moment=moment, pk=int(pk))


class OrderFilterSerializer(serializers.Serializer):
    """The list's query: every filter given must match. Also the schema of its query parameters, so
    what is documented is what is checked; an empty value is refused like any other wrong one."""

    date_from = serializers.DateField(
        required=False,
        validators=[validate_calendar_date],
        help_text="Starting on or after this day (an order without a time starts on none).",
    )
    date_to = serializers.DateField(
        required=False,
        validators=[validate_calendar_date],
        help_text="Starting on or before this day (an order without a time starts on none).",
    )
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    room = RecordId(
        queryset=Room.objects.all(),
        required=False,
        help_text="A room's id (an order without a time is in none).",
    )
    modality = serializers.ChoiceField(choices=Modality.choices, required=False)
    patient = RecordId(queryset=Patient.objects.all(), required=False, help_text="A patient's id.")
    accession_number = serializers.CharField(required=False, max_length=16, trim_whitespace=False)
    placer_order_number = serializers.CharField(
        required=False,
        max_length=16,
        trim_whitespace=False,
        help_text="A placer order number: yours unless placer_authority says.",
    )
    placer_authority = serializers.CharField(
        required=False,
        max_length=64,
        trim_whitespace=False,
        help_text=(
            "With placer_order_number: whose number it is, the account name of an API client (the "
            "booked_by of its orders) or an HL7 sender."
        ),
    )
    cursor = serializers.CharField(required=False, help_text="From the previous page's next link.")
    limit = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=LIST_LIMIT_MAX,
        default=LIST_LIMIT,
        help_text="Orders per page.",
    )

    def validate_cursor(self, value: str) -> Position:
        try:
            return _position(value)
        except ValueError:
            raise serializers.ValidationError(
                _("Not a cursor of this list: follow the “next” link as it was given.")
            ) from None

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        date_from, date_to = data.get("date_from"), data.get("date_to")
        if date_from and date_to and date_from > date_to:
            # The order list's filter form says it so.
            raise serializers.ValidationError({"date_to": _("The end date is before the start date.")})
        if "placer_authority" in data and "placer_order_number" not in data:
            # Alone it would be a scan of every order: no index starts with the authority alone.
            raise serializers.ValidationError(
                {"placer_authority": _("Give placer_order_number too: this only says whose number it is.")}
            )
        return data


def _valid(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict[str, Any]:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


def _order(pk: int) -> Order:
    return get_object_or_404(Order.objects.select_related("patient", "procedure", "room", "booked_by"), pk=pk)


# --- the list ------------------------------------------------------------------------------------


def _filtered(request: Request, query: dict[str, Any]) -> QuerySet[Order]:
    orders = selectors.order_list(
        date_from=query.get("date_from"),
        date_to=query.get("date_to"),
        status=query.get("status", ""),
        modality=query.get("modality", ""),
        room=query.get("room"),
    )
    # Each of these is an index of its own (the patient's foreign key, the accession and placer numbers'
    # unique constraints); the few orders they find are then sorted.
    if "patient" in query:
        orders = orders.filter(patient=query["patient"])
    if "accession_number" in query:
        orders = orders.filter(accession_number=query["accession_number"])
    if "placer_order_number" in query:
        # A placer number is unique per authority only: the caller's own unless it names another.
        authority = query.get("placer_authority") or request.user.get_username()
        orders = orders.filter(placer_authority=authority, placer_order_number=query["placer_order_number"])
    return orders


# The statuses an order without a time can have: requested, or cancelled before it was booked.
_UNBOOKED_STATUSES = (OrderStatus.REQUESTED, OrderStatus.CANCELLED)


def _with_unbooked(query: dict[str, Any]) -> bool:
    """Whether orders without a time can match the filters: not those of a day or a room, which such
    an order has not, nor a status it cannot have."""
    if any(name in query for name in ("date_from", "date_to", "room")):
        return False
    status = query.get("status")
    return status is None or status in _UNBOOKED_STATUSES


def _page(
    orders: QuerySet[Order], *, after: Position | None, limit: int, with_unbooked: bool
) -> tuple[list[Order], bool]:
    """`limit` orders after `after`, and whether more follow: the orders with a time by
    (scheduled_start, id), then those without one by (booked_at, id).

    Each run's position is a range on its index's first column (scheduled_start >= s, an index
    condition) with the ties at s before the last id left out: PostgreSQL scans order_start_idx (or
    the room's, the status's) from s on, and the requested orders on order_requested_idx (with
    status=REQUESTED; otherwise the few orders without a time are found on order_start_idx, whose
    first column they have null, and sorted). The ids come from the indexes alone, then only the
    page's orders are loaded with their patient, procedure and room, as on the order list page.
    """
    ids: list[int] = []
    if after is None or not after.unbooked:
        timed = orders.filter(scheduled_start__isnull=False)
        if after is not None:
            timed = timed.filter(scheduled_start__gte=after.moment).exclude(
                scheduled_start=after.moment, pk__lte=after.pk
            )
        ids = list(timed.values_list("pk", flat=True)[: limit + 1])
    if len(ids) <= limit and with_unbooked:
        unbooked = orders.filter(scheduled_start__isnull=True).order_by("booked_at", "pk")
        if after is not None and after.unbooked:
            unbooked = unbooked.filter(booked_at__gte=after.moment).exclude(
                booked_at=after.moment, pk__lte=after.pk
            )
        ids += list(unbooked.values_list("pk", flat=True)[: limit + 1 - len(ids)])
    loaded = Order.objects.select_related("patient", "procedure", "room", "booked_by").in_bulk(ids[:limit])
    return [loaded[pk] for pk in ids[:limit] if pk in loaded], len(ids) > limit


def _next_link(request: Request, last: Order) -> str:
    query = request.query_params.copy()
    query["cursor"] = _cursor(last)
    return f"{request.path}?{query.urlencode()}"


ETAG = etag_header(200)
ORDER_ID = OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The order's id.")


def replayed_header(*statuses: int) -> OpenApiParameter:
    """The header of an answer replayed for a retry with the same Idempotency-Key (api.idempotency)."""
    return OpenApiParameter(
        "Idempotent-Replayed",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        description="true: the answer kept for an earlier request with this Idempotency-Key.",
        response=list(statuses),
    )


class OrderList(ApiView):
    scopes = {"POST": Scope.BOOK}

    @extend_schema(
        operation_id="order_list",
        summary="Orders, by start time",
        description=(
            "Orders matching every filter given, a page at a time: follow `next` until it is null. "
            "First the orders with a time, earliest first (then by id); then those without one, "
            "oldest first: the requested ones (status REQUESTED: sent by the hospital system without "
            "a time, or for a time when no room was free; no room or time until the front desk books "
            "them) and requests cancelled before they were booked. `status=REQUESTED` lists the "
            "requested alone, as the front desk's To schedule list. Without dates, every order; the "
            "date and room filters match only orders with a time."
        ),
        parameters=[OrderFilterSerializer],
        responses={200: OrderPage, **problem_responses(400)},
    )
    def get(self, request: Request) -> Response:
        # A plain dict, not the QueryDict: DRF would take an empty value (?status=) for an absent one.
        query = _valid(OrderFilterSerializer, single_query_values(request, OrderFilterSerializer).dict())
        orders, more = _page(
            _filtered(request, query),
            after=query.get("cursor"),
            limit=query["limit"],
            with_unbooked=_with_unbooked(query),
        )
        next_link = _next_link(request, orders[-1]) if more else None
        return Response({"results": [order_representation(order) for order in orders], "next": next_link})

    @extend_schema(
        operation_id="order_book",
        summary="Book an exam",
        description=(
            "Held to the front desk's rules, with their messages: a time in the past, outside the "
            "room's hours, a room of another modality (422); a room already booked then (409, naming "
            "the order that holds it); the patient's other exam at an overlapping time (409: send again "
            "with confirm_patient_overlap true). Send an Idempotency-Key to retry safely."
        ),
        request=OrderBookingSerializer,
        parameters=[
            IDEMPOTENCY_KEY,
            location_header("The new order."),
            etag_header(201),
            replayed_header(201),
        ],
        responses={201: OrderSerializer, **problem_responses(400, 409, 422)},
    )
    @idempotent
    def post(self, request: Request) -> Response:
        booking = _valid(OrderBookingSerializer, request.data)
        order = services.order_book(
            user=request.user,
            # The account name of an API client is stable (its display name may change).
            placer_authority=request.user.get_username(),
            **booking,
        )
        return _answer(order, status=201, headers={"Location": order_url(order)})


class OrderDetail(ApiView):
    scopes = {"PATCH": Scope.BOOK}

    @extend_schema(
        operation_id="order_read",
        summary="An order",
        description="Reading it is recorded in the access log, as on the order page.",
        parameters=[ORDER_ID, ETAG],
        responses={200: OrderSerializer, **problem_responses(404)},
    )
    def get(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        access_record(request=request, action=AccessAction.ORDER_VIEWED, order=order)
        return _answer(order)

    @extend_schema(
        operation_id="order_update",
        summary="Change an order's details",
        description=(
            "The fields sent change; the others stay. Not once the order is completed or cancelled (422)."
        ),
        parameters=[ORDER_ID, IF_MATCH, ETAG],
        request=OrderDetailsChangeSerializer,
        responses={200: OrderSerializer, **problem_responses(400, 404, 412, 422)},
    )
    def patch(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        if_version = if_match_version(request)
        changes = _valid(OrderDetailsChangeSerializer, request.data, partial=True)
        order = services.order_update_details(
            order=order, user=request.user, if_version=if_version, **changes
        )
        return _answer(order)


class OrderReschedule(ApiView):
    scopes = {"POST": Scope.BOOK}

    @extend_schema(
        operation_id="order_reschedule",
        summary="Move an order to another time or room",
        description=(
            "The booking rules apply to the new time as to a booking (422, 409). The accession number "
            "and the study instance UID stay. A requested order, not yet booked, is booked with "
            "schedule instead (422 here)."
        ),
        parameters=[ORDER_ID, IF_MATCH, ETAG],
        request=OrderRescheduleSerializer,
        responses={200: OrderSerializer, **problem_responses(400, 404, 409, 412, 422)},
    )
    def post(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        if_version = if_match_version(request)
        move = _valid(OrderRescheduleSerializer, request.data)
        order = services.order_reschedule(order=order, user=request.user, if_version=if_version, **move)
        return _answer(order)


class OrderSchedule(ApiView):
    scopes = {"POST": Scope.BOOK}

    @extend_schema(
        operation_id="order_schedule",
        summary="Book a requested order",
        description=(
            "A requested order (status REQUESTED: the hospital system sent it without a time, or for a "
            "time when no room was free) is booked in `room` at `start`, as the front desk books it "
            "from the To schedule list: the booking rules apply as to a booking (422; 409 for a slot "
            "taken, naming the order that holds it, or for the patient's other exam at an overlapping "
            "time: send again with confirm_patient_overlap true). It becomes SCHEDULED with its "
            "accession number, study instance UID and placer number unchanged; its worklist item is "
            "written and the hospital system is told. Refused (422) for an order that is not "
            "requested: move a booked one with reschedule. Send an Idempotency-Key to retry safely."
        ),
        parameters=[ORDER_ID, IF_MATCH, IDEMPOTENCY_KEY, ETAG, replayed_header(200)],
        request=OrderScheduleSerializer,
        responses={200: OrderSerializer, **problem_responses(400, 404, 409, 412, 422)},
    )
    @idempotent
    def post(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        if_version = if_match_version(request)
        booking = _valid(OrderScheduleSerializer, request.data)
        order = services.order_schedule(order=order, user=request.user, if_version=if_version, **booking)
        return _answer(order)


class OrderCancel(ApiView):
    scopes = {"POST": Scope.BOOK}

    @extend_schema(
        operation_id="order_cancel",
        summary="Cancel an order",
        description="With a reason. Not once the exam has started (422).",
        parameters=[ORDER_ID, IF_MATCH, ETAG],
        request=OrderCancelSerializer,
        responses={200: OrderSerializer, **problem_responses(400, 404, 412, 422)},
    )
    def post(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        if_version = if_match_version(request)
        reason = _valid(OrderCancelSerializer, request.data)["reason"]
        order = services.order_cancel(order=order, reason=reason, user=request.user, if_version=if_version)
        return _answer(order)


class OrderStep(ApiView):
    """A step of the exam (arrived, started, completed): the technologist's buttons on the order page."""

    scopes = {"POST": Scope.WORKFLOW}
    step: Callable[..., Order]

    def post(self, request: Request, pk: int) -> Response:
        order = _order(pk)
        order = self.step(order=order, user=request.user, if_version=if_match_version(request))
        return _answer(order)


def _step_schema(operation_id: str, summary: str, description: str):
    return extend_schema_view(
        post=extend_schema(
            operation_id=operation_id,
            summary=summary,
            description=f"{description} Refused (422) from any other status.",
            parameters=[ORDER_ID, IF_MATCH, ETAG],
            request=None,
            responses={200: OrderSerializer, **problem_responses(400, 404, 412, 422)},
        )
    )


@_step_schema("order_arrive", "The patient has arrived", "From scheduled to arrived.")
class OrderArrive(OrderStep):
    step = staticmethod(services.order_arrive)


@_step_schema("order_start", "The exam has started", "From arrived to in progress.")
class OrderStart(OrderStep):
    step = staticmethod(services.order_start)


@_step_schema("order_complete", "The exam is complete", "From in progress to completed.")
class OrderComplete(OrderStep):
    step = staticmethod(services.order_complete)


@_step_schema(
    "order_no_show",
    "The patient did not come",
    "From scheduled, once the exam's booked end has passed (422 before): final, like a cancellation; the "
    "order leaves the worklist and waits on the front desk's To call back list to be booked again.",
)
class OrderNoShow(OrderStep):
    # The front desk's call, as cancelling is: the scope that books.
    scopes = {"POST": Scope.BOOK}
    step = staticmethod(services.order_no_show)


urlpatterns = [
    path("orders", OrderList.as_view(), name="order_list"),
    path("orders/<int:pk>", OrderDetail.as_view(), name="order_detail"),
    path("orders/<int:pk>/schedule", OrderSchedule.as_view(), name="order_schedule"),
    path("orders/<int:pk>/reschedule", OrderReschedule.as_view(), name="order_reschedule"),
    path("orders/<int:pk>/cancel", OrderCancel.as_view(), name="order_cancel"),
    path("orders/<int:pk>/arrive", OrderArrive.as_view(), name="order_arrive"),
    path("orders/<int:pk>/start", OrderStart.as_view(), name="order_start"),
    path("orders/<int:pk>/complete", OrderComplete.as_view(), name="order_complete"),
    path("orders/<int:pk>/no-show", OrderNoShow.as_view(), name="order_no_show"),
]
