"""The order's worklist file: download it, or read it as a tag table; the Worklist problems page.
Login is required by middleware."""

from django.contrib import messages
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from access_audit.models import AccessAction
from access_audit.services import access_record
from scheduling.models import Order
from scheduling.roles import ADMIN, FRONT_DESK, require_role, user_has_role

from .selectors import order_export_state, worklist_problem_orders
from .services import order_sync_worklist


def _not_exported(order: Order) -> HttpResponse:
    return HttpResponseNotFound(
        _("Order %(acc)s has no worklist file: it is not exported (yet), or no longer on a worklist.")
        % {"acc": order.accession_number},
        content_type="text/plain; charset=utf-8",
    )


def order_file(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=pk)
    state = order_export_state(order=order)
    if state.file_path is None:
        return _not_exported(order)
    try:
        handle = open(state.file_path, "rb")  # FileResponse closes it
    except FileNotFoundError:  # removed by a task since the check
        return _not_exported(order)
    access_record(request=request, action=AccessAction.WORKLIST_FILE_DOWNLOADED, order=order)
    return FileResponse(
        handle,
        as_attachment=True,
        filename=state.file_path.name,
        content_type="application/dicom",
    )


def _rows(dataset, depth: int = 0) -> list[dict]:
    rows = []
    for element in dataset:
        row = {
            "depth": depth,
            "indent": "> " * depth,
            "tag": f"({element.tag.group:04X},{element.tag.element:04X})",
            "keyword": element.keyword or element.name,
            "vr": element.VR,
            "value": "",
        }
        if element.VR == "SQ":
            row["value"] = _("%(n)d item(s)") % {"n": len(element.value)}
            rows.append(row)
            for item in element.value:
                rows.extend(_rows(item, depth + 1))
            continue
        row["value"] = "" if element.value is None else str(element.value)
        rows.append(row)
    return rows


def order_dump(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order.objects.select_related("patient", "procedure", "room"), pk=pk)
    state = order_export_state(order=order)
    if state.file_path is None:
        return _not_exported(order)
    try:
        dataset = dcmread(state.file_path)
    except (InvalidDicomError, OSError) as exc:
        return HttpResponseNotFound(_("The worklist file cannot be read: %(err)s") % {"err": exc})
    access_record(request=request, action=AccessAction.WORKLIST_DUMP_VIEWED, order=order)
    return render(
        request,
        "worklist_export/order_dump.html",
        {
            "order": order,
            "state": state,
            "meta_rows": _rows(dataset.file_meta),
            "rows": _rows(dataset),
        },
    )


# Who may retry an export: the front desk, whose bookings these are, and Admin (support staff).
RETRY_ROLES = (FRONT_DESK, ADMIN)


def problems(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "worklist_export/problems.html",
        {
            "orders": worklist_problem_orders(),
            "can_retry": user_has_role(request.user, *RETRY_ROLES),
        },
    )


@require_POST
@require_role(*RETRY_ROLES)
def problem_retry(request: HttpRequest, pk: int) -> HttpResponse:
    order = get_object_or_404(Order, pk=pk)
    # In this request rather than queued: the person pressing the button wants to know now, and
    # the broker may be the very thing that is down. Writing one file takes milliseconds.
    try:
        result = order_sync_worklist(order_id=order.pk)
    except OSError as exc:
        messages.error(
            request,
            _("Order %(acc)s: the worklist folder still cannot be written: %(err)s")
            % {"acc": order.accession_number, "err": exc},
        )
    else:
        if result == "failed":
            messages.error(
                request,
                _("Order %(acc)s cannot be exported until its data is corrected; see the error.")
                % {"acc": order.accession_number},
            )
        else:
            messages.success(
                request,
                _("Order %(acc)s: the worklist is up to date.") % {"acc": order.accession_number},
            )
    return redirect("worklist_export:problems")
