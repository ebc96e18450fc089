"""The catalog (procedures), the rooms and their free slots, read-only: what a client books with.

The free slots are the booking page's (selectors.room_free_slots): a client is offered exactly the
times a clerk is offered for the same room, day and duration.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import prefetch_related_objects
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from scheduling import selectors
from scheduling.models import Modality, Order, Procedure, Room
from scheduling.validators import validate_calendar_date, validate_duration

from .views import ApiView, problem_responses, single_query_values


class ProcedureSerializer(serializers.ModelSerializer):
    class Meta:
        model = Procedure
        fields = [
            "id",
            "code_value",
            "coding_scheme",
            "code_meaning",
            "modality",
            "default_duration",
            "body_part",
            "instructions_th",
            "instructions_en",
            # Before the two languages: the text in the request's language (Accept-Language), else the other.
            "preparation",
            "active",
        ]


class RoomSerializer(serializers.ModelSerializer):
    class Meta:
        model = Room
        fields = ["id", "name", "modality", "ae_title", "station_name", "location", "active"]


class ProcedureList(ApiView):
    @extend_schema(
        responses={200: ProcedureSerializer(many=True), **problem_responses()},
        summary="The procedure catalog",
    )
    def get(self, request):
        procedures = Procedure.objects.order_by("modality", "code_meaning", "id")
        return Response(ProcedureSerializer(procedures, many=True).data)


class RoomList(ApiView):
    @extend_schema(
        responses={200: RoomSerializer(many=True), **problem_responses()},
        summary="The rooms (scheduled stations)",
    )
    def get(self, request):
        return Response(RoomSerializer(Room.objects.order_by("name"), many=True).data)


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": 720})
class DurationField(serializers.IntegerField):
    """Minutes of an exam, refused outside the catalog's bounds in its words (validate_duration).

    The schema states the same bounds, so a client (and schemathesis) knows them before asking.
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(validators=[validate_duration], **kwargs)


class SlotQuerySerializer(serializers.Serializer):
    date = serializers.DateField(
        input_formats=["iso-8601"], validators=[validate_calendar_date], help_text="YYYY-MM-DD."
    )
    room = serializers.PrimaryKeyRelatedField(
        queryset=Room.objects.all(), required=False, help_text="One room (give room or modality)."
    )
    modality = serializers.ChoiceField(
        choices=Modality.choices,
        required=False,
        help_text="Every active room of this modality, by name (give room or modality).",
    )
    procedure = serializers.PrimaryKeyRelatedField(
        queryset=Procedure.objects.all(),
        required=False,
        help_text="Slots long enough for its default duration, as the booking page offers them.",
    )
    duration_minutes = DurationField(
        required=False,
        help_text="Slots of this length (before the order's or the procedure's).",
    )
    order = serializers.PrimaryKeyRelatedField(
        queryset=Order.objects.all(),
        required=False,
        help_text="An order to reschedule: its own time counts as free, and its duration sizes the slots.",
    )

    def validate(self, attrs: dict) -> dict:
        if ("room" in attrs) == ("modality" in attrs):
            raise serializers.ValidationError(_("Give either a room or a modality."))
        if not any(name in attrs for name in ("procedure", "duration_minutes", "order")):
            raise serializers.ValidationError(
                _("Give a procedure, an order or duration_minutes: the slots are as long as the exam.")
            )
        return attrs

    def duration(self) -> int:
        """As the booking page sizes slots: the order being moved keeps its length, a new exam takes
        its procedure's default; a length given outright goes first."""
        data = self.validated_data
        if "duration_minutes" in data:
            return data["duration_minutes"]
        if "order" in data:
            return data["order"].duration_minutes
        return data["procedure"].default_duration

    def rooms(self) -> list[Room]:
        data = self.validated_data
        if "room" in data:
            rooms = [data["room"]]
        else:
            rooms = list(Room.objects.filter(modality=data["modality"], active=True).order_by("name", "pk"))
        # Opening hours read once for all the rooms, not once per room.
        prefetch_related_objects(rooms, "opening_hours")
        return rooms


class SlotRoomSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class SlotSerializer(serializers.Serializer):
    room = SlotRoomSerializer()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


class SlotListSerializer(serializers.Serializer):
    date = serializers.DateField()
    duration_minutes = serializers.IntegerField(help_text="The length the slots were sized for.")
    slots = SlotSerializer(many=True, help_text="By room (by name), then by start time.")


class SlotList(ApiView):
    @extend_schema(
        operation_id="slot_list",
        summary="Free slots of a room, or of a modality's rooms, on a day",
        description=(
            "The start times the booking page offers: from the room's opening, every RIS_SLOT_MINUTES, "
            "where the whole exam fits before closing and overlaps no order; times already past are left "
            "out. Book one with POST /api/v1/orders."
        ),
        parameters=[SlotQuerySerializer],
        responses={200: SlotListSerializer, **problem_responses(400)},
    )
    def get(self, request: Request) -> Response:
        query = SlotQuerySerializer(data=single_query_values(request, SlotQuerySerializer))
        query.is_valid(raise_exception=True)
        day, duration = query.validated_data["date"], query.duration()
        exclude = query.validated_data.get("order")
        slots = [
            {"room": room, "start": start, "end": start + timedelta(minutes=duration)}
            for room in query.rooms()
            for start in selectors.room_free_slots(
                room=room, day=day, duration_minutes=duration, exclude=exclude
            )
        ]
        answer = {"date": day, "duration_minutes": duration, "slots": slots}
        return Response(SlotListSerializer(answer).data)


urlpatterns = [
    path("procedures", ProcedureList.as_view(), name="procedure_list"),
    path("rooms", RoomList.as_view(), name="room_list"),
    path("slots", SlotList.as_view(), name="slot_list"),
]
