"""GET /api/v1/events: the order-event feed, followed with a cursor."""

from datetime import datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from scheduling import services
from scheduling.models import OrderEvent

pytestmark = pytest.mark.django_db

URL = "/api/v1/events"


def feed(caller, **params) -> dict:
    response = caller.get(URL, params)
    assert response.status_code == 200, response.content
    return response.json()


def follow(caller, *, after: str = "0", limit: int) -> tuple[list[dict], list[dict]]:
    """Every event after `after`, page by page as a client follows the feed: (events, pages)."""
    events, pages = [], []
    for _ in range(100):  # a feed that never says "more": false would loop forever
        page = feed(caller, after=after, limit=limit)
        pages.append(page)
        events += page["events"]
        assert page["next"] == (str(page["events"][-1]["id"]) if page["events"] else after)
        after = page["next"]
        if not page["more"]:
            return events, pages
    raise AssertionError(f"still more after 100 pages: {pages[-1]}")


def test_it_is_the_feed_of_the_url_name():
    assert reverse("api:event_list") == URL


def test_it_shows_a_booking_its_move_and_its_cancellation_in_order(
    reader, book, user, tomorrow_at, after_commit
):
    order = book()
    with after_commit():
        services.order_reschedule(order=order, start=tomorrow_at(14), user=user)
        services.order_cancel(order=order, reason="Patient unwell", user=user)

    page = feed(reader)

    assert [(e["kind"], e["status"], e["version"]) for e in page["events"]] == [
        ("booked", "SCHEDULED", 1),
        ("rescheduled", "SCHEDULED", 2),
        ("cancelled", "CANCELLED", 3),
    ]
    first = page["events"][0]
    assert first["order"] == {
        "id": order.pk,
        "accession_number": order.accession_number,
        "url": f"/api/v1/orders/{order.pk}",
    }
    assert first["actor"] == user.username
    assert datetime.fromisoformat(first["at"]) == OrderEvent.objects.get(id=first["id"]).at
    assert page["next"] == str(page["events"][-1]["id"])
    assert page["more"] is False


def test_paging_misses_nothing_and_repeats_nothing(reader, book, user, tomorrow_at, after_commit):
    orders = [book(start=tomorrow_at(hour)) for hour in (9, 10, 11)]
    with after_commit():
        for order in orders:
            services.order_reschedule(
                order=order, start=order.scheduled_start + timedelta(hours=4), user=user
            )
        services.order_arrive(order=orders[0], user=user)
    every = list(OrderEvent.objects.order_by("id").values_list("id", flat=True))
    assert len(every) == 7

    for limit in (1, 2, 3, 7, 100):
        events, pages = follow(reader, limit=limit)
        assert [e["id"] for e in events] == every, limit
        # Full pages, then the rest: no empty page at the end to learn that there was nothing more.
        assert [len(page["events"]) for page in pages] == [
            min(limit, len(every) - start) for start in range(0, len(every), limit)
        ]
        # "more" only while events are left: the page that ends the feed says so itself.
        assert [page["more"] for page in pages] == [True] * (len(pages) - 1) + [False]


def test_a_follower_gets_only_what_changed_since_its_cursor(reader, book, user, tomorrow_at, after_commit):
    order = book()
    cursor = feed(reader)["next"]

    assert feed(reader, after=cursor) == {"events": [], "next": cursor, "more": False}

    with after_commit():
        services.order_arrive(order=order, user=user)
    page = feed(reader, after=cursor)

    assert [(e["kind"], e["order"]["id"]) for e in page["events"]] == [("arrived", order.pk)]
    assert int(page["next"]) > int(cursor)


def test_it_filters_by_order(reader, book, user, tomorrow_at, after_commit):
    mine = book()
    other = book(start=tomorrow_at(11))
    with after_commit():
        services.order_arrive(order=other, user=user)
        services.order_arrive(order=mine, user=user)

    page = feed(reader, order=mine.pk)

    assert [(e["order"]["id"], e["kind"]) for e in page["events"]] == [
        (mine.pk, "booked"),
        (mine.pk, "arrived"),
    ]
    assert feed(reader, order=mine.pk, after=page["next"])["events"] == []


def test_a_change_by_the_system_has_no_actor(reader, book, room, after_commit):
    book()
    room.location = "Building B"
    with after_commit():
        services.room_save(room=room)

    last = feed(reader)["events"][-1]

    assert (last["kind"], last["actor"]) == ("room_changed", None)


def test_a_page_of_thirty_events_takes_the_queries_of_a_page_of_one(
    reader, book, user, tomorrow_at, after_commit
):
    order = book()
    feed(reader)  # a client's first call records when it was last used; the next ones do not
    with CaptureQueriesContext(connection) as one:
        feed(reader)
    with after_commit():
        for hour in range(10, 16):
            other = book(start=tomorrow_at(hour))
            for step in (services.order_arrive, services.order_start, services.order_complete):
                other = step(order=other, user=user)
            services.order_update_details(order=order, user=user, notes=f"Call at {hour}")

    with CaptureQueriesContext(connection) as thirty:
        page = feed(reader)

    assert len(page["events"]) > 30
    assert len(thirty) == len(one)


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"after": -1}, "after"),
        ({"after": "abc"}, "after"),
        ({"order": 0}, "order"),
    ],
)
def test_a_bad_parameter_is_a_400_problem_at_its_name(reader, params, field):
    response = reader.get(URL, params)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]


def test_the_read_scope_suffices_and_is_needed(make_caller, book):
    book()

    assert make_caller(scopes=["read"]).get(URL).status_code == 200
    refused = make_caller(scopes=["book"]).get(URL)

    assert refused.status_code == 403
    assert "read" in refused.json()["detail"]


def test_it_needs_a_token(client):
    assert client.get(URL).status_code == 401
