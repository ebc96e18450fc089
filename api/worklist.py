"""An order's worklist item as the DICOM JSON model (PS3.18 Annex F): what a modality receives.

The item is built by the export's own code path (worklist_export.dataset.order_dataset: order_source,
then the one encoder, then pydicom reading the bytes back), so the JSON equals the order's .wl file
attribute for attribute: SpecificCharacterSet is the room's, a Latin-1 room gets the romanised name,
and a value the export refuses is refused here too.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from django.urls import path
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from access_audit.models import AccessAction
from access_audit.services import access_record
from scheduling.models import Order
from worklist_export.dataset import ExportError, order_dataset

from .problems import ApiProblem
from .views import ApiView, problem_responses

DICOM_JSON = "application/dicom+json"


class DicomJsonRenderer(JSONRenderer):
    """PS3.18's media type for the DICOM JSON model; plain application/json is offered beside it for
    clients that ask for nothing else."""

    media_type = DICOM_JSON
    format = "dicom-json"  # ?format=; a "+" would arrive as a space


# The DICOM JSON model of one dataset (PS3.18 F.2): attributes keyed by their tag as 8 upper-case hex
# digits, each with its VR and, unless empty, its values; a sequence's values are datasets again.
DICOM_JSON_SCHEMA = {
    "type": "object",
    "description": (
        'A DICOM dataset in the DICOM JSON model (PS3.18 Annex F): {"00100010": {"vr": "PN", "Value": '
        '[{"Alphabetic": "..."}]}, ...}, keys the attributes\' tags (8 hex digits).'
    ),
    "additionalProperties": {
        "type": "object",
        "required": ["vr"],
        "properties": {
            "vr": {"type": "string", "description": "The value representation (PN, LO, SQ, ...)."},
            "Value": {
                "type": "array",
                "items": {},
                "description": "The values: strings, numbers, person names as {Alphabetic: ...}, or "
                "for a sequence (SQ) its items, each a dataset like this one. Absent when empty.",
            },
        },
    },
}


class OrderWorklistItem(ApiView):
    renderer_classes = [DicomJsonRenderer, JSONRenderer]

    @extend_schema(
        summary="The order's worklist item, as DICOM JSON",
        description=(
            "The Modality Worklist item of the order in the DICOM JSON model (PS3.18 Annex F), exactly "
            "as its .wl file holds it and a modality receives it: the same attributes, the room's "
            "SpecificCharacterSet, the romanised name for a Latin-1 room. Read it back with e.g. "
            "pydicom's Dataset.from_json.\n\n"
            "Given for every active order (scheduled, arrived, in progress), also one beyond the "
            "export window, whose file is written when it enters the window (with these values, "
            "unless they change before). 404 for an order that is on no worklist: requested (not "
            "booked yet, so no room or time), cancelled or completed, or whose data the export "
            "cannot write (the detail says what to correct, error_code why, e.g. value-unencodable; "
            "the order is on the Worklist problems page). Each read is recorded in the access log."
        ),
        responses={
            (200, DICOM_JSON): OpenApiResponse(DICOM_JSON_SCHEMA, description="The worklist item"),
            (200, "application/json"): OpenApiResponse(DICOM_JSON_SCHEMA, description="The worklist item"),
            **problem_responses(404),
        },
    )
    def get(self, request: Request, pk: int) -> Response:
        order = get_object_or_404(Order.objects.select_related("patient", "procedure", "room"), pk=pk)
        if not order.is_active:
            raise ApiProblem(
                "not-found",
                _("Order %(acc)s is not on a worklist: status %(status)s.")
                % {"acc": order.accession_number, "status": order.get_status_display()},
            )
        try:
            dataset = order_dataset(order)
        except ExportError as exc:
            # The export refuses it the same way: no file, the modality gets nothing.
            # The detail in the caller's language; error_code, the stable code of the reason
            # (worklist_export.problems), for a client that acts on it.
            raise ApiProblem(
                "not-found",
                _("Order %(acc)s has no worklist item, its data cannot be exported: %(error)s")
                % {"acc": order.accession_number, "error": exc.problem.message()},
                error_code=exc.code,
            ) from None
        access_record(request=request, action=AccessAction.WORKLIST_DUMP_VIEWED, order=order)
        return Response(dataset.to_json_dict())


urlpatterns = [
    path("orders/<int:pk>/worklist-item", OrderWorklistItem.as_view(), name="order_worklist_item"),
]
