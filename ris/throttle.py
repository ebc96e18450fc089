"""Limits on guessing: the login lockout (django-axes) and the anonymous password-reset form.

Three counts of wrong passwords within AXES_COOLOFF_TIME, each with its own limit (ris/settings.py,
"Login throttling"):

- one username from one address (AXES_FAILURE_LIMIT, 5): the clerk who mistypes, or one guesser;
- one username from any address (RIS_USERNAME_FAILURE_LIMIT, 20): guessing spread over many addresses;
- one address for any username (RIS_ADDRESS_FAILURE_LIMIT, 30): one address trying many usernames.

The wider counts get higher limits because whoever reaches them locks out more than themselves: the
username count locks that clerk out at every desk, the address count everyone behind that address.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from ris.proxy import client_ip

# The combinations axes counts, in the order of AXES_LOCKOUT_PARAMETERS, and the setting of each limit.
LIMITS = {
    ("username", "ip_address"): "AXES_FAILURE_LIMIT",
    ("username",): "RIS_USERNAME_FAILURE_LIMIT",
    ("ip_address",): "RIS_ADDRESS_FAILURE_LIMIT",
}


def lockout_parameters(request, credentials) -> list[list[str]]:
    """AXES_LOCKOUT_PARAMETERS: the combinations of LIMITS, in its order (get_failures relies on it)."""
    return [list(combination) for combination in LIMITS]


class LoginThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler with one limit per lockout combination (axes has one for all).

    Axes locks when get_failures() reaches AXES_FAILURE_LIMIT. Each combination's count is shifted by
    the difference of the limits, so the result reaches AXES_FAILURE_LIMIT exactly when some
    combination reaches its own limit.
    """

    def get_failures(self, request, credentials: dict | None = None) -> int:
        base = settings.AXES_FAILURE_LIMIT
        worst = 0
        for limit_setting, attempts in zip(
            LIMITS.values(), self.get_user_attempts(request, credentials), strict=True
        ):
            failures = sum(attempts.values_list("failures_since_start", flat=True))
            worst = max(worst, failures - getattr(settings, limit_setting) + base)
        return worst

    def reset_user_attempts(self, request: HttpRequest, credentials: dict | None = None) -> int:
        # A right password clears the count of that username at that address only. Axes would clear
        # every combination: a guesser with an account of their own could log in to it now and then
        # and so start their address's count, and the guessed username's, from zero each time.
        username = get_client_username(request, credentials)
        count, _ = AccessAttempt.objects.filter(
            username=username, ip_address=request.axes_ip_address
        ).delete()
        return count


def password_reset_throttled(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """At most RIS_PASSWORD_RESET_LIMIT reset requests (POSTs) per address per hour; then 429.

    Each request mails a reset link to whoever owns the address typed in, so an unthrottled form lets
    anyone flood a clerk's mailbox or probe which e-mail addresses have accounts by the timing. The
    count is in Django's cache, which is per process with the default local-memory cache: with N
    gunicorn workers an address gets up to N times the limit.
    """

    # wraps() keeps the view's attributes, login_not_required's among them.
    @wraps(view)
    def throttled(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST":
            key = f"ris-password-reset:{client_ip(request)}"
            cache.add(key, 0, timeout=3600)
            if cache.incr(key) > settings.RIS_PASSWORD_RESET_LIMIT:
                return render(request, "registration/password_reset_throttled.html", status=429)
        return view(request, *args, **kwargs)

    return throttled
