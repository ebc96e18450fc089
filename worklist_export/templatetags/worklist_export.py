from django import template

from worklist_export.selectors import ExportState, order_export_state

register = template.Library()


@register.simple_tag
def worklist_state(order) -> ExportState:
    """{% worklist_state order as wl %}: the order's export entry, whether it is pending, its file."""
    return order_export_state(order=order)
