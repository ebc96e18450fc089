"""API clients and their HTTP client for the API tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from api.models import ApiClient
from api.services import api_client_create


class Caller(APIClient):
    """A DRF test client holding an API client's token; `record` is the ApiClient."""

    record: ApiClient
    token: str


@pytest.fixture
def make_caller(db) -> Callable[..., Caller]:
    """make_caller(scopes=["read"], name=..., **client fields) -> a Caller sending its bearer token."""
    counter = iter(range(1, 10_000))

    def make(scopes=("read", "book", "workflow"), name: str | None = None, **fields) -> Caller:
        record, token = api_client_create(
            name=name or f"Client {next(counter)}", scopes=list(scopes), **fields
        )
        caller = Caller()
        caller.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
        caller.record, caller.token = record, token
        return caller

    return make


@pytest.fixture
def api(make_caller) -> Caller:
    """A client with read, book and workflow: what a referring system's integration has."""
    return make_caller(name="Clinic portal")


@pytest.fixture
def reader(make_caller) -> Caller:
    return make_caller(scopes=["read"], name="Read-only dashboard")
