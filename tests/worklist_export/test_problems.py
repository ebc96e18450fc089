"""The Worklist problems page: every order a scanner may be missing, with the error and a retry button."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling import services
from scheduling.models import Order
from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST
from tests.factories import UserFactory

PROBLEMS = reverse("worklist_export:problems")


@pytest.fixture
def clerk_client(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def broken_folder(worklist_dir, settings, tmp_path):
    """WORKLIST_DIR below a plain file, like a share that is not mounted: every write fails."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.WORKLIST_DIR = str(blocker / "worklists")
    return worklist_dir  # the good folder, to switch back to


def retry(client, order):
    return client.post(reverse("worklist_export:problem_retry", args=[order.pk]), follow=True)


def test_it_lists_an_order_whose_file_cannot_be_written_with_the_error(broken_folder, book, clerk_client):
    order = book()

    html = clerk_client.get(PROBLEMS).content.decode()

    assert order.get_absolute_url() in html
    assert "The worklist folder cannot be written" in html and "Not a directory" in html
    entry = Order.objects.get(pk=order.pk).worklist_entry
    assert entry.last_attempt_at is not None
    # The order page says so too.
    page = clerk_client.get(order.get_absolute_url()).content.decode()
    assert "alert-danger" in page and "The worklist folder cannot be written" in page


def test_retry_now_writes_the_file_once_the_folder_is_fixed(broken_folder, book, clerk_client, settings):
    order = book()
    response = retry(clerk_client, order)
    assert "still cannot be written" in response.content.decode()

    settings.WORKLIST_DIR = str(broken_folder)
    response = retry(clerk_client, order)

    assert response.redirect_chain[-1][0] == PROBLEMS
    html = response.content.decode()
    assert "the worklist is up to date" in html
    assert (broken_folder / f"{order.accession_number}.wl").exists()
    assert order.get_absolute_url() not in html
    assert "No problems" in html


def test_it_lists_an_order_pending_past_the_grace_period_only(
    worklist_dir, user, room, procedure, patient, tomorrow_at, clerk_client
):
    # Booked without running the on-commit task: as if the broker had lost it.
    late, fresh = (
        services.order_book(patient=patient, procedure=procedure, room=room, start=tomorrow_at(h), user=user)
        for h in (9, 11)
    )
    Order.objects.filter(pk=late.pk).update(updated_at=timezone.now() - timedelta(minutes=10))

    html = clerk_client.get(PROBLEMS).content.decode()

    assert late.get_absolute_url() in html and "export pending" in html
    assert fresh.get_absolute_url() not in html


def test_a_rescheduled_order_whose_task_was_lost_is_listed(
    worklist_dir, book, user, tomorrow_at, clerk_client, settings
):
    order = book()
    services.order_reschedule(order=order, start=tomorrow_at(14), user=user)  # task never runs
    settings.WORKLIST_PENDING_GRACE_SECONDS = 0

    assert order.get_absolute_url() in clerk_client.get(PROBLEMS).content.decode()


@pytest.mark.parametrize("role", [FRONT_DESK, ADMIN])
def test_it_offers_retry_to_the_front_desk_and_admin(broken_folder, book, client, role):
    order = book()
    client.force_login(UserFactory(username="x", roles=[role]))

    html = client.get(PROBLEMS).content.decode()

    assert reverse("worklist_export:problem_retry", args=[order.pk]) in html


def test_a_technologist_sees_the_list_but_cannot_retry(broken_folder, book, client):
    order = book()
    client.force_login(UserFactory(username="tech", roles=[TECHNOLOGIST]))

    html = client.get(PROBLEMS).content.decode()

    assert order.get_absolute_url() in html
    assert reverse("worklist_export:problem_retry", args=[order.pk]) not in html
    assert client.post(reverse("worklist_export:problem_retry", args=[order.pk])).status_code == 403


def test_retry_is_post_only(broken_folder, book, clerk_client):
    order = book()
    assert clerk_client.get(reverse("worklist_export:problem_retry", args=[order.pk])).status_code == 405


def test_it_needs_login(client):
    response = client.get(PROBLEMS)
    assert response.status_code == 302 and "login/?next=" in response.url


def test_the_navigation_links_to_it(clerk_client):
    html = clerk_client.get(reverse("scheduling:schedule")).content.decode()
    assert f'href="{PROBLEMS}"' in html


def test_the_rows_are_in_thai_for_a_thai_clerk(
    worklist_dir, user, room, procedure, tomorrow_at, clerk_client, settings
):
    from django.utils import translation

    from tests.factories import ThaiPatientFactory
    from tests.scheduling.test_i18n import english_leftovers, visible_text

    services.order_book(
        patient=ThaiPatientFactory(), procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )
    settings.WORKLIST_PENDING_GRACE_SECONDS = 0
    clerk_client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    try:
        html = clerk_client.get(PROBLEMS).content.decode()
    finally:
        translation.deactivate()

    assert "รอส่งออก" in html and "ลองใหม่ตอนนี้" in html
    # Room and procedure names of the factories are English data, not UI text.
    assert english_leftovers(visible_text(html).replace(room.name, "")) == []
