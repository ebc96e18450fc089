"""Free slots: the times the booking page offers a clerk, for a room or across a modality's rooms."""

from datetime import datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import RoomFactory

pytestmark = pytest.mark.django_db

SLOTS = "/api/v1/slots"


def tomorrow() -> str:
    return (timezone.localdate() + timedelta(days=1)).isoformat()


def hhmm(slots: list[dict]) -> list[str]:
    return [f"{timezone.localtime(datetime.fromisoformat(s['start'])):%H:%M}" for s in slots]


def page_slots(clerk, **query) -> list[str]:
    """What the booking page offers: the free times it fetches when room, date or procedure change."""
    response = clerk.get(reverse("scheduling:slots"), query)
    assert response.status_code == 200
    return response.json()["slots"]


def test_it_offers_what_the_booking_page_offers_for_the_room_and_day(reader, clerk, order, room, procedure):
    query = {"room": room.pk, "date": tomorrow(), "procedure": procedure.pk}

    response = reader.get(SLOTS, query)

    assert response.status_code == 200
    offered = hhmm(response.json()["slots"])
    assert offered == page_slots(clerk, **query)
    assert offered[0] == "08:00" and offered[-1] == "16:30"
    assert "09:00" not in offered and "08:45" not in offered  # the order holds 09:00-09:30


def test_a_slot_has_its_room_and_its_start_and_end_in_the_clinics_time(reader, room, procedure):
    body = reader.get(SLOTS, {"room": room.pk, "date": tomorrow(), "procedure": procedure.pk}).json()

    first = body["slots"][0]
    assert body["date"] == tomorrow()
    assert body["duration_minutes"] == procedure.default_duration == 30
    assert first["room"] == {"id": room.pk, "name": "CT 1"}
    start, end = datetime.fromisoformat(first["start"]), datetime.fromisoformat(first["end"])
    assert start == timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), time(8)))
    assert start.utcoffset() == timezone.localtime().utcoffset()  # "+07:00" in Bangkok, not UTC
    assert end - start == timedelta(minutes=30)


def test_a_booked_slot_is_not_offered_any_more(reader, book, room, procedure, tomorrow_at):
    query = {"room": room.pk, "date": tomorrow(), "procedure": procedure.pk}
    assert "10:00" in hhmm(reader.get(SLOTS, query).json()["slots"])

    book(start=tomorrow_at(10))

    offered = hhmm(reader.get(SLOTS, query).json()["slots"])
    assert "10:00" not in offered and "09:45" not in offered and "10:15" not in offered
    assert "09:30" in offered and "10:30" in offered


def test_it_offers_the_free_times_of_every_active_room_of_the_modality_by_name(
    reader, clerk, book, room, procedure, tomorrow_at
):
    second = RoomFactory(name="CT 2", ae_title="CT02")
    RoomFactory(name="CT 0 (old)", ae_title="CTOLD", active=False)
    RoomFactory(name="MR 1", ae_title="MR01", modality="MR")
    book(start=tomorrow_at(9))

    response = reader.get(SLOTS, {"modality": "CT", "date": tomorrow(), "procedure": procedure.pk})

    slots = response.json()["slots"]
    assert [s["room"]["name"] for s in slots] == sorted([s["room"]["name"] for s in slots])
    assert {s["room"]["id"] for s in slots} == {room.pk, second.pk}
    for each in (room, second):
        mine = [s for s in slots if s["room"]["id"] == each.pk]
        assert hhmm(mine) == page_slots(clerk, room=each.pk, date=tomorrow(), procedure=procedure.pk)
    assert "09:00" not in hhmm([s for s in slots if s["room"]["id"] == room.pk])
    assert "09:00" in hhmm([s for s in slots if s["room"]["id"] == second.pk])


def test_the_slots_are_sized_by_duration_minutes_when_given(reader, room, procedure):
    query = {"room": room.pk, "date": tomorrow(), "procedure": procedure.pk, "duration_minutes": 90}

    body = reader.get(SLOTS, query).json()

    assert body["duration_minutes"] == 90
    assert hhmm(body["slots"])[-1] == "15:30"  # 15:30 + 90 minutes is closing time


def test_the_order_being_rescheduled_frees_its_own_time(reader, clerk, order, room):
    query = {"room": room.pk, "date": tomorrow(), "order": order.pk}

    offered = hhmm(reader.get(SLOTS, query).json()["slots"])

    assert "09:00" in offered
    assert offered == page_slots(clerk, **query, procedure=order.procedure.pk)


def test_a_closed_room_and_a_past_day_offer_nothing_as_on_the_page(reader, clerk, procedure):
    closed = RoomFactory(name="CT closed", ae_title="CTCLOSED", hours=[])
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    open_room = RoomFactory(name="CT open", ae_title="CTOPEN")

    for room_pk, day in [(closed.pk, tomorrow()), (open_room.pk, yesterday)]:
        query = {"room": room_pk, "date": day, "procedure": procedure.pk}
        assert reader.get(SLOTS, query).json()["slots"] == []
        assert page_slots(clerk, **query) == []


@pytest.mark.parametrize(
    "query, field",
    [
        ({"room": "ROOM", "procedure": "PROC"}, "date"),
        ({"room": "ROOM", "procedure": "PROC", "date": "soon"}, "date"),
        ({"room": "ROOM", "procedure": "PROC", "date": "0999-01-01"}, "date"),
        ({"room": 999999, "procedure": "PROC", "date": "TOMORROW"}, "room"),
        ({"modality": "XX", "procedure": "PROC", "date": "TOMORROW"}, "modality"),
        ({"room": "ROOM", "modality": "CT", "procedure": "PROC", "date": "TOMORROW"}, "non_field_errors"),
        ({"procedure": "PROC", "date": "TOMORROW"}, "non_field_errors"),
        ({"room": "ROOM", "date": "TOMORROW"}, "non_field_errors"),
        ({"room": "ROOM", "procedure": 999999, "date": "TOMORROW"}, "procedure"),
        ({"room": "ROOM", "duration_minutes": 0, "date": "TOMORROW"}, "duration_minutes"),
        ({"room": "ROOM", "order": 999999, "date": "TOMORROW"}, "order"),
    ],
)
def test_a_bad_query_is_a_400_naming_the_field(reader, room, procedure, query, field):
    stand_ins = {"ROOM": room.pk, "PROC": procedure.pk, "TOMORROW": tomorrow()}
    query = {name: stand_ins.get(value, value) for name, value in query.items()}

    response = reader.get(SLOTS, query)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert list(response.json()["errors"]) == [field]


def test_neither_room_nor_modality_says_to_give_one(reader, procedure):
    response = reader.get(SLOTS, {"date": tomorrow(), "procedure": procedure.pk})

    assert response.json()["errors"] == {"non_field_errors": ["Give either a room or a modality."]}


def test_a_duration_out_of_range_is_said_as_the_catalog_says_it(reader, room):
    response = reader.get(SLOTS, {"room": room.pk, "date": tomorrow(), "duration_minutes": 721})

    assert response.json()["errors"] == {"duration_minutes": ["Duration must be between 1 and 720 minutes."]}


def test_the_schema_states_the_duration_bounds_the_api_keeps(reader, client, room):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    [parameter] = [
        p for p in schema["paths"]["/api/v1/slots"]["get"]["parameters"] if p["name"] == "duration_minutes"
    ]
    low, high = parameter["schema"]["minimum"], parameter["schema"]["maximum"]

    for minutes, expected in [(low, 200), (high, 200), (low - 1, 400), (high + 1, 400)]:
        query = {"room": room.pk, "date": tomorrow(), "duration_minutes": minutes}
        assert reader.get(SLOTS, query).status_code == expected, minutes
