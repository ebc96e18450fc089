"""Bearer tokens of API clients; logged-in staff may also call the API from the browser (session, CSRF).

A refused token is a 401 with the same message whatever was wrong with it (unknown, revoked, malformed),
so a caller cannot probe which prefixes exist. A known client calling from an address outside its
allow-list, or a disabled one, is a 403: the token is right, the caller is not let in.
"""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from ris.proxy import client_ip

from .models import ApiClient

# last_used_at is written at most this often per client: not one UPDATE per request.
LAST_USED_RESOLUTION = timedelta(seconds=60)


class ClientTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request):
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _sep, token = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        token = token.strip()
        prefix, dot, secret = token.partition(".")
        if not (dot and prefix and secret):
            raise exceptions.AuthenticationFailed(_("Invalid API token."))
        client = ApiClient.objects.select_related("user").filter(token_prefix=prefix).first()
        if client is None or not client.token_matches(token):
            raise exceptions.AuthenticationFailed(_("Invalid API token."))
        if not client.enabled or not client.user.is_active:
            raise exceptions.PermissionDenied(_("This API client is disabled."))
        address = client_ip(request._request)
        if not client.address_allowed(address):
            raise exceptions.PermissionDenied(
                _("This API client may not call from %(address)s.") % {"address": address or "?"}
            )
        now = timezone.now()
        if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
            ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
        return client.user, client

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class StaffSessionAuthentication(authentication.SessionAuthentication):
    """A logged-in user of the front desk, with CSRF as on every form: for the docs page's "try it"."""


class ClientTokenScheme(OpenApiAuthenticationExtension):
    """The token in the OpenAPI schema: HTTP bearer."""

    target_class = "api.authentication.ClientTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "The token of an API client (admin: API clients).",
        }
