"""Shared front-desk PCs: the login ends with the browser and after RIS_IDLE_LOGOUT_MINUTES unused, and
no page with patient data is kept in the browser's cache."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from scheduling.roles import FRONT_DESK
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

BACKGROUND = {"HTTP_X_RIS_BACKGROUND": "1"}


@pytest.fixture
def clerk(db):
    return UserFactory(username="nok", roles=[FRONT_DESK])


@pytest.fixture
def clock():
    """A frozen clock the test moves on with clock.shift(minutes=...)."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:

        class Clock:
            def shift(self, **delta: float) -> None:
                traveller.shift(timedelta(**delta))

        yield Clock()


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def test_the_session_cookie_ends_with_the_browser(client, clerk):
    response = client.post(reverse("login"), {"username": "nok", "password": "pw-for-tests-1"})

    cookie = response.cookies["sessionid"]
    assert response.status_code == 302
    assert cookie["expires"] == "" and cookie["max-age"] == ""


def test_a_session_unused_for_half_an_hour_is_logged_out(client, clerk, clock):
    client.force_login(clerk)
    assert client.get(reverse("scheduling:patient_list")).status_code == 200

    clock.shift(minutes=31)
    response = client.get(reverse("scheduling:patient_list"))

    assert response.status_code == 302
    assert response.url == reverse("login") + "?next=" + reverse("scheduling:patient_list")
    assert not logged_in(client)
    page = client.get(response.url).content.decode()
    assert "You were logged out after 30 minutes without activity." in page


def test_a_clerk_at_work_stays_logged_in(client, clerk, clock):
    client.force_login(clerk)
    for _ in range(4):
        clock.shift(minutes=20)
        assert client.get(reverse("scheduling:patient_list")).status_code == 200

    assert logged_in(client)


def test_the_day_boards_refresh_does_not_keep_an_empty_desk_logged_in(client, clerk, clock):
    client.force_login(clerk)
    client.get(reverse("scheduling:schedule"))
    refresh = reverse("scheduling:schedule") + "?partial=1"

    for _ in range(10):
        clock.shift(minutes=3)
        assert client.get(refresh, **BACKGROUND).status_code == 200
    clock.shift(minutes=1)
    response = client.get(refresh, **BACKGROUND)

    assert response.status_code == 302 and reverse("login") in response.url
    assert not logged_in(client)


def test_idle_js_is_told_how_long_is_left(client, clerk, clock):
    client.force_login(clerk)
    page = client.get(reverse("scheduling:schedule")).content.decode()
    idle = reverse("session_idle")

    clock.shift(minutes=10)
    asked = client.get(idle, **BACKGROUND).json()
    clock.shift(minutes=1)
    reported = client.get(idle).json()  # a key press: activity
    clock.shift(minutes=1)
    after = client.get(idle, **BACKGROUND).json()

    assert 'data-idle-logout-seconds="1800"' in page and "ris/idle.js" in page
    assert asked == {"remaining": 20 * 60}
    assert reported == {"remaining": 30 * 60}
    assert after == {"remaining": 29 * 60}


def test_the_idle_time_is_a_setting(client, clerk, clock, settings):
    settings.RIS_IDLE_LOGOUT_MINUTES = 5
    client.force_login(clerk)
    client.get(reverse("scheduling:patient_list"))

    clock.shift(minutes=4)
    assert client.get(reverse("scheduling:patient_list")).status_code == 200
    clock.shift(minutes=6)
    assert client.get(reverse("scheduling:patient_list")).status_code == 302


@pytest.fixture
def exported_order(settings, tmp_path, patient, procedure, room, tomorrow_at):
    from worklist_export.services import order_sync_worklist

    settings.WORKLIST_DIR = str(tmp_path / "worklists")
    order = OrderFactory(patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9))
    order_sync_worklist(order_id=order.pk)
    return order


def test_nothing_a_logged_in_user_is_shown_is_stored_by_the_browser(
    client, clerk, exported_order, patient, procedure, room
):
    client.force_login(clerk)
    day = exported_order.scheduled_start.date().isoformat()
    urls = [
        reverse("scheduling:schedule"),
        reverse("scheduling:patient_list"),
        reverse("scheduling:patient_detail", args=[patient.pk]),
        reverse("scheduling:patient_autocomplete") + "?q=Jaidee",
        reverse("scheduling:order_detail", args=[exported_order.pk]),
        reverse("scheduling:order_slip", args=[exported_order.pk]),
        reverse("scheduling:slots") + f"?room={room.pk}&date={day}&procedure={procedure.pk}",
        reverse("worklist_export:order_file", args=[exported_order.pk]),
        reverse("worklist_export:order_dump", args=[exported_order.pk]),
        reverse("admin:scheduling_patient_change", args=[patient.pk]),
    ]
    clerk.is_staff = clerk.is_superuser = True
    clerk.save()

    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert "no-store" in response["Cache-Control"], url
