"""No-shows: a scheduled exam whose time has passed without the patient, marked by a clerk or at the end of
the day; final, off the worklist, on the To call back list until someone calls the patient back."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date, datetime, time, timedelta
from io import StringIO

import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone, translation

from scheduling import rules, selectors, services
from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus
from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from scheduling.tasks import mark_no_shows
from tests.factories import OrderFactory, PatientFactory, RoomFactory, UserFactory
from tests.scheduling.test_admin import change_data

pytestmark = pytest.mark.django_db


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(day, time(hour, minute)))


TODAY = date(2026, 12, 3)


@pytest.fixture
def clinic_day():
    """The clock at 15:00 clinic time on TODAY: the morning's exams are over, the evening's to come."""
    with time_machine.travel(at(TODAY, 15), tick=False):
        yield


def missed(hour: int = 9, minute: int = 0, day: date = TODAY, **fields) -> Order:
    """A scheduled order of `day` at `hour` (30 minutes), written straight to the database."""
    return OrderFactory(**{"scheduled_start": at(day, hour, minute), **fields})


def order_in(status: str, **fields) -> Order:
    if status == OrderStatus.CANCELLED:
        fields["cancel_reason"] = "Patient ill"
    if status == OrderStatus.REQUESTED:
        fields.update(room=None, scheduled_start=None, scheduled_end=None)
    return missed(status=status, **fields)


# --- the rule -------------------------------------------------------------------------------------


def test_it_refuses_a_no_show_while_the_exam_is_still_booked(clinic_day, user):
    order = missed(hour=14, minute=45)

    with pytest.raises(ValidationError) as refused:
        services.order_no_show(order=order, user=user)

    assert refused.value.error_list[0].code == "not_yet_due"
    assert "15:15" in refused.value.messages[0]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED and not order.events.exists()


def test_it_takes_a_no_show_from_the_exams_end_on(user):
    order = missed(hour=9)
    with time_machine.travel(at(TODAY, 9, 29), tick=False):
        assert not rules.no_show_due(order)
    with time_machine.travel(at(TODAY, 9, 30), tick=False):
        assert rules.no_show_due(order)
        assert services.order_no_show(order=order, user=user).status == OrderStatus.NO_SHOW


@pytest.mark.parametrize(
    "status",
    [
        OrderStatus.REQUESTED,
        OrderStatus.ARRIVED,
        OrderStatus.IN_PROGRESS,
        OrderStatus.COMPLETED,
        OrderStatus.CANCELLED,
        OrderStatus.NO_SHOW,
    ],
)
def test_only_a_scheduled_order_can_be_a_no_show(clinic_day, user, status):
    order = order_in(status)

    with pytest.raises(ValidationError) as refused:
        services.order_no_show(order=order, user=user)

    assert refused.value.error_list[0].code == "illegal_transition"
    order.refresh_from_db()
    assert order.status == status


def test_a_no_show_is_final(clinic_day, user):
    order = services.order_no_show(order=missed(), user=user)

    for step in (services.order_arrive, services.order_cancel):
        with pytest.raises(ValidationError):
            step(order=order, user=user, **({"reason": "x"} if step is services.order_cancel else {}))
    assert rules.check_reschedulable(order) and rules.check_editable(order=order)


# --- the service and its event --------------------------------------------------------------------


def test_it_records_the_no_show_with_its_event(clinic_day, user):
    order = missed()

    order = services.order_no_show(order=order, user=user, if_version=order.version)

    order.refresh_from_db()
    assert order.status == OrderStatus.NO_SHOW and order.version == 2
    [event] = OrderEvent.objects.filter(order=order)
    assert (event.kind, event.status, event.version, event.actor_id) == (
        OrderEventKind.NO_SHOW,
        OrderStatus.NO_SHOW,
        2,
        user.pk,
    )
    # The missed slot stays the order's: the room and day it is counted in.
    assert order.room_id and order.scheduled_start == at(TODAY, 9)
    assert order.history.first().history_user == user


def test_a_stale_version_is_refused(clinic_day, user):
    order = missed()
    with pytest.raises(services.StaleVersion):
        services.order_no_show(order=order, user=user, if_version=order.version + 1)


def test_calling_back_takes_it_off_the_list_once(clinic_day, user):
    order = services.order_no_show(order=missed(), user=user)
    assert selectors.orders_to_call_back(limit=10).orders == [order]

    services.order_called_back(order=order, user=user)
    first = Order.objects.get(pk=order.pk).called_back_at
    with time_machine.travel(at(TODAY, 16), tick=False):
        services.order_called_back(order=order, user=UserFactory())

    order.refresh_from_db()
    assert order.called_back_at == first == at(TODAY, 15) and order.called_back_by == user
    assert selectors.orders_to_call_back(limit=10).orders == []
    # Not an event: nothing the worklist, the API's feed or the HIS follows changed.
    assert list(order.events.values_list("kind", flat=True)) == [OrderEventKind.NO_SHOW]


def test_only_a_no_show_is_called_back(user):
    with pytest.raises(ValidationError) as refused:
        services.order_called_back(order=missed(), user=user)
    assert refused.value.error_list[0].code == "not_no_show"


# --- the end of the day ---------------------------------------------------------------------------


@pytest.fixture
def day_of_orders(user):
    """Today's exams in every state the end-of-day run meets, and one of yesterday and of tomorrow."""
    return {
        "missed": missed(hour=9),
        "missed_too": missed(hour=13),
        "later": missed(hour=17),  # still to come at 15:00
        "running": missed(hour=14, minute=45),
        "arrived": order_in(OrderStatus.ARRIVED, scheduled_start=at(TODAY, 10)),
        "cancelled": order_in(OrderStatus.CANCELLED, scheduled_start=at(TODAY, 11)),
        "yesterday": missed(hour=9, day=TODAY - timedelta(days=1)),
        "tomorrow": missed(hour=9, day=TODAY + timedelta(days=1)),
    }


def statuses(orders: dict[str, Order]) -> dict[str, str]:
    return {name: Order.objects.get(pk=o.pk).status for name, o in orders.items()}


def test_the_end_of_day_run_marks_todays_passed_exams_only_and_twice_nothing(clinic_day, day_of_orders):
    system = services.no_show_user()

    marked = services.orders_mark_no_shows(day=TODAY, user=system)

    assert {o.pk for o in marked} == {day_of_orders["missed"].pk, day_of_orders["missed_too"].pk}
    found = statuses(day_of_orders)
    assert found["missed"] == found["missed_too"] == OrderStatus.NO_SHOW
    assert {name for name, status in found.items() if status == OrderStatus.NO_SHOW} == {
        "missed",
        "missed_too",
    }
    assert OrderEvent.objects.filter(kind=OrderEventKind.NO_SHOW, actor=system).count() == 2
    assert not system.has_usable_password()
    # Idempotent: a second run (a retry, a second beat) marks nothing and writes no event.
    assert services.orders_mark_no_shows(day=TODAY, user=system) == []
    assert OrderEvent.objects.filter(kind=OrderEventKind.NO_SHOW).count() == 2


def test_an_order_arrived_between_the_query_and_its_turn_is_left_alone(clinic_day, user, monkeypatch):
    first, second = missed(hour=9), missed(hour=10)
    real = services.order_no_show

    def arrive_the_second_first(*, order, user, if_version=None):
        if order.pk == first.pk:
            Order.objects.filter(pk=second.pk).update(status=OrderStatus.ARRIVED)
        return real(order=order, user=user, if_version=if_version)

    monkeypatch.setattr(services, "order_no_show", arrive_the_second_first)

    marked = services.orders_mark_no_shows(day=TODAY, user=user)

    assert [o.pk for o in marked] == [first.pk]
    assert Order.objects.get(pk=second.pk).status == OrderStatus.ARRIVED


def test_the_task_marks_today_when_the_setting_is_on(settings, clinic_day, day_of_orders):
    settings.NO_SHOW_AT_END_OF_DAY = True
    assert mark_no_shows.delay().get() == 2
    assert mark_no_shows.delay().get() == 0


def test_the_task_does_nothing_when_the_setting_is_off(settings, clinic_day, day_of_orders):
    settings.NO_SHOW_AT_END_OF_DAY = False
    assert mark_no_shows() == 0
    assert not Order.objects.filter(status=OrderStatus.NO_SHOW).exists()


def test_the_command_marks_the_day_whatever_the_setting(settings, clinic_day, day_of_orders):
    settings.NO_SHOW_AT_END_OF_DAY = False
    out = StringIO()

    call_command("mark_no_shows", stdout=out)

    assert f"{day_of_orders['missed'].accession_number} no show" in out.getvalue()
    assert "2 marked no show on 2026-12-03" in out.getvalue()
    out = StringIO()
    call_command("mark_no_shows", stdout=out)
    assert "0 marked no show" in out.getvalue()


def test_the_command_takes_an_earlier_day(clinic_day, day_of_orders):
    out = StringIO()
    call_command("mark_no_shows", "--date", "2026-12-02", stdout=out)
    assert Order.objects.get(pk=day_of_orders["yesterday"].pk).status == OrderStatus.NO_SHOW
    assert Order.objects.get(pk=day_of_orders["missed"].pk).status == OrderStatus.SCHEDULED

    with pytest.raises(CommandError):
        call_command("mark_no_shows", "--date", "2/12/2026")


def _settings_in_a_fresh_process(**env: str) -> subprocess.CompletedProcess:
    code = (
        "import django; from django.conf import settings; django.setup();"
        "entry = settings.CELERY_BEAT_SCHEDULE.get('mark-no-shows');"
        "print(entry and (entry['task'], sorted(entry['schedule'].hour), sorted(entry['schedule'].minute)))"
    )
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ris.settings",
        "DJANGO_DEBUG": "1",
        "RIS_IGNORE_DOTENV": "1",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=django_settings.BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_setting_puts_the_run_in_beat_at_its_time():
    on = _settings_in_a_fresh_process(NO_SHOW_AT_END_OF_DAY="1", NO_SHOW_END_OF_DAY_TIME="19:30")
    off = _settings_in_a_fresh_process(NO_SHOW_AT_END_OF_DAY="0")
    wrong = _settings_in_a_fresh_process(NO_SHOW_AT_END_OF_DAY="1", NO_SHOW_END_OF_DAY_TIME="7pm")

    assert on.stdout.strip().splitlines()[-1] == "('scheduling.tasks.mark_no_shows', [19], [30])", on.stderr
    assert off.stdout.strip().splitlines()[-1] == "None", off.stderr
    assert wrong.returncode != 0 and "NO_SHOW_END_OF_DAY_TIME must be HH:MM" in wrong.stderr


# --- the pages ------------------------------------------------------------------------------------


def test_the_order_page_offers_no_show_to_the_front_desk_once_the_time_has_passed(client, clinic_day):
    past, running = missed(hour=9), missed(hour=14, minute=45)
    url = reverse("scheduling:order_no_show", args=[past.pk])
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    assert url in client.get(past.get_absolute_url()).content.decode()
    running_url = reverse("scheduling:order_no_show", args=[running.pk])
    assert running_url not in client.get(running.get_absolute_url()).content.decode()

    client.force_login(UserFactory(roles=[TECHNOLOGIST]))
    assert url not in client.get(past.get_absolute_url()).content.decode()


def test_the_clerk_marks_a_no_show_from_the_order_page(client, clinic_day):
    order = missed()
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    response = client.post(reverse("scheduling:order_no_show", args=[order.pk]), follow=True)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.NO_SHOW
    page = response.content.decode()
    assert "marked a no-show" in page and "No show" in page


def test_a_technologist_may_not_mark_a_no_show(client, clinic_day):
    order = missed()
    client.force_login(UserFactory(roles=[TECHNOLOGIST]))

    assert client.post(reverse("scheduling:order_no_show", args=[order.pk])).status_code == 403
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SCHEDULED


def test_marking_too_early_says_why(client, clinic_day):
    order = missed(hour=14, minute=45)
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    response = client.post(reverse("scheduling:order_no_show", args=[order.pk]), follow=True)

    assert "once that time has passed" in response.content.decode()
    assert Order.objects.get(pk=order.pk).status == OrderStatus.SCHEDULED


@pytest.fixture
def no_shows(clinic_day, user):
    """Three no-shows: two yesterday in two rooms, one this morning, for patients with phones."""
    ct, mr = RoomFactory(name="CT 1", ae_title="CT01"), RoomFactory(name="MR 1", ae_title="MR01")
    yesterday = TODAY - timedelta(days=1)
    made = [
        missed(hour=9, day=yesterday, room=ct, patient=PatientFactory(phone="0811111111")),
        missed(hour=10, day=yesterday, room=mr, patient=PatientFactory(phone="0822222222")),
        missed(hour=9, room=ct, patient=PatientFactory(phone="0833333333")),
    ]
    with time_machine.travel(at(TODAY, 15), tick=False):
        return [services.order_no_show(order=o, user=user) for o in made]


def test_the_to_call_back_list_shows_who_to_call_latest_first(client, no_shows):
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    page = client.get(reverse("scheduling:to_call_back")).content.decode()

    positions = [page.index(o.accession_number) for o in reversed(no_shows)]
    assert positions == sorted(positions)
    latest = no_shows[2]
    for shown in (latest.patient.display_name, "0833333333", latest.procedure.code_meaning, "CT 1"):
        assert shown in page
    rebook = (
        f"{reverse('scheduling:order_create')}?patient={latest.patient_id}&amp;procedure={latest.procedure_id}"
        f"&amp;room={latest.room_id}&amp;rebook={latest.pk}"
    )
    assert rebook in page


def test_the_list_is_the_front_desks(client, no_shows):
    client.force_login(UserFactory(roles=[TECHNOLOGIST]))
    assert client.get(reverse("scheduling:to_call_back")).status_code == 403


def test_the_list_pages_by_cursor(client, no_shows, monkeypatch):
    from scheduling import views

    monkeypatch.setattr(views, "TO_CALL_BACK_PER_PAGE", 2)
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    first = client.get(reverse("scheduling:to_call_back"))
    cursor = first.context["page"].next_cursor
    second = client.get(reverse("scheduling:to_call_back"), {"after": cursor})

    assert [o.pk for o in first.context["page"].orders] == [no_shows[2].pk, no_shows[1].pk]
    assert [o.pk for o in second.context["page"].orders] == [no_shows[0].pk]
    assert second.context["page"].next_cursor is None
    # An unreadable cursor starts from the top rather than failing.
    assert len(client.get(reverse("scheduling:to_call_back"), {"after": "x_y"}).context["page"].orders) == 2


def test_rebooking_from_the_list_books_the_patient_again_and_calls_the_no_show_back(client, no_shows):
    no_show = no_shows[2]
    client.force_login(UserFactory(roles=[FRONT_DESK]))
    query = (
        f"?patient={no_show.patient_id}&procedure={no_show.procedure_id}&room={no_show.room_id}"
        f"&rebook={no_show.pk}"
    )
    url = reverse("scheduling:order_create") + query

    form = client.get(url).context["form"]
    assert form["patient"].value() == str(no_show.patient_id)
    assert form["procedure"].value() == str(no_show.procedure_id)
    assert form["room"].value() == str(no_show.room_id)

    tomorrow = TODAY + timedelta(days=1)
    response = client.post(
        url,
        {
            "patient": no_show.patient_id,
            "procedure": no_show.procedure_id,
            "room": no_show.room_id,
            "date": tomorrow.isoformat(),
            "slot": "10:00",
            "duration_minutes": 30,
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 302, response.context["form"].errors
    new = Order.objects.exclude(pk__in=[o.pk for o in no_shows]).get()
    assert new.patient_id == no_show.patient_id and new.status == OrderStatus.SCHEDULED
    assert new.scheduled_start == at(tomorrow, 10)
    no_show.refresh_from_db()
    assert no_show.status == OrderStatus.NO_SHOW and no_show.called_back_at is not None
    assert no_show.pk not in [o.pk for o in selectors.orders_to_call_back(limit=10).orders]


def test_a_rebooking_for_another_patient_leaves_the_no_show_on_the_list(client, no_shows):
    no_show, other = no_shows[2], no_shows[1]
    client.force_login(UserFactory(roles=[FRONT_DESK]))
    url = reverse("scheduling:order_create") + f"?rebook={no_show.pk}"

    response = client.post(
        url,
        {
            "patient": other.patient_id,
            "procedure": no_show.procedure_id,
            "room": no_show.room_id,
            "date": (TODAY + timedelta(days=1)).isoformat(),
            "slot": "10:00",
            "duration_minutes": 30,
            "priority": "ROUTINE",
        },
    )

    assert response.status_code == 302
    assert Order.objects.get(pk=no_show.pk).called_back_at is None


def test_called_back_takes_it_off_the_list(client, no_shows):
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    response = client.post(reverse("scheduling:order_called_back", args=[no_shows[0].pk]), follow=True)

    assert f"Order {no_shows[0].accession_number}: called back." in response.content.decode()
    assert [o.pk for o in response.context["page"].orders] == [no_shows[2].pk, no_shows[1].pk]
    assert Order.objects.get(pk=no_shows[0].pk).called_back_at is not None


def test_the_page_counts_no_shows_per_room_and_day(client, no_shows):
    called_back = no_shows[0]
    services.order_called_back(order=called_back, user=called_back.booked_by)  # still counted
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    response = client.get(reverse("scheduling:to_call_back"))

    counts = response.context["counts"]
    assert [room.name for room in counts.rooms] == ["CT 1", "MR 1"]
    assert counts.rows == [(TODAY - timedelta(days=1), [1, 1], 2), (TODAY, [1, 0], 1)]
    assert (counts.totals, counts.total) == ([2, 1], 3)
    assert 'id="no-show-counts"' in response.content.decode()


def test_counting_is_done_by_the_database(no_shows, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # the sums, then the rooms' names
        counts = selectors.no_show_counts(date_from=TODAY - timedelta(days=6), date_to=TODAY)
    assert counts.total == 3


def test_the_days_counted_are_a_chosen_range(client, no_shows):
    client.force_login(UserFactory(roles=[FRONT_DESK]))

    today_only = client.get(reverse("scheduling:to_call_back"), {"date_from": TODAY, "date_to": TODAY})
    backwards = client.get(
        reverse("scheduling:to_call_back"), {"date_from": TODAY, "date_to": TODAY - timedelta(days=1)}
    )

    assert today_only.context["counts"].rows == [(TODAY, [1], 1)]
    assert backwards.context["counts"] is None
    assert "The end date is before the start date." in backwards.content.decode()


def test_the_navigation_links_the_list_for_the_front_desk(client, clinic_day):
    client.force_login(UserFactory(roles=[FRONT_DESK]))
    assert reverse("scheduling:to_call_back") in client.get(reverse("scheduling:order_list")).content.decode()
    client.force_login(UserFactory(roles=[TECHNOLOGIST]))
    assert (
        reverse("scheduling:to_call_back")
        not in client.get(reverse("scheduling:order_list")).content.decode()
    )


# --- the admin ------------------------------------------------------------------------------------


def test_the_admin_holds_a_no_show_to_the_rule(admin_client, clinic_day):
    later, past = missed(hour=17), missed(hour=9)

    refused = admin_client.post(
        reverse("admin:scheduling_order_change", args=[later.pk]),
        change_data(later, TODAY, "17:00", status=OrderStatus.NO_SHOW),
    )
    taken = admin_client.post(
        reverse("admin:scheduling_order_change", args=[past.pk]),
        change_data(past, TODAY, "09:00", status=OrderStatus.NO_SHOW),
    )

    assert refused.status_code == 200 and "once that time has passed" in refused.content.decode()
    assert Order.objects.get(pk=later.pk).status == OrderStatus.SCHEDULED
    assert taken.status_code == 302
    assert Order.objects.get(pk=past.pk).status == OrderStatus.NO_SHOW
    assert past.events.get().kind == OrderEventKind.NO_SHOW


@pytest.fixture
def in_thai(client, user):
    client.force_login(user)
    client.cookies[django_settings.LANGUAGE_COOKIE_NAME] = "th"
    yield client
    # A request in Thai leaves Thai active in this thread; later tests expect the default language.
    translation.deactivate()


def test_the_list_speaks_thai_to_a_thai_clerk(in_thai, no_shows):
    from tests.scheduling.test_i18n import english_leftovers, visible_text

    html = in_thai.get(reverse("scheduling:to_call_back")).content.decode()

    assert '<html lang="th">' in html
    assert english_leftovers(visible_text(html)) == []


def test_the_no_show_button_speaks_thai(in_thai, clinic_day):
    html = in_thai.get(missed(hour=8).get_absolute_url()).content.decode()

    with translation.override("th"):
        assert translation.gettext("Mark as no-show") in html
    assert "Mark as no-show" not in html
