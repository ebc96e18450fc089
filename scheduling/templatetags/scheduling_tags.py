"""Presentation helpers for the front-desk templates."""

from django import template

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
