"""The event feed: what changed since the last event a client saw, read from the order-event stream.

Every change of an order writes an OrderEvent in its own transaction (scheduling.events), and the ids
are allocated in commit order; so "the events after N", read again and again with N the last id seen,
gives every change once, in the order they happened, and never gains an older event after a client has
moved past it.
"""

from __future__ import annotations

from django.urls import path
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from scheduling.events import events_after
from scheduling.models import OrderEvent, OrderEventKind, OrderStatus

from .problems import order_reference
from .views import ApiView, problem_responses, single_query_values

LIMIT_DEFAULT = 100
LIMIT_MAX = 1000


class EventOrderSerializer(serializers.Serializer):
    """The order an event is about, as a problem document names one: read it at `url`."""

    id = serializers.IntegerField()
    accession_number = serializers.CharField()
    url = serializers.CharField(help_text="The order in this API (GET it for the order as it is now).")

    def to_representation(self, instance):
        return order_reference(instance)


class EventSerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=OrderEventKind.choices, help_text="What changed.")
    order = EventOrderSerializer()
    status = serializers.ChoiceField(choices=OrderStatus.choices, help_text="The order's status after it.")
    version = serializers.IntegerField(help_text="The order's version after it (its ETag).")
    actor = serializers.CharField(
        source="actor.username",
        allow_null=True,
        help_text="Who made the change: a user or an API client's account; null for the system.",
    )

    class Meta:
        model = OrderEvent
        fields = ["id", "kind", "order", "status", "version", "at", "actor"]


class EventFeedSerializer(serializers.Serializer):
    events = EventSerializer(many=True)
    next = serializers.CharField(
        help_text="The cursor to send as `after` next time: the last event's id, or `after` again when "
        "there was none."
    )
    more = serializers.BooleanField(
        help_text="True when more events are waiting: ask again at once. False: you are up to date."
    )


class EventQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(
        min_value=0,
        default=0,
        help_text="The cursor: the `next` of the last answer (the last event id seen); 0 from the first.",
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=LIMIT_MAX, default=LIMIT_DEFAULT, help_text="At most this many events."
    )
    order = serializers.IntegerField(
        min_value=1, max_value=2**63 - 1, required=False, help_text="Only the events of this order (its id)."
    )


def events_page(*, after: int, limit: int, order_id: int | None = None) -> tuple[list[OrderEvent], bool]:
    """The first `limit` events with an id above `after` (of one order if `order_id`), oldest first,
    and whether more follow them."""
    page = list(
        events_after(after, order_id=order_id)
        .select_related("order", "actor")
        .only("id", "kind", "status", "version", "at", "order__accession_number", "actor__username")[
            : limit + 1
        ]
    )
    return page[:limit], len(page) > limit


class EventList(ApiView):
    @extend_schema(
        summary="Order events since a cursor",
        description=(
            "Every change of every order, oldest first: requested (received from the hospital "
            "system without a time, to be booked), booked, rescheduled, details changed, "
            "arrived, started, completed, cancelled, discontinued at the modality, and a change of "
            "the patient, room or procedure an active order's worklist item carries. Start with "
            "`after=0` (or the id of the last event you stored); keep the `next` of each answer and "
            "send it as `after`. Ids follow the order in which the changes were committed, so this "
            "misses nothing and repeats nothing.\n\n"
            "`more: true`: ask again at once. `more: false`: you are up to date; poll again in a few "
            "seconds. There is no long-poll: the web server runs a few synchronous workers, and a "
            "request held open would take one from the front desk for as long as it waits. An "
            "answer with nothing new is one indexed query.\n\n"
            "An event says what changed and the order's status and version after it; GET the "
            "order's `url` for the rest."
        ),
        parameters=[EventQuerySerializer],
        responses={200: EventFeedSerializer, **problem_responses(400)},
    )
    def get(self, request: Request) -> Response:
        query = EventQuerySerializer(data=single_query_values(request, EventQuerySerializer))
        query.is_valid(raise_exception=True)
        after = query.validated_data["after"]
        events, more = events_page(
            after=after, limit=query.validated_data["limit"], order_id=query.validated_data.get("order")
        )
        feed = {
            "events": events,
            "next": str(events[-1].id if events else after),
            "more": more,
        }
        return Response(EventFeedSerializer(feed).data)


urlpatterns = [
    path("events", EventList.as_view(), name="event_list"),
]
