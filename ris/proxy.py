"""The client's address behind the reverse proxy, for the login throttle (AXES_CLIENT_IP_CALLABLE)."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address the outermost of RIS_PROXY_COUNT trusted proxies received the request from.

    Each proxy appends the address it was called from to X-Forwarded-For, so with N proxies the client
    is the N-th entry from the right. Entries further left are whatever the client sent: trusting the
    left-most one would let anyone dodge the lockout with a made-up address per attempt. With no proxy
    (0), or a header too short or not an address (a proxy that does not set it), REMOTE_ADDR.
    """
    remote = request.META.get("REMOTE_ADDR")
    count = settings.RIS_PROXY_COUNT
    if count <= 0:
        return remote
    hops = [hop.strip() for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if hop.strip()]
    if len(hops) < count:
        return remote
    try:
        return str(ipaddress.ip_address(hops[-count]))
    except ValueError:
        return remote
