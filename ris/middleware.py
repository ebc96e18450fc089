"""Response headers that Django 5.2's SecurityMiddleware does not set (settings: "Response headers")."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import patch_cache_control


class SecurityHeadersMiddleware:
    """Content-Security-Policy and Permissions-Policy on every response the app itself makes.

    A fixed policy from the settings, so no package: the templates have no inline script to allow (no
    nonces), and Django 6.0's own CSP (SECURE_CSP) can take its place after the upgrade. Static files
    are answered by WhiteNoise before this runs and need neither header.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response
        self.csp = "; ".join(f"{name} {' '.join(values)}" for name, values in settings.RIS_CSP.items())
        self.permissions = ", ".join(f"{name}=()" for name in settings.RIS_PERMISSIONS_POLICY_DENY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.headers.setdefault("Content-Security-Policy", self.csp)
        response.headers.setdefault("Permissions-Policy", self.permissions)
        return response


class NoStoreForUsersMiddleware:
    """`Cache-Control: no-store` on every response to a logged-in user.

    Nearly every page behind the login shows patient data (lists, order pages, the JSON of the
    autocomplete and the slots, the .wl download), and a shared front-desk PC must not keep a copy on
    disk nor show one from the back button after the next person sits down. The few pages without
    patient data lose nothing by it. Static files (WhiteNoise, answered earlier) keep their caching.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        # Asked before the view: a logout's response no longer has a user, and idle logout's neither.
        logged_in = request.user.is_authenticated
        response = self.get_response(request)
        if logged_in or request.user.is_authenticated:
            patch_cache_control(response, no_store=True, private=True)
        return response
