"""The day board ("/"): rooms side by side on a time grid built from their opening hours."""

from datetime import time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling.models import OrderStatus
from scheduling.selectors import day_board
from tests.factories import OrderFactory, PatientFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def test_the_grid_runs_from_the_earliest_opening_to_the_latest_closing(settings):
    settings.RIS_SLOT_MINUTES = 15
    RoomFactory(hours=[(tomorrow().weekday(), time(8), time(12))])
    RoomFactory(hours=[(tomorrow().weekday(), time(10), time(17, 30))])

    board = day_board(day=tomorrow())

    assert f"{board.start:%H:%M}" == "08:00"
    assert f"{board.end:%H:%M}" == "17:30"
    assert len(board.rows) == (17 * 60 + 30 - 8 * 60) // 15
    assert [(c.open_top, c.open_height) for c in board.columns] == [(0, 240), (120, 450)]


def test_a_block_is_placed_by_start_and_sized_by_duration(room, user, tomorrow_at):
    OrderFactory(room=room, scheduled_start=tomorrow_at(9, 30), duration_minutes=45, booked_by=user)

    (column,) = day_board(day=tomorrow()).columns
    (block,) = column.blocks

    assert (block.top, block.height) == (90, 45)


def test_a_closed_day_with_no_bookings_has_no_grid(user):
    RoomFactory(hours=[])

    board = day_board(day=tomorrow())

    assert board.rows == []
    assert len(board.columns) == 1


def test_the_board_shows_each_exam_with_patient_procedure_and_status(
    clerk, room, procedure, tomorrow_at, user
):
    patient = PatientFactory(family_name="ใจดี", given_name="สมชาย")
    order = OrderFactory(
        patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9), booked_by=user
    )

    response = clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat()})

    content = response.content.decode()
    assert 'style="top: 120px; height: 60px"' in content  # 09:00 is 60 min below 08:00, at 2 px a minute
    assert "สมชาย ใจดี" in content
    assert "CT Head without contrast" in content
    assert "bg-primary-subtle" in content
    assert f'data-pk="{order.pk}" data-actions="arrive cancel reschedule"' in content
    # The one menu template the blocks' menus are filled from (board.js) holds every action's form.
    for name in ("order_arrive", "order_start", "order_complete", "order_cancel"):
        assert f'action="{reverse(f"scheduling:{name}", args=[0])}"' in content


@pytest.mark.parametrize(
    "roles, offered",
    [
        (["front_desk"], "cancel reschedule"),
        (["technologist"], "arrive"),
        ([], ""),
    ],
)
def test_a_block_offers_only_what_the_users_role_may_do(client, room, tomorrow_at, user, roles, offered):
    from scheduling.roles import FRONT_DESK, TECHNOLOGIST

    names = {"front_desk": FRONT_DESK, "technologist": TECHNOLOGIST}
    client.force_login(UserFactory(roles=[names[r] for r in roles]))
    order = OrderFactory(room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    content = client.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat()}).content.decode()

    assert f'data-pk="{order.pk}" data-actions="{offered}"' in content


def test_an_exam_the_modality_gave_back_says_why_on_its_block(clerk, room, tomorrow_at, user):
    OrderFactory(
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
        status=OrderStatus.SCHEDULED,
        discontinue_reason="Patient claustrophobic",
    )

    content = clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat()}).content.decode()

    assert "Returned by the modality: Patient claustrophobic" in content


def test_the_board_escapes_what_clerks_typed(clerk, room, tomorrow_at, user):
    patient = PatientFactory(family_name="<script>x</script>")
    OrderFactory(patient=patient, room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    content = clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat()}).content.decode()

    assert "<script>x</script>" not in content
    assert "&lt;script&gt;x&lt;/script&gt;" in content


def test_the_partial_is_the_board_alone_for_the_refresh(clerk, room, tomorrow_at, user):
    OrderFactory(accession_number="26010100042", room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    response = clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat(), "partial": "1"})

    content = response.content.decode()
    assert "26010100042" in content
    assert "<html" not in content
    assert 'class="board"' in content


def test_the_full_page_polls_the_partial(clerk):
    response = clerk.get(reverse("scheduling:schedule"), {"date": "2026-03-01"})

    content = response.content.decode()
    assert 'data-refresh-url="/?date=2026-03-01&amp;partial=1"' in content
    assert "scheduling/board.js" in content


def test_the_board_runs_a_constant_number_of_queries(clerk, django_assert_max_num_queries, tomorrow_at, user):
    rooms = [RoomFactory() for _ in range(3)]

    def count_for(n_orders):
        for i in range(n_orders):
            OrderFactory(
                room=rooms[i % 3],
                patient=PatientFactory(),
                scheduled_start=tomorrow_at(8) + timedelta(minutes=30 * (i // 3)),
                booked_by=user,
            )
        with django_assert_max_num_queries(8) as captured:
            clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat(), "partial": "1"})
        return len(captured)

    assert count_for(1) == count_for(30)


def test_an_action_from_the_board_returns_to_the_board(clerk, room, tomorrow_at, user):
    order = OrderFactory(room=room, scheduled_start=tomorrow_at(9), booked_by=user)
    back = f"/?date={tomorrow().isoformat()}"

    response = clerk.post(reverse("scheduling:order_arrive", args=[order.pk]), {"next": back})

    assert response.url == back
    order.refresh_from_db()
    assert order.status == OrderStatus.ARRIVED


def test_a_cancel_from_the_board_returns_to_the_board(clerk, room, tomorrow_at, user):
    order = OrderFactory(room=room, scheduled_start=tomorrow_at(9), booked_by=user)
    back = f"/?date={tomorrow().isoformat()}"

    response = clerk.post(
        reverse("scheduling:order_cancel", args=[order.pk]), {"next": back, "reason": "Patient ill"}
    )

    assert response.url == back
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_it_ignores_a_next_to_another_site(clerk, room, tomorrow_at, user):
    order = OrderFactory(room=room, scheduled_start=tomorrow_at(9), booked_by=user)

    response = clerk.post(
        reverse("scheduling:order_arrive", args=[order.pk]), {"next": "https://evil.example/"}
    )

    assert response.url == order.get_absolute_url()
