"""Template context every page's navigation reads (registered in settings.TEMPLATES)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from . import selectors


def to_schedule(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """{{ to_schedule_count }}: how many requested orders wait to be booked, for the navigation's badge.

    A callable, so the COUNT runs only when a page's navigation shows it (the template calls it once,
    through {% with %}), not for the login page or a JSON answer.
    """
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    return {"to_schedule_count": selectors.orders_to_schedule_count}
