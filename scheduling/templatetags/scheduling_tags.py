"""Presentation helpers for the front-desk templates."""

from html import escape

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

from scheduling import services
from scheduling.models import OrderStatus

register = template.Library()

STATUS_BADGE_CLASSES = {
    OrderStatus.SCHEDULED: "text-bg-primary",
    OrderStatus.ARRIVED: "text-bg-info",
    OrderStatus.IN_PROGRESS: "text-bg-warning",
    OrderStatus.COMPLETED: "text-bg-success",
    OrderStatus.CANCELLED: "text-bg-secondary",
}


@register.inclusion_tag("scheduling/_status_badge.html")
def status_badge(order):
    """A coloured badge with the order's status, e.g. green for completed."""
    return {
        "css_class": STATUS_BADGE_CLASSES.get(order.status, "text-bg-light"),
        "label": order.get_status_display(),
        "cancelled": order.status == OrderStatus.CANCELLED,
    }


STATUS_COLOURS = {
    OrderStatus.SCHEDULED: "primary",
    OrderStatus.ARRIVED: "info",
    OrderStatus.IN_PROGRESS: "warning",
    OrderStatus.COMPLETED: "success",
    OrderStatus.CANCELLED: "secondary",
}


def status_actions(status: str) -> dict[str, bool]:
    """Which buttons an order in `status` offers, from the services' transition table."""
    allowed = services.TRANSITIONS[status]
    return {
        "arrive": OrderStatus.ARRIVED in allowed,
        "start": OrderStatus.IN_PROGRESS in allowed,
        "complete": OrderStatus.COMPLETED in allowed,
        "cancel": OrderStatus.CANCELLED in allowed,
        "reschedule": status in services.RESCHEDULABLE,
    }


def _board_actions(status: str, roles: dict[str, bool]) -> str:
    """The menu entries a block offers, space-separated: what the status allows and the user's role may do."""
    allowed = status_actions(status)
    mine = {
        "reschedule": roles.get("front_desk"),
        "cancel": roles.get("front_desk"),
        "arrive": roles.get("technologist"),
        "start": roles.get("technologist"),
        "complete": roles.get("technologist"),
    }
    return " ".join(name for name, ok in allowed.items() if ok and mine[name])


@register.simple_tag(takes_context=True)
def board_blocks(context, column) -> SafeString:
    """The exam blocks of one day-board column, as HTML.

    Built here in Python rather than with template tags per block: a busy day holds thousands of blocks,
    and the template engine spent about 1.8 ms on each (2,000 orders: 3.7 s of a 4 s request, see
    docs/BENCHMARKS.md). A block's action menu is filled in the browser from the one `#board-menu`
    template of the board (board.js): the block only says which actions it offers (data-actions).
    """
    px = int(context["px"])
    roles = context.get("roles") or {}
    tz = timezone.get_current_timezone()
    labels = {value: escape(str(label)) for value, label in OrderStatus.choices}
    actions = {value: _board_actions(value, roles) for value in labels}
    detail_url = reverse("scheduling:order_detail", args=[0]).replace("/0/", "/{}/")
    actions_for = _("Actions for %(accession)s")
    returned = escape(_("Returned by the modality:"))
    out = []
    for block in column.blocks:
        order = block.order
        status = order.status
        colour = STATUS_COLOURS.get(status, "light")
        accession = escape(order.accession_number)
        patient = escape(order.patient_name)
        procedure = escape(order.procedure_name)
        when = f"{order.scheduled_start.astimezone(tz):%H:%M}–{order.scheduled_end.astimezone(tz):%H:%M}"
        cancelled = " board-cancelled" if status == OrderStatus.CANCELLED else ""
        note = ""
        if order.discontinue_reason and status in (OrderStatus.SCHEDULED, OrderStatus.ARRIVED):
            note = f'<div class="board-note text-danger text-truncate">{returned} {escape(order.discontinue_reason)}</div>'
        out.append(
            f'<article class="board-block border-{colour} bg-{colour}-subtle{cancelled}"'
            f' style="top: {block.top * px}px; height: {block.height * px}px"'
            f' data-accession="{accession}" data-pk="{order.pk}" data-actions="{actions[status]}"'
            f' title="{when} {patient} · {procedure} · {labels[status]}">'
            f'<div class="d-flex align-items-start gap-1">'
            f'<a class="board-link me-auto text-truncate" href="{detail_url.format(order.pk)}">'
            f'<span class="board-time-range">{when}</span> <strong class="board-patient">{patient}</strong></a>'
            f'<div class="dropdown"><button class="btn btn-sm btn-light board-menu py-0 px-1" type="button"'
            f' data-bs-toggle="dropdown" data-bs-popper-config=\'{{"strategy":"fixed"}}\' aria-expanded="false"'
            f' aria-label="{escape(actions_for % {"accession": order.accession_number})}">&#8942;</button>'
            f'<div class="dropdown-menu dropdown-menu-end p-2 board-actions"></div></div></div>'
            f'<div class="board-detail text-truncate">{procedure} · '
            f'<span class="badge text-bg-{colour}">{labels[status]}</span> · {accession}</div>'
            f"{note}</article>"
        )
    return mark_safe("".join(out))


@register.simple_tag
def times(value: int, factor: int) -> int:
    """value × factor, e.g. minutes × pixels per minute for the day board."""
    return int(value) * int(factor)
