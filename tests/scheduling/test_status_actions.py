"""One table says what an order offers in each status and to whom (scheduling/status_actions.py): the order
page and the day board must offer the same actions, and colour a status alike."""

import re

import pytest
from django.urls import reverse
from django.utils import timezone

from scheduling.models import OrderStatus
from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from scheduling.status_actions import STATUS_ACTIONS, STATUS_COLOURS, order_actions, order_page_actions
from tests.factories import OrderFactory, UserFactory

pytestmark = pytest.mark.django_db

ROLE_SETS = {
    "front desk": [FRONT_DESK],
    "technologist": [TECHNOLOGIST],
    "both": [FRONT_DESK, TECHNOLOGIST],
    "no role": [],
}

# The address of each action's button or link on the order page.
PAGE_URLS = {
    "arrive": "scheduling:order_arrive",
    "start": "scheduling:order_start",
    "complete": "scheduling:order_complete",
    "cancel": "scheduling:order_cancel",
    "reschedule": "scheduling:order_reschedule",
    "edit": "scheduling:order_update",
    "schedule": "scheduling:order_schedule",
    "no_show": "scheduling:order_no_show",
}

# The day board shows booked orders only: a requested one has no room or time to be drawn at.
ON_THE_BOARD = [status for status in OrderStatus if status != OrderStatus.REQUESTED]


def order_in(status, **fields):
    if status == OrderStatus.CANCELLED:
        fields["cancel_reason"] = "Patient ill"  # the database refuses a cancellation without one
    return OrderFactory(status=status, **fields)


def page_actions(client, order) -> set[str]:
    page = client.get(order.get_absolute_url()).content.decode()
    return {name for name, url in PAGE_URLS.items() if reverse(url, args=[order.pk]) in page}


def board_html(client, order) -> str:
    day = timezone.localdate(order.scheduled_start)
    return client.get(reverse("scheduling:schedule"), {"date": day.isoformat()}).content.decode()


def board_actions(client, order) -> set[str]:
    (offered,) = re.findall(rf'data-pk="{order.pk}" data-actions="([^"]*)"', board_html(client, order))
    return set(offered.split())


@pytest.mark.parametrize("who", list(ROLE_SETS))
@pytest.mark.parametrize("status", ON_THE_BOARD)
def test_the_order_page_and_the_board_offer_the_same_actions(client, room, tomorrow_at, who, status):
    order = order_in(status, room=room, scheduled_start=tomorrow_at(9))
    client.force_login(UserFactory(roles=ROLE_SETS[who]))

    on_page = page_actions(client, order)
    on_board = board_actions(client, order)

    assert on_page == set(order_page_actions(order=order, roles=ROLE_SETS[who]))
    # Editing the details is on the order page only: the board's menu has no entry for it; nor has a
    # no-show, offered only once the exam's time has passed (not tomorrow's).
    assert on_board == on_page - {"edit"}, (status, who)
    assert on_page == set(order_actions(status=status, roles=ROLE_SETS[who])) - {"no_show"}


def test_the_table_follows_the_services_rules():
    offered = {status: set(actions) for status, actions in STATUS_ACTIONS.items()}

    assert offered == {
        OrderStatus.REQUESTED: {"cancel", "schedule", "edit"},
        OrderStatus.SCHEDULED: {"arrive", "cancel", "no_show", "reschedule", "edit"},
        OrderStatus.ARRIVED: {"start", "cancel", "reschedule", "edit"},
        OrderStatus.IN_PROGRESS: {"complete", "edit"},
        OrderStatus.COMPLETED: set(),
        OrderStatus.CANCELLED: set(),
        OrderStatus.NO_SHOW: set(),
    }
    assert order_actions(status=OrderStatus.SCHEDULED, roles={TECHNOLOGIST}) == ("arrive",)
    assert order_actions(status=OrderStatus.SCHEDULED, roles={FRONT_DESK}) == (
        "cancel",
        "no_show",
        "reschedule",
        "edit",
    )
    assert order_actions(status=OrderStatus.SCHEDULED, roles=set()) == ()


@pytest.mark.parametrize("who", list(ROLE_SETS))
def test_a_requested_orders_page_offers_booking_it_not_moving_it(client, who):
    order = order_in(OrderStatus.REQUESTED, room=None, scheduled_start=None, scheduled_end=None)
    client.force_login(UserFactory(roles=ROLE_SETS[who]))

    assert page_actions(client, order) == set(
        order_actions(status=OrderStatus.REQUESTED, roles=ROLE_SETS[who])
    )
    assert ("schedule" in page_actions(client, order)) == (FRONT_DESK in ROLE_SETS[who])


@pytest.mark.parametrize("status", ON_THE_BOARD)
def test_the_order_page_and_the_board_colour_a_status_alike(client, room, tomorrow_at, user, status):
    order = order_in(status, room=room, scheduled_start=tomorrow_at(9), booked_by=user)
    client.force_login(user)
    colour = STATUS_COLOURS[status]

    page = client.get(order.get_absolute_url()).content.decode()
    board = board_html(client, order)

    assert f'<span class="badge text-bg-{colour}' in page
    (block,) = re.findall(rf'<article class="board-block [^"]*"[^>]*data-pk="{order.pk}".*?</article>', board)
    assert f"border-{colour} bg-{colour}-subtle" in block
    assert f'<span class="badge text-bg-{colour}">' in block
