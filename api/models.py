"""Who may call the order API (API clients, managed by an admin) and the answers kept for retries.

A client authenticates with a bearer token "<prefix>.<secret>" shown once when it is issued. Only the
prefix (to find the record) and the SHA-256 of the whole token are stored: a copy of the database does not
let anyone call the API. Each client acts through its own user account, so the order history, "booked
by" and the access log name the client like any clerk.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Scope(models.TextChoices):
    READ = "read", _("Read patients, the catalog, orders and events")
    BOOK = "book", _("Register patients; book, move, change and cancel orders")
    WORKFLOW = "workflow", _("Mark orders arrived, started and completed")
    ADMIN = "admin", _("Everything the other scopes allow")


def validate_scopes(value: object) -> None:
    known = set(Scope.values)
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise ValidationError(_("Choose at least one scope."))
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValidationError(
            _("Unknown scope %(scopes)s; the scopes are %(known)s."),
            params={"scopes": ", ".join(unknown), "known": ", ".join(Scope.values)},
        )


def parse_networks(text: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks of an allow-list: addresses or CIDR blocks, one per line or comma-separated."""
    networks = []
    for part in text.replace(",", "\n").split():
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValidationError(
                _("“%(value)s” is not an address or network (like 10.1.2.3 or 10.1.0.0/16)."),
                params={"value": part},
            ) from exc
    return networks


def validate_networks(text: str) -> None:
    parse_networks(text)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClient(models.Model):
    name = models.CharField(
        _("name"),
        max_length=64,
        unique=True,
        help_text=_("The system calling, as people know it: “Clinic portal”, “HIS JSON gateway”."),
    )
    scopes = models.JSONField(_("scopes"), default=list, validators=[validate_scopes])
    allowed_addresses = models.TextField(
        _("allowed addresses"),
        blank=True,
        validators=[validate_networks],
        help_text=_("Addresses or networks (CIDR) the client may call from, one per line. Empty: any."),
    )
    rate_limit = models.CharField(
        _("rate limit"),
        max_length=32,
        blank=True,
        help_text=_("Requests per second, minute, hour or day, like 600/min. Empty: the site's default."),
    )
    enabled = models.BooleanField(_("enabled"), default=True)
    # The account the client acts as: the actor in the history of everything it changes.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="api_client", editable=False
    )
    token_prefix = models.CharField(max_length=16, unique=True, editable=False)
    token_sha256 = models.CharField(max_length=64, editable=False)
    token_issued_at = models.DateTimeField(_("token issued"), default=timezone.now, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = _("API client")
        verbose_name_plural = _("API clients")

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.rate_limit:
            from .throttling import parse_rate_or_error

            parse_rate_or_error(self.rate_limit)

    def issue_token(self) -> str:
        """A new token for this client (the old one stops working when saved); returned once."""
        prefix = secrets.token_hex(6)
        token = f"{prefix}.{secrets.token_urlsafe(32)}"
        self.token_prefix = prefix
        self.token_sha256 = token_digest(token)
        self.token_issued_at = timezone.now()
        return token

    def token_matches(self, token: str) -> bool:
        return hmac.compare_digest(self.token_sha256, token_digest(token))

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes or Scope.ADMIN in self.scopes

    def address_allowed(self, address: str | None) -> bool:
        networks = parse_networks(self.allowed_addresses)
        if not networks:
            return True
        if not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)


class IdempotentRequest(models.Model):
    """A POST made with an Idempotency-Key, and the answer it got, so a retry gets that answer again.

    The row is written before the request is carried out (status 0: in progress) in its own committed
    transaction: a second request with the key while the first runs finds it and is told to wait (409),
    instead of booking a second time.
    """

    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+", null=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    method = models.CharField(max_length=8)
    path = models.CharField(max_length=255)
    body_sha256 = models.CharField(max_length=64)
    status = models.PositiveSmallIntegerField(default=0)
    # The answer's body as it was sent (bytes of JSON): a replay is the same bytes, not a re-rendering.
    response = models.TextField(blank=True)
    headers = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="idempotent_request_key_unique")]
        indexes = [models.Index(fields=["created_at"], name="idempotent_request_age_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} ({self.key})"
