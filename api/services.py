"""API clients: create one with its account and token, issue a new token, disable."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils.text import slugify

from .models import ApiClient


def _username(name: str) -> str:
    base = f"api-{slugify(name)[:100] or 'client'}"
    User = get_user_model()
    username, n = base, 1
    while User.objects.filter(username=username).exists():
        n += 1
        username = f"{base}-{n}"
    return username


def api_client_create(
    *, name: str, scopes: list[str], allowed_addresses: str = "", rate_limit: str = "", enabled: bool = True
) -> tuple[ApiClient, str]:
    """A new API client and its token (shown once: only its digest is kept).

    The client acts through its own user account, which cannot log in to the pages (no password) and is
    named in the history of everything the client changes.
    """
    client = ApiClient(
        name=name.strip(),
        scopes=list(scopes),
        allowed_addresses=allowed_addresses,
        rate_limit=rate_limit,
        enabled=enabled,
    )
    token = client.issue_token()
    client.full_clean(exclude=["user"])
    with transaction.atomic():
        user = get_user_model()(username=_username(client.name), first_name=client.name[:150])
        user.set_unusable_password()
        user.save()
        client.user = user
        client.save()
    return client, token


def api_client_save(*, client: ApiClient) -> ApiClient:
    """Save an admin's changes to a client; its account follows its enabled flag."""
    client.full_clean(exclude=["user"])
    with transaction.atomic():
        client.save()
        if client.user.is_active != client.enabled:
            client.user.is_active = client.enabled
            client.user.save(update_fields=["is_active"])
    return client


def api_client_new_token(*, client: ApiClient) -> str:
    """Replace the client's token; the old one stops working at once. The new one is returned once."""
    token = client.issue_token()
    client.save(update_fields=["token_prefix", "token_sha256", "token_issued_at"])
    return token
