"""Template context every page's navigation reads (registered in settings.TEMPLATES)."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest

from scheduling.roles import ADMIN, FRONT_DESK, user_has_role

from . import selectors


def unmatched_studies(request: HttpRequest) -> dict[str, Callable[[], int]]:
    """{{ unmatched_studies_count }}: how many studies wait on the Unmatched studies list, for the
    navigation's badge; only for those who resolve them (front desk, Admin).

    A callable, as scheduling.context_processors.to_schedule: the COUNT runs only when a page's
    navigation shows it, not for the login page or a JSON answer.
    """
    user = getattr(request, "user", None)
    if user is None or not user_has_role(user, FRONT_DESK, ADMIN):
        return {}
    return {"unmatched_studies_count": selectors.unmatched_studies_count}
