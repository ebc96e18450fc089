"""Presentation helpers for the front-desk templates."""

from django import template

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


@register.filter
def status_colour(order) -> str:
    """The Bootstrap colour name of an order's status, for the day board's blocks."""
    return STATUS_COLOURS.get(order.status, "light")


@register.filter
def order_actions(order) -> dict[str, bool]:
    """Which buttons an order offers, from the services' transition table."""
    allowed = services.TRANSITIONS[order.status]
    return {
        "arrive": OrderStatus.ARRIVED in allowed,
        "start": OrderStatus.IN_PROGRESS in allowed,
        "complete": OrderStatus.COMPLETED in allowed,
        "cancel": OrderStatus.CANCELLED in allowed,
        "reschedule": order.status in services.RESCHEDULABLE,
    }


@register.simple_tag
def times(value: int, factor: int) -> int:
    """value × factor, e.g. minutes × pixels per minute for the day board."""
    return int(value) * int(factor)
