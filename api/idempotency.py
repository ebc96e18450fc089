"""Idempotency-Key on POST: a retried request gets the first answer again and has no second effect.

The key is the caller's (one per API client or user). Same key, same method, path and body: the stored
answer, with the header Idempotent-Replayed: true. Same key with anything else: 422. A key whose first
request is still running: 409 (retry in a moment). Only answers that changed nothing for good are not
kept: a 5xx leaves no trace, so the retry runs again. Keys are kept API_IDEMPOTENCY_HOURS.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from .models import IdempotentRequest
from .permissions import caller_client
from .problems import ApiProblem

HEADER = "Idempotency-Key"
KEY_MAX = 255
_REPLAYED_HEADERS = ("Location", "ETag")


def _body_digest(request: Request) -> str:
    # The parsed body, keys sorted: the same JSON sent with other spacing or key order is the same request.
    canonical = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _replay(record: IdempotentRequest) -> HttpResponse:
    content_type = "application/problem+json" if record.status >= 400 else "application/json"
    response = HttpResponse(record.response, status=record.status, content_type=content_type)
    for name, value in record.headers.items():
        response[name] = value
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(view: Callable[..., Response]) -> Callable[..., Response]:
    """Decorate an APIView's post(): honour the Idempotency-Key header when one is sent."""

    @wraps(view)
    def wrapped(self, request: Request, *args, **kwargs) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return view(self, request, *args, **kwargs)
        key = key.strip()
        if not key:
            # Sent but empty: the caller meant to guard the request, and would retry it unguarded.
            raise ApiProblem(
                "invalid-request",
                _("The Idempotency-Key is empty."),
                errors={HEADER: [_("Send a key of at most 255 characters, or no header.")]},
            )
        if len(key) > KEY_MAX:
            raise ApiProblem(
                "invalid-request",
                _("The Idempotency-Key is longer than 255 characters."),
                errors={HEADER: [_("At most 255 characters.")]},
            )
        digest = _body_digest(request)
        record = IdempotentRequest.objects.filter(user=request.user, key=key).first()
        if record is None:
            try:
                # Committed at once, alone: a concurrent request with the key sees it and waits.
                with transaction.atomic():
                    record = IdempotentRequest.objects.create(
                        client=caller_client(request),
                        user=request.user,
                        key=key,
                        method=request.method,
                        path=request.path,
                        body_sha256=digest,
                    )
            except IntegrityError:
                record = IdempotentRequest.objects.get(user=request.user, key=key)
            else:
                return _carry_out(view, self, request, record, args, kwargs)
        if (record.method, record.path, record.body_sha256) != (request.method, request.path, digest):
            raise ApiProblem(
                "idempotency-key-reused",
                _("This Idempotency-Key was used for another request (%(method)s %(path)s).")
                % {"method": record.method, "path": record.path},
            )
        if record.status == 0:
            raise ApiProblem(
                "idempotency-key-in-use",
                _("The first request with this Idempotency-Key is still running; retry in a moment."),
                headers={"Retry-After": "1"},
            )
        return _replay(record)

    return wrapped


def _carry_out(view, self, request, record: IdempotentRequest, args, kwargs) -> Response:
    try:
        response = view(self, request, *args, **kwargs)
    except Exception as exc:
        # Rendered into a problem by the handler; keep a refusal (4xx) so a retry is refused alike,
        # forget a failure (the handler re-raises it) so a retry runs again.
        try:
            response = self.handle_exception(exc)
        except Exception:
            record.delete()
            raise
    if response.status_code >= 500:
        record.delete()
        return response
    record.status = response.status_code
    # Rendered as DRF renders the first answer (the same renderer, the same data): the same bytes.
    record.response = JSONRenderer().render(response.data).decode()
    record.headers = {name: response[name] for name in _REPLAYED_HEADERS if response.has_header(name)}
    record.save(update_fields=["status", "response", "headers"])
    return response


def idempotency_purge(*, now=None) -> int:
    """Forget keys older than API_IDEMPOTENCY_HOURS (the beat task api.tasks.purge_idempotency_keys)."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.API_IDEMPOTENCY_HOURS)
    deleted, _counts = IdempotentRequest.objects.filter(created_at__lt=cutoff).delete()
    return deleted
