"""Presentation helpers for the front-desk templates."""

from datetime import datetime, tzinfo
from functools import lru_cache

from django import template
from django.urls import reverse
from django.utils import timezone
from django.utils.html import conditional_escape, format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _

from scheduling.models import OrderStatus
from scheduling.roles import user_roles
from scheduling.status_actions import order_actions, status_colour

register = template.Library()


@register.inclusion_tag("scheduling/_status_badge.html")
def status_badge(order):
    """A coloured badge with the order's status, e.g. green for completed."""
    return {
        "colour": status_colour(order.status),
        "label": order.get_status_display(),
        "cancelled": order.status == OrderStatus.CANCELLED,
    }


# The entries of the board's #board-menu template (_board.html) that depend on the order: editing the
# details is on the order page only.
BOARD_MENU_ACTIONS = ("arrive", "start", "complete", "cancel", "reschedule")

# One exam block, its fields filled in by board_blocks (block_fields says which is which). Numbered rather
# than named: format_html takes a fifth longer with names, and a busy day formats thousands of blocks.
BOARD_BLOCK = (
    '<article class="board-block border-{0} bg-{0}-subtle{1}" style="{2}"'
    ' data-accession="{3}" data-pk="{4}" data-actions="{5}" title="{6} {7} · {8} · {9}">'
    '<div class="d-flex align-items-start gap-1">'
    '<a class="board-link me-auto text-truncate" href="{10}">'
    '<span class="board-time-range">{6}</span> <strong class="board-patient">{7}</strong></a>'
    '<div class="dropdown"><button class="btn btn-sm btn-light board-menu py-0 px-1" type="button"'
    ' data-bs-toggle="dropdown" data-bs-popper-config=\'{{"strategy":"fixed"}}\' aria-expanded="false"'
    ' aria-label="{11}">&#8942;</button>'
    '<div class="dropdown-menu dropdown-menu-end p-2 board-actions"></div></div></div>'
    '<div class="board-detail text-truncate">{8} · <span class="badge text-bg-{0}">{9}</span> · {3}</div>'
    "{12}</article>"
)
BOARD_NOTE = '<div class="board-note text-danger text-truncate">{} {}</div>'


# A block's place and its times, e.g. "top: 120px; height: 60px" and "09:00–09:30": the same few hundred
# recur in every room's column and at every refresh of the board, so each is formatted and escaped once.
@lru_cache(maxsize=4096)
def _block_place(top_px: int, height_px: int) -> SafeString:
    return format_html("top: {}px; height: {}px", top_px, height_px)


@lru_cache(maxsize=4096)
def _time_range(start: datetime, end: datetime, tz: tzinfo) -> SafeString:
    return format_html("{}–{}", f"{start.astimezone(tz):%H:%M}", f"{end.astimezone(tz):%H:%M}")


@register.simple_tag(takes_context=True)
def board_blocks(context, column) -> SafeString:
    """The exam blocks of one day-board column, as HTML.

    Built here in Python rather than with template tags per block: a busy day holds thousands of blocks,
    and the template engine spent about 1.8 ms on each (2,000 orders: 3.7 s of a 4 s request, see
    docs/BENCHMARKS.md). A block's action menu is filled in the browser from the one `#board-menu`
    template of the board (board.js): the block only says which actions it offers (data-actions).
    """
    px = int(context["px"])
    request = getattr(context, "request", None)
    roles = user_roles(request.user) if request is not None else set()
    tz = timezone.get_current_timezone()
    # What depends on the status alone, escaped once per status rather than once per block: escaping is
    # most of format_html's cost, and a busy day's board formats thousands of blocks.
    statuses = {}
    for status, label in OrderStatus.choices:
        actions = [name for name in order_actions(status=status, roles=roles) if name in BOARD_MENU_ACTIONS]
        values = {
            "colour": status_colour(status),
            "cancelled": " board-cancelled" if status == OrderStatus.CANCELLED else "",
            "label": label,
            "actions": " ".join(actions),
        }
        statuses[status] = {name: conditional_escape(value) for name, value in values.items()}
    detail_url = reverse("scheduling:order_detail", args=[0]).replace("/0/", "/{}/")
    menu_label = _("Actions for %(accession)s")
    returned = _("Returned by the modality:")
    # A note only while the exam can be done again: it says why the modality gave it back.
    noted = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED)
    no_note = conditional_escape("")

    def block_fields(block) -> tuple:
        order = block.order
        status = statuses[order.status]
        note = no_note
        if order.discontinue_reason and order.status in noted:
            note = format_html(BOARD_NOTE, returned, order.discontinue_reason)
        return (
            status["colour"],  # {0}
            status["cancelled"],  # {1}
            _block_place(block.top * px, block.height * px),  # {2}
            order.accession_number,  # {3}
            order.pk,  # {4}
            status["actions"],  # {5}
            _time_range(order.scheduled_start, order.scheduled_end, tz),  # {6}
            order.patient_name,  # {7}
            order.procedure_name,  # {8}
            status["label"],  # {9}
            detail_url.format(order.pk),  # {10}
            menu_label % {"accession": order.accession_number},  # {11}
            note,  # {12}
        )

    return format_html_join("", BOARD_BLOCK, (block_fields(block) for block in column.blocks))


@register.simple_tag
def times(value: int, factor: int) -> int:
    """value × factor, e.g. minutes × pixels per minute for the day board."""
    return int(value) * int(factor)
