"""The order's worklist file: download it, or read it as a tag table. Login is required by middleware."""

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseNotFound
from django.shortcuts import get_object_or_404, render
from django.utils.translation import gettext as _
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from scheduling.models import Order

from .selectors import order_export_state


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
