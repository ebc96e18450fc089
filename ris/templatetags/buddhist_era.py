"""The `date` filter with the year in B.E. under the Thai interface (ris/dates.py says which formats),
and `input_date`, a date as a date box holds it.

Loaded as a template builtin (settings TEMPLATES OPTIONS "builtins"), after Django's own filters, so
every template's `|date` is this one without a `{% load %}`.
"""

from datetime import date as Date
from datetime import datetime

from django import template
from django.utils.dateformat import format as format_time

from ris.dates import date_format, format_input_date

register = template.Library()


@register.filter(expects_localtime=True, is_safe=False)
def date(value: Date | datetime | None, arg: str | None = None) -> str:
    """Django's `date` filter, formatting through ris.dates.date_format."""
    if value in (None, ""):
        return ""
    try:
        return date_format(value, arg)
    except AttributeError:
        # As Django's filter: a time of day given a format with only time characters.
        try:
            return format_time(value, arg)
        except AttributeError:
            return ""


@register.filter(is_safe=False)
def input_date(value: Date | None) -> str:
    """A date as a date box shows it and reads it back: dd/mm/yyyy in the interface's era."""
    return format_input_date(value) if value else ""
