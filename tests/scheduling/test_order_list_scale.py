"""The order list and the admin's order list stay cheap however many orders there are: a default date
window, capped counts, a fixed number of queries at any page. PostgreSQL's plans are checked in
tests/realstack/test_scale_orders.py."""

from datetime import datetime, time, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from scheduling import selectors
from scheduling.admin import OrderAdmin
from scheduling.models import Order
from tests.factories import OrderFactory, PatientFactory

pytestmark = pytest.mark.django_db


def at(day, hour=9, minute=0):
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


def today():
    return timezone.localdate()


def listed(response) -> list[Order]:
    return list(response.context["page"])


@pytest.fixture
def history(room, user):
    """Orders a year ago, yesterday, today, in 30 days (the window's last day) and in 31 days."""
    days = [-365, -1, 0, 30, 31]
    return {
        d: OrderFactory(room=room, scheduled_start=at(today() + timedelta(days=d)), booked_by=user)
        for d in days
    }


def test_the_order_list_opens_on_today_and_the_next_30_days_and_says_so(clerk, history):
    response = clerk.get(reverse("scheduling:order_list"))

    assert listed(response) == [history[0], history[30]]
    assert "Showing today and the next 30 days" in response.content.decode()


def test_the_clerk_widens_the_window_with_dates(clerk, history):
    a_year_ago = (today() - timedelta(days=400)).isoformat()

    response = clerk.get(reverse("scheduling:order_list"), {"date_from": a_year_ago})

    assert listed(response) == [history[d] for d in (-365, -1, 0, 30, 31)]
    assert "Showing today" not in response.content.decode()
    response = clerk.get(
        reverse("scheduling:order_list"), {"date_to": (today() - timedelta(days=1)).isoformat()}
    )
    assert listed(response) == [history[-365], history[-1]]


@pytest.fixture
def sixty_orders(room, user):
    start = at(today() + timedelta(days=1), 8)
    return [
        OrderFactory(room=room, scheduled_start=start + timedelta(minutes=15 * i), booked_by=user)
        for i in range(60)
    ]


@pytest.mark.parametrize(
    "filters", [{}, {"status": "SCHEDULED"}, {"modality": "CT"}, {"sort": "-start"}], ids=str
)
def test_every_page_of_the_order_list_costs_the_same_queries(clerk, sixty_orders, room, filters):
    counts = []
    for page in ("1", "3"):
        with CaptureQueriesContext(connection) as queries:
            response = clerk.get(reverse("scheduling:order_list"), {**filters, "page": page})
        assert len(listed(response)) == (25 if page == "1" else 10)
        counts.append(len(queries))
    assert counts[0] == counts[1]
    with CaptureQueriesContext(connection) as queries:
        clerk.get(reverse("scheduling:order_list"), {**filters, "room": room.pk, "page": "2"})
    assert len(queries) == counts[0] + 1  # the room of the filter


def test_the_order_list_pages_in_start_order_without_gaps(clerk, sixty_orders):
    seen = []
    for page in ("1", "2", "3"):
        seen += listed(clerk.get(reverse("scheduling:order_list"), {"page": page}))
    assert seen == sixty_orders


def test_the_order_list_count_stops_at_the_cap_and_says_so(clerk, sixty_orders, monkeypatch):
    monkeypatch.setattr(selectors, "ORDER_LIST_COUNT_CAP", 50)

    response = clerk.get(reverse("scheduling:order_list"))

    assert response.context["page"].paginator.num_pages == 2
    assert "More than 50 orders match" in response.content.decode()
    assert listed(clerk.get(reverse("scheduling:order_list"), {"page": "2"})) == sixty_orders[25:50]


# --- the admin ------------------------------------------------------------------------------------


def changelist(admin_client, **params):
    return admin_client.get(reverse("admin:scheduling_order_changelist"), params)


def test_every_admin_page_costs_the_same_queries(admin_client, sixty_orders, monkeypatch):
    monkeypatch.setattr(OrderAdmin, "list_per_page", 10)
    counts = []
    for params in ({}, {"p": "2"}, {"p": "6"}):
        with CaptureQueriesContext(connection) as queries:
            response = changelist(admin_client, **params)
        assert len(response.context["cl"].result_list) == 10
        counts.append(len(queries))
    assert counts[0] == counts[1] == counts[2]


def test_the_admin_lists_the_latest_orders_first(admin_client, sixty_orders):
    assert list(changelist(admin_client).context["cl"].result_list) == sixty_orders[::-1]


def test_the_admin_finds_an_order_by_its_exact_accession_number(admin_client, sixty_orders):
    wanted = sixty_orders[7]

    found = changelist(admin_client, q=wanted.accession_number).context["cl"].result_list

    assert list(found) == [wanted]
    assert list(changelist(admin_client, q=wanted.accession_number[:-1]).context["cl"].result_list) == []


def test_the_admin_finds_the_orders_of_a_patient_by_name_or_mrn(admin_client, room, user):
    jaidee = PatientFactory(mrn="HN777001", family_name="Jaidee", given_name="Somchai")
    other = PatientFactory(mrn="HN888001", family_name="Wongsa", given_name="Malee")
    mine = [
        OrderFactory(patient=jaidee, room=room, booked_by=user, scheduled_start=at(today(), h))
        for h in (9, 10)
    ]
    OrderFactory(patient=other, room=room, booked_by=user, scheduled_start=at(today(), 11))

    for term in ("Jaidee", "jaid", "HN777", "HN777001"):
        assert set(changelist(admin_client, q=term).context["cl"].result_list) == set(mine), term


def test_the_admin_date_hierarchy_lists_every_year_between_the_first_and_last_order(admin_client, room, user):
    this_year = today().year
    for year in (this_year - 2, this_year):
        OrderFactory(room=room, booked_by=user, scheduled_start=at(today().replace(year=year, day=1)))

    html = changelist(admin_client).content.decode()

    for year in (this_year - 2, this_year - 1, this_year):
        assert f"scheduled_start__year={year}" in html
    month = changelist(admin_client, scheduled_start__year=this_year).content.decode()
    assert f"scheduled_start__month={today().month}" in month


def test_a_search_lists_without_the_date_drill_down_and_reads_no_span_of_its_orders(admin_client, room, user):
    jaidee = PatientFactory(mrn="HN777001", family_name="Jaidee", given_name="Somchai")
    OrderFactory(patient=jaidee, room=room, booked_by=user, scheduled_start=at(today(), 9))

    with CaptureQueriesContext(connection) as queries:
        html = changelist(admin_client, q="Jaidee").content.decode()

    # MIN/MAX of a search's orders read every one of them (0.36 s for "Smith" at two million orders).
    assert not [q["sql"] for q in queries if "MIN(" in q["sql"] and "patient_id" in q["sql"]]
    assert "scheduled_start__year=" not in html
    assert "HN777001" in html or "Jaidee" in html
    # Once the clerk picks a year the drill-down is back, with the search kept.
    drilled = changelist(admin_client, q="Jaidee", scheduled_start__year=today().year).content.decode()
    assert "scheduled_start__month=" in drilled
