"""Errors as problem documents (RFC 9457, application/problem+json), in the caller's language.

Every refusal the API gives is one of PROBLEM_TYPES, named by `type` (a page under /api/problems/ says
what it means), with the HTTP `status`, a `title`, the `detail` a person can read, and where a field is
to blame `errors`: field name -> messages, worded exactly as the front-desk forms word them (the same
rules raise them, scheduling/rules.py), and `codes`: field name -> machine-readable codes. The language
is the request's (Accept-Language: th or en; LocaleMiddleware has activated it by the time the rules
format their messages).
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from scheduling.rules import PatientOverlapWarning
from scheduling.services import DuplicatePatientWarning, EditConflict, StaleVersion

PROBLEM_CONTENT_TYPE = "application/problem+json"
NON_FIELD = "non_field_errors"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    status: int
    title: str
    description: str


PROBLEM_TYPES = {
    p.slug: p
    for p in [
        ProblemType(
            "invalid-request",
            400,
            gettext_lazy("The request is not valid"),
            gettext_lazy("A field is missing, of the wrong type or out of range: see errors."),
        ),
        ProblemType(
            "refused",
            422,
            gettext_lazy("The scheduling rules refuse this"),
            gettext_lazy(
                "The booking rules refuse the change (a time in the past, outside the room's "
                "hours, a room of another modality...): see errors, by field."
            ),
        ),
        ProblemType(
            "slot-taken",
            409,
            gettext_lazy("The slot is taken"),
            gettext_lazy(
                "Another order holds the room at this time; `order` names it. Choose a free "
                "slot (GET /api/v1/slots)."
            ),
        ),
        ProblemType(
            "placer-number-taken",
            409,
            gettext_lazy("This placer order number is booked"),
            gettext_lazy(
                "Your system's order number already has an order here; `order` names it. A "
                "retry of a booking that succeeded finds its order this way."
            ),
        ),
        ProblemType(
            "confirmation-required",
            409,
            gettext_lazy("Confirmation required"),
            gettext_lazy(
                "The change is allowed but needs confirming, as a clerk ticks a box: send it "
                "again with the field named in `confirm` set to true."
            ),
        ),
        ProblemType(
            "edit-conflict",
            409,
            gettext_lazy("Changed by someone else"),
            gettext_lazy("Someone saved the record while you were editing: see errors."),
        ),
        ProblemType(
            "stale-version",
            412,
            gettext_lazy("The record changed since you read it"),
            gettext_lazy(
                "The If-Match ETag is not the record's any more. Read it again (GET), and "
                "repeat the change with the new ETag if it still applies."
            ),
        ),
        ProblemType(
            "idempotency-key-reused",
            422,
            gettext_lazy("Idempotency-Key used for another request"),
            gettext_lazy(
                "This Idempotency-Key was sent before with another method, path or body. "
                "Use a new key for a new request."
            ),
        ),
        ProblemType(
            "idempotency-key-in-use",
            409,
            gettext_lazy("The first request with this key is running"),
            gettext_lazy(
                "A request with this Idempotency-Key is still being carried out. Retry in a "
                "moment to get its answer."
            ),
        ),
        ProblemType(
            "not-authenticated",
            401,
            gettext_lazy("Not authenticated"),
            gettext_lazy("Send Authorization: Bearer <token> with the token of your API client."),
        ),
        ProblemType(
            "forbidden",
            403,
            gettext_lazy("Not allowed"),
            gettext_lazy(
                "Your API client lacks the scope, is disabled, or calls from an address it may not use."
            ),
        ),
        ProblemType("not-found", 404, gettext_lazy("Not found"), gettext_lazy("No such record.")),
        ProblemType(
            "method-not-allowed",
            405,
            gettext_lazy("Method not allowed"),
            gettext_lazy("This resource does not take that method."),
        ),
        ProblemType(
            "not-acceptable",
            406,
            gettext_lazy("Not acceptable"),
            gettext_lazy("The API answers in JSON only."),
        ),
        ProblemType(
            "unsupported-media-type",
            415,
            gettext_lazy("Unsupported media type"),
            gettext_lazy("Send the body as application/json."),
        ),
        ProblemType(
            "throttled",
            429,
            gettext_lazy("Too many requests"),
            gettext_lazy("Your client's request budget is spent: wait Retry-After seconds."),
        ),
        ProblemType(
            "server-error",
            500,
            gettext_lazy("Server error"),
            gettext_lazy("Something failed on our side; nothing was changed. It has been logged."),
        ),
    ]
}


def problem_type_uri(slug: str) -> str:
    return reverse("api:problem_type", args=[slug])


def problem_response(
    slug: str, detail: str, *, request=None, headers: dict | None = None, **extra
) -> Response:
    kind = PROBLEM_TYPES[slug]
    body = {
        "type": problem_type_uri(slug),
        "title": str(kind.title),
        "status": kind.status,
        "detail": str(detail),
    }
    if request is not None:
        body["instance"] = request.get_full_path()
    body.update({k: v for k, v in extra.items() if v is not None})
    return Response(body, status=kind.status, headers=headers, content_type=PROBLEM_CONTENT_TYPE)


def _field_errors(error: DjangoValidationError) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Messages and codes by field, as the API names fields (NON_FIELD for the request as a whole)."""
    if hasattr(error, "error_dict"):
        items = error.error_dict.items()
    else:
        items = [(NON_FIELD_ERRORS, error.error_list)]
    messages: dict[str, list[str]] = {}
    codes: dict[str, list[str]] = {}
    for field, errors in items:
        name = NON_FIELD if field == NON_FIELD_ERRORS else field
        for item in errors:
            messages.setdefault(name, []).extend(str(m) for m in DjangoValidationError(item).messages)
            codes.setdefault(name, []).append(item.code or "invalid")
    return messages, codes


def _codes_of(error: DjangoValidationError) -> set[str]:
    return {code for codes in _field_errors(error)[1].values() for code in codes}


def order_reference(order) -> dict:
    return {
        "id": order.pk,
        "accession_number": order.accession_number,
        "url": reverse("api:order_detail", args=[order.pk]),
    }


def _service_problem(exc: DjangoValidationError, request) -> Response:
    messages, codes = _field_errors(exc)
    detail = " ".join(m for ms in messages.values() for m in ms)
    if isinstance(exc, StaleVersion):
        return problem_response(
            "stale-version", detail, request=request, headers={"ETag": f'"{exc.version}"'}
        )
    if isinstance(exc, PatientOverlapWarning):
        return problem_response(
            "confirmation-required",
            detail,
            request=request,
            confirm="confirm_patient_overlap",
            errors=messages,
            codes=codes,
        )
    if isinstance(exc, DuplicatePatientWarning):
        return problem_response(
            "confirmation-required",
            detail,
            request=request,
            confirm="confirm_duplicate",
            errors=messages,
            codes=codes,
        )
    if isinstance(exc, EditConflict):
        return problem_response("edit-conflict", detail, request=request, errors=messages, codes=codes)
    found = _codes_of(exc)
    holder = getattr(exc, "order", None)
    if "placer_number_taken" in found:
        return problem_response(
            "placer-number-taken",
            detail,
            request=request,
            errors=messages,
            codes=codes,
            order=order_reference(holder) if holder is not None else None,
        )
    if "room_taken" in found:
        return problem_response(
            "slot-taken",
            detail,
            request=request,
            errors=messages,
            codes=codes,
            order=order_reference(holder) if holder is not None else None,
        )
    return problem_response("refused", detail, request=request, errors=messages, codes=codes)


_DRF_SLUGS = {
    exceptions.NotAuthenticated: "not-authenticated",
    exceptions.AuthenticationFailed: "not-authenticated",
    exceptions.PermissionDenied: "forbidden",
    exceptions.NotFound: "not-found",
    exceptions.MethodNotAllowed: "method-not-allowed",
    exceptions.NotAcceptable: "not-acceptable",
    exceptions.UnsupportedMediaType: "unsupported-media-type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "invalid-request",
}


def _flatten(detail, prefix: str = "") -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """DRF's nested error detail as flat field -> messages ("items.0.code" for nested fields)."""
    messages: dict[str, list[str]] = {}
    codes: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            sub_m, sub_c = _flatten(value, name)
            for k, v in sub_m.items():
                messages.setdefault(k, []).extend(v)
            for k, v in sub_c.items():
                codes.setdefault(k, []).extend(v)
    elif isinstance(detail, list):
        for index, value in enumerate(detail):
            if isinstance(value, (dict, list)):
                sub_m, sub_c = _flatten(value, f"{prefix}.{index}" if prefix else str(index))
            else:
                key = prefix or NON_FIELD
                sub_m, sub_c = {key: [str(value)]}, {key: [getattr(value, "code", "invalid")]}
            for k, v in sub_m.items():
                messages.setdefault(k, []).extend(v)
            for k, v in sub_c.items():
                codes.setdefault(k, []).extend(v)
    else:
        key = prefix or NON_FIELD
        messages[key] = [str(detail)]
        codes[key] = [getattr(detail, "code", "invalid")]
    return messages, codes


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """REST_FRAMEWORK's EXCEPTION_HANDLER: every error the API gives as a problem document."""
    request = context.get("request")
    if isinstance(exc, DjangoValidationError):
        return _service_problem(exc, request)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, exceptions.ValidationError):
        messages, codes = _flatten(exc.detail)
        detail = " ".join(f"{field}: {' '.join(ms)}" for field, ms in messages.items())
        return problem_response("invalid-request", detail, request=request, errors=messages, codes=codes)
    if isinstance(exc, ApiProblem):
        return problem_response(exc.slug, exc.detail_text, request=request, headers=exc.headers, **exc.extra)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a server error: Django's handler500 (api_server_error below) answers
    slug = next((s for cls, s in _DRF_SLUGS.items() if isinstance(exc, cls)), None)
    if slug is None:
        slug = {401: "not-authenticated", 403: "forbidden", 404: "not-found", 405: "method-not-allowed"}.get(
            response.status_code, "invalid-request"
        )
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    problem = problem_response(slug, str(detail), request=request)
    problem.status_code = response.status_code
    problem.data["status"] = response.status_code
    for name, value in response.items():
        if name.lower() in ("www-authenticate", "retry-after", "allow"):
            problem[name] = value
    return problem


class ApiProblem(exceptions.APIException):
    """Raise from a view to answer with one of PROBLEM_TYPES (e.g. "stale-version")."""

    def __init__(self, slug: str, detail: str, *, headers: dict | None = None, **extra) -> None:
        self.slug = slug
        self.detail_text = detail
        self.headers = headers
        self.extra = extra
        self.status_code = PROBLEM_TYPES[slug].status
        super().__init__(detail)


def _plain_problem(request: HttpRequest, slug: str, detail: str) -> JsonResponse:
    # For Django's error handlers, which answer outside DRF (no Response, no renderer).
    kind = PROBLEM_TYPES[slug]
    return JsonResponse(
        {
            "type": problem_type_uri(slug),
            "title": str(kind.title),
            "status": kind.status,
            "detail": str(detail),
            "instance": request.get_full_path(),
        },
        status=kind.status,
        content_type=PROBLEM_CONTENT_TYPE,
    )


def server_error_problem(request: HttpRequest) -> JsonResponse:
    """The 500 of the API (ris.urls handler500 sends /api/ here): a problem document, not an HTML page."""
    return _plain_problem(request, "server-error", PROBLEM_TYPES["server-error"].description)


def not_found_problem(request: HttpRequest) -> JsonResponse:
    """The 404 of an API address that names no resource (ris.urls handler404 sends /api/ here)."""
    return _plain_problem(
        request, "not-found", _("No resource at this address; the resources are listed at /api/docs/.")
    )


def problem_type_page(request: HttpRequest, slug: str) -> JsonResponse:
    kind = PROBLEM_TYPES.get(slug)
    if kind is None:
        raise Http404
    return JsonResponse(
        {
            "type": problem_type_uri(slug),
            "status": kind.status,
            "title": str(kind.title),
            "description": str(kind.description),
        }
    )
