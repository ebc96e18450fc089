"""Idle logout for shared front-desk PCs: a session unused for RIS_IDLE_LOGOUT_MINUTES ends.

The server decides. Every request of a logged-in user counts as activity, except background requests:
those that send `X-RIS-Background: 1`, which the day board's refresh (every 20 s) and static/ris/idle.js's
own checks do. A board left open on an empty desk therefore still ends its session; a clerk typing a
long form without sending it is kept in by idle.js, which tells the server about key presses and clicks
(at most every 30 s, as an ordinary request to /session/idle).

idle.js also warns two minutes before the end (a quarter of the time, for very short settings) with a
"Stay logged in" button, and at the end logs out with a POST to the logout view. It asks the server
first, so a clerk active in another tab of the same session is not logged out by an idle one.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext
from django.views.decorators.http import require_GET

SESSION_KEY = "ris_last_activity"
BACKGROUND_HEADER = "HTTP_X_RIS_BACKGROUND"
# Activity is written to the session at most this often (a tenth of the idle time if that is less),
# so a busy clerk does not cost a session write per request; the logout may come this much earlier
# than the setting says.
WRITE_EVERY_SECONDS = 10


def idle_seconds() -> float:
    return settings.RIS_IDLE_LOGOUT_MINUTES * 60


def write_every() -> float:
    return min(WRITE_EVERY_SECONDS, idle_seconds() / 10)


def is_background(request: HttpRequest) -> bool:
    return request.META.get(BACKGROUND_HEADER) == "1"


class IdleLogoutMiddleware:
    """Logs out a session idle for longer than RIS_IDLE_LOGOUT_MINUTES, before the view runs.

    After AuthenticationMiddleware (it needs request.user) and before LoginRequiredMiddleware, which
    then sends the now anonymous request to the login page, with ?next= back to where it was.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and idle_seconds() > 0:
            now = time.time()
            last = request.session.get(SESSION_KEY)
            if last is not None and now - last > idle_seconds():
                logout(request)
                messages.info(
                    request,
                    gettext("You were logged out after %(minutes)s minutes without activity.")
                    % {"minutes": f"{settings.RIS_IDLE_LOGOUT_MINUTES:g}"},
                )
            # None: a session older than this rule, or logged in without the signal.
            elif last is None or (not is_background(request) and now - last >= write_every()):
                request.session[SESSION_KEY] = now
        return self.get_response(request)


def start_idle_clock(sender, request: HttpRequest | None, user, **kwargs) -> None:
    """user_logged_in receiver (ris/apps.py): the clock starts at login, in the session write the
    login makes anyway, rather than in one more write at the next request."""
    if request is not None and hasattr(request, "session"):
        request.session[SESSION_KEY] = time.time()


def idle_logout(request: HttpRequest) -> dict:
    """Context processor: what static/ris/idle.js needs, on <body> in base.html."""
    if not request.user.is_authenticated or idle_seconds() <= 0:
        return {}
    return {"idle_logout_seconds": f"{idle_seconds():g}"}


@require_GET
def session_idle(request: HttpRequest) -> JsonResponse:
    """Seconds left before the idle logout. A background request only asks; any other one (idle.js
    after a key press or a click) also counts as activity, which the middleware has recorded."""
    last = request.session.get(SESSION_KEY, time.time())
    return JsonResponse({"remaining": max(0, int(idle_seconds() - (time.time() - last)))})
