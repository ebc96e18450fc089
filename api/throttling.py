"""Per-client throttling: each API client (or logged-in user) has its own budget of requests.

The rate is the client's own (ApiClient.rate_limit) or API_CLIENT_RATE. Counted in the default cache:
Redis in production (RIS_CACHE_URL), so every gunicorn worker counts against one budget.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from rest_framework.throttling import SimpleRateThrottle

from .permissions import caller_client

_PERIODS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "h": 3600,
    "hour": 3600,
    "d": 86400,
    "day": 86400,
}


def parse_rate_or_error(rate: str) -> tuple[int, int]:
    count, slash, period = rate.strip().partition("/")
    if not (slash and count.isdigit() and int(count) > 0 and period.strip().lower() in _PERIODS):
        raise ValidationError(
            {
                "rate_limit": _("Write a rate like 600/min (per s, min, hour or day); “%(rate)s” is not one.")
                % {"rate": rate}
            }
        )
    return int(count), _PERIODS[period.strip().lower()]


class ClientRateThrottle(SimpleRateThrottle):
    scope = "api_client"

    def get_rate(self) -> str:
        return settings.API_CLIENT_RATE

    def parse_rate(self, rate):
        return parse_rate_or_error(rate) if rate else (None, None)

    def allow_request(self, request, view) -> bool:
        client = caller_client(request)
        if client is not None and client.rate_limit:
            self.rate = client.rate_limit
            self.num_requests, self.duration = self.parse_rate(self.rate)
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # refused by authentication anyway
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
