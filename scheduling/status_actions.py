"""What an order offers in each status, who may use it, and the status's colour: the one copy the order
page and the day board both read.

The rules themselves are the services' (TRANSITIONS, RESCHEDULABLE, SCHEDULABLE, EDITABLE), which refuse an action in
the wrong status whatever a page shows; this module only says which buttons to show.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

from .models import Order, OrderStatus
from .roles import FRONT_DESK, TECHNOLOGIST
from .rules import no_show_due
from .services import EDITABLE, RESCHEDULABLE, SCHEDULABLE, TRANSITIONS

# Each action, the role it needs and whether an order in a status offers it. Hiding an action from a
# role is a courtesy: its view checks the role again (require_role). The order of the rows is the order
# the board lists a block's actions in (data-actions).
_ACTIONS: tuple[tuple[str, str, Callable[[str], bool]], ...] = (
    ("arrive", TECHNOLOGIST, lambda status: OrderStatus.ARRIVED in TRANSITIONS[status]),
    ("start", TECHNOLOGIST, lambda status: OrderStatus.IN_PROGRESS in TRANSITIONS[status]),
    ("complete", TECHNOLOGIST, lambda status: OrderStatus.COMPLETED in TRANSITIONS[status]),
    ("cancel", FRONT_DESK, lambda status: OrderStatus.CANCELLED in TRANSITIONS[status]),
    # Offered on the order page once the exam's time has passed (order_page_actions); not on the board.
    ("no_show", FRONT_DESK, lambda status: OrderStatus.NO_SHOW in TRANSITIONS[status]),
    ("reschedule", FRONT_DESK, lambda status: status in RESCHEDULABLE),
    # Booking a requested order (the To schedule list's "Book"): never on the board, which shows
    # only booked orders.
    ("schedule", FRONT_DESK, lambda status: status in SCHEDULABLE),
    ("edit", FRONT_DESK, lambda status: status in EDITABLE),
)

# status -> {action: the role it needs}, e.g. SCHEDULED -> {"arrive": TECHNOLOGIST, "cancel": FRONT_DESK,
# "no_show": FRONT_DESK, "reschedule": FRONT_DESK, "edit": FRONT_DESK}; REQUESTED -> {"cancel",
# "schedule", "edit"} for the front desk; COMPLETED, CANCELLED and NO_SHOW offer nothing.
STATUS_ACTIONS: dict[str, dict[str, str]] = {
    status: {name: role for name, role, offered_in in _ACTIONS if offered_in(status)}
    for status in OrderStatus
}


def order_actions(*, status: str, roles: Collection[str]) -> tuple[str, ...]:
    """The actions an order in `status` offers a user with `roles` (see scheduling.roles.user_roles)."""
    return tuple(name for name, role in STATUS_ACTIONS.get(status, {}).items() if role in roles)


def order_page_actions(*, order: Order, roles: Collection[str]) -> tuple[str, ...]:
    """order_actions for one order's page, less a no-show before the exam's time has passed (the rule
    would refuse it: rules.no_show_due)."""
    actions = order_actions(status=order.status, roles=roles)
    if "no_show" in actions and not no_show_due(order):
        return tuple(name for name in actions if name != "no_show")
    return actions


# status -> Bootstrap colour: the badge (text-bg-<colour>) and the board's block (border-, bg-<colour>-subtle).
STATUS_COLOURS: dict[str, str] = {
    OrderStatus.REQUESTED: "dark",
    OrderStatus.SCHEDULED: "primary",
    OrderStatus.ARRIVED: "info",
    OrderStatus.IN_PROGRESS: "warning",
    OrderStatus.COMPLETED: "success",
    OrderStatus.CANCELLED: "secondary",
    OrderStatus.NO_SHOW: "danger",
}


def status_colour(status: str) -> str:
    return STATUS_COLOURS.get(status, "light")
