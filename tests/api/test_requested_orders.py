"""Requested orders in the API: sent by the hospital system without a room or time (HL7), read and
listed with nulls where the booking will go, and booked with POST /api/v1/orders/{id}/schedule."""

import base64
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from api.orders import OrderSerializer, order_representation
from scheduling import services
from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus
from tests.factories import OrderFactory, PatientFactory, RoomFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def problem_type(slug: str) -> str:
    return reverse("api:problem_type", args=[slug])


def url(name: str, order: Order) -> str:
    return reverse(f"api:{name}", args=[order.pk])


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.fixture
def requested(patient, procedure, user, tomorrow_at):
    """requested(**changes) -> an order as the hospital system sends it without a free room: REQUESTED,
    made by the service the HL7 link calls."""

    def make(**changes) -> Order:
        args = {"patient": patient, "procedure": procedure, "user": user, "requested_start": tomorrow_at(9)}
        args.update(changes)
        return services.order_request(**args)

    return make


def waiting(booked_at: datetime, **fields) -> Order:
    """A requested order written straight to the database, received at `booked_at` (for the list)."""
    return OrderFactory(
        status=OrderStatus.REQUESTED,
        room=None,
        scheduled_start=None,
        scheduled_end=None,
        booked_at=booked_at,
        **fields,
    )


# --- what a requested order looks like --------------------------------------------------------------


def test_a_requested_order_reads_with_no_room_or_time_and_the_time_asked_for(api, requested, tomorrow_at):
    order = requested(placer_order_number="HIS-1", placer_authority="HIS")

    response = api.get(url("order_detail", order))

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "REQUESTED"
    assert (body["room"], body["start"], body["end"]) == (None, None, None)
    assert datetime.fromisoformat(body["requested_start"]) == tomorrow_at(9)
    assert body["accession_number"] == order.accession_number != ""
    assert body == OrderSerializer(Order.objects.get(pk=order.pk)).data


def test_the_fast_representation_equals_the_serializer_for_a_requested_order(tomorrow_at):
    order = waiting(timezone.now(), requested_start=tomorrow_at(10))
    order = Order.objects.select_related("patient", "procedure", "room", "booked_by").get(pk=order.pk)

    assert order_representation(order) == OrderSerializer(order).data
    assert order_representation(order)["room"] is None


def test_a_requested_order_has_no_worklist_item(api, requested):
    order = requested()

    response = api.get(url("order_worklist_item", order))

    assert response.status_code == 404
    assert response.json()["type"] == problem_type("not-found")
    assert "status Requested" in response.json()["detail"]


def test_the_event_feed_says_an_order_was_requested(api, requested):
    order = requested()

    events = api.get("/api/v1/events", {"order": order.pk}).json()["events"]

    assert [(e["kind"], e["status"]) for e in events] == [("requested", "REQUESTED")]


# --- the list ---------------------------------------------------------------------------------------


def ids(api, link: str) -> tuple[list[int], int]:
    """Every order id the list gives from `link` on, following `next`; and the number of pages."""
    seen, pages = [], 0
    while link and pages < 20:  # a cursor that goes back would loop for ever
        response = api.get(link)
        assert response.status_code == 200, response.json()
        seen += [row["id"] for row in response.json()["results"]]
        link, pages = response.json()["next"], pages + 1
    return seen, pages


def test_the_list_gives_the_requested_orders_after_the_booked_ones_oldest_first(api, user, tomorrow_at):
    now = timezone.now()
    room = RoomFactory()
    timed = [OrderFactory(room=room, scheduled_start=tomorrow_at(h), booked_by=user) for h in (9, 10, 11)]
    # Two received in the same instant: the id splits the tie, across a page boundary.
    old, tied_a, tied_b = waiting(now - timedelta(hours=2)), waiting(now), waiting(now)
    newest = waiting(now + timedelta(minutes=1))

    seen, pages = ids(api, f"{ORDERS}?limit=2")

    assert seen == [*(o.pk for o in timed), old.pk, tied_a.pk, tied_b.pk, newest.pk]
    assert pages == 4


def test_status_requested_lists_them_alone_a_page_at_a_time(api, user, tomorrow_at):
    now = timezone.now()
    OrderFactory(scheduled_start=tomorrow_at(9), booked_by=user)
    orders = [waiting(now + timedelta(minutes=n)) for n in (3, 1, 2)]
    expected = [o.pk for o in sorted(orders, key=lambda o: o.booked_at)]

    seen, pages = ids(api, f"{ORDERS}?status=REQUESTED&limit=1")

    assert seen == expected
    assert pages == 3


def test_the_filters_of_a_time_or_room_leave_the_requested_orders_out(api, user, tomorrow_at):
    booked = OrderFactory(scheduled_start=tomorrow_at(9), booked_by=user)
    other_patient = PatientFactory()
    request = waiting(timezone.now(), patient=other_patient)
    tomorrow = timezone.localdate(tomorrow_at(9)).isoformat()

    def found(**query):
        return [row["id"] for row in api.get(ORDERS, query).json()["results"]]

    assert found(date_from=tomorrow) == [booked.pk]
    assert found(date_to=tomorrow) == [booked.pk]
    assert found(room=booked.room.pk) == [booked.pk]
    assert found(status="SCHEDULED") == [booked.pk]
    assert found(status="REQUESTED", date_from=tomorrow) == []
    assert found(patient=other_patient.pk) == [request.pk]
    assert found(accession_number=request.accession_number) == [request.pk]
    assert found(modality="CT") == [booked.pk, request.pk]


def test_a_request_cancelled_before_it_was_booked_is_listed_with_the_cancelled(api, user, tomorrow_at):
    now = timezone.now()
    booked = OrderFactory(
        scheduled_start=tomorrow_at(9), booked_by=user, status=OrderStatus.CANCELLED, cancel_reason="No show"
    )
    withdrawn = waiting(now, cancel_reason="Ordered twice")
    Order.objects.filter(pk=withdrawn.pk).update(status=OrderStatus.CANCELLED)
    still_waiting = waiting(now + timedelta(minutes=1))

    everything, _pages = ids(api, f"{ORDERS}?limit=1")
    cancelled, _pages = ids(api, f"{ORDERS}?status=CANCELLED&limit=1")
    requested, _pages = ids(api, f"{ORDERS}?status=REQUESTED")

    assert everything == [booked.pk, withdrawn.pk, still_waiting.pk]
    assert cancelled == [booked.pk, withdrawn.pk]
    assert requested == [still_waiting.pk]
    body = api.get(url("order_detail", withdrawn)).json()
    assert (body["status"], body["room"], body["start"]) == ("CANCELLED", None, None)


def test_a_booking_between_pages_neither_repeats_nor_skips_a_requested_order(api, user, tomorrow_at):
    now = timezone.now()
    first, second = waiting(now), waiting(now + timedelta(minutes=1))
    page = api.get(ORDERS, {"status": "REQUESTED", "limit": 1}).json()
    assert [row["id"] for row in page["results"]] == [first.pk]
    # A newer one arrives, an older-looking booked order is added: the cursor goes on from `first`.
    later = waiting(now + timedelta(minutes=2))
    OrderFactory(scheduled_start=tomorrow_at(8), booked_by=user)

    rest, _pages = ids(api, page["next"].replace("limit=1", "limit=10"))

    assert rest == [second.pk, later.pk]


@pytest.mark.parametrize(
    "cursor",
    [
        b64("unbooked|2026-03-02T02:00:00+07:00|1"),  # not in UTC
        b64("unbooked|2026-03-02T02:00:00+00:00|x"),
        b64("unbooked|not-a-time|1"),
        b64("requested|2026-03-02T02:00:00+00:00|1"),
        b64("unbooked|2026-03-02T02:00:00+00:00"),
    ],
)
def test_an_edited_cursor_of_the_run_without_a_time_is_a_400_at_cursor(api, cursor):
    response = api.get(ORDERS, {"cursor": cursor})

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["cursor"]


def test_a_page_of_requested_orders_takes_a_fixed_number_of_queries(api, user, django_assert_max_num_queries):
    now = timezone.now()
    for n in range(8):
        waiting(now + timedelta(minutes=n))

    # Authentication and the throttle, the (empty) run of booked orders, the requested ones' ids,
    # then the page's orders.
    with django_assert_max_num_queries(5):
        response = api.get(ORDERS, {"status": "REQUESTED", "limit": 5})

    assert len(response.json()["results"]) == 5


# --- booking it: POST /orders/{id}/schedule ---------------------------------------------------------


def test_it_books_a_requested_order_where_and_when_the_client_says(
    api, requested, room, tomorrow_at, worklist_dir, after_commit
):
    order = requested(placer_order_number="HIS-7", placer_authority="HIS")
    accession, uid = order.accession_number, order.study_instance_uid

    with after_commit():
        response = api.post(
            url("order_schedule", order),
            {"room": room.pk, "start": tomorrow_at(10).isoformat()},
            format="json",
        )

    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "SCHEDULED"
    assert body["room"]["id"] == room.pk
    assert datetime.fromisoformat(body["start"]) == tomorrow_at(10)
    assert datetime.fromisoformat(body["end"]) == tomorrow_at(10, 30)
    assert response["ETag"] == f'"{body["version"]}"'
    order.refresh_from_db()
    assert (order.status, order.room, order.scheduled_start) == (OrderStatus.SCHEDULED, room, tomorrow_at(10))
    assert (order.accession_number, order.study_instance_uid) == (accession, uid)
    assert order.placer_order_number == "HIS-7"
    assert OrderEvent.objects.filter(order=order).latest("id").kind == OrderEventKind.BOOKED
    # What a modality sees: the item is on the worklist now.
    assert (worklist_dir / f"{accession}.wl").is_file()


def test_it_takes_the_duration_given(api, requested, room, tomorrow_at):
    order = requested()

    response = api.post(
        url("order_schedule", order),
        {"room": room.pk, "start": tomorrow_at(10).isoformat(), "duration_minutes": 45},
        format="json",
    )

    assert response.status_code == 200, response.json()
    assert datetime.fromisoformat(response.json()["end"]) == tomorrow_at(10, 45)


def test_it_refuses_to_schedule_an_order_already_booked(api, order, room, tomorrow_at):
    response = api.post(
        url("order_schedule", order), {"room": room.pk, "start": tomorrow_at(14).isoformat()}, format="json"
    )

    assert response.status_code == 422
    assert response.json()["type"] == problem_type("refused")
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(9)


def test_it_refuses_a_time_in_the_past_at_start(api, requested, room):
    order = requested()
    yesterday = timezone.now() - timedelta(days=1)

    response = api.post(
        url("order_schedule", order), {"room": room.pk, "start": yesterday.isoformat()}, format="json"
    )

    assert response.status_code == 422
    assert list(response.json()["errors"]) == ["start"]
    order.refresh_from_db()
    assert (order.status, order.room) == (OrderStatus.REQUESTED, None)


def test_it_answers_a_taken_slot_with_409_naming_the_order_that_holds_it(
    api, requested, order, room, tomorrow_at
):
    waiting_order = requested(patient=PatientFactory())

    response = api.post(
        url("order_schedule", waiting_order),
        {"room": room.pk, "start": tomorrow_at(9, 15).isoformat()},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["type"] == problem_type("slot-taken")
    assert response.json()["order"]["id"] == order.pk
    waiting_order.refresh_from_db()
    assert waiting_order.status == OrderStatus.REQUESTED


def test_it_asks_to_confirm_the_patients_other_exam(api, requested, order, tomorrow_at):
    waiting_order = requested(patient=order.patient)
    ct2 = RoomFactory(name="CT 2", ae_title="CT02")
    booking = {"room": ct2.pk, "start": tomorrow_at(9).isoformat()}

    warned = api.post(url("order_schedule", waiting_order), booking, format="json")

    assert warned.status_code == 409
    assert warned.json()["confirm"] == "confirm_patient_overlap"
    confirmed = api.post(
        url("order_schedule", waiting_order), {**booking, "confirm_patient_overlap": True}, format="json"
    )
    assert confirmed.status_code == 200, confirmed.json()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"start": "2026-03-02T09:00:00"}, "room"),
        ({"room": 999_999, "start": "2026-03-02T09:00"}, "room"),
        ({}, "start"),
    ],
)
def test_it_refuses_a_missing_or_unknown_field_with_400_at_it(api, requested, room, body, field):
    order = requested()

    response = api.post(url("order_schedule", order), body, format="json")

    assert response.status_code == 400
    assert field in response.json()["errors"]


def test_it_refuses_a_stale_if_match_with_412_and_books_nothing(api, requested, room, tomorrow_at, user):
    order = requested()
    services.order_update_details(order=order, user=user, notes="Someone else's")

    response = api.post(
        url("order_schedule", order),
        {"room": room.pk, "start": tomorrow_at(10).isoformat()},
        format="json",
        HTTP_IF_MATCH='"1"',
    )

    assert response.status_code == 412
    assert response["ETag"] == '"2"'
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_a_retry_with_the_same_idempotency_key_books_once(api, requested, room, tomorrow_at):
    order = requested()
    body = {"room": room.pk, "start": tomorrow_at(10).isoformat()}

    first = api.post(url("order_schedule", order), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = api.post(url("order_schedule", order), body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert first.status_code == again.status_code == 200
    assert again["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert OrderEvent.objects.filter(order=order, kind=OrderEventKind.BOOKED).count() == 1


def test_a_reader_may_not_schedule(reader, requested, room, tomorrow_at):
    order = requested()

    response = reader.post(
        url("order_schedule", order), {"room": room.pk, "start": tomorrow_at(10).isoformat()}, format="json"
    )

    assert response.status_code == 403
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_an_unknown_order_is_a_404(api, room, tomorrow_at):
    response = api.post(
        "/api/v1/orders/999999/schedule",
        {"room": room.pk, "start": tomorrow_at(10).isoformat()},
        format="json",
    )

    assert response.status_code == 404


# --- the other changes of a requested order -----------------------------------------------------------


def test_rescheduling_a_requested_order_is_refused_not_a_server_error(api, requested, room, tomorrow_at):
    order = requested()

    without_room = api.post(
        url("order_reschedule", order), {"start": tomorrow_at(10).isoformat()}, format="json"
    )
    with_room = api.post(
        url("order_reschedule", order), {"start": tomorrow_at(10).isoformat(), "room": room.pk}, format="json"
    )

    assert (without_room.status_code, with_room.status_code) == (422, 422)
    order.refresh_from_db()
    assert (order.status, order.room) == (OrderStatus.REQUESTED, None)


def test_a_requested_orders_details_change(api, requested):
    order = requested()

    response = api.patch(url("order_detail", order), {"priority": "STAT"}, format="json")

    assert response.status_code == 200, response.json()
    assert (response.json()["priority"], response.json()["room"]) == ("STAT", None)


def test_a_requested_order_is_cancelled_with_a_reason(api, requested):
    order = requested()

    response = api.post(url("order_cancel", order), {"reason": "Ordered twice"}, format="json")

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "CANCELLED"


def test_a_requested_order_cannot_arrive(api, requested):
    order = requested()

    response = api.post(url("order_arrive", order))

    assert response.status_code == 422
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED
