from datetime import datetime, time, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.utils import timezone

from scheduling.models import Order, OrderStatus, Patient, Procedure, Room
from scheduling.roles import DEPARTMENT_LEAD, FRONT_DESK, TECHNOLOGIST, user_roles
from scheduling.selectors import day_bounds
from worklist_export.models import WorklistEntry

pytestmark = pytest.mark.django_db


def counts():
    return (Room.objects.count(), Procedure.objects.count(), Patient.objects.count(), Order.objects.count())


@pytest.fixture
def ten_am():
    moment = timezone.make_aware(datetime.combine(timezone.localdate(), time(10)))
    with time_machine.travel(moment, tick=False):
        yield moment


def test_it_seeds_and_running_twice_changes_nothing(ten_am):
    call_command("seed_demo", force=True)
    first = counts()
    call_command("seed_demo", force=True)

    assert counts() == first
    assert first[:3] == (4, 20, 10)


def test_it_books_today_and_tomorrow_in_the_future_only(ten_am):
    call_command("seed_demo", force=True)

    today = timezone.localdate()
    todays = Order.objects.filter(scheduled_start__range=day_bounds(today))
    tomorrows = Order.objects.filter(scheduled_start__range=day_bounds(today + timedelta(days=1)))
    assert todays.exists() and tomorrows.exists()
    assert all(order.scheduled_start >= ten_am for order in todays)
    assert Room.objects.get(ae_title="DX01").worklist_charset == "ISO_IR 100"
    assert Patient.objects.filter(family_name="ใจดี", romanized_family_name="Jaidee").exists()


def test_it_creates_the_demo_users_with_the_given_password(ten_am, capsys):
    call_command("seed_demo", force=True, password="another-pass-1")

    User = get_user_model()
    admin, frontdesk = User.objects.get(username="admin"), User.objects.get(username="frontdesk")
    tech = User.objects.get(username="tech")
    assert admin.is_superuser and admin.check_password("another-pass-1")
    assert (
        not frontdesk.is_staff and not frontdesk.is_superuser and frontdesk.check_password("another-pass-1")
    )
    assert user_roles(frontdesk) == {FRONT_DESK}
    assert not tech.is_staff and user_roles(tech) == {TECHNOLOGIST} and tech.check_password("another-pass-1")
    lead = User.objects.get(username="lead")
    assert user_roles(lead) == {DEPARTMENT_LEAD} and lead.check_password("another-pass-1")
    assert "another-pass-1" in capsys.readouterr().out


def test_it_leaves_four_weeks_of_past_exams_for_the_reports(ten_am):
    call_command("seed_demo", force=True)

    today = timezone.localdate()
    past = Order.objects.filter(scheduled_start__lt=day_bounds(today)[0])
    assert past.filter(scheduled_start__lt=day_bounds(today - timedelta(days=28))[0]).count() == 0
    assert past.filter(scheduled_start__gte=day_bounds(today - timedelta(days=28))[0]).count() > 100
    assert {o.status for o in past} == {OrderStatus.COMPLETED, OrderStatus.CANCELLED, OrderStatus.NO_SHOW}
    for order in past.filter(status=OrderStatus.COMPLETED):
        assert (
            order.arrived_at
            and order.started_at >= order.arrived_at
            and order.completed_at > order.started_at
        )
    # None of the past is on a worklist, and the Reports page has numbers to draw.
    assert not WorklistEntry.objects.filter(order__in=past).exists()
    from reports import selectors
    from reports.selectors import Filters

    week = selectors.daily_outcomes(Filters(today - timedelta(days=7), today - timedelta(days=1)))
    assert week.totals["completed"] > 0 and week.totals["open"] == 0
    # Each modality's queue has its own length: MR waits longest, X-ray is mostly the same day.
    wait = selectors.waiting(Filters(today - timedelta(days=28), today - timedelta(days=1))).per_modality
    assert wait["MR"]["p50"] > wait["CT"]["p50"] > wait["US"]["p50"] > wait["DX"]["p50"]


def test_it_refuses_to_run_without_debug(settings):
    settings.DEBUG = False

    with pytest.raises(CommandError, match="only runs with DJANGO_DEBUG on"):
        call_command("seed_demo")
    assert not Room.objects.exists()
