"""Who may talk to the DICOM server, from settings: extra AE titles per room, addresses per AE title.

Both settings map AE titles to lists, written `AE=item,item;AE=item` (the .env form):
- DICOM_SERVER_ROOM_CALLERS: AE titles besides a room's own station AE title that may send MPPS for
  that room's orders (`CT01=CT01CONSOLE,CT01WS`). They may also associate, like the rooms themselves.
- DICOM_SERVER_ALLOWED_ADDRESSES: the addresses or networks an AE title must call from
  (`CT01=10.1.2.5;MR01=10.1.3.0/28,10.1.4.7`). An AE title listed there is rejected from any other
  address; one not listed may call from anywhere.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ae_map(text: str, *, setting: str) -> dict[str, list[str]]:
    """`AE=a,b;AE2=c` -> {"AE": ["a", "b"], "AE2": ["c"]}; ImproperlyConfigured when malformed."""
    mapping: dict[str, list[str]] = {}
    for entry in (text or "").split(";"):
        if not entry.strip():
            continue
        ae, sep, items = entry.partition("=")
        ae = ae.strip()
        values = [item.strip() for item in items.split(",") if item.strip()]
        if not sep or not ae or len(ae) > 16 or not values:
            raise ImproperlyConfigured(f"{setting}: {entry.strip()!r} is not AE=value,value")
        mapping.setdefault(ae, []).extend(values)
    return mapping


def room_callers() -> dict[str, list[str]]:
    """Room station AE title -> the other AE titles that may send MPPS for its orders."""
    return _room_callers(settings.DICOM_SERVER_ROOM_CALLERS)


@lru_cache(maxsize=8)
def _room_callers(text: str) -> dict[str, list[str]]:
    return parse_ae_map(text, setting="DICOM_SERVER_ROOM_CALLERS")


def allowed_networks() -> dict[str, tuple[Network, ...]]:
    """Calling AE title -> the networks it may call from (only for the AE titles that are listed)."""
    return _allowed_networks(settings.DICOM_SERVER_ALLOWED_ADDRESSES)


@lru_cache(maxsize=8)
def _allowed_networks(text: str) -> dict[str, tuple[Network, ...]]:
    networks = {}
    for ae, items in parse_ae_map(text, setting="DICOM_SERVER_ALLOWED_ADDRESSES").items():
        try:
            networks[ae] = tuple(ipaddress.ip_network(item, strict=False) for item in items)
        except ValueError as exc:
            raise ImproperlyConfigured(f"DICOM_SERVER_ALLOWED_ADDRESSES: {ae}: {exc}") from None
    return networks


def address_allowed(*, ae_title: str, address: str) -> bool:
    """May `ae_title` call from `address`? Always, unless DICOM_SERVER_ALLOWED_ADDRESSES lists it."""
    networks = allowed_networks().get(ae_title.strip())
    if networks is None:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
