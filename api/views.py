"""What every resource of the API shares: the base view, ETags, the schema and its docs page.

The resources are in their own modules (catalog, patients, orders, worklist, events), each with its
urlpatterns; urls.py puts them under /api/v1/. Views load and validate, then call the scheduling
services: no rule is checked here, and no order is written but by scheduling.services.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from .problems import PROBLEM_CONTENT_TYPE, ApiProblem


@method_decorator(login_not_required, name="dispatch")
class ApiView(APIView):
    """The API's views: token or session authentication and scopes (settings.REST_FRAMEWORK), never
    the login page's redirect (LoginRequiredMiddleware lets /api/ answer for itself: 401 problems)."""


def single_query_values(request: Request, serializer_class: type[serializers.Serializer]):
    """The request's query parameters for `serializer_class`, refusing one of its parameters sent twice.

    Every query parameter of this API is a single value: `?order=1&order=2` is refused (400), not read
    as its last value, so a client's mistake does not quietly widen or narrow what it asked for.
    Parameters the operation does not read are ignored, as always. Returns the QueryDict itself.
    """
    names = serializer_class().fields.keys()
    repeated = sorted(name for name in names if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise ApiProblem(
            "invalid-request",
            _("Send each query parameter once: %(names)s came more than once.")
            % {"names": ", ".join(repeated)},
            errors={name: [_("Send this parameter once.")] for name in repeated},
        )
    return request.query_params


def etag(version: int) -> str:
    """A record's ETag: its version, which every change increments."""
    return f'"{version}"'


def if_match_version(request: Request) -> int | None:
    """The version an If-Match header names; None without one (or with *): the change is unconditional.

    A malformed If-Match is refused rather than ignored: the caller meant to guard the change.
    """
    value = request.headers.get("If-Match", "").strip()
    if not value or value == "*":
        return None
    tag = value.split(",")[0].strip().removeprefix("W/").strip('"')
    if not (tag.isascii() and tag.isdigit()):
        raise ApiProblem(
            "invalid-request",
            _('If-Match must be the ETag of the record, as a GET gave it (like "3").'),
            errors={"If-Match": [_("Not an ETag of this API.")]},
        )
    return int(tag)


def with_etag(response: Response, version: int) -> Response:
    response["ETag"] = etag(version)
    return response


@method_decorator(login_not_required, name="dispatch")
class Schema(SpectacularAPIView):
    """The OpenAPI 3 schema: public, like any API's documentation (it holds no data)."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []


@method_decorator(login_not_required, name="dispatch")
class SchemaDocs(SpectacularSwaggerSplitView):
    """Swagger UI from our own static files (drf-spectacular-sidecar), its script in a file rather than
    inline, so the Content-Security-Policy of the site holds on this page too."""

    authentication_classes = []
    permission_classes = []
    throttle_classes = []
    url_name = "api:schema"

    def finalize_response(self, request, response, *args, **kwargs):
        # Swagger UI adds <style> elements from its script: this page alone allows inline styles (they
        # cannot run script, and the page shows no patient data). Scripts stay 'self' only.
        response = super().finalize_response(request, response, *args, **kwargs)
        policy = {**settings.RIS_CSP, "style-src": [*settings.RIS_CSP["style-src"], "'unsafe-inline'"]}
        response["Content-Security-Policy"] = "; ".join(
            f"{name} {' '.join(values)}" for name, values in policy.items()
        )
        return response


class ProblemSerializer(serializers.Serializer):
    """An RFC 9457 problem document, as every error of the API is given."""

    type = serializers.CharField(help_text="A URI (under /api/problems/) naming the kind of problem.")
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField(help_text="What is wrong, in the language of Accept-Language.")
    instance = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages by field name, worded as the front-desk forms word them.",
    )
    codes = serializers.DictField(child=serializers.ListField(child=serializers.CharField()), required=False)
    confirm = serializers.CharField(
        required=False, help_text="confirmation-required: the field to send as true to go ahead."
    )
    order = serializers.DictField(
        required=False, help_text="slot-taken, placer-number-taken: the order that holds the slot or number."
    )
    error_code = serializers.CharField(
        required=False,
        help_text=(
            "not-found of a worklist item the export refuses: why, as a stable code (value-empty, "
            "value-too-long, value-unencodable, romanized-name-missing, ...) whatever the language."
        ),
    )


_PROBLEM_DESCRIPTIONS = {
    400: "Invalid request (a field missing, of the wrong type or out of range)",
    401: "No token, or an unknown one",
    403: "The client lacks the scope, is disabled, or calls from an address not allowed",
    404: "No such record",
    409: "Conflict: the slot or placer number is taken, or a warning needs confirming",
    412: "If-Match names an older version of the record",
    422: "Refused by the scheduling rules, or an Idempotency-Key reused for another request",
    429: "Too many requests: wait Retry-After seconds",
}


def problem_responses(*statuses: int) -> dict[tuple[int, str], OpenApiResponse]:
    """The problem documents a view may answer with, for its extend_schema(responses=...).

    401, 403 and 429 apply to every view and are always included. Documented as
    application/problem+json, the type they are sent with: a client (or schemathesis) reading the
    schema expects that type, not application/json.
    """
    wanted = sorted({401, 403, 429, *statuses})
    return {
        (code, PROBLEM_CONTENT_TYPE): OpenApiResponse(
            ProblemSerializer, description=_PROBLEM_DESCRIPTIONS[code]
        )
        for code in wanted
    }


# The Idempotency-Key request header of every POST that creates something (api.idempotency).
IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    {"type": "string", "minLength": 1, "maxLength": 255},
    OpenApiParameter.HEADER,
    description=(
        "A key of your choosing (a UUID), at most 255 characters: a retry with the same key and body gets "
        "the first answer again (Idempotent-Replayed: true) and changes nothing; another body, a 422."
    ),
)


# The headers of a record's version, as every resource documents them (if_match_version reads If-Match).
IF_MATCH = OpenApiParameter(
    "If-Match",
    # What if_match_version takes: an ETag ("3", W/"3"), a list (the first counts), or *.
    {"type": "string", "pattern": r'^\s*(\*|(W/)?"*[0-9]+"*(\s*,.*)?)?\s*$'},
    OpenApiParameter.HEADER,
    description=(
        'The ETag of the record as you read it (like "3"): the change is refused (412) if the record '
        "changed since. Without it the change is made whatever the record's version."
    ),
)


def etag_header(*statuses: int) -> OpenApiParameter:
    """The ETag response header of `statuses`: the record's version, to send back as If-Match."""
    return OpenApiParameter(
        "ETag",
        OpenApiTypes.STR,
        OpenApiParameter.HEADER,
        response=list(statuses),
        description="The record's version; send it as If-Match to change the record.",
    )


def location_header(description: str) -> OpenApiParameter:
    """The Location header of a 201: where the new record is."""
    return OpenApiParameter(
        "Location", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[201], description=description
    )
